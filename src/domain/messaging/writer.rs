//! The writer task: drains the command queue in order, storing sends in batches.
use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbBackend, TransactionTrait};
use tokio::sync::{mpsc, oneshot};

use super::{Command, Outcome, SendRequest, Stored, StoredMessage};
use crate::{
    domain::{
        DomainError, DomainResult,
        presence::{Arrival, Departure, Presence},
    },
    store::{self, messages::NewMessage},
};

/// Most sends stored in one transaction.
const MAX_BATCH: usize = 1024;

type Reply = oneshot::Sender<DomainResult<StoredMessage>>;

struct Writer {
    db: DatabaseConnection,
    presence: Arc<Presence>,
    out: mpsc::UnboundedSender<Outcome>,
    /// Our own queue, to come back after a grace period (weak: it must not keep us alive).
    queue: mpsc::WeakSender<Command>,
    grace: Duration,
    /// Most queued messages handed to a device when it connects; the rest stay queued.
    catch_up_limit: u64,
    pairs: store::messages::PairCache,
    /// Users never disappear, so a positive existence check is cached.
    known_users: HashSet<i64>,
}

pub(super) struct Setup {
    pub db: DatabaseConnection,
    pub presence: Arc<Presence>,
    pub out: mpsc::UnboundedSender<Outcome>,
    pub queue: mpsc::WeakSender<Command>,
    pub grace: Duration,
    pub catch_up_limit: u64,
}

