//! Push hooks: an outbox of webhooks for members with no device connected, and
//! per-conversation mutes.
//!
//! - `push_outbox`: one row per (message, recipient) still to be posted. Any node claims
//!   due rows (PostgreSQL `FOR UPDATE SKIP LOCKED`) by moving `next_attempt_at` past a
//!   lease, so a node that dies mid-send leaves its rows to be claimed again; a row
//!   leaves the table when its hook is answered or given up. `delivery_id` travels in
//!   the hook so receivers can drop a repeat.
//! - `conversation_mutes`: a member muted a conversation until `muted_until` (a far
//!   future time for "until unmuted"). A row of its own rather than a column of
//!   `conversation_members`, which every send and list reads.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(Iden)]
enum PushOutbox {
    Table,
    Id,
    DeliveryId,
    UserId,
    ConversationId,
    MessageId,
    Seq,
    CreatedAt,
    Attempts,
    NextAttemptAt,
}

#[derive(Iden)]
enum ConversationMutes {
    Table,
    ConversationId,
    UserId,
    MutedUntil,
}

#[derive(Iden)]
enum ConversationMembers {
    Table,
    ConversationId,
    UserId,
}

#[derive(Iden)]
enum Messages {
    Table,
    Id,
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
        manager
            .create_table(
                Table::create()
                    .table(PushOutbox::Table)
                    .col(
                        ColumnDef::new(PushOutbox::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(PushOutbox::DeliveryId).string_len(36).not_null())
                    .col(ColumnDef::new(PushOutbox::UserId).big_integer().not_null())
                    .col(
                        ColumnDef::new(PushOutbox::ConversationId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(PushOutbox::MessageId).big_integer().not_null())
                    .col(ColumnDef::new(PushOutbox::Seq).big_integer().not_null())
                    .col(
                        ColumnDef::new(PushOutbox::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PushOutbox::Attempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(PushOutbox::NextAttemptAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(PushOutbox::Table, PushOutbox::MessageId)
                            .to(Messages::Table, Messages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(PushOutbox::Table, PushOutbox::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One hook per message and recipient, however often the enqueue is repeated.
        manager
            .create_index(
                Index::create()
                    .name("uq_push_outbox_message_user")
                    .table(PushOutbox::Table)
                    .col(PushOutbox::MessageId)
                    .col(PushOutbox::UserId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_push_outbox_due")
                    .table(PushOutbox::Table)
                    .col(PushOutbox::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ConversationMutes::Table)
                    .col(
                        ColumnDef::new(ConversationMutes::ConversationId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(ConversationMutes::UserId).big_integer().not_null())
                    .col(
                        ColumnDef::new(ConversationMutes::MutedUntil)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(ConversationMutes::ConversationId)
                            .col(ConversationMutes::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from_tbl(ConversationMutes::Table)
                            .from_col(ConversationMutes::ConversationId)
                            .from_col(ConversationMutes::UserId)
                            .to_tbl(ConversationMembers::Table)
                            .to_col(ConversationMembers::ConversationId)
                            .to_col(ConversationMembers::UserId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ConversationMutes::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(PushOutbox::Table).to_owned())
            .await?;
        Ok(())
    }
}
