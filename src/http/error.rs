//! The REST error type: every failure becomes a status and `{ "error": "…" }`.
use axum::{
    Json,
    extract::rejection::JsonRejection,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{auth::jwt::TokenError, domain::DomainError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    #[error(transparent)]
    Domain(#[from] DomainError),
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        ApiError::Unauthorized(e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
            JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge
            }
            JsonRejection::JsonDataError(e) => ApiError::invalid_body(&e.body_text()),
            _ => ApiError::BadRequest("request body must be valid JSON".into()),
        }
    }
}

impl ApiError {
    /// A JSON body of the wrong shape; `detail` says where and why.
    pub fn invalid_body(detail: &str) -> ApiError {
        ApiError::BadRequest(format!("invalid request body: {detail}"))
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Domain(d) => match d {
                DomainError::InvalidInput(_) => StatusCode::BAD_REQUEST,
                DomainError::InvalidEmail
                | DomainError::WeakPassword
                | DomainError::Unstorable(_)
                | DomainError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
                DomainError::EmptyContent | DomainError::SelfRecipient => StatusCode::UNPROCESSABLE_ENTITY,
                DomainError::ContentTooLong(_) => StatusCode::PAYLOAD_TOO_LARGE,
                DomainError::EmailTaken => StatusCode::CONFLICT,
                DomainError::BadCredentials => StatusCode::UNAUTHORIZED,
                DomainError::UserNotFound
                | DomainError::UnknownRecipient
                | DomainError::ConversationNotFound
                | DomainError::MessageNotFound
                | DomainError::DeviceNotFound => StatusCode::NOT_FOUND,
                DomainError::Forbidden(_)
                | DomainError::Blocked
                | DomainError::NotYourMessage(_)
                | DomainError::EditWindowExpired
                | DomainError::NotMember => StatusCode::FORBIDDEN,
                DomainError::MessageDeleted
                | DomainError::TooManyPrekeys(_)
                | DomainError::EncryptedEdit
                | DomainError::IdempotencyKeyReused => StatusCode::CONFLICT,
                DomainError::AttachmentTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
                DomainError::UnsupportedAttachmentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                DomainError::AttachmentNotFound => StatusCode::NOT_FOUND,
                DomainError::InvalidGroup(_) | DomainError::TooManyMembers(_) => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                DomainError::Unavailable | DomainError::Busy => StatusCode::SERVICE_UNAVAILABLE,
                DomainError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
                DomainError::InvalidToken(_) | DomainError::TokenExpired | DomainError::TokenRevoked => {
                    StatusCode::UNAUTHORIZED
                }
                DomainError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Domain(DomainError::Internal(e)) = &self {
            // Logged in full here; the client only learns that something went wrong.
            tracing::error!(error = ?e, "request failed");
        }
        let mut response = (self.status(), Json(json!({ "error": self.to_string() }))).into_response();
        let retry_after_secs = match &self {
            ApiError::Domain(DomainError::Busy) => Some(1),
            ApiError::Domain(DomainError::RateLimited { retry_after_ms }) => {
                Some(retry_after_ms.div_ceil(1000))
            }
            _ => None,
        };
        if let Some(secs) = retry_after_secs {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
