//! `edit_message`, `delete_message` and `react`: parse, call the domain, acknowledge;
//! and the announcements of what changed, to the conversation's room.
use std::sync::Arc;

use socketioxide::extract::{State, TryData};

use super::{AckSender, SocketIo, SocketRef};

use super::{
    events::{
        self, DeleteMessageIn, EditMessageIn, IdField, MessageDeleted, MessageEdited, ReactIn,
        ReactionChanged, conversation_room, iso, reaction_counts,
    },
    reply::{invalid, reply_error},
    session::Session,
};
use crate::{
    domain::{
        DomainError,
        lifecycle::{self, Change, ChangeKind, rules::Emoji},
        types::Content,
    },
    state::AppState,
};

/// What the members hear of a change, as one of the three events and its payload.
pub enum ChangeEvent {
    Edited(MessageEdited),
    Deleted(MessageDeleted),
    Reaction(ReactionChanged),
}

impl From<Change> for ChangeEvent {
    fn from(c: Change) -> Self {
        match c.kind {
            ChangeKind::Edited { content, edited_at } => ChangeEvent::Edited(MessageEdited {
                conversation_id: c.conversation_id,
                message_id: c.message_id,
                content,
                edited_at: iso(edited_at),
                version: c.version,
            }),
            ChangeKind::Deleted { deleted_at } => ChangeEvent::Deleted(MessageDeleted {
                conversation_id: c.conversation_id,
                message_id: c.message_id,
                deleted_at: iso(deleted_at),
                version: c.version,
            }),
            ChangeKind::Reaction {
                user_id,
                emoji,
                counts,
            } => ChangeEvent::Reaction(ReactionChanged {
                conversation_id: c.conversation_id,
                message_id: c.message_id,
                user_id,
                emoji,
                reactions: reaction_counts(counts),
                version: c.version,
            }),
        }
    }
}

/// Tells every live device of the conversation's members, the actor's included, by a
/// broadcast to its room (which crosses nodes once rooms are shared).
pub async fn announce(io: &SocketIo, change: Change) {
    let room = io.to(conversation_room(change.conversation_id));
    let (conversation_id, message_id) = (change.conversation_id, change.message_id);
    let sent = match ChangeEvent::from(change) {
        ChangeEvent::Edited(p) => room.emit(events::MESSAGE_EDITED, &p).await,
        ChangeEvent::Deleted(p) => room.emit(events::MESSAGE_DELETED, &p).await,
        ChangeEvent::Reaction(p) => room.emit(events::REACTION_CHANGED, &p).await,
    };
    if let Err(e) = sent {
        tracing::warn!(error = %e, conversation_id, message_id, "message change not announced");
    }
}

fn message_id(id: &IdField) -> Result<i64, DomainError> {
    id.parse()
        .ok_or_else(|| invalid("message_id must be a message id"))
}

/// The caller, once its share of the send rate allows another change.
fn caller(s: &SocketRef, state: &AppState) -> Result<i64, DomainError> {
    let session = s
        .extensions
        .get::<Arc<Session>>()
        .ok_or(DomainError::Unavailable)?;
    state.limits.sends.check(session.user_id)?;
    Ok(session.user_id)
}

pub async fn edit_message(
    s: SocketRef,
    ack: AckSender,
    State(state): State<AppState>,
    TryData(payload): TryData<EditMessageIn>,
) {
    let edited = async {
        let user = caller(&s, &state)?;
        let p = payload.map_err(|_| invalid("edit_message needs message_id and content (a string)"))?;
        let id = message_id(&p.message_id)?;
        let content = Content::parse(p.content, state.config.max_message_bytes)?;
        lifecycle::edit(
            &state.db,
            &state.messaging,
            state.config.edit_window,
            user,
            id,
            content,
        )
        .await
    }
    .await;
    match edited.map(ChangeEvent::from) {
        Ok(ChangeEvent::Edited(payload)) => {
            ack.send(&payload).ok();
        }
        Ok(_) => reply_error(&s, ack, &unexpected()),
        Err(e) => reply_error(&s, ack, &e),
    }
}

pub async fn delete_message(
    s: SocketRef,
    ack: AckSender,
    State(state): State<AppState>,
    TryData(payload): TryData<DeleteMessageIn>,
) {
    let deleted = async {
        let user = caller(&s, &state)?;
        let p = payload.map_err(|_| invalid("delete_message needs message_id"))?;
        lifecycle::delete(&state.db, &state.messaging, user, message_id(&p.message_id)?).await
    }
    .await;
    match deleted.map(ChangeEvent::from) {
        Ok(ChangeEvent::Deleted(payload)) => {
            ack.send(&payload).ok();
        }
        Ok(_) => reply_error(&s, ack, &unexpected()),
        Err(e) => reply_error(&s, ack, &e),
    }
}

pub async fn react(
    s: SocketRef,
    ack: AckSender,
    State(state): State<AppState>,
    TryData(payload): TryData<ReactIn>,
) {
    let reacted = async {
        let user = caller(&s, &state)?;
        let p =
            payload.map_err(|_| invalid("react needs message_id and emoji (a string, or null to clear)"))?;
        let id = message_id(&p.message_id)?;
        let emoji = p.emoji.as_deref().map(Emoji::parse).transpose()?;
        lifecycle::react(&state.db, &state.messaging, user, id, emoji).await
    }
    .await;
    match reacted.map(ChangeEvent::from) {
        Ok(ChangeEvent::Reaction(payload)) => {
            ack.send(&payload).ok();
        }
        Ok(_) => reply_error(&s, ack, &unexpected()),
        Err(e) => reply_error(&s, ack, &e),
    }
}

/// A change of another kind than asked for: a bug, never shown in detail.
fn unexpected() -> DomainError {
    DomainError::Internal(anyhow::anyhow!("the domain answered a change of another kind"))
}
