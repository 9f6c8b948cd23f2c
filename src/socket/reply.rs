//! Answering a refused request: the `error` event seed clients listen to, and the ack.
use socketioxide::extract::{AckSender, SocketRef};

use super::events::{self, AckError, ErrorBody, ErrorEvent};
use crate::domain::DomainError;

/// Tells the sender why its request was refused, on `error` and on the ack if asked.
pub fn reply_error(s: &SocketRef, ack: AckSender, e: &DomainError) {
    if let DomainError::Internal(inner) = e {
        tracing::error!(error = ?inner, "request failed");
    }
    let message = e.to_string();
    s.emit(
        events::ERROR,
        &ErrorEvent {
            message: message.clone(),
            code: e.code(),
        },
    )
    .ok();
    ack.send(&AckError {
        error: ErrorBody {
            code: e.code(),
            message,
        },
    })
    .ok();
}

/// The error for a payload that is not the documented shape.
pub fn invalid(what: &str) -> DomainError {
    DomainError::InvalidInput(what.to_owned())
}
