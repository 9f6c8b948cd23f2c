//! Reading conversations: the list, membership, history, read positions.
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, TransactionTrait};

use super::stmt;

/// One row of a user's conversation list.
#[derive(Debug, Clone, FromQueryResult)]
pub struct ConversationSummary {
    pub id: i64,
    pub kind: String,
    pub user_a: Option<i64>,
    pub user_b: Option<i64>,
    pub name: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub last_content: Option<String>,
    pub last_sent_at: Option<DateTime<Utc>>,
    pub last_sender_id: Option<i64>,
    pub unread_count: i64,
}

/// Every conversation of `user`, most recently updated first, in one query.
pub async fn list_for_user<C: ConnectionTrait>(
    db: &C,
    user: i64,
) -> anyhow::Result<Vec<ConversationSummary>> {
    // The last message is found by the conversation's counter (an index lookup), and the
    // unread count is a range over (conversation_id, seq): no per-conversation round trips.
    Ok(ConversationSummary::find_by_statement(stmt(
        db,
        "SELECT c.id, c.kind, c.user_a, c.user_b, c.name, c.updated_at, \
                lm.content AS last_content, lm.sent_at AS last_sent_at, lm.sender_id AS last_sender_id, \
                (SELECT COUNT(*) FROM messages u \
                  WHERE u.conversation_id = c.id AND u.seq > me.read_seq AND u.sender_id <> me.user_id) AS unread_count \
         FROM conversation_members me \
         JOIN conversations c ON c.id = me.conversation_id \
         LEFT JOIN messages lm ON lm.conversation_id = c.id AND lm.seq = c.last_seq \
         WHERE me.user_id = $1 \
         ORDER BY c.updated_at DESC, c.id DESC",
        [user.into()],
    ))
    .all(db)
    .await?)
}

#[derive(FromQueryResult)]
struct Found {
    #[allow(dead_code)]
    found: i64,
}

/// Whether `user` is a member of `conversation` (false if it does not exist).
pub async fn is_member<C: ConnectionTrait>(
    db: &C,
    conversation: i64,
    user: i64,
) -> anyhow::Result<bool> {
    Ok(Found::find_by_statement(stmt(
        db,
        "SELECT 1 AS found FROM conversation_members WHERE conversation_id = $1 AND user_id = $2",
        [conversation.into(), user.into()],
    ))
    .one(db)
    .await?
    .is_some())
}

/// A message as shown in history.
#[derive(Debug, Clone, FromQueryResult)]
pub struct HistoryMessage {
    pub id: i64,
    pub conversation_id: i64,
    pub seq: i64,
    pub sender_id: i64,
    pub content: String,
    pub sent_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
}

const HISTORY_COLUMNS: &str =
    "id, conversation_id, seq, sender_id, content, sent_at, delivered_at, read_at";

/// A page of history, newest first, and the conversation's message total.
pub async fn page_by_offset<C: ConnectionTrait>(
    db: &C,
    conversation: i64,
    limit: u64,
    offset: u64,
) -> anyhow::Result<(Vec<HistoryMessage>, i64)> {
    let messages = HistoryMessage::find_by_statement(stmt(
        db,
        &format!(
            "SELECT {HISTORY_COLUMNS} FROM messages WHERE conversation_id = $1 ORDER BY seq DESC LIMIT $2 OFFSET $3"
        ),
        [conversation.into(), (limit as i64).into(), (offset as i64).into()],
    ))
    .all(db)
    .await?;
    Ok((messages, count(db, conversation).await?))
}

#[derive(FromQueryResult)]
struct Count {
    n: i64,
}

async fn count<C: ConnectionTrait>(db: &C, conversation: i64) -> anyhow::Result<i64> {
    Ok(Count::find_by_statement(stmt(
        db,
        "SELECT COUNT(*) AS n FROM messages WHERE conversation_id = $1",
        [conversation.into()],
    ))
    .one(db)
    .await?
    .map_or(0, |c| c.n))
}

/// Marks the other members' messages in `conversation` read by `reader`, up to the newest
/// message; returns how many messages changed.
pub async fn mark_read(
    db: &DatabaseConnection,
    conversation: i64,
    reader: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let txn = db.begin().await?;
    let marked = txn
        .execute_raw(stmt(
            &txn,
            "UPDATE messages SET read_at = $1 \
             WHERE conversation_id = $2 AND sender_id <> $3 AND read_at IS NULL",
            [now.into(), conversation.into(), reader.into()],
        ))
        .await?
        .rows_affected();
    // Reading implies delivery: a message read over REST was evidently received.
    txn.execute_raw(stmt(
        &txn,
        "UPDATE messages SET delivered_at = $1 \
         WHERE conversation_id = $2 AND sender_id <> $3 AND delivered_at IS NULL",
        [now.into(), conversation.into(), reader.into()],
    ))
    .await?;
    txn.execute_raw(stmt(
        &txn,
        "UPDATE conversation_members SET \
           read_seq = (SELECT last_seq FROM conversations WHERE id = $1), \
           delivered_seq = (SELECT last_seq FROM conversations WHERE id = $1) \
         WHERE conversation_id = $1 AND user_id = $2",
        [conversation.into(), reader.into()],
    ))
    .await?;
    txn.commit().await?;
    Ok(marked)
}
