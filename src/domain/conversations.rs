//! Conversation list, history and read state, always checked against membership.
use std::collections::HashMap;

use sea_orm::DatabaseConnection;

use super::{
    DomainError, DomainResult,
    lifecycle::{self, Reactions},
    messaging::{Messaging, Outcome, ReadReceipt},
    presence::{DeviceId, Presence},
};
pub use crate::store::conversation_list::ListCursor;
use crate::store::{
    self,
    conversation_list::ConversationSummary,
    conversations::{HistoryMessage, SeqRange},
};

/// The conversations each of `users` belongs to now.
pub async fn memberships(db: &DatabaseConnection, users: &[i64]) -> DomainResult<HashMap<i64, Vec<i64>>> {
    let mut of: HashMap<i64, Vec<i64>> = HashMap::new();
    for (user, conversation) in store::delivery::memberships(db, users).await? {
        of.entry(user).or_default().push(conversation);
    }
    Ok(of)
}

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

/// Most conversations one page of the list holds.
pub const MAX_LIST_PAGE: u64 = 200;

/// The user's conversations, most recently updated first: all of them (the seed's
/// form), or a page of at most `limit` after `cursor`.
pub async fn list(
    db: &DatabaseConnection,
    presence: &Presence,
    user: i64,
    page: Option<(u64, Option<ListCursor>)>,
) -> DomainResult<Vec<ConversationView>> {
    let page = page.map(|(limit, cursor)| (limit.clamp(1, MAX_LIST_PAGE), cursor));
    let rows = store::conversation_list::list_for_user(db, user, page).await?;
    Ok(rows
        .into_iter()
        .map(|mut summary| {
            let other_user_id = match (summary.user_a, summary.user_b) {
                (Some(a), Some(b)) => Some(if a == user { b } else { a }),
                _ => None,
            };
            // The other's presence shows only once they have written here, and never
            // across a block (see `contacts`).
            let visible =
                other_user_id.is_some() && summary.other_has_written == Some(true) && !summary.other_blocked;
            if !visible {
                summary.other_last_seen = None;
            }
            ConversationView {
                online: other_user_id
                    .and(visible.then(|| other_user_id.is_some_and(|id| presence.appears_online(id)))),
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
    /// The reactions of the page's messages, as the caller sees them (by message id).
    pub reactions: HashMap<i64, Reactions>,
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
    let reactions = lifecycle::reactions_of(db, user, &messages).await?;
    Ok(Page {
        messages,
        reactions,
        total,
        has_more,
    })
}

/// Which messages a history page reads.
///
/// Each parameter narrows or shifts the page, so every combination means something:
/// `after_seq` and `before_seq` bound the seqs (both: the messages strictly between),
/// and `offset` skips that many from where the page starts. The page starts at its
/// lower bound (oldest first) when `after_seq` is given, since that is how a client
/// catches up or fills a gap; otherwise at the newest message (newest first), as the
/// seed's offset form and scrolling back with `before_seq` do.
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoryQuery {
    pub after_seq: Option<i64>,
    pub before_seq: Option<i64>,
    pub offset: u64,
}

/// A page of history; `limit` is capped at [`MAX_PAGE`].
pub async fn page(
    db: &DatabaseConnection,
    user: i64,
    conversation: i64,
    limit: u64,
    query: HistoryQuery,
) -> DomainResult<Page> {
    let limit = limit.clamp(1, MAX_PAGE);
    if query.after_seq.is_none() && query.before_seq.is_none() {
        return history(db, user, conversation, limit, query.offset).await;
    }
    let total = member_total(db, conversation, user).await?;
    let range = SeqRange {
        after: query.after_seq,
        before: query.before_seq,
        oldest_first: query.after_seq.is_some(),
    };
    let (messages, has_more) =
        store::conversations::page_by_seq(db, conversation, range, query.offset, limit).await?;
    let reactions = lifecycle::reactions_of(db, user, &messages).await?;
    Ok(Page {
        messages,
        reactions,
        total,
        has_more,
    })
}

/// Most conversations one `sync` may name: as many as fit in one packet of the default
/// size with seven-digit ids (about 48 bytes an entry).
pub const MAX_SYNC_CONVERSATIONS: usize = 400;

/// Messages after each given seq, oldest first per conversation (in the order given), at
/// most `budget` in all, and whether more remain. Two queries however many
/// conversations are named.
pub async fn sync(
    db: &DatabaseConnection,
    user: i64,
    since: &[(i64, i64)],
    budget: u64,
) -> DomainResult<(Vec<HistoryMessage>, bool)> {
    if since.len() > MAX_SYNC_CONVERSATIONS {
        return Err(DomainError::InvalidInput(format!(
            "sync accepts at most {MAX_SYNC_CONVERSATIONS} conversations"
        )));
    }
    if since.is_empty() {
        return Ok((Vec::new(), false));
    }
    // A conversation named twice counts once, at its first position.
    let mut seen = std::collections::HashSet::new();
    let since: Vec<(i64, i64)> = since.iter().copied().filter(|(c, _)| seen.insert(*c)).collect();
    let named: Vec<i64> = since.iter().map(|(c, _)| *c).collect();
    let open = store::conversations::memberships_among(db, user, &named).await?;
    if open.len() != named.len() {
        return Err(DomainError::ConversationNotFound);
    }
    Ok(store::conversations::after_seqs(db, &since, budget).await?)
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
    let now = store::now();
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

/// The conversation `target` names, which `user` must currently belong to. One row is
/// read, however large the conversation: the members are reached through its room.
pub async fn resolve(db: &DatabaseConnection, user: i64, target: Target) -> DomainResult<i64> {
    let conversation = match target {
        Target::Conversation(id) => id,
        Target::DirectWith(other) => store::conversations::direct_between(db, user, other)
            .await?
            .ok_or(DomainError::ConversationNotFound)?,
    };
    require_member(db, conversation, user).await?;
    Ok(conversation)
}
