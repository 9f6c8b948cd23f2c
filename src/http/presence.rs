use axum::{Json, extract::State};
use serde::Serialize;

use super::{
    error::ApiResult,
    extract::{AuthUser, QueryParams},
};
use crate::{domain::contacts, state::AppState, wire::iso};

#[derive(Serialize)]
pub struct PresenceList {
    users: Vec<PresenceItem>,
}

#[derive(Serialize)]
struct PresenceItem {
    user_id: i64,
    online: bool,
    last_seen: Option<String>,
}

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
