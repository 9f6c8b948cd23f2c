//! `/api/conversations/{id}/mute`: read or set the caller's mute of one conversation
//! (push hooks only; see `domain::mutes`).
use axum::{
    Json,
    extract::{Path, State},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{
    error::{ApiError, ApiResult},
    extract::{AuthUser, JsonBody, path_id},
};
use crate::{
    domain::mutes::{self, MuteRequest, MuteState},
    state::AppState,
    wire::iso,
};

/// Mute until unmuted (`true`) or unmute (`false`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MuteFlag {
    muted: bool,
}

/// Mute until this time (RFC 3339); a time already past unmutes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MuteUntil {
    #[schema(format = DateTime, examples("2030-01-01T08:00:00Z"))]
    until: String,
}

/// Exactly one of `muted` or `until`.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum MuteBody {
    Flag(MuteFlag),
    Until(MuteUntil),
}

/// The caller's mute of one conversation.
#[derive(Serialize, ToSchema)]
pub struct Mute {
    conversation_id: i64,
    /// Whether push hooks for this conversation are off for the caller now.
    muted: bool,
    /// When the mute ends; null when not muted or muted until unmuted.
    #[schema(format = DateTime)]
    muted_until: Option<String>,
}

impl From<MuteState> for Mute {
    fn from(s: MuteState) -> Self {
        Mute {
            conversation_id: s.conversation_id,
            muted: s.muted,
            muted_until: s.muted_until.map(iso),
        }
    }
}

/// Reads a body as [`MuteRequest`], with one message for every shape that is not one.
fn request(body: Value) -> ApiResult<MuteRequest> {
    let shape = || {
        ApiError::invalid_body(r#"give {"muted": true|false} or {"until": "<RFC 3339 time>"}, one of them"#)
    };
    // serde would read `[true]` as the struct `{ "muted": true }`: only an object will do.
    if !body.is_object() {
        return Err(shape());
    }
    match serde_json::from_value::<MuteBody>(body).map_err(|_| shape())? {
        MuteBody::Flag(MuteFlag { muted }) => Ok(MuteRequest::Muted(muted)),
        MuteBody::Until(MuteUntil { until }) => DateTime::parse_from_rfc3339(&until)
            .map(|t| MuteRequest::Until(t.with_timezone(&Utc)))
            .map_err(|_| {
                ApiError::invalid_body("until must be an RFC 3339 date-time, e.g. 2030-01-01T08:00:00Z")
            }),
    }
}

/// `GET /api/conversations/{id}/mute`
#[utoipa::path(
    get,
    path = "/api/conversations/{id}/mute",
    tag = "conversations",
    params(("id" = i64, Path, description = "conversation id", minimum = 1)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "whether the caller muted the conversation's push hooks, and until when", body = Mute),
        crate::http::openapi::BadParameter,
        crate::http::openapi::Unauthenticated,
        (status = 404, description = "no such conversation, or the caller is not a current member", body = crate::http::openapi::ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Mute>> {
    let id = path_id(&id, "conversation")?;
    Ok(Json(mutes::get(&state.db, me, id).await?.into()))
}

/// `PUT /api/conversations/{id}/mute`
#[utoipa::path(
    put,
    path = "/api/conversations/{id}/mute",
    tag = "conversations",
    params(("id" = i64, Path, description = "conversation id", minimum = 1)),
    request_body = MuteBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the mute as it now stands: no push hooks for this conversation while muted", body = Mute),
        crate::http::openapi::BadBody,
        crate::http::openapi::Unauthenticated,
        (status = 404, description = "no such conversation, or the caller is not a current member", body = crate::http::openapi::ErrorBody),
    )
)]
pub async fn put(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Mute>> {
    let id = path_id(&id, "conversation")?;
    let request = request(body)?;
    Ok(Json(mutes::set(&state.db, me, id, request).await?.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_of_muted_or_until() {
        assert_eq!(
            request(json!({ "muted": true })).unwrap(),
            MuteRequest::Muted(true)
        );
        assert!(matches!(
            request(json!({ "until": "2030-01-01t08:00:00z" })).unwrap(),
            MuteRequest::Until(_)
        ));
        for bad in [
            json!({}),
            json!({ "muted": null }),
            json!({ "muted": "yes" }),
            json!({ "muted": true, "until": "2030-01-01T08:00:00Z" }),
            json!({ "muted": true, "other": 1 }),
            json!({ "until": "tomorrow" }),
            json!([true]),
        ] {
            assert!(request(bad.clone()).is_err(), "{bad}");
        }
    }
}
