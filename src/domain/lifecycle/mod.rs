//! A message's life after it is sent: edits, deletion for everyone, reactions, and the
//! change cursor a returning device catches up with.
//!
//! Each change runs in its own transaction that takes the conversation's next
//! `version` under the row lock the batch writer also takes, so versions are gap-free
//! and commit in order (see `store::lifecycle`). The members are told through the
//! transport ([`Outcome::Changed`]); a device that was away asks `sync` for what changed
//! after the last version it saw.
pub mod rules;

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use super::{
    DomainError, DomainResult,
    groups::Role,
    messaging::{Messaging, Outcome},
    types::Content,
};
pub use crate::store::lifecycle::Reactions;
use crate::store::{self, conversations::HistoryMessage, lifecycle::Locked};
use rules::{Emoji, Standing};

/// What happened to a message, for its conversation's members.
#[derive(Debug, Clone)]
pub struct Change {
    pub conversation_id: i64,
    pub message_id: i64,
    /// The conversation's version this change took.
    pub version: i64,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone)]
pub enum ChangeKind {
    Edited {
        content: String,
        edited_at: DateTime<Utc>,
    },
    Deleted {
        deleted_at: DateTime<Utc>,
    },
    /// `user_id` set (`Some`) or cleared (`None`) their reaction; `counts` per emoji after it.
    Reaction {
        user_id: i64,
        emoji: Option<String>,
        counts: Vec<(String, i64)>,
    },
}

/// Opens the change and checks the caller is a current member; returns their role.
async fn open(db: &DatabaseConnection, user: i64, message_id: i64) -> DomainResult<(Locked, Role)> {
    let locked = store::lifecycle::lock(db, message_id, user)
        .await?
        .ok_or(DomainError::MessageNotFound)?;
    let t = &locked.target;
    let standing = match (&t.role, t.left) {
        (Some(role), _) => Standing::Member(Role::parse(role).unwrap_or(Role::Member)),
        (None, true) => Standing::Left,
        (None, false) => Standing::Stranger,
    };
    match rules::member_role(standing) {
        Ok(role) => Ok((locked, role)),
        Err(e) => {
            store::lifecycle::abandon(locked).await?;
            Err(e)
        }
    }
}

/// In a direct chat, edits and reactions reach the other user: never across a block
/// (as messages do not). Deleting stays possible: it only takes something away.
async fn refuse_across_block(locked: &Locked, user: i64) -> DomainResult<()> {
    match locked.target.other_user {
        Some(other) if locked.blocked(user, other).await? => Err(DomainError::Blocked),
        _ => Ok(()),
    }
}

/// Ends an opened change without changing anything, passing on `e`.
async fn refuse<T>(locked: Locked, e: DomainError) -> DomainResult<T> {
    store::lifecycle::abandon(locked).await?;
    Err(e)
}

/// The sender replaces a message's text within the edit window.
pub async fn edit(
    db: &DatabaseConnection,
    messaging: &Messaging,
    window: Duration,
    user: i64,
    message_id: i64,
    content: Content,
) -> DomainResult<Change> {
    let (locked, _) = open(db, user, message_id).await?;
    let now = store::now();
    let t = locked.target.clone();
    if let Err(e) = rules::may_edit(user, t.sender_id, t.sent_at, t.deleted_at.is_some(), now, window) {
        return refuse(locked, e).await;
    }
    if t.encrypted {
        return refuse(locked, DomainError::EncryptedEdit).await;
    }
    if let Err(e) = refuse_across_block(&locked, user).await {
        return refuse(locked, e).await;
    }
    let version = locked.version;
    let content = content.into_inner();
    locked.edit(&content, now).await?;
    Ok(announce(
        messaging,
        Change {
            conversation_id: t.conversation_id,
            message_id,
            version,
            kind: ChangeKind::Edited {
                content,
                edited_at: now,
            },
        },
    ))
}

