//! `idx_messages_attachment` indexes only the messages that carry an attachment. Every
//! lookup through it names an attachment (`attachment_id = …`: access checks, the orphan
//! sweep, the foreign key), which a partial index on `attachment_id IS NOT NULL` serves
//! on both databases; the full index gave every sent message an entry for its NULL, a
//! write on the send path that no query ever read (BENCHMARKS.md, scenario 1 with the
//! message lifecycle).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS idx_messages_attachment")
            .await?;
        db.execute_unprepared(
            "CREATE INDEX idx_messages_attachment ON messages (attachment_id) WHERE attachment_id IS NOT NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS idx_messages_attachment")
            .await?;
        db.execute_unprepared("CREATE INDEX idx_messages_attachment ON messages (attachment_id)")
            .await?;
        Ok(())
    }
}
