//! Every Socket.IO event name and payload, in one place. `docs/PROTOCOL.md` mirrors this file.
pub use crate::wire::iso;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

// Client → server.
pub const SEND_MESSAGE: &str = "send_message";
pub const PING: &str = "ping";
pub const MARK_READ: &str = "mark_read";
pub const SYNC: &str = "sync";
/// A fresh token for the same user, so the socket outlives the one it connected with.
pub const AUTH_REFRESH: &str = "auth_refresh";
/// Both directions: the client says it is typing; other members hear it.
pub const TYPING: &str = "typing";
pub const EDIT_MESSAGE: &str = "edit_message";
pub const DELETE_MESSAGE: &str = "delete_message";
pub const REACT: &str = "react";

// Server → client.
pub const AUTHENTICATED: &str = "authenticated";
pub const MESSAGE_SENT: &str = "message_sent";
pub const NEW_MESSAGE: &str = "new_message";
pub const MESSAGE_DELIVERED: &str = "message_delivered";
pub const PONG: &str = "pong";
pub const ERROR: &str = "error";
pub const USER_ONLINE: &str = "user_online";
pub const USER_OFFLINE: &str = "user_offline";
pub const MESSAGE_READ: &str = "message_read";
pub const CONVERSATION_READ: &str = "conversation_read";
pub const GROUP_CREATED: &str = "group_created";
pub const MEMBER_ADDED: &str = "member_added";
pub const MEMBER_REMOVED: &str = "member_removed";
pub const MEMBER_LEFT: &str = "member_left";
pub const ROLE_CHANGED: &str = "role_changed";
pub const GROUP_UPDATED: &str = "group_updated";
pub const MESSAGE_EDITED: &str = "message_edited";
pub const MESSAGE_DELETED: &str = "message_deleted";
pub const REACTION_CHANGED: &str = "reaction_changed";
/// A device of the user runs low on one-time prekeys (end-to-end encryption).
pub const PREKEYS_LOW: &str = "prekeys_low";

/// The room holding every device of one user.
pub fn user_room(user_id: i64) -> String {
    format!("user:{user_id}")
}

/// The room holding the live devices of every current member of a conversation: a
/// message is handed to each of them from one serialised payload.
pub fn conversation_room(conversation_id: i64) -> String {
    format!("conversation:{conversation_id}")
}

/// Whether a room is a conversation's (see [`conversation_room`]).
pub fn is_conversation_room(room: &str) -> bool {
    room.starts_with("conversation:")
}

/// The room holding exactly one device (socket), so broadcasts can leave it out.
pub fn device_room(device: &str) -> String {
    format!("device:{device}")
}

/// `auth_refresh` `{ token }`.
#[derive(Debug, Deserialize)]
pub struct AuthRefresh {
    pub token: String,
}

/// The `auth_refresh` acknowledgement.
#[derive(Debug, Serialize)]
pub struct AuthRefreshed {
    pub success: bool,
    pub expires_at: String,
}

/// Handshake `auth` payload. socket.io-client 4.6+ adds `pid` and `offset` on its own
/// when it reconnects (connection state recovery; see `proof`).
#[derive(Debug, Deserialize)]
pub struct AuthPayload {
    pub token: Option<String>,
    /// Read leniently: whatever these hold, the token still counts.
    #[serde(default, deserialize_with = "string_or_none")]
    pub pid: Option<String>,
    #[serde(default, deserialize_with = "string_or_none")]
    pub offset: Option<String>,
}

/// A string, or nothing for any other JSON value.
fn string_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    })
}

/// `send_message`: to a user (`to_user_id`, the seed's form: their direct chat) or to a
/// conversation (`conversation_id`, direct or group), exactly one of the two. Ids may be
/// numbers or numeric strings, as seed clients send both.
#[derive(Debug, Deserialize)]
pub struct SendMessage {
    pub to_user_id: Option<IdField>,
    pub conversation_id: Option<IdField>,
    /// The text; absent for an end-to-end encrypted message.
    pub content: Option<String>,
    /// End-to-end encrypted instead of `content`: `{ envelopes: [...] }`, read into
    /// [`EncryptedIn`] by the handler so a malformed one is refused in its own words.
    pub encrypted: Option<serde_json::Value>,
    /// Optional idempotency key: a retry with the same key stores nothing new.
    pub client_msg_id: Option<String>,
    /// The message (of the same conversation) this one replies to.
    pub reply_to: Option<IdField>,
}

