//! Persistence over SeaORM, one file per aggregate. Queries that must run in a constant
//! number of round trips use raw SQL that is valid on both SQLite and PostgreSQL.
pub mod conversations;
pub mod db;
pub mod delivery;
pub mod messages;
pub mod messages_pg;
pub mod messages_sqlite;
mod nodelay;
pub mod users;

use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};

/// A statement in the connection's dialect. SQL is written with PostgreSQL's `$1`
/// placeholders; for SQLite they become `?1`, its numbered form (SQLite would read `$1` as
/// a *named* parameter: looked up by name, and numbered by order of appearance).
pub(crate) fn stmt<C: ConnectionTrait>(
    db: &C,
    sql: &str,
    values: impl IntoIterator<Item = Value>,
) -> Statement {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Sqlite => numbered_placeholders(sql),
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn sqlite_gets_numbered_placeholders() {
        assert_eq!(
            super::numbered_placeholders("SELECT $1, '$x', $12 WHERE a = $2"),
            "SELECT ?1, '$x', ?12 WHERE a = ?2"
        );
    }
}
