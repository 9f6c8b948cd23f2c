//! Messages: the types of the write path and what both backends' batch writers share
//! (conversation creation, membership checks, idempotency keys). The batch writers
//! themselves are `messages_pg` (one statement) and `messages_sqlite` (one
//! transaction); both render the same [`BatchPlan`](crate::domain::messaging::plan::BatchPlan).
//!
//! Per-conversation `seq` is assigned by bumping `conversations.last_seq` in the same
//! atomic unit that inserts the messages, so it is gap-free and unique even with several
//! writers (the row lock on the counter serialises them).
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult};

use super::stmt;

/// A validated message about to be stored in a conversation its sender belongs to.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub conversation_id: i64,
    pub sender_id: i64,
    pub content: String,
    pub client_msg_id: Option<String>,
    /// A message of the same conversation (checked before the write).
    pub reply_to_id: Option<i64>,
    /// An encrypted message's envelopes (JSON array); its content is empty.
    pub envelopes: Option<String>,
    pub sender_device_id: Option<i64>,
    /// An attachment of the sender (checked before the write).
    pub attachment_id: Option<i64>,
}

impl NewMessage {
    /// Text alone: no reply, envelopes or attachment, the common case. A batch of such
    /// messages is written without those columns (both write paths).
    pub fn is_plain(&self) -> bool {
        self.reply_to_id.is_none()
            && self.envelopes.is_none()
            && self.sender_device_id.is_none()
            && self.attachment_id.is_none()
    }
}

/// A message as committed (also as relayed between nodes).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredMessage {
    pub id: i64,
    pub conversation_id: i64,
    pub seq: i64,
    pub sender_id: i64,
    pub content: String,
    pub sent_at: DateTime<Utc>,
    /// The conversation's version this insert took (the change cursor).
    pub version: i64,
    /// The message this one replies to, quoted.
    pub reply_to: Option<Quote>,
    /// An encrypted message's envelopes (JSON array, relayed as written).
    #[serde(default)]
    pub envelopes: Option<String>,
    /// The device an encrypted message was sent from.
    #[serde(default)]
    pub sender_device_id: Option<i64>,
    /// The attachment it carries.
    #[serde(default)]
    pub attachment: Option<super::attachments::Attachment>,
}

/// A short quote of a replied-to message, as replies carry it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Quote {
    pub message_id: i64,
    pub from_user_id: i64,
    /// The start of the original's text; None once it is deleted.
    pub excerpt: Option<String>,
}

/// Characters of the original a reply quotes.
pub const EXCERPT_CHARS: usize = 100;

impl Quote {
    /// Quotes a message: its first [`EXCERPT_CHARS`] characters, nothing if deleted.
    pub fn of(message_id: i64, from_user_id: i64, content: &str, deleted: bool) -> Quote {
        let excerpt = (!deleted).then(|| match content.char_indices().nth(EXCERPT_CHARS) {
            Some((end, _)) => content[..end].to_owned(),
            None => content.to_owned(),
        });
        Quote {
            message_id,
            from_user_id,
            excerpt,
        }
    }
}

/// Where a batch's messages landed: `(id, seq, version)` per message, in batch order.
pub type Landed = Vec<(i64, i64, i64)>;

#[derive(FromQueryResult)]
struct ReplyTargetRow {
    id: i64,
    conversation_id: i64,
    sender_id: i64,
    content: String,
    deleted_at: Option<DateTime<Utc>>,
}

/// The messages replies name, by id, each with its conversation and quote.
pub async fn reply_targets<C: ConnectionTrait>(
    db: &C,
    ids: &[i64],
) -> anyhow::Result<HashMap<i64, (i64, Quote)>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let placeholders = (1..=ids.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(ReplyTargetRow::find_by_statement(stmt(
        db,
        &format!(
            "SELECT id, conversation_id, sender_id, content, deleted_at FROM messages WHERE id IN ({placeholders})"
        ),
        ids.iter().map(|id| (*id).into()),
    ))
    .all(db)
    .await?
    .into_iter()
    .map(|r| {
        let quote = Quote::of(r.id, r.sender_id, &r.content, r.deleted_at.is_some());
        (r.id, (r.conversation_id, quote))
    })
    .collect())
}

