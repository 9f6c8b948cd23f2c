//! Conversation list, history and read state, always checked against membership.
use chrono::Utc;
use sea_orm::DatabaseConnection;

use super::{DomainError, DomainResult, messaging::ReadReceipt, presence::DeviceId};
use crate::store::{
    self,
    conversations::{ConversationSummary, HistoryMessage, SeqCursor},
};

/// The most messages one history page returns.
pub const MAX_PAGE: u64 = 100;

pub async fn list(db: &DatabaseConnection, user: i64) -> DomainResult<Vec<ConversationSummary>> {
    Ok(store::conversations::list_for_user(db, user).await?)
}

/// Missing and not-a-member are one error, so ids cannot be probed.
async fn require_member(db: &DatabaseConnection, conversation: i64, user: i64) -> DomainResult<()> {
    member_total(db, conversation, user).await.map(|_| ())
}

/// The conversation's message count, if `user` is a member (one query for both).
async fn member_total(db: &DatabaseConnection, conversation: i64, user: i64) -> DomainResult<i64> {
    store::conversations::member_view(db, conversation, user)
        .await?
        .ok_or(DomainError::ConversationNotFound)
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
    let total = member_total(db, conversation, user).await?;
    let limit = limit.clamp(1, MAX_PAGE);
    let messages = store::conversations::page_by_offset(db, conversation, limit, offset).await?;
    let has_more = (offset + messages.len() as u64) < total as u64;
    Ok(Page {
        messages,
        total,
        has_more,
    })
}

/// Where a history page starts.
#[derive(Debug, Clone, Copy)]
pub enum Cursor {
    /// The seed's form: skip this many, newest first.
    Offset(u64),
    /// Messages after this seq, oldest first (catching up).
    AfterSeq(i64),
    /// Messages before this seq, newest first (scrolling back).
    BeforeSeq(i64),
}

/// A page of history from `cursor`; `limit` is capped at [`MAX_PAGE`].
pub async fn page(
    db: &DatabaseConnection,
    user: i64,
    conversation: i64,
    limit: u64,
    cursor: Cursor,
) -> DomainResult<Page> {
    let limit = limit.clamp(1, MAX_PAGE);
    match cursor {
        Cursor::Offset(offset) => history(db, user, conversation, limit, offset).await,
        Cursor::AfterSeq(seq) => seq_page(db, user, conversation, SeqCursor::After(seq), limit).await,
        Cursor::BeforeSeq(seq) => seq_page(db, user, conversation, SeqCursor::Before(seq), limit).await,
    }
}

async fn seq_page(
    db: &DatabaseConnection,
    user: i64,
    conversation: i64,
    cursor: SeqCursor,
    limit: u64,
) -> DomainResult<Page> {
    let total = member_total(db, conversation, user).await?;
    let (messages, has_more) = store::conversations::page_by_seq(db, conversation, cursor, limit).await?;
    Ok(Page {
        messages,
        total,
        has_more,
    })
}

/// Messages after each given seq, oldest first per conversation, at most `budget` in all.
pub async fn sync(
    db: &DatabaseConnection,
    user: i64,
    since: &[(i64, i64)],
    budget: u64,
) -> DomainResult<(Vec<HistoryMessage>, bool)> {
    let mut out = Vec::new();
    let mut has_more = false;
    for &(conversation, after_seq) in since {
        require_member(db, conversation, user).await?;
        let left = budget.saturating_sub(out.len() as u64);
        if left == 0 {
            has_more = true;
            break;
        }
        let (messages, more) =
            store::conversations::page_by_seq(db, conversation, SeqCursor::After(after_seq), left).await?;
        has_more |= more;
        out.extend(messages);
    }
    Ok((out, has_more))
}

/// Marks the other members' messages read, up to `up_to_message_id` or everything;
/// returns how many changed and the receipt to announce (None when nothing changed).
pub async fn mark_read(
    db: &DatabaseConnection,
    user: i64,
    conversation: i64,
    up_to_message_id: Option<i64>,
    device: Option<DeviceId>,
) -> DomainResult<(u64, Option<ReadReceipt>)> {
    require_member(db, conversation, user).await?;
    let up_to_seq = match up_to_message_id {
        None => None,
        Some(id) => Some(
            store::conversations::seq_of(db, conversation, id)
                .await?
                .ok_or_else(|| {
                    DomainError::InvalidInput("up_to_message_id is not a message of this conversation".into())
                })?,
        ),
    };
    let now = Utc::now();
    let change = store::conversations::mark_read(db, conversation, user, up_to_seq, now).await?;
    let receipt = match (change.marked, change.up_to_message_id) {
        (1.., Some(up_to_message_id)) => Some(ReadReceipt {
            conversation_id: conversation,
            reader_id: user,
            reader_device: device,
            newest_read: change.newest_read,
            up_to_message_id,
            read_at: now,
        }),
        _ => None,
    };
    Ok((change.marked, receipt))
}

/// A conversation named directly, or as the direct chat with a user.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    Conversation(i64),
    DirectWith(i64),
}

/// The conversation `target` names and its members other than `user`, who must be a member.
pub async fn audience(db: &DatabaseConnection, user: i64, target: Target) -> DomainResult<(i64, Vec<i64>)> {
    let conversation = match target {
        Target::Conversation(id) => id,
        Target::DirectWith(other) => store::conversations::direct_between(db, user, other)
            .await?
            .ok_or(DomainError::ConversationNotFound)?,
    };
    let members = store::conversations::members(db, conversation).await?;
    if !members.contains(&user) {
        return Err(DomainError::ConversationNotFound);
    }
    Ok((conversation, members.into_iter().filter(|m| *m != user).collect()))
}
