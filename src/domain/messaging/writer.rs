//! The writer task: drains the command queue in order, storing sends in batches and
//! moving delivered positions for what reached devices.
use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use chrono::{DateTime, Utc};
use metrics::{counter, gauge, histogram};
use sea_orm::{DatabaseConnection, DbBackend};
use tokio::sync::{mpsc, oneshot};

use super::{
    AfterCommit, Command, Outcome, Quote, SendRequest, SendTarget, Stored, StoredMessage,
    isolate::{Isolation, refused_by_database},
    plan::BatchPlan,
};
use crate::{
    domain::{
        DomainError, DomainResult,
        presence::{Arrival, Departure, Presence},
        receipts::Position,
        typing::Typing,
    },
    monitoring,
    store::{
        self,
        attachments::Attachment,
        messages::NewMessage,
        positions::{self, Move},
    },
};

/// Most sends stored in one transaction.
const MAX_BATCH: usize = 1024;

type Reply = oneshot::Sender<DomainResult<StoredMessage>>;

/// A send whose conversation is known and whose sender may write to it.
struct Ready {
    req: SendRequest,
    reply: Reply,
    conversation_id: i64,
    /// The quoted message, for a reply.
    quote: Option<Quote>,
    /// The attachment it carries, checked to be the sender's.
    attachment: Option<Attachment>,
}

struct Writer {
    db: DatabaseConnection,
    presence: Arc<Presence>,
    typing: Arc<Typing>,
    out: mpsc::UnboundedSender<Outcome>,
    /// Our own queue, to come back after a grace period (weak: it must not keep us alive).
    queue: mpsc::WeakSender<Command>,
    grace: Duration,
    /// Most queued messages handed to a device per page of its catch-up.
    catch_up_limit: u64,
    /// `(lower user, higher user)` → direct conversation. Never changes once created.
    pairs: HashMap<(i64, i64), i64>,
    /// Users never disappear, so a positive existence check is cached.
    known_users: HashSet<i64>,
    /// Delivery reports not yet applied.
    reached: Vec<Move>,
    /// The presence task's queue.
    announcer: mpsc::UnboundedSender<(i64, Option<DateTime<Utc>>)>,
    /// Told of each batch's new messages (push hooks), if anything listens.
    after_commit: Option<Arc<dyn AfterCommit>>,
}

pub(super) struct Setup {
    pub db: DatabaseConnection,
    pub presence: Arc<Presence>,
    pub typing: Arc<Typing>,
    pub out: mpsc::UnboundedSender<Outcome>,
    pub queue: mpsc::WeakSender<Command>,
    pub grace: Duration,
    pub catch_up_limit: u64,
    pub after_commit: Option<Arc<dyn AfterCommit>>,
}

pub(super) async fn run(setup: Setup, mut rx: mpsc::Receiver<Command>) {
    let Setup {
        db,
        presence,
        typing,
        out,
        queue,
        grace,
        catch_up_limit,
        after_commit,
    } = setup;
    let (announcer, changes) = mpsc::unbounded_channel();
    tokio::spawn(announce_presence(db.clone(), out.clone(), changes));
    let mut w = Writer {
        announcer,
        db,
        presence,
        typing,
        out,
        queue,
        grace,
        catch_up_limit,
        pairs: HashMap::new(),
        known_users: HashSet::new(),
        reached: Vec::new(),
        after_commit,
    };
    let mut commands = Vec::with_capacity(MAX_BATCH);
    let mut sends: Vec<(SendRequest, Reply)> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut commands, MAX_BATCH).await > 0 {
        gauge!(monitoring::WRITER_QUEUE).set((commands.len() + rx.len()) as f64);
        for command in commands.drain(..) {
            match command {
                Command::Send(req, reply) => sends.push((req, reply)),
                Command::Reached(moves) => w.reached.extend(moves),
                // Everything else sees the effects of what was queued before it.
                other => {
                    w.store_sends(&mut sends).await;
                    w.apply_reached().await;
                    match other {
                        Command::Connect { user_id, device } => w.catch_up(user_id, device, true).await,
                        Command::CatchUpMore { user_id, device } => w.catch_up(user_id, device, false).await,
                        Command::Disconnect { user_id, device } => w.disconnect(user_id, device).await,
                        Command::GraceExpired { user_id, generation } => {
                            w.grace_expired(user_id, generation).await
                        }
                        Command::Announce(outcome) => {
                            let _ = w.out.send(outcome);
                        }
                        Command::Flush(done) => {
                            let _ = w.out.send(Outcome::Flushed(done));
                        }
                        Command::PresenceChanged { user_id, last_seen } => {
                            w.announce_presence(user_id, last_seen).await
                        }
                        Command::Send(..) | Command::Reached(..) => unreachable!("handled above"),
                    }
                }
            }
        }
        w.store_sends(&mut sends).await;
        w.apply_reached().await;
    }
}

