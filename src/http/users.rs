use axum::{Json, extract::State};
use serde::Serialize;

use super::{error::ApiResult, extract::AuthUser};
use crate::{domain::accounts, state::AppState, wire::iso};

/// A user as the API shows it.
#[derive(Serialize)]
pub struct UserBody {
    pub id: i64,
    pub email: String,
    pub display_name: String,
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
pub async fn me(State(state): State<AppState>, AuthUser(id): AuthUser) -> ApiResult<Json<UserBody>> {
    Ok(Json(accounts::get(&state.db, id).await?.into()))
}
