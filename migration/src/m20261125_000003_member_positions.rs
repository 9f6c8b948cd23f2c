//! Delivery and read state as member positions, and what groups need.
//!
//! Until now a message carried its one recipient's `delivered_at` / `read_at`. A group
//! has many recipients, and a row per (message, member) would grow as messages ×
//! members; instead each member keeps a position (`delivered_seq`, `read_seq`) and a
//! small log of when each position moved. A message's own `delivered_at` / `read_at`
//! become aggregates: set when the last other member's position passes it.
//!
//! - `conversations.created_by`, `closed_at`: group metadata; a group whose last member
//!   left is closed (kept for history, no sends).
//! - `conversation_members.left_at`: a member who leaves or is removed keeps the row
//!   (their messages keep their sender) but loses access.
//! - `conversation_members.sent_since_read` replaces `unread_count`: the unread count is
//!   `last_seq - read_seq - sent_since_read`, so a message to a 1,000-member group
//!   updates one member row (the sender's), not a thousand.
//! - `member_position_log`: one row per position move in a group, so "when did member
//!   X read message M" is the first `read` move of X to a seq ≥ M's. (In a direct chat
//!   the message's own receipts already answer it for the one other member.) No foreign key: it is
//!   written in bulk by the writer, and member rows are never deleted.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(Iden)]
enum Conversations {
    Table,
    CreatedBy,
    ClosedAt,
}

#[derive(Iden)]
enum ConversationMembers {
    Table,
    LeftAt,
    SentSinceRead,
    UnreadCount,
}

#[derive(Iden)]
enum MemberPositionLog {
    Table,
    Id,
    ConversationId,
    UserId,
    Kind,
    Seq,
    At,
}

/// Positions from the per-message state they replace: a member has everything before
/// the first message from others still undelivered (unread) to them.
const BACKFILL: [&str; 3] = [
    "UPDATE conversation_members SET delivered_seq = COALESCE(\
       (SELECT MIN(m.seq) - 1 FROM messages m WHERE m.conversation_id = conversation_members.conversation_id \
          AND m.sender_id <> conversation_members.user_id AND m.delivered_at IS NULL), \
       (SELECT c.last_seq FROM conversations c WHERE c.id = conversation_members.conversation_id))",
    "UPDATE conversation_members SET read_seq = COALESCE(\
       (SELECT MIN(m.seq) - 1 FROM messages m WHERE m.conversation_id = conversation_members.conversation_id \
          AND m.sender_id <> conversation_members.user_id AND m.read_at IS NULL), \
       (SELECT c.last_seq FROM conversations c WHERE c.id = conversation_members.conversation_id))",
    "UPDATE conversation_members SET sent_since_read = \
       (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = conversation_members.conversation_id \
          AND m.sender_id = conversation_members.user_id AND m.seq > conversation_members.read_seq)",
];

/// Partial indexes keep the aggregate receipts cheap: they only ever look at messages
/// not yet delivered (read) to everyone (`messages_undelivered_idx` exists already).
/// The positions themselves are deliberately not indexed: they change with every
/// delivery, and an index on them turns each such update into a new index entry (no
/// in-place update on PostgreSQL); a conversation's lowest positions are found by
/// reading its members through the primary key instead.
const INDEXES: [&str; 2] = [
    "CREATE INDEX messages_unread_idx ON messages (conversation_id, seq) WHERE read_at IS NULL",
    "CREATE INDEX member_position_log_idx ON member_position_log (conversation_id, user_id, kind, seq)",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    // All or nothing on SQLite too (its DDL is transactional; the default there is none).
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            (
                Conversations::Table.into_iden(),
                ColumnDef::new(Conversations::CreatedBy)
                    .big_integer()
                    .null()
                    .to_owned(),
            ),
            (
                Conversations::Table.into_iden(),
                ColumnDef::new(Conversations::ClosedAt)
                    .timestamp_with_time_zone()
                    .null()
                    .to_owned(),
            ),
            (
                ConversationMembers::Table.into_iden(),
                ColumnDef::new(ConversationMembers::LeftAt)
                    .timestamp_with_time_zone()
                    .null()
                    .to_owned(),
            ),
            (
                ConversationMembers::Table.into_iden(),
                ColumnDef::new(ConversationMembers::SentSinceRead)
                    .big_integer()
                    .not_null()
                    .default(0)
                    .to_owned(),
            ),
        ];
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for (table, mut column) in columns {
            manager
                .alter_table(Table::alter().table(table).add_column(&mut column).to_owned())
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(MemberPositionLog::Table)
                    .col(
                        ColumnDef::new(MemberPositionLog::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(MemberPositionLog::ConversationId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(MemberPositionLog::UserId).big_integer().not_null())
                    .col(ColumnDef::new(MemberPositionLog::Kind).string_len(16).not_null())
                    .col(ColumnDef::new(MemberPositionLog::Seq).big_integer().not_null())
                    .col(
                        ColumnDef::new(MemberPositionLog::At)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .check(Expr::cust("kind IN ('delivered', 'read')"))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        for sql in BACKFILL.iter().chain(&INDEXES) {
            db.execute_unprepared(sql).await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(ConversationMembers::Table)
                    .drop_column(ConversationMembers::UnreadCount)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for index in ["messages_unread_idx", "member_position_log_idx"] {
            db.execute_unprepared(&format!("DROP INDEX {index}")).await?;
        }
        manager
            .drop_table(Table::drop().table(MemberPositionLog::Table).to_owned())
            .await?;
        let mut unread = ColumnDef::new(ConversationMembers::UnreadCount)
            .big_integer()
            .not_null()
            .default(0)
            .to_owned();
        manager
            .alter_table(
                Table::alter()
                    .table(ConversationMembers::Table)
                    .add_column(&mut unread)
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared(
            "UPDATE conversation_members SET unread_count = \
               (SELECT c.last_seq FROM conversations c WHERE c.id = conversation_members.conversation_id) \
               - read_seq - sent_since_read",
        )
        .await?;
        for (table, column) in [
            (
                ConversationMembers::Table.into_iden(),
                ConversationMembers::SentSinceRead.into_iden(),
            ),
            (
                ConversationMembers::Table.into_iden(),
                ConversationMembers::LeftAt.into_iden(),
            ),
            (
                Conversations::Table.into_iden(),
                Conversations::ClosedAt.into_iden(),
            ),
            (
                Conversations::Table.into_iden(),
                Conversations::CreatedBy.into_iden(),
            ),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
