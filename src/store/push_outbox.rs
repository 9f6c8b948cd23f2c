//! The push outbox: hooks still to be posted, claimed by whichever node gets to them.
//!
//! A claim moves the rows' `next_attempt_at` past a lease in the statement that picks
//! them; on PostgreSQL the pick is `FOR UPDATE SKIP LOCKED`, so two nodes claiming at
//! once take different rows. A node that dies mid-send leaves its rows to be claimed
//! again when the lease runs out: hooks are delivered at least once, and the receiver
//! drops repeats by `delivery_id`. SQLite has one node, whose claims are serialised by
//! its write lock.
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, FromQueryResult, Value};

use super::stmt;

/// A hook to enqueue.
#[derive(Debug, Clone)]
pub struct NewHook {
    pub delivery_id: String,
    pub user_id: i64,
    pub conversation_id: i64,
    pub message_id: i64,
    pub seq: i64,
    pub created_at: DateTime<Utc>,
}

/// A claimed hook with what its body may need.
#[derive(Debug, Clone, FromQueryResult)]
pub struct DueHook {
    pub id: i64,
    pub delivery_id: String,
    pub user_id: i64,
    pub conversation_id: i64,
    pub message_id: i64,
    pub seq: i64,
    pub created_at: DateTime<Utc>,
    /// Attempts started, this one included.
    pub attempts: i32,
}

/// The message and recipient as they stand when a claimed hook is about to go.
#[derive(Debug, Clone, FromQueryResult)]
pub struct HookContext {
    pub id: i64,
    pub sender_id: i64,
    pub sender_name: String,
    pub content: String,
    pub deleted_at: Option<DateTime<Utc>>,
    /// End-to-end encrypted: the server cannot read it, so it has no preview.
    pub encrypted: bool,
    /// The recipient's delivered position: past the message's seq once a device got it.
    pub delivered_seq: i64,
}

#[derive(FromQueryResult)]
struct Recipient {
    conversation_id: i64,
    user_id: i64,
}

#[derive(FromQueryResult)]
struct Earliest {
    at: Option<DateTime<Utc>>,
}

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The current members of these conversations who have not muted them at `now`, as
/// `(conversation, user)`.
pub async fn unmuted_members<C: ConnectionTrait>(
    db: &C,
    conversations: &[i64],
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<(i64, i64)>> {
    if conversations.is_empty() {
        return Ok(Vec::new());
    }
    let mut values: Vec<Value> = vec![now.into()];
    values.extend(conversations.iter().map(|c| Value::from(*c)));
    let sql = format!(
        "SELECT m.conversation_id, m.user_id FROM conversation_members m \
         LEFT JOIN conversation_mutes u \
           ON u.conversation_id = m.conversation_id AND u.user_id = m.user_id AND u.muted_until > $1 \
         WHERE m.left_at IS NULL AND u.user_id IS NULL AND m.conversation_id IN ({})",
        placeholders(2, conversations.len())
    );
    Ok(Recipient::find_by_statement(stmt(db, &sql, values))
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.conversation_id, r.user_id))
        .collect())
}

/// Rows per INSERT: 6 values each, far below either database's parameter limit.
const INSERT_CHUNK: usize = 500;

/// Adds hooks due at `due`; a (message, user) already queued is left as it is.
pub async fn enqueue(db: &DatabaseConnection, hooks: &[NewHook], due: DateTime<Utc>) -> anyhow::Result<()> {
    for chunk in hooks.chunks(INSERT_CHUNK) {
        let mut values: Vec<Value> = vec![due.into()];
        let mut rows = Vec::with_capacity(chunk.len());
        for h in chunk {
            let at = values.len() + 1;
            rows.push(format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, 0, $1)",
                at,
                at + 1,
                at + 2,
                at + 3,
                at + 4,
                at + 5
            ));
            values.extend([
                Value::from(h.delivery_id.clone()),
                h.user_id.into(),
                h.conversation_id.into(),
                h.message_id.into(),
                h.seq.into(),
                h.created_at.into(),
            ]);
        }
        let sql = format!(
            "INSERT INTO push_outbox \
             (delivery_id, user_id, conversation_id, message_id, seq, created_at, attempts, next_attempt_at) \
             VALUES {} ON CONFLICT (message_id, user_id) DO NOTHING",
            rows.join(", ")
        );
        db.execute_raw(stmt(db, &sql, values)).await?;
    }
    Ok(())
}

