//! What a user may know about the people they talk to: presence and last seen.
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use super::{DomainError, DomainResult, presence::Presence};
use crate::store;

/// One contact's presence.
pub struct ContactPresence {
    pub user_id: i64,
    pub online: bool,
    pub last_seen: Option<DateTime<Utc>>,
}

/// Most ids one presence query may ask about.
pub const MAX_PRESENCE_IDS: usize = 500;

/// Presence of the requested users who share a conversation (direct or group) with
/// `caller`; others are omitted.
pub async fn presence_of(
    db: &DatabaseConnection,
    presence: &Presence,
    caller: i64,
    requested: &[i64],
) -> DomainResult<Vec<ContactPresence>> {
    if requested.len() > MAX_PRESENCE_IDS {
        return Err(DomainError::InvalidInput(format!(
            "at most {MAX_PRESENCE_IDS} user_ids per request"
        )));
    }
    let contacts = store::conversations::contacts(db, caller).await?;
    let visible: Vec<i64> = requested
        .iter()
        .copied()
        .filter(|id| contacts.contains(id))
        .collect();
    let mut rows = store::users::last_seen_of(db, &visible).await?;
    rows.sort_by_key(|(id, _)| visible.iter().position(|v| v == id));
    Ok(rows
        .into_iter()
        .map(|(user_id, last_seen)| ContactPresence {
            user_id,
            online: presence.appears_online(user_id),
            last_seen,
        })
        .collect())
}

/// A user someone blocked, and since when.
pub struct BlockedUser {
    pub user_id: i64,
    pub blocked_at: DateTime<Utc>,
}

/// Blocks `other` for `user`: direct messages between them are refused both ways and
/// neither sees the other's presence. Blocking again changes nothing.
pub async fn block(db: &DatabaseConnection, user: i64, other: i64) -> DomainResult<()> {
    if other == user {
        return Err(DomainError::Unprocessable("you cannot block yourself".into()));
    }
    if store::users::existing_ids(db, &[other]).await?.is_empty() {
        return Err(DomainError::UserNotFound);
    }
    store::blocks::block(db, user, other, Utc::now()).await?;
    Ok(())
}

/// Lifts a block (lifting one that does not exist changes nothing).
pub async fn unblock(db: &DatabaseConnection, user: i64, other: i64) -> DomainResult<()> {
    store::blocks::unblock(db, user, other).await?;
    Ok(())
}

/// The users `user` has blocked, most recent first.
pub async fn blocked(db: &DatabaseConnection, user: i64) -> DomainResult<Vec<BlockedUser>> {
    Ok(store::blocks::list(db, user)
        .await?
        .into_iter()
        .map(|b| BlockedUser {
            user_id: b.blocked_id,
            blocked_at: b.created_at,
        })
        .collect())
}
