//! SQLite indexes messages for search behind the send path instead of inside it.
//!
//! The FTS5 insert trigger indexed each message inside the writer's transaction, about
//! 5 µs of the writer's time per message, and FTS5 writes a new index segment for every
//! transaction (so small batches also cost merges later). Now the server indexes new
//! messages in batches (`store::search::index_pending`: by a background task, and by
//! every search before it runs, so a search still finds every message sent before it).
//!
//! `search_progress.indexed_through` is the highest message id indexed: SQLite commits
//! one writer at a time and `messages.id` is AUTOINCREMENT, so every message at or below
//! it is indexed and every one above it is not. The edit and delete triggers keep the
//! index for the rows at or below it; rows above it are indexed with whatever text they
//! hold when their turn comes. PostgreSQL is unchanged (see
//! `m20261208_000007_search_beside_messages`).
use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "DROP TRIGGER IF EXISTS messages_fts_insert",
    "CREATE TABLE search_progress (id INTEGER PRIMARY KEY CHECK (id = 1), indexed_through INTEGER NOT NULL)",
    "INSERT INTO search_progress (id, indexed_through) SELECT 1, COALESCE(MAX(id), 0) FROM messages",
    "DROP TRIGGER IF EXISTS messages_fts_delete",
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages \
       WHEN old.id <= (SELECT indexed_through FROM search_progress) BEGIN \
       INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content); \
     END",
    "DROP TRIGGER IF EXISTS messages_fts_update",
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages \
       WHEN old.id <= (SELECT indexed_through FROM search_progress) BEGIN \
       INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content); \
       INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content); \
     END",
];

const DOWN: &[&str] = &[
    // What was not indexed yet is indexed first, as the insert trigger would have.
    "INSERT INTO messages_fts (rowid, content) SELECT id, content FROM messages \
       WHERE id > (SELECT indexed_through FROM search_progress)",
    "DROP TRIGGER IF EXISTS messages_fts_update",
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN \
       INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content); \
       INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content); \
     END",
    "DROP TRIGGER IF EXISTS messages_fts_delete",
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN \
       INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content); \
     END",
    "DROP TABLE IF EXISTS search_progress",
    "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN \
       INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content); \
     END",
];

async fn run(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Sqlite {
        return Ok(());
    }
    let db = manager.get_connection();
    for sql in statements {
        db.execute_unprepared(sql).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, DOWN).await
    }
}
