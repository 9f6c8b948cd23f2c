//! Reading conversations: membership, history, read positions (the list has its own
//! module, `conversation_list`).
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult};

use super::{
    messages::Quote,
    positions::{self, Move, Settled},
    stmt,
};
use crate::domain::receipts::Position;

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
         WHERE m.conversation_id = $1 AND m.user_id = $2 AND m.left_at IS NULL",
        [conversation.into(), user.into()],
    ))
    .one(db)
    .await?
    .map(|r| r.last_seq))
}

/// A message as shown in history (a deleted one has empty content).
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
    pub version: i64,
    pub edited_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub reply_to_id: Option<i64>,
    /// The replied-to message's sender, text and deletion, for its quote.
    pub reply_sender_id: Option<i64>,
    pub reply_content: Option<String>,
    pub reply_deleted_at: Option<DateTime<Utc>>,
    /// End-to-end encrypted (content empty): `envelopes` holds its ciphertexts, a JSON
    /// array, until it is deleted.
    pub encrypted: bool,
    pub envelopes: Option<String>,
    pub sender_device_id: Option<i64>,
}

impl HistoryMessage {
    /// The quote of the message this one replies to.
    pub fn quote(&self) -> Option<Quote> {
        let (id, sender) = (self.reply_to_id?, self.reply_sender_id?);
        Some(Quote::of(
            id,
            sender,
            self.reply_content.as_deref().unwrap_or_default(),
            self.reply_deleted_at.is_some(),
        ))
    }
}

/// The columns of [`HistoryMessage`], read from [`HISTORY_FROM`].
pub(crate) const HISTORY_COLUMNS: &str = "m.id, m.conversation_id, m.seq, m.sender_id, m.content, m.sent_at, \
    m.delivered_at, m.read_at, m.version, m.edited_at, m.deleted_at, m.reply_to_id, \
    r.sender_id AS reply_sender_id, r.content AS reply_content, r.deleted_at AS reply_deleted_at, \
    m.encrypted, m.envelopes, m.sender_device_id";

/// Messages `m`, each with the message it replies to (`r`).
pub(crate) const HISTORY_FROM: &str = "messages m LEFT JOIN messages r ON r.id = m.reply_to_id";

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
            "SELECT {HISTORY_COLUMNS} FROM {HISTORY_FROM} WHERE m.conversation_id = $1 \
             ORDER BY m.seq DESC LIMIT $2 OFFSET $3"
        ),
        [conversation.into(), (limit as i64).into(), (offset as i64).into()],
    ))
    .all(db)
    .await?)
}

/// The seqs a cursor page may read: strictly between `after` and `before`, each bound
/// optional, and which end the page starts from.
#[derive(Debug, Clone, Copy)]
pub struct SeqRange {
    pub after: Option<i64>,
    pub before: Option<i64>,
    /// Oldest first (from `after` up) or newest first (from `before` down).
    pub oldest_first: bool,
}

