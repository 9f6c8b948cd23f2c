use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    error::ApiResult,
    extract::{AuthUser, Bearer, JsonBody},
    users::UserBody,
};
use crate::{domain::accounts, state::AppState};

#[derive(Deserialize, ToSchema)]
pub struct RegisterBody {
    #[schema(format = Email)]
    email: String,
    #[schema(min_length = 8, max_length = 1024)]
    password: String,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    display_name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginBody {
    email: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct Session {
    token: String,
    user: UserBody,
}

/// `POST /api/auth/register`
#[utoipa::path(
    post,
    path = "/api/auth/register",
    tag = "auth",
    request_body = RegisterBody,
    responses(
        (status = 201, description = "registered; the token is ready to use", body = Session),
        crate::http::openapi::BadBody,
        (status = 409, description = "email already registered", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "invalid email, or password under 8 characters", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::HashingBusy,
    )
)]
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
#[utoipa::path(
    post,
    path = "/api/auth/login",
    tag = "auth",
    request_body = LoginBody,
    responses(
        (status = 200, description = "logged in", body = Session),
        crate::http::openapi::BadBody,
        (status = 401, description = "invalid email or password (unknown email and wrong password alike)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::HashingBusy,
    )
)]
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

#[derive(Serialize, ToSchema)]
pub struct Done {
    success: bool,
}

impl Done {
    /// `{ success: true }`.
    pub fn yes() -> Done {
        Done { success: true }
    }
}

#[utoipa::path(
    post,
    path = "/api/auth/logout",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "this token no longer works", body = Done),
        crate::http::openapi::Unauthenticated,
    )
)]
/// `POST /api/auth/logout`: ends the presented token and the sockets it opened.
pub async fn logout(State(state): State<AppState>, Bearer(token): Bearer) -> ApiResult<Json<Done>> {
    state.sessions.logout(&token).await?;
    Ok(Json(Done { success: true }))
}

#[utoipa::path(
    post,
    path = "/api/auth/logout-all",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "every token of the caller ended", body = Done),
        crate::http::openapi::Unauthenticated,
    )
)]
/// `POST /api/auth/logout-all`: ends every token of the caller and all their sockets.
pub async fn logout_all(State(state): State<AppState>, AuthUser(me): AuthUser) -> ApiResult<Json<Done>> {
    state.sessions.logout_everywhere(me).await?;
    Ok(Json(Done { success: true }))
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordBody {
    current_password: String,
    #[schema(min_length = 8, max_length = 1024)]
    new_password: String,
}

#[derive(Serialize, ToSchema)]
pub struct NewToken {
    token: String,
}

#[utoipa::path(
    post,
    path = "/api/auth/password",
    tag = "auth",
    request_body = PasswordBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "changed; a fresh token for this client", body = NewToken),
        crate::http::openapi::BadBody,
        (status = 401, description = "missing or invalid token, or wrong current password", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "new password under 8 characters", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::HashingBusy,
    )
)]
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
