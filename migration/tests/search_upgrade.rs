//! Upgrading a database that already holds messages to full-text search: the migration
//! indexes what is there (but not tombstones), and from then on the index follows
//! inserts, edits, tombstones and deletes by itself. Runs on SQLite always, and on
//! PostgreSQL when `TEST_DATABASE_URL` is set (required under `CI=true`).
mod common;

use migration::{Migrator, MigratorTrait};
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

/// The migrations before search (the last one is `m20261207_000001_message_lifecycle`).
const BEFORE_SEARCH: u32 = 7;

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The ids of the messages whose indexed text holds `word`, ascending.
async fn found(db: &DatabaseConnection, word: &str) -> Vec<i64> {
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => format!(
            "SELECT message_id FROM message_search WHERE search_vector @@ plainto_tsquery('simple', '{word}') \
             ORDER BY message_id"
        ),
        _ => format!("SELECT rowid FROM messages_fts WHERE messages_fts MATCH '\"{word}\"' ORDER BY rowid"),
    };
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("search")
        .iter()
        .map(|r| r.try_get_by_index::<i64>(0).unwrap())
        .collect()
}

/// What the server's indexer does on SQLite (`store::search::index_pending`), in one go:
/// index every message above the watermark, with its text as it is now.
async fn catch_up(db: &DatabaseConnection) {
    exec(
        db,
        "INSERT INTO messages_fts (rowid, content) SELECT id, content FROM messages \
           WHERE id > (SELECT indexed_through FROM search_progress)",
    )
    .await;
    exec(
        db,
        "UPDATE search_progress SET indexed_through = (SELECT MAX(id) FROM messages)",
    )
    .await;
}

async fn upgrade_indexes_existing_messages(db: &DatabaseConnection) {
    Migrator::up(db, Some(BEFORE_SEARCH))
        .await
        .expect("schema before search");
    for sql in [
        "INSERT INTO users (id, email, password_hash, display_name, created_at) VALUES \
           (1, 'a@x.example', 'h', 'a', '2026-11-24T10:00:00Z'), (2, 'b@x.example', 'h', 'b', '2026-11-24T10:00:00Z')",
        "INSERT INTO conversations (id, kind, user_a, user_b, created_at, updated_at, last_seq, version) VALUES \
           (1, 'direct', 1, 2, '2026-11-24T10:00:00Z', '2026-11-24T10:01:00Z', 3, 3)",
        "INSERT INTO conversation_members (conversation_id, user_id, role, joined_at) VALUES \
           (1, 1, 'member', '2026-11-24T10:00:00Z'), (1, 2, 'member', '2026-11-24T10:00:00Z')",
        "INSERT INTO messages (id, conversation_id, seq, sender_id, content, sent_at, created_at, version, deleted_at) VALUES \
           (1, 1, 1, 1, 'Hello Otter', '2026-11-24T10:00:30Z', '2026-11-24T10:00:30Z', 1, NULL), \
           (2, 1, 2, 2, 'an otter and a beaver', '2026-11-24T10:01:00Z', '2026-11-24T10:01:00Z', 2, NULL), \
           (3, 1, 3, 2, '', '2026-11-24T10:01:00Z', '2026-11-24T10:01:00Z', 3, '2026-11-24T10:02:00Z')",
    ] {
        exec(db, sql).await;
    }

    Migrator::up(db, None).await.expect("search migration");
    assert_eq!(
        found(db, "otter").await,
        [1, 2],
        "existing messages are indexed, in any case"
    );
    assert_eq!(found(db, "beaver").await, [2]);

    let sqlite = db.get_database_backend() == DbBackend::Sqlite;
    exec(
        db,
        "INSERT INTO messages (id, conversation_id, seq, sender_id, content, sent_at, created_at, version) VALUES \
           (4, 1, 4, 1, 'a new otter', '2026-11-24T10:03:00Z', '2026-11-24T10:03:00Z', 4)",
    )
    .await;
    if sqlite {
        assert_eq!(
            found(db, "otter").await,
            [1, 2],
            "SQLite indexes new messages later"
        );
        catch_up(db).await;
    }
    assert_eq!(found(db, "otter").await, [1, 2, 4], "an insert is indexed");
    exec(db, "UPDATE messages SET content = 'a new heron' WHERE id = 4").await;
    assert_eq!(found(db, "otter").await, [1, 2], "an edit drops the old words");
    assert_eq!(found(db, "heron").await, [4], "…and indexes the new ones");
    // Edited, and deleted, before SQLite's indexer reached them.
    exec(
        db,
        "INSERT INTO messages (id, conversation_id, seq, sender_id, content, sent_at, created_at, version) VALUES \
           (5, 1, 5, 1, 'an otter pup', '2026-11-24T10:03:00Z', '2026-11-24T10:03:00Z', 5), \
           (6, 1, 6, 1, 'an otter cub', '2026-11-24T10:03:00Z', '2026-11-24T10:03:00Z', 6)",
    )
    .await;
    exec(db, "UPDATE messages SET content = 'a heron chick' WHERE id = 5").await;
    exec(db, "DELETE FROM messages WHERE id = 6").await;
    if sqlite {
        catch_up(db).await;
    }
    assert_eq!(
        found(db, "otter").await,
        [1, 2],
        "the text indexed is the text at indexing"
    );
    assert_eq!(found(db, "heron").await, [4, 5]);
    assert_eq!(found(db, "cub").await, Vec::<i64>::new());
    exec(
        db,
        "UPDATE messages SET content = '', deleted_at = '2026-11-24T10:04:00Z' WHERE id = 2",
    )
    .await;
    assert_eq!(found(db, "otter").await, [1], "a tombstone leaves the index");
    assert_eq!(found(db, "beaver").await, Vec::<i64>::new());
    exec(db, "DELETE FROM messages WHERE id = 1").await;
    assert_eq!(
        found(db, "otter").await,
        Vec::<i64>::new(),
        "a deleted row leaves the index"
    );
    assert_eq!(found(db, "heron").await, [4, 5], "others stay");
    if db.get_database_backend() == DbBackend::Sqlite {
        // With rank 1, FTS5 also checks its index against the `messages` rows themselves.
        exec(
            db,
            "INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)",
        )
        .await;
    }

    // Search is four migrations since: the index, the sparse attachment index between
    // them, the index moved beside the messages (PostgreSQL) and indexing behind the
    // send path (SQLite).
    Migrator::down(db, Some(4)).await.expect("search migrations down");
    Migrator::up(db, None).await.expect("and up again");
    assert_eq!(found(db, "heron").await, [4, 5], "up again indexes what is there");
}

#[tokio::test]
async fn sqlite_search_upgrade() {
    let fresh = common::sqlite("rc-search-upgrade").await;
    upgrade_indexes_existing_messages(&fresh.db).await;
    fresh.done().await;
}

#[tokio::test]
async fn postgres_search_upgrade() {
    let Some(fresh) = common::postgres("rc_search_upgrade").await else {
        return;
    };
    upgrade_indexes_existing_messages(&fresh.db).await;
    fresh.done().await;
}
