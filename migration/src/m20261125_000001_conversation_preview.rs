//! The conversation list's preview of the last message, kept on the conversation row.
//!
//! The writer already updates the conversation row (its counter) for every batch, so
//! copying the newest message's sender, text and time there costs little, and the list
//! then reads no `messages` rows at all: its cost stays the same however long the
//! conversations grow.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(Iden)]
enum Conversations {
    Table,
    LastSenderId,
    LastContent,
    LastSentAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    // All or nothing on SQLite too (its DDL is transactional; the default there is none).
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [
            ColumnDef::new(Conversations::LastSenderId)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(Conversations::LastContent)
                .text()
                .null()
                .to_owned(),
            ColumnDef::new(Conversations::LastSentAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Conversations::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        // Conversations that already have messages get their preview now.
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE conversations SET last_sender_id = m.sender_id, last_content = m.content, \
                   last_sent_at = m.sent_at \
                 FROM messages m WHERE m.conversation_id = conversations.id AND m.seq = conversations.last_seq",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Conversations::LastSentAt,
            Conversations::LastContent,
            Conversations::LastSenderId,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Conversations::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
