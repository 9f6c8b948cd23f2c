use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    error::ApiResult,
    extract::{AuthUser, QueryParams},
};
use crate::{domain::contacts, state::AppState, wire::iso};

#[derive(Serialize, ToSchema)]
pub struct PresenceList {
    users: Vec<PresenceItem>,
}

#[derive(Serialize, ToSchema)]
struct PresenceItem {
    user_id: i64,
    online: bool,
    #[schema(format = DateTime)]
    last_seen: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/presence",
    tag = "presence",
    params(("user_ids" = String, Query, description = "comma-separated user ids, at most 500", pattern = r"^[1-9][0-9]{0,17}(,[1-9][0-9]{0,17}){0,499}$", example = "1,2,3")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "those users who share a conversation with the caller (others omitted)", body = PresenceList),
        crate::http::openapi::BadParameter,
        crate::http::openapi::Unauthenticated,
    )
)]
/// `GET /api/presence?user_ids=1,2,3`: only users who share a conversation with the caller.
pub async fn presence(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    params: QueryParams,
) -> ApiResult<Json<PresenceList>> {
    let ids = params.id_list("user_ids")?;
    let found = contacts::presence_of(&state.db, &state.presence, me, &ids).await?;
    Ok(Json(PresenceList {
        users: found
            .into_iter()
            .map(|p| PresenceItem {
                user_id: p.user_id,
                online: p.online,
                last_seen: p.last_seen.map(iso),
            })
            .collect(),
    }))
}
