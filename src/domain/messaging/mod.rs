//! Sending messages: validation, the ordered batching writer, and what must be announced.
//!
//! Every send, device connect and disconnect, delivery report and membership change
//! goes through one queue, drained by one writer task per node. That single order is
//! what makes the promises cheap: messages from one sender keep their order, a device
//! gets each message either live or from its offline queue, a member's delivered
//! position moves only for what reached one of their devices, and many concurrent
//! sends share one transaction.
mod isolate;
pub mod plan;
mod writer;

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::sync::{mpsc, oneshot};

use super::{
    DomainError, DomainResult,
    e2e::envelopes::Envelopes,
    groups::GroupEvent,
    presence::{DeviceId, Presence},
    types::{ClientMsgId, Content},
    typing::Typing,
};
pub use crate::store::{
    delivery::QueuedMessage,
    messages::{Quote, StoredMessage},
    positions::{Move, Settled},
};

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendTarget {
    /// The direct conversation with this user (created on the first message).
    Direct(i64),
    /// A conversation the sender belongs to, direct or group.
    Conversation(i64),
}

/// A validated request to send one message.
#[derive(Debug)]
pub struct SendRequest {
    pub sender_id: i64,
    pub device: DeviceId,
    pub target: SendTarget,
    pub content: Content,
    pub client_msg_id: Option<ClientMsgId>,
    /// A message of the same conversation this one replies to.
    pub reply_to: Option<i64>,
    /// End-to-end encrypted: one ciphertext per recipient device; `content` is empty.
    pub encrypted: Option<Envelopes>,
    /// An attachment the sender uploaded (checked by the writer).
    pub attachment_id: Option<i64>,
}

impl SendRequest {
    /// Applies the rules that need no database: no self-messages, plausible ids.
    pub fn new(
        sender_id: i64,
        device: DeviceId,
        target: SendTarget,
        content: Content,
        client_msg_id: Option<ClientMsgId>,
    ) -> DomainResult<Self> {
        match target {
            SendTarget::Direct(to) if to == sender_id => return Err(DomainError::SelfRecipient),
            SendTarget::Direct(to) if to <= 0 => return Err(DomainError::UnknownRecipient),
            SendTarget::Conversation(c) if c <= 0 => return Err(DomainError::ConversationNotFound),
            _ => {}
        }
        Ok(SendRequest {
            sender_id,
            device,
            target,
            content,
            client_msg_id,
            reply_to: None,
            encrypted: None,
            attachment_id: None,
        })
    }

    /// An end-to-end encrypted message: no content, one envelope per recipient device,
    /// each for a member of the conversation (the writer checks).
    pub fn new_encrypted(
        sender_id: i64,
        device: DeviceId,
        target: SendTarget,
        envelopes: Envelopes,
        client_msg_id: Option<ClientMsgId>,
    ) -> DomainResult<Self> {
        let mut req = Self::new(sender_id, device, target, Content::encrypted(), client_msg_id)?;
        req.encrypted = Some(envelopes);
        Ok(req)
    }

    /// Makes this a reply to `message_id`, which the writer checks belongs to the
    /// conversation the message goes to.
    pub fn replying_to(mut self, message_id: Option<i64>) -> DomainResult<Self> {
        if message_id.is_some_and(|id| id <= 0) {
            return Err(DomainError::InvalidInput("reply_to must be a message id".into()));
        }
        self.reply_to = message_id;
        Ok(self)
    }
}

impl SendRequest {
    /// Makes this message carry the attachment `id`, which the writer checks the sender
    /// uploaded. An encrypted message carries none: uploads are sniffed and served in
    /// the clear, so one cannot ride in a message whose content the server must not read.
    pub fn carrying(mut self, id: Option<i64>) -> DomainResult<Self> {
        if id.is_some_and(|id| id <= 0) {
            return Err(DomainError::InvalidInput(
                "attachment_id must be an attachment id".into(),
            ));
        }
        if id.is_some() && self.encrypted.is_some() {
            return Err(DomainError::InvalidInput(
                "an encrypted message cannot carry attachment_id: attachments are not end-to-end encrypted"
                    .into(),
            ));
        }
        self.attachment_id = id;
        Ok(self)
    }
}

