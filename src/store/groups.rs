//! Groups: their rows, their members and roles.
//!
//! Every change starts by writing the group's row, which locks it (PostgreSQL) or takes
//! the database's write lock (SQLite), so two admins changing one group at once are
//! applied one after the other, each seeing the other's result.
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult};

use super::stmt;

/// A group's own row.
#[derive(Debug, Clone, FromQueryResult)]
pub struct GroupRow {
    pub id: i64,
    pub name: Option<String>,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<i64>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// A current member.
#[derive(Debug, Clone, FromQueryResult)]
pub struct MemberRow {
    pub user_id: i64,
    pub role: String,
    pub joined_at: DateTime<Utc>,
}

#[derive(FromQueryResult)]
struct IdRow {
    id: i64,
}

/// Creates an open group with `members` as `(user, role)`; returns its id.
pub async fn create<C: ConnectionTrait>(
    db: &C,
    creator: i64,
    name: &str,
    description: Option<&str>,
    members: &[(i64, &str)],
    now: DateTime<Utc>,
) -> anyhow::Result<i64> {
    let row = IdRow::find_by_statement(stmt(
        db,
        "INSERT INTO conversations (kind, name, description, created_by, created_at, updated_at, last_seq) \
         VALUES ('group', $1, $2, $3, $4, $4, 0) RETURNING id",
        [
            name.into(),
            description.map(str::to_owned).into(),
            creator.into(),
            now.into(),
        ],
    ))
    .one(db)
    .await?
    .ok_or_else(|| anyhow::anyhow!("group insert returned no id"))?;
    for (user, role) in members {
        db.execute_raw(stmt(
            db,
            "INSERT INTO conversation_members (conversation_id, user_id, role, joined_at, delivered_seq, read_seq) \
             VALUES ($1, $2, $3, $4, 0, 0)",
            [row.id.into(), (*user).into(), (*role).into(), now.into()],
        ))
        .await?;
    }
    Ok(row.id)
}

/// Locks an open group's row for the rest of the transaction; false if there is no
/// such open group.
pub async fn lock<C: ConnectionTrait>(db: &C, group: i64) -> anyhow::Result<bool> {
    let changed = db
        .execute_raw(stmt(
            db,
            "UPDATE conversations SET updated_at = updated_at WHERE id = $1 AND kind = 'group' AND closed_at IS NULL",
            [group.into()],
        ))
        .await?
        .rows_affected();
    Ok(changed == 1)
}

/// The group's row, if `id` is a group.
pub async fn get<C: ConnectionTrait>(db: &C, id: i64) -> anyhow::Result<Option<GroupRow>> {
    Ok(GroupRow::find_by_statement(stmt(
        db,
        "SELECT id, name, description, created_at, created_by, closed_at FROM conversations \
         WHERE id = $1 AND kind = 'group'",
        [id.into()],
    ))
    .one(db)
    .await?)
}

/// Current members, longest-standing first.
pub async fn members<C: ConnectionTrait>(db: &C, group: i64) -> anyhow::Result<Vec<MemberRow>> {
    Ok(MemberRow::find_by_statement(stmt(
        db,
        "SELECT user_id, role, joined_at FROM conversation_members \
         WHERE conversation_id = $1 AND left_at IS NULL ORDER BY joined_at, user_id",
        [group.into()],
    ))
    .all(db)
    .await?)
}

/// Sets the name and/or description (None leaves a field as it is).
pub async fn update<C: ConnectionTrait>(
    db: &C,
    group: i64,
    name: Option<&str>,
    description: Option<&str>,
) -> anyhow::Result<()> {
    db.execute_raw(stmt(
        db,
        "UPDATE conversations SET name = COALESCE($1, name), description = COALESCE($2, description) \
         WHERE id = $3",
        [
            name.map(str::to_owned).into(),
            description.map(str::to_owned).into(),
            group.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Makes `user` a current (plain) member. A returning member gets their old row
/// back. Either way their positions start at the newest message: no backlog of what
/// was sent before they (re)joined, and nothing unread.
pub async fn add_member<C: ConnectionTrait>(
    db: &C,
    group: i64,
    user: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    db.execute_raw(stmt(
        db,
        "INSERT INTO conversation_members (conversation_id, user_id, role, joined_at, delivered_seq, read_seq) \
         SELECT id, $2, 'member', $3, last_seq, last_seq FROM conversations WHERE id = $1 \
         ON CONFLICT (conversation_id, user_id) DO UPDATE SET role = 'member', joined_at = excluded.joined_at, \
           delivered_seq = excluded.delivered_seq, read_seq = excluded.read_seq, sent_since_read = 0, left_at = NULL",
        [group.into(), user.into(), now.into()],
    ))
    .await?;
    Ok(())
}

/// Marks a member as gone; their row (and so their messages' sender) stays.
pub async fn set_left<C: ConnectionTrait>(
    db: &C,
    group: i64,
    user: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    db.execute_raw(stmt(
        db,
        "UPDATE conversation_members SET left_at = $3 WHERE conversation_id = $1 AND user_id = $2",
        [group.into(), user.into(), now.into()],
    ))
    .await?;
    Ok(())
}

pub async fn set_role<C: ConnectionTrait>(db: &C, group: i64, user: i64, role: &str) -> anyhow::Result<()> {
    db.execute_raw(stmt(
        db,
        "UPDATE conversation_members SET role = $3 WHERE conversation_id = $1 AND user_id = $2",
        [group.into(), user.into(), role.into()],
    ))
    .await?;
    Ok(())
}

/// Closes a group nobody is left in.
pub async fn close<C: ConnectionTrait>(db: &C, group: i64, now: DateTime<Utc>) -> anyhow::Result<()> {
    db.execute_raw(stmt(
        db,
        "UPDATE conversations SET closed_at = $2 WHERE id = $1",
        [group.into(), now.into()],
    ))
    .await?;
    Ok(())
}
