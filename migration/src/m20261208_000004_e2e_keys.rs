//! End-to-end encryption support: the key directory and encrypted messages.
//!
//! - `device_keys`: one row per (user, device): the public identity key, the current
//!   signed prekey and, for PQXDH clients (libsignal today), a signed last-resort Kyber
//!   prekey. Public keys only, as the base64 text the client sent.
//! - `one_time_prekeys`: each handed out once. A claim deletes its row, so "handed out"
//!   and "gone" are the same fact; `id` only gives claims an order.
//! - `messages.encrypted`, `messages.envelopes`, `messages.sender_device_id`: an
//!   encrypted message keeps `content` empty (previews and search skip it without
//!   knowing about encryption), its per-device ciphertexts as one JSON array, stored and
//!   relayed as written, and the sending device (a recipient's session is with that
//!   device). A tombstone drops the envelopes and keeps the flag.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(Iden)]
enum DeviceKeys {
    Table,
    UserId,
    DeviceId,
    RegistrationId,
    IdentityKey,
    SignedPrekeyId,
    SignedPrekey,
    SignedPrekeySignature,
    KyberPrekeyId,
    KyberPrekey,
    KyberPrekeySignature,
    UpdatedAt,
}

#[derive(Iden)]
enum OneTimePrekeys {
    Table,
    Id,
    UserId,
    DeviceId,
    KeyId,
    PublicKey,
}

#[derive(Iden)]
enum Messages {
    Table,
    Encrypted,
    Envelopes,
    SenderDeviceId,
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
                    .table(DeviceKeys::Table)
                    .col(ColumnDef::new(DeviceKeys::UserId).big_integer().not_null())
                    .col(ColumnDef::new(DeviceKeys::DeviceId).big_integer().not_null())
                    .col(
                        ColumnDef::new(DeviceKeys::RegistrationId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(DeviceKeys::IdentityKey).text().not_null())
                    .col(
                        ColumnDef::new(DeviceKeys::SignedPrekeyId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(DeviceKeys::SignedPrekey).text().not_null())
                    .col(
                        ColumnDef::new(DeviceKeys::SignedPrekeySignature)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(DeviceKeys::KyberPrekeyId).big_integer().null())
                    .col(ColumnDef::new(DeviceKeys::KyberPrekey).text().null())
                    .col(ColumnDef::new(DeviceKeys::KyberPrekeySignature).text().null())
                    .col(
                        ColumnDef::new(DeviceKeys::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(Index::create().col(DeviceKeys::UserId).col(DeviceKeys::DeviceId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(DeviceKeys::Table, DeviceKeys::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OneTimePrekeys::Table)
                    .col(
                        ColumnDef::new(OneTimePrekeys::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(OneTimePrekeys::UserId).big_integer().not_null())
                    .col(ColumnDef::new(OneTimePrekeys::DeviceId).big_integer().not_null())
                    .col(ColumnDef::new(OneTimePrekeys::KeyId).big_integer().not_null())
                    .col(ColumnDef::new(OneTimePrekeys::PublicKey).text().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                OneTimePrekeys::Table,
                                (OneTimePrekeys::UserId, OneTimePrekeys::DeviceId),
                            )
                            .to(DeviceKeys::Table, (DeviceKeys::UserId, DeviceKeys::DeviceId))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A key id names one key of a device: republishing it is refused, not doubled.
        manager
            .create_index(
                Index::create()
                    .name("idx_one_time_prekeys_device_key")
                    .table(OneTimePrekeys::Table)
                    .col(OneTimePrekeys::UserId)
                    .col(OneTimePrekeys::DeviceId)
                    .col(OneTimePrekeys::KeyId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        for column in [
            ColumnDef::new(Messages::Encrypted)
                .boolean()
                .not_null()
                .default(false)
                .to_owned(),
            ColumnDef::new(Messages::Envelopes).text().null().to_owned(),
            ColumnDef::new(Messages::SenderDeviceId)
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
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Messages::SenderDeviceId, Messages::Envelopes, Messages::Encrypted] {
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
            .drop_table(Table::drop().table(OneTimePrekeys::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(DeviceKeys::Table).to_owned())
            .await?;
        Ok(())
    }
}
