//! `GET /api/search`: full-text search over the caller's conversations. The rules
//! (visibility, ranking, paging) live in `domain::search`.
use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    error::{ApiError, ApiResult},
    extract::{AuthUser, QueryParams},
    messages::MessageItem,
};
use crate::{
    domain::search::{self, Request},
    state::AppState,
};

#[derive(Serialize, ToSchema)]
pub struct SearchPage {
    /// Best match first; among equals, newest first.
    hits: Vec<SearchHit>,
    /// Pass as `cursor` for the next page; null after the last.
    next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct SearchHit {
    /// The message as history shows it.
    message: MessageItem,
    /// Up to 160 characters of its text around the first searched word, cut into runs;
    /// `match: true` for a searched word (render each run as text, marking those).
    snippet: Vec<SnippetPart>,
}

#[derive(Serialize, ToSchema)]
struct SnippetPart {
    text: String,
    #[serde(rename = "match")]
    matched: bool,
}

#[utoipa::path(
    get,
    path = "/api/search",
    tag = "messages",
    params(
        ("q" = String, Query, description = "words to find, all of them, each as a whole word, case-insensitive; read as plain words (quotes, `*`, `OR`, `-`… are not operators); 1–200 characters, not blank", min_length = 1, max_length = 200, pattern = r"[^\t\n\x0B\f\r \x00]"),
        ("conversation_id" = Option<i64>, Query, description = "only this conversation (404 unless the caller is a current member)", minimum = 0),
        ("limit" = Option<i64>, Query, description = "hits per page, 1–50 (larger values are capped); default 20", minimum = 1),
        ("cursor" = Option<String>, Query, description = "a previous page's `next_cursor`", pattern = r"^[0-9]{1,20}(\.[0-9]{1,40})?:[0-9]{1,18}$"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "one page of hits", body = SearchPage),
        crate::http::openapi::BadParameter,
        crate::http::openapi::Unauthenticated,
        crate::http::openapi::NotFound,
        crate::http::openapi::RateLimited,
    )
)]
/// `GET /api/search?q=…[&conversation_id=X][&limit=N][&cursor=C]`
pub async fn search(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    params: QueryParams,
) -> ApiResult<Json<SearchPage>> {
    state.limits.lookups.check(me)?;
    let q = params
        .raw("q")
        .ok_or_else(|| ApiError::BadRequest("missing required parameter `q`".into()))?;
    let limit = params.optional("limit")?.unwrap_or(search::DEFAULT_PAGE as i64);
    if limit < 1 {
        return Err(ApiError::BadRequest("`limit` must be at least 1".into()));
    }
    let request = Request {
        q,
        conversation_id: params.optional("conversation_id")?,
        limit: limit as u64,
        cursor: params.text("cursor"),
    };
    let results = search::search(&state.db, me, request).await?;
    Ok(Json(SearchPage {
        hits: results
            .hits
            .into_iter()
            .map(|hit| SearchHit {
                message: MessageItem::new(hit.message, hit.reactions),
                snippet: hit
                    .snippet
                    .into_iter()
                    .map(|s| SnippetPart {
                        text: s.text,
                        matched: s.matched,
                    })
                    .collect(),
            })
            .collect(),
        next_cursor: results.next_cursor.map(|c| c.to_string()),
    }))
}
