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
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

use super::{
    DomainError, DomainResult,
    presence::{DeviceId, Presence},
    types::Content,
};
pub use crate::store::{delivery::QueuedMessage, messages::StoredMessage};

/// A validated request to send one direct message.
#[derive(Debug)]
pub struct SendRequest {
    pub sender_id: i64,
    pub device: DeviceId,
    pub to_user_id: i64,
    pub content: Content,
}

impl SendRequest {
    /// Applies the rules that need no database: no self-messages.
    pub fn new(
        sender_id: i64,
        device: DeviceId,
        to_user_id: i64,
        content: Content,
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
        })
    }
}

/// What the transport must announce, in exactly this order.
#[derive(Debug)]
pub enum Outcome {
    /// Committed messages, each with the device that sent it. Those with `delivered_at`
    /// go to the recipient's devices now; the others wait in the offline queue.
    Stored(Vec<(DeviceId, StoredMessage)>),
    /// A device came online: hand it the queued messages (already marked delivered at
    /// `delivered_at`), then let it receive live messages.
    CatchUp {
        device: DeviceId,
        user_id: i64,
        messages: Vec<QueuedMessage>,
        delivered_at: DateTime<Utc>,
    },
    /// The queue could not be read: the device must reconnect rather than miss messages.
    CatchUpFailed { device: DeviceId },
}

enum Command {
    Send(SendRequest, oneshot::Sender<DomainResult<StoredMessage>>),
    Connect { user_id: i64, device: DeviceId },
    Disconnect { user_id: i64, device: DeviceId },
}

/// A cheap handle to this node's writer.
#[derive(Clone)]
pub struct Messaging {
    tx: mpsc::Sender<Command>,
}

/// How many sends may wait for the writer before senders are slowed down.
const QUEUE_DEPTH: usize = 16 * 1024;

impl Messaging {
    /// Starts the writer; the transport drains the returned receiver and announces each outcome.
    pub fn start(
        db: DatabaseConnection,
        presence: Arc<Presence>,
    ) -> (Self, mpsc::UnboundedReceiver<Outcome>) {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        tokio::spawn(writer::run(db, presence, rx, out_tx));
        (Messaging { tx }, out_rx)
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
