//! `/api/groups`: create, read and change groups. The rules live in `domain::groups`.
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};

use super::{
    error::{ApiError, ApiResult},
    extract::{AuthUser, JsonBody},
};
use crate::{
    domain::groups::{GroupView, Role},
    state::AppState,
    wire::iso,
};

#[derive(Deserialize)]
pub struct CreateBody {
    name: String,
    description: Option<String>,
    #[serde(default)]
    member_ids: Vec<i64>,
}

#[derive(Deserialize)]
pub struct UpdateBody {
    name: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
pub struct AddBody {
    user_ids: Vec<i64>,
}

#[derive(Deserialize)]
pub struct RoleBody {
    role: String,
}

#[derive(Serialize)]
pub struct GroupBody {
    group: GroupJson,
}

#[derive(Serialize)]
struct GroupJson {
    conversation_id: i64,
    kind: &'static str,
    name: String,
    description: Option<String>,
    created_at: String,
    created_by: Option<i64>,
    members: Vec<MemberJson>,
}

#[derive(Serialize)]
struct MemberJson {
    user_id: i64,
    role: &'static str,
    joined_at: String,
}

impl From<GroupView> for GroupBody {
    fn from(g: GroupView) -> Self {
        GroupBody {
            group: GroupJson {
                conversation_id: g.conversation_id,
                kind: "group",
                name: g.name,
                description: g.description,
                created_at: iso(g.created_at),
                created_by: g.created_by,
                members: g
                    .members
                    .into_iter()
                    .map(|m| MemberJson {
                        user_id: m.user_id,
                        role: m.role.as_str(),
                        joined_at: iso(m.joined_at),
                    })
                    .collect(),
            },
        }
    }
}

#[derive(Serialize)]
pub struct Done {
    success: bool,
}

/// `POST /api/groups`
pub async fn create(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<(StatusCode, Json<GroupBody>)> {
    let group = state
        .groups
        .create(me, &body.name, body.description.as_deref(), &body.member_ids)
        .await?;
    Ok((StatusCode::CREATED, Json(group.into())))
}

/// `GET /api/groups/{id}`
pub async fn get(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<GroupBody>> {
    Ok(Json(state.groups.view(me, group_id(&id)?).await?.into()))
}

/// `PATCH /api/groups/{id}`
pub async fn update(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> ApiResult<Json<GroupBody>> {
    if body.name.is_none() && body.description.is_none() {
        return Err(ApiError::BadRequest("give name and/or description".into()));
    }
    let group = state
        .groups
        .update(
            me,
            group_id(&id)?,
            body.name.as_deref(),
            body.description.as_deref(),
        )
        .await?;
    Ok(Json(group.into()))
}

/// `POST /api/groups/{id}/members`
pub async fn add_members(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<AddBody>,
) -> ApiResult<Json<GroupBody>> {
    let group = state
        .groups
        .add_members(me, group_id(&id)?, &body.user_ids)
        .await?;
    Ok(Json(group.into()))
}

/// `DELETE /api/groups/{id}/members/{user_id}`: removing oneself is leaving.
pub async fn remove_member(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path((id, user)): Path<(String, String)>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    match state
        .groups
        .remove_member(me, group_id(&id)?, user_id(&user)?)
        .await?
    {
        Some(group) => Ok(Json(GroupBody::from(group)).into_response()),
        None => Ok(Json(Done { success: true }).into_response()),
    }
}

/// `PATCH /api/groups/{id}/members/{user_id}`
pub async fn set_role(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path((id, user)): Path<(String, String)>,
    JsonBody(body): JsonBody<RoleBody>,
) -> ApiResult<Json<GroupBody>> {
    let role = Role::parse(&body.role)?;
    let group = state
        .groups
        .set_role(me, group_id(&id)?, user_id(&user)?, role)
        .await?;
    Ok(Json(group.into()))
}

/// `POST /api/groups/{id}/leave`
pub async fn leave(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Done>> {
    state.groups.leave(me, group_id(&id)?).await?;
    Ok(Json(Done { success: true }))
}

fn group_id(raw: &str) -> ApiResult<i64> {
    raw.parse()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::BadRequest("group id must be a positive integer".into()))
}

fn user_id(raw: &str) -> ApiResult<i64> {
    raw.parse()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::BadRequest("user id must be a positive integer".into()))
}
