//! Upgrading a database that already holds conversations: the later migrations keep
//! every row, backfill the list previews and leave the constraints they promise. Runs on
//! SQLite always, and on PostgreSQL when `TEST_DATABASE_URL` is set (required under
//! `CI=true`).
mod common;

use migration::{Migrator, MigratorTrait};
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

async fn exec(db: &DatabaseConnection, sql: &str) -> Result<u64, String> {
    db.execute_unprepared(sql)
        .await
        .map(|r| r.rows_affected())
        .map_err(|e| e.to_string())
}

async fn one_row(db: &DatabaseConnection, sql: &str) -> (i64, String) {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("query")
        .expect("a row");
    (row.try_get_by_index(0).unwrap(), row.try_get_by_index(1).unwrap())
}

async fn upgrade_keeps_data(db: &DatabaseConnection) {
    Migrator::up(db, Some(1)).await.expect("initial schema");
    for sql in [
        "INSERT INTO users (id, email, password_hash, display_name, created_at) VALUES \
           (1, 'a@x.example', 'h', 'a', '2026-11-24T10:00:00Z'), \
           (2, 'b@x.example', 'h', 'b', '2026-11-24T10:00:00Z'), \
           (3, 'c@x.example', 'h', 'c', '2026-11-24T10:00:00Z')",
        "INSERT INTO conversations (id, kind, user_a, user_b, created_at, updated_at, last_seq) VALUES \
           (1, 'direct', 1, 2, '2026-11-24T10:00:00Z', '2026-11-24T10:01:00Z', 2), \
           (2, 'direct', 1, 3, '2026-11-24T10:00:00Z', '2026-11-24T10:00:00Z', 0)",
        "INSERT INTO conversation_members (conversation_id, user_id, role, joined_at) VALUES \
           (1, 1, 'member', '2026-11-24T10:00:00Z'), (1, 2, 'member', '2026-11-24T10:00:00Z'), \
           (2, 1, 'member', '2026-11-24T10:00:00Z'), (2, 3, 'member', '2026-11-24T10:00:00Z')",
        "INSERT INTO messages (id, conversation_id, seq, sender_id, content, sent_at, created_at) VALUES \
           (1, 1, 1, 1, 'hello', '2026-11-24T10:00:30Z', '2026-11-24T10:00:30Z'), \
           (2, 1, 2, 2, 'hello back', '2026-11-24T10:01:00Z', '2026-11-24T10:01:00Z')",
        // Alice's message reached Bob; Bob's reply has not reached Alice yet.
        "UPDATE messages SET delivered_at = '2026-11-24T10:00:31Z' WHERE id = 1",
    ] {
        exec(db, sql).await.expect("seed the old schema");
    }

    // Up to the recount of unread counts, then a group with a deleted message in it.
    let recount = Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261208_000005_unread_skips_deleted")
        .expect("the recount migration is registered");
    Migrator::up(db, Some(recount as u32 - 1))
        .await
        .expect("migrations before the recount");
    for sql in [
        "INSERT INTO conversations (id, kind, name, created_by, created_at, updated_at, last_seq) VALUES \
           (4, 'group', 'before', 1, '2026-12-07T10:00:00Z', '2026-12-07T10:00:00Z', 3)",
        "INSERT INTO conversation_members (conversation_id, user_id, role, joined_at) VALUES \
           (4, 1, 'owner', '2026-12-07T10:00:00Z'), (4, 3, 'member', '2026-12-07T10:00:00Z')",
        "INSERT INTO messages (id, conversation_id, seq, sender_id, content, sent_at, created_at, deleted_at) VALUES \
           (101, 4, 1, 3, '', '2026-12-07T10:01:00Z', '2026-12-07T10:01:00Z', '2026-12-07T10:02:00Z'), \
           (102, 4, 2, 3, 'kept', '2026-12-07T10:01:00Z', '2026-12-07T10:01:00Z', NULL), \
           (103, 4, 3, 1, '', '2026-12-07T10:01:00Z', '2026-12-07T10:01:00Z', '2026-12-07T10:02:00Z')",
    ] {
        exec(db, sql).await.expect("seed a group with deleted messages");
    }
    Migrator::up(db, None).await.expect("later migrations");
    assert_eq!(
        one_row(
            db,
            "SELECT CAST(SUM(CASE WHEN user_id = 1 THEN sent_since_read ELSE 0 END) AS BIGINT), \
               CAST(SUM(CASE WHEN user_id = 3 THEN sent_since_read ELSE 0 END) AS TEXT) \
             FROM conversation_members WHERE conversation_id = 4"
        )
        .await,
        (2, "3".to_owned()),
        "deleted messages after the read position no longer count as unread: \
         Alice's unread is 3 - 0 - 2 (only 'kept'), the writer's 3 - 0 - 3"
    );
    for sql in [
        "DELETE FROM messages WHERE conversation_id = 4",
        "DELETE FROM conversation_members WHERE conversation_id = 4",
        "DELETE FROM conversations WHERE id = 4",
    ] {
        exec(db, sql).await.expect("remove the group again");
    }

    assert_eq!(
        one_row(
            db,
            "SELECT last_sender_id, last_content FROM conversations WHERE id = 1"
        )
        .await,
        (2, "hello back".to_owned()),
        "the preview is backfilled from the newest message"
    );
    assert_eq!(
        one_row(db, "SELECT count(*), min(content) FROM messages").await,
        (2, "hello".to_owned()),
        "messages survive the upgrade"
    );
    let preview_of_empty = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT last_content FROM conversations WHERE id = 2",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<Option<String>>(0)
        .unwrap();
    assert_eq!(
        preview_of_empty, None,
        "a conversation without messages has no preview"
    );

    // The change cursor starts where the messages are: each was one insert.
    assert_eq!(
        one_row(db, "SELECT version, kind FROM conversations WHERE id = 1").await,
        (2, "direct".to_owned()),
        "a conversation's version starts at its last seq"
    );
    assert_eq!(
        one_row(
            db,
            "SELECT SUM(CASE WHEN version = seq THEN 1 ELSE 0 END), MIN(CASE WHEN edited_at IS NULL \
               AND deleted_at IS NULL AND reply_to_id IS NULL THEN 'plain' ELSE 'changed' END) FROM messages"
        )
        .await,
        (2, "plain".to_owned()),
        "each message's version is its seq; none is edited, deleted or a reply"
    );
    assert_eq!(
        exec(
            db,
            "INSERT INTO message_reactions (message_id, user_id, emoji, reacted_at) \
             VALUES (1, 2, '👍', '2026-12-07T10:00:00Z')"
        )
        .await,
        Ok(1),
        "reactions fit the upgraded schema"
    );
    assert!(
        exec(
            db,
            "INSERT INTO message_reactions (message_id, user_id, emoji, reacted_at) \
             VALUES (1, 2, '🎉', '2026-12-07T10:00:00Z')"
        )
        .await
        .is_err(),
        "one reaction per user and message"
    );

    // Per-message receipts become member positions: each member has everything before
    // the first message from the other still undelivered (unread) to them.
    let positions = |user: i64| async move {
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                format!(
                    "SELECT delivered_seq, read_seq, sent_since_read FROM conversation_members \
                     WHERE conversation_id = 1 AND user_id = {user}"
                ),
            ))
            .await
            .expect("query")
            .expect("a member row");
        let at = |i| row.try_get_by_index::<i64>(i).unwrap();
        (at(0), at(1), at(2))
    };
    assert_eq!(
        positions(1).await,
        (1, 1, 0),
        "Alice: delivered and read up to her own message (Bob's reply reached her not), none of hers after"
    );
    assert_eq!(
        positions(2).await,
        (2, 0, 1),
        "Bob: delivered 2 (Alice's message reached him), read nothing, his own reply after that"
    );
    exec(
        db,
        "INSERT INTO conversations (id, kind, name, created_by, created_at, updated_at, last_seq) VALUES \
           (3, 'group', 'team', 1, '2026-11-24T10:03:00Z', '2026-11-24T10:03:00Z', 0)",
    )
    .await
    .expect("groups fit the upgraded schema");
    exec(
        db,
        "INSERT INTO member_position_log (conversation_id, user_id, kind, seq, at) \
           VALUES (1, 2, 'read', 1, '2026-11-24T10:04:00Z')",
    )
    .await
    .expect("position moves are logged");

    let insert = |conversation: i64, seq: i64, sender: i64| {
        format!(
            "INSERT INTO messages (conversation_id, seq, sender_id, content, sent_at, created_at) \
             VALUES ({conversation}, {seq}, {sender}, 'x', '2026-11-24T10:02:00Z', '2026-11-24T10:02:00Z')"
        )
    };
    assert!(
        exec(db, &insert(1, 2, 1)).await.is_err(),
        "(conversation, seq) stays unique"
    );
    assert!(
        exec(db, &insert(1, 3, 3)).await.is_err(),
        "a sender outside the conversation is refused"
    );
    assert!(
        exec(db, &insert(9, 1, 1)).await.is_err(),
        "a message in a missing conversation is refused"
    );
    assert_eq!(
        exec(db, &insert(1, 3, 1)).await,
        Ok(1),
        "a member's message is stored"
    );

    // A direct conversation goes with either of its users, and its messages with it
    // (now through the membership rows).
    exec(db, "DELETE FROM users WHERE id = 2")
        .await
        .expect("delete a user");
    assert_eq!(
        one_row(db, "SELECT count(*), 'left' FROM messages").await,
        (0, "left".to_owned()),
        "deleting a user removes their conversation's messages"
    );
}

#[tokio::test]
async fn sqlite_upgrade_keeps_data() {
    let fresh = common::sqlite("rc-upgrade").await;
    upgrade_keeps_data(&fresh.db).await;
    fresh.done().await;
}

#[tokio::test]
async fn postgres_upgrade_keeps_data() {
    let Some(fresh) = common::postgres("rc_upgrade").await else {
        return;
    };
    upgrade_keeps_data(&fresh.db).await;
    fresh.done().await;
}
