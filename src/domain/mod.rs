//! Rules of the chat, free of any transport: REST and Socket.IO both call into here.
pub mod accounts;
pub mod attachments;
pub mod contacts;
pub mod conversations;
pub mod e2e;
pub mod error;
pub mod groups;
pub mod hashing;
pub mod lifecycle;
pub mod limits;
pub mod messaging;
pub mod mutes;
pub mod presence;
pub mod receipts;
pub mod search;
pub mod sessions;
pub mod spans;
pub mod types;
pub mod typing;

pub use error::{DomainError, DomainResult};
