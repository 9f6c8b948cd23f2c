//! Full-text search queries: PostgreSQL's GIN-indexed `search_vector` and SQLite's FTS5
//! table `messages_fts` (both kept by the database itself, see the migration
//! `m20261208_000002_search`), each ranked, filtered by current membership, and paged
//! by `(rank, id)` descending.
use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, QueryResult, Value};

use super::{
    conversations::{HISTORY_COLUMNS, HistoryMessage},
    stmt,
};
use crate::domain::search::{Cursor, SearchText};

/// A message found, with its rank (higher is better).
pub struct Found {
    pub message: HistoryMessage,
    pub rank: f64,
}

impl FromQueryResult for Found {
    fn from_query_result(row: &QueryResult, pre: &str) -> Result<Self, DbErr> {
        Ok(Found {
            message: HistoryMessage::from_query_result(row, pre)?,
            rank: row.try_get(pre, "rank")?,
        })
    }
}

/// The matches of `text` in `user`'s current conversations (or `conversation` alone),
/// after `after` in the order best first then newest; at most `limit`, and whether more
/// follow. `text` must hold terms.
pub async fn matching<C: ConnectionTrait>(
    db: &C,
    user: i64,
    text: &SearchText,
    conversation: Option<i64>,
    after: Option<Cursor>,
    limit: u64,
) -> anyhow::Result<(Vec<Found>, bool)> {
    let (hits, terms) = match db.get_database_backend() {
        // `ts_rank` is a float4; as a float8 it is exact, so the cursor compares equal.
        // Normalisation 1 divides by 1 + log(length): as bm25 does, a short message
        // naming the term ranks above a long one that mentions it in passing.
        DbBackend::Postgres => (
            "SELECT m.id, CAST(ts_rank(m.search_vector, q.q, 1) AS DOUBLE PRECISION) AS rank \
             FROM messages m, plainto_tsquery('simple', $2) AS q(q) WHERE m.search_vector @@ q.q",
            text.plain(),
        ),
        // bm25 is lower for better matches; negated to read like ts_rank. Materialised:
        // FTS5 answers the MATCH first, then the joins narrow it.
        _ => (
            "SELECT rowid AS id, -bm25(messages_fts) AS rank FROM messages_fts WHERE messages_fts MATCH $2",
            text.fts5(),
        ),
    };
    let materialized = match db.get_database_backend() {
        DbBackend::Sqlite => "MATERIALIZED",
        _ => "",
    };
    let (after_rank, after_id) = after.map_or((f64::INFINITY, i64::MAX), |c| (c.rank, c.message_id));
    let mut values: Vec<Value> = vec![
        user.into(),
        terms.into(),
        after_rank.into(),
        after_id.into(),
        (limit as i64 + 1).into(),
    ];
    let only = match conversation {
        Some(id) => {
            values.push(id.into());
            "AND m.conversation_id = $6"
        }
        None => "",
    };
    // One extra row tells whether there is more.
    let mut found = Found::find_by_statement(stmt(
        db,
        &format!(
            "WITH hits AS {materialized} ({hits}) \
             SELECT {HISTORY_COLUMNS}, h.rank FROM hits h \
             JOIN messages m ON m.id = h.id \
             JOIN conversation_members cm ON cm.conversation_id = m.conversation_id \
               AND cm.user_id = $1 AND cm.left_at IS NULL \
             LEFT JOIN messages r ON r.id = m.reply_to_id \
             WHERE m.deleted_at IS NULL AND m.content <> '' {only} \
               AND (h.rank < $3 OR (h.rank = $3 AND m.id < $4)) \
             ORDER BY h.rank DESC, m.id DESC LIMIT $5"
        ),
        values,
    ))
    .all(db)
    .await?;
    let has_more = found.len() as u64 > limit;
    found.truncate(limit as usize);
    Ok((found, has_more))
}
