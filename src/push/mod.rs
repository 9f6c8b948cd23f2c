//! Push hooks: a signed webhook (`PUSH_WEBHOOK_URL`) for each member with no device
//! connected when a message for them is stored, so an operator can bridge to FCM or
//! APNs. Off when the URL is unset.
//!
//! The writer hands every committed batch to [`Push`] (no database work on its path);
//! a task picks the recipients (one query per batch for members and mutes, presence
//! from memory) and writes their hooks to the `push_outbox` table in one statement;
//! the [`outbox`] worker of any node claims due hooks and posts them, retrying with
//! backoff. A hook is written shortly after its message commits, not with it: a node
//! that dies in that gap (milliseconds) loses those hooks, never the messages.
pub mod body;
pub mod coalesce;
pub mod outbox;
pub mod recipients;
pub mod retry;
pub mod sender;
pub mod signature;

use std::{collections::HashMap, sync::Arc};

use metrics::counter;
use sea_orm::DatabaseConnection;
use tokio::sync::{Notify, mpsc};

use crate::config::PushConfig;
use crate::{
    domain::{
        messaging::{AfterCommit, StoredMessage},
        presence::Presence,
    },
    monitoring,
    store::{self, push_outbox},
};
use recipients::Sent;

/// Conversations per members query (well inside SQLite's parameter limit).
const CONVERSATIONS_PER_QUERY: usize = 500;

/// The writer's side: hands committed messages to the enqueuing task.
pub struct Push {
    tx: mpsc::UnboundedSender<Vec<Sent>>,
}

impl AfterCommit for Push {
    fn stored(&self, messages: &[&StoredMessage]) {
        if !messages.is_empty() {
            let _ = self.tx.send(messages.iter().map(|m| Sent::from(*m)).collect());
        }
    }
}

/// Starts the enqueuing task and the outbox worker; None when hooks are off.
pub fn start(
    db: &DatabaseConnection,
    presence: Arc<Presence>,
    config: Option<&PushConfig>,
) -> anyhow::Result<Option<Arc<Push>>> {
    let Some(config) = config else {
        return Ok(None);
    };
    let wake = Arc::new(Notify::new());
    let worker = outbox::Worker {
        db: db.clone(),
        config: Arc::new(config.clone()),
        sender: sender::Sender::new(config)?,
        wake: wake.clone(),
    };
    tokio::spawn(worker.run());
    let (tx, rx) = mpsc::unbounded_channel();
    let window = config.coalesce_window().unwrap_or_default();
    tokio::spawn(enqueue(db.clone(), presence, rx, wake, window));
    Ok(Some(Arc::new(Push { tx })))
}

/// Writes the hooks of what the writer committed, several batches at a time when it
/// falls behind.
async fn enqueue(
    db: DatabaseConnection,
    presence: Arc<Presence>,
    mut rx: mpsc::UnboundedReceiver<Vec<Sent>>,
    wake: Arc<Notify>,
    coalesce: std::time::Duration,
) {
    let mut batches = Vec::new();
    while rx.recv_many(&mut batches, 64).await > 0 {
        let sent: Vec<Sent> = batches.drain(..).flatten().collect();
        let now = store::now();
        let mut conversations: Vec<i64> = sent.iter().map(|m| m.conversation_id).collect();
        conversations.sort_unstable();
        conversations.dedup();
        let mut members: HashMap<i64, Vec<i64>> = HashMap::new();
        let mut failed = false;
        for chunk in conversations.chunks(CONVERSATIONS_PER_QUERY) {
            match push_outbox::unmuted_members(&db, chunk, now).await {
                Ok(rows) => {
                    for (conversation, user) in rows {
                        members.entry(conversation).or_default().push(user);
                    }
                }
                Err(e) => {
                    tracing::error!(error = ?e, messages = sent.len(), "push hooks not queued: members unavailable");
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            counter!(monitoring::PUSH_DROPPED, "reason" => "unqueued").increment(sent.len() as u64);
            continue;
        }
        let hooks = recipients::select(
            &sent,
            &members,
            |user| presence.has_device_anywhere(user),
            || uuid::Uuid::new_v4().to_string(),
        );
        if hooks.is_empty() {
            continue;
        }
        // With coalescing, the first attempt waits out the window, so a burst's hooks
        // fall due together and go as one.
        let due = now + chrono::Duration::from_std(coalesce).unwrap_or_default();
        match push_outbox::enqueue(&db, &hooks, due).await {
            Ok(()) => {
                counter!(monitoring::PUSH_QUEUED).increment(hooks.len() as u64);
                wake.notify_one();
            }
            Err(e) => {
                tracing::error!(error = ?e, hooks = hooks.len(), "push hooks not queued");
                counter!(monitoring::PUSH_DROPPED, "reason" => "unqueued").increment(hooks.len() as u64);
            }
        }
    }
}
