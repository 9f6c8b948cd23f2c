//! What a device has shown it received.
//!
//! A message emitted into a socket has only reached a buffer: the connection may have
//! died silently (a phone leaving Wi-Fi) or the client may not be reading. Two things
//! prove that it arrived:
//! - The heartbeat. Packets reach the client in the order they were queued, so the pong
//!   to a ping queued after a message proves the message arrived (the patched
//!   engineioxide numbers its pings: `vendor/engineioxide/PATCH.md`).
//! - The offset a reconnecting socket.io-client (4.6+) sends back: the last message it
//!   got on its previous connection, and so everything handed to that connection before
//!   it (connection state recovery; `vendor/socketioxide/PATCH.md`).
//!
//! Only then does a member's delivered position move; whatever is never proven stays in
//! the member's offline queue and is handed over again on the next connect, with the
//! same `message_id` and `seq`.
use super::SocketRef;
use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use engineioxide::Heartbeats;
use metrics::{counter, histogram};

use crate::{
    domain::messaging::{Messaging, Move},
    monitoring,
};

/// How long the record of a closed connection's unproven messages is kept for its
/// client's reconnect (socket.io-client's back-off stays under 5 s by default).
const RECOVERY_WINDOW: Duration = Duration::from_secs(120);

/// One message handed to a socket and not yet proven.
#[derive(Clone, Copy)]
struct Entry {
    message_id: i64,
    conversation_id: i64,
    user_id: i64,
    /// The end of the unbroken run of the conversation the device held once it had
    /// this message: what proving it vouches for (`domain::spans`).
    covers: i64,
    sent_at: DateTime<Utc>,
    bytes: usize,
    /// The ping whose pong proves it.
    mark: u64,
    /// Carried an offset (a `new_message`); a `sync` answer does not, and its place in
    /// the ledger may trail its place in the stream, so only a ping proves it.
    offset: bool,
}

/// A socket's unproven messages, in the order they were emitted.
#[derive(Default)]
struct Ledger(VecDeque<Entry>);

impl Ledger {
    /// Takes every entry proven by ping `mark`.
    fn proven_by_ping(&mut self, mark: u64) -> Vec<Entry> {
        let n = self.0.iter().take_while(|e| e.mark <= mark).count();
        self.0.drain(..n).collect()
    }

    /// Takes every `new_message` entry up to and including `message_id`, if it is here.
    fn proven_by_offset(&mut self, message_id: i64) -> Vec<Entry> {
        let Some(i) = self.0.iter().position(|e| e.offset && e.message_id == message_id) else {
            return Vec::new();
        };
        let (proven, kept): (Vec<Entry>, Vec<Entry>) = self.0.drain(..=i).partition(|e| e.offset);
        for e in kept.into_iter().rev() {
            self.0.push_front(e);
        }
        proven
    }
}

/// One socket's outstanding emits: its ledger, and its bytes against the budget.
pub struct Receipts {
    heartbeats: Option<Heartbeats>,
    ledger: Arc<Mutex<Ledger>>,
    unproven_bytes: Arc<AtomicUsize>,
    budget: usize,
    /// The client records offsets (it came back with a `pid`): each `new_message` it is
    /// sent carries its `message_id` as a last, string argument.
    pub offsets: bool,
}

impl Receipts {
    /// `budget` bytes may await proof at once (0: no bound).
    pub fn new(heartbeats: Option<Heartbeats>, budget: usize, offsets: bool) -> Self {
        Receipts {
            heartbeats,
            ledger: Arc::default(),
            unproven_bytes: Arc::new(AtomicUsize::new(0)),
            budget,
            offsets,
        }
    }

    /// The heartbeat handle the handshake request carried (see `handshake::admit`).
    pub fn of(s: &SocketRef, budget: usize, offsets: bool) -> Self {
        Self::new(
            s.req_parts().extensions.get::<Heartbeats>().cloned(),
            budget,
            offsets,
        )
    }

