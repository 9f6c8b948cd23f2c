//! Blocks between users.
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult};

use super::{stmt, values_list};

/// Blocks `blocked` for `blocker` (again is a no-op).
pub async fn block<C: ConnectionTrait>(
    db: &C,
    blocker: i64,
    blocked: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    db.execute_raw(stmt(
        db,
        "INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (blocker_id, blocked_id) DO NOTHING",
        [blocker.into(), blocked.into(), now.into()],
    ))
    .await?;
    Ok(())
}

pub async fn unblock<C: ConnectionTrait>(db: &C, blocker: i64, blocked: i64) -> anyhow::Result<()> {
    db.execute_raw(stmt(
        db,
        "DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2",
        [blocker.into(), blocked.into()],
    ))
    .await?;
    Ok(())
}

/// A user's blocks, newest first, as `(user, since)`.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Blocked {
    pub blocked_id: i64,
    pub created_at: DateTime<Utc>,
}

pub async fn list<C: ConnectionTrait>(db: &C, blocker: i64) -> anyhow::Result<Vec<Blocked>> {
    Ok(Blocked::find_by_statement(stmt(
        db,
        "SELECT blocked_id, created_at FROM blocks WHERE blocker_id = $1 ORDER BY created_at DESC, blocked_id",
        [blocker.into()],
    ))
    .all(db)
    .await?)
}

#[derive(FromQueryResult)]
struct Other {
    other: i64,
}

/// Everyone `user` blocked or is blocked by.
pub async fn related<C: ConnectionTrait>(db: &C, user: i64) -> anyhow::Result<HashSet<i64>> {
    Ok(Other::find_by_statement(stmt(
        db,
        "SELECT blocked_id AS other FROM blocks WHERE blocker_id = $1 \
         UNION SELECT blocker_id AS other FROM blocks WHERE blocked_id = $1",
        [user.into()],
    ))
    .all(db)
    .await?
    .into_iter()
    .map(|r| r.other)
    .collect())
}

#[derive(FromQueryResult)]
struct Pair {
    blocker_id: i64,
    blocked_id: i64,
}

/// Which of these `(a, b)` pairs have a block between them, either way; answered as the
/// pairs given.
pub async fn between<C: ConnectionTrait>(
    db: &C,
    pairs: &[(i64, i64)],
) -> anyhow::Result<HashSet<(i64, i64)>> {
    if pairs.is_empty() {
        return Ok(HashSet::new());
    }
    let (tuples, values) = values_list(Vec::new(), pairs.iter().map(|(a, b)| [*a, *b]));
    let found: HashSet<(i64, i64)> = Pair::find_by_statement(stmt(
        db,
        &format!(
            "SELECT b.blocker_id, b.blocked_id FROM blocks b JOIN (VALUES {tuples}) AS v \
             ON (b.blocker_id = v.column1 AND b.blocked_id = v.column2) \
             OR (b.blocker_id = v.column2 AND b.blocked_id = v.column1)"
        ),
        values,
    ))
    .all(db)
    .await?
    .into_iter()
    .map(|p| (p.blocker_id, p.blocked_id))
    .collect();
    Ok(pairs
        .iter()
        .copied()
        .filter(|(a, b)| found.contains(&(*a, *b)) || found.contains(&(*b, *a)))
        .collect())
}
