//! The offline queue: for each conversation of a user, the messages from others after
//! the user's delivered position.
use sea_orm::{ConnectionTrait, FromQueryResult};

use super::{
    conversations::{ATTACHMENT_JOIN, HISTORY_COLUMNS},
    stmt,
};

/// A queued message, as handed to the member's device: as history shows it (edited,
/// deleted, replying), since it may have changed while it waited.
pub type QueuedMessage = super::conversations::HistoryMessage;

/// Up to `limit` queued messages for `user`, oldest first, and whether more are queued.
/// Nothing is marked: positions move only once the messages reached a device. Ids grow
/// with seq within a conversation, so each conversation's part of a page is a prefix of
/// its queue.
pub async fn queue<C: ConnectionTrait>(
    db: &C,
    user: i64,
    limit: u64,
) -> anyhow::Result<(Vec<QueuedMessage>, bool)> {
    let mut queued = QueuedMessage::find_by_statement(stmt(
        db,
        &format!(
            "SELECT {HISTORY_COLUMNS} \
             FROM conversation_members cm \
             JOIN messages m ON m.conversation_id = cm.conversation_id AND m.seq > cm.delivered_seq \
             LEFT JOIN messages r ON r.id = m.reply_to_id {ATTACHMENT_JOIN} \
             WHERE cm.user_id = $1 AND cm.left_at IS NULL AND m.sender_id <> $1 \
             ORDER BY m.id LIMIT $2"
        ),
        [user.into(), (limit as i64 + 1).into()],
    ))
    .all(db)
    .await?;
    let more = queued.len() as u64 > limit;
    queued.truncate(limit as usize);
    Ok((queued, more))
}

#[derive(FromQueryResult)]
struct ConversationRow {
    conversation_id: i64,
    last_seq: i64,
}

/// The conversations `user` currently belongs to, each with its newest seq.
pub async fn open_conversations<C: ConnectionTrait>(db: &C, user: i64) -> anyhow::Result<Vec<(i64, i64)>> {
    Ok(ConversationRow::find_by_statement(stmt(
        db,
        "SELECT cm.conversation_id, c.last_seq FROM conversation_members cm \
         JOIN conversations c ON c.id = cm.conversation_id \
         WHERE cm.user_id = $1 AND cm.left_at IS NULL",
        [user.into()],
    ))
    .all(db)
    .await?
    .into_iter()
    .map(|r| (r.conversation_id, r.last_seq))
    .collect())
}

#[derive(FromQueryResult)]
struct MembershipRow {
    user_id: i64,
    conversation_id: i64,
}

/// The conversations each of `users` currently belongs to, as `(user, conversation)`.
pub async fn memberships<C: ConnectionTrait>(db: &C, users: &[i64]) -> anyhow::Result<Vec<(i64, i64)>> {
    let mut found = Vec::new();
    // Bounded statements: a node may hold tens of thousands of users.
    for chunk in users.chunks(1000) {
        let (tuples, values) = super::values_list(Vec::new(), chunk.iter().map(|u| [*u]));
        found.extend(
            MembershipRow::find_by_statement(stmt(
                db,
                &format!(
                    "SELECT cm.user_id, cm.conversation_id FROM (VALUES {tuples}) AS v \
                     JOIN conversation_members cm ON cm.user_id = v.column1 AND cm.left_at IS NULL"
                ),
                values,
            ))
            .all(db)
            .await?
            .into_iter()
            .map(|r| (r.user_id, r.conversation_id)),
        );
    }
    Ok(found)
}
