//! The REST transport: one module per resource, mirroring the URL tree.
mod auth;
mod conversations;
pub mod error;
mod extract;
mod health;
mod messages;
mod presence;
mod render;
mod users;

use axum::{
    Router,
    routing::{get, post},
};

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health::health))
        .route("/api/auth/register", post(auth::register))
        .route("/api/auth/login", post(auth::login))
        .route("/api/me", get(users::me))
        .route("/api/conversations", get(conversations::list))
        .route("/api/messages", get(messages::history))
        .route("/api/messages/read", post(messages::mark_read))
        .route("/api/presence", get(presence::presence))
}