fn fail_all<T>(items: Vec<(T, Reply)>, why: &str) {
    for (_, reply) in items {
        let _ = reply.send(Err(DomainError::Internal(anyhow::anyhow!("{why}"))));
    }
}

impl Writer {
    async fn store_sends(&mut self, sends: &mut Vec<(SendRequest, Reply)>) {
        if sends.is_empty() {
            return;
        }
        let batch = match self.resolve(std::mem::take(sends)).await {
            Ok(batch) if !batch.is_empty() => batch,
            Ok(_) => return,
            Err((e, unanswered)) => {
                tracing::error!(error = ?e, "resolving the conversations of a batch failed");
                return fail_all(unanswered, "conversation lookup failed");
            }
        };
        let mut isolation = Isolation::new(batch.len());
        while let Some(part) = isolation.next_part() {
            let slice = &batch[part.clone()];
            // A retry racing its original on another node loses on the unique key; the
            // second attempt then finds the original and answers with it.
            let stored = match self.try_store(slice).await {
                Err(e) if store::messages::is_duplicate_client_id(&e) => self.try_store(slice).await,
                other => other,
            };
            match stored {
                Ok(results) => isolation.stored(part, results),
                Err(e) => {
                    let splittable = refused_by_database(&e);
                    isolation.failed(part, e, splittable, |e| anyhow::anyhow!("{e:#}"));
                }
            }
        }
        let results = isolation.finish();
        let mut announce = Vec::with_capacity(results.len());
        let mut replies = Vec::with_capacity(results.len());
        for (ready, result) in batch.into_iter().zip(results) {
            let (message, fresh) = match result {
                Ok(stored) => stored,
                Err(e) => {
                    let _ = ready.reply.send(Err(self.why_not_stored(&ready.req, e).await));
                    continue;
                }
            };
            // Sending a message ends its sender's typing indicator.
            if fresh && self.typing.stop(message.conversation_id, message.sender_id) {
                let _ = self.out.send(Outcome::TypingStopped {
                    conversation_id: message.conversation_id,
                    user_id: message.sender_id,
                });
            }
            announce.push(Stored {
                device: ready.req.device,
                message: message.clone(),
                fresh,
            });
            replies.push((ready.reply, message));
        }
        if let Some(tap) = &self.after_commit {
            let fresh: Vec<&StoredMessage> =
                announce.iter().filter(|s| s.fresh).map(|s| &s.message).collect();
            tap.stored(&fresh);
        }
        let _ = self.out.send(Outcome::Stored(announce));
        for (reply, message) in replies {
            let _ = reply.send(Ok(message));
        }
    }

    /// What to tell the sender of a message the database refused. Its attachment may
    /// have been swept between the check and the insert (the foreign key refuses it):
    /// that is the sender's `attachment_not_found`, not a server fault.
    async fn why_not_stored(&self, req: &SendRequest, e: anyhow::Error) -> DomainError {
        if let Some(id) = req.attachment_id {
            if let Ok(found) = store::attachments::with_uploaders(&self.db, &[id]).await {
                if found.is_empty() {
                    return DomainError::AttachmentNotFound;
                }
            }
        }
        tracing::error!(error = ?e, sender = req.sender_id, "storing a message failed");
        DomainError::Internal(anyhow::anyhow!("message not stored"))
    }

