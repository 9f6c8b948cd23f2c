use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};

use super::{error::ApiResult, extract::JsonBody, users::UserBody};
use crate::{domain::accounts, state::AppState};

#[derive(Deserialize)]
pub struct RegisterBody {
    email: String,
    password: String,
    display_name: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginBody {
    email: String,
    password: String,
}

#[derive(Serialize)]
pub struct Session {
    token: String,
    user: UserBody,
}

/// `POST /api/auth/register`
pub async fn register(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<RegisterBody>,
) -> ApiResult<(StatusCode, Json<Session>)> {
    let user = accounts::register(
        &state.db,
        &state.hasher,
        &body.email,
        &body.password,
        body.display_name.as_deref(),
    )
    .await?;
    let token = state.jwt.issue(user.id);
    Ok((
        StatusCode::CREATED,
        Json(Session {
            token,
            user: user.into(),
        }),
    ))
}

/// `POST /api/auth/login`
pub async fn login(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<LoginBody>,
) -> ApiResult<Json<Session>> {
    let user = accounts::login(&state.db, &state.hasher, &body.email, &body.password).await?;
    let token = state.jwt.issue(user.id);
    Ok(Json(Session {
        token,
        user: user.into(),
    }))
}
