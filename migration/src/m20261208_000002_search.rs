//! Full-text search over message content, indexed on both databases.
//!
//! - PostgreSQL: `messages.search_vector`, a stored generated column
//!   `to_tsvector('simple', content)`, with a GIN index. Generated, so every write path
//!   (the batch writer's single statement, edits, tombstones) keeps it true without a
//!   line of store code, and existing rows are indexed by the `ALTER TABLE` itself. The
//!   `simple` configuration lowercases and splits on the parser's word boundaries but
//!   neither stems nor drops stop words: chats mix languages, and a word in any of them
//!   is found as it was written (an English stemmer would mangle French and find
//!   nothing of "the"). Stored rather than an expression index so ranking reads the
//!   vector instead of parsing each matching message again.
//! - SQLite: `messages_fts`, an FTS5 table over `messages.content` (external content,
//!   `unicode61` without diacritic folding, so `é` and `e` stay apart as on PostgreSQL),
//!   kept in sync by triggers (the pattern of the FTS5 documentation), so cascading
//!   deletes are covered too. Every row is indexed, empty ones included (a tombstone or
//!   an encrypted message has no token, so it never matches): the index then mirrors
//!   the table exactly, which `'rebuild'` and `'integrity-check'` expect, and FTS5's
//!   external-content `'delete'` is always given what was indexed.
use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: &[&str] = &[
    "ALTER TABLE messages ADD COLUMN search_vector tsvector \
       GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED",
    "CREATE INDEX idx_messages_search ON messages USING GIN (search_vector)",
];

const POSTGRES_DOWN: &[&str] = &[
    "DROP INDEX IF EXISTS idx_messages_search",
    "ALTER TABLE messages DROP COLUMN IF EXISTS search_vector",
];

const SQLITE_UP: &[&str] = &[
    "CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', content_rowid='id', \
       tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN \
       INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content); \
     END",
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN \
       INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content); \
     END",
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN \
       INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content); \
       INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content); \
     END",
    // The messages already there.
    "INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')",
];

const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS messages_fts_update",
    "DROP TRIGGER IF EXISTS messages_fts_delete",
    "DROP TRIGGER IF EXISTS messages_fts_insert",
    "DROP TABLE IF EXISTS messages_fts",
];

async fn run(manager: &SchemaManager<'_>, postgres: &[&str], sqlite: &[&str]) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let statements = match manager.get_database_backend() {
        DbBackend::Postgres => postgres,
        DbBackend::Sqlite => sqlite,
        other => return Err(DbErr::Migration(format!("search: unsupported backend {other:?}"))),
    };
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
        run(manager, POSTGRES_UP, SQLITE_UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, POSTGRES_DOWN, SQLITE_DOWN).await
    }
}
