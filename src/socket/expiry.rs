//! A socket lives no longer than its token: at `exp` it is told why and disconnected,
//! unless the client sent a fresh token (`auth_refresh`) before. Reconnecting with a
//! fresh token loses nothing: the offline queue and `sync` pick up where it left off.
use super::{AckSender, SocketIo, SocketRef};
use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use socketioxide::{
    extract::{State, TryData},
    socket::Sid,
};

use super::{
    events::{AuthRefresh, AuthRefreshed, iso},
    reply::{emit_error, invalid, reply_error},
    session::Session,
};
use crate::{domain::DomainError, state::AppState};

/// Ends the socket when its token expires. Holds only the socket's id and a weak
/// session, so a socket that leaves earlier (and its connection slot) is not kept
/// alive by this task.
pub fn watch(io: SocketIo, sid: Sid, session: &Arc<Session>) {
    let session = Arc::downgrade(session);
    tokio::spawn(async move {
        loop {
            let Some(expires_at) = session.upgrade().map(|s| s.expires_at()) else {
                return;
            };
            let left = expires_at - Utc::now().timestamp();
            if left > 0 {
                tokio::time::sleep(Duration::from_secs(left as u64)).await;
                if io.get_socket(sid).is_none() {
                    return;
                }
                continue;
            }
            let Some(s) = io.get_socket(sid) else {
                return;
            };
            emit_error(&s, &DomainError::TokenExpired);
            s.disconnect().ok();
            return;
        }
    });
}

/// `auth_refresh { token }`: a valid token for the same user moves the socket's expiry.
pub async fn refresh(
    s: SocketRef,
    ack: AckSender,
    State(state): State<AppState>,
    TryData(payload): TryData<AuthRefresh>,
) {
    let Some(session) = s.extensions.get::<Arc<Session>>() else {
        return;
    };
    let Ok(payload) = payload else {
        return reply_error(&s, ack, &invalid("auth_refresh needs token (a string)"));
    };
    match state.sessions.authenticate(&payload.token).await {
        Ok(v) if v.user_id == session.user_id => {
            session.extend(&v);
            let expires_at = DateTime::<Utc>::from_timestamp(session.expires_at(), 0).unwrap_or_default();
            ack.send(&AuthRefreshed {
                success: true,
                expires_at: iso(expires_at),
            })
            .ok();
        }
        Ok(_) => reply_error(
            &s,
            ack,
            &DomainError::InvalidToken("the token names another user".into()),
        ),
        Err(e) => reply_error(&s, ack, &DomainError::InvalidToken(e.to_string())),
    }
}
