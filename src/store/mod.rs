//! Persistence over SeaORM, one file per aggregate. Queries that must run in a constant
//! number of round trips use raw SQL that is valid on both SQLite and PostgreSQL.
pub mod conversations;
pub mod db;
pub mod delivery;
pub mod messages;
pub mod messages_pg;
mod nodelay;
pub mod users;

use sea_orm::{ConnectionTrait, Statement, Value};

/// A statement in the connection's dialect; `$1`-style placeholders work on both backends.
pub(crate) fn stmt<C: ConnectionTrait>(
    db: &C,
    sql: &str,
    values: impl IntoIterator<Item = Value>,
) -> Statement {
    Statement::from_sql_and_values(db.get_database_backend(), sql, values)
}
