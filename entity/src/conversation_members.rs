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
    /// The member has every message up to this seq on one of their devices.
    pub delivered_seq: i64,
    /// Highest message seq read by this member.
    pub read_seq: i64,
    /// The member's own messages after `read_seq`: unread = last_seq - read_seq - this.
    pub sent_since_read: i64,
    /// Set when the member left or was removed: the row stays, access ends.
    pub left_at: Option<DateTimeUtc>,
    /// Whether the member ever sent a message here (presence follows who wrote to whom).
    pub has_written: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
