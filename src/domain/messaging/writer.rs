//! The writer task: drains the command queue in order, storing sends in batches.
use std::{collections::HashSet, sync::Arc};

use chrono::Utc;
use sea_orm::{DatabaseConnection, TransactionTrait};
use tokio::sync::{mpsc, oneshot};

use super::{Command, Outcome, SendRequest, StoredMessage};
use crate::{
    domain::{DomainError, DomainResult, presence::Presence},
    store::{self, messages::NewMessage},
};

/// Most sends stored in one transaction.
const MAX_BATCH: usize = 256;
/// Most queued messages handed to a device when it connects; the rest stay queued.
const MAX_CATCH_UP: u64 = 5_000;

type Reply = oneshot::Sender<DomainResult<StoredMessage>>;

struct Writer {
    db: DatabaseConnection,
    presence: Arc<Presence>,
    out: mpsc::UnboundedSender<Outcome>,
    pairs: store::messages::PairCache,
    /// Users never disappear, so a positive existence check is cached.
    known_users: HashSet<i64>,
}

pub(super) async fn run(
    db: DatabaseConnection,
    presence: Arc<Presence>,
    mut rx: mpsc::Receiver<Command>,
    out: mpsc::UnboundedSender<Outcome>,
) {
    let mut w = Writer {
        db,
        presence,
        out,
        pairs: Default::default(),
        known_users: HashSet::new(),
    };
    let mut commands = Vec::with_capacity(MAX_BATCH);
    let mut sends: Vec<(SendRequest, Reply)> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut commands, MAX_BATCH).await > 0 {
        for command in commands.drain(..) {
            match command {
                Command::Send(req, reply) => sends.push((req, reply)),
                Command::Connect { user_id, device } => {
                    w.store_sends(&mut sends).await;
                    w.catch_up(user_id, device).await;
                }
                Command::Disconnect { user_id, device } => {
                    w.store_sends(&mut sends).await;
                    w.disconnect(user_id, device).await;
                }
            }
        }
        w.store_sends(&mut sends).await;
    }
}

impl Writer {
    async fn store_sends(&mut self, sends: &mut Vec<(SendRequest, Reply)>) {
        if sends.is_empty() {
            return;
        }
        let batch: Vec<(SendRequest, Reply)> = sends.drain(..).collect();
        let batch = match self.drop_unknown_recipients(batch).await {
            Ok(batch) => batch,
            Err(()) => return,
        };
        if batch.is_empty() {
            return;
        }
        let rows: Vec<NewMessage> = batch
            .iter()
            .map(|(req, _)| NewMessage {
                sender_id: req.sender_id,
                recipient_id: req.to_user_id,
                content: req.content.clone().into_inner(),
                client_msg_id: None,
                deliver_now: self.presence.is_online(req.to_user_id),
            })
            .collect();

        match self.write(&rows).await {
            Ok(stored) => {
                let mut announce = Vec::with_capacity(stored.len());
                let mut replies = Vec::with_capacity(stored.len());
                for ((req, reply), msg) in batch.into_iter().zip(stored) {
                    announce.push((req.device, msg.clone()));
                    replies.push((reply, msg));
                }
                let _ = self.out.send(Outcome::Stored(announce));
                for (reply, msg) in replies {
                    let _ = reply.send(Ok(msg));
                }
            }
            Err(e) => {
                tracing::error!(error = ?e, batch = rows.len(), "storing a batch of messages failed");
                for (_, reply) in batch {
                    let _ = reply.send(Err(DomainError::Internal(anyhow::anyhow!("batch failed"))));
                }
            }
        }
    }

    async fn write(&mut self, rows: &[NewMessage]) -> anyhow::Result<Vec<StoredMessage>> {
        let txn = self.db.begin().await?;
        let mut pairs = self.pairs.clone();
        let stored = store::messages::write_batch(&txn, &mut pairs, rows).await?;
        txn.commit().await?;
        // Only ids of committed conversations may be remembered.
        self.pairs = pairs;
        Ok(stored)
    }

    /// Answers sends to nonexistent users with an error and keeps the rest, in order.
    async fn drop_unknown_recipients(
        &mut self,
        batch: Vec<(SendRequest, Reply)>,
    ) -> Result<Vec<(SendRequest, Reply)>, ()> {
        let unknown: Vec<i64> = batch
            .iter()
            .map(|(r, _)| r.to_user_id)
            .filter(|id| !self.known_users.contains(id))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if !unknown.is_empty() {
            match store::users::existing_ids(&self.db, &unknown).await {
                Ok(found) => self.known_users.extend(found),
                Err(e) => {
                    tracing::error!(error = ?e, "checking recipients failed");
                    for (_, reply) in batch {
                        let _ = reply.send(Err(DomainError::Internal(anyhow::anyhow!(
                            "recipient check failed"
                        ))));
                    }
                    return Err(());
                }
            }
        }
        Ok(batch
            .into_iter()
            .filter_map(|(req, reply)| {
                if self.known_users.contains(&req.to_user_id) {
                    Some((req, reply))
                } else {
                    let _ = reply.send(Err(DomainError::UnknownRecipient));
                    None
                }
            })
            .collect())
    }

    async fn catch_up(&mut self, user_id: i64, device: String) {
        let now = Utc::now();
        let taken = async {
            let txn = self.db.begin().await?;
            let queued =
                store::delivery::take_undelivered(&txn, user_id, MAX_CATCH_UP, now).await?;
            txn.commit().await?;
            anyhow::Ok(queued)
        }
        .await;
        match taken {
            Ok(messages) => {
                self.presence.device_connected(user_id, &device);
                let _ = self.out.send(Outcome::CatchUp {
                    device,
                    user_id,
                    messages,
                    delivered_at: now,
                });
            }
            Err(e) => {
                tracing::error!(error = ?e, user_id, "reading the offline queue failed");
                let _ = self.out.send(Outcome::CatchUpFailed { device });
            }
        }
    }

    async fn disconnect(&mut self, user_id: i64, device: String) {
        if self.presence.device_disconnected(user_id, &device) {
            if let Err(e) = store::users::touch_last_seen(&self.db, user_id, Utc::now()).await {
                tracing::warn!(error = ?e, user_id, "storing last_seen_at failed");
            }
        }
    }
}
