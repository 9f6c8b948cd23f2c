//! Full-text search queries: PostgreSQL's GIN-indexed `message_search` table and SQLite's
//! FTS5 table `messages_fts` (both beside the messages and kept by the database itself,
//! see the migrations `m20261208_000002_search` and `m20261208_000007_search_beside_messages`),
//! each ranked, filtered by current membership, and paged
//! by `(rank, id)` descending.
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, QueryResult, Value};

use super::{
    conversations::{ATTACHMENT_JOIN, HISTORY_COLUMNS, HistoryMessage},
    stmt,
};

/// What to search for, as each database's query language spells it (the domain builds
/// both from the user's words, so nothing typed is ever syntax).
pub struct Terms<'a> {
    /// Words for PostgreSQL's `plainto_tsquery`.
    pub plain: &'a str,
    /// An FTS5 query of quoted words, for SQLite.
    pub fts5: &'a str,
}

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
/// after `after` (a rank and message id) in the order best first then newest; at most
/// `limit`, and whether more follow. `text` must hold terms.
pub async fn matching<C: ConnectionTrait>(
    db: &C,
    user: i64,
    text: Terms<'_>,
    conversation: Option<i64>,
    after: Option<(f64, i64)>,
    limit: u64,
) -> anyhow::Result<(Vec<Found>, bool)> {
    let visible = "m.conversation_id IN (SELECT conversation_id FROM conversation_members \
                     WHERE user_id = $1 AND left_at IS NULL) AND m.deleted_at IS NULL AND m.content <> ''";
    // The one conversation asked for, if any, on the candidates' alias.
    let only = |alias: &str| match conversation {
        Some(_) => format!("AND {alias}.conversation_id = $6"),
        None => String::new(),
    };
    // Every visible match with its rank, each rank computed once.
    let (candidates, terms) = match db.get_database_backend() {
        // `ts_rank` is a float4; as a float8 it is exact, so the cursor compares equal.
        // Normalisation 1 divides by 1 + log(length): as bm25 does, a short message
        // naming the term ranks above a long one that mentions it in passing.
        // Candidates come from `message_search` alone: it holds only messages with text
        // (no tombstones, nothing encrypted) and each one's conversation.
        DbBackend::Postgres => (
            format!(
                "SELECT s.message_id AS id, CAST(ts_rank(s.search_vector, q.q, 1) AS DOUBLE PRECISION) AS rank \
                 FROM message_search s, plainto_tsquery('simple', $2) AS q(q) \
                 WHERE s.search_vector @@ q.q AND s.conversation_id IN (SELECT conversation_id \
                   FROM conversation_members WHERE user_id = $1 AND left_at IS NULL) {}",
                only("s")
            ),
            text.plain.to_owned(),
        ),
        // bm25 is lower for better matches; negated to read like ts_rank. `CROSS JOIN`
        // is SQLite's way to fix the join order: FTS5's hits first, then their rows.
        // (Left to itself the planner started from the caller's messages and probed the
        // hits for each: 0.3 s for a word found ten times among a million messages.)
        _ => (
            format!(
                "SELECT h.id, h.rank FROM (SELECT rowid AS id, -bm25(messages_fts) AS rank \
                   FROM messages_fts WHERE messages_fts MATCH $2) h \
                 CROSS JOIN messages m ON m.id = h.id WHERE {visible} {}",
                only("m")
            ),
            text.fts5.to_owned(),
        ),
    };
    let (after_rank, after_id) = after.unwrap_or((f64::INFINITY, i64::MAX));
    let mut values: Vec<Value> = vec![
        user.into(),
        terms.into(),
        after_rank.into(),
        after_id.into(),
        (limit as i64 + 1).into(),
    ];
    if let Some(id) = conversation {
        values.push(id.into());
    }
    // Ranking needs every candidate, but only the page is sorted in full and read back
    // with its columns: materialised, the candidates are (id, rank) pairs and the page
    // a bounded top-N sort of them, never a sort of whole rows.
    // One extra row tells whether there is more.
    let mut found = Found::find_by_statement(stmt(
        db,
        &format!(
            "WITH candidates AS MATERIALIZED ({candidates}), \
             page AS MATERIALIZED (SELECT id, rank FROM candidates \
               WHERE rank < $3 OR (rank = $3 AND id < $4) ORDER BY rank DESC, id DESC LIMIT $5) \
             SELECT {HISTORY_COLUMNS}, p.rank FROM page p JOIN messages m ON m.id = p.id \
             LEFT JOIN messages r ON r.id = m.reply_to_id {ATTACHMENT_JOIN} \
             ORDER BY p.rank DESC, m.id DESC"
        ),
        values,
    ))
    .all(db)
    .await?;
    let has_more = found.len() as u64 > limit;
    found.truncate(limit as usize);
    Ok((found, has_more))
}

/// Messages SQLite indexes in one write transaction (a few ms of FTS5 work): short
/// enough for sends not to wait long behind it, long enough to write few segments.
const INDEX_BATCH: i64 = 1000;

