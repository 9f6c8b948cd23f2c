use sea_orm::entity::prelude::*;

/// A direct (two users, `user_a < user_b`) or group conversation.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "conversations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `direct` or `group`.
    pub kind: String,
    pub user_a: Option<i64>,
    pub user_b: Option<i64>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The highest `seq` handed out in this conversation.
    pub last_seq: i64,
    /// Bumped by every insert, edit, delete and reaction: the change cursor's counter.
    pub version: i64,
    /// A copy of the newest message's sender, text and time, for the conversation list.
    pub last_sender_id: Option<i64>,
    pub last_content: Option<String>,
    pub last_sent_at: Option<DateTimeUtc>,
    /// The group's creator (null for direct chats).
    pub created_by: Option<i64>,
    /// Set when a group's last member left: kept for history, no sends.
    pub closed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