#[derive(FromQueryResult)]
struct IdRow {
    id: i64,
}

/// Remembers `(user_a, user_b) → conversation id`. A direct conversation's id never
/// changes once created, so caching it is safe across nodes; only committed ids go in.
pub type PairCache = std::sync::Mutex<HashMap<(i64, i64), i64>>;

/// The direct conversation of two users, created (with both members) if missing, and
/// whether this call created it. Concurrent creators converge on one row through the
/// pair's unique index.
pub async fn direct_conversation<C: ConnectionTrait>(
    db: &C,
    x: i64,
    y: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<(i64, bool)> {
    let (a, b) = (x.min(y), x.max(y));
    let inserted = db
        .execute_raw(stmt(
            db,
            "INSERT INTO conversations (kind, user_a, user_b, created_at, updated_at, last_seq) \
         VALUES ('direct', $1, $2, $3, $3, 0) ON CONFLICT (user_a, user_b) DO NOTHING",
            [a.into(), b.into(), now.into()],
        ))
        .await?
        .rows_affected()
        == 1;
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
    Ok((row.id, inserted))
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
    version: i64,
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
            "SELECT m.id, m.conversation_id, m.seq, m.sender_id, m.client_msg_id, m.content, m.sent_at, m.version \
             FROM messages m WHERE {}",
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
            let msg = StoredMessage {
                id: r.id,
                conversation_id: r.conversation_id,
                seq: r.seq,
                sender_id: r.sender_id,
                content: r.content,
                sent_at: r.sent_at,
                version: r.version,
                // A retry is answered with `message_sent` only, which carries no quote
                // and no envelopes.
                reply_to: None,
                envelopes: None,
                sender_device_id: None,
                attachment: None,
            };
            Some((key, msg))
        })
        .collect())
}

#[derive(FromQueryResult)]
struct MemberRow {
    conversation_id: i64,
    user_id: i64,
    user_a: Option<i64>,
    user_b: Option<i64>,
}

/// Which of these `(conversation, user)` pairs are current members of an open
/// conversation, each with the other user when the conversation is a direct chat.
pub async fn open_memberships<C: ConnectionTrait>(
    db: &C,
    pairs: &[(i64, i64)],
) -> anyhow::Result<HashMap<(i64, i64), Option<i64>>> {
    if pairs.is_empty() {
        return Ok(HashMap::new());
    }
    let (tuples, values) = super::values_list(Vec::new(), pairs.iter().map(|(c, u)| [*c, *u]));
    Ok(MemberRow::find_by_statement(stmt(
        db,
        &format!(
            "SELECT m.conversation_id, m.user_id, c.user_a, c.user_b FROM conversation_members m \
             JOIN (VALUES {tuples}) AS v ON m.conversation_id = v.column1 AND m.user_id = v.column2 \
             JOIN conversations c ON c.id = m.conversation_id \
             WHERE m.left_at IS NULL AND c.closed_at IS NULL"
        ),
        values,
    ))
    .all(db)
    .await?
    .into_iter()
    .map(|r| {
        let other = match (r.user_a, r.user_b) {
            (Some(a), Some(b)) => Some(if a == r.user_id { b } else { a }),
            _ => None,
        };
        ((r.conversation_id, r.user_id), other)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quote_keeps_the_first_characters_and_nothing_of_a_deleted_message() {
        let long = "é".repeat(EXCERPT_CHARS + 5);
        let quote = Quote::of(7, 2, &long, false);
        assert_eq!(quote.excerpt.as_deref(), Some("é".repeat(EXCERPT_CHARS).as_str()));
        assert_eq!((quote.message_id, quote.from_user_id), (7, 2));
        assert_eq!(Quote::of(7, 2, "short", false).excerpt.as_deref(), Some("short"));
        assert_eq!(Quote::of(7, 2, "", true).excerpt, None);
    }
}
