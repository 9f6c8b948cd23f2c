//! The key directory's rules: who may publish, fetch and remove keys, and when a device
//! is told it runs low on one-time prekeys.
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use super::keys::{DeviceId, DeviceKeys, MAX_PREKEYS_HELD, Prekey, SignedPrekey};
use crate::{
    domain::{
        DomainError, DomainResult,
        messaging::{Messaging, Outcome},
    },
    store::{self, e2e_keys::DeviceRow},
};

/// What a device's owner sees of its published keys.
#[derive(Debug, Clone)]
pub struct DeviceStatus {
    pub device_id: i64,
    pub registration_id: i64,
    pub signed_prekey_id: i64,
    pub kyber_prekey_id: Option<i64>,
    /// Unclaimed one-time prekeys.
    pub one_time_prekeys: i64,
    pub updated_at: DateTime<Utc>,
}

impl From<DeviceRow> for DeviceStatus {
    fn from(d: DeviceRow) -> Self {
        DeviceStatus {
            device_id: d.device_id,
            registration_id: d.registration_id,
            signed_prekey_id: d.signed_prekey_id,
            kyber_prekey_id: d.kyber_prekey_id,
            one_time_prekeys: d.remaining,
            updated_at: d.updated_at,
        }
    }
}

/// One device's prekey bundle, as a session with it starts from.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub device_id: i64,
    pub registration_id: i64,
    pub identity_key: String,
    pub signed_prekey: SignedPrekey,
    pub kyber_prekey: Option<SignedPrekey>,
    /// Claimed for this fetch alone; None when the device has none left.
    pub one_time_prekey: Option<Prekey>,
}

/// The caller publishes (or replaces) the keys of one of their own devices. Only the
/// caller's own devices can be named: the user is the token's.
pub async fn publish(
    db: &DatabaseConnection,
    user: i64,
    device: DeviceId,
    keys: DeviceKeys,
) -> DomainResult<DeviceStatus> {
    store::e2e_keys::publish(db, user, device.get(), &keys, store::now()).await?;
    status(db, user, device).await
}

/// The caller adds one-time prekeys to one of their published devices.
pub async fn add_prekeys(
    db: &DatabaseConnection,
    user: i64,
    device: DeviceId,
    keys: Vec<Prekey>,
) -> DomainResult<DeviceStatus> {
    match store::e2e_keys::add_prekeys(db, user, device.get(), &keys, MAX_PREKEYS_HELD as i64).await? {
        None => Err(DomainError::DeviceNotFound),
        Some(Err(_)) => Err(DomainError::TooManyPrekeys(MAX_PREKEYS_HELD)),
        Some(Ok(_)) => status(db, user, device).await,
    }
}

/// One of the caller's devices as published, with its unclaimed prekey count.
pub async fn status(db: &DatabaseConnection, user: i64, device: DeviceId) -> DomainResult<DeviceStatus> {
    store::e2e_keys::device(db, user, device.get())
        .await?
        .map(DeviceStatus::from)
        .ok_or(DomainError::DeviceNotFound)
}

/// The caller withdraws one of their devices' keys (no new session can start with it).
pub async fn remove(db: &DatabaseConnection, user: i64, device: DeviceId) -> DomainResult<()> {
    if store::e2e_keys::remove(db, user, device.get()).await? {
        Ok(())
    } else {
        Err(DomainError::DeviceNotFound)
    }
}

/// Whether a device that has `remaining` prekeys after a claim must be told.
pub fn runs_low(remaining: i64, watermark: u64) -> bool {
    remaining < watermark as i64
}

/// `owner`'s bundles for `caller`: one per published device, each with one one-time
/// prekey claimed for this fetch. Any registered user may fetch them (a first direct
/// message needs a session before there is a conversation), except across a block.
/// Each device left with fewer than `watermark` prekeys by its claim hears `prekeys_low`.
pub async fn bundles(
    db: &DatabaseConnection,
    messaging: &Messaging,
    watermark: u64,
    caller: i64,
    owner: i64,
) -> DomainResult<Vec<Bundle>> {
    if store::users::existing_ids(db, &[owner]).await?.is_empty() {
        return Err(DomainError::UserNotFound);
    }
    if caller != owner && !store::blocks::between(db, &[(caller, owner)]).await?.is_empty() {
        return Err(DomainError::Blocked);
    }
    let mut bundles = Vec::new();
    for device in store::e2e_keys::devices(db, owner).await? {
        let (one_time_prekey, remaining) = store::e2e_keys::claim(db, owner, device.device_id).await?;
        if one_time_prekey.is_some() && runs_low(remaining, watermark) {
            messaging.announce_now(Outcome::PrekeysLow {
                user_id: owner,
                device_id: device.device_id,
                remaining,
            });
        }
        bundles.push(Bundle {
            device_id: device.device_id,
            registration_id: device.registration_id,
            identity_key: device.identity_key.clone(),
            signed_prekey: device.signed_prekey(),
            kyber_prekey: device.kyber_prekey(),
            one_time_prekey,
        });
    }
    Ok(bundles)
}

#[cfg(test)]
mod tests {
    use super::runs_low;

    #[test]
    fn low_means_below_the_watermark() {
        assert!(runs_low(9, 10));
        assert!(runs_low(0, 10));
        assert!(!runs_low(10, 10));
        assert!(!runs_low(0, 0), "a zero watermark turns the warning off");
    }
}