    /// Finds each send's conversation, creating first direct conversations, and answers
    /// the sends that may not go ahead. Keeps the rest in order.
    async fn resolve(
        &mut self,
        batch: Vec<(SendRequest, Reply)>,
    ) -> Result<Vec<Ready>, (anyhow::Error, Vec<(SendRequest, Reply)>)> {
        let unknown: Vec<i64> = batch
            .iter()
            .filter_map(|(r, _)| match r.target {
                SendTarget::Direct(to) if !self.known_users.contains(&to) => Some(to),
                _ => None,
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if !unknown.is_empty() {
            match store::users::existing_ids(&self.db, &unknown).await {
                Ok(found) => self.known_users.extend(found),
                Err(e) => return Err((e, batch)),
            }
        }
        // In key order: two nodes creating the same chats at once then wait on each
        // other's rows in one order, and cannot deadlock.
        let missing: Vec<(i64, i64)> = batch
            .iter()
            .filter_map(|(r, _)| match r.target {
                SendTarget::Direct(to) if self.known_users.contains(&to) => {
                    Some((r.sender_id.min(to), r.sender_id.max(to)))
                }
                _ => None,
            })
            .filter(|pair| !self.pairs.contains_key(pair))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if !missing.is_empty() {
            match self.create_direct(&missing).await {
                Ok(created) => {
                    for ((a, b), (conversation_id, new)) in created {
                        self.pairs.insert((a, b), conversation_id);
                        let _ = self.out.send(Outcome::Joined {
                            conversation_id,
                            user_ids: vec![a, b],
                            // A new conversation has no message yet; of an existing one
                            // (made by another node) nothing certain is known here.
                            since: new.then_some(0),
                        });
                    }
                }
                Err(e) => return Err((e, batch)),
            }
        }
        let claimed: Vec<(i64, i64)> = batch
            .iter()
            .filter_map(|(r, _)| match r.target {
                SendTarget::Conversation(c) => Some((c, r.sender_id)),
                SendTarget::Direct(_) => None,
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let allowed = match store::messages::open_memberships(&self.db, &claimed).await {
            Ok(allowed) => allowed,
            Err(e) => return Err((e, batch)),
        };
        // Direct messages never cross a block, whichever way it goes.
        let direct_pairs: Vec<(i64, i64)> = batch
            .iter()
            .filter_map(|(r, _)| match r.target {
                SendTarget::Direct(to) => Some((r.sender_id, to)),
                SendTarget::Conversation(c) => allowed
                    .get(&(c, r.sender_id))
                    .copied()
                    .flatten()
                    .map(|o| (r.sender_id, o)),
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let blocked = match store::blocks::between(&self.db, &direct_pairs).await {
            Ok(blocked) => blocked,
            Err(e) => return Err((e, batch)),
        };
        let replied: Vec<i64> = batch
            .iter()
            .filter_map(|(r, _)| r.reply_to)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let quotes = match store::messages::reply_targets(&self.db, &replied).await {
            Ok(quotes) => quotes,
            Err(e) => return Err((e, batch)),
        };
        // Envelopes of encrypted messages go to current members only.
        let addressed: Vec<(i64, i64)> = batch
            .iter()
            .filter_map(|(r, _)| match (&r.encrypted, r.target) {
                (Some(e), SendTarget::Conversation(c)) => Some(e.users().into_iter().map(move |u| (c, u))),
                _ => None,
            })
            .flatten()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let addressed = match store::messages::open_memberships(&self.db, &addressed).await {
            Ok(members) => members,
            Err(e) => return Err((e, batch)),
        };
        let attached: Vec<i64> = batch
            .iter()
            .filter_map(|(r, _)| r.attachment_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let attachments = match store::attachments::with_uploaders(&self.db, &attached).await {
            Ok(attachments) => attachments,
            Err(e) => return Err((e, batch)),
        };
        Ok(batch
            .into_iter()
            .filter_map(|(req, reply)| {
                let conversation = match req.target {
                    SendTarget::Direct(to) if !self.known_users.contains(&to) => {
                        Err(DomainError::UnknownRecipient)
                    }
                    SendTarget::Direct(to) => self
                        .pairs
                        .get(&(req.sender_id.min(to), req.sender_id.max(to)))
                        .copied()
                        .ok_or(DomainError::ConversationNotFound),
                    SendTarget::Conversation(c) if allowed.contains_key(&(c, req.sender_id)) => Ok(c),
                    SendTarget::Conversation(_) => Err(DomainError::ConversationNotFound),
                };
                let other = match req.target {
                    SendTarget::Direct(to) => Some(to),
                    SendTarget::Conversation(c) => allowed.get(&(c, req.sender_id)).copied().flatten(),
                };
                let conversation = conversation.and_then(|c| match other {
                    Some(other) if blocked.contains(&(req.sender_id, other)) => Err(DomainError::Blocked),
                    _ => Ok(c),
                });
                // A reply quotes a message of the same conversation, and nothing else.
                let quoted = conversation.and_then(|c| match req.reply_to {
                    None => Ok((c, None)),
                    Some(id) => match quotes.get(&id) {
                        Some((in_conversation, quote)) if *in_conversation == c => {
                            Ok((c, Some(quote.clone())))
                        }
                        _ => Err(DomainError::InvalidInput(
                            "reply_to is not a message of this conversation".into(),
                        )),
                    },
                });
                let quoted = quoted.and_then(|(c, quote)| match &req.encrypted {
                    None => Ok((c, quote)),
                    Some(envelopes) => envelopes
                        .all_for_members(|u| match req.target {
                            SendTarget::Direct(to) => u == to || u == req.sender_id,
                            SendTarget::Conversation(c) => addressed.contains_key(&(c, u)),
                        })
                        .map(|()| (c, quote)),
                });
                // Only its uploader sends an attachment; to anyone else it does not exist.
                let attached = quoted.and_then(|(c, quote)| match req.attachment_id {
                    None => Ok((c, quote, None)),
                    Some(id) => match attachments.get(&id) {
                        Some((uploader, a)) if *uploader == req.sender_id => Ok((c, quote, Some(a.clone()))),
                        _ => Err(DomainError::AttachmentNotFound),
                    },
                });
                match attached {
                    Ok((conversation_id, quote, attachment)) => Some(Ready {
                        req,
                        reply,
                        conversation_id,
                        quote,
                        attachment,
                    }),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        None
                    }
                }
            })
            .collect())
    }

    /// First messages: the conversations are committed on their own (a batch that then
    /// fails leaves an empty conversation, never a half-stored message).
    async fn create_direct(&self, pairs: &[(i64, i64)]) -> anyhow::Result<Vec<((i64, i64), (i64, bool))>> {
        let now = store::now();
        let txn = store::begin_write(&self.db).await?;
        let mut created = Vec::with_capacity(pairs.len());
        for &(a, b) in pairs {
            created.push((
                (a, b),
                store::messages::direct_conversation(&txn, a, b, now).await?,
            ));
        }
        txn.commit().await?;
        Ok(created)
    }

    /// Stores the batch's new messages; returns every request's message and whether it is new.
    async fn try_store(&mut self, batch: &[Ready]) -> anyhow::Result<Vec<(StoredMessage, bool)>> {
        let key = |req: &SendRequest| {
            req.client_msg_id
                .as_ref()
                .map(|c| (req.sender_id, c.as_str().to_owned()))
        };
        let keys: Vec<(i64, String)> = batch
            .iter()
            .filter_map(|r| key(&r.req))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let existing = store::messages::find_by_client_ids(&self.db, &keys).await?;

        enum Fate {
            Existing(StoredMessage),
            New(usize),
            SameAs(usize),
        }
        let mut first_row = HashMap::new();
        let mut rows = Vec::with_capacity(batch.len());
        let mut quotes = Vec::with_capacity(batch.len());
        let mut fates = Vec::with_capacity(batch.len());
        for ready in batch {
            let k = key(&ready.req);
            if let Some(k) = &k {
                if let Some(m) = existing.get(k) {
                    fates.push(Fate::Existing(m.clone()));
                    continue;
                }
                if let Some(row) = first_row.get(k) {
                    fates.push(Fate::SameAs(*row));
                    continue;
                }
            }
            if let Some(k) = k {
                first_row.insert(k, rows.len());
            }
            fates.push(Fate::New(rows.len()));
            rows.push(NewMessage {
                conversation_id: ready.conversation_id,
                sender_id: ready.req.sender_id,
                content: ready.req.content.clone().into_inner(),
                client_msg_id: ready.req.client_msg_id.as_ref().map(|c| c.as_str().to_owned()),
                reply_to_id: ready.req.reply_to,
                envelopes: ready.req.encrypted.as_ref().map(|e| e.to_json()),
                sender_device_id: ready.req.encrypted.as_ref().map(|e| e.sender_device_id()),
                attachment_id: ready.req.attachment_id,
            });
            quotes.push((ready.quote.clone(), ready.attachment.clone()));
        }
        let stored = if rows.is_empty() {
            Vec::new()
        } else {
            self.write(rows, quotes).await?
        };
        Ok(fates
            .into_iter()
            .map(|f| match f {
                Fate::Existing(m) => (m, false),
                Fate::New(i) => (stored[i].clone(), true),
                Fate::SameAs(i) => (stored[i].clone(), false),
            })
            .collect())
    }

    async fn write(
        &mut self,
        rows: Vec<NewMessage>,
        quotes: Vec<(Option<Quote>, Option<Attachment>)>,
    ) -> anyhow::Result<Vec<StoredMessage>> {
        let started = std::time::Instant::now();
        let now = store::now();
        let keys: Vec<(i64, i64)> = rows.iter().map(|m| (m.conversation_id, m.sender_id)).collect();
        let plan = BatchPlan::new(&keys);
        let landed = match self.db.get_database_backend() {
            DbBackend::Postgres => store::messages_pg::write_batch(&self.db, &plan, &rows, now).await?,
            _ => store::messages_sqlite::write_batch(&self.db, &plan, &rows, now).await?,
        };
        tracing::debug!(
            messages = rows.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "batch committed"
        );
        histogram!(monitoring::WRITER_COMMIT).record(started.elapsed().as_secs_f64());
        histogram!(monitoring::WRITER_BATCH_SIZE).record(rows.len() as f64);
        counter!(monitoring::MESSAGES_STORED).increment(rows.len() as u64);
        Ok(rows
            .into_iter()
            .zip(landed)
            .zip(quotes)
            .map(
                |((m, (id, seq, version)), (reply_to, attachment))| StoredMessage {
                    id,
                    conversation_id: m.conversation_id,
                    seq,
                    sender_id: m.sender_id,
                    content: m.content,
                    sent_at: now,
                    version,
                    reply_to,
                    envelopes: m.envelopes,
                    sender_device_id: m.sender_device_id,
                    attachment,
                },
            )
            .collect())
    }

    /// Moves the delivered positions of members whose devices got messages, and tells
    /// senders about messages that have now reached every other member.
    async fn apply_reached(&mut self) {
        if self.reached.is_empty() {
            return;
        }
        let moves = std::mem::take(&mut self.reached);
        let now = store::now();
        let applied = async {
            let txn = store::begin_write(&self.db).await?;
            let moved = positions::advance(&txn, Position::Delivered, &moves, now).await?;
            let mut conversations: Vec<i64> = moved.iter().map(|m| m.conversation_id).collect();
            conversations.sort_unstable();
            conversations.dedup();
            let settled = positions::settle(&txn, Position::Delivered, &conversations, now).await?;
            txn.commit().await?;
            anyhow::Ok(settled)
        }
        .await;
        match applied {
            Ok(settled) if !settled.is_empty() => {
                let _ = self.out.send(Outcome::Delivered {
                    messages: settled,
                    at: now,
                });
            }
            Ok(_) => {}
            // The positions stay behind: the messages are handed over again on the next
            // connect (at least once), never lost.
            Err(e) => tracing::error!(error = ?e, moves = moves.len(), "moving delivered positions failed"),
        }
    }

    async fn catch_up(&mut self, user_id: i64, device: String, first: bool) {
        let page = async {
            // Rooms (with each conversation's newest seq) before the queue: the device
            // then holds everything up to those seqs once the queue is handed over, even
            // when another node stores a message between the two reads (that message is
            // in the queue, or relayed later; never skipped as "held").
            let rooms = store::delivery::open_conversations(&self.db, user_id).await?;
            let (messages, more) = store::delivery::queue(&self.db, user_id, self.catch_up_limit).await?;
            anyhow::Ok((messages, (!more).then_some(rooms)))
        }
        .await;
        let (messages, rooms) = match page {
            Ok(page) => page,
            Err(e) => {
                tracing::error!(error = ?e, user_id, "reading the offline queue failed");
                let _ = self.out.send(Outcome::CatchUpFailed { device });
                return;
            }
        };
        let arrival = if first {
            self.presence.connect(user_id, &device).await
        } else {
            Arrival::Unchanged
        };
        let _ = self.out.send(Outcome::CatchUp {
            device,
            user_id,
            messages,
            rooms,
        });
        if arrival == Arrival::CameOnline {
            self.announce_presence(user_id, None).await;
        }
    }

    async fn disconnect(&mut self, user_id: i64, device: String) {
        let Departure::Lingering { generation } =
            self.presence.disconnect(user_id, &device, Utc::now()).await
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
        let Some(last_seen) = self.presence.expire_anywhere(user_id, generation).await else {
            return;
        };
        self.announce_presence(user_id, Some(last_seen)).await;
    }

    /// Hands the announcement to the presence task: its queries (last seen, contacts)
    /// must not hold up sends when a thousand users go offline at once.
    async fn announce_presence(&mut self, user_id: i64, last_seen: Option<DateTime<Utc>>) {
        let _ = self.announcer.send((user_id, last_seen));
    }
}

/// Announces presence changes one after another, in the writer's order, off the
/// writer's queue: stores `last_seen_at` for an offline user, then tells the people
/// they have written to (group members are not told: a member of a 1,000-member group
/// would fan out a thousand events).
async fn announce_presence(
    db: DatabaseConnection,
    out: mpsc::UnboundedSender<Outcome>,
    mut changes: mpsc::UnboundedReceiver<(i64, Option<DateTime<Utc>>)>,
) {
    while let Some((user_id, last_seen)) = changes.recv().await {
        if let Some(at) = last_seen
            && let Err(e) = store::users::touch_last_seen(&db, user_id, at).await
        {
            tracing::warn!(error = ?e, user_id, "storing last_seen_at failed");
        }
        match store::conversations::direct_contacts(&db, user_id).await {
            Ok(contacts) if !contacts.is_empty() => {
                let _ = out.send(Outcome::Presence {
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
