//! Removing uploads that no message carried within the orphan TTL. Every node sweeps;
//! two sweeps of one content serialise on its blob row (see `store::attachments`), so
//! running several nodes removes nothing twice and nothing still needed.
use std::time::Duration;

use sea_orm::DatabaseConnection;

use crate::store::{self, blobs::Blobs};

/// Attachments examined per round.
const ROUND: u64 = 500;

/// How long a staged upload may wait to be recorded before it counts as abandoned.
const STAGED_GRACE: chrono::TimeDelta = chrono::TimeDelta::hours(1);

pub async fn run(db: DatabaseConnection, blobs: Blobs, ttl: Duration, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match sweep(&db, &blobs, ttl).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "removed attachments no message carried"),
            // Tried again next round; nothing is half-removed (one transaction per content).
            Err(e) => tracing::warn!(error = ?e, "the attachment sweep failed"),
        }
    }
}

/// One round: returns how many attachment rows went.
async fn sweep(db: &DatabaseConnection, blobs: &Blobs, ttl: Duration) -> anyhow::Result<u64> {
    let cutoff = store::now() - chrono::Duration::from_std(ttl)?;
    let mut removed = 0;
    for (sha256, ids) in store::attachments::orphans(db, cutoff, ROUND).await? {
        removed += store::attachments::remove_orphans(db, blobs, &sha256, &ids).await?;
    }
    // An upload is recorded within moments of being staged (its object appears only once
    // complete); one staged an hour ago belongs to a node that stopped in between.
    let stale = blobs.purge_incoming(store::now() - STAGED_GRACE).await?;
    if stale > 0 {
        tracing::info!(stale, "removed staged uploads that were never recorded");
    }
    Ok(removed)
}
