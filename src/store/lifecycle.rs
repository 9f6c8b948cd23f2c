//! Edits, deletes and reactions: each in its own transaction that first bumps (and so
//! locks) the conversation's `version` counter, like the batch writer bumps `last_seq`.
//! Changes of one conversation therefore commit one after another in version order, so
//! a device that has seen version `v` misses nothing by asking for what is newer.
//!
//! [`lock`] opens the transaction and reads what the rules need; the domain decides,
//! then applies one change (which commits) or drops the [`Locked`] (which rolls back,
//! version bump included: the counter stays gap-free).
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, FromQueryResult};

use super::{
    conversations::{Cursor, HistoryMessage, after_cursors},
    stmt,
};

/// What the rules need to know about a message and the caller.
#[derive(Debug, Clone)]
pub struct Target {
    pub message_id: i64,
    pub conversation_id: i64,
    pub is_group: bool,
    /// The caller's partner in a direct chat.
    pub other_user: Option<i64>,
    pub sender_id: i64,
    pub sent_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// The message's version before this change.
    pub version: i64,
    /// The caller's role, if a current member.
    pub role: Option<String>,
    /// Whether the caller was a member and left (or was removed).
    pub left: bool,
    /// End-to-end encrypted (its text is in envelopes the server cannot rewrite).
    pub encrypted: bool,
}

/// An open change transaction holding the conversation's counter.
pub struct Locked {
    txn: DatabaseTransaction,
    pub target: Target,
    /// The version this change takes if it is applied.
    pub version: i64,
}

#[derive(FromQueryResult)]
struct Bumped {
    id: i64,
    version: i64,
    kind: String,
    user_a: Option<i64>,
    user_b: Option<i64>,
}

#[derive(FromQueryResult)]
struct TargetRow {
    version: i64,
    sender_id: i64,
    sent_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
    role: Option<String>,
    left_at: Option<DateTime<Utc>>,
    encrypted: bool,
}

/// Opens a change of message `message_id` by `user`; None if there is no such message.
pub async fn lock(db: &DatabaseConnection, message_id: i64, user: i64) -> anyhow::Result<Option<Locked>> {
    let txn = super::begin_write(db).await?;
    // A message never moves between conversations, so the subquery names the row to lock.
    let Some(bumped) = Bumped::find_by_statement(stmt(
        &txn,
        "UPDATE conversations SET version = version + 1 \
         WHERE id = (SELECT conversation_id FROM messages WHERE id = $1) \
         RETURNING id, version, kind, user_a, user_b",
        [message_id.into()],
    ))
    .one(&txn)
    .await?
    else {
        return Ok(None);
    };
    let Some(row) = TargetRow::find_by_statement(stmt(
        &txn,
        "SELECT m.version, m.sender_id, m.sent_at, m.deleted_at, cm.role, cm.left_at, m.encrypted FROM messages m \
         LEFT JOIN conversation_members cm ON cm.conversation_id = m.conversation_id AND cm.user_id = $2 \
         WHERE m.id = $1",
        [message_id.into(), user.into()],
    ))
    .one(&txn)
    .await?
    else {
        return Ok(None);
    };
    let member = row.role.is_some() && row.left_at.is_none();
    Ok(Some(Locked {
        txn,
        target: Target {
            message_id,
            conversation_id: bumped.id,
            is_group: bumped.kind == "group",
            other_user: match (bumped.user_a, bumped.user_b) {
                (Some(a), Some(b)) => Some(if a == user { b } else { a }),
                _ => None,
            },
            sender_id: row.sender_id,
            sent_at: row.sent_at,
            deleted_at: row.deleted_at,
            version: row.version,
            left: row.role.is_some() && row.left_at.is_some(),
            role: if member { row.role } else { None },
            encrypted: row.encrypted,
        },
        version: bumped.version,
    }))
}

impl Locked {
    /// Whether a block stands between `user` and `other`, either way.
    pub async fn blocked(&self, user: i64, other: i64) -> anyhow::Result<bool> {
        Ok(!super::blocks::between(&self.txn, &[(user, other)])
            .await?
            .is_empty())
    }

    /// Replaces the text; the list preview follows if it showed this message.
    pub async fn edit(self, content: &str, at: DateTime<Utc>) -> anyhow::Result<()> {
        self.txn
            .execute_raw(stmt(
                &self.txn,
                "UPDATE messages SET content = $2, edited_at = $3, version = $4 WHERE id = $1",
                [
                    self.target.message_id.into(),
                    content.into(),
                    at.into(),
                    self.version.into(),
                ],
            ))
            .await?;
        refresh_preview(&self.txn, self.target.conversation_id).await?;
        Ok(self.txn.commit().await?)
    }

