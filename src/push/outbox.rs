//! The outbox worker: claims due hooks (from any node's sends), posts them, and
//! reschedules or removes each by the retry rules.
use std::{collections::HashMap, sync::Arc, time::Duration};

use futures_util::{StreamExt, stream};
use metrics::counter;
use sea_orm::DatabaseConnection;
use tokio::sync::Notify;

use super::{
    body::{HookFacts, render},
    coalesce::{Merged, merge},
    retry::{Attempt, Next, Policy},
    sender::Sender,
};
use crate::{
    config::PushConfig,
    monitoring,
    store::{
        self,
        push_outbox::{self, DueHook, HookContext},
    },
};

/// Hooks claimed at once, and posted at once.
const CLAIM: u64 = 64;
const IN_FLIGHT: usize = 16;
/// The longest sleep between looks at the outbox: other nodes' hooks and leases that ran
/// out are noticed within it (this node's own sends wake the worker at once).
const POLL: Duration = Duration::from_secs(1);

/// One node's outbox worker (every node runs one; claims keep them apart).
pub struct Worker {
    pub db: DatabaseConnection,
    pub config: Arc<PushConfig>,
    pub sender: Sender,
    pub wake: Arc<Notify>,
}

/// A claimed hook with its message as it now stands.
struct Live {
    hook: DueHook,
    ctx: HookContext,
}

impl Worker {
    fn policy(&self) -> Policy {
        Policy {
            max_attempts: self.config.max_attempts,
            max_age: self.config.max_age,
            base: self.config.retry_base,
            max: self.config.retry_max,
        }
    }

    /// A claimed hook is this node's until its lease ends: long enough for a POST that
    /// times out, and then some.
    fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config.timeout * 2 + Duration::from_secs(5))
            .unwrap_or(chrono::Duration::MAX)
    }

    pub async fn run(self) {
        loop {
            // A read first: an idle outbox costs no write (SQLite's write lock is the
            // message writer's).
            let now = store::now();
            let wait = match push_outbox::earliest_due(&self.db).await {
                Ok(Some(at)) if at <= now => match self.claim_and_post(now).await {
                    true => continue,
                    false => POLL,
                },
                Ok(Some(at)) => (at - now).to_std().unwrap_or(Duration::ZERO).min(POLL),
                Ok(None) => POLL,
                Err(e) => {
                    tracing::warn!(error = ?e, "reading the push outbox failed");
                    POLL
                }
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Claims what is due and posts it; false when nothing was claimed (another node
    /// took it) or the claim failed.
    async fn claim_and_post(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        let lease_until = now + self.lease();
        match push_outbox::claim(&self.db, now, lease_until, CLAIM).await {
            Ok(mut hooks) if !hooks.is_empty() => {
                if self.config.coalesce_window().is_some() {
                    let mut users: Vec<i64> = hooks.iter().map(|h| h.user_id).collect();
                    users.sort_unstable();
                    users.dedup();
                    match push_outbox::claim_pending_of(&self.db, &users, lease_until).await {
                        Ok(more) => hooks.extend(more),
                        // They go on their own when due.
                        Err(e) => tracing::warn!(error = ?e, "claiming hooks to coalesce failed"),
                    }
                }
                self.post_all(hooks).await;
                true
            }
            Ok(_) => false,
            Err(e) => {
                tracing::warn!(error = ?e, "claiming push hooks failed");
                false
            }
        }
    }

    async fn post_all(&self, hooks: Vec<DueHook>) {
        let ids: Vec<i64> = hooks.iter().map(|h| h.id).collect();
        let mut context: HashMap<i64, HookContext> = match push_outbox::context(&self.db, &ids).await {
            Ok(rows) => rows.into_iter().map(|c| (c.id, c)).collect(),
            Err(e) => {
                // Leased: they come back when the lease ends.
                tracing::warn!(error = ?e, "reading push hooks' messages failed");
                return;
            }
        };
        let mut live = Vec::with_capacity(hooks.len());
        let mut obsolete = Vec::new();
        for hook in hooks {
            match context.remove(&hook.id) {
                // Deleted since, or a device got it in the meantime: nobody needs a nudge.
                Some(ctx) if ctx.deleted_at.is_none() && ctx.delivered_seq < hook.seq => {
                    live.push(Live { hook, ctx })
                }
                _ => obsolete.push(hook.id),
            }
        }
        counter!(monitoring::PUSH_DROPPED, "reason" => "obsolete").increment(obsolete.len() as u64);
        let posts = merge(live, self.config.coalesce_window().is_some(), |l| {
            (l.hook.id, l.hook.user_id, l.hook.message_id)
        });
        // The rows that are done (answered, given up, obsolete) leave in one statement
        // per claim: one write per hook would contend with the message writer.
        let mut done = obsolete;
        let finished = stream::iter(posts.into_iter().map(|post| self.post(post)))
            .buffer_unordered(IN_FLIGHT)
            .collect::<Vec<Option<Vec<i64>>>>()
            .await;
        done.extend(finished.into_iter().flatten().flatten());
        self.forget(&done).await;
    }

    /// Posts one hook and schedules its retry; returns its rows when they are done with.
    async fn post(&self, post: Merged<Live>) -> Option<Vec<i64>> {
        let Merged {
            lead: Live { hook, ctx },
            rows,
        } = post;
        let body = render(
            &HookFacts {
                delivery_id: hook.delivery_id.clone(),
                user_id: hook.user_id,
                conversation_id: hook.conversation_id,
                message_id: hook.message_id,
                seq: hook.seq,
                created_at: hook.created_at,
                sender_id: ctx.sender_id,
                sender_name: ctx.sender_name,
                content: ctx.content,
                encrypted: ctx.encrypted,
                count: rows.len(),
            },
            self.config.include,
        );
        let outcome = self.sender.post(&hook.delivery_id, hook.attempts, body).await;
        if outcome != Attempt::Delivered {
            counter!(monitoring::PUSH_FAILED_ATTEMPTS).increment(1);
        }
        let next = self.policy().next(
            &outcome,
            hook.attempts.max(1) as u32,
            hook.created_at,
            store::now(),
            rand::random::<f64>(),
        );
        match next {
            Next::Done => {
                counter!(monitoring::PUSH_SENT).increment(1);
                Some(rows)
            }
            Next::RetryAt(at) => {
                if let Err(e) = push_outbox::retry_at(&self.db, &rows, at).await {
                    tracing::warn!(error = ?e, "rescheduling a push hook failed (it returns when its lease ends)");
                }
                None
            }
            Next::Drop(reason) => {
                tracing::warn!(
                    delivery_id = hook.delivery_id,
                    attempts = hook.attempts,
                    reason = reason.label(),
                    "push hook dropped"
                );
                counter!(monitoring::PUSH_DROPPED, "reason" => reason.label()).increment(1);
                Some(rows)
            }
        }
    }

    async fn forget(&self, rows: &[i64]) {
        if rows.is_empty() {
            return;
        }
        if let Err(e) = push_outbox::remove(&self.db, rows).await {
            // Leased: posted again when the lease ends; the receiver drops the repeat.
            tracing::warn!(error = ?e, "removing push hooks failed");
        }
    }
}
