//! A deleted message no longer counts as unread. `conversation_members.sent_since_read`
//! now counts every message after the member's read position that is not unread for
//! them: their own, and (from here on) deleted ones. Deleting a message bumps it for the
//! members who had not read it; marking read recounts it. This recounts the members
//! of conversations that already hold deleted messages after their read position.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE conversation_members SET sent_since_read = \
                   (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = conversation_members.conversation_id \
                      AND m.seq > conversation_members.read_seq \
                      AND (m.sender_id = conversation_members.user_id OR m.deleted_at IS NOT NULL)) \
                 WHERE EXISTS (SELECT 1 FROM messages d WHERE d.conversation_id = conversation_members.conversation_id \
                      AND d.deleted_at IS NOT NULL AND d.seq > conversation_members.read_seq)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE conversation_members SET sent_since_read = \
                   (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = conversation_members.conversation_id \
                      AND m.seq > conversation_members.read_seq AND m.sender_id = conversation_members.user_id)",
            )
            .await?;
        Ok(())
    }
}
