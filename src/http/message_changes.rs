//! `/api/messages/{id}` (edit, delete), `/api/messages/{id}/reaction` and
//! `/api/messages/changes`: the REST forms of `edit_message`, `delete_message`, `react`
//! and `sync { changes }`. The rules live in `domain::lifecycle`.
use axum::{
    Json,
    extract::{Path, State},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    error::{ApiError, ApiResult},
    extract::{AuthUser, JsonBody, QueryParams, path_id},
};
use crate::{
    domain::{
        lifecycle::{self, Change, ChangeKind, Reactions, rules::Emoji},
        types::Content,
    },
    state::AppState,
    store::conversations::HistoryMessage,
    wire::iso,
};

/// Most changes one `GET /api/messages/changes` returns (as `sync` does).
const CHANGES_BUDGET: u64 = 500;

#[derive(Deserialize, ToSchema)]
pub struct EditBody {
    /// The new text: not blank, at most `MAX_MESSAGE_BYTES` UTF-8 bytes (16 KiB by default).
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    content: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ReactionBody {
    /// One emoji (1–8 characters, no spaces); null or absent clears the caller's reaction.
    #[schema(
        min_length = 1,
        max_length = 8,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$",
        examples("👍")
    )]
    emoji: Option<String>,
}

/// A message's text was replaced (also sent to members as `message_edited`).
#[derive(Serialize, ToSchema)]
pub struct Edited {
    conversation_id: i64,
    message_id: i64,
    content: String,
    #[schema(format = DateTime)]
    edited_at: String,
    /// The conversation's version this change took.
    version: i64,
}

/// A message was deleted for everyone (also sent to members as `message_deleted`).
#[derive(Serialize, ToSchema)]
pub struct Deleted {
    conversation_id: i64,
    message_id: i64,
    #[schema(format = DateTime)]
    deleted_at: String,
    version: i64,
}

/// How many members reacted with one emoji.
#[derive(Serialize, ToSchema)]
pub struct ReactionCount {
    emoji: String,
    count: i64,
}

/// A reaction was set or cleared (also sent to members as `reaction_changed`).
#[derive(Serialize, ToSchema)]
pub struct ReactionChanged {
    conversation_id: i64,
    message_id: i64,
    user_id: i64,
    /// The caller's reaction now; null when cleared.
    emoji: Option<String>,
    /// Counts per emoji after the change, most used first.
    reactions: Vec<ReactionCount>,
    version: i64,
}

/// A short quote of the message replied to.
#[derive(Serialize, ToSchema)]
pub struct ReplyQuote {
    message_id: i64,
    from_user_id: i64,
    /// The start of the original's text (up to 100 characters); null once it is deleted.
    excerpt: Option<String>,
}

pub fn counts(counts: Vec<(String, i64)>) -> Vec<ReactionCount> {
    counts
        .into_iter()
        .map(|(emoji, count)| ReactionCount { emoji, count })
        .collect()
}

pub fn quote(m: &HistoryMessage) -> Option<ReplyQuote> {
    m.quote().map(|q| ReplyQuote {
        message_id: q.message_id,
        from_user_id: q.from_user_id,
        excerpt: q.excerpt,
    })
}

fn unexpected() -> ApiError {
    ApiError::Domain(crate::domain::DomainError::Internal(anyhow::anyhow!(
        "the domain answered a change of another kind"
    )))
}

/// `PATCH /api/messages/{id}`
#[utoipa::path(
    patch,
    path = "/api/messages/{id}",
    tag = "messages",
    params(("id" = i64, Path, description = "message id", minimum = 1)),
    request_body = EditBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "edited; the members hear `message_edited`", body = Edited),
        crate::http::openapi::BadBody,
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "not the caller's message, the edit window has passed, the caller left the conversation, or a block stands in the direct chat", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::NotFound,
        (status = 409, description = "the message was deleted, or is end-to-end encrypted (not editable)", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "blank content", body = crate::http::openapi::ErrorBody),
    )
)]
pub async fn edit(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<EditBody>,
) -> ApiResult<Json<Edited>> {
    let id = path_id(&id, "message")?;
    let content = Content::parse(body.content, state.config.max_message_bytes)?;
    let change = lifecycle::edit(
        &state.db,
        &state.messaging,
        state.config.edit_window,
        me,
        id,
        content,
    )
    .await?;
    match change {
        Change {
            conversation_id,
            message_id,
            version,
            kind: ChangeKind::Edited { content, edited_at },
        } => Ok(Json(Edited {
            conversation_id,
            message_id,
            content,
            edited_at: iso(edited_at),
            version,
        })),
        _ => Err(unexpected()),
    }
}

