//! JSON responses sized up front.
use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use super::error::ApiError;
use crate::domain::DomainError;

/// Like `axum::Json`, but serialised into a buffer of `capacity` bytes: a long list then
/// costs one allocation instead of a dozen regrowths and copies of its body.
pub fn json_sized<T: Serialize>(value: &T, capacity: usize) -> Result<Response, ApiError> {
    let mut body = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut body, value).map_err(|e| ApiError::Domain(DomainError::Internal(e.into())))?;
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response())
}
