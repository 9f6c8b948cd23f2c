//! What can go wrong in a domain operation, in words a client may see.
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DomainError {
    #[error("{0}")]
    InvalidInput(String),
    /// Well-formed but not acceptable (a length limit): 422 over REST.
    #[error("{0}")]
    Unprocessable(String),
    /// Text no database can store the same way (U+0000).
    #[error("{0} must not contain NUL characters")]
    Unstorable(&'static str),
    #[error("invalid email address")]
    InvalidEmail,
    #[error("password must be at least 8 characters")]
    WeakPassword,
    #[error("email already registered")]
    EmailTaken,
    #[error("invalid email or password")]
    BadCredentials,
    #[error("user not found")]
    UserNotFound,
    #[error("recipient does not exist")]
    UnknownRecipient,
    #[error("cannot send a message to yourself")]
    SelfRecipient,
    #[error("content must not be empty")]
    EmptyContent,
    #[error("content exceeds {0} bytes")]
    ContentTooLong(usize),
    /// The conversation is missing or the caller is not a member: deliberately one error.
    #[error("conversation not found")]
    ConversationNotFound,
    /// The message is missing or not the caller's to see: deliberately one error.
    #[error("message not found")]
    MessageNotFound,
    /// Someone else's message: only its sender may edit it (or, in a group, an admin
    /// delete it).
    #[error("{0}")]
    NotYourMessage(&'static str),
    /// The message is older than the edit window (or editing is turned off).
    #[error("the edit window for this message has passed")]
    EditWindowExpired,
    /// The caller was a member of the message's conversation and is no longer.
    #[error("you are no longer a member of this conversation")]
    NotMember,
    /// The message was deleted for everyone: it can no longer be edited or reacted to.
    #[error("the message was deleted")]
    MessageDeleted,
    /// The caller's device has published no keys.
    #[error("no keys are published for this device")]
    DeviceNotFound,
    /// A device would hold more unclaimed one-time prekeys than allowed.
    #[error("a device holds at most {0} unclaimed one-time prekeys")]
    TooManyPrekeys(u64),
    /// Encrypted messages cannot be edited (the server cannot check the new ciphertexts
    /// say the same thing to everyone): delete and send again.
    #[error("an encrypted message cannot be edited: delete it and send a new one")]
    EncryptedEdit,
    /// A block stands between sender and recipient (either way).
    #[error("messages between you and this user are blocked")]
    Blocked,
    /// A member lacking the role for a group operation.
    #[error("{0}")]
    Forbidden(String),
    /// A group request that is well-formed but not acceptable (name, size, user ids).
    #[error("{0}")]
    InvalidGroup(String),
    #[error("a group has at most {0} members")]
    TooManyMembers(usize),
    /// A token presented after the handshake (`auth_refresh`) was refused.
    #[error("{0}")]
    InvalidToken(String),
    /// The token a socket connected with has expired.
    #[error("token expired: reconnect with a fresh token")]
    TokenExpired,
    /// The socket's token was ended (logout, password change).
    #[error("token revoked: log in again")]
    TokenRevoked,
    /// The caller's token bucket is empty.
    #[error("too many requests: retry in {retry_after_ms} ms")]
    RateLimited { retry_after_ms: u64 },
    /// Too many expensive requests at once (password hashing): try again shortly.
    #[error("server busy, retry shortly")]
    Busy,
    #[error("server is shutting down")]
    Unavailable,
    /// Anything else: logged with context, shown to clients as a generic message.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl From<sea_orm::DbErr> for DomainError {
    fn from(e: sea_orm::DbErr) -> Self {
        DomainError::Internal(anyhow::Error::new(e))
    }
}

impl DomainError {
    /// A stable machine-readable code for clients.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::InvalidInput(_) | DomainError::Unstorable(_) | DomainError::Unprocessable(_) => {
                "invalid_payload"
            }
            DomainError::InvalidEmail => "invalid_email",
            DomainError::WeakPassword => "weak_password",
            DomainError::EmailTaken => "email_taken",
            DomainError::BadCredentials => "bad_credentials",
            DomainError::UserNotFound => "user_not_found",
            DomainError::UnknownRecipient => "unknown_recipient",
            DomainError::SelfRecipient => "invalid_recipient",
            DomainError::EmptyContent => "empty_content",
            DomainError::ContentTooLong(_) => "content_too_long",
            DomainError::ConversationNotFound => "conversation_not_found",
            DomainError::MessageNotFound => "message_not_found",
            DomainError::NotYourMessage(_) => "not_your_message",
            DomainError::EditWindowExpired => "edit_window_expired",
            DomainError::NotMember => "not_member",
            DomainError::MessageDeleted => "message_deleted",
            DomainError::Forbidden(_) => "forbidden",
            DomainError::Blocked => "blocked",
            DomainError::DeviceNotFound => "device_not_found",
            DomainError::TooManyPrekeys(_) => "too_many_prekeys",
            DomainError::EncryptedEdit => "encrypted_message",
            DomainError::InvalidGroup(_) => "invalid_group",
            DomainError::TooManyMembers(_) => "too_many_members",
            DomainError::RateLimited { .. } => "rate_limited",
            DomainError::InvalidToken(_) => "invalid_token",
            DomainError::TokenExpired => "token_expired",
            DomainError::TokenRevoked => "token_revoked",
            DomainError::Busy => "busy",
            DomainError::Unavailable => "unavailable",
            DomainError::Internal(_) => "internal_error",
        }
    }
}

pub type DomainResult<T> = Result<T, DomainError>;
