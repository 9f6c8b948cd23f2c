//! Reading conversations: the list, membership, history, read positions.
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult, QueryResult, TransactionTrait};

use super::stmt;

/// One row of a user's conversation list.
#[derive(Debug, Clone)]
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
    pub other_last_seen: Option<DateTime<Utc>>,
}

/// Columns are read by position, in [`LIST_FOR_USER`]'s order: a list holds a row per
/// conversation, and looking each column up by name was a measurable part of its cost.
impl FromQueryResult for ConversationSummary {
    fn from_query_result(row: &QueryResult, _pre: &str) -> Result<Self, DbErr> {
        Ok(Self {
            id: row.try_get_by_index(0)?,
            kind: row.try_get_by_index(1)?,
            user_a: row.try_get_by_index(2)?,
            user_b: row.try_get_by_index(3)?,
            name: row.try_get_by_index(4)?,
            updated_at: row.try_get_by_index(5)?,
            last_content: row.try_get_by_index(6)?,
            last_sent_at: row.try_get_by_index(7)?,
            last_sender_id: row.try_get_by_index(8)?,
            unread_count: row.try_get_by_index(9)?,
            other_last_seen: row.try_get_by_index(10)?,
        })
    }
}

/// The preview of the last message lives on the conversation row (kept by the writer),
/// so the list touches no messages: members, conversations and the other users only.
const LIST_FOR_USER: &str = "\
SELECT c.id, c.kind, c.user_a, c.user_b, c.name, c.updated_at, \
       c.last_content, c.last_sent_at, c.last_sender_id, me.unread_count, \
       other.last_seen_at \
FROM conversation_members me \
JOIN conversations c ON c.id = me.conversation_id \
LEFT JOIN users other ON other.id = CASE WHEN c.user_a = me.user_id THEN c.user_b ELSE c.user_a END \
WHERE me.user_id = $1 \
ORDER BY c.updated_at DESC, c.id DESC";

/// Every conversation of `user`, most recently updated first, in one query.
pub async fn list_for_user<C: ConnectionTrait>(
    db: &C,
    user: i64,
) -> anyhow::Result<Vec<ConversationSummary>> {
    Ok(
        ConversationSummary::find_by_statement(stmt(db, LIST_FOR_USER, [user.into()]))
            .all(db)
            .await?,
    )
}

#[derive(FromQueryResult)]
struct LastSeq {
    last_seq: i64,
}

