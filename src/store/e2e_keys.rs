//! The key directory: each device's public keys and its unclaimed one-time prekeys.
//!
//! A claim deletes the prekey it hands out in the same statement that picks it, so a
//! key is handed out once however many fetches race. On PostgreSQL the pick skips rows
//! another claim holds (`FOR UPDATE SKIP LOCKED`): without it, two claims that picked
//! the same row would both wait on it, and the loser would delete nothing and hand out
//! no key although others remain. SQLite runs one writer at a time, so its statement
//! needs no lock clause.
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, FromQueryResult};

use super::stmt;
use crate::domain::e2e::keys::{DeviceKeys, Prekey, SignedPrekey};

/// A device's published keys as stored, with its unclaimed prekey count.
#[derive(Debug, Clone, FromQueryResult)]
pub struct DeviceRow {
    pub device_id: i64,
    pub registration_id: i64,
    pub identity_key: String,
    pub signed_prekey_id: i64,
    pub signed_prekey: String,
    pub signed_prekey_signature: String,
    pub kyber_prekey_id: Option<i64>,
    pub kyber_prekey: Option<String>,
    pub kyber_prekey_signature: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub remaining: i64,
}

impl DeviceRow {
    pub fn signed_prekey(&self) -> SignedPrekey {
        SignedPrekey {
            key_id: self.signed_prekey_id,
            public_key: self.signed_prekey.clone(),
            signature: self.signed_prekey_signature.clone(),
        }
    }

    pub fn kyber_prekey(&self) -> Option<SignedPrekey> {
        Some(SignedPrekey {
            key_id: self.kyber_prekey_id?,
            public_key: self.kyber_prekey.clone()?,
            signature: self.kyber_prekey_signature.clone()?,
        })
    }
}

const DEVICE_COLUMNS: &str = "d.device_id, d.registration_id, d.identity_key, d.signed_prekey_id, \
    d.signed_prekey, d.signed_prekey_signature, d.kyber_prekey_id, d.kyber_prekey, \
    d.kyber_prekey_signature, d.updated_at, \
    (SELECT COUNT(*) FROM one_time_prekeys p WHERE p.user_id = d.user_id AND p.device_id = d.device_id) AS remaining";

/// Publishes (or replaces) a device's keys; its one-time prekeys become exactly `keys`'.
/// Returns how many it holds.
pub async fn publish(
    db: &DatabaseConnection,
    user: i64,
    device: i64,
    keys: &DeviceKeys,
    now: DateTime<Utc>,
) -> anyhow::Result<i64> {
    let txn = super::begin_write(db).await?;
    let kyber = keys.kyber_prekey.as_ref();
    txn.execute_raw(stmt(
        &txn,
        "INSERT INTO device_keys (user_id, device_id, registration_id, identity_key, signed_prekey_id, \
           signed_prekey, signed_prekey_signature, kyber_prekey_id, kyber_prekey, kyber_prekey_signature, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (user_id, device_id) DO UPDATE SET registration_id = excluded.registration_id, \
           identity_key = excluded.identity_key, signed_prekey_id = excluded.signed_prekey_id, \
           signed_prekey = excluded.signed_prekey, signed_prekey_signature = excluded.signed_prekey_signature, \
           kyber_prekey_id = excluded.kyber_prekey_id, kyber_prekey = excluded.kyber_prekey, \
           kyber_prekey_signature = excluded.kyber_prekey_signature, updated_at = excluded.updated_at",
        [
            user.into(),
            device.into(),
            keys.registration_id.into(),
            keys.identity_key.clone().into(),
            keys.signed_prekey.key_id.into(),
            keys.signed_prekey.public_key.clone().into(),
            keys.signed_prekey.signature.clone().into(),
            kyber.map(|k| k.key_id).into(),
            kyber.map(|k| k.public_key.clone()).into(),
            kyber.map(|k| k.signature.clone()).into(),
            now.into(),
        ],
    ))
    .await?;
    txn.execute_raw(stmt(
        &txn,
        "DELETE FROM one_time_prekeys WHERE user_id = $1 AND device_id = $2",
        [user.into(), device.into()],
    ))
    .await?;
    insert_prekeys(&txn, user, device, &keys.one_time_prekeys).await?;
    let held = count(&txn, user, device).await?;
    txn.commit().await?;
    Ok(held)
}

