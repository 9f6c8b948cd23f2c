//! Per-conversation mutes: a member's `muted_until`, one row while muted.
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult};

use super::stmt;

#[derive(FromQueryResult)]
struct Row {
    muted_until: DateTime<Utc>,
}

/// The member's `muted_until`, if a mute row exists (it may lie in the past).
pub async fn get<C: ConnectionTrait>(
    db: &C,
    user: i64,
    conversation: i64,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    Ok(Row::find_by_statement(stmt(
        db,
        "SELECT muted_until FROM conversation_mutes WHERE conversation_id = $1 AND user_id = $2",
        [conversation.into(), user.into()],
    ))
    .one(db)
    .await?
    .map(|r| r.muted_until))
}

/// Mutes until `until`, or unmutes (None).
pub async fn set<C: ConnectionTrait>(
    db: &C,
    user: i64,
    conversation: i64,
    until: Option<DateTime<Utc>>,
) -> anyhow::Result<()> {
    let statement = match until {
        Some(until) => stmt(
            db,
            "INSERT INTO conversation_mutes (conversation_id, user_id, muted_until) VALUES ($1, $2, $3) \
             ON CONFLICT (conversation_id, user_id) DO UPDATE SET muted_until = excluded.muted_until",
            [conversation.into(), user.into(), until.into()],
        ),
        None => stmt(
            db,
            "DELETE FROM conversation_mutes WHERE conversation_id = $1 AND user_id = $2",
            [conversation.into(), user.into()],
        ),
    };
    db.execute_raw(statement).await?;
    Ok(())
}
