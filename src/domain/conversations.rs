//! Conversation list, history and read state, always checked against membership.
use chrono::Utc;
use sea_orm::DatabaseConnection;

use super::{
    DomainError, DomainResult,
    messaging::{Messaging, Outcome, ReadReceipt},
    presence::{DeviceId, Presence},
};
use crate::store::{
    self,
    conversations::{ConversationSummary, HistoryMessage, SeqCursor},
};

/// The most messages one history page returns.
pub const MAX_PAGE: u64 = 100;

/// One row of a user's conversation list, as the user sees it.
#[derive(Debug, Clone)]
pub struct ConversationView {
    pub summary: ConversationSummary,
    /// The other participant of a direct conversation; None for groups.
    pub other_user_id: Option<i64>,
    /// For direct conversations: whether the other user appears online.
    pub online: Option<bool>,
}

/// The user's conversations, most recently updated first.
pub async fn list(
    db: &DatabaseConnection,
    presence: &Presence,
    user: i64,
) -> DomainResult<Vec<ConversationView>> {
    Ok(store::conversations::list_for_user(db, user)
        .await?
        .into_iter()
        .map(|summary| {
            let other_user_id = match (summary.user_a, summary.user_b) {
                (Some(a), Some(b)) => Some(if a == user { b } else { a }),
                _ => None,
            };
            ConversationView {
                online: other_user_id.map(|id| presence.appears_online(id)),
                other_user_id,
                summary,
            }
        })
        .collect())
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

/// Moves the caller's read position up to `up_to_message_id` or the newest message, and
/// announces it: `message_read` to each sender now read, `conversation_read` to the
/// reader's other devices, `message_delivered` for what the read settled. Returns how
/// many messages from others became read.
pub async fn mark_read(
    db: &DatabaseConnection,
    messaging: &Messaging,
    user: i64,
    conversation: i64,
    up_to_message_id: Option<i64>,
    device: Option<DeviceId>,
) -> DomainResult<u64> {
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
    if let (1.., Some(up_to_message_id)) = (change.marked, change.up_to_message_id) {
        messaging.announce_now(Outcome::Read(ReadReceipt {
            conversation_id: conversation,
            reader_id: user,
            reader_device: device,
            newest_read: change.newest_read,
            up_to_message_id,
            read_at: now,
        }));
    }
    if !change.delivered.is_empty() {
        messaging.announce_now(Outcome::Delivered {
            messages: change.delivered,
            at: now,
        });
    }
    Ok(change.marked)
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
