//! The PostgreSQL write path: a whole batch in one statement.
//!
//! Counter bump (with the list's last-message preview), numbering, insert and member
//! updates run as data-modifying CTEs, so a batch costs one round trip and one implicit
//! transaction instead of five round trips. The semantics are those of
//! [`super::messages_sqlite::write_batch`]: the counter rows are locked and bumped in the
//! same atomic statement that inserts the messages, so seqs stay gap-free and ordered
//! with several writers.
use std::collections::HashMap;

use chrono::Utc;
use sea_orm::{DatabaseConnection, FromQueryResult, TransactionTrait};

use super::{
    messages::{NewMessage, PairCache, StoredMessage, direct_conversation},
    stmt,
};

// Per-conversation counts, previews and each message's position within its
// conversation are worked out in Rust: the statement then needs no sorts or window
// functions, only the joins.
const WRITE_BATCH: &str = "\
WITH counts AS (
  SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::text[]) AS k(c, n, last_u, last_t)
),
bumped AS (
  UPDATE conversations SET last_seq = conversations.last_seq + counts.n, updated_at = $11,
    last_sender_id = counts.last_u, last_content = counts.last_t, last_sent_at = $11
  FROM counts WHERE conversations.id = counts.c
  RETURNING conversations.id, conversations.last_seq - counts.n AS base
),
numbered AS (
  SELECT r.*, b.base + r.pos AS seq
  FROM unnest($5::int8[], $6::int8[], $7::int8[], $8::text[], $9::text[], $10::bool[], $12::int8[])
    WITH ORDINALITY AS r(c, u, rcpt, k, t, d, pos, o)
  JOIN bumped b ON b.id = r.c
),
inserted AS (
  INSERT INTO messages (conversation_id, seq, sender_id, client_msg_id, content, sent_at, delivered_at, created_at)
  SELECT c, seq, u, NULLIF(k, ''), t, $11, CASE WHEN d THEN $11::timestamptz END, $11 FROM numbered ORDER BY o
  RETURNING id, conversation_id, seq
),
members AS (
  UPDATE conversation_members m
  SET unread_count = m.unread_count + x.n, delivered_seq = GREATEST(m.delivered_seq, x.delivered)
  FROM (SELECT c, rcpt, count(*) AS n, COALESCE(max(seq) FILTER (WHERE d), 0) AS delivered
        FROM numbered GROUP BY c, rcpt) x
  WHERE m.conversation_id = x.c AND m.user_id = x.rcpt
)
SELECT id, conversation_id, seq FROM inserted";

/// What the statement needs per conversation: how many messages it gets and the newest
/// one (its list preview); and per message, its 1-based position in its conversation.
struct Shape {
    conversations: Vec<i64>,
    counts: Vec<i64>,
    last_senders: Vec<i64>,
    last_contents: Vec<String>,
    positions: Vec<i64>,
}

fn shape(batch: &[NewMessage], conversation_of: &[i64]) -> Shape {
    let mut index: HashMap<i64, usize> = HashMap::new();
    let mut conversations = Vec::new();
    let mut counts = Vec::new();
    // Per conversation, the batch index of its newest message: copied once, at the end.
    let mut newest = Vec::new();
    let mut positions = Vec::with_capacity(batch.len());
    for (at, conversation) in conversation_of.iter().enumerate() {
        let i = *index.entry(*conversation).or_insert_with(|| {
            conversations.push(*conversation);
            counts.push(0);
            newest.push(at);
            conversations.len() - 1
        });
        counts[i] += 1;
        positions.push(counts[i]);
        newest[i] = at;
    }
    Shape {
        conversations,
        counts,
        last_senders: newest.iter().map(|&at| batch[at].sender_id).collect(),
        last_contents: newest.iter().map(|&at| batch[at].content.clone()).collect(),
        positions,
    }
}

#[derive(FromQueryResult)]
struct Inserted {
    id: i64,
    conversation_id: i64,
    seq: i64,
}

/// Stores `batch` in order; returns the stored messages in the same order.
pub async fn write_batch(
    db: &DatabaseConnection,
    cache: &PairCache,
    batch: &[NewMessage],
) -> anyhow::Result<Vec<StoredMessage>> {
    let now = Utc::now();
    let pair = |m: &NewMessage| (m.sender_id.min(m.recipient_id), m.sender_id.max(m.recipient_id));
    let missing: Vec<(i64, i64)> = {
        let known = cache.lock().expect("pair cache poisoned");
        let mut missing: Vec<_> = batch
            .iter()
            .map(pair)
            .filter(|p| !known.contains_key(p))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        missing
    };
    if !missing.is_empty() {
        // First messages: create the conversations (committed on their own; a batch that
        // then fails leaves an empty conversation, never a half-stored message).
        let txn = db.begin().await?;
        let mut created = Vec::with_capacity(missing.len());
        for (a, b) in missing {
            created.push(((a, b), direct_conversation(&txn, a, b, now).await?));
        }
        txn.commit().await?;
        cache.lock().expect("pair cache poisoned").extend(created);
    }
    let conversation_of: Vec<i64> = {
        let known = cache.lock().expect("pair cache poisoned");
        batch
            .iter()
            .map(|m| {
                known
                    .get(&pair(m))
                    .copied()
                    .ok_or_else(|| anyhow::anyhow!("no conversation for {:?}", pair(m)))
            })
            .collect::<anyhow::Result<_>>()?
    };

    let shape = shape(batch, &conversation_of);
    let rows = Inserted::find_by_statement(stmt(
        db,
        WRITE_BATCH,
        [
            shape.conversations.into(),
            shape.counts.into(),
            shape.last_senders.into(),
            shape.last_contents.into(),
            conversation_of.clone().into(),
            batch.iter().map(|m| m.sender_id).collect::<Vec<_>>().into(),
            batch.iter().map(|m| m.recipient_id).collect::<Vec<_>>().into(),
            // An empty key stands for "none" (a real client_msg_id is never empty).
            batch
                .iter()
                .map(|m| m.client_msg_id.clone().unwrap_or_default())
                .collect::<Vec<_>>()
                .into(),
            batch.iter().map(|m| m.content.clone()).collect::<Vec<_>>().into(),
            batch.iter().map(|m| m.deliver_now).collect::<Vec<_>>().into(),
            now.into(),
            shape.positions.into(),
        ],
    ))
    .all(db)
    .await?;

    // Within a conversation, seqs follow batch order: hand them out in that order.
    let mut by_conversation: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
    for r in rows {
        by_conversation
            .entry(r.conversation_id)
            .or_default()
            .push((r.seq, r.id));
    }
    for list in by_conversation.values_mut() {
        list.sort_unstable_by(|a, b| b.cmp(a)); // popped from the end: smallest first
    }
    batch
        .iter()
        .zip(conversation_of)
        .map(|(m, conversation_id)| {
            let (seq, id) = by_conversation
                .get_mut(&conversation_id)
                .and_then(Vec::pop)
                .ok_or_else(|| {
                    anyhow::anyhow!("conversation {conversation_id}: fewer rows returned than sent")
                })?;
            Ok(StoredMessage {
                id,
                conversation_id,
                seq,
                sender_id: m.sender_id,
                recipient_id: m.recipient_id,
                content: m.content.clone(),
                sent_at: now,
                delivered_at: m.deliver_now.then_some(now),
            })
        })
        .collect()
}
