//! The message write path: one transaction per batch of sends.
//!
//! Per-conversation `seq` is assigned here by bumping `conversations.last_seq` inside the
//! batch's transaction, so it is gap-free and unique even with several writers (the row
//! lock on the counter serialises them on PostgreSQL).
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::messages;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult};

use super::stmt;

/// A validated message about to be stored.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub sender_id: i64,
    pub recipient_id: i64,
    pub content: String,
    pub client_msg_id: Option<String>,
    /// Whether a device of the recipient is connected, so the message counts as delivered.
    pub deliver_now: bool,
}

/// A message as committed.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub id: i64,
    pub conversation_id: i64,
    pub seq: i64,
    pub sender_id: i64,
    pub recipient_id: i64,
    pub content: String,
    pub sent_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

#[derive(FromQueryResult)]
struct IdRow {
    id: i64,
}

#[derive(FromQueryResult)]
struct CounterRow {
    id: i64,
    last_seq: i64,
}

/// `($k, $k+1), …` for rows of integers, numbered after the `leading` values, which come
/// first in the returned values. `VALUES` columns are named column1, column2… on both
/// SQLite and PostgreSQL.
fn values_list<const N: usize>(
    leading: Vec<sea_orm::Value>,
    rows: impl Iterator<Item = [i64; N]>,
) -> (String, Vec<sea_orm::Value>) {
    let mut values = leading;
    let mut tuples = Vec::new();
    for row in rows {
        let start = values.len() + 1;
        tuples.push(format!(
            "({})",
            (start..start + N)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        values.extend(row.map(sea_orm::Value::from));
    }
    (tuples.join(", "), values)
}

/// Remembers `(user_a, user_b) → conversation id`. A direct conversation's id never
/// changes once created, so caching it is safe across nodes; only committed ids go in.
pub type PairCache = std::sync::Mutex<HashMap<(i64, i64), i64>>;

/// The direct conversation of two users, created (with both members) if missing.
/// Concurrent creators converge on one row through the pair's unique index.
pub async fn direct_conversation<C: ConnectionTrait>(
    db: &C,
    x: i64,
    y: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<i64> {
    let (a, b) = (x.min(y), x.max(y));
    db.execute_raw(stmt(
        db,
        "INSERT INTO conversations (kind, user_a, user_b, created_at, updated_at, last_seq) \
         VALUES ('direct', $1, $2, $3, $3, 0) ON CONFLICT (user_a, user_b) DO NOTHING",
        [a.into(), b.into(), now.into()],
    ))
    .await?;
    let row = IdRow::find_by_statement(stmt(
        db,
        "SELECT id FROM conversations WHERE user_a = $1 AND user_b = $2",
        [a.into(), b.into()],
    ))
    .one(db)
    .await?
    .ok_or_else(|| anyhow::anyhow!("direct conversation ({a}, {b}) vanished after upsert"))?;
    db.execute_raw(stmt(
        db,
        "INSERT INTO conversation_members (conversation_id, user_id, role, joined_at, delivered_seq, read_seq) \
         VALUES ($1, $2, 'member', $4, 0, 0), ($1, $3, 'member', $4, 0, 0) \
         ON CONFLICT (conversation_id, user_id) DO NOTHING",
        [row.id.into(), a.into(), b.into(), now.into()],
    ))
    .await?;
    Ok(row.id)
}

/// A batch whose conversations exist and whose seqs are taken (the counter rows stay
/// locked until the transaction ends).
pub struct Reservation {
    now: DateTime<Utc>,
    conversation_of: Vec<i64>,
    first_seq: HashMap<i64, i64>,
    /// Pairs whose conversation this batch created or looked up: cache them after commit.
    pub new_pairs: Vec<((i64, i64), i64)>,
}

/// First half of a batch write: finds or creates each message's conversation and takes
/// its seqs from the counter, in one statement for all conversations.
pub async fn reserve<C: ConnectionTrait>(
    txn: &C,
    cache: &PairCache,
    batch: &[NewMessage],
) -> anyhow::Result<Reservation> {
    let now = Utc::now();
    let mut conversation_of = Vec::with_capacity(batch.len());
    let mut new_pairs = Vec::new();
    // Conversations in order of first appearance, with how many messages each receives.
    let mut counts: Vec<(i64, i64)> = Vec::new();
    for m in batch {
        let pair = (m.sender_id.min(m.recipient_id), m.sender_id.max(m.recipient_id));
        let cached = cache.lock().expect("pair cache poisoned").get(&pair).copied();
        let conv = match cached.or_else(|| new_pairs.iter().find(|(p, _)| *p == pair).map(|(_, c)| *c)) {
            Some(conv) => conv,
            None => {
                let conv = direct_conversation(txn, pair.0, pair.1, now).await?;
                new_pairs.push((pair, conv));
                conv
            }
        };
        conversation_of.push(conv);
        match counts.iter_mut().find(|(c, _)| *c == conv) {
            Some((_, n)) => *n += 1,
            None => counts.push((conv, 1)),
        }
    }

    // One statement bumps every counter the batch touches; the row locks it takes order
    // concurrent writers (other nodes) per conversation.
    let (tuples, values) = values_list(vec![now.into()], counts.iter().map(|(conv, n)| [*conv, *n]));
    let bumped = CounterRow::find_by_statement(stmt(
        txn,
        &format!(
            "UPDATE conversations SET last_seq = conversations.last_seq + v.column2, updated_at = $1 \
             FROM (VALUES {tuples}) AS v WHERE conversations.id = v.column1 \
             RETURNING conversations.id, conversations.last_seq"
        ),
        values,
    ))
    .all(txn)
    .await?;
    let mut first_seq: HashMap<i64, i64> = HashMap::with_capacity(counts.len());
    for (conv, n) in &counts {
        let row = bumped
            .iter()
            .find(|r| r.id == *conv)
            .ok_or_else(|| anyhow::anyhow!("conversation {conv} vanished while sending"))?;
        first_seq.insert(*conv, row.last_seq - n + 1);
    }
    Ok(Reservation {
        now,
        conversation_of,
        first_seq,
        new_pairs,
    })
}

/// Second half: inserts the messages with their seqs and moves delivered positions.
/// Returns the stored messages in batch order.
pub async fn insert<C: ConnectionTrait>(
    txn: &C,
    batch: &[NewMessage],
    reservation: &Reservation,
) -> anyhow::Result<Vec<StoredMessage>> {
    let now = reservation.now;
    let mut next_seq = reservation.first_seq.clone();

    let mut stored = Vec::with_capacity(batch.len());
    for (m, conv) in batch.iter().zip(&reservation.conversation_of) {
        let seq = next_seq.get_mut(conv).expect("every conversation was counted");
        stored.push(StoredMessage {
            id: 0,
            conversation_id: *conv,
            seq: *seq,
            sender_id: m.sender_id,
            recipient_id: m.recipient_id,
            content: m.content.clone(),
            sent_at: now,
            delivered_at: m.deliver_now.then_some(now),
        });
        *seq += 1;
    }

    let ids = match txn.get_database_backend() {
        DbBackend::Postgres => insert_unnest(txn, &stored, batch, now).await?,
        _ => insert_values(txn, &stored, batch, now).await?,
    };
    for s in &mut stored {
        s.id = *ids.get(&(s.conversation_id, s.seq)).ok_or_else(|| {
            anyhow::anyhow!("inserted message {}:{} not returned", s.conversation_id, s.seq)
        })?;
    }
    advance_members(txn, &stored).await?;
    Ok(stored)
}

#[derive(FromQueryResult)]
struct InsertedRow {
    id: i64,
    conversation_id: i64,
    seq: i64,
}

/// PostgreSQL: one statement of fixed text (prepared once) taking the batch as arrays.
async fn insert_unnest<C: ConnectionTrait>(
    txn: &C,
    stored: &[StoredMessage],
    batch: &[NewMessage],
    now: DateTime<Utc>,
) -> anyhow::Result<HashMap<(i64, i64), i64>> {
    let conversations: Vec<i64> = stored.iter().map(|s| s.conversation_id).collect();
    let seqs: Vec<i64> = stored.iter().map(|s| s.seq).collect();
    let senders: Vec<i64> = stored.iter().map(|s| s.sender_id).collect();
    // An empty key stands for "none" (a real client_msg_id is never empty).
    let keys: Vec<String> = batch
        .iter()
        .map(|m| m.client_msg_id.clone().unwrap_or_default())
        .collect();
    let contents: Vec<String> = stored.iter().map(|s| s.content.clone()).collect();
    let delivered: Vec<bool> = stored.iter().map(|s| s.delivered_at.is_some()).collect();
    let rows = InsertedRow::find_by_statement(stmt(
        txn,
        "INSERT INTO messages (conversation_id, seq, sender_id, client_msg_id, content, sent_at, delivered_at, created_at) \
         SELECT r.c, r.s, r.u, NULLIF(r.k, ''), r.t, $7, CASE WHEN r.d THEN $7::timestamptz END, $7 \
         FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::bool[]) AS r(c, s, u, k, t, d) \
         RETURNING id, conversation_id, seq",
        [
            conversations.into(),
            seqs.into(),
            senders.into(),
            keys.into(),
            contents.into(),
            delivered.into(),
            now.into(),
        ],
    ))
    .all(txn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ((r.conversation_id, r.seq), r.id))
        .collect())
}

/// SQLite (in-process, so statement size costs little): one multi-row insert.
async fn insert_values<C: ConnectionTrait>(
    txn: &C,
    stored: &[StoredMessage],
    batch: &[NewMessage],
    now: DateTime<Utc>,
) -> anyhow::Result<HashMap<(i64, i64), i64>> {
    let rows = stored.iter().zip(batch).map(|(s, m)| messages::ActiveModel {
        conversation_id: Set(s.conversation_id),
        seq: Set(s.seq),
        sender_id: Set(s.sender_id),
        client_msg_id: Set(m.client_msg_id.clone()),
        content: Set(s.content.clone()),
        sent_at: Set(now),
        delivered_at: Set(s.delivered_at),
        read_at: Set(None),
        created_at: Set(now),
        ..Default::default()
    });
    let inserted = messages::Entity::insert_many(rows)
        .exec_with_returning(txn)
        .await?;
    Ok(inserted
        .into_iter()
        .map(|m| ((m.conversation_id, m.seq), m.id))
        .collect())
}

/// Per recipient of the batch: one more unread message for each, and the delivered
/// position moved to the newest message handed to a device. One statement.
async fn advance_members<C: ConnectionTrait>(txn: &C, stored: &[StoredMessage]) -> anyhow::Result<()> {
    // (conversation, recipient) → (messages, newest delivered seq or 0)
    let mut members: HashMap<(i64, i64), (i64, i64)> = HashMap::new();
    for s in stored {
        let e = members.entry((s.conversation_id, s.recipient_id)).or_default();
        e.0 += 1;
        if s.delivered_at.is_some() {
            e.1 = e.1.max(s.seq);
        }
    }
    if members.is_empty() {
        return Ok(());
    }
    let (tuples, values) = values_list(
        Vec::new(),
        members
            .iter()
            .map(|((conv, user), (n, delivered))| [*conv, *user, *n, *delivered]),
    );
    txn.execute_raw(stmt(
        txn,
        &format!(
            "UPDATE conversation_members SET unread_count = conversation_members.unread_count + v.column3, \
               delivered_seq = CASE WHEN v.column4 > conversation_members.delivered_seq \
                                    THEN v.column4 ELSE conversation_members.delivered_seq END \
             FROM (VALUES {tuples}) AS v \
             WHERE conversation_members.conversation_id = v.column1 AND conversation_members.user_id = v.column2"
        ),
        values,
    ))
    .await?;
    Ok(())
}

/// Moves a member's delivered position forward (never back).
pub async fn advance_delivered<C: ConnectionTrait>(
    db: &C,
    conv: i64,
    user: i64,
    seq: i64,
) -> anyhow::Result<()> {
    db.execute_raw(stmt(
        db,
        "UPDATE conversation_members SET delivered_seq = $1 \
         WHERE conversation_id = $2 AND user_id = $3 AND delivered_seq < $1",
        [seq.into(), conv.into(), user.into()],
    ))
    .await?;
    Ok(())
}

#[derive(FromQueryResult)]
struct ExistingRow {
    id: i64,
    conversation_id: i64,
    seq: i64,
    sender_id: i64,
    client_msg_id: Option<String>,
    content: String,
    sent_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
    user_a: Option<i64>,
    user_b: Option<i64>,
}

/// Messages already stored under these `(sender, client_msg_id)` keys, by key.
pub async fn find_by_client_ids<C: ConnectionTrait>(
    db: &C,
    keys: &[(i64, String)],
) -> anyhow::Result<HashMap<(i64, String), StoredMessage>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let mut values = Vec::with_capacity(keys.len() * 2);
    let mut tuples = Vec::with_capacity(keys.len());
    for (i, (sender, id)) in keys.iter().enumerate() {
        tuples.push(format!(
            "(m.sender_id = ${} AND m.client_msg_id = ${})",
            2 * i + 1,
            2 * i + 2
        ));
        values.push((*sender).into());
        values.push(id.clone().into());
    }
    let rows = ExistingRow::find_by_statement(stmt(
        db,
        &format!(
            "SELECT m.id, m.conversation_id, m.seq, m.sender_id, m.client_msg_id, m.content, m.sent_at, \
                    m.delivered_at, c.user_a, c.user_b \
             FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE {}",
            tuples.join(" OR ")
        ),
        values,
    ))
    .all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let key = (r.sender_id, r.client_msg_id?);
            let recipient_id = if r.user_a == Some(r.sender_id) {
                r.user_b
            } else {
                r.user_a
            }
            .unwrap_or_default();
            let msg = StoredMessage {
                id: r.id,
                conversation_id: r.conversation_id,
                seq: r.seq,
                sender_id: r.sender_id,
                recipient_id,
                content: r.content,
                sent_at: r.sent_at,
                delivered_at: r.delivered_at,
            };
            Some((key, msg))
        })
        .collect())
}

/// Whether `e` is the unique violation of an idempotency key (a concurrent retry won).
pub fn is_duplicate_client_id(e: &anyhow::Error) -> bool {
    e.downcast_ref::<sea_orm::DbErr>()
        .and_then(|e| e.sql_err())
        .is_some_and(
            |e| matches!(e, sea_orm::SqlErr::UniqueConstraintViolation(m) if m.contains("client_msg_id")),
        )
}
