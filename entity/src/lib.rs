//! SeaORM entities: one module per table.
pub mod attachments;
pub mod conversation_members;
pub mod conversations;
pub mod message_reactions;
pub mod messages;
pub mod users;
