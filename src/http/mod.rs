//! The REST transport: one module per resource, mirroring the URL tree.
mod auth;
mod conversations;
pub mod error;
mod extract;
mod groups;
mod health;
mod messages;
mod presence;
mod render;
mod users;

use axum::{
    Router,
    routing::{get, patch, post},
};

use crate::state::AppState;

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
        .route("/api/groups", post(groups::create))
        .route("/api/groups/{id}", get(groups::get).patch(groups::update))
        .route("/api/groups/{id}/members", post(groups::add_members))
        .route(
            "/api/groups/{id}/members/{user_id}",
            patch(groups::set_role).delete(groups::remove_member),
        )
        .route("/api/groups/{id}/leave", post(groups::leave))
        .route("/api/messages/{id}/receipts", get(messages::receipts))
}
