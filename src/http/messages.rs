use axum::{
    Json,
    extract::{Path, State},
};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    attachments::AttachmentInfo,
    error::{ApiError, ApiResult},
    extract::{AuthUser, QueryParams, path_id},
    message_changes::{self, ReactionCount, ReplyQuote},
};
use crate::{
    domain::{
        conversations::{self, HistoryQuery},
        lifecycle::Reactions,
        receipts,
    },
    state::AppState,
    store::conversations::HistoryMessage,
    wire::iso,
};

const DEFAULT_LIMIT: i64 = 50;

#[derive(Serialize, ToSchema)]
pub struct MessagePage {
    messages: Vec<MessageItem>,
    total: i64,
    has_more: bool,
}

/// A message as history shows it (search hits carry the same).
#[derive(Serialize, ToSchema)]
pub(super) struct MessageItem {
    id: i64,
    conversation_id: i64,
    seq: i64,
    sender_id: i64,
    content: String,
    #[schema(format = DateTime)]
    sent_at: String,
    #[schema(format = DateTime)]
    delivered_at: Option<String>,
    #[schema(format = DateTime)]
    read_at: Option<String>,
    /// The conversation's version at this message's latest change (the `sync` cursor).
    version: i64,
    #[schema(format = DateTime)]
    edited_at: Option<String>,
    /// A tombstone: deleted for everyone, its content empty.
    deleted: bool,
    reply_to: Option<ReplyQuote>,
    /// Counts per emoji, most used first.
    reactions: Vec<ReactionCount>,
    /// The caller's own reaction.
    my_reaction: Option<String>,
    /// End-to-end encrypted: `content` is empty and `envelopes` holds one ciphertext
    /// per device (null once deleted, and for messages that are not encrypted).
    encrypted: bool,
    #[schema(value_type = Option<Vec<crate::http::keys::Envelope>>)]
    envelopes: Option<Box<serde_json::value::RawValue>>,
    /// The device an encrypted message was sent from (null otherwise).
    sender_device_id: Option<i64>,
    /// The attachment it carries; null for none and for a deleted message.
    attachment: Option<AttachmentInfo>,
}

impl MessageItem {
    pub(super) fn new(m: HistoryMessage, reactions: Reactions) -> Self {
        MessageItem {
            reply_to: message_changes::quote(&m),
            attachment: m.attachment().map(Into::into),
            id: m.id,
            conversation_id: m.conversation_id,
            seq: m.seq,
            sender_id: m.sender_id,
            content: m.content,
            sent_at: iso(m.sent_at),
            delivered_at: m.delivered_at.map(iso),
            read_at: m.read_at.map(iso),
            version: m.version,
            edited_at: m.edited_at.map(iso),
            deleted: m.deleted_at.is_some(),
            reactions: message_changes::counts(reactions.counts),
            my_reaction: reactions.mine,
            encrypted: m.encrypted,
            envelopes: crate::socket::events::envelopes(m.envelopes.as_deref()),
            sender_device_id: m.sender_device_id,
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/messages",
    tag = "messages",
    params(
        ("conversation_id" = i64, Query, minimum = 0),
        ("limit" = Option<i64>, Query, description = "page size, 1–100 (larger values are capped); default 50", minimum = 1),
        ("offset" = Option<i64>, Query, description = "skip this many messages from where the page starts (default 0)", minimum = 0),
        ("after_seq" = Option<i64>, Query, description = "only messages with a larger seq; the page then reads oldest first", minimum = 0),
        ("before_seq" = Option<i64>, Query, description = "only messages with a smaller seq; newest first unless `after_seq` is given too (then the messages strictly between, oldest first)", minimum = 0),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "one page of history", body = MessagePage),
        crate::http::openapi::BadParameter,
        crate::http::openapi::Unauthenticated,
        crate::http::openapi::NotFound,
    )
)]
/// `GET /api/messages?conversation_id=X&limit=50&offset=0`: newest first. Cursor forms:
/// `after_seq=N` (oldest first), `before_seq=N` (newest first), both (the range between,
/// oldest first); `offset` skips from where any of them starts (see `HistoryQuery`).
pub async fn history(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    params: QueryParams,
) -> ApiResult<Json<MessagePage>> {
    let conversation = params.required("conversation_id")?;
    let limit = params.optional("limit")?.unwrap_or(DEFAULT_LIMIT);
    if limit < 1 {
        return Err(ApiError::BadRequest("`limit` must be at least 1".into()));
    }
    let query = HistoryQuery {
        after_seq: params.optional("after_seq")?,
        before_seq: params.optional("before_seq")?,
        offset: params.optional("offset")?.unwrap_or(0) as u64,
    };
    let mut page = conversations::page(&state.db, me, conversation, limit as u64, query).await?;
    Ok(Json(MessagePage {
        messages: page
            .messages
            .into_iter()
            .map(|m| {
                let reactions = page.reactions.remove(&m.id).unwrap_or_default();
                MessageItem::new(m, reactions)
            })
            .collect(),
        total: page.total,
        has_more: page.has_more,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Marked {
    success: bool,
    messages_marked: u64,
}

/// `POST /api/messages/read?conversation_id=X`
#[utoipa::path(
    post,
    path = "/api/messages/read",
    tag = "messages",
    params(("conversation_id" = i64, Query, minimum = 0)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the other members' messages are read", body = Marked),
        crate::http::openapi::BadParameter,
        crate::http::openapi::Unauthenticated,
        crate::http::openapi::NotFound,
    )
)]
pub async fn mark_read(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    params: QueryParams,
) -> ApiResult<Json<Marked>> {
    let conversation = params.required("conversation_id")?;
    let messages_marked =
        conversations::mark_read(&state.db, &state.messaging, me, conversation, None, None).await?;
    Ok(Json(Marked {
        success: true,
        messages_marked,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ReceiptList {
    message_id: i64,
    conversation_id: i64,
    receipts: Vec<ReceiptItem>,
}

#[derive(Serialize, ToSchema)]
struct ReceiptItem {
    user_id: i64,
    #[schema(format = DateTime)]
    delivered_at: Option<String>,
    #[schema(format = DateTime)]
    read_at: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/messages/{id}/receipts",
    tag = "messages",
    params(("id" = i64, Path, description = "message id", minimum = 1)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "each other member's delivered and read times", body = ReceiptList),
        crate::http::openapi::BadParameter,
        crate::http::openapi::Unauthenticated,
        crate::http::openapi::NotFound,
    )
)]
/// `GET /api/messages/{id}/receipts`: each other member's delivered and read times.
pub async fn receipts(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<ReceiptList>> {
    let id = path_id(&id, "message")?;
    let r = receipts::of_message(&state.db, me, id).await?;
    Ok(Json(ReceiptList {
        message_id: r.message_id,
        conversation_id: r.conversation_id,
        receipts: r
            .receipts
            .into_iter()
            .map(|m| ReceiptItem {
                user_id: m.user_id,
                delivered_at: m.delivered_at.map(iso),
                read_at: m.read_at.map(iso),
            })
            .collect(),
    }))
}
