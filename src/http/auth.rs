use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};

use super::{
    error::ApiResult,
    extract::{AuthUser, Bearer, JsonBody},
    users::UserBody,
};
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
    let token = state.sessions.issue(&user);
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
    let token = state.sessions.issue(&user);
    Ok(Json(Session {
        token,
        user: user.into(),
    }))
}

#[derive(Serialize)]
pub struct Done {
    success: bool,
}

/// `POST /api/auth/logout`: ends the presented token and the sockets it opened.
pub async fn logout(State(state): State<AppState>, Bearer(token): Bearer) -> ApiResult<Json<Done>> {
    state.sessions.logout(&token).await?;
    Ok(Json(Done { success: true }))
}

/// `POST /api/auth/logout-all`: ends every token of the caller and all their sockets.
pub async fn logout_all(State(state): State<AppState>, AuthUser(me): AuthUser) -> ApiResult<Json<Done>> {
    state.sessions.logout_everywhere(me).await?;
    Ok(Json(Done { success: true }))
}

#[derive(Deserialize)]
pub struct PasswordBody {
    current_password: String,
    new_password: String,
}

#[derive(Serialize)]
pub struct NewToken {
    token: String,
}

/// `POST /api/auth/password`: every other token and socket ends; the answer carries a
/// fresh token for this client.
pub async fn change_password(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    JsonBody(body): JsonBody<PasswordBody>,
) -> ApiResult<Json<NewToken>> {
    let token = state
        .sessions
        .change_password(&state.hasher, me, &body.current_password, &body.new_password)
        .await?;
    Ok(Json(NewToken { token }))
}
