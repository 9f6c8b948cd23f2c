use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub conversation_id: i64,
    /// 1, 2, 3… without gaps within the conversation.
    pub seq: i64,
    pub sender_id: i64,
    pub client_msg_id: Option<String>,
    pub content: String,
    pub sent_at: DateTimeUtc,
    pub delivered_at: Option<DateTimeUtc>,
    pub read_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    /// The conversation's `version` at this message's last change (insert, edit,
    /// delete, reaction): the change cursor of `sync`.
    pub version: i64,
    pub edited_at: Option<DateTimeUtc>,
    /// Set when deleted for everyone: the row stays as a tombstone, its content erased.
    pub deleted_at: Option<DateTimeUtc>,
    /// The message of the same conversation this one replies to.
    pub reply_to_id: Option<i64>,
    /// End-to-end encrypted: `content` is empty and `envelopes` holds the ciphertexts.
    pub encrypted: bool,
    /// One opaque ciphertext per recipient device, as a JSON array; None once deleted.
    pub envelopes: Option<String>,
    /// The key-directory device an encrypted message was sent from.
    pub sender_device_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
