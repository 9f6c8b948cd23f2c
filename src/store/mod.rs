//! Persistence over SeaORM, one file per aggregate. Queries that must run in a constant
//! number of round trips use raw SQL that is valid on both SQLite and PostgreSQL.
pub mod attachments;
pub mod blobs;
pub mod blocks;
pub mod conversation_list;
pub mod conversations;
pub mod db;
pub mod delivery;
pub mod e2e_keys;
pub mod groups;
pub mod lifecycle;
pub mod messages;
pub mod messages_pg;
pub mod messages_sqlite;
pub mod mutes;
mod nodelay;
pub mod positions;
pub mod push_outbox;
pub mod search;
pub mod tokens;
pub mod users;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, SqliteTransactionMode,
    Statement, TransactionOptions, TransactionTrait, Value,
};

/// The time to store, at the precision both databases keep (PostgreSQL: microseconds).
/// Stored times are compared with values clients send back (the conversation list's
/// cursor carries microseconds), so SQLite must not keep nanoseconds PostgreSQL would drop.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}

/// Begins a transaction that will write. On SQLite it takes the write lock at once
/// (`BEGIN IMMEDIATE`): a deferred transaction that reads first cannot upgrade to a
/// writer once another connection has committed (`SQLITE_BUSY_SNAPSHOT`, which no
/// busy timeout waits out). PostgreSQL ignores the option.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

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

/// `($k, $k+1), …` for rows of integers, numbered after the `leading` values, which come
/// first in the returned values. `VALUES` columns are named column1, column2… on both
/// SQLite and PostgreSQL.
pub(crate) fn values_list<const N: usize>(
    leading: Vec<Value>,
    rows: impl Iterator<Item = [i64; N]>,
) -> (String, Vec<Value>) {
    let mut values = leading;
    let mut tuples = Vec::new();
    for row in rows {
        let start = values.len() + 1;
        tuples.push(format!(
            "({})",
            (start..start + N)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        values.extend(row.map(Value::from));
    }
    (tuples.join(", "), values)
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
