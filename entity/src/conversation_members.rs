use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "conversation_members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub conversation_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    /// `owner`, `admin` or `member`.
    pub role: String,
    pub joined_at: DateTimeUtc,
    /// Highest message seq delivered to this member.
    pub delivered_seq: i64,
    /// Highest message seq read by this member.
    pub read_seq: i64,
    /// Messages from other members after `read_seq`.
    pub unread_count: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
