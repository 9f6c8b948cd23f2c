//! `sync`: what a reconnecting client missed, by per-conversation seq.
use std::sync::Arc;

use socketioxide::extract::{AckSender, SocketRef, State, TryData};

use super::{
    events::{SyncAck, SyncIn, SyncedMessage, iso},
    reply::{invalid, reply_error},
    session::Session,
};
use crate::{domain::conversations, state::AppState};

/// Most messages one `sync` answers; the client asks again while `has_more`.
const SYNC_BUDGET: u64 = 500;

pub async fn sync(
    s: SocketRef,
    ack: AckSender,
    State(state): State<AppState>,
    TryData(payload): TryData<SyncIn>,
) {
    let Some(session) = s.extensions.get::<Arc<Session>>() else {
        return;
    };
    if let Err(e) = state.limits.sync.check(session.user_id) {
        return reply_error(&s, ack, &e);
    }
    let since = match payload {
        Ok(p) => p
            .since
            .iter()
            .map(|s| (s.conversation_id, s.after_seq.max(0)))
            .collect::<Vec<_>>(),
        Err(_) => {
            let e = invalid("sync needs since: [{ conversation_id, after_seq }]");
            return reply_error(&s, ack, &e);
        }
    };
    match conversations::sync(&state.db, session.user_id, &since, SYNC_BUDGET).await {
        Ok((messages, has_more)) => {
            let messages = messages
                .into_iter()
                .map(|m| SyncedMessage {
                    message_id: m.id,
                    conversation_id: m.conversation_id,
                    from_user_id: m.sender_id,
                    content: m.content,
                    sent_at: iso(m.sent_at),
                    seq: m.seq,
                    delivered_at: m.delivered_at.map(iso),
                    read_at: m.read_at.map(iso),
                })
                .collect();
            ack.send(&SyncAck { messages, has_more }).ok();
        }
        Err(e) => reply_error(&s, ack, &e),
    }
}