/// Indexes for search the SQLite messages not indexed yet (see the migration
/// `m20261208_000008_search_indexed_behind`), in batches; returns how many. PostgreSQL
/// indexes each message as it is stored, so there is nothing to do.
pub async fn index_pending(db: &DatabaseConnection) -> anyhow::Result<u64> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return Ok(0);
    }
    let mut indexed = 0;
    loop {
        // A read first: most calls find nothing to do, and need no write lock for that.
        let pending = db
            .query_one_raw(stmt(
                db,
                "SELECT EXISTS (SELECT 1 FROM messages WHERE id > (SELECT indexed_through FROM search_progress))",
                [],
            ))
            .await?
            .map(|row| row.try_get_by_index::<bool>(0))
            .transpose()?
            .unwrap_or(false);
        if !pending {
            return Ok(indexed);
        }
        let _turn = super::SQLITE_TURNS.lock().await;
        let txn = super::begin_write(db).await?;
        // The next batch above the watermark, indexed with its text as it is now; then
        // the watermark moves to the batch's last message. The write lock keeps the two
        // statements looking at the same messages.
        let next = "SELECT id FROM messages WHERE id > (SELECT indexed_through FROM search_progress) \
                    ORDER BY id LIMIT $1";
        let count = txn
            .execute_raw(stmt(
                &txn,
                &format!(
                    "INSERT INTO messages_fts (rowid, content) SELECT id, content FROM messages \
                     WHERE id IN ({next})"
                ),
                [INDEX_BATCH.into()],
            ))
            .await?
            .rows_affected();
        txn.execute_raw(stmt(
            &txn,
            &format!("UPDATE search_progress SET indexed_through = COALESCE((SELECT MAX(id) FROM ({next})), indexed_through)"),
            [INDEX_BATCH.into()],
        ))
        .await?;
        txn.commit().await?;
        indexed += count;
        if count < INDEX_BATCH as u64 {
            return Ok(indexed);
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DatabaseConnection};

    use super::{INDEX_BATCH, index_pending};
    use crate::store::{db, stmt};

    async fn int(db: &DatabaseConnection, sql: &str) -> i64 {
        db.query_one_raw(stmt(db, sql, []))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index(0)
            .unwrap()
    }

    /// Messages inserted after the migration wait for the indexer; it takes them all, a
    /// batch at a time, with their text as it is when their turn comes, and then has
    /// nothing left to do.
    #[tokio::test]
    async fn sqlite_indexes_what_is_pending_in_batches() {
        let dir = std::env::temp_dir().join(format!("rc-index-pending-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = db::connect(&format!("sqlite://{}?mode=rwc", dir.join("t.db").display()))
            .await
            .unwrap();
        db::migrate(&db).await.unwrap();
        let total = 2 * INDEX_BATCH + 7;
        for sql in [
            "INSERT INTO users (id, email, password_hash, display_name, created_at) VALUES \
               (1, 'a@x.example', 'h', 'a', '2026-12-08T10:00:00Z'), (2, 'b@x.example', 'h', 'b', '2026-12-08T10:00:00Z')",
            "INSERT INTO conversations (id, kind, user_a, user_b, created_at, updated_at) VALUES \
               (1, 'direct', 1, 2, '2026-12-08T10:00:00Z', '2026-12-08T10:00:00Z')",
            "INSERT INTO conversation_members (conversation_id, user_id, role, joined_at) VALUES \
               (1, 1, 'member', '2026-12-08T10:00:00Z'), (1, 2, 'member', '2026-12-08T10:00:00Z')",
            &format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {total}) \
                 INSERT INTO messages (conversation_id, seq, sender_id, content, sent_at, created_at, version) \
                 SELECT 1, i, 1, 'otter number ' || i, '2026-12-08T10:00:00Z', '2026-12-08T10:00:00Z', i FROM n"
            ),
            // Edited before its turn: indexed with the new text only.
            "UPDATE messages SET content = 'a heron' WHERE seq = 5",
        ] {
            db.execute_unprepared(sql).await.unwrap();
        }
        let found =
            |word: &str| format!("SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH '\"{word}\"'");
        assert_eq!(int(&db, &found("otter")).await, 0, "nothing indexed yet");

        assert_eq!(index_pending(&db).await.unwrap(), total as u64);
        assert_eq!(int(&db, &found("otter")).await, total - 1);
        assert_eq!(int(&db, &found("heron")).await, 1);
        assert_eq!(
            int(&db, "SELECT indexed_through FROM search_progress").await,
            int(&db, "SELECT MAX(id) FROM messages").await
        );
        assert_eq!(index_pending(&db).await.unwrap(), 0, "nothing left");

        // Below the watermark, the triggers keep the index.
        db.execute_unprepared("UPDATE messages SET content = 'a heron too' WHERE seq = 6")
            .await
            .unwrap();
        assert_eq!(int(&db, &found("heron")).await, 2);
        db.execute_unprepared("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")
            .await
            .expect("the index mirrors the messages");
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
