//! Per-socket state: who is connected, and the arrival order of their events.
//!
//! socketioxide spawns a task per event, so two `send_message` events from one socket
//! can start in either order. Extractors, however, run synchronously as packets arrive;
//! [`Arrival`] takes a ticket there, and [`Session::turn`] lets handlers through strictly
//! in ticket order. That restores the order the client sent in, without serialising the
//! (slow) commit that follows.
use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use socketioxide::{adapter::Adapter, handler::FromMessageParts, socket::Socket};
use socketioxide_core::Value;
use tokio::sync::oneshot;

use super::proof::Receipts;
use crate::{
    auth::jwt::Verified,
    domain::{limits::Admission, spans::Spans},
};

/// Where a socket is in its life, as the message writer has been told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Authenticated,
    Connected,
    Gone,
}

/// Rate-limited sends in a row after which a socket is disconnected.
pub const FLOOD_LIMIT: u64 = 200;

/// Whose turn it is, and the handlers waiting for a later one (each woken alone, so a
/// long queue costs the same per message as a short one).
#[derive(Default)]
struct Turns {
    next: u64,
    waiting: HashMap<u64, oneshot::Sender<()>>,
}

pub struct Session {
    pub user_id: i64,
    /// When the socket authenticated: messages that reached this node since are owed to it.
    pub connected_at: std::time::Instant,
    /// When the token that authenticated the socket expires (seconds since the epoch);
    /// `auth_refresh` moves it.
    expires_at: std::sync::atomic::AtomicI64,
    /// The id of the token it connected (or last refreshed) with, so logout can end it.
    jti: Mutex<Option<String>>,
    /// That token's version (a "log out everywhere" moves the user's past it).
    token_version: std::sync::atomic::AtomicI64,
    arrivals: AtomicU64,
    turns: Mutex<Turns>,
    /// Guards the Connect/Disconnect hand-off so the writer never hears them out of order.
    pub phase: tokio::sync::Mutex<Phase>,
    /// Sends refused by the rate limit in a row; a client that keeps going is cut off.
    refused_in_a_row: AtomicU64,
    /// The socket's slot in the connection limits, freed with the session.
    _admission: Option<Admission>,
    /// Set once the device's offline queue is drained and it sits in its conversations'
    /// rooms. Only the dispatcher reads or writes it, in outcome order.
    pub live: std::sync::atomic::AtomicBool,
    /// What was emitted to the socket and not yet shown received.
    pub receipts: Receipts,
    /// Per conversation, the `seq`s already handed to this socket (as `new_message` or
    /// in a `sync` answer), so neither path hands one over twice.
    handed: Mutex<Spans>,
    /// Set while a re-read of the offline queue is pending for a gap (several nodes).
    pub refill_pending: std::sync::atomic::AtomicBool,
    /// Another node changed the user's memberships while this device was still catching
    /// up: the rooms its queue read named may be stale, so it reads once more before
    /// going live.
    pub missed_move: std::sync::atomic::AtomicBool,
}

impl Session {
    pub fn new(
        user_id: i64,
        token: &Verified,
        admission: Option<Admission>,
        receipts: Receipts,
    ) -> Arc<Self> {
        Arc::new(Session {
            user_id,
            connected_at: std::time::Instant::now(),
            expires_at: std::sync::atomic::AtomicI64::new(token.expires_at),
            jti: Mutex::new(token.jti.clone()),
            token_version: std::sync::atomic::AtomicI64::new(token.version),
            refused_in_a_row: AtomicU64::new(0),
            _admission: admission,
            arrivals: AtomicU64::new(0),
            turns: Mutex::new(Turns::default()),
            phase: tokio::sync::Mutex::new(Phase::Authenticated),
            live: std::sync::atomic::AtomicBool::new(false),
            receipts,
            handed: Mutex::new(Spans::default()),
            refill_pending: std::sync::atomic::AtomicBool::new(false),
            missed_move: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn expires_at(&self) -> i64 {
        self.expires_at.load(Ordering::SeqCst)
    }

    /// A fresh token for the same user extends the socket's life.
    pub fn extend(&self, token: &Verified) {
        self.expires_at.fetch_max(token.expires_at, Ordering::SeqCst);
        *self.jti.lock().expect("jti lock poisoned") = token.jti.clone();
        self.token_version.store(token.version, Ordering::SeqCst);
    }

    /// Message `seq` of `conversation` was handed to this socket; returns the end of
    /// the unbroken run of the conversation it now holds (see [`Spans`]).
    pub fn handed(&self, conversation: i64, seq: i64) -> i64 {
        self.spans().hand(conversation, seq)
    }

    /// Everything of `conversation` up to `seq` is on the device already.
    pub fn holds_through(&self, conversation: i64, seq: i64) {
        self.spans().hold_through(conversation, seq);
    }

    /// Whether message `seq` of `conversation` was already handed to this socket.
    pub fn was_handed(&self, conversation: i64, seq: i64) -> bool {
        self.spans().holds(conversation, seq)
    }

    /// Whether a message was handed beyond a gap that has not closed.
    pub fn has_gap(&self) -> bool {
        self.spans().any_gap()
    }

    fn spans(&self) -> std::sync::MutexGuard<'_, Spans> {
        self.handed.lock().expect("handed lock poisoned")
    }

    /// The token the socket stands on: its id and version.
    pub fn token(&self) -> (Option<String>, i64) {
        (
            self.jti.lock().expect("jti lock poisoned").clone(),
            self.token_version.load(Ordering::SeqCst),
        )
    }

    /// Whether the socket stands on the token `jti`.
    pub fn uses_token(&self, jti: &str) -> bool {
        self.jti.lock().expect("jti lock poisoned").as_deref() == Some(jti)
    }

    /// Counts a send refused by the rate limit (or resets on one that was not); true
    /// once the client has ignored [`FLOOD_LIMIT`] refusals in a row.
    pub fn note_refusal(&self, refused: bool) -> bool {
        if refused {
            self.refused_in_a_row.fetch_add(1, Ordering::SeqCst) + 1 >= FLOOD_LIMIT
        } else {
            self.refused_in_a_row.store(0, Ordering::SeqCst);
            false
        }
    }

    /// Waits until every event that arrived before `ticket` has had its turn.
    pub async fn turn(self: &Arc<Self>, ticket: u64) -> Turn {
        let wake = {
            let mut turns = self.turns.lock().expect("turn lock poisoned");
            if turns.next == ticket {
                return Turn(self.clone());
            }
            // Registered under the lock the releaser takes, so its wake-up cannot be missed.
            let (tx, rx) = oneshot::channel();
            turns.waiting.insert(ticket, tx);
            rx
        };
        // The sender is only dropped after it was used (or with the session).
        let _ = wake.await;
        Turn(self.clone())
    }
}

/// Held while a handler does its ordered part; dropping it lets the next event through.
pub struct Turn(Arc<Session>);

impl Drop for Turn {
    fn drop(&mut self) {
        let mut turns = self.0.turns.lock().expect("turn lock poisoned");
        turns.next += 1;
        let next = turns.next;
        if let Some(wake) = turns.waiting.remove(&next) {
            let _ = wake.send(());
        }
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
        let token = Verified {
            user_id: 1,
            expires_at: i64::MAX,
            jti: None,
            version: 0,
        };
        let session = Session::new(1, &token, None, Receipts::new(None, 0, false));
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
