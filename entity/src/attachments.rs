use sea_orm::entity::prelude::*;

/// One upload: its metadata; the bytes live in the blob store under `sha256`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "attachments")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub uploader_id: i64,
    pub name: String,
    /// Sniffed from the content, never taken from the client.
    pub mime_type: String,
    pub size: i64,
    /// Lower-case hex; also the blob's key.
    pub sha256: String,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub idempotency_key: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