/// Adds one-time prekeys to a published device (a key id it already holds is kept as
/// it was). None if the device has published no keys; `Err(held)` with nothing added if
/// it would then hold more than `max_held`.
pub async fn add_prekeys(
    db: &DatabaseConnection,
    user: i64,
    device: i64,
    keys: &[Prekey],
    max_held: i64,
) -> anyhow::Result<Option<Result<i64, i64>>> {
    let txn = super::begin_write(db).await?;
    // Locks the device's row: concurrent additions count one after another.
    let found = txn
        .execute_raw(stmt(
            &txn,
            "UPDATE device_keys SET updated_at = updated_at WHERE user_id = $1 AND device_id = $2",
            [user.into(), device.into()],
        ))
        .await?
        .rows_affected();
    if found == 0 {
        return Ok(None);
    }
    insert_prekeys(&txn, user, device, keys).await?;
    let held = count(&txn, user, device).await?;
    if held > max_held {
        // Dropping the transaction rolls the additions back.
        return Ok(Some(Err(held - keys.len() as i64)));
    }
    txn.commit().await?;
    Ok(Some(Ok(held)))
}

async fn insert_prekeys<C: ConnectionTrait>(
    txn: &C,
    user: i64,
    device: i64,
    keys: &[Prekey],
) -> anyhow::Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut values = vec![user.into(), device.into()];
    let mut tuples = Vec::with_capacity(keys.len());
    for k in keys {
        let at = values.len() + 1;
        tuples.push(format!("($1, $2, ${at}, ${})", at + 1));
        values.push(k.key_id.into());
        values.push(k.public_key.clone().into());
    }
    txn.execute_raw(stmt(
        txn,
        &format!(
            "INSERT INTO one_time_prekeys (user_id, device_id, key_id, public_key) VALUES {} \
             ON CONFLICT (user_id, device_id, key_id) DO NOTHING",
            tuples.join(", ")
        ),
        values,
    ))
    .await?;
    Ok(())
}

#[derive(FromQueryResult)]
struct Count {
    n: i64,
}

async fn count<C: ConnectionTrait>(db: &C, user: i64, device: i64) -> anyhow::Result<i64> {
    Ok(Count::find_by_statement(stmt(
        db,
        "SELECT COUNT(*) AS n FROM one_time_prekeys WHERE user_id = $1 AND device_id = $2",
        [user.into(), device.into()],
    ))
    .one(db)
    .await?
    .map_or(0, |c| c.n))
}

/// One device's keys, if published.
pub async fn device(db: &DatabaseConnection, user: i64, device: i64) -> anyhow::Result<Option<DeviceRow>> {
    Ok(DeviceRow::find_by_statement(stmt(
        db,
        &format!("SELECT {DEVICE_COLUMNS} FROM device_keys d WHERE d.user_id = $1 AND d.device_id = $2"),
        [user.into(), device.into()],
    ))
    .one(db)
    .await?)
}

/// Every published device of `user`, by device id.
pub async fn devices(db: &DatabaseConnection, user: i64) -> anyhow::Result<Vec<DeviceRow>> {
    Ok(DeviceRow::find_by_statement(stmt(
        db,
        &format!("SELECT {DEVICE_COLUMNS} FROM device_keys d WHERE d.user_id = $1 ORDER BY d.device_id"),
        [user.into()],
    ))
    .all(db)
    .await?)
}

#[derive(FromQueryResult)]
struct Claimed {
    key_id: i64,
    public_key: String,
}

/// Hands out one of the device's one-time prekeys (the oldest), deleting it; None when
/// it has none left. Also returns how many remain after the claim.
pub async fn claim(db: &DatabaseConnection, user: i64, device: i64) -> anyhow::Result<(Option<Prekey>, i64)> {
    let lock = match db.get_database_backend() {
        DbBackend::Postgres => "FOR UPDATE SKIP LOCKED",
        _ => "",
    };
    let claimed = Claimed::find_by_statement(stmt(
        db,
        &format!(
            "DELETE FROM one_time_prekeys WHERE id = (SELECT id FROM one_time_prekeys \
               WHERE user_id = $1 AND device_id = $2 ORDER BY id LIMIT 1 {lock}) \
             RETURNING key_id, public_key"
        ),
        [user.into(), device.into()],
    ))
    .one(db)
    .await?;
    let remaining = count(db, user, device).await?;
    Ok((
        claimed.map(|c| Prekey {
            key_id: c.key_id,
            public_key: c.public_key,
        }),
        remaining,
    ))
}

/// Removes a device's keys and its prekeys; false if it had published none.
pub async fn remove(db: &DatabaseConnection, user: i64, device: i64) -> anyhow::Result<bool> {
    let txn = super::begin_write(db).await?;
    txn.execute_raw(stmt(
        &txn,
        "DELETE FROM one_time_prekeys WHERE user_id = $1 AND device_id = $2",
        [user.into(), device.into()],
    ))
    .await?;
    let removed = txn
        .execute_raw(stmt(
            &txn,
            "DELETE FROM device_keys WHERE user_id = $1 AND device_id = $2",
            [user.into(), device.into()],
        ))
        .await?
        .rows_affected();
    txn.commit().await?;
    Ok(removed > 0)
}
