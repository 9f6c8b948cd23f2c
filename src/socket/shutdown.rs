//! Leaving gracefully (SIGTERM, SIGINT): admit no one new, commit every send already
//! accepted and answer its sender, then drop each connection the way a lost link drops,
//! so that clients reconnect on their own, to another node behind the load balancer.
use super::SocketIo;
use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use tokio::sync::Notify;

use super::session::Session;
use crate::domain::{limits::Connections, messaging::Messaging};

pub struct Shutdown {
    pub io: SocketIo,
    pub messaging: Messaging,
    pub connections: Arc<Connections>,
    pub sends: Arc<SendsInFlight>,
}

impl Shutdown {
    pub async fn run(&self) {
        self.connections.close();
        // From here sends are refused (`unavailable`: resend after reconnecting); those
        // accepted before are committed, and their handlers answer them.
        self.messaging.drain().await;
        self.sends.idle().await;
        let sockets = self.io.sockets();
        tracing::info!(sockets = sockets.len(), "sends answered: closing connections");
        for s in sockets {
            match s.extensions.get::<Arc<Session>>() {
                // A dropped transport, not a Socket.IO disconnect: clients reconnect.
                Some(session) => session.receipts.cut_off(&s),
                None => {
                    s.disconnect().ok();
                }
            }
        }
    }
}

/// `send_message` handlers that have not answered their sender yet.
#[derive(Default)]
pub struct SendsInFlight {
    count: AtomicUsize,
    idle: Notify,
}

impl SendsInFlight {
    /// Counts a handler until the returned guard is dropped.
    pub fn enter(self: &Arc<Self>) -> Answering {
        self.count.fetch_add(1, Ordering::SeqCst);
        Answering(self.clone())
    }

    /// Resolves once no handler is left unanswered.
    async fn idle(&self) {
        loop {
            let woken = self.idle.notified();
            tokio::pin!(woken);
            // Registered before the check, so a guard dropped in between still wakes us.
            woken.as_mut().enable();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            woken.await;
        }
    }
}

/// Held by a `send_message` handler until it has answered.
pub struct Answering(Arc<SendsInFlight>);

impl Drop for Answering {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_waits_for_the_last_answer() {
        let sends = Arc::new(SendsInFlight::default());
        sends.idle().await;
        let (first, second) = (sends.enter(), sends.enter());
        let waiting = tokio::spawn({
            let sends = sends.clone();
            async move { sends.idle().await }
        });
        drop(first);
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "one handler still owes an answer");
        drop(second);
        waiting.await.unwrap();
    }
}
