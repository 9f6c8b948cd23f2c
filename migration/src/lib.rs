//! Schema migrations, run at start-up and by `realtime-chat migrate`.
pub use sea_orm_migration::prelude::*;

mod m20261124_000001_initial;
mod m20261125_000001_conversation_preview;
mod m20261125_000002_message_sender_membership;
mod m20261125_000003_member_positions;
mod m20261125_000004_token_revocation;
mod m20261125_000005_privacy;
mod m20261207_000001_message_lifecycle;
mod m20261208_000001_attachments;
mod m20261208_000002_search;
mod m20261208_000003_push_hooks;
mod m20261208_000004_e2e_keys;
mod m20261208_000005_unread_skips_deleted;
mod m20261208_000006_sparse_attachment_index;
mod m20261208_000007_search_beside_messages;
mod m20261208_000008_search_indexed_behind;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_initial::Migration),
            Box::new(m20261125_000001_conversation_preview::Migration),
            Box::new(m20261125_000002_message_sender_membership::Migration),
            Box::new(m20261125_000003_member_positions::Migration),
            Box::new(m20261125_000004_token_revocation::Migration),
            Box::new(m20261125_000005_privacy::Migration),
            Box::new(m20261207_000001_message_lifecycle::Migration),
            Box::new(m20261208_000005_unread_skips_deleted::Migration),
            Box::new(m20261208_000004_e2e_keys::Migration),
            Box::new(m20261208_000001_attachments::Migration),
            Box::new(m20261208_000003_push_hooks::Migration),
            Box::new(m20261208_000002_search::Migration),
            Box::new(m20261208_000006_sparse_attachment_index::Migration),
            Box::new(m20261208_000007_search_beside_messages::Migration),
            Box::new(m20261208_000008_search_indexed_behind::Migration),
        ]
    }
}
