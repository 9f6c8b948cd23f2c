//! Every Engine.IO session opens with a handshake request (one without a `sid`). Here,
//! before socketioxide sees it, the session takes a slot of `MAX_CONNECTIONS`, held
//! for its whole life whether it ever authenticates or not, and is given the
//! [`Heartbeats`] that prove what it receives (`proof`).
use std::sync::Arc;

use axum::{
    Json,
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use engineioxide::Heartbeats;
use metrics::{counter, gauge};
use serde_json::json;

use crate::{domain::limits::Connections, monitoring};

/// The path socketioxide serves (its default).
const SOCKET_IO_PATH: &str = "/socket.io/";

pub async fn admit(State(connections): State<Arc<Connections>>, mut req: Request, next: Next) -> Response {
    if !opens_session(&req) {
        return next.run(req).await;
    }
    let Some(slot) = connections.admit() else {
        counter!(monitoring::HANDSHAKES_REFUSED, "reason" => "connection_limit").increment(1);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "5")],
            Json(json!({ "error": "server connection limit reached" })),
        )
            .into_response();
    };
    gauge!(monitoring::CONNECTIONS_OPEN).set(connections.count() as f64);
    // engineioxide keeps the handshake's extensions for the life of the session.
    req.extensions_mut().insert(slot);
    req.extensions_mut().insert(Heartbeats::new());
    next.run(req).await
}

/// A request to the Socket.IO path that names no existing session.
fn opens_session(req: &Request) -> bool {
    req.uri().path().starts_with(SOCKET_IO_PATH)
        && !req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|pair| pair.starts_with("sid=")))
}
