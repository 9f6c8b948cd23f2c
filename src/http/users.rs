use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;

use super::{error::ApiResult, extract::AuthUser};
use crate::{domain::accounts, state::AppState, wire::iso};

/// A user as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct UserBody {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<entity::users::Model> for UserBody {
    fn from(u: entity::users::Model) -> Self {
        UserBody {
            id: u.id,
            email: u.email,
            display_name: u.display_name,
            created_at: iso(u.created_at),
        }
    }
}

/// `GET /api/me`
#[utoipa::path(
    get,
    path = "/api/me",
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the caller", body = UserBody),
        crate::http::openapi::Unauthenticated,
    )
)]
pub async fn me(State(state): State<AppState>, AuthUser(id): AuthUser) -> ApiResult<Json<UserBody>> {
    Ok(Json(accounts::get(&state.db, id).await?.into()))
}
