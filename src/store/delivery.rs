//! The offline queue: messages stored while a user had no connected device.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult, Value};

use super::{messages::advance_delivered, stmt};

/// A queued message, as handed to the recipient's device.
#[derive(Debug, Clone, FromQueryResult)]
pub struct QueuedMessage {
    pub id: i64,
    pub conversation_id: i64,
    pub seq: i64,
    pub sender_id: i64,
    pub content: String,
    pub sent_at: DateTime<Utc>,
}

/// Takes up to `limit` undelivered messages for `user`, oldest first, and marks them
/// delivered at `now` inside `txn`.
pub async fn take_undelivered<C: ConnectionTrait>(
    txn: &C,
    user: i64,
    limit: u64,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<QueuedMessage>> {
    let queued = QueuedMessage::find_by_statement(stmt(
        txn,
        // By delivered_at rather than the member's delivered position: a backlog left behind
        // by the limit stays findable even after live messages moved the position on.
        "SELECT m.id, m.conversation_id, m.seq, m.sender_id, m.content, m.sent_at \
         FROM conversation_members cm \
         JOIN messages m ON m.conversation_id = cm.conversation_id \
         WHERE cm.user_id = $1 AND m.sender_id <> $1 AND m.delivered_at IS NULL \
         ORDER BY m.id LIMIT $2",
        [user.into(), (limit as i64).into()],
    ))
    .all(txn)
    .await?;
    if queued.is_empty() {
        return Ok(queued);
    }

    let ids: Vec<Value> = queued.iter().map(|m| m.id.into()).collect();
    let placeholders: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
    let mut values = vec![now.into()];
    values.extend(ids);
    txn.execute_raw(stmt(
        txn,
        &format!(
            "UPDATE messages SET delivered_at = $1 WHERE delivered_at IS NULL AND id IN ({})",
            placeholders.join(", ")
        ),
        values,
    ))
    .await?;

    // Ids grow with seq inside a conversation, so the newest taken seq is a safe position
    // even when `limit` left later messages behind.
    let mut newest: HashMap<i64, i64> = HashMap::new();
    for m in &queued {
        let e = newest.entry(m.conversation_id).or_default();
        *e = (*e).max(m.seq);
    }
    for (conv, seq) in newest {
        advance_delivered(txn, conv, user, seq).await?;
    }
    Ok(queued)
}
