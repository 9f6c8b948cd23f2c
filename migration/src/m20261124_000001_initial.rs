//! One schema for direct and group conversations.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(Iden)]
enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
    DisplayName,
    CreatedAt,
    LastSeenAt,
}

#[derive(Iden)]
enum Conversations {
    Table,
    Id,
    Kind,
    UserA,
    UserB,
    Name,
    Description,
    CreatedAt,
    UpdatedAt,
    LastSeq,
}

#[derive(Iden)]
enum ConversationMembers {
    Table,
    ConversationId,
    UserId,
    Role,
    JoinedAt,
    DeliveredSeq,
    ReadSeq,
    UnreadCount,
}

#[derive(Iden)]
enum Messages {
    Table,
    Id,
    ConversationId,
    Seq,
    SenderId,
    ClientMsgId,
    Content,
    SentAt,
    DeliveredAt,
    ReadAt,
    CreatedAt,
}

pub(crate) fn id_col<T: Iden + 'static>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

pub(crate) fn timestamp<T: Iden + 'static>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

pub(crate) fn timestamp_null<T: Iden + 'static>(col: T) -> ColumnDef {
    ColumnDef::new(col).timestamp_with_time_zone().null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(id_col(Users::Id))
                    .col(ColumnDef::new(Users::Email).string().not_null().unique_key())
                    .col(ColumnDef::new(Users::PasswordHash).string().not_null())
                    .col(ColumnDef::new(Users::DisplayName).string().not_null())
                    .col(timestamp(Users::CreatedAt))
                    .col(timestamp_null(Users::LastSeenAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Conversations::Table)
                    .col(id_col(Conversations::Id))
                    .col(ColumnDef::new(Conversations::Kind).string_len(16).not_null())
                    .col(ColumnDef::new(Conversations::UserA).big_integer().null())
                    .col(ColumnDef::new(Conversations::UserB).big_integer().null())
                    .col(ColumnDef::new(Conversations::Name).string().null())
                    .col(ColumnDef::new(Conversations::Description).text().null())
                    .col(timestamp(Conversations::CreatedAt))
                    .col(timestamp(Conversations::UpdatedAt))
                    .col(
                        ColumnDef::new(Conversations::LastSeq)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    // A direct conversation is the ordered pair (lower id first); a group has none.
                    .check(Expr::cust(
                        "(kind = 'direct' AND user_a IS NOT NULL AND user_b IS NOT NULL AND user_a < user_b) \
                         OR (kind = 'group' AND user_a IS NULL AND user_b IS NULL)",
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Conversations::Table, Conversations::UserA)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Conversations::Table, Conversations::UserB)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("conversations_direct_pair_key")
                    .table(Conversations::Table)
                    .col(Conversations::UserA)
                    .col(Conversations::UserB)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ConversationMembers::Table)
                    .col(
                        ColumnDef::new(ConversationMembers::ConversationId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ConversationMembers::UserId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ConversationMembers::Role)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(timestamp(ConversationMembers::JoinedAt))
                    .col(
                        ColumnDef::new(ConversationMembers::DeliveredSeq)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(ConversationMembers::ReadSeq)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    // Messages from others after read_seq, kept by the writer so the
                    // conversation list never counts.
                    .col(
                        ColumnDef::new(ConversationMembers::UnreadCount)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .primary_key(
                        Index::create()
                            .col(ConversationMembers::ConversationId)
                            .col(ConversationMembers::UserId),
                    )
                    .check(Expr::cust("role IN ('owner', 'admin', 'member')"))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ConversationMembers::Table, ConversationMembers::ConversationId)
                            .to(Conversations::Table, Conversations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ConversationMembers::Table, ConversationMembers::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("conversation_members_user_idx")
                    .table(ConversationMembers::Table)
                    .col(ConversationMembers::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .col(id_col(Messages::Id))
                    .col(ColumnDef::new(Messages::ConversationId).big_integer().not_null())
                    .col(ColumnDef::new(Messages::Seq).big_integer().not_null())
                    .col(ColumnDef::new(Messages::SenderId).big_integer().not_null())
                    .col(ColumnDef::new(Messages::ClientMsgId).string_len(64).null())
                    .col(ColumnDef::new(Messages::Content).text().not_null())
                    .col(timestamp(Messages::SentAt))
                    .col(timestamp_null(Messages::DeliveredAt))
                    .col(timestamp_null(Messages::ReadAt))
                    .col(timestamp(Messages::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Messages::Table, Messages::ConversationId)
                            .to(Conversations::Table, Conversations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Messages::Table, Messages::SenderId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("messages_conversation_seq_key")
                    .table(Messages::Table)
                    .col(Messages::ConversationId)
                    .col(Messages::Seq)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // The offline queue: only undelivered messages are indexed.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX messages_undelivered_idx ON messages (conversation_id, seq) \
                 WHERE delivered_at IS NULL",
            )
            .await?;
        // Partial: most messages carry no client_msg_id and need no entry in this index.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX messages_sender_client_msg_id_key \
                 ON messages (sender_id, client_msg_id) WHERE client_msg_id IS NOT NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Messages::Table.into_iden(),
            ConversationMembers::Table.into_iden(),
            Conversations::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
