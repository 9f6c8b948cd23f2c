use sea_orm::entity::prelude::*;

/// A push hook still to be posted (see migration m20261208_000003_push_hooks).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "push_outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Sent as `X-RC-Delivery`: the receiver drops a repeat.
    pub delivery_id: String,
    pub user_id: i64,
    pub conversation_id: i64,
    pub message_id: i64,
    pub seq: i64,
    /// The message's `sent_at`.
    pub created_at: DateTimeUtc,
    /// Attempts started so far.
    pub attempts: i32,
    /// Due from then; a claim moves it past its lease.
    pub next_attempt_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
