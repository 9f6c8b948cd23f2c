//! Request extractors: the authenticated caller, JSON bodies and query numbers with our errors.
use std::collections::HashMap;

use axum::{
    Json,
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Query, Request, rejection::JsonRejection},
    http::{HeaderMap, header, request::Parts},
};
use serde::de::DeserializeOwned;
use serde_json::Value;

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
///
/// An integer may be written as an integral float (`5.0`): JSON Schema (2020-12, which
/// the OpenAPI document uses) counts `5.0` as an integer, so a request the document
/// allows is not refused for its spelling. Such a body is read as written first; only if
/// that fails is it read again with every integral float in the `i64` range as an
/// integer, so a body without one costs nothing extra and one with `5.5` is still
/// refused, naming the `5.5`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(JsonRejection::from)?;
        let rejection = match Json::<T>::from_bytes(&bytes) {
            Ok(Json(v)) => return Ok(JsonBody(v)),
            Err(JsonRejection::JsonDataError(e)) => e,
            Err(e) => return Err(e.into()),
        };
        let Some(fixed) = integral_floats_as_integers(&bytes) else {
            return Err(JsonRejection::from(rejection).into());
        };
        match Json::<T>::from_bytes(&fixed) {
            Ok(Json(v)) => Ok(JsonBody(v)),
            // What is still wrong once the whole floats are read as integers; its position
            // is in the re-encoded text, not the client's, so only the field path is kept.
            Err(JsonRejection::JsonDataError(e)) => {
                let detail = e.body_text();
                let detail = detail
                    .rsplit_once(" at line ")
                    .map_or(detail.as_str(), |(d, _)| d);
                Err(ApiError::invalid_body(detail))
            }
            Err(_) => Err(JsonRejection::from(rejection).into()),
        }
    }
}

/// `application/json`, or any `application/*+json`, parameters allowed (axum's rule).
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let subtype = subtype.to_ascii_lowercase();
    kind.eq_ignore_ascii_case("application")
        && !subtype.contains(char::is_whitespace)
        && (subtype == "json" || subtype.ends_with("+json"))
}

/// The body re-encoded with each integral float within `i64` as an integer; None when it
/// has none (or is not JSON), so there is nothing to retry.
fn integral_floats_as_integers(bytes: &[u8]) -> Option<Vec<u8>> {
    fn fix(value: &mut Value) -> bool {
        match value {
            Value::Number(n) if n.is_f64() => match n.as_f64().and_then(integral) {
                Some(i) => {
                    *value = Value::from(i);
                    true
                }
                None => false,
            },
            Value::Array(items) => items.iter_mut().fold(false, |changed, v| fix(v) | changed),
            Value::Object(fields) => fields.values_mut().fold(false, |changed, v| fix(v) | changed),
            _ => false,
        }
    }
    let mut value: Value = serde_json::from_slice(bytes).ok()?;
    fix(&mut value).then(|| serde_json::to_vec(&value).ok()).flatten()
}

/// `f` as an `i64` when it is a whole number that one can hold exactly.
fn integral(f: f64) -> Option<i64> {
    // -2^63 is an i64, 2^63 is not; both are exact as f64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f)).then_some(f as i64)
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

    /// An optional non-negative integer. Present but blank (`limit=`) is no integer, so
    /// it is refused like `limit=abc`, not taken for absent.
    pub fn optional(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.0.get(name).map(|v| v.trim()) {
            None => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .map(Some)
                .ok_or_else(|| ApiError::BadRequest(format!("`{name}` must be a non-negative integer"))),
        }
    }

    /// A text parameter exactly as sent (None when absent).
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
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

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn integral_floats_become_integers_and_nothing_else_changes() {
        let fixed = integral_floats_as_integers(br#"{"a":[5.0,-164.0,2],"b":{"c":1e3},"d":"5.0"}"#).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&fixed).unwrap(),
            serde_json::json!({ "a": [5, -164, 2], "b": { "c": 1000 }, "d": "5.0" })
        );
        assert_eq!(
            serde_json::from_slice::<Value>(
                &integral_floats_as_integers(br#"{"user_ids":[-1888570340324927.0]}"#).unwrap()
            )
            .unwrap(),
            serde_json::json!({ "user_ids": [-1888570340324927_i64] }),
            "a 16-digit whole float is read exactly"
        );
        assert_eq!(
            integral_floats_as_integers(br#"{"a":[5,6]}"#),
            None,
            "nothing to fix"
        );
        assert_eq!(
            integral_floats_as_integers(br#"{"a":5.5}"#),
            None,
            "a fraction stays"
        );
        assert_eq!(integral_floats_as_integers(b"{"), None, "not JSON");
    }

    #[test]
    fn only_whole_floats_within_i64_are_integers() {
        assert_eq!(integral(5.0), Some(5));
        assert_eq!(integral(-0.0), Some(0));
        assert_eq!(integral(-9_223_372_036_854_775_808.0), Some(i64::MIN));
        assert_eq!(integral(9_223_372_036_854_775_808.0), None);
        assert_eq!(integral(1e19), None);
        assert_eq!(integral(0.5), None);
    }

    #[test]
    fn a_blank_number_is_refused_not_taken_for_absent() {
        let params = QueryParams(HashMap::from([
            ("limit".to_owned(), "".to_owned()),
            ("offset".to_owned(), " 5 ".to_owned()),
            ("cursor".to_owned(), " ".to_owned()),
        ]));
        assert!(params.optional("limit").is_err());
        assert_eq!(params.optional("offset").unwrap(), Some(5));
        assert_eq!(params.optional("after_seq").unwrap(), None);
        assert_eq!(params.text("cursor"), None);
    }

    #[test]
    fn json_content_types_are_axums() {
        let with = |v: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(v));
            json_content_type(&headers)
        };
        assert!(with("application/json"));
        assert!(with("application/json; charset=utf-8"));
        assert!(with("Application/JSON;charset=utf-8"));
        assert!(with("application/cloudevents+json"));
        assert!(!with("text/json"));
        assert!(!with("application/jsonx"));
        assert!(!with("text/plain"));
        assert!(!json_content_type(&HeaderMap::new()));
    }
}
