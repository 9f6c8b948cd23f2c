//! `mark_read`: the socket form of `POST /api/messages/read`, with an optional bound.
use super::{AckSender, SocketRef};
use std::sync::Arc;

use socketioxide::extract::{State, TryData};

use super::{
    events::{MarkReadAck, MarkReadIn},
    reply::{invalid, reply_error},
    session::Session,
};
use crate::{domain::conversations, state::AppState};

pub async fn mark_read(
    s: SocketRef,
    ack: AckSender,
    State(state): State<AppState>,
    TryData(payload): TryData<MarkReadIn>,
) {
    let Some(session) = s.extensions.get::<Arc<Session>>() else {
        return;
    };
    let parsed = payload
        .map_err(|_| invalid("mark_read needs conversation_id (and optionally up_to_message_id)"))
        .and_then(|p| {
            let conversation = p
                .conversation_id
                .parse()
                .ok_or_else(|| invalid("conversation_id must be an id"))?;
            let up_to = match p.up_to_message_id {
                None => None,
                Some(id) => Some(
                    id.parse()
                        .ok_or_else(|| invalid("up_to_message_id must be a message id"))?,
                ),
            };
            Ok((conversation, up_to))
        });
    let (conversation, up_to) = match parsed {
        Ok(p) => p,
        Err(e) => return reply_error(&s, ack, &e),
    };
    let device = Some(s.id.to_string());
    match conversations::mark_read(
        &state.db,
        &state.messaging,
        session.user_id,
        conversation,
        up_to,
        device,
    )
    .await
    {
        Ok(messages_marked) => {
            ack.send(&MarkReadAck {
                success: true,
                messages_marked,
            })
            .ok();
        }
        Err(e) => reply_error(&s, ack, &e),
    }
}
