//! Users: accounts, lookup, last-seen.
use chrono::{DateTime, Utc};
use entity::users;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, SqlErr};

pub enum InsertUser {
    Created(users::Model),
    EmailTaken,
}

pub async fn insert<C: ConnectionTrait>(
    db: &C,
    email: &str,
    password_hash: String,
    display_name: String,
) -> anyhow::Result<InsertUser> {
    let model = users::ActiveModel {
        email: Set(email.to_owned()),
        password_hash: Set(password_hash),
        display_name: Set(display_name),
        created_at: Set(Utc::now()),
        last_seen_at: Set(None),
        token_version: Set(0),
        ..Default::default()
    };
    match users::Entity::insert(model).exec_with_returning(db).await {
        Ok(user) => Ok(InsertUser::Created(user)),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Ok(InsertUser::EmailTaken)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn by_email<C: ConnectionTrait>(db: &C, email: &str) -> anyhow::Result<Option<users::Model>> {
    Ok(users::Entity::find()
        .filter(users::Column::Email.eq(email))
        .one(db)
        .await?)
}

pub async fn by_id<C: ConnectionTrait>(db: &C, id: i64) -> anyhow::Result<Option<users::Model>> {
    Ok(users::Entity::find_by_id(id).one(db).await?)
}

/// Which of `ids` exist.
pub async fn existing_ids<C: ConnectionTrait>(db: &C, ids: &[i64]) -> anyhow::Result<Vec<i64>> {
    use sea_orm::{QuerySelect, prelude::*};
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(users::Entity::find()
        .select_only()
        .column(users::Column::Id)
        .filter(users::Column::Id.is_in(ids.iter().copied()))
        .into_tuple::<i64>()
        .all(db)
        .await?)
}

pub async fn touch_last_seen<C: ConnectionTrait>(db: &C, id: i64, at: DateTime<Utc>) -> anyhow::Result<()> {
    users::Entity::update_many()
        .col_expr(users::Column::LastSeenAt, sea_orm::sea_query::Expr::value(at))
        .filter(users::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// `last_seen_at` of each of `ids` that exists.
pub async fn last_seen_of<C: ConnectionTrait>(
    db: &C,
    ids: &[i64],
) -> anyhow::Result<Vec<(i64, Option<DateTime<Utc>>)>> {
    use sea_orm::QuerySelect;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(users::Entity::find()
        .select_only()
        .column(users::Column::Id)
        .column(users::Column::LastSeenAt)
        .filter(users::Column::Id.is_in(ids.iter().copied()))
        .into_tuple::<(i64, Option<DateTime<Utc>>)>()
        .all(db)
        .await?)
}
