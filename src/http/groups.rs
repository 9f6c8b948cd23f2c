//! `/api/groups`: create, read and change groups. The rules live in `domain::groups`.
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    error::ApiResult,
    extract::{AuthUser, JsonBody, path_id},
};
use crate::{
    domain::groups::{GroupView, Role},
    state::AppState,
    wire::iso,
};

#[derive(Deserialize, ToSchema)]
pub struct CreateBody {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    name: String,
    #[schema(max_length = 1000, pattern = r"^[^\u0000]*$")]
    description: Option<String>,
    #[serde(default)]
    member_ids: Vec<i64>,
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateBody {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    name: Option<String>,
    #[schema(max_length = 1000, pattern = r"^[^\u0000]*$")]
    description: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct AddBody {
    user_ids: Vec<i64>,
}

#[derive(Deserialize, ToSchema)]
pub struct RoleBody {
    #[schema(pattern = "^(admin|member|owner)$", examples("admin", "member", "owner"))]
    role: String,
}

#[derive(Serialize, ToSchema)]
pub struct GroupBody {
    group: GroupJson,
}

#[derive(Serialize, ToSchema)]
struct GroupJson {
    conversation_id: i64,
    #[schema(value_type = String, examples("group"))]
    kind: &'static str,
    name: String,
    description: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    created_by: Option<i64>,
    members: Vec<MemberJson>,
}

#[derive(Serialize, ToSchema)]
struct MemberJson {
    user_id: i64,
    #[schema(value_type = String, examples("owner", "admin", "member"))]
    role: &'static str,
    #[schema(format = DateTime)]
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

#[derive(Serialize, ToSchema)]
pub struct Done {
    success: bool,
}

/// `POST /api/groups`
#[utoipa::path(
    post,
    path = "/api/groups",
    tag = "groups",
    request_body = CreateBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "created, with the caller as owner", body = GroupBody),
        crate::http::openapi::BadBody,
        crate::http::openapi::Unauthenticated,
        (status = 422, description = "invalid name or description, unknown user ids, over the member limit", body = crate::http::openapi::ErrorBody),
    )
)]
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
#[utoipa::path(
    get,
    path = "/api/groups/{id}",
    tag = "groups",
    params(("id" = i64, Path, description = "the group's conversation id", minimum = 1)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the group and its members", body = GroupBody),
        crate::http::openapi::BadParameter,
        crate::http::openapi::Unauthenticated,
        crate::http::openapi::NotFound,
    )
)]
pub async fn get(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<GroupBody>> {
    Ok(Json(state.groups.view(me, group_id(&id)?).await?.into()))
}

#[utoipa::path(
    patch,
    path = "/api/groups/{id}",
    tag = "groups",
    params(("id" = i64, Path, description = "the group's conversation id", minimum = 1)),
    request_body = UpdateBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the group as it now is (`{}` changes nothing and answers the group as it is)", body = GroupBody),
        crate::http::openapi::BadBody,
        crate::http::openapi::Unauthenticated,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        crate::http::openapi::Unprocessable,
    )
)]
/// `PATCH /api/groups/{id}`: the fields given change; absent (or null) ones stay.
pub async fn update(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> ApiResult<Json<GroupBody>> {
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
#[utoipa::path(
    post,
    path = "/api/groups/{id}/members",
    tag = "groups",
    params(("id" = i64, Path, description = "the group's conversation id", minimum = 1)),
    request_body = AddBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the group as it now is (current members are skipped)", body = GroupBody),
        crate::http::openapi::BadBody,
        crate::http::openapi::Unauthenticated,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        (status = 422, description = "unknown user ids, or over the member limit", body = crate::http::openapi::ErrorBody),
    )
)]
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

#[utoipa::path(
    delete,
    path = "/api/groups/{id}/members/{user_id}",
    tag = "groups",
    params(("id" = i64, Path, description = "the group's conversation id", minimum = 1), ("user_id" = i64, Path, description = "the member to remove", minimum = 1)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the group as it now is, or `{ success: true }` when the caller removed themself (leaving)", body = crate::http::openapi::RemoveMemberAnswer),
        crate::http::openapi::BadParameter,
        crate::http::openapi::Unauthenticated,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
    )
)]
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
#[utoipa::path(
    patch,
    path = "/api/groups/{id}/members/{user_id}",
    tag = "groups",
    params(("id" = i64, Path, description = "the group's conversation id", minimum = 1), ("user_id" = i64, Path, description = "the member", minimum = 1)),
    request_body = RoleBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the group as it now is", body = GroupBody),
        crate::http::openapi::BadBody,
        crate::http::openapi::Unauthenticated,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        (status = 422, description = "a role other than admin, member or owner, or the owner changing their own role (ownership passes by making another member the owner)", body = crate::http::openapi::ErrorBody),
    )
)]
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
#[utoipa::path(
    post,
    path = "/api/groups/{id}/leave",
    tag = "groups",
    params(("id" = i64, Path, description = "the group's conversation id", minimum = 1)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "left (the group closes when its last member leaves)", body = Done),
        crate::http::openapi::BadParameter,
        crate::http::openapi::Unauthenticated,
        crate::http::openapi::NotFound,
    )
)]
pub async fn leave(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Done>> {
    state.groups.leave(me, group_id(&id)?).await?;
    Ok(Json(Done { success: true }))
}

fn group_id(raw: &str) -> ApiResult<i64> {
    path_id(raw, "group")
}

fn user_id(raw: &str) -> ApiResult<i64> {
    path_id(raw, "user")
}
