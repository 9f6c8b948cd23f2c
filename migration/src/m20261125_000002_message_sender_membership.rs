//! A message's sender must be a member of its conversation: one composite foreign key
//! to `conversation_members` replaces the two single ones (to `conversations` and
//! `users`).
//!
//! The database now guarantees membership, not only existence, and checks one key per
//! inserted message instead of two: the per-row foreign-key triggers were about 40 % of
//! PostgreSQL's time for a batch of sends. Deleting a user or a conversation still
//! removes its messages, through the cascade from the membership rows. Leaving a group
//! must therefore keep the membership row (marked as left), or the leaver's messages go.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

use crate::m20261124_000001_initial::{id_col, timestamp, timestamp_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(Iden)]
enum Messages {
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

#[derive(Iden)]
enum ConversationMembers {
    Table,
    ConversationId,
    UserId,
}

#[derive(Iden)]
struct MessagesNew;

const MEMBER_FK: &str = "messages_member_fkey";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    // All or nothing on SQLite too, and on one connection: the rebuild must never stop
    // half way (the default on SQLite is no transaction, each statement on any pooled
    // connection).
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DatabaseBackend::Sqlite => rebuild_sqlite(manager).await,
            _ => {
                db.execute_unprepared(&format!(
                    "ALTER TABLE messages DROP CONSTRAINT messages_conversation_id_fkey, \
                       DROP CONSTRAINT messages_sender_id_fkey, \
                       ADD CONSTRAINT {MEMBER_FK} FOREIGN KEY (conversation_id, sender_id) \
                         REFERENCES conversation_members (conversation_id, user_id) ON DELETE CASCADE"
                ))
                .await?;
                Ok(())
            }
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Sqlite {
            return Err(DbErr::Migration(
                "this migration cannot be reverted on SQLite (its table rebuild is one-way)".into(),
            ));
        }
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "ALTER TABLE messages DROP CONSTRAINT {MEMBER_FK}, \
                   ADD CONSTRAINT messages_conversation_id_fkey FOREIGN KEY (conversation_id) \
                     REFERENCES conversations (id) ON DELETE CASCADE, \
                   ADD CONSTRAINT messages_sender_id_fkey FOREIGN KEY (sender_id) \
                     REFERENCES users (id) ON DELETE CASCADE"
            ))
            .await?;
        Ok(())
    }
}

/// SQLite cannot alter a table's constraints: the table is rebuilt with the new key,
/// its rows copied, and its indexes recreated (as SQLite's documentation prescribes).
/// The columns are restated rather than shared with the initial migration: each
/// migration must keep describing the schema of its own day.
async fn rebuild_sqlite(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(MessagesNew)
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
                        .name(MEMBER_FK)
                        .from_tbl(MessagesNew)
                        .from_col(Messages::ConversationId)
                        .from_col(Messages::SenderId)
                        .to_tbl(ConversationMembers::Table)
                        .to_col(ConversationMembers::ConversationId)
                        .to_col(ConversationMembers::UserId)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
    let db = manager.get_connection();
    for statement in [
        "INSERT INTO messages_new (id, conversation_id, seq, sender_id, client_msg_id, content, sent_at, \
           delivered_at, read_at, created_at) \
         SELECT id, conversation_id, seq, sender_id, client_msg_id, content, sent_at, delivered_at, read_at, \
           created_at FROM messages",
        "DROP TABLE messages",
        "ALTER TABLE messages_new RENAME TO messages",
        "CREATE UNIQUE INDEX messages_conversation_seq_key ON messages (conversation_id, seq)",
        "CREATE INDEX messages_undelivered_idx ON messages (conversation_id, seq) WHERE delivered_at IS NULL",
        "CREATE UNIQUE INDEX messages_sender_client_msg_id_key \
           ON messages (sender_id, client_msg_id) WHERE client_msg_id IS NOT NULL",
    ] {
        db.execute_unprepared(statement).await?;
    }
    Ok(())
}
