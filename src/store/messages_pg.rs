//! The PostgreSQL write path: a whole batch in one statement.
//!
//! Counter bump (with the list's last-message preview), numbering, insert and the
//! senders' `sent_since_read` run as data-modifying CTEs, so a batch costs one round
//! trip and one implicit transaction. The counter rows are locked and bumped in the
//! same atomic statement that inserts the messages, so seqs stay gap-free and ordered
//! with several writers. What the statement does is the shared [`BatchPlan`].
use std::{collections::HashMap, sync::LazyLock};

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, FromQueryResult};

use super::{
    messages::{Landed, NewMessage},
    stmt,
};
use crate::domain::messaging::plan::BatchPlan;

// The counter rows are locked in id order before they are bumped, so two writers (two
// nodes) whose batches touch the same conversations queue behind each other instead of
// deadlocking.
const COUNTED: &str = "\
WITH counts AS (
  SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::text[]) AS k(c, n, last_u, last_t)
),
locked AS (
  SELECT id FROM conversations WHERE id = ANY($1::int8[]) ORDER BY id FOR UPDATE
),
bumped AS (
  UPDATE conversations SET last_seq = conversations.last_seq + counts.n,
    version = conversations.version + counts.n, updated_at = $9,
    last_sender_id = counts.last_u, last_content = counts.last_t, last_sent_at = $9
  FROM counts JOIN locked ON locked.id = counts.c WHERE conversations.id = counts.c
  RETURNING conversations.id, conversations.last_seq - counts.n AS base,
    conversations.version - counts.n AS vbase
),";

const SENDERS: &str = "\
senders AS (
  UPDATE conversation_members m SET sent_since_read = m.sent_since_read + s.n, has_written = true
  FROM unnest($11::int8[], $12::int8[], $13::int8[]) AS s(c, u, n)
  WHERE m.conversation_id = s.c AND m.user_id = s.u
)
SELECT id, conversation_id, seq, version FROM inserted";

/// Plain text messages, the common batch: no replies, envelopes or attachments, so
/// neither their four arrays nor their columns are sent or read.
static PLAIN_BATCH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{COUNTED}
numbered AS (
  SELECT r.*, b.base + r.pos AS seq, b.vbase + r.pos AS version
  FROM unnest($5::int8[], $6::int8[], $7::text[], $8::text[], $10::int8[]) WITH ORDINALITY AS r(c, u, k, t, pos, o)
  JOIN bumped b ON b.id = r.c
),
inserted AS (
  INSERT INTO messages (conversation_id, seq, sender_id, client_msg_id, content, sent_at, created_at, version)
  SELECT c, seq, u, NULLIF(k, ''), t, $9, $9, version
  FROM numbered ORDER BY o
  RETURNING id, conversation_id, seq, version
),
{SENDERS}"
    )
});

/// Any batch, with every column a message may carry.
static FULL_BATCH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{COUNTED}
numbered AS (
  SELECT r.*, b.base + r.pos AS seq, b.vbase + r.pos AS version
  FROM unnest($5::int8[], $6::int8[], $7::text[], $8::text[], $10::int8[], $14::int8[], $15::text[],
    $16::int8[], $17::int8[]) WITH ORDINALITY AS r(c, u, k, t, pos, reply, env, dev, attachment, o)
  JOIN bumped b ON b.id = r.c
),
inserted AS (
  INSERT INTO messages (conversation_id, seq, sender_id, client_msg_id, content, sent_at, created_at,
    version, reply_to_id, encrypted, envelopes, sender_device_id, attachment_id)
  SELECT c, seq, u, NULLIF(k, ''), t, $9, $9, version, NULLIF(reply, 0), env <> '', NULLIF(env, ''),
    NULLIF(dev, 0), NULLIF(attachment, 0)
  FROM numbered ORDER BY o
  RETURNING id, conversation_id, seq, version
),
{SENDERS}"
    )
});

#[derive(FromQueryResult)]
struct Inserted {
    id: i64,
    conversation_id: i64,
    seq: i64,
    version: i64,
}

