//! Per-socket state: who is connected, and the arrival order of their events.
//!
//! socketioxide spawns a task per event, so two `send_message` events from one socket
//! can start in either order. Extractors, however, run synchronously as packets arrive;
//! [`Arrival`] takes a ticket there, and [`Session::turn`] lets handlers through strictly
//! in ticket order. That restores the order the client sent in, without serialising the
//! (slow) commit that follows.
use std::{
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use socketioxide::{adapter::Adapter, handler::FromMessageParts, socket::Socket};
use socketioxide_core::Value;
use tokio::sync::Notify;

/// Where a socket is in its life, as the message writer has been told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Authenticated,
    Connected,
    Gone,
}

pub struct Session {
    pub user_id: i64,
    arrivals: AtomicU64,
    next_turn: Mutex<u64>,
    turn_changed: Notify,
    /// Guards the Connect/Disconnect hand-off so the writer never hears them out of order.
    pub phase: tokio::sync::Mutex<Phase>,
    /// Set once the device's offline queue is drained and it sits in its conversations'
    /// rooms. Only the dispatcher reads or writes it, in outcome order.
    pub live: std::sync::atomic::AtomicBool,
}

impl Session {
    pub fn new(user_id: i64) -> Arc<Self> {
        Arc::new(Session {
            user_id,
            arrivals: AtomicU64::new(0),
            next_turn: Mutex::new(0),
            turn_changed: Notify::new(),
            phase: tokio::sync::Mutex::new(Phase::Authenticated),
            live: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Waits until every event that arrived before `ticket` has had its turn.
    pub async fn turn(self: &Arc<Self>, ticket: u64) -> Turn {
        loop {
            // Registered before the check, so a release between check and await is not missed.
            let changed = self.turn_changed.notified();
            if *self.next_turn.lock().expect("turn lock poisoned") == ticket {
                return Turn(self.clone());
            }
            changed.await;
        }
    }
}

/// Held while a handler does its ordered part; dropping it lets the next event through.
pub struct Turn(Arc<Session>);

impl Drop for Turn {
    fn drop(&mut self) {
        *self.0.next_turn.lock().expect("turn lock poisoned") += 1;
        self.0.turn_changed.notify_waiters();
    }
}

/// The socket's session and this event's place in the socket's arrival order.
pub struct Arrival {
    pub session: Option<Arc<Session>>,
    pub ticket: u64,
}

impl<A: Adapter> FromMessageParts<A> for Arrival {
    type Error = Infallible;

    fn from_message_parts(s: &Arc<Socket<A>>, _: &mut Value, _: &Option<i64>) -> Result<Self, Infallible> {
        let session = s.extensions.get::<Arc<Session>>();
        let ticket = session
            .as_ref()
            .map_or(0, |s| s.arrivals.fetch_add(1, Ordering::SeqCst));
        Ok(Arrival { session, ticket })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn turns_follow_tickets_whatever_order_tasks_start() {
        let session = Session::new(1);
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for ticket in (0..20u64).rev() {
            let (session, order) = (session.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _turn = session.turn(ticket).await;
                tokio::time::sleep(Duration::from_millis(1)).await;
                order.lock().unwrap().push(ticket);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), (0..20).collect::<Vec<_>>());
    }
}
