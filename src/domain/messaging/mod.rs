//! Sending messages: validation, the ordered batching writer, and what must be announced.
//!
//! Every send, device connect and device disconnect goes through one queue, drained by
//! one writer task per node. That single order is what makes three promises cheap:
//! messages from one sender keep their order, a message is either delivered live or
//! found by the recipient's catch-up (never both, never neither), and many concurrent
//! sends share one transaction.
mod writer;

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use std::{sync::Arc, time::Duration};
use tokio::sync::{mpsc, oneshot};

use super::{
    DomainError, DomainResult,
    presence::{DeviceId, Presence},
    types::{ClientMsgId, Content},
};
pub use crate::store::{delivery::QueuedMessage, messages::StoredMessage};

/// A validated request to send one direct message.
#[derive(Debug)]
pub struct SendRequest {
    pub sender_id: i64,
    pub device: DeviceId,
    pub to_user_id: i64,
    pub content: Content,
    pub client_msg_id: Option<ClientMsgId>,
}

impl SendRequest {
    /// Applies the rules that need no database: no self-messages.
    pub fn new(
        sender_id: i64,
        device: DeviceId,
        to_user_id: i64,
        content: Content,
        client_msg_id: Option<ClientMsgId>,
    ) -> DomainResult<Self> {
        if to_user_id == sender_id {
            return Err(DomainError::SelfRecipient);
        }
        if to_user_id <= 0 {
            return Err(DomainError::UnknownRecipient);
        }
        Ok(SendRequest {
            sender_id,
            device,
            to_user_id,
            content,
            client_msg_id,
        })
    }
}

/// What the transport must announce, in exactly this order.
#[derive(Debug)]
pub enum Outcome {
    /// Committed messages, each with the device that sent it, in send order.
    Stored(Vec<Stored>),
    /// A device came online: hand it the queued messages (already marked delivered at
    /// `delivered_at`), then let it receive live messages.
    CatchUp {
        device: DeviceId,
        user_id: i64,
        messages: Vec<QueuedMessage>,
        delivered_at: DateTime<Utc>,
    },
    /// A user came online (`last_seen` is None) or went offline; tell their contacts.
    Presence {
        user_id: i64,
        online: bool,
        last_seen: Option<DateTime<Utc>>,
        contacts: Vec<i64>,
    },
    /// A member read a conversation up to a message.
    Read(ReadReceipt),
    /// The queue could not be read: the device must reconnect rather than miss messages.
    CatchUpFailed { device: DeviceId },
}

/// One answered send.
#[derive(Debug)]
pub struct Stored {
    pub device: DeviceId,
    pub message: StoredMessage,
    /// False for a retry of an already stored `client_msg_id`: recipients saw it already.
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
    Connect { user_id: i64, device: DeviceId },
    Disconnect { user_id: i64, device: DeviceId },
    GraceExpired { user_id: i64, generation: u64 },
}

/// A cheap handle to this node's writer.
#[derive(Clone)]
pub struct Messaging {
    tx: mpsc::Sender<Command>,
    out: mpsc::UnboundedSender<Outcome>,
}

/// How many sends may wait for the writer before senders are slowed down.
const QUEUE_DEPTH: usize = 16 * 1024;

impl Messaging {
    /// Starts the writer; the transport drains the returned receiver and announces each outcome.
    pub fn start(
        db: DatabaseConnection,
        presence: Arc<Presence>,
        grace: Duration,
        catch_up_limit: u64,
    ) -> (Self, mpsc::UnboundedReceiver<Outcome>) {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let (out, out_rx) = mpsc::unbounded_channel();
        let setup = writer::Setup {
            db,
            presence,
            out: out.clone(),
            queue: tx.downgrade(),
            grace,
            catch_up_limit,
        };
        tokio::spawn(writer::run(setup, rx));
        (Messaging { tx, out }, out_rx)
    }

    /// Passes a read receipt to the transport.
    pub fn announce_read(&self, receipt: ReadReceipt) {
        let _ = self.out.send(Outcome::Read(receipt));
    }

    /// Queues a send. Sends queued one after another are stored and announced in that
    /// order; await the returned receiver for the commit.
    pub async fn send(
        &self,
        req: SendRequest,
    ) -> DomainResult<oneshot::Receiver<DomainResult<StoredMessage>>> {
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

    /// A device went away (idempotent).
    pub async fn device_disconnected(&self, user_id: i64, device: DeviceId) {
        let _ = self.tx.send(Command::Disconnect { user_id, device }).await;
    }
}