/// Up to `limit` messages of `range`, skipping the first `skip` in its order; and whether
/// more lie beyond them. A missing bound is the widest one, so every form is one query.
pub async fn page_by_seq<C: ConnectionTrait>(
    db: &C,
    conversation: i64,
    range: SeqRange,
    skip: u64,
    limit: u64,
) -> anyhow::Result<(Vec<HistoryMessage>, bool)> {
    let order = if range.oldest_first { "ASC" } else { "DESC" };
    // One extra row tells whether there is more.
    let mut messages = HistoryMessage::find_by_statement(stmt(
        db,
        &format!(
            "SELECT {HISTORY_COLUMNS} FROM {HISTORY_FROM} WHERE m.conversation_id = $1 AND m.seq > $2 AND m.seq < $3 \
             ORDER BY m.seq {order} LIMIT $4 OFFSET $5"
        ),
        [
            conversation.into(),
            range.after.unwrap_or(i64::MIN).into(),
            range.before.unwrap_or(i64::MAX).into(),
            (limit as i64 + 1).into(),
            (skip.min(i64::MAX as u64) as i64).into(),
        ],
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
    /// Messages from others newly covered by the reader's read position.
    pub marked: u64,
    /// The newest message of each other sender now read: `(sender, message id)`.
    pub newest_read: Vec<(i64, i64)>,
    /// The id of the message at the read position, if the conversation has any.
    pub up_to_message_id: Option<i64>,
    /// Messages that, with this read, have reached every other member.
    pub delivered: Vec<Settled>,
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

#[derive(FromQueryResult)]
struct ReadStart {
    read_seq: i64,
    last_seq: i64,
}

#[derive(FromQueryResult)]
struct Count {
    n: i64,
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

/// Moves `reader`'s read position to `up_to_seq` (default: the newest message). A read
/// message is evidently received, so the delivered position follows; both aggregate
/// receipts are settled in the same transaction.
pub async fn mark_read(
    db: &DatabaseConnection,
    conversation: i64,
    reader: i64,
    up_to_seq: Option<i64>,
    now: DateTime<Utc>,
) -> anyhow::Result<ReadChange> {
    let txn = super::begin_write(db).await?;
    let Some(start) = ReadStart::find_by_statement(stmt(
        &txn,
        "SELECT me.read_seq, c.last_seq FROM conversation_members me \
         JOIN conversations c ON c.id = me.conversation_id \
         WHERE me.conversation_id = $1 AND me.user_id = $2 AND me.left_at IS NULL",
        [conversation.into(), reader.into()],
    ))
    .one(&txn)
    .await?
    else {
        return Ok(ReadChange::default());
    };
    let target = up_to_seq.unwrap_or(start.last_seq);
    if target <= start.read_seq {
        txn.commit().await?;
        return Ok(ReadChange::default());
    }
    let range = [
        conversation.into(),
        reader.into(),
        start.read_seq.into(),
        target.into(),
    ];
    let marked = Count::find_by_statement(stmt(
        &txn,
        "SELECT COUNT(*) AS n FROM messages \
         WHERE conversation_id = $1 AND sender_id <> $2 AND seq > $3 AND seq <= $4 AND deleted_at IS NULL",
        range.clone(),
    ))
    .one(&txn)
    .await?
    .map_or(0, |c| c.n);
    let step = [Move {
        conversation_id: conversation,
        user_id: reader,
        seq: target,
    }];
    positions::advance(&txn, Position::Read, &step, now).await?;
    positions::advance(&txn, Position::Delivered, &step, now).await?;
    txn.execute_raw(stmt(
        &txn,
        "UPDATE conversation_members SET sent_since_read = \
           (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = $1 AND m.seq > $3 \
              AND (m.sender_id = $2 OR m.deleted_at IS NOT NULL)) \
         WHERE conversation_id = $1 AND user_id = $2",
        [conversation.into(), reader.into(), target.into()],
    ))
    .await?;
    positions::settle(&txn, Position::Read, &[conversation], now).await?;
    let delivered = positions::settle(&txn, Position::Delivered, &[conversation], now).await?;
    let newest_read = NewestRead::find_by_statement(stmt(
        &txn,
        "SELECT sender_id, MAX(id) AS id FROM messages \
         WHERE conversation_id = $1 AND sender_id <> $2 AND seq > $3 AND seq <= $4 GROUP BY sender_id",
        range,
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
        marked: marked as u64,
        newest_read,
        up_to_message_id,
        delivered,
    })
}

#[derive(FromQueryResult)]
struct UserIdRow {
    user_id: i64,
}

/// Everyone whose presence `user` may see: fellow members of a group, and people who
/// have written to `user` in their direct chat; never someone either of them blocked.
pub async fn contacts<C: ConnectionTrait>(db: &C, user: i64) -> anyhow::Result<Vec<i64>> {
    Ok(UserIdRow::find_by_statement(stmt(
        db,
        "SELECT DISTINCT other.user_id FROM conversation_members me \
         JOIN conversation_members other ON other.conversation_id = me.conversation_id \
         JOIN conversations c ON c.id = me.conversation_id \
         WHERE me.user_id = $1 AND other.user_id <> $1 AND me.left_at IS NULL AND other.left_at IS NULL \
           AND (c.kind = 'group' OR other.has_written) \
           AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker_id = $1 AND b.blocked_id = other.user_id) \
                                                  OR (b.blocker_id = other.user_id AND b.blocked_id = $1))",
        [user.into()],
    ))
    .all(db)
    .await?
    .into_iter()
    .map(|r| r.user_id)
    .collect())
}

/// Who hears `user` come online or go offline: the people `user` has written to in a
/// direct chat, unless either blocked the other. (Group members are not told: a member
/// of a 1,000-member group would fan out a thousand events.)
pub async fn direct_contacts<C: ConnectionTrait>(db: &C, user: i64) -> anyhow::Result<Vec<i64>> {
    Ok(UserIdRow::find_by_statement(stmt(
        db,
        "SELECT CASE WHEN c.user_a = $1 THEN c.user_b ELSE c.user_a END AS user_id \
         FROM conversation_members me JOIN conversations c ON c.id = me.conversation_id \
         WHERE me.user_id = $1 AND me.has_written AND c.kind = 'direct' \
           AND NOT EXISTS (SELECT 1 FROM blocks b WHERE \
             (b.blocker_id = $1 AND b.blocked_id = CASE WHEN c.user_a = $1 THEN c.user_b ELSE c.user_a END) \
             OR (b.blocked_id = $1 AND b.blocker_id = CASE WHEN c.user_a = $1 THEN c.user_b ELSE c.user_a END))",
        [user.into()],
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

#[derive(FromQueryResult)]
struct ConversationOnly {
    conversation_id: i64,
}

/// Which of `conversations` `user` is a current member of.
pub async fn memberships_among<C: ConnectionTrait>(
    db: &C,
    user: i64,
    conversations: &[i64],
) -> anyhow::Result<Vec<i64>> {
    let placeholders = (2..conversations.len() + 2)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut values: Vec<sea_orm::Value> = vec![user.into()];
    values.extend(conversations.iter().map(|c| (*c).into()));
    Ok(ConversationOnly::find_by_statement(stmt(
        db,
        &format!(
            "SELECT conversation_id FROM conversation_members \
             WHERE user_id = $1 AND left_at IS NULL AND conversation_id IN ({placeholders})"
        ),
        values,
    ))
    .all(db)
    .await?
    .into_iter()
    .map(|r| r.conversation_id)
    .collect())
}

/// Messages after each `(conversation, seq)`, conversations in the order given and each
/// oldest first, at most `budget` in all; and whether more remain. One query.
pub async fn after_seqs<C: ConnectionTrait>(
    db: &C,
    since: &[(i64, i64)],
    budget: u64,
) -> anyhow::Result<(Vec<HistoryMessage>, bool)> {
    after_cursors(db, Cursor::Seq, since, budget).await
}

/// Which per-conversation counter a cursor counts in.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cursor {
    /// New messages (`seq`).
    Seq,
    /// Every change: new, edited, deleted, reacted to (`version`).
    Version,
}

/// Messages past each `(conversation, cursor)`, conversations in the order given and
/// each in cursor order, at most `budget` in all; and whether more remain. One query.
pub(crate) async fn after_cursors<C: ConnectionTrait>(
    db: &C,
    cursor: Cursor,
    since: &[(i64, i64)],
    budget: u64,
) -> anyhow::Result<(Vec<HistoryMessage>, bool)> {
    let column = match cursor {
        Cursor::Seq => "seq",
        Cursor::Version => "version",
    };
    let (tuples, values) = super::values_list(
        vec![(budget as i64 + 1).into()],
        since
            .iter()
            .enumerate()
            .map(|(i, (c, after))| [*c, *after, i as i64]),
    );
    let mut messages = HistoryMessage::find_by_statement(stmt(
        db,
        &format!(
            "SELECT {HISTORY_COLUMNS} \
             FROM (VALUES {tuples}) AS v JOIN messages m ON m.conversation_id = v.column1 AND m.{column} > v.column2 \
             LEFT JOIN messages r ON r.id = m.reply_to_id \
             ORDER BY v.column3, m.{column} LIMIT $1"
        ),
        values,
    ))
    .all(db)
    .await?;
    let has_more = messages.len() as u64 > budget;
    messages.truncate(budget as usize);
    Ok((messages, has_more))
}