/// What the transport must announce, in exactly this order.
#[derive(Debug)]
pub enum Outcome {
    /// These users became members of a conversation (a first direct message created it,
    /// or they were added to a group): their live devices join its room.
    Joined {
        conversation_id: i64,
        user_ids: Vec<i64>,
        /// The conversation's seq before their first message in it, when known.
        since: Option<i64>,
    },
    /// Committed messages, each with the device that sent it, in send order. Hand each
    /// to the live devices of the other members and report which members it reached.
    Stored(Vec<Stored>),
    /// A page of a connecting device's offline queue, oldest first. When `rooms` is
    /// Some, the queue is drained: the device joins those conversations' rooms (each
    /// given with its seq when the queue was read: the device holds everything up to
    /// it) and receives live messages from now on; otherwise ask for the next page.
    CatchUp {
        device: DeviceId,
        user_id: i64,
        messages: Vec<QueuedMessage>,
        rooms: Option<Vec<(i64, i64)>>,
    },
    /// A member stopped typing (sending a message ends the indicator).
    TypingStopped { conversation_id: i64, user_id: i64 },
    /// A user came online (`last_seen` is None) or went offline; tell their contacts.
    Presence {
        user_id: i64,
        online: bool,
        last_seen: Option<DateTime<Utc>>,
        contacts: Vec<i64>,
    },
    /// A member read a conversation up to a message.
    Read(ReadReceipt),
    /// These messages have now reached every other member: tell their senders.
    Delivered {
        messages: Vec<Settled>,
        at: DateTime<Utc>,
    },
    /// A group changed: tell its members, move rooms.
    Group(GroupEvent),
    /// A message was edited, deleted or reacted to: tell the conversation's members.
    Changed(crate::domain::lifecycle::Change),
    /// A claim left a device of `user_id` with few one-time prekeys: tell the user's devices.
    PrekeysLow {
        user_id: i64,
        device_id: i64,
        remaining: i64,
    },
    /// Everything before this was announced (and sent on to other nodes): answer it
    /// (shutdown waits for it).
    Flushed(oneshot::Sender<()>),
    /// Tokens of this user were ended: disconnect the sockets they opened (those of the
    /// token `jti`, or all the user's sockets).
    EndSessions { user_id: i64, jti: Option<String> },
    /// The queue could not be read: the device must reconnect rather than miss messages.
    CatchUpFailed { device: DeviceId },
}

/// Told of every batch of new messages right after it commits, on the writer's task:
/// must not block (push hooks hand the batch to a task of their own).
pub trait AfterCommit: Send + Sync {
    fn stored(&self, messages: &[&StoredMessage]);
}

/// One answered send.
#[derive(Debug)]
pub struct Stored {
    pub device: DeviceId,
    pub message: StoredMessage,
    /// False for a retry of an already stored `client_msg_id`: members saw it already.
    pub fresh: bool,
}

/// A conversation read by one member, for the senders and the reader's other devices.
#[derive(Debug, Clone)]
pub struct ReadReceipt {
    pub conversation_id: i64,
    pub reader_id: i64,
    /// The device that asked, which needs no echo; None for REST.
    pub reader_device: Option<DeviceId>,
    /// The newest message of each other sender now read, as `(sender, message id)`.
    pub newest_read: Vec<(i64, i64)>,
    /// The newest message of the conversation covered by the read.
    pub up_to_message_id: i64,
    pub read_at: DateTime<Utc>,
}

pub(crate) enum Command {
    Send(SendRequest, oneshot::Sender<DomainResult<StoredMessage>>),
    Connect {
        user_id: i64,
        device: DeviceId,
    },
    /// The previous page of a device's queue was handed over; the next, please.
    CatchUpMore {
        user_id: i64,
        device: DeviceId,
    },
    Disconnect {
        user_id: i64,
        device: DeviceId,
    },
    GraceExpired {
        user_id: i64,
        generation: u64,
    },
    /// Messages reached devices of these members.
    Reached(Vec<Move>),
    /// Passed to the transport in queue order (after everything queued before it).
    Announce(Outcome),
    /// Answered, through the transport, once everything queued before it is committed
    /// and announced (shutdown).
    Flush(oneshot::Sender<()>),
    /// Another node's decision: a user came online (None) or went offline at a time.
    PresenceChanged {
        user_id: i64,
        last_seen: Option<DateTime<Utc>>,
    },
}