    /// Drops the connection so that the client reconnects on its own and catches up
    /// (a Socket.IO disconnect would tell socket.io-client to stay away).
    pub fn cut_off(&self, s: &SocketRef) {
        match &self.heartbeats {
            Some(h) => h.sever(),
            None => {
                s.clone().disconnect().ok();
            }
        }
    }

    /// Whether more bytes await proof than the budget allows.
    pub fn over_budget(&self) -> bool {
        self.budget != 0 && self.unproven_bytes.load(Ordering::SeqCst) > self.budget
    }
}

/// One message as handed to a socket: which it is, and its size on the wire.
pub struct HandedMessage {
    pub message_id: i64,
    pub conversation_id: i64,
    /// What `Session::handed` answered for it.
    pub covers: i64,
    pub sent_at: DateTime<Utc>,
    pub bytes: usize,
}

/// What one socket was handed in one go, waiting for the proof that it arrived.
#[derive(Default)]
pub struct Handed(Vec<Entry>);

impl Handed {
    /// Records a `new_message` emitted to `receipts`' socket for `user_id`.
    pub fn add(&mut self, receipts: &Receipts, user_id: i64, m: HandedMessage) {
        self.push(receipts, user_id, m, true);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Records a message handed in a `sync` answer (proven by the heartbeat only).
    pub fn add_synced(&mut self, receipts: &Receipts, user_id: i64, m: HandedMessage) {
        self.push(receipts, user_id, m, false);
    }

    fn push(&mut self, receipts: &Receipts, user_id: i64, m: HandedMessage, offset: bool) {
        self.0.push(Entry {
            message_id: m.message_id,
            conversation_id: m.conversation_id,
            user_id,
            covers: m.covers,
            sent_at: m.sent_at,
            bytes: m.bytes,
            mark: 0,
            offset,
        });
        receipts.unproven_bytes.fetch_add(m.bytes, Ordering::SeqCst);
    }

    /// Asks the socket for proof and, once it comes, reports the members reached; then
    /// runs `after` (the next catch-up page). Nothing is reported if the socket closes
    /// first: those messages stay queued for the member.
    pub fn await_proof<F>(self, receipts: &Receipts, messaging: Messaging, after: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.0.is_empty() {
            tokio::spawn(after);
            return;
        }
        let Some(heartbeats) = receipts.heartbeats.clone() else {
            // Every handshake passes `handshake::admit`; a socket that somehow did not
            // cannot prove anything, and reporting it reached would be a lie.
            tracing::error!("socket without heartbeat proof: delivery left to its next connect");
            let bytes: usize = self.0.iter().map(|e| e.bytes).sum();
            receipts.unproven_bytes.fetch_sub(bytes, Ordering::SeqCst);
            return;
        };
        let mark = heartbeats.mark();
        receipts
            .ledger
            .lock()
            .expect("ledger lock poisoned")
            .0
            .extend(self.0.into_iter().map(|e| Entry { mark, ..e }));
        heartbeats.request();
        let (ledger, unproven) = (receipts.ledger.clone(), receipts.unproven_bytes.clone());
        tokio::spawn(async move {
            if !heartbeats.proven(mark).await {
                return;
            }
            let proven = ledger.lock().expect("ledger lock poisoned").proven_by_ping(mark);
            report(proven, &unproven, &messaging).await;
            after.await;
        });
    }
}

/// Counts proven entries and moves their members' delivered positions.
async fn report(proven: Vec<Entry>, unproven: &AtomicUsize, messaging: &Messaging) {
    if proven.is_empty() {
        return;
    }
    unproven.fetch_sub(proven.iter().map(|e| e.bytes).sum(), Ordering::SeqCst);
    let now = Utc::now();
    counter!(monitoring::MESSAGES_DELIVERED).increment(proven.len() as u64);
    let mut furthest: HashMap<(i64, i64), i64> = HashMap::new();
    for e in &proven {
        let latency = (now - e.sent_at).to_std().unwrap_or_default();
        histogram!(monitoring::DELIVERY_LATENCY).record(latency.as_secs_f64());
        let seq = furthest.entry((e.conversation_id, e.user_id)).or_default();
        *seq = (*seq).max(e.covers);
    }
    let moves = furthest
        .into_iter()
        .map(|((conversation_id, user_id), seq)| Move {
            conversation_id,
            user_id,
            seq,
        })
        .collect();
    messaging.reached(moves).await;
}

/// The ledgers of this node's connections by private session id (`pid`), kept a while
/// after each closes, so a reconnecting client's offset can prove what it got.
#[derive(Default)]
pub struct Recovery {
    by_pid: Mutex<HashMap<String, Recoverable>>,
}

struct Recoverable {
    user_id: i64,
    ledger: Arc<Mutex<Ledger>>,
    unproven_bytes: Arc<AtomicUsize>,
}

impl Recovery {
    /// Registers a connection's ledger under its `pid`.
    pub fn register(&self, pid: &str, user_id: i64, receipts: &Receipts) {
        self.by_pid.lock().expect("recovery lock poisoned").insert(
            pid.to_owned(),
            Recoverable {
                user_id,
                ledger: receipts.ledger.clone(),
                unproven_bytes: receipts.unproven_bytes.clone(),
            },
        );
    }