/// Stores `batch` as `plan` says; returns each message's `(id, seq, version)` in batch order.
pub async fn write_batch(
    db: &DatabaseConnection,
    plan: &BatchPlan,
    batch: &[NewMessage],
    now: DateTime<Utc>,
) -> anyhow::Result<Landed> {
    let mut values: Vec<sea_orm::Value> = vec![
        plan.touched
            .iter()
            .map(|t| t.conversation_id)
            .collect::<Vec<_>>()
            .into(),
        plan.touched.iter().map(|t| t.count).collect::<Vec<_>>().into(),
        plan.touched
            .iter()
            .map(|t| batch[t.newest].sender_id)
            .collect::<Vec<_>>()
            .into(),
        plan.touched
            .iter()
            .map(|t| batch[t.newest].content.clone())
            .collect::<Vec<_>>()
            .into(),
        batch.iter().map(|m| m.conversation_id).collect::<Vec<_>>().into(),
        batch.iter().map(|m| m.sender_id).collect::<Vec<_>>().into(),
        // An empty key stands for "none" (a real client_msg_id is never empty).
        batch
            .iter()
            .map(|m| m.client_msg_id.clone().unwrap_or_default())
            .collect::<Vec<_>>()
            .into(),
        batch.iter().map(|m| m.content.clone()).collect::<Vec<_>>().into(),
        now.into(),
        plan.positions.clone().into(),
        plan.senders
            .iter()
            .map(|s| s.conversation_id)
            .collect::<Vec<_>>()
            .into(),
        plan.senders
            .iter()
            .map(|s| s.sender_id)
            .collect::<Vec<_>>()
            .into(),
        plan.senders.iter().map(|s| s.count).collect::<Vec<_>>().into(),
    ];
    let plain = batch.iter().all(NewMessage::is_plain);
    if !plain {
        values.extend([
            // 0 stands for "no reply" (ids start at 1).
            batch
                .iter()
                .map(|m| m.reply_to_id.unwrap_or(0))
                .collect::<Vec<_>>()
                .into(),
            // An empty text stands for "not encrypted" (envelopes are a JSON array).
            batch
                .iter()
                .map(|m| m.envelopes.clone().unwrap_or_default())
                .collect::<Vec<_>>()
                .into(),
            // 0 stands for "no device" (device ids start at 1).
            batch
                .iter()
                .map(|m| m.sender_device_id.unwrap_or(0))
                .collect::<Vec<_>>()
                .into(),
            // 0 stands for "no attachment".
            batch
                .iter()
                .map(|m| m.attachment_id.unwrap_or(0))
                .collect::<Vec<_>>()
                .into(),
        ]);
    }
    let sql = if plain { &*PLAIN_BATCH } else { &*FULL_BATCH };
    let rows = Inserted::find_by_statement(stmt(db, sql, values)).all(db).await?;
    let ids: HashMap<(i64, i64), (i64, i64)> = rows
        .into_iter()
        .map(|r| ((r.conversation_id, r.seq), (r.id, r.version)))
        .collect();
    landed(plan, batch, &ids)
}

/// Pairs each message with its row: within a conversation the seqs follow batch order,
/// so the n-th message of a conversation has its n-th lowest new seq.
fn landed(
    plan: &BatchPlan,
    batch: &[NewMessage],
    ids: &HashMap<(i64, i64), (i64, i64)>,
) -> anyhow::Result<Landed> {
    let mut lowest: HashMap<i64, i64> = HashMap::new();
    for &(c, seq) in ids.keys() {
        let e = lowest.entry(c).or_insert(seq);
        *e = (*e).min(seq);
    }
    batch
        .iter()
        .zip(&plan.positions)
        .map(|(m, pos)| {
            let base = lowest
                .get(&m.conversation_id)
                .ok_or_else(|| anyhow::anyhow!("conversation {}: no rows returned", m.conversation_id))?
                - 1;
            let seq = base + pos;
            let (id, version) = ids
                .get(&(m.conversation_id, seq))
                .ok_or_else(|| anyhow::anyhow!("message {}:{seq} not returned", m.conversation_id))?;
            Ok((*id, seq, *version))
        })
        .collect()
}