/// A cheap handle to this node's writer.
#[derive(Clone)]
pub struct Messaging {
    tx: mpsc::Sender<Command>,
    out: mpsc::UnboundedSender<Outcome>,
    /// Set on shutdown: sends are refused (`unavailable`) while the queue drains.
    draining: Arc<AtomicBool>,
}

/// How many sends may wait for the writer before senders are slowed down.
const QUEUE_DEPTH: usize = 16 * 1024;

impl Messaging {
    /// Starts the writer; the transport drains the returned receiver and announces each outcome.
    pub fn start(
        db: DatabaseConnection,
        presence: Arc<Presence>,
        typing: Arc<Typing>,
        grace: Duration,
        catch_up_limit: u64,
        after_commit: Option<Arc<dyn AfterCommit>>,
    ) -> (Self, mpsc::UnboundedReceiver<Outcome>) {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let (out, out_rx) = mpsc::unbounded_channel();
        let setup = writer::Setup {
            db,
            presence,
            typing,
            out: out.clone(),
            queue: tx.downgrade(),
            grace,
            catch_up_limit,
            after_commit,
        };
        tokio::spawn(writer::run(setup, rx));
        (
            Messaging {
                tx,
                out,
                draining: Arc::default(),
            },
            out_rx,
        )
    }

    /// Passes outcomes that need no ordering with sends (read receipts, receipts that
    /// a read settled) straight to the transport.
    pub fn announce_now(&self, outcome: Outcome) {
        let _ = self.out.send(outcome);
    }

    /// Passes an outcome to the transport after everything queued before it: membership
    /// changes must not overtake a device's catch-up or a send.
    pub async fn announce_in_order(&self, outcome: Outcome) {
        let _ = self.tx.send(Command::Announce(outcome)).await;
    }

    /// Queues a send. Sends queued one after another are stored and announced in that
    /// order; await the returned receiver for the commit.
    pub async fn send(
        &self,
        req: SendRequest,
    ) -> DomainResult<oneshot::Receiver<DomainResult<StoredMessage>>> {
        if self.draining.load(Ordering::SeqCst) {
            // The client resends after it reconnects, to this node's successor.
            return Err(DomainError::Unavailable);
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Send(req, reply))
            .await
            .map_err(|_| DomainError::Unavailable)?;
        Ok(rx)
    }

    /// A device connected: it will receive its queued messages, then live ones.
    pub async fn device_connected(&self, user_id: i64, device: DeviceId) {
        let _ = self.tx.send(Command::Connect { user_id, device }).await;
    }

    /// A page of the device's queue was handed over; queue the next.
    pub async fn catch_up_more(&self, user_id: i64, device: DeviceId) {
        let _ = self.tx.send(Command::CatchUpMore { user_id, device }).await;
    }

    /// Messages reached devices of these members: move their delivered positions.
    pub async fn reached(&self, moves: Vec<Move>) {
        if !moves.is_empty() {
            let _ = self.tx.send(Command::Reached(moves)).await;
        }
    }

    /// Shutdown: refuses further sends and returns once every send accepted before is
    /// committed, its sender answered and its message announced (to other nodes too).
    pub async fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        let (done, flushed) = oneshot::channel();
        if self.tx.send(Command::Flush(done)).await.is_ok() {
            let _ = flushed.await;
        }
    }

    /// The cluster decided a user's presence (a dead node's users went offline, or a
    /// node found its users again): tell their contacts, in the writer's order.
    pub async fn presence_changed(&self, user_id: i64, last_seen: Option<DateTime<Utc>>) {
        let _ = self
            .tx
            .send(Command::PresenceChanged { user_id, last_seen })
            .await;
    }

    /// A device went away (idempotent).
    pub async fn device_disconnected(&self, user_id: i64, device: DeviceId) {
        let _ = self.tx.send(Command::Disconnect { user_id, device }).await;
    }
}
