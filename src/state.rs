//! The state every REST and socket handler shares. It lives apart from start-up
//! (`app.rs`), which mounts the transports: handlers import this, never `app`.
use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{
    auth::jwt::JwtKeys,
    cluster::Cluster,
    config::Config,
    domain::{
        attachments::Attachments, groups::Groups, hashing::Hasher, limits::Limits, messaging::Messaging,
        presence::Presence, sessions::Sessions, typing::Typing,
    },
};

/// Everything a request or socket handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    /// This node's link to the others (unused with one node).
    pub cluster: Cluster,
    pub jwt: JwtKeys,
    pub config: Arc<Config>,
    pub messaging: Messaging,
    pub presence: Arc<Presence>,
    pub typing: Arc<Typing>,
    pub sessions: Sessions,
    pub groups: Groups,
    pub hasher: Hasher,
    pub limits: Limits,
    pub attachments: Attachments,
}
