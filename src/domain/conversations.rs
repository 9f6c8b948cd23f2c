//! Conversation list, history and read state, always checked against membership.
use chrono::Utc;
use sea_orm::DatabaseConnection;

use super::{DomainError, DomainResult};
use crate::store::{
    self,
    conversations::{ConversationSummary, HistoryMessage},
};

/// The most messages one history page returns.
pub const MAX_PAGE: u64 = 100;

pub async fn list(db: &DatabaseConnection, user: i64) -> DomainResult<Vec<ConversationSummary>> {
    Ok(store::conversations::list_for_user(db, user).await?)
}

/// Missing and not-a-member are one error, so ids cannot be probed.
async fn require_member(db: &DatabaseConnection, conversation: i64, user: i64) -> DomainResult<()> {
    if store::conversations::is_member(db, conversation, user).await? {
        Ok(())
    } else {
        Err(DomainError::ConversationNotFound)
    }
}

pub struct Page {
    pub messages: Vec<HistoryMessage>,
    pub total: i64,
    pub has_more: bool,
}

/// Newest-first history; `limit` is capped at [`MAX_PAGE`].
pub async fn history(
    db: &DatabaseConnection,
    user: i64,
    conversation: i64,
    limit: u64,
    offset: u64,
) -> DomainResult<Page> {
    require_member(db, conversation, user).await?;
    let limit = limit.clamp(1, MAX_PAGE);
    let (messages, total) =
        store::conversations::page_by_offset(db, conversation, limit, offset).await?;
    let has_more = (offset + messages.len() as u64) < total as u64;
    Ok(Page {
        messages,
        total,
        has_more,
    })
}

/// Marks the other party's messages read; returns how many changed.
pub async fn mark_read(db: &DatabaseConnection, user: i64, conversation: i64) -> DomainResult<u64> {
    require_member(db, conversation, user).await?;
    Ok(store::conversations::mark_read(db, conversation, user, Utc::now()).await?)
}
