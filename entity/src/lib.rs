//! SeaORM entities: one module per table.
pub mod attachments;
pub mod conversation_members;
pub mod conversation_mutes;
pub mod conversations;
pub mod message_reactions;
pub mod messages;
pub mod push_outbox;
pub mod users;
