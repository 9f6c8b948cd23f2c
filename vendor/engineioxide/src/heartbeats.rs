//! Proof of receipt from the heartbeat. (realtime-chat patch; see PATCH.md at the crate root.)
//!
//! Both transports deliver a socket's packets in the order they were queued, and a
//! client answers every ping with a pong. So a pong answering a ping that was queued
//! after some packet proves that the client received that packet.
//!
//! An application that wants this puts a [`Heartbeats`] in the extensions of the
//! handshake request (the request that opens the Engine.IO session). The socket's
//! heartbeat job then numbers the pings it sends, records which one was last answered,
//! and sends the next ping at once when [`Heartbeats::request`] asks for proof instead
//! of waiting for the ping interval. Sockets without one behave exactly as upstream.
use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use tokio::sync::{Notify, watch};

/// Shared between the application and one socket's heartbeat job.
#[derive(Clone, Debug)]
pub struct Heartbeats(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// Pings sent so far, counting the one in flight.
    sent: AtomicU64,
    answered: watch::Sender<Answered>,
    wanted: Notify,
    severed: Notify,
}

#[derive(Clone, Copy, Debug, Default)]
struct Answered {
    /// The number of the last ping a pong answered.
    up_to: u64,
    /// The heartbeat ended: the socket is closed and nothing more will be proven.
    closed: bool,
}

impl Default for Heartbeats {
    fn default() -> Self {
        Self::new()
    }
}

impl Heartbeats {
    /// Nothing sent, nothing answered.
    pub fn new() -> Self {
        Heartbeats(Arc::new(Inner {
            sent: AtomicU64::new(0),
            answered: watch::channel(Answered::default()).0,
            wanted: Notify::new(),
            severed: Notify::new(),
        }))
    }

    /// The number of the ping whose pong proves every packet queued before this call.
    ///
    /// Call it after queueing the packets: a ping counted but not yet queued when the
    /// packets were may travel ahead of them, so the proof is the ping after it.
    pub fn mark(&self) -> u64 {
        self.0.sent.load(Ordering::SeqCst) + 1
    }

    /// Asks for a ping as soon as none is in flight, rather than at the next interval.
    pub fn request(&self) {
        self.0.wanted.notify_one();
    }

    /// Waits until ping `mark` is answered (true) or the socket closes first (false).
    pub async fn proven(&self, mark: u64) -> bool {
        let mut rx = self.0.answered.subscribe();
        match rx.wait_for(|a| a.up_to >= mark || a.closed).await {
            Ok(a) => a.up_to >= mark,
            Err(_) => false,
        }
    }

    /// Closes the socket's transport as a missed pong would: the client sees its
    /// connection drop (not a Socket.IO disconnect, which clients take as final) and
    /// reconnects on its own.
    pub fn sever(&self) {
        // A stored permit: severing before the job waits still ends it.
        self.0.severed.notify_one();
    }

    /// The number of the last answered ping.
    pub fn answered(&self) -> u64 {
        self.0.answered.borrow().up_to
    }

    /// Counts a ping about to be queued; returns its number.
    pub(crate) fn sending(&self) -> u64 {
        self.0.sent.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Ping `n` was answered.
    pub(crate) fn pong(&self, n: u64) {
        self.0.answered.send_modify(|a| a.up_to = a.up_to.max(n));
    }

    /// The heartbeat ended.
    pub(crate) fn close(&self) {
        self.0.answered.send_modify(|a| a.closed = true);
    }

    /// Resolves once [`Heartbeats::sever`] was called.
    pub(crate) async fn severed(&self) {
        self.0.severed.notified().await;
    }

    /// Resolves when proof was requested since the last call.
    pub(crate) async fn wanted(&self) {
        self.0.wanted.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_mark_is_proven_by_its_ping_or_a_later_one_never_by_an_earlier() {
        let h = Heartbeats::new();
        let first = h.sending();
        let mark = h.mark();
        assert_eq!(mark, first + 1, "the ping already counted may precede the packet");
        h.pong(first);
        let waiting = tokio::spawn({
            let h = h.clone();
            async move { h.proven(mark).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        let second = h.sending();
        h.pong(second);
        assert!(waiting.await.unwrap());
    }

    #[tokio::test]
    async fn closing_ends_every_wait_unproven() {
        let h = Heartbeats::new();
        let mark = h.mark();
        let waiting = tokio::spawn({
            let h = h.clone();
            async move { h.proven(mark).await }
        });
        h.close();
        assert!(!waiting.await.unwrap());
    }
}