/// `DELETE /api/messages/{id}`
#[utoipa::path(
    delete,
    path = "/api/messages/{id}",
    tag = "messages",
    params(("id" = i64, Path, description = "message id", minimum = 1)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "deleted for everyone (again: the first deletion); the members hear `message_deleted`", body = Deleted),
        crate::http::openapi::BadParameter,
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "neither the sender nor an admin of the group, or the caller left the conversation", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::NotFound,
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Deleted>> {
    let id = path_id(&id, "message")?;
    match lifecycle::delete(&state.db, &state.messaging, me, id).await? {
        Change {
            conversation_id,
            message_id,
            version,
            kind: ChangeKind::Deleted { deleted_at },
        } => Ok(Json(Deleted {
            conversation_id,
            message_id,
            deleted_at: iso(deleted_at),
            version,
        })),
        _ => Err(unexpected()),
    }
}

/// `PUT /api/messages/{id}/reaction`
#[utoipa::path(
    put,
    path = "/api/messages/{id}/reaction",
    tag = "messages",
    params(("id" = i64, Path, description = "message id", minimum = 1)),
    request_body = ReactionBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the caller's reaction is set or cleared; the members hear `reaction_changed`", body = ReactionChanged),
        crate::http::openapi::BadBody,
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "the caller left the conversation, or a block stands in the direct chat", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::NotFound,
        (status = 409, description = "the message was deleted", body = crate::http::openapi::ErrorBody),
    )
)]
pub async fn react(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ReactionBody>,
) -> ApiResult<Json<ReactionChanged>> {
    let id = path_id(&id, "message")?;
    let emoji = body.emoji.as_deref().map(Emoji::parse).transpose()?;
    match lifecycle::react(&state.db, &state.messaging, me, id, emoji).await? {
        Change {
            conversation_id,
            message_id,
            version,
            kind:
                ChangeKind::Reaction {
                    user_id,
                    emoji,
                    counts: c,
                },
        } => Ok(Json(ReactionChanged {
            conversation_id,
            message_id,
            user_id,
            emoji,
            reactions: counts(c),
            version,
        })),
        _ => Err(unexpected()),
    }
}

/// A message as it stands after its latest change.
#[derive(Serialize, ToSchema)]
pub struct ChangedItem {
    id: i64,
    conversation_id: i64,
    seq: i64,
    sender_id: i64,
    /// Empty for a deleted message.
    content: String,
    #[schema(format = DateTime)]
    sent_at: String,
    version: i64,
    #[schema(format = DateTime)]
    edited_at: Option<String>,
    deleted: bool,
    reply_to: Option<ReplyQuote>,
    reactions: Vec<ReactionCount>,
    my_reaction: Option<String>,
    /// End-to-end encrypted: `content` is empty and `envelopes` holds one ciphertext
    /// per device (null once deleted, and for messages that are not encrypted).
    encrypted: bool,
    #[schema(value_type = Option<Vec<crate::http::keys::Envelope>>)]
    envelopes: Option<Box<serde_json::value::RawValue>>,
    /// The device an encrypted message was sent from (null otherwise).
    sender_device_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ChangesPage {
    /// In version order; continue from the last one's `version` while `has_more`.
    changes: Vec<ChangedItem>,
    has_more: bool,
}

/// `GET /api/messages/changes?conversation_id=X&after_version=V`
#[utoipa::path(
    get,
    path = "/api/messages/changes",
    tag = "messages",
    params(
        ("conversation_id" = i64, Query, minimum = 0),
        ("after_version" = Option<i64>, Query, description = "the last version the client has (default 0: everything)", minimum = 0),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "every message inserted, edited, deleted or reacted to after `after_version`, at most 500", body = ChangesPage),
        crate::http::openapi::BadParameter,
        crate::http::openapi::Unauthenticated,
        crate::http::openapi::NotFound,
    )
)]
pub async fn changes(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    params: QueryParams,
) -> ApiResult<Json<ChangesPage>> {
    let conversation = params.required("conversation_id")?;
    let after: i64 = params.optional("after_version")?.unwrap_or(0);
    let mut found =
        lifecycle::changes(&state.db, me, &[(conversation, after.max(0))], CHANGES_BUDGET).await?;
    let changes = found
        .messages
        .into_iter()
        .map(|m| {
            let Reactions { counts: c, mine } = found.reactions.remove(&m.id).unwrap_or_default();
            ChangedItem {
                id: m.id,
                conversation_id: m.conversation_id,
                seq: m.seq,
                sender_id: m.sender_id,
                sent_at: iso(m.sent_at),
                version: m.version,
                edited_at: m.edited_at.map(iso),
                deleted: m.deleted_at.is_some(),
                reply_to: quote(&m),
                reactions: counts(c),
                my_reaction: mine,
                encrypted: m.encrypted,
                envelopes: crate::socket::events::envelopes(m.envelopes.as_deref()),
                sender_device_id: m.sender_device_id,
                content: m.content,
            }
        })
        .collect();
    Ok(Json(ChangesPage {
        changes,
        has_more: found.has_more,
    }))
}
