//! Request extractors: the authenticated caller, JSON bodies and query numbers with our errors.
use std::collections::HashMap;

use axum::{
    Json,
    extract::{FromRequest, FromRequestParts, Query, Request},
    http::{header, request::Parts},
};
use serde::de::DeserializeOwned;

use super::{error::ApiError, observe::Caller};
use crate::{
    auth::jwt::{TokenError, Verified},
    domain::{DomainError, sessions::AuthFailure},
    state::AppState,
};

/// The user a valid `Authorization: Bearer` token names, checked to still exist.
pub struct AuthUser(pub i64);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Bearer(verified) = Bearer::from_request_parts(parts, state).await?;
        Ok(AuthUser(verified.user_id))
    }
}

/// The claims of a valid, unrevoked `Authorization: Bearer` token (for logout).
pub struct Bearer(pub Verified);

impl FromRequestParts<AppState> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(TokenError::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::Unauthorized("Authorization header must be `Bearer <token>`".into()))?;
        match state.sessions.authenticate(token).await {
            Ok(verified) => {
                // The request's log line names the user (see `observe::track`).
                if let Some(caller) = parts.extensions.get::<Caller>() {
                    caller.set(verified.user_id);
                }
                Ok(Bearer(verified))
            }
            Err(AuthFailure::Token(e)) => Err(e.into()),
            Err(AuthFailure::UnknownUser) => Err(ApiError::Unauthorized("user not found".into())),
            Err(AuthFailure::Unavailable) => Err(ApiError::Domain(DomainError::Unavailable)),
        }
    }
}

/// An id taken from the URL path (`/api/groups/{id}`): a positive integer, or a 400
/// naming `what` (read as text so the error is ours, not axum's).
pub fn path_id(raw: &str, what: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::BadRequest(format!("{what} id must be a positive integer")))
}

/// A JSON body whose rejections read as `{ "error" }`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(v) = Json::<T>::from_request(req, state).await?;
        Ok(JsonBody(v))
    }
}

/// Query parameters, read as text so that a bad number gets a precise 400.
pub struct QueryParams(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(map) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::BadRequest("malformed query string".into()))?;
        Ok(QueryParams(map))
    }
}

impl QueryParams {
    /// A required non-negative integer.
    pub fn required(&self, name: &str) -> Result<i64, ApiError> {
        self.optional(name)?
            .ok_or_else(|| ApiError::BadRequest(format!("missing required parameter `{name}`")))
    }

    /// An optional non-negative integer.
    pub fn optional(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.0.get(name).map(|v| v.trim()) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .map(Some)
                .ok_or_else(|| ApiError::BadRequest(format!("`{name}` must be a non-negative integer"))),
        }
    }

    /// An optional text parameter (None when absent or blank).
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// A required comma-separated list of ids, e.g. `1,2,3`.
    pub fn id_list(&self, name: &str) -> Result<Vec<i64>, ApiError> {
        let raw = self
            .0
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::BadRequest(format!("missing required parameter `{name}`")))?;
        raw.split(',')
            .map(|part| part.trim().parse::<i64>().ok().filter(|n| *n > 0))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ApiError::BadRequest(format!("`{name}` must be comma-separated user ids")))
    }
}