/// Claims up to `limit` hooks due at `now`, leasing them until `lease_until`, and counts
/// the attempt about to start.
pub async fn claim(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u64,
) -> anyhow::Result<Vec<DueHook>> {
    let pick = match db.get_database_backend() {
        DbBackend::Postgres => {
            "SELECT id FROM push_outbox WHERE next_attempt_at <= $1 \
             ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED"
        }
        _ => "SELECT id FROM push_outbox WHERE next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $3",
    };
    let sql = format!(
        "UPDATE push_outbox SET next_attempt_at = $2, attempts = attempts + 1 \
         WHERE id IN ({pick}) \
         RETURNING id, delivery_id, user_id, conversation_id, message_id, seq, created_at, attempts"
    );
    let txn = super::begin_write(db).await?;
    let claimed = DueHook::find_by_statement(stmt(
        &txn,
        &sql,
        [now.into(), lease_until.into(), (limit as i64).into()],
    ))
    .all(&txn)
    .await?;
    txn.commit().await?;
    Ok(claimed)
}

/// Coalescing: also claims the never-tried hooks of `users` that are not due yet (they
/// go out with the due ones, as one post per user).
pub async fn claim_pending_of(
    db: &DatabaseConnection,
    users: &[i64],
    lease_until: DateTime<Utc>,
) -> anyhow::Result<Vec<DueHook>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let lock = match db.get_database_backend() {
        DbBackend::Postgres => " FOR UPDATE SKIP LOCKED",
        _ => "",
    };
    let mut values: Vec<Value> = vec![lease_until.into()];
    values.extend(users.iter().map(|u| Value::from(*u)));
    let sql = format!(
        "UPDATE push_outbox SET next_attempt_at = $1, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM push_outbox WHERE attempts = 0 AND user_id IN ({}){lock}) \
         RETURNING id, delivery_id, user_id, conversation_id, message_id, seq, created_at, attempts",
        placeholders(2, users.len())
    );
    let txn = super::begin_write(db).await?;
    let claimed = DueHook::find_by_statement(stmt(&txn, &sql, values))
        .all(&txn)
        .await?;
    txn.commit().await?;
    Ok(claimed)
}

/// The messages and recipients of claimed hooks, keyed by hook id.
pub async fn context<C: ConnectionTrait>(db: &C, hooks: &[i64]) -> anyhow::Result<Vec<HookContext>> {
    if hooks.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT o.id, msg.sender_id, u.display_name AS sender_name, msg.content, \
                msg.deleted_at, msg.encrypted, COALESCE(cm.delivered_seq, 0) AS delivered_seq \
         FROM push_outbox o \
         JOIN messages msg ON msg.id = o.message_id \
         JOIN users u ON u.id = msg.sender_id \
         LEFT JOIN conversation_members cm ON cm.conversation_id = o.conversation_id AND cm.user_id = o.user_id \
         WHERE o.id IN ({})",
        placeholders(1, hooks.len())
    );
    Ok(
        HookContext::find_by_statement(stmt(db, &sql, hooks.iter().map(|h| Value::from(*h))))
            .all(db)
            .await?,
    )
}

/// Removes hooks that were answered or given up.
pub async fn remove(db: &DatabaseConnection, hooks: &[i64]) -> anyhow::Result<()> {
    if hooks.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "DELETE FROM push_outbox WHERE id IN ({})",
        placeholders(1, hooks.len())
    );
    db.execute_raw(stmt(db, &sql, hooks.iter().map(|h| Value::from(*h))))
        .await?;
    Ok(())
}

/// Schedules the next attempt of hooks (one post, several rows when coalesced).
pub async fn retry_at(db: &DatabaseConnection, hooks: &[i64], at: DateTime<Utc>) -> anyhow::Result<()> {
    let mut values: Vec<Value> = vec![at.into()];
    values.extend(hooks.iter().map(|h| Value::from(*h)));
    let sql = format!(
        "UPDATE push_outbox SET next_attempt_at = $1 WHERE id IN ({})",
        placeholders(2, hooks.len())
    );
    db.execute_raw(stmt(db, &sql, values)).await?;
    Ok(())
}

/// When the next hook falls due (None: the outbox is empty).
pub async fn earliest_due(db: &DatabaseConnection) -> anyhow::Result<Option<DateTime<Utc>>> {
    Ok(
        Earliest::find_by_statement(stmt(db, "SELECT MIN(next_attempt_at) AS at FROM push_outbox", []))
            .one(db)
            .await?
            .and_then(|e| e.at),
    )
}
