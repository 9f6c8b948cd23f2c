//! Every Socket.IO event name and payload, in one place. `docs/PROTOCOL.md` mirrors this file.
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

// Client → server.
pub const SEND_MESSAGE: &str = "send_message";
pub const PING: &str = "ping";

// Server → client.
pub const AUTHENTICATED: &str = "authenticated";
pub const MESSAGE_SENT: &str = "message_sent";
pub const NEW_MESSAGE: &str = "new_message";
pub const MESSAGE_DELIVERED: &str = "message_delivered";
pub const PONG: &str = "pong";
pub const ERROR: &str = "error";

/// The room holding every device of one user.
pub fn user_room(user_id: i64) -> String {
    format!("user:{user_id}")
}

/// ISO-8601 UTC with millisecond precision, e.g. `2026-11-24T20:40:00.123Z`.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Handshake `auth` payload.
#[derive(Debug, Deserialize)]
pub struct AuthPayload {
    pub token: Option<String>,
}

/// `send_message`. `to_user_id` may be a number or a numeric string, as seed clients send both.
#[derive(Debug, Deserialize)]
pub struct SendMessage {
    pub to_user_id: UserIdField,
    pub content: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum UserIdField {
    Number(i64),
    Text(String),
}

impl UserIdField {
    pub fn parse(&self) -> Option<i64> {
        match self {
            UserIdField::Number(n) => Some(*n),
            UserIdField::Text(s) => s.trim().parse().ok(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Authenticated {
    pub user_id: i64,
    pub message: &'static str,
}

#[derive(Debug, Serialize)]
pub struct MessageSent {
    pub message_id: i64,
    pub conversation_id: i64,
    pub status: &'static str,
    pub sent_at: String,
    pub seq: i64,
}

#[derive(Debug, Serialize)]
pub struct NewMessage<'a> {
    pub message_id: i64,
    pub conversation_id: i64,
    pub from_user_id: i64,
    pub content: &'a str,
    pub sent_at: String,
    pub seq: i64,
}

#[derive(Debug, Serialize)]
pub struct MessageDelivered {
    pub message_id: i64,
    pub delivered_at: String,
    pub conversation_id: i64,
}

#[derive(Debug, Serialize)]
pub struct Pong {
    pub timestamp: String,
}

/// `error`: the event a seed client listens to for any refused request.
#[derive(Debug, Serialize)]
pub struct ErrorEvent {
    pub message: String,
    pub code: &'static str,
}

/// The acknowledgement for a refused request.
#[derive(Debug, Serialize)]
pub struct AckError {
    pub error: ErrorBody,
}

#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub code: &'static str,
    pub message: String,
}
