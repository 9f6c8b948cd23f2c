//! Connection lifecycle: authenticate the handshake, register handlers, say goodbye.
use super::{SocketIo, SocketRef};
use std::sync::Arc;

use metrics::{counter, gauge};
use socketioxide::{
    TransportType,
    extract::{State, TryData},
    recovery::PrivateSessionId,
    socket::DisconnectReason,
};
use thiserror::Error;

use super::{
    events::{self, AuthPayload, Authenticated, device_room, user_room},
    expiry, lifecycle, messaging, ping,
    proof::{Receipts, Recovery},
    receipts,
    session::{Phase, Session},
    sync, typing,
};
use crate::{
    auth::jwt::TokenError,
    config::CorsOrigins,
    domain::{limits::SocketRefusal, sessions::AuthFailure},
    monitoring,
    state::AppState,
};

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

impl AuthError {
    /// A short fixed label for the refused-handshakes series.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Token(TokenError::Missing) => "token_missing",
            AuthError::Token(TokenError::Expired) => "token_expired",
            AuthError::Token(TokenError::Revoked) => "token_revoked",
            AuthError::Token(_) => "token_invalid",
            AuthError::UnknownUser => "unknown_user",
            AuthError::Unavailable => "unavailable",
            AuthError::Limit(SocketRefusal::PerUser) => "user_socket_limit",
            AuthError::Origin => "origin",
        }
    }
}

/// [`authenticate`], with each handshake's outcome counted (refusals by reason).
pub async fn admit(
    s: SocketRef,
    auth: TryData<AuthPayload>,
    state: State<AppState>,
    recovery: State<Arc<Recovery>>,
) -> Result<(), AuthError> {
    let sid = s.id;
    let outcome = authenticate(s, auth, state, recovery).await;
    match &outcome {
        Ok(()) => counter!(monitoring::HANDSHAKES_AUTHENTICATED).increment(1),
        Err(e) => {
            counter!(monitoring::HANDSHAKES_REFUSED, "reason" => e.reason()).increment(1);
            tracing::info!(%sid, reason = e.reason(), "socket handshake refused");
        }
    }
    outcome
}

/// Connect middleware: runs before the client is told it is connected, so a refused
/// socket never exists for the rest of the server.
pub async fn authenticate(
    s: SocketRef,
    TryData(auth): TryData<AuthPayload>,
    State(state): State<AppState>,
    State(recovery): State<Arc<Recovery>>,
) -> Result<(), AuthError> {
    if !origin_allowed(&s, &state.config.cors_origins) {
        return Err(AuthError::Origin);
    }
    let AuthPayload {
        token,
        pid: came_back,
        offset,
    } = auth.map_err(|_| TokenError::Missing)?;
    let token = token.ok_or(TokenError::Missing)?;
    let verified = match state.sessions.authenticate(&token).await {
        Ok(verified) => verified,
        Err(AuthFailure::Token(e)) => return Err(e.into()),
        Err(AuthFailure::UnknownUser) => return Err(AuthError::UnknownUser),
        Err(AuthFailure::Unavailable) => return Err(AuthError::Unavailable),
    };
    let user_id = verified.user_id;
    let admission = state.limits.sockets.admit(user_id)?;
    // A client that came back with the `pid` of an earlier connection records offsets:
    // what it says it got there is proven before its offline queue is read.
    if let (Some(pid), Some(offset)) = (&came_back, &offset) {
        recovery.recover(pid, offset, user_id, &state.messaging).await;
    }
    let receipts = Receipts::of(&s, state.config.socket_buffer_bytes, came_back.is_some());
    let pid = new_pid();
    recovery.register(&pid, user_id, &receipts);
    s.extensions.insert(PrivateSessionId(pid));
    s.extensions
        .insert(Session::new(user_id, &verified, Some(admission), receipts));
    // Handlers go on before the CONNECT packet leaves: events a client sends the moment it
    // is connected would otherwise find no handler and be dropped.
    s.on(events::SEND_MESSAGE, messaging::send_message);
    s.on(events::PING, ping::ping);
    s.on(events::TYPING, typing::typing);
    s.on(events::MARK_READ, receipts::mark_read);
    s.on(events::SYNC, sync::sync);
    s.on(events::AUTH_REFRESH, expiry::refresh);
    s.on(events::EDIT_MESSAGE, lifecycle::edit_message);
    s.on(events::DELETE_MESSAGE, lifecycle::delete_message);
    s.on(events::REACT, lifecycle::react);
    s.on_disconnect(on_disconnect);
    Ok(())
}

/// With `CORS_ORIGINS` set, a browser handshake from another origin is refused like any
/// cross-origin request. Clients that send no `Origin` (native apps, servers) pass.
fn origin_allowed(s: &SocketRef, origins: &CorsOrigins) -> bool {
    let CorsOrigins::List(list) = origins else {
        return true;
    };
    let headers = &s.req_parts().headers;
    let Some(origin) = headers
        .get(axum::http::header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    else {
        return headers.get(axum::http::header::ORIGIN).is_none();
    };
    // A page this server served itself (the test page) is same-origin.
    let same_host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| {
            origin
                .split_once("://")
                .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
        });
    same_host || list.iter().any(|allowed| allowed.eq_ignore_ascii_case(origin))
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
        // Counted here and in `on_disconnect` under the phase lock: exactly once each.
        gauge!(monitoring::SOCKETS_CONNECTED).increment(1);
        tracing::info!(
            user_id = session.user_id,
            sid = %s.id,
            transport = transport_name(s.transport_type()),
            "socket connected"
        );
        state
            .messaging
            .device_connected(session.user_id, s.id.to_string())
            .await;
    }
}

async fn on_disconnect(
    s: SocketRef,
    reason: DisconnectReason,
    State(state): State<AppState>,
    State(recovery): State<Arc<Recovery>>,
) {
    let Some(session) = s.extensions.get::<Arc<Session>>() else {
        return;
    };
    if let Some(PrivateSessionId(pid)) = s.extensions.get::<PrivateSessionId>() {
        recovery.retire(pid);
    }
    let mut phase = session.phase.lock().await;
    let was = std::mem::replace(&mut *phase, Phase::Gone);
    if was == Phase::Connected {
        gauge!(monitoring::SOCKETS_CONNECTED).decrement(1);
        tracing::info!(
            user_id = session.user_id,
            sid = %s.id,
            transport = transport_name(s.transport_type()),
            %reason,
            "socket disconnected"
        );
        state
            .messaging
            .device_disconnected(session.user_id, s.id.to_string())
            .await;
    }
}

/// A private session id: only the client it is sent to learns it.
fn new_pid() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

fn transport_name(transport: TransportType) -> &'static str {
    match transport {
        TransportType::Polling => "polling",
        TransportType::Websocket => "websocket",
    }
}
