//! Attachments: files uploaded by REST and carried by messages.
//!
//! - `attachments`: one row per upload (its name, sniffed type, size, SHA-256 and, for
//!   images, dimensions), owned by its uploader. `(uploader_id, idempotency_key)` is
//!   unique: a retried upload finds the first.
//! - `attachment_blobs`: one row per stored content (keyed by its SHA-256, which is
//!   also its object key). Uploads and the orphan sweep take this row's lock before
//!   they write or delete the object, so a blob another row still needs is never removed.
//! - `messages.attachment_id`: the attachment a message carries (NULL once the message
//!   is deleted). A foreign key, so the sweep cannot remove an attachment a message has
//!   just taken (added as a column constraint, which SQLite accepts with a NULL default).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(Iden)]
enum Attachments {
    Table,
    Id,
    UploaderId,
    Name,
    MimeType,
    Size,
    Sha256,
    Width,
    Height,
    IdempotencyKey,
    CreatedAt,
}

#[derive(Iden)]
enum AttachmentBlobs {
    Table,
    Sha256,
    Size,
    CreatedAt,
}

#[derive(Iden)]
enum Messages {
    Table,
    AttachmentId,
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
                    .table(AttachmentBlobs::Table)
                    .col(
                        ColumnDef::new(AttachmentBlobs::Sha256)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AttachmentBlobs::Size).big_integer().not_null())
                    .col(
                        ColumnDef::new(AttachmentBlobs::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Attachments::Table)
                    .col(
                        ColumnDef::new(Attachments::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Attachments::UploaderId).big_integer().not_null())
                    .col(ColumnDef::new(Attachments::Name).text().not_null())
                    .col(ColumnDef::new(Attachments::MimeType).text().not_null())
                    .col(ColumnDef::new(Attachments::Size).big_integer().not_null())
                    .col(ColumnDef::new(Attachments::Sha256).text().not_null())
                    .col(ColumnDef::new(Attachments::Width).integer().null())
                    .col(ColumnDef::new(Attachments::Height).integer().null())
                    .col(ColumnDef::new(Attachments::IdempotencyKey).text().null())
                    .col(
                        ColumnDef::new(Attachments::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Attachments::Table, Attachments::UploaderId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_attachments_idempotency")
                    .table(Attachments::Table)
                    .col(Attachments::UploaderId)
                    .col(Attachments::IdempotencyKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_attachments_sha256")
                    .table(Attachments::Table)
                    .col(Attachments::Sha256)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_attachments_created_at")
                    .table(Attachments::Table)
                    .col(Attachments::CreatedAt)
                    .to_owned(),
            )
            .await?;
        // Written by hand: SeaQuery's ALTER TABLE cannot add a foreign key on SQLite,
        // and this column form is valid on both databases.
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE messages ADD COLUMN attachment_id BIGINT NULL REFERENCES attachments (id)",
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_attachment")
                    .table(Messages::Table)
                    .col(Messages::AttachmentId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_messages_attachment")
                    .table(Messages::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .drop_column(Messages::AttachmentId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Attachments::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AttachmentBlobs::Table).to_owned())
            .await?;
        Ok(())
    }
}