/// `send_message`'s `encrypted`: one ciphertext per recipient device.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptedIn {
    /// The sending device (its key-directory id): recipients decrypt with their session
    /// with it.
    pub sender_device_id: i64,
    pub envelopes: Vec<EnvelopeIn>,
}

/// One recipient device's ciphertext: `type` is the Signal message type, `body` base64.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeIn {
    pub user_id: IdField,
    pub device_id: i64,
    #[serde(rename = "type")]
    pub kind: i64,
    pub body: String,
}

/// A stored envelope list (a JSON array) as it goes on the wire, unparsed.
pub fn envelopes(stored: Option<&str>) -> Option<Box<RawValue>> {
    stored.and_then(|s| RawValue::from_string(s.to_owned()).ok())
}

/// An id given as a number or a numeric string.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum IdField {
    Number(i64),
    Text(String),
}

impl IdField {
    pub fn parse(&self) -> Option<i64> {
        match self {
            IdField::Number(n) => Some(*n),
            IdField::Text(s) => s.trim().parse().ok(),
        }
        .filter(|id| *id > 0)
    }
}

/// `typing`, client → server: one of `conversation_id` or `to_user_id`.
#[derive(Debug, Deserialize)]
pub struct TypingIn {
    pub conversation_id: Option<IdField>,
    pub to_user_id: Option<IdField>,
    pub is_typing: bool,
}

/// `typing`, server → other members.
#[derive(Debug, Serialize)]
pub struct TypingOut {
    pub conversation_id: i64,
    pub user_id: i64,
    pub is_typing: bool,
}

/// `mark_read`: everything, or up to one message.
#[derive(Debug, Deserialize)]
pub struct MarkReadIn {
    pub conversation_id: IdField,
    pub up_to_message_id: Option<IdField>,
}

/// The `mark_read` acknowledgement (the same body as `POST /api/messages/read`).
#[derive(Debug, Serialize)]
pub struct MarkReadAck {
    pub success: bool,
    pub messages_marked: u64,
}

/// `message_read`, to the sender: their messages up to `message_id` were read.
#[derive(Debug, Serialize)]
pub struct MessageRead {
    pub conversation_id: i64,
    pub message_id: i64,
    pub reader_id: i64,
    pub read_at: String,
}

/// `conversation_read`, to the reader's other devices.
#[derive(Debug, Serialize)]
pub struct ConversationRead {
    pub conversation_id: i64,
    pub up_to_message_id: i64,
}

#[derive(Debug, Serialize)]
pub struct UserOnline {
    pub user_id: i64,
}

#[derive(Debug, Serialize)]
pub struct UserOffline {
    pub user_id: i64,
    pub last_seen: String,
}

/// `sync`, in one of two forms: `since` (for each conversation, the last seq the client
/// has: the messages after it) or `changes` (the last version it has: every message
/// inserted, edited, deleted or reacted to after it).
#[derive(Debug, Deserialize)]
pub struct SyncIn {
    pub since: Option<Vec<SyncSince>>,
    pub changes: Option<Vec<SyncChangesSince>>,
}

/// One conversation of `sync { changes }`.
#[derive(Debug, Deserialize)]
pub struct SyncChangesSince {
    pub conversation_id: i64,
    pub after_version: i64,
}

/// The `sync { changes }` acknowledgement: each changed message as it now stands,
/// in version order per conversation.
#[derive(Debug, Serialize)]
pub struct SyncChangesAck {
    pub changes: Vec<ChangedMessage>,
    pub has_more: bool,
}

/// A message as it stands after its latest change (a tombstone has `deleted: true`
/// and empty content).
#[derive(Debug, Serialize)]
pub struct ChangedMessage {
    pub message_id: i64,
    pub conversation_id: i64,
    pub from_user_id: i64,
    pub content: String,
    pub sent_at: String,
    pub seq: i64,
    pub version: i64,
    pub edited_at: Option<String>,
    pub deleted: bool,
    pub reply_to: Option<ReplyQuote>,
    pub reactions: Vec<ReactionCount>,
    /// The caller's own reaction.
    pub my_reaction: Option<String>,
    /// End-to-end encrypted: `content` is empty, `envelopes` (absent once deleted) holds
    /// one ciphertext per device.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub encrypted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envelopes: Option<Box<RawValue>>,
    /// The device an encrypted message was sent from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_device_id: Option<i64>,
}

/// A short quote of the message replied to: its sender and the start of its text
/// (null once deleted).
#[derive(Debug, Clone, Serialize)]
pub struct ReplyQuote {
    pub message_id: i64,
    pub from_user_id: i64,
    pub excerpt: Option<String>,
}

