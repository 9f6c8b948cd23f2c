//! Attachment rows and the blob rows that guard their shared content.
//!
//! An upload and the orphan sweep both take the content's `attachment_blobs` row lock
//! (an insert or an update of it: the same SQL on both databases; SQLite's write
//! transaction is exclusive anyway) before they move or delete its object, and the
//! upload's attachment row is committed under that lock. So the sweep either sees the
//! new row and keeps the object, or finishes deleting before the upload writes it again.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, FromQueryResult};

use super::{
    blobs::{Blobs, Staged},
    stmt,
};

/// What a message shows of its attachment (also relayed between nodes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, FromQueryResult)]
pub struct Attachment {
    pub id: i64,
    pub name: String,
    pub mime_type: String,
    pub size: i64,
    pub sha256: String,
    pub width: Option<i32>,
    pub height: Option<i32>,
}

/// A received upload about to be recorded.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    pub uploader_id: i64,
    pub name: String,
    pub mime_type: String,
    pub size: i64,
    pub sha256: String,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub idempotency_key: Option<String>,
}

/// How an upload was recorded.
#[derive(Debug)]
pub enum Recorded {
    /// A new attachment row.
    Created(Attachment),
    /// The caller's earlier upload that this one repeats.
    Repeated(Attachment),
    /// The idempotency key names an upload of different content.
    KeyReused,
}

const COLUMNS: &str = "a.id, a.name, a.mime_type, a.size, a.sha256, a.width, a.height";

#[derive(FromQueryResult)]
struct Owned {
    uploader_id: i64,
    id: i64,
    name: String,
    mime_type: String,
    size: i64,
    sha256: String,
    width: Option<i32>,
    height: Option<i32>,
}

/// Records an upload whose bytes are staged: moves them to their content's address
/// unless that content is stored already, and adds the attachment row. A repeat (the
/// same idempotency key, or without one the same user, name and content) answers the
/// earlier row and stores nothing.
pub async fn record(
    db: &DatabaseConnection,
    blobs: &Blobs,
    new: NewAttachment,
    staged: Staged,
    now: DateTime<Utc>,
) -> anyhow::Result<Recorded> {
    let txn = super::begin_write(db).await?;
    let stored = lock_blob(&txn, &new.sha256, new.size, now).await?;
    let earlier = match &new.idempotency_key {
        Some(key) => {
            find_one(
                &txn,
                "a.uploader_id = $1 AND a.idempotency_key = $2",
                [new.uploader_id.into(), key.clone().into()],
            )
            .await?
        }
        None => {
            find_one(
                &txn,
                "a.uploader_id = $1 AND a.sha256 = $2 AND a.name = $3 AND a.idempotency_key IS NULL",
                [
                    new.uploader_id.into(),
                    new.sha256.clone().into(),
                    new.name.clone().into(),
                ],
            )
            .await?
        }
    };
    if let Some(earlier) = earlier {
        txn.rollback().await?;
        blobs.discard(&staged).await;
        return Ok(if earlier.sha256 == new.sha256 {
            Recorded::Repeated(earlier)
        } else {
            Recorded::KeyReused
        });
    }
    if stored {
        blobs.discard(&staged).await;
    } else {
        blobs.settle(&staged, &new.sha256).await?;
    }
    let id = IdRow::find_by_statement(stmt(
        &txn,
        "INSERT INTO attachments (uploader_id, name, mime_type, size, sha256, width, height, idempotency_key, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        [
            new.uploader_id.into(),
            new.name.clone().into(),
            new.mime_type.clone().into(),
            new.size.into(),
            new.sha256.clone().into(),
            new.width.into(),
            new.height.into(),
            new.idempotency_key.clone().into(),
            now.into(),
        ],
    ))
    .one(&txn)
    .await?
    .ok_or_else(|| anyhow::anyhow!("attachment insert returned no id"))?
    .id;
    txn.commit().await?;
    Ok(Recorded::Created(Attachment {
        id,
        name: new.name,
        mime_type: new.mime_type,
        size: new.size,
        sha256: new.sha256,
        width: new.width,
        height: new.height,
    }))
}

#[derive(FromQueryResult)]
struct IdRow {
    id: i64,
}

/// Takes the content's row lock, creating the row if needed; whether its object was
/// stored already.
async fn lock_blob(
    txn: &DatabaseTransaction,
    sha256: &str,
    size: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let inserted = txn
        .execute_raw(stmt(
            txn,
            "INSERT INTO attachment_blobs (sha256, size, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (sha256) DO NOTHING",
            [sha256.into(), size.into(), now.into()],
        ))
        .await?
        .rows_affected()
        == 1;
    if inserted {
        return Ok(false);
    }
    // The row exists: lock it. If a sweep holding it deletes it before we get the lock,
    // the update finds nothing: the object is gone too, so the row is made again and
    // the upload stores the object.
    let locked = txn
        .execute_raw(stmt(
            txn,
            "UPDATE attachment_blobs SET size = size WHERE sha256 = $1",
            [sha256.into()],
        ))
        .await?
        .rows_affected()
        == 1;
    if !locked {
        txn.execute_raw(stmt(
            txn,
            "INSERT INTO attachment_blobs (sha256, size, created_at) VALUES ($1, $2, $3)",
            [sha256.into(), size.into(), now.into()],
        ))
        .await?;
    }
    Ok(locked)
}

