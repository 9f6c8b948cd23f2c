use axum::{extract::State, response::Response};
use serde::Serialize;

use super::{error::ApiResult, extract::AuthUser, render::json_sized};
use crate::{domain::conversations, state::AppState, wire::Iso};

#[derive(Serialize)]
pub struct ConversationList {
    conversations: Vec<ConversationItem>,
}

#[derive(Serialize)]
struct ConversationItem {
    conversation_id: i64,
    kind: String,
    /// The other participant of a direct conversation; null for groups.
    other_user_id: Option<i64>,
    name: Option<String>,
    /// Current members, for groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    member_count: Option<i64>,
    last_message: Option<LastMessage>,
    unread_count: i64,
    updated_at: Iso,
    /// For direct conversations: whether the other user is online, and when last seen.
    online: Option<bool>,
    last_seen: Option<Iso>,
}

#[derive(Serialize)]
struct LastMessage {
    content: String,
    sent_at: Iso,
    sender_id: i64,
}

/// `GET /api/conversations`: most recently updated first.
pub async fn list(State(state): State<AppState>, AuthUser(me): AuthUser) -> ApiResult<Response> {
    let rows = conversations::list(&state.db, &state.presence, me).await?;
    // About 250 bytes a row when rendered.
    let capacity = 64 + rows.len() * 256;
    let conversations = rows
        .into_iter()
        .map(|view| {
            let c = view.summary;
            let last_message = match (c.last_content, c.last_sent_at, c.last_sender_id) {
                (Some(content), Some(sent_at), Some(sender_id)) => Some(LastMessage {
                    content,
                    sent_at: Iso(sent_at),
                    sender_id,
                }),
                _ => None,
            };
            ConversationItem {
                conversation_id: c.id,
                kind: c.kind,
                other_user_id: view.other_user_id,
                name: c.name,
                member_count: c.member_count,
                last_message,
                unread_count: c.unread_count,
                updated_at: Iso(c.updated_at),
                online: view.online,
                last_seen: c.other_last_seen.map(Iso),
            }
        })
        .collect();
    json_sized(&ConversationList { conversations }, capacity)
}