    /// The connection closed: its record goes after the recovery window.
    pub fn retire(self: &Arc<Self>, pid: String) {
        let recovery = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(RECOVERY_WINDOW).await;
            recovery
                .by_pid
                .lock()
                .expect("recovery lock poisoned")
                .remove(&pid);
        });
    }

    /// A client of `user_id` came back saying it got message `offset` on connection
    /// `pid`: that message and everything handed to that connection before it arrived.
    /// Only the connection's own user can prove anything about it.
    pub async fn recover(&self, pid: &str, offset: &str, user_id: i64, messaging: &Messaging) {
        let Ok(message_id) = offset.parse::<i64>() else {
            return;
        };
        let (ledger, unproven) = {
            let by_pid = self.by_pid.lock().expect("recovery lock poisoned");
            match by_pid.get(pid) {
                Some(r) if r.user_id == user_id => (r.ledger.clone(), r.unproven_bytes.clone()),
                _ => return,
            }
        };
        let proven = ledger
            .lock()
            .expect("ledger lock poisoned")
            .proven_by_offset(message_id);
        report(proven, &unproven, messaging).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(message_id: i64, mark: u64) -> Entry {
        Entry {
            message_id,
            conversation_id: 1,
            user_id: 2,
            covers: message_id,
            sent_at: Utc::now(),
            bytes: 10,
            mark,
            offset: true,
        }
    }

    fn ids(entries: &[Entry]) -> Vec<i64> {
        entries.iter().map(|e| e.message_id).collect()
    }

    #[test]
    fn a_ping_proves_what_was_queued_before_it_and_nothing_after() {
        let mut ledger = Ledger([entry(1, 3), entry(2, 3), entry(3, 4)].into());
        assert_eq!(ids(&ledger.proven_by_ping(2)), Vec::<i64>::new());
        assert_eq!(ids(&ledger.proven_by_ping(3)), vec![1, 2]);
        assert_eq!(ids(&ledger.proven_by_ping(9)), vec![3]);
    }

    #[test]
    fn an_offset_proves_its_message_and_everything_before_it() {
        let mut ledger = Ledger([entry(5, 1), entry(6, 1), entry(9, 2)].into());
        assert_eq!(
            ids(&ledger.proven_by_offset(4)),
            Vec::<i64>::new(),
            "not on this connection"
        );
        assert_eq!(ids(&ledger.proven_by_offset(6)), vec![5, 6]);
        assert_eq!(ids(&ledger.proven_by_offset(6)), Vec::<i64>::new(), "proven once");
        assert_eq!(ids(&ledger.proven_by_offset(9)), vec![9]);
    }

    #[test]
    fn an_offset_leaves_sync_answers_to_the_heartbeat() {
        let synced = Entry {
            offset: false,
            ..entry(7, 1)
        };
        let mut ledger = Ledger([entry(5, 1), synced, entry(8, 2)].into());
        assert_eq!(ids(&ledger.proven_by_offset(8)), vec![5, 8]);
        assert_eq!(ids(&ledger.proven_by_ping(1)), vec![7]);
    }
}
