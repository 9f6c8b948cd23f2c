//! `/api/blocks`: who the caller has blocked.
use axum::{
    Json,
    extract::{Path, State},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    error::ApiResult,
    extract::{AuthUser, JsonBody, path_id},
};
use crate::{domain::contacts, state::AppState, wire::iso};

#[derive(Deserialize, ToSchema)]
pub struct BlockBody {
    user_id: i64,
}

#[derive(Serialize, ToSchema)]
pub struct BlockList {
    users: Vec<BlockItem>,
}

#[derive(Serialize, ToSchema)]
struct BlockItem {
    user_id: i64,
    #[schema(format = DateTime)]
    blocked_at: String,
}

async fn list_of(state: &AppState, me: i64) -> ApiResult<Json<BlockList>> {
    let users = contacts::blocked(&state.db, me)
        .await?
        .into_iter()
        .map(|b| BlockItem {
            user_id: b.user_id,
            blocked_at: iso(b.blocked_at),
        })
        .collect();
    Ok(Json(BlockList { users }))
}

/// `GET /api/blocks`
#[utoipa::path(
    get,
    path = "/api/blocks",
    tag = "blocks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the users the caller blocked", body = BlockList),
        crate::http::openapi::Unauthenticated,
    )
)]
pub async fn list(State(state): State<AppState>, AuthUser(me): AuthUser) -> ApiResult<Json<BlockList>> {
    list_of(&state, me).await
}

#[utoipa::path(
    post,
    path = "/api/blocks",
    tag = "blocks",
    request_body = BlockBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the list as it now is", body = BlockList),
        crate::http::openapi::BadBody,
        crate::http::openapi::Unauthenticated,
        (status = 404, description = "unknown user", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "the caller themself", body = crate::http::openapi::ErrorBody),
    )
)]
/// `POST /api/blocks` `{ user_id }`: answers the list as it now is.
pub async fn block(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    JsonBody(body): JsonBody<BlockBody>,
) -> ApiResult<Json<BlockList>> {
    contacts::block(&state.db, me, body.user_id).await?;
    list_of(&state, me).await
}

#[utoipa::path(
    delete,
    path = "/api/blocks/{user_id}",
    tag = "blocks",
    params(("user_id" = i64, Path, description = "the blocked user", minimum = 1)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the list as it now is", body = BlockList),
        crate::http::openapi::BadParameter,
        crate::http::openapi::Unauthenticated,
    )
)]
/// `DELETE /api/blocks/{user_id}`: answers the list as it now is.
pub async fn unblock(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(user): Path<String>,
) -> ApiResult<Json<BlockList>> {
    let user = path_id(&user, "user")?;
    contacts::unblock(&state.db, me, user).await?;
    list_of(&state, me).await
}