async fn find_one<C: ConnectionTrait>(
    db: &C,
    condition: &str,
    values: impl IntoIterator<Item = sea_orm::Value>,
) -> anyhow::Result<Option<Attachment>> {
    Ok(Attachment::find_by_statement(stmt(
        db,
        &format!("SELECT {COLUMNS} FROM attachments a WHERE {condition} ORDER BY a.id LIMIT 1"),
        values,
    ))
    .one(db)
    .await?)
}

/// These attachments by id, each with its uploader (what a send must check).
pub async fn with_uploaders<C: ConnectionTrait>(
    db: &C,
    ids: &[i64],
) -> anyhow::Result<HashMap<i64, (i64, Attachment)>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let placeholders = (1..=ids.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Owned::find_by_statement(stmt(
        db,
        &format!("SELECT a.uploader_id, {COLUMNS} FROM attachments a WHERE a.id IN ({placeholders})"),
        ids.iter().map(|id| (*id).into()),
    ))
    .all(db)
    .await?
    .into_iter()
    .map(|o| {
        let attachment = Attachment {
            id: o.id,
            name: o.name,
            mime_type: o.mime_type,
            size: o.size,
            sha256: o.sha256,
            width: o.width,
            height: o.height,
        };
        (o.id, (o.uploader_id, attachment))
    })
    .collect())
}

/// The attachment if `user` may download it: they uploaded it, or they are a current
/// member of a conversation where a message (not deleted) carries it.
pub async fn readable<C: ConnectionTrait>(db: &C, id: i64, user: i64) -> anyhow::Result<Option<Attachment>> {
    find_one(
        db,
        "a.id = $1 AND (a.uploader_id = $2 OR EXISTS (\
           SELECT 1 FROM messages m JOIN conversation_members cm \
             ON cm.conversation_id = m.conversation_id AND cm.user_id = $2 AND cm.left_at IS NULL \
           WHERE m.attachment_id = a.id AND m.deleted_at IS NULL))",
        [id.into(), user.into()],
    )
    .await
}

#[derive(FromQueryResult)]
struct Orphan {
    id: i64,
    sha256: String,
}

/// Up to `limit` attachments created before `cutoff` that no message carries, by content.
pub async fn orphans(
    db: &DatabaseConnection,
    cutoff: DateTime<Utc>,
    limit: u64,
) -> anyhow::Result<Vec<(String, Vec<i64>)>> {
    let rows = Orphan::find_by_statement(stmt(
        db,
        "SELECT a.id, a.sha256 FROM attachments a WHERE a.created_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.attachment_id = a.id) \
         ORDER BY a.id LIMIT $2",
        [cutoff.into(), (limit as i64).into()],
    ))
    .all(db)
    .await?;
    let mut by_content: Vec<(String, Vec<i64>)> = Vec::new();
    for r in rows {
        match by_content.iter_mut().find(|(sha, _)| *sha == r.sha256) {
            Some((_, ids)) => ids.push(r.id),
            None => by_content.push((r.sha256, vec![r.id])),
        }
    }
    Ok(by_content)
}

#[derive(FromQueryResult)]
struct Count {
    n: i64,
}

/// Removes these attachment rows of one content (those a message took meanwhile stay),
/// and the content itself once no row needs it. Returns how many rows went.
pub async fn remove_orphans(
    db: &DatabaseConnection,
    blobs: &Blobs,
    sha256: &str,
    ids: &[i64],
) -> anyhow::Result<u64> {
    let txn = super::begin_write(db).await?;
    txn.execute_raw(stmt(
        &txn,
        "UPDATE attachment_blobs SET size = size WHERE sha256 = $1",
        [sha256.into()],
    ))
    .await?;
    let mut removed = 0;
    for id in ids {
        removed += txn
            .execute_raw(stmt(
                &txn,
                "DELETE FROM attachments WHERE id = $1 \
                 AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.attachment_id = $1)",
                [(*id).into()],
            ))
            .await?
            .rows_affected();
    }
    let left = Count::find_by_statement(stmt(
        &txn,
        "SELECT COUNT(*) AS n FROM attachments WHERE sha256 = $1",
        [sha256.into()],
    ))
    .one(&txn)
    .await?
    .map_or(0, |c| c.n);
    if left == 0 {
        // Deleted while the row is locked: no upload of this content can record itself
        // until the row is gone, and then it stores the object again.
        blobs.remove(sha256).await?;
        txn.execute_raw(stmt(
            &txn,
            "DELETE FROM attachment_blobs WHERE sha256 = $1",
            [sha256.into()],
        ))
        .await?;
    }
    txn.commit().await?;
    Ok(removed)
}