/// Deletes a message for everyone, leaving a tombstone. Deleting it again changes
/// nothing and answers the first deletion.
pub async fn delete(
    db: &DatabaseConnection,
    messaging: &Messaging,
    user: i64,
    message_id: i64,
) -> DomainResult<Change> {
    let (locked, role) = open(db, user, message_id).await?;
    let t = locked.target.clone();
    if let Err(e) = rules::may_delete(user, t.sender_id, t.is_group, role) {
        return refuse(locked, e).await;
    }
    if let Some(deleted_at) = t.deleted_at {
        store::lifecycle::abandon(locked).await?;
        return Ok(Change {
            conversation_id: t.conversation_id,
            message_id,
            version: t.version,
            kind: ChangeKind::Deleted { deleted_at },
        });
    }
    let now = store::now();
    let version = locked.version;
    locked.delete(now).await?;
    Ok(announce(
        messaging,
        Change {
            conversation_id: t.conversation_id,
            message_id,
            version,
            kind: ChangeKind::Deleted { deleted_at: now },
        },
    ))
}

/// Sets (`Some`) or clears (`None`) the caller's one reaction to a message.
pub async fn react(
    db: &DatabaseConnection,
    messaging: &Messaging,
    user: i64,
    message_id: i64,
    emoji: Option<Emoji>,
) -> DomainResult<Change> {
    let (locked, _) = open(db, user, message_id).await?;
    let t = locked.target.clone();
    if let Err(e) = rules::may_react(t.deleted_at.is_some()) {
        return refuse(locked, e).await;
    }
    if let Err(e) = refuse_across_block(&locked, user).await {
        return refuse(locked, e).await;
    }
    let version = locked.version;
    let emoji = emoji.map(|e| e.as_str().to_owned());
    let counts = locked.react(user, emoji.as_deref(), store::now()).await?;
    Ok(announce(
        messaging,
        Change {
            conversation_id: t.conversation_id,
            message_id,
            version,
            kind: ChangeKind::Reaction {
                user_id: user,
                emoji,
                counts,
            },
        },
    ))
}

fn announce(messaging: &Messaging, change: Change) -> Change {
    messaging.announce_now(Outcome::Changed(change.clone()));
    change
}

/// The reactions of these messages as `user` sees them (history, sync).
pub async fn reactions_of(
    db: &DatabaseConnection,
    user: i64,
    messages: &[HistoryMessage],
) -> DomainResult<HashMap<i64, Reactions>> {
    let ids: Vec<i64> = messages.iter().map(|m| m.id).collect();
    Ok(store::lifecycle::reactions(db, &ids, user).await?)
}

/// What changed after a version cursor, with reactions as the caller sees them.
pub struct Changes {
    /// Each message's current state, conversations in the order asked, each in version order.
    pub messages: Vec<HistoryMessage>,
    pub reactions: HashMap<i64, Reactions>,
    pub has_more: bool,
}

/// Most conversations one changes `sync` may name (as for the seq form).
pub const MAX_SYNC_CONVERSATIONS: usize = super::conversations::MAX_SYNC_CONVERSATIONS;

/// Messages inserted, edited, deleted or reacted to after each `(conversation,
/// version)`, at most `budget` in all. Every conversation must be one the caller belongs to.
pub async fn changes(
    db: &DatabaseConnection,
    user: i64,
    since: &[(i64, i64)],
    budget: u64,
) -> DomainResult<Changes> {
    if since.len() > MAX_SYNC_CONVERSATIONS {
        return Err(DomainError::InvalidInput(format!(
            "sync accepts at most {MAX_SYNC_CONVERSATIONS} conversations"
        )));
    }
    // A conversation named twice counts once, at its first position.
    let mut seen = std::collections::HashSet::new();
    let since: Vec<(i64, i64)> = since.iter().copied().filter(|(c, _)| seen.insert(*c)).collect();
    if since.is_empty() {
        return Ok(Changes {
            messages: Vec::new(),
            reactions: HashMap::new(),
            has_more: false,
        });
    }
    let named: Vec<i64> = since.iter().map(|(c, _)| *c).collect();
    let open = store::conversations::memberships_among(db, user, &named).await?;
    if open.len() != named.len() {
        return Err(DomainError::ConversationNotFound);
    }
    let (messages, has_more) = store::lifecycle::changed_after(db, &since, budget).await?;
    let reactions = reactions_of(db, user, &messages).await?;
    Ok(Changes {
        messages,
        reactions,
        has_more,
    })
}
