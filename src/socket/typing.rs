//! `typing`: forward to the other members, throttled, expiring, refused to non-members.
use super::{AckSender, SocketIo, SocketRef};
use std::{sync::Arc, time::Instant};

use socketioxide::extract::{State, TryData};

use super::{
    events::{self, TypingIn, TypingOut, conversation_room, user_room},
    reply::{invalid, reply_error},
    session::Session,
};
use crate::{
    domain::{
        DomainResult,
        conversations::{self, Target},
    },
    state::AppState,
};

pub async fn typing(
    s: SocketRef,
    io: SocketIo,
    ack: AckSender,
    State(state): State<AppState>,
    TryData(payload): TryData<TypingIn>,
) {
    let Some(session) = s.extensions.get::<Arc<Session>>() else {
        return;
    };
    let me = session.user_id;
    if let Err(e) = state.limits.typing.check(me) {
        return reply_error(&s, ack, &e);
    }
    let (conversation, is_typing) = match resolve(&state, me, payload).await {
        Ok(found) => found,
        Err(e) => return reply_error(&s, ack, &e),
    };
    if !is_typing {
        if state.typing.stop(conversation, me) {
            announce(&io, conversation, me, false).await;
        }
        return;
    }
    let started = state.typing.start(conversation, me, Instant::now());
    if started.forward {
        announce(&io, conversation, me, true).await;
    }
    // Without a follow-up, the indicator ends by itself.
    let timeout = state.config.typing_timeout;
    tokio::spawn(async move {
        tokio::time::sleep(timeout).await;
        if state.typing.expire(conversation, me, started.generation) {
            announce(&io, conversation, me, false).await;
        }
    });
}

async fn resolve(
    state: &AppState,
    me: i64,
    payload: Result<TypingIn, socketioxide::ParserError>,
) -> DomainResult<(i64, bool)> {
    let p = payload
        .map_err(|_| invalid("typing needs conversation_id or to_user_id, and is_typing (a boolean)"))?;
    let target = match (&p.conversation_id, &p.to_user_id) {
        (Some(c), None) => Target::Conversation(
            c.parse()
                .ok_or_else(|| invalid("conversation_id must be an id"))?,
        ),
        (None, Some(u)) => {
            Target::DirectWith(u.parse().ok_or_else(|| invalid("to_user_id must be a user id"))?)
        }
        _ => {
            return Err(invalid(
                "typing needs exactly one of conversation_id or to_user_id",
            ));
        }
    };
    let conversation = conversations::resolve(&state.db, me, target).await?;
    Ok((conversation, p.is_typing))
}

/// Tells the other members' live devices that `user` is (not) typing.
pub async fn announce(io: &SocketIo, conversation_id: i64, user_id: i64, is_typing: bool) {
    let payload = TypingOut {
        conversation_id,
        user_id,
        is_typing,
    };
    io.to(conversation_room(conversation_id))
        .except(user_room(user_id))
        .emit(events::TYPING, &payload)
        .await
        .ok();
}