/// The conversation's message count (its gap-free counter) if `user` is a member.
pub async fn member_view<C: ConnectionTrait>(
    db: &C,
    conversation: i64,
    user: i64,
) -> anyhow::Result<Option<i64>> {
    Ok(LastSeq::find_by_statement(stmt(
        db,
        "SELECT c.last_seq FROM conversation_members m JOIN conversations c ON c.id = m.conversation_id \
         WHERE m.conversation_id = $1 AND m.user_id = $2",
        [conversation.into(), user.into()],
    ))
    .one(db)
    .await?
    .map(|r| r.last_seq))
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

const HISTORY_COLUMNS: &str = "id, conversation_id, seq, sender_id, content, sent_at, delivered_at, read_at";

/// A page of history, newest first.
pub async fn page_by_offset<C: ConnectionTrait>(
    db: &C,
    conversation: i64,
    limit: u64,
    offset: u64,
) -> anyhow::Result<Vec<HistoryMessage>> {
    Ok(HistoryMessage::find_by_statement(stmt(
        db,
        &format!(
            "SELECT {HISTORY_COLUMNS} FROM messages WHERE conversation_id = $1 ORDER BY seq DESC LIMIT $2 OFFSET $3"
        ),
        [conversation.into(), (limit as i64).into(), (offset as i64).into()],
    ))
    .all(db)
    .await?)
}

/// Which side of a seq a cursor page reads.
#[derive(Debug, Clone, Copy)]
pub enum SeqCursor {
    /// Messages after this seq, oldest first.
    After(i64),
    /// Messages before this seq, newest first.
    Before(i64),
}

/// Up to `limit` messages from `cursor`; and whether more lie beyond them.
pub async fn page_by_seq<C: ConnectionTrait>(
    db: &C,
    conversation: i64,
    cursor: SeqCursor,
    limit: u64,
) -> anyhow::Result<(Vec<HistoryMessage>, bool)> {
    let (condition, order, seq) = match cursor {
        SeqCursor::After(seq) => ("seq > $2", "ASC", seq),
        SeqCursor::Before(seq) => ("seq < $2", "DESC", seq),
    };
    // One extra row tells whether there is more.
    let mut messages = HistoryMessage::find_by_statement(stmt(
        db,
        &format!(
            "SELECT {HISTORY_COLUMNS} FROM messages WHERE conversation_id = $1 AND {condition} \
             ORDER BY seq {order} LIMIT $3"
        ),
        [conversation.into(), seq.into(), (limit as i64 + 1).into()],
    ))
    .all(db)
    .await?;
    let has_more = messages.len() as u64 > limit;
    messages.truncate(limit as usize);
    Ok((messages, has_more))
}

/// What a read changed.
#[derive(Debug, Default)]
pub struct ReadChange {
    pub marked: u64,
    /// The newest message of each other sender now read: `(sender, message id)`.
    pub newest_read: Vec<(i64, i64)>,
    /// The id of the message at the read position, if the conversation has any.
    pub up_to_message_id: Option<i64>,
}

#[derive(FromQueryResult)]
struct SeqOf {
    seq: i64,
}

#[derive(FromQueryResult)]
struct NewestRead {
    sender_id: i64,
    id: i64,
}

/// The seq of message `message_id` if it belongs to `conversation`.
pub async fn seq_of<C: ConnectionTrait>(
    db: &C,
    conversation: i64,
    message_id: i64,
) -> anyhow::Result<Option<i64>> {
    Ok(SeqOf::find_by_statement(stmt(
        db,
        "SELECT seq FROM messages WHERE id = $1 AND conversation_id = $2",
        [message_id.into(), conversation.into()],
    ))
    .one(db)
    .await?
    .map(|r| r.seq))
}

/// Marks the other members' messages up to `up_to_seq` (default: all) read by `reader`.
pub async fn mark_read(
    db: &DatabaseConnection,
    conversation: i64,
    reader: i64,
    up_to_seq: Option<i64>,
    now: DateTime<Utc>,
) -> anyhow::Result<ReadChange> {
    let txn = db.begin().await?;
    let target = match up_to_seq {
        Some(seq) => seq,
        None => SeqRow::find_by_statement(stmt(
            &txn,
            "SELECT last_seq AS seq FROM conversations WHERE id = $1",
            [conversation.into()],
        ))
        .one(&txn)
        .await?
        .map_or(0, |r| r.seq),
    };
    let marked = txn
        .execute_raw(stmt(
            &txn,
            "UPDATE messages SET read_at = $1 \
             WHERE conversation_id = $2 AND sender_id <> $3 AND read_at IS NULL AND seq <= $4",
            [now.into(), conversation.into(), reader.into(), target.into()],
        ))
        .await?
        .rows_affected();
    // Reading implies delivery: a message read is evidently received.
    txn.execute_raw(stmt(
        &txn,
        "UPDATE messages SET delivered_at = $1 \
         WHERE conversation_id = $2 AND sender_id <> $3 AND delivered_at IS NULL AND seq <= $4",
        [now.into(), conversation.into(), reader.into(), target.into()],
    ))
    .await?;
    txn.execute_raw(stmt(
        &txn,
        // Subtracting what this read marked (rather than recounting) commutes with the
        // writer's concurrent increments for newer messages.
        "UPDATE conversation_members SET \
           read_seq = CASE WHEN read_seq < $1 THEN $1 ELSE read_seq END, \
           delivered_seq = CASE WHEN delivered_seq < $1 THEN $1 ELSE delivered_seq END, \
           unread_count = CASE WHEN unread_count > $4 THEN unread_count - $4 ELSE 0 END \
         WHERE conversation_id = $2 AND user_id = $3",
        [
            target.into(),
            conversation.into(),
            reader.into(),
            (marked as i64).into(),
        ],
    ))
    .await?;
    let newest_read = NewestRead::find_by_statement(stmt(
        &txn,
        "SELECT m.sender_id, MAX(m.id) AS id FROM messages m \
         WHERE m.conversation_id = $1 AND m.sender_id <> $2 AND m.seq <= $3 GROUP BY m.sender_id",
        [conversation.into(), reader.into(), target.into()],
    ))
    .all(&txn)
    .await?
    .into_iter()
    .map(|r| (r.sender_id, r.id))
    .collect();
    let up_to_message_id = ConversationIdRow::find_by_statement(stmt(
        &txn,
        "SELECT id FROM messages WHERE conversation_id = $1 AND seq = $2",
        [conversation.into(), target.into()],
    ))
    .one(&txn)
    .await?
    .map(|r| r.id);
    txn.commit().await?;
    Ok(ReadChange {
        marked,
        newest_read,
        up_to_message_id,
    })
}

#[derive(FromQueryResult)]
struct SeqRow {
    seq: i64,
}

#[derive(FromQueryResult)]
struct UserIdRow {
    user_id: i64,
}

/// Everyone who shares a conversation with `user`.
pub async fn contacts<C: ConnectionTrait>(db: &C, user: i64) -> anyhow::Result<Vec<i64>> {
    Ok(UserIdRow::find_by_statement(stmt(
        db,
        "SELECT DISTINCT other.user_id FROM conversation_members me \
         JOIN conversation_members other ON other.conversation_id = me.conversation_id \
         WHERE me.user_id = $1 AND other.user_id <> $1",
        [user.into()],
    ))
    .all(db)
    .await?
    .into_iter()
    .map(|r| r.user_id)
    .collect())
}

/// The members of a conversation (empty if it does not exist).
pub async fn members<C: ConnectionTrait>(db: &C, conversation: i64) -> anyhow::Result<Vec<i64>> {
    Ok(UserIdRow::find_by_statement(stmt(
        db,
        "SELECT user_id FROM conversation_members WHERE conversation_id = $1",
        [conversation.into()],
    ))
    .all(db)
    .await?
    .into_iter()
    .map(|r| r.user_id)
    .collect())
}

#[derive(FromQueryResult)]
struct ConversationIdRow {
    id: i64,
}

/// The direct conversation of two users, if they have one.
pub async fn direct_between<C: ConnectionTrait>(db: &C, x: i64, y: i64) -> anyhow::Result<Option<i64>> {
    Ok(ConversationIdRow::find_by_statement(stmt(
        db,
        "SELECT id FROM conversations WHERE user_a = $1 AND user_b = $2",
        [x.min(y).into(), x.max(y).into()],
    ))
    .one(db)
    .await?
    .map(|r| r.id))
}
