//! Edits, deletes, replies and reactions, and the change cursor that lets a device
//! catch up on them.
//!
//! - `conversations.version`: bumped by one for every insert, edit, delete and reaction
//!   in the conversation, under the same row lock as `last_seq`, so it is gap-free and
//!   ordered like the commits. Starts at `last_seq` (every message so far was one insert).
//! - `messages.version`: the conversation's version at the message's last change; a
//!   device that has seen version `v` asks for the messages with a larger one.
//!   `messages.seq` was each existing message's version.
//! - `messages.edited_at`, `messages.deleted_at` (a tombstone keeps its place, its
//!   content is erased), `messages.reply_to_id` (a message of the same conversation,
//!   checked by the writer; no foreign key, as SQLite cannot add one to a table).
//! - `message_reactions`: one emoji per user per message.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(Iden)]
enum Conversations {
    Table,
    Version,
}

#[derive(Iden)]
enum Messages {
    Table,
    Id,
    ConversationId,
    Version,
    EditedAt,
    DeletedAt,
    ReplyToId,
}

#[derive(Iden)]
enum MessageReactions {
    Table,
    MessageId,
    UserId,
    Emoji,
    ReactedAt,
}

#[derive(Iden)]
enum Users {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut version = ColumnDef::new(Conversations::Version)
            .big_integer()
            .not_null()
            .default(0)
            .to_owned();
        manager
            .alter_table(
                Table::alter()
                    .table(Conversations::Table)
                    .add_column(&mut version)
                    .to_owned(),
            )
            .await?;
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [
            ColumnDef::new(Messages::Version)
                .big_integer()
                .not_null()
                .default(0)
                .to_owned(),
            ColumnDef::new(Messages::EditedAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
            ColumnDef::new(Messages::DeletedAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
            ColumnDef::new(Messages::ReplyToId)
                .big_integer()
                .null()
                .to_owned(),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Messages::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        let db = manager.get_connection();
        db.execute_unprepared("UPDATE conversations SET version = last_seq")
            .await?;
        db.execute_unprepared("UPDATE messages SET version = seq").await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_conversation_version")
                    .table(Messages::Table)
                    .col(Messages::ConversationId)
                    .col(Messages::Version)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MessageReactions::Table)
                    .col(
                        ColumnDef::new(MessageReactions::MessageId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(MessageReactions::UserId).big_integer().not_null())
                    .col(ColumnDef::new(MessageReactions::Emoji).text().not_null())
                    .col(
                        ColumnDef::new(MessageReactions::ReactedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(MessageReactions::MessageId)
                            .col(MessageReactions::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(MessageReactions::Table, MessageReactions::MessageId)
                            .to(Messages::Table, Messages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(MessageReactions::Table, MessageReactions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MessageReactions::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_messages_conversation_version")
                    .table(Messages::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            Messages::ReplyToId,
            Messages::DeletedAt,
            Messages::EditedAt,
            Messages::Version,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Messages::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Conversations::Table)
                    .drop_column(Conversations::Version)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
