//! The outbox worker: claims due hooks (from any node's sends), posts them, and
//! reschedules or removes each by the retry rules.
use std::{collections::HashMap, sync::Arc, time::Duration};

use futures_util::{StreamExt, stream};
use metrics::counter;
use sea_orm::DatabaseConnection;
use tokio::sync::Notify;

use super::{
    body::{HookFacts, render},
    config::PushConfig,
    retry::{Attempt, Next, Policy},
    sender::Sender,
};
use crate::{
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

pub struct Worker {
    pub db: DatabaseConnection,
    pub config: Arc<PushConfig>,
    pub sender: Sender,
    pub wake: Arc<Notify>,
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
            let now = store::now();
            match push_outbox::claim(&self.db, now, now + self.lease(), CLAIM).await {
                Ok(hooks) if !hooks.is_empty() => {
                    self.post_all(hooks).await;
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = ?e, "claiming push hooks failed"),
            }
            let wait = match push_outbox::earliest_due(&self.db).await {
                Ok(Some(at)) => (at - store::now()).to_std().unwrap_or(Duration::ZERO).min(POLL),
                _ => POLL,
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
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
        let jobs = hooks.into_iter().map(|hook| {
            let ctx = context.remove(&hook.id);
            self.post_one(hook, ctx)
        });
        stream::iter(jobs)
            .buffer_unordered(IN_FLIGHT)
            .collect::<Vec<()>>()
            .await;
    }

    async fn post_one(&self, hook: DueHook, ctx: Option<HookContext>) {
        // Deleted since, or a device got it in the meantime: nobody needs a nudge.
        let ctx = match ctx {
            Some(ctx) if ctx.deleted_at.is_none() && ctx.delivered_seq < hook.seq => ctx,
            _ => {
                counter!(monitoring::PUSH_DROPPED, "reason" => "obsolete").increment(1);
                return self.forget(hook.id).await;
            }
        };
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
                self.forget(hook.id).await;
            }
            Next::RetryAt(at) => {
                if let Err(e) = push_outbox::retry_at(&self.db, hook.id, at).await {
                    tracing::warn!(error = ?e, "rescheduling a push hook failed (it returns when its lease ends)");
                }
            }
            Next::Drop(reason) => {
                tracing::warn!(
                    delivery_id = hook.delivery_id,
                    attempts = hook.attempts,
                    reason = reason.label(),
                    "push hook dropped"
                );
                counter!(monitoring::PUSH_DROPPED, "reason" => reason.label()).increment(1);
                self.forget(hook.id).await;
            }
        }
    }

    async fn forget(&self, id: i64) {
        if let Err(e) = push_outbox::remove(&self.db, &[id]).await {
            // Leased: it is posted again when the lease ends; the receiver drops the repeat.
            tracing::warn!(error = ?e, "removing a push hook failed");
        }
    }
}