pub(super) async fn run(setup: Setup, mut rx: mpsc::Receiver<Command>) {
    let Setup {
        db,
        presence,
        out,
        queue,
        grace,
        catch_up_limit,
    } = setup;
    let mut w = Writer {
        db,
        presence,
        out,
        queue,
        grace,
        catch_up_limit,
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
                Command::GraceExpired { user_id, generation } => {
                    w.store_sends(&mut sends).await;
                    w.grace_expired(user_id, generation).await;
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
        let Ok(batch) = self.drop_unknown_recipients(std::mem::take(sends)).await else {
            return;
        };
        if batch.is_empty() {
            return;
        }
        // A retry racing its original on another node loses on the unique key; the second
        // attempt then finds the original and answers with it.
        let mut attempt = 0;
        let results = loop {
            attempt += 1;
            match self.try_store(&batch).await {
                Ok(results) => break results,
                Err(e) if attempt == 1 && store::messages::is_duplicate_client_id(&e) => continue,
                Err(e) => {
                    tracing::error!(error = ?e, batch = batch.len(), "storing a batch of messages failed");
                    for (_, reply) in batch {
                        let _ = reply.send(Err(DomainError::Internal(anyhow::anyhow!("batch failed"))));
                    }
                    return;
                }
            }
        };
        let mut announce = Vec::with_capacity(results.len());
        let mut replies = Vec::with_capacity(results.len());
        for ((req, reply), (message, fresh)) in batch.into_iter().zip(results) {
            announce.push(Stored {
                device: req.device,
                message: message.clone(),
                fresh,
            });
            replies.push((reply, message));
        }
        let _ = self.out.send(Outcome::Stored(announce));
        for (reply, message) in replies {
            let _ = reply.send(Ok(message));
        }
    }

    /// Stores the batch's new messages; returns every request's message and whether it is new.
    async fn try_store(
        &mut self,
        batch: &[(SendRequest, Reply)],
    ) -> anyhow::Result<Vec<(StoredMessage, bool)>> {
        let key = |req: &SendRequest| {
            req.client_msg_id
                .as_ref()
                .map(|c| (req.sender_id, c.as_str().to_owned()))
        };
        let keys: Vec<(i64, String)> = batch
            .iter()
            .filter_map(|(req, _)| key(req))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let existing = store::messages::find_by_client_ids(&self.db, &keys).await?;

        enum Plan {
            Existing(StoredMessage),
            New(usize),
            SameAs(usize),
        }
        let mut first_row = HashMap::new();
        let mut rows = Vec::with_capacity(batch.len());
        let mut plan = Vec::with_capacity(batch.len());
        for (req, _) in batch {
            let k = key(req);
            if let Some(k) = &k {
                if let Some(m) = existing.get(k) {
                    plan.push(Plan::Existing(m.clone()));
                    continue;
                }
                if let Some(row) = first_row.get(k) {
                    plan.push(Plan::SameAs(*row));
                    continue;
                }
            }
            if let Some(k) = k {
                first_row.insert(k, rows.len());
            }
            plan.push(Plan::New(rows.len()));
            rows.push(NewMessage {
                sender_id: req.sender_id,
                recipient_id: req.to_user_id,
                content: req.content.clone().into_inner(),
                client_msg_id: req.client_msg_id.as_ref().map(|c| c.as_str().to_owned()),
                deliver_now: self.presence.is_connected(req.to_user_id),
            });
        }
        let stored = if rows.is_empty() {
            Vec::new()
        } else {
            self.write(&rows).await?
        };
        Ok(plan
            .into_iter()
            .map(|p| match p {
                Plan::Existing(m) => (m, false),
                Plan::New(i) => (stored[i].clone(), true),
                Plan::SameAs(i) => (stored[i].clone(), false),
            })
            .collect())
    }

    async fn write(&mut self, rows: &[NewMessage]) -> anyhow::Result<Vec<StoredMessage>> {
        let started = std::time::Instant::now();
        let stored = match self.db.get_database_backend() {
            DbBackend::Postgres => store::messages_pg::write_batch(&self.db, &self.pairs, rows).await?,
            _ => store::messages_sqlite::write_batch(&self.db, &self.pairs, rows).await?,
        };
        tracing::debug!(
            messages = rows.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "batch committed"
        );
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
            let queued = store::delivery::take_undelivered(&txn, user_id, self.catch_up_limit, now).await?;
            txn.commit().await?;
            anyhow::Ok(queued)
        }
        .await;
        let messages = match taken {
            Ok(messages) => messages,
            Err(e) => {
                tracing::error!(error = ?e, user_id, "reading the offline queue failed");
                let _ = self.out.send(Outcome::CatchUpFailed { device });
                return;
            }
        };
        let arrival = self.presence.device_connected(user_id, &device);
        let _ = self.out.send(Outcome::CatchUp {
            device,
            user_id,
            messages,
            delivered_at: now,
        });
        if arrival == Arrival::CameOnline {
            self.announce_presence(user_id, None).await;
        }
    }

    async fn disconnect(&mut self, user_id: i64, device: String) {
        let Departure::Lingering { generation } =
            self.presence.device_disconnected(user_id, &device, Utc::now())
        else {
            return;
        };
        if self.grace.is_zero() {
            return self.grace_expired(user_id, generation).await;
        }
        let (queue, grace) = (self.queue.clone(), self.grace);
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if let Some(queue) = queue.upgrade() {
                let _ = queue.send(Command::GraceExpired { user_id, generation }).await;
            }
        });
    }

    async fn grace_expired(&mut self, user_id: i64, generation: u64) {
        let Some(last_seen) = self.presence.expire(user_id, generation) else {
            return;
        };
        if let Err(e) = store::users::touch_last_seen(&self.db, user_id, last_seen).await {
            tracing::warn!(error = ?e, user_id, "storing last_seen_at failed");
        }
        self.announce_presence(user_id, Some(last_seen)).await;
    }

    /// Tells everyone who shares a conversation with the user.
    async fn announce_presence(&mut self, user_id: i64, last_seen: Option<DateTime<Utc>>) {
        match store::conversations::contacts(&self.db, user_id).await {
            Ok(contacts) if !contacts.is_empty() => {
                let _ = self.out.send(Outcome::Presence {
                    user_id,
                    online: last_seen.is_none(),
                    last_seen,
                    contacts,
                });
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = ?e, user_id, "presence not announced: contacts unavailable"),
        }
    }
}
