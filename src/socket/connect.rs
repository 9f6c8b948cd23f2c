//! Connection lifecycle: authenticate the handshake, register handlers, say goodbye.
use std::sync::Arc;

use socketioxide::{
    SocketIo,
    extract::{SocketRef, State, TryData},
};
use thiserror::Error;

use super::{
    events::{self, AuthPayload, Authenticated, device_room, user_room},
    expiry, messaging, ping, receipts,
    session::{Phase, Session},
    sync, typing,
};
use crate::{auth::jwt::TokenError, config::CorsOrigins, domain::limits::SocketRefusal, state::AppState};

/// Why a handshake was refused; the client reads this as `connect_error`'s message.
#[derive(Debug, Error)]
pub enum AuthError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("user not found")]
    UnknownUser,
    #[error("authentication temporarily unavailable")]
    Unavailable,
    #[error(transparent)]
    Limit(#[from] SocketRefusal),
    #[error("origin not allowed")]
    Origin,
}

/// Connect middleware: runs before the client is told it is connected, so a refused
/// socket never exists for the rest of the server.
pub async fn authenticate(
    s: SocketRef,
    TryData(auth): TryData<AuthPayload>,
    State(state): State<AppState>,
) -> Result<(), AuthError> {
    if !origin_allowed(&s, &state.config.cors_origins) {
        return Err(AuthError::Origin);
    }
    let token = auth.ok().and_then(|a| a.token).ok_or(TokenError::Missing)?;
    let verified = state.jwt.verify_claims(&token)?;
    let user_id = verified.user_id;
    match state.known_users.exists(&state.db, user_id).await {
        Ok(true) => {}
        Ok(false) => return Err(AuthError::UnknownUser),
        Err(e) => {
            tracing::error!(error = ?e, user_id, "user lookup during handshake failed");
            return Err(AuthError::Unavailable);
        }
    }
    let admission = state.limits.sockets.admit(user_id)?;
    s.extensions
        .insert(Session::new(user_id, verified.expires_at, Some(admission)));
    // Handlers go on before the CONNECT packet leaves: events a client sends the moment it
    // is connected would otherwise find no handler and be dropped.
    s.on(events::SEND_MESSAGE, messaging::send_message);
    s.on(events::PING, ping::ping);
    s.on(events::TYPING, typing::typing);
    s.on(events::MARK_READ, receipts::mark_read);
    s.on(events::SYNC, sync::sync);
    s.on(events::AUTH_REFRESH, expiry::refresh);
    s.on_disconnect(on_disconnect);
    Ok(())
}

/// With `CORS_ORIGINS` set, a browser handshake from another origin is refused like any
/// cross-origin request. Clients that send no `Origin` (native apps, servers) pass.
fn origin_allowed(s: &SocketRef, origins: &CorsOrigins) -> bool {
    let CorsOrigins::List(list) = origins else {
        return true;
    };
    match s.req_parts().headers.get(axum::http::header::ORIGIN) {
        None => true,
        Some(origin) => origin
            .to_str()
            .is_ok_and(|o| list.iter().any(|allowed| allowed.eq_ignore_ascii_case(o))),
    }
}

/// Runs once the client knows it is connected.
pub async fn on_connect(s: SocketRef, io: SocketIo, State(state): State<AppState>) {
    let Some(session) = s.extensions.get::<Arc<Session>>() else {
        s.disconnect().ok();
        return;
    };
    let hello = Authenticated {
        user_id: session.user_id,
        message: "Authentication successful",
    };
    if let Err(e) = s.emit(events::AUTHENTICATED, &hello) {
        tracing::debug!(error = %e, "could not greet socket");
    }
    expiry::watch(io, s.id, &session);
    // Receipts, presence and group events reach the device at once; messages only once
    // its offline queue is handed over (the dispatcher then adds the conversation rooms).
    s.join([user_room(session.user_id), device_room(&s.id.to_string())]);
    let mut phase = session.phase.lock().await;
    if *phase == Phase::Authenticated {
        *phase = Phase::Connected;
        state
            .messaging
            .device_connected(session.user_id, s.id.to_string())
            .await;
    }
}

async fn on_disconnect(s: SocketRef, State(state): State<AppState>) {
    let Some(session) = s.extensions.get::<Arc<Session>>() else {
        return;
    };
    let mut phase = session.phase.lock().await;
    let was = std::mem::replace(&mut *phase, Phase::Gone);
    if was == Phase::Connected {
        state
            .messaging
            .device_disconnected(session.user_id, s.id.to_string())
            .await;
    }
}
