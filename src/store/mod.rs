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

/// Turns at SQLite's one write transaction for the two writers that write all the time:
/// the message writer and the search indexer. A writer that finds the lock taken waits
/// in SQLite's busy handler, which sleeps in growing steps (1, 2, 5, 10 ms…) and so can
/// oversleep the other's commit many times over; waiting here, the next one starts as
/// soon as the other commits.
pub(crate) static SQLITE_TURNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
    value_tuples(leading, rows.map(|row| row.map(Value::from).to_vec()))
}

/// `($k, $k+1, …), …` for rows of any values (rows may differ in length), numbered after
/// the `leading` values, which come first in the returned values.
pub(crate) fn value_tuples(
    leading: Vec<Value>,
    rows: impl Iterator<Item = Vec<Value>>,
) -> (String, Vec<Value>) {
    let mut values = leading;
    let mut tuples = Vec::new();
    for row in rows {
        let start = values.len() + 1;
        tuples.push(format!(
            "({})",
            (start..start + row.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        values.extend(row);
    }
    (tuples.join(", "), values)
}

/// SQLite's form of `$n` placeholders. When they read `$1, $2, … $n` in order, each once
/// (a batch's long VALUES list), they become anonymous `?`s, which SQLite numbers the
/// same way: binding looks each numbered parameter's name up in a list, one scan per
/// parameter, so a statement of thousands of `?NNN`s cost quadratic time to bind.
/// Otherwise `?NNN`, which may repeat and come in any order.
fn numbered_placeholders(sql: &str) -> String {
    let numbers = placeholder_numbers(sql);
    let in_order = numbers.iter().enumerate().all(|(i, n)| *n == i + 1);
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
            if in_order {
                while chars.peek().is_some_and(char::is_ascii_digit) {
                    chars.next();
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The numbers of the `$n` placeholders, in the order they appear.
fn placeholder_numbers(sql: &str) -> Vec<usize> {
    let mut numbers = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            let mut n = 0usize;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = n.saturating_mul(10).saturating_add(d as usize);
                chars.next();
            }
            numbers.push(n);
        }
    }
    numbers
}

#[cfg(test)]
mod tests {
    #[test]
    fn sqlite_gets_numbered_placeholders() {
        assert_eq!(
            super::numbered_placeholders("SELECT $1, '$x', $12 WHERE a = $2"),
            "SELECT ?1, '$x', ?12 WHERE a = ?2"
        );
        assert_eq!(
            super::numbered_placeholders("SELECT $1 WHERE a = $2 OR b = $1"),
            "SELECT ?1 WHERE a = ?2 OR b = ?1",
            "a repeated one keeps every number"
        );
        assert_eq!(
            super::numbered_placeholders("SELECT $2, $1"),
            "SELECT ?2, ?1",
            "so does any other order"
        );
    }

    #[test]
    fn placeholders_in_order_become_anonymous() {
        assert_eq!(
            super::numbered_placeholders("INSERT INTO t VALUES ($1, $2), ($3, $4) RETURNING '$x'"),
            "INSERT INTO t VALUES (?, ?), (?, ?) RETURNING '$x'"
        );
        let many = (1..=1200).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
        assert_eq!(
            super::numbered_placeholders(&many),
            vec!["?"; 1200].join(", "),
            "$10 is not $1 then 0"
        );
    }
}