    /// Leaves a tombstone: the text (or an encrypted message's envelopes) and the
    /// reactions go, the place stays.
    pub async fn delete(self, at: DateTime<Utc>) -> anyhow::Result<()> {
        let id = self.target.message_id;
        self.txn
            .execute_raw(stmt(
                &self.txn,
                "UPDATE messages SET content = '', envelopes = NULL, deleted_at = $2, version = $3 WHERE id = $1",
                [id.into(), at.into(), self.version.into()],
            ))
            .await?;
        self.txn
            .execute_raw(stmt(
                &self.txn,
                "DELETE FROM message_reactions WHERE message_id = $1",
                [id.into()],
            ))
            .await?;
        // A deleted message is no longer unread for anyone: members who had not read
        // it count it with their own messages after their read position (the sender
        // already did). Deletes are rare, so a member-row write each is affordable.
        self.txn
            .execute_raw(stmt(
                &self.txn,
                "UPDATE conversation_members SET sent_since_read = sent_since_read + 1 \
                 WHERE conversation_id = $1 AND user_id <> $2 AND left_at IS NULL \
                   AND read_seq < (SELECT seq FROM messages WHERE id = $3)",
                [
                    self.target.conversation_id.into(),
                    self.target.sender_id.into(),
                    id.into(),
                ],
            ))
            .await?;
        refresh_preview(&self.txn, self.target.conversation_id).await?;
        Ok(self.txn.commit().await?)
    }

    /// Sets or clears `user`'s reaction; returns the message's counts afterwards.
    pub async fn react(
        self,
        user: i64,
        emoji: Option<&str>,
        at: DateTime<Utc>,
    ) -> anyhow::Result<Vec<(String, i64)>> {
        let id = self.target.message_id;
        match emoji {
            Some(emoji) => {
                self.txn
                    .execute_raw(stmt(
                        &self.txn,
                        "INSERT INTO message_reactions (message_id, user_id, emoji, reacted_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (message_id, user_id) \
                         DO UPDATE SET emoji = excluded.emoji, reacted_at = excluded.reacted_at",
                        [id.into(), user.into(), emoji.into(), at.into()],
                    ))
                    .await?
            }
            None => {
                self.txn
                    .execute_raw(stmt(
                        &self.txn,
                        "DELETE FROM message_reactions WHERE message_id = $1 AND user_id = $2",
                        [id.into(), user.into()],
                    ))
                    .await?
            }
        };
        self.txn
            .execute_raw(stmt(
                &self.txn,
                "UPDATE messages SET version = $2 WHERE id = $1",
                [id.into(), self.version.into()],
            ))
            .await?;
        let counts = reactions(&self.txn, &[id], user)
            .await?
            .remove(&id)
            .map(|r| r.counts)
            .unwrap_or_default();
        self.txn.commit().await?;
        Ok(counts)
    }
}

/// The preview is the newest message still standing (none if all are deleted); the
/// list's order (`updated_at`) does not move for edits and deletes.
async fn refresh_preview<C: ConnectionTrait>(txn: &C, conversation: i64) -> anyhow::Result<()> {
    const NEWEST: &str =
        "FROM messages WHERE conversation_id = $1 AND deleted_at IS NULL ORDER BY seq DESC LIMIT 1";
    txn.execute_raw(stmt(
        txn,
        &format!(
            "UPDATE conversations SET last_sender_id = (SELECT sender_id {NEWEST}), \
               last_content = (SELECT content {NEWEST}), last_sent_at = (SELECT sent_at {NEWEST}) \
             WHERE id = $1"
        ),
        [conversation.into()],
    ))
    .await?;
    Ok(())
}

/// A message's reactions: each emoji with its count (most used first, then first used), and the
/// caller's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reactions {
    pub counts: Vec<(String, i64)>,
    pub mine: Option<String>,
}

#[derive(FromQueryResult)]
struct ReactionRow {
    message_id: i64,
    emoji: String,
    n: i64,
    mine: i64,
}

/// The reactions of these messages, as `user` sees them; messages without any are absent.
pub async fn reactions<C: ConnectionTrait>(
    db: &C,
    messages: &[i64],
    user: i64,
) -> anyhow::Result<HashMap<i64, Reactions>> {
    if messages.is_empty() {
        return Ok(HashMap::new());
    }
    let placeholders = (2..messages.len() + 2)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut values: Vec<sea_orm::Value> = vec![user.into()];
    values.extend(messages.iter().map(|id| (*id).into()));
    let rows = ReactionRow::find_by_statement(stmt(
        db,
        &format!(
            "SELECT message_id, emoji, COUNT(*) AS n, CAST(MAX(CASE WHEN user_id = $1 THEN 1 ELSE 0 END) AS BIGINT) AS mine \
             FROM message_reactions WHERE message_id IN ({placeholders}) \
             GROUP BY message_id, emoji ORDER BY message_id, n DESC, MIN(reacted_at), emoji"
        ),
        values,
    ))
    .all(db)
    .await?;
    let mut out: HashMap<i64, Reactions> = HashMap::new();
    for r in rows {
        let entry = out.entry(r.message_id).or_default();
        if r.mine > 0 {
            entry.mine = Some(r.emoji.clone());
        }
        entry.counts.push((r.emoji, r.n));
    }
    Ok(out)
}

/// Messages changed after each `(conversation, version)`, conversations in the order
/// given and each in version order, at most `budget` in all; and whether more remain.
pub async fn changed_after<C: ConnectionTrait>(
    db: &C,
    since: &[(i64, i64)],
    budget: u64,
) -> anyhow::Result<(Vec<HistoryMessage>, bool)> {
    after_cursors(db, Cursor::Version, since, budget).await
}

/// Ends a transaction without a change (its version bump is rolled back with it).
pub async fn abandon(locked: Locked) -> anyhow::Result<()> {
    Ok(locked.txn.rollback().await?)
}
