//! Who may see whom, and blocking.
//!
//! - `conversation_members.has_written`: whether the member ever sent a message in the
//!   conversation. A user's presence goes to people they have written to (a stranger's
//!   first message does not make the recipient's presence visible to the stranger).
//! - `blocks`: a user's blocked users. Direct messages between them are refused in
//!   both directions, and neither sees the other's presence.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(Iden)]
enum ConversationMembers {
    Table,
    HasWritten,
}

#[derive(Iden)]
enum Blocks {
    Table,
    BlockerId,
    BlockedId,
    CreatedAt,
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
        let mut wrote = ColumnDef::new(ConversationMembers::HasWritten)
            .boolean()
            .not_null()
            .default(false)
            .to_owned();
        manager
            .alter_table(
                Table::alter()
                    .table(ConversationMembers::Table)
                    .add_column(&mut wrote)
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE conversation_members SET has_written = EXISTS (SELECT 1 FROM messages m \
                   WHERE m.conversation_id = conversation_members.conversation_id \
                     AND m.sender_id = conversation_members.user_id)",
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Blocks::Table)
                    .col(ColumnDef::new(Blocks::BlockerId).big_integer().not_null())
                    .col(ColumnDef::new(Blocks::BlockedId).big_integer().not_null())
                    .col(
                        ColumnDef::new(Blocks::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(Index::create().col(Blocks::BlockerId).col(Blocks::BlockedId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Blocks::Table, Blocks::BlockerId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Blocks::Table, Blocks::BlockedId)
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
            .drop_table(Table::drop().table(Blocks::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ConversationMembers::Table)
                    .drop_column(ConversationMembers::HasWritten)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
