//! The REST transport: one module per resource, mirroring the URL tree.
mod attachments;
mod auth;
mod blocks;
mod byte_range;
mod conversations;
pub mod error;
mod extract;
mod groups;
mod health;
mod keys;
mod linger;
mod message_changes;
mod messages;
mod mutes;
pub mod observe;
pub mod openapi;
mod page;
mod presence;
mod render;
mod search;
mod users;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{delete, get, patch, post, put},
};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health::health))
        .route("/", get(page::page))
        .route("/test_client.html", get(page::page))
        .route("/static/test_client.js", get(page::page_script))
        .route("/static/socket.io.min.js", get(page::socket_io_client))
        .route("/api/auth/register", post(auth::register))
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/logout", post(auth::logout))
        .route("/api/auth/logout-all", post(auth::logout_all))
        .route("/api/auth/password", post(auth::change_password))
        .route("/api/me", get(users::me))
        .route("/api/conversations", get(conversations::list))
        .route("/api/conversations/{id}/mute", get(mutes::get).put(mutes::put))
        .route("/api/messages", get(messages::history))
        .route("/api/messages/read", post(messages::mark_read))
        .route("/api/messages/changes", get(message_changes::changes))
        .route(
            "/api/messages/{id}",
            patch(message_changes::edit).delete(message_changes::delete),
        )
        .route("/api/messages/{id}/reaction", put(message_changes::react))
        .route(
            "/api/attachments",
            // The upload enforces ATTACHMENT_MAX_BYTES itself, as it streams.
            post(attachments::upload)
                .layer(DefaultBodyLimit::disable())
                .layer(axum::middleware::from_fn(linger::drain_unread)),
        )
        .route("/api/attachments/{id}", get(attachments::download))
        .route("/api/attachments/{id}/thumbnail", get(attachments::thumbnail))
        .route("/api/search", get(search::search))
        .route("/api/presence", get(presence::presence))
        .route("/api/blocks", get(blocks::list).post(blocks::block))
        .route("/api/blocks/{user_id}", delete(blocks::unblock))
        .route("/api/groups", post(groups::create))
        .route("/api/groups/{id}", get(groups::get).patch(groups::update))
        .route("/api/groups/{id}/members", post(groups::add_members))
        .route(
            "/api/groups/{id}/members/{user_id}",
            patch(groups::set_role).delete(groups::remove_member),
        )
        .route("/api/groups/{id}/leave", post(groups::leave))
        .route("/api/messages/{id}/receipts", get(messages::receipts))
        .route(
            "/api/keys/devices/{device_id}",
            put(keys::publish).get(keys::status).delete(keys::remove),
        )
        .route("/api/keys/devices/{device_id}/prekeys", post(keys::add_prekeys))
        .route("/api/users/{user_id}/keys", get(keys::bundles))
        .merge(openapi::routes())
}
