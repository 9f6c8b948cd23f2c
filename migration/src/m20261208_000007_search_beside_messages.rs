//! PostgreSQL keeps the search index beside the messages instead of in their rows.
//!
//! A message row is rewritten after it is sent: its delivered and read receipts are set
//! by `UPDATE`s that cannot be HOT (partial indexes are defined on those columns), so
//! each of them adds a new entry to every index of `messages`. With the tsvector in the
//! row, that meant the GIN index took the message's words again at every receipt, on
//! top of the insert, and the row carried its tsvector through each rewrite: the send
//! path's largest new cost (BENCHMARKS.md, "Scenario 1 with the message lifecycle").
//!
//! `message_search` holds one row per message with text (tombstones and encrypted
//! messages have none), written only when a message is inserted, edited or deleted,
//! with the message's conversation: a search picks and ranks its candidates from this
//! table alone and reads only the page's messages.
//! Triggers keep it, as the generated column did, so every write path (and bulk SQL)
//! is covered: inserts per statement (one `INSERT … SELECT` for a whole batch), edits
//! per row and only when the text changed, deletes per statement. No foreign key: its
//! check would cost each insert a lookup, and the delete trigger removes what a deleted
//! message leaves. SQLite is unchanged (its FTS5 table is already beside the rows, and
//! its `UPDATE`s only touch the indexes of the columns they change).
use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "CREATE TABLE message_search (message_id BIGINT PRIMARY KEY, conversation_id BIGINT NOT NULL, \
       search_vector tsvector NOT NULL)",
    "INSERT INTO message_search (message_id, conversation_id, search_vector) \
       SELECT id, conversation_id, search_vector FROM messages WHERE content <> ''",
    "CREATE INDEX idx_message_search ON message_search USING GIN (search_vector)",
    "DROP INDEX IF EXISTS idx_messages_search",
    "ALTER TABLE messages DROP COLUMN IF EXISTS search_vector",
    "CREATE FUNCTION message_search_inserted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
       INSERT INTO message_search (message_id, conversation_id, search_vector) \
         SELECT id, conversation_id, to_tsvector('simple', content) FROM inserted_messages WHERE content <> ''; \
       RETURN NULL; \
     END $$",
    "CREATE TRIGGER message_search_inserted AFTER INSERT ON messages \
       REFERENCING NEW TABLE AS inserted_messages FOR EACH STATEMENT \
       EXECUTE FUNCTION message_search_inserted()",
    "CREATE FUNCTION message_search_edited() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
       IF NEW.content = '' THEN \
         DELETE FROM message_search WHERE message_id = NEW.id; \
       ELSE \
         INSERT INTO message_search (message_id, conversation_id, search_vector) \
           VALUES (NEW.id, NEW.conversation_id, to_tsvector('simple', NEW.content)) \
           ON CONFLICT (message_id) DO UPDATE SET search_vector = EXCLUDED.search_vector; \
       END IF; \
       RETURN NULL; \
     END $$",
    "CREATE TRIGGER message_search_edited AFTER UPDATE OF content ON messages \
       FOR EACH ROW WHEN (OLD.content IS DISTINCT FROM NEW.content) \
       EXECUTE FUNCTION message_search_edited()",
    "CREATE FUNCTION message_search_deleted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
       DELETE FROM message_search s USING deleted_messages d WHERE s.message_id = d.id; \
       RETURN NULL; \
     END $$",
    "CREATE TRIGGER message_search_deleted AFTER DELETE ON messages \
       REFERENCING OLD TABLE AS deleted_messages FOR EACH STATEMENT \
       EXECUTE FUNCTION message_search_deleted()",
];

const DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS message_search_deleted ON messages",
    "DROP TRIGGER IF EXISTS message_search_edited ON messages",
    "DROP TRIGGER IF EXISTS message_search_inserted ON messages",
    "DROP FUNCTION IF EXISTS message_search_deleted()",
    "DROP FUNCTION IF EXISTS message_search_edited()",
    "DROP FUNCTION IF EXISTS message_search_inserted()",
    "DROP TABLE IF EXISTS message_search",
    "ALTER TABLE messages ADD COLUMN search_vector tsvector \
       GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED",
    "CREATE INDEX idx_messages_search ON messages USING GIN (search_vector)",
];

async fn run(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
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
