//! Answering a refused request: the `error` event seed clients listen to, and the ack.

use super::events::{self, AckError, ErrorBody, ErrorEvent};
use super::{AckSender, SocketRef};
use crate::domain::DomainError;

/// Tells the sender why its request was refused, on `error` and on the ack if asked.
pub fn reply_error(s: &SocketRef, ack: AckSender, e: &DomainError) {
    let (message, retry_after_ms) = emit_error(s, e);
    ack.send(&AckError {
        error: ErrorBody {
            code: e.code(),
            message,
            retry_after_ms,
        },
    })
    .ok();
}

/// Emits `error` (the seed's way of refusing); returns the message and retry hint.
pub fn emit_error(s: &SocketRef, e: &DomainError) -> (String, Option<u64>) {
    if let DomainError::Internal(inner) = e {
        tracing::error!(error = ?inner, "request failed");
    }
    let message = e.to_string();
    let retry_after_ms = match e {
        DomainError::RateLimited { retry_after_ms } => Some(*retry_after_ms),
        _ => None,
    };
    s.emit(
        events::ERROR,
        &ErrorEvent {
            message: message.clone(),
            code: e.code(),
            retry_after_ms,
        },
    )
    .ok();
    (message, retry_after_ms)
}

/// The error for a payload that is not the documented shape.
pub fn invalid(what: &str) -> DomainError {
    DomainError::InvalidInput(what.to_owned())
}