/// How many members reacted to a message with one emoji.
#[derive(Debug, Clone, Serialize)]
pub struct ReactionCount {
    pub emoji: String,
    pub count: i64,
}

/// `edit_message`: the sender's new text for a message.
#[derive(Debug, Deserialize)]
pub struct EditMessageIn {
    pub message_id: IdField,
    pub content: String,
}

/// `delete_message`: delete for everyone.
#[derive(Debug, Deserialize)]
pub struct DeleteMessageIn {
    pub message_id: IdField,
}

/// `react`: set the caller's reaction to `emoji`, or clear it with null.
#[derive(Debug, Deserialize)]
pub struct ReactIn {
    pub message_id: IdField,
    pub emoji: Option<String>,
}

/// `prekeys_low`, to every device of the user: their device `device_id` has only
/// `remaining` one-time prekeys left; it should publish more.
#[derive(Debug, Serialize)]
pub struct PrekeysLow {
    pub device_id: i64,
    pub remaining: i64,
}

/// `message_edited`, to the members' devices (and `edit_message`'s acknowledgement).
#[derive(Debug, Serialize)]
pub struct MessageEdited {
    pub conversation_id: i64,
    pub message_id: i64,
    pub content: String,
    pub edited_at: String,
    pub version: i64,
}

/// `message_deleted`, to the members' devices (and `delete_message`'s acknowledgement).
#[derive(Debug, Serialize)]
pub struct MessageDeleted {
    pub conversation_id: i64,
    pub message_id: i64,
    pub deleted_at: String,
    pub version: i64,
}

/// `reaction_changed`, to the members' devices (and `react`'s acknowledgement): who set
/// or cleared which reaction, and the message's counts after it.
#[derive(Debug, Serialize)]
pub struct ReactionChanged {
    pub conversation_id: i64,
    pub message_id: i64,
    pub user_id: i64,
    pub emoji: Option<String>,
    pub reactions: Vec<ReactionCount>,
    pub version: i64,
}

#[derive(Debug, Deserialize)]
pub struct SyncSince {
    pub conversation_id: i64,
    pub after_seq: i64,
}

/// The `sync` acknowledgement: missed messages, oldest first per conversation.
#[derive(Debug, Serialize)]
pub struct SyncAck {
    pub messages: Vec<SyncedMessage>,
    pub has_more: bool,
}

/// A message as `sync` returns it: `new_message`'s fields plus receipts.
#[derive(Debug, Serialize)]
pub struct SyncedMessage {
    pub message_id: i64,
    pub conversation_id: i64,
    pub from_user_id: i64,
    pub content: String,
    pub sent_at: String,
    pub seq: i64,
    pub delivered_at: Option<String>,
    pub read_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ReplyQuote>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    /// Present (true) for a tombstone, whose content is empty.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub encrypted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envelopes: Option<Box<RawValue>>,
    /// The device an encrypted message was sent from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_device_id: Option<i64>,
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
    /// The conversation's version this message (or its latest change) took.
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ReplyQuote>,
    /// A queued message may have been edited or deleted while it waited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    /// Present (true) for a tombstone, whose content is empty.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Present (true) for an end-to-end encrypted message: `content` is empty and
    /// `envelopes` holds one ciphertext per device (each device picks its own).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub encrypted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envelopes: Option<Box<RawValue>>,
    /// The device an encrypted message was sent from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_device_id: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct MessageDelivered {
    pub message_id: i64,
    pub delivered_at: String,
    pub conversation_id: i64,
}

/// `group_created`, `member_added`, `member_removed`, `member_left`, `role_changed`,
/// `group_updated`: to every member's devices and the affected user's.
#[derive(Debug, Serialize)]
pub struct GroupEventOut<'a> {
    pub conversation_id: i64,
    pub actor_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
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
    /// For `rate_limited`: when to try again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl From<crate::domain::messaging::Quote> for ReplyQuote {
    fn from(q: crate::domain::messaging::Quote) -> Self {
        ReplyQuote {
            message_id: q.message_id,
            from_user_id: q.from_user_id,
            excerpt: q.excerpt,
        }
    }
}

/// Reaction counts on the wire.
pub fn reaction_counts(counts: Vec<(String, i64)>) -> Vec<ReactionCount> {
    counts
        .into_iter()
        .map(|(emoji, count)| ReactionCount { emoji, count })
        .collect()
}
