use axum::{extract::State, response::Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    error::{ApiError, ApiResult},
    extract::{AuthUser, QueryParams},
    render::json_sized,
};
use crate::{
    domain::conversations::{self, ListCursor},
    state::AppState,
    wire::Iso,
};

#[derive(Serialize, ToSchema)]
pub struct ConversationList {
    conversations: Vec<ConversationItem>,
    /// With `limit` or `cursor`: where the next page starts (null on the last page).
    /// Absent in the seed's unpaginated form.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<Option<String>>,
}

#[derive(Serialize, ToSchema)]
struct ConversationItem {
    conversation_id: i64,
    #[schema(examples("direct", "group"))]
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

#[derive(Serialize, ToSchema)]
struct LastMessage {
    content: String,
    sent_at: Iso,
    sender_id: i64,
}

#[utoipa::path(
    get,
    path = "/api/conversations",
    tag = "conversations",
    params(("limit" = Option<i64>, Query, description = "page size (1–200, larger values are capped); without it, every conversation", minimum = 1), ("cursor" = Option<String>, Query, description = "a previous page's `next_cursor`; without `limit`, the page is of the largest size (200)", pattern = r"^([0-9]{1,16}\.[0-9]{1,18})?$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the caller's conversations, most recently updated first", body = ConversationList),
        crate::http::openapi::BadParameter,
        crate::http::openapi::Unauthenticated,
    )
)]
/// `GET /api/conversations`: most recently updated first; all of them, or with
/// `limit` (1–200) a page, and `cursor` (a previous page's `next_cursor`) for the next
/// (a cursor alone reads a page of 200).
pub async fn list(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    params: QueryParams,
) -> ApiResult<Response> {
    let cursor = params.text("cursor").map(parse_cursor).transpose()?;
    let page = match (params.optional("limit")?, cursor) {
        (None, None) => None,
        (Some(0), _) => return Err(ApiError::BadRequest("`limit` must be at least 1".into())),
        // A cursor asks for a page; without `limit`, the largest one.
        (limit, cursor) => Some((limit.map_or(conversations::MAX_LIST_PAGE, |l| l as u64), cursor)),
    };
    let paged = page.is_some();
    let rows = conversations::list(&state.db, &state.presence, me, page).await?;
    let next_cursor = match page {
        Some((limit, _)) if rows.len() as u64 >= limit.min(conversations::MAX_LIST_PAGE) => rows
            .last()
            .map(|v| format!("{}.{}", v.summary.updated_at.timestamp_micros(), v.summary.id)),
        _ => None,
    };
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
    json_sized(
        &ConversationList {
            conversations,
            next_cursor: paged.then_some(next_cursor),
        },
        capacity,
    )
}

/// A cursor is `<updated_at in microseconds>.<conversation id>` of the last row seen.
fn parse_cursor(raw: &str) -> ApiResult<ListCursor> {
    let bad = || ApiError::BadRequest("`cursor` is not one this server gave".into());
    let (micros, id) = raw.split_once('.').ok_or_else(bad)?;
    let updated_at = micros
        .parse::<i64>()
        .ok()
        .and_then(chrono::DateTime::from_timestamp_micros)
        .ok_or_else(bad)?;
    let id = id.parse().map_err(|_| bad())?;
    Ok(ListCursor { updated_at, id })
}
