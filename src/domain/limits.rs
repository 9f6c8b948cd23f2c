//! Limits that keep one user (or one address) from costing everyone else: sends,
//! typing and `sync` per user as token buckets, sockets per user, and connections in total.
use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};

use super::{DomainError, DomainResult};

/// A per-user token bucket; `None` when turned off (a rate of 0).
#[derive(Clone)]
pub struct UserRate(Option<Arc<DefaultKeyedRateLimiter<i64>>>);

impl UserRate {
    /// `per_sec` tokens a second, up to `burst` at once; 0 turns it off.
    pub fn new(per_sec: u32, burst: u32) -> Self {
        let (Some(rate), Some(burst)) = (NonZeroU32::new(per_sec), NonZeroU32::new(burst.max(per_sec)))
        else {
            return UserRate(None);
        };
        UserRate(Some(Arc::new(RateLimiter::keyed(
            Quota::per_second(rate).allow_burst(burst),
        ))))
    }

    /// Takes one token for `user`, or says how long until one is free.
    pub fn check(&self, user: i64) -> DomainResult<()> {
        let Some(limiter) = &self.0 else {
            return Ok(());
        };
        limiter.check_key(&user).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            DomainError::RateLimited {
                retry_after_ms: wait.as_millis().max(1) as u64,
            }
        })
    }

    /// Forgets users whose buckets are full again (memory stays bounded by active users).
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.0 {
            limiter.retain_recent();
        }
    }
}

/// Every limit a transport checks, built once from the configuration.
#[derive(Clone)]
pub struct Limits {
    pub sends: UserRate,
    pub typing: UserRate,
    pub sync: UserRate,
    /// Searches and key-bundle fetches.
    pub lookups: UserRate,
    pub sockets: Arc<Sockets>,
}

impl Limits {
    /// Drops the buckets of users who are back to a full bucket, every minute, so the
    /// limiters hold only recently active users.
    pub fn spawn_sweeper(&self) {
        let limits = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                every.tick().await;
                for rate in [&limits.sends, &limits.typing, &limits.sync, &limits.lookups] {
                    rate.forget_idle();
                }
            }
        });
    }
}

/// Counts sockets per user; a slot is held by an [`Admission`].
pub struct Sockets {
    per_user: usize,
    by_user: Mutex<HashMap<i64, usize>>,
}

/// Why a socket was not admitted; the text reaches the client as `connect_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SocketRefusal {
    #[error("too many connections for this user")]
    PerUser,
}

impl Sockets {
    /// A limit of 0 is off.
    pub fn new(per_user: usize) -> Arc<Self> {
        Arc::new(Sockets {
            per_user,
            by_user: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a slot for one of `user`'s sockets, released when the admission is dropped.
    pub fn admit(self: &Arc<Self>, user: i64) -> Result<Admission, SocketRefusal> {
        let mut by_user = self.by_user.lock().expect("socket count lock poisoned");
        let count = by_user.entry(user).or_default();
        if self.per_user != 0 && *count >= self.per_user {
            return Err(SocketRefusal::PerUser);
        }
        *count += 1;
        Ok(Admission {
            sockets: self.clone(),
            user,
        })
    }
}

/// One admitted socket's slot.
pub struct Admission {
    sockets: Arc<Sockets>,
    user: i64,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut by_user = self.sockets.by_user.lock().expect("socket count lock poisoned");
        if let Some(count) = by_user.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                by_user.remove(&self.user);
            }
        }
    }
}

/// Counts open connections, authenticated or not, against `MAX_CONNECTIONS`.
pub struct Connections {
    max: usize,
    open: AtomicUsize,
    /// Set on shutdown: no new connection is admitted.
    closed: std::sync::atomic::AtomicBool,
}

impl Connections {
    /// A limit of 0 is off.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Connections {
            max,
            open: AtomicUsize::new(0),
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// A slot for one more connection, freed when the last clone of it is dropped; none
    /// when the limit is reached.
    pub fn admit(self: &Arc<Self>) -> Option<ConnectionSlot> {
        if self.closed.load(Ordering::SeqCst) {
            return None;
        }
        let taken = self
            .open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |open| {
                (self.max == 0 || open < self.max).then_some(open + 1)
            });
        taken
            .ok()
            .map(|_| ConnectionSlot(Arc::new(SlotInner(self.clone()))))
    }

    /// Admits no more connections (shutdown).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Connections open now.
    pub fn count(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

/// One connection's slot; clones share it (request extensions must be `Clone`).
#[derive(Clone)]
pub struct ConnectionSlot(#[allow(dead_code)] Arc<SlotInner>);

struct SlotInner(Arc<Connections>);

impl Drop for SlotInner {
    fn drop(&mut self) {
        let open = self.0.open.fetch_sub(1, Ordering::SeqCst) - 1;
        metrics::gauge!(crate::monitoring::CONNECTIONS_OPEN).set(open as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_says_when() {
        let rate = UserRate::new(1, 3);
        for _ in 0..3 {
            assert!(rate.check(7).is_ok());
        }
        match rate.check(7) {
            Err(DomainError::RateLimited { retry_after_ms }) => {
                assert!((1..=1_000).contains(&retry_after_ms))
            }
            other => panic!("expected rate_limited, got {other:?}"),
        }
        assert!(rate.check(8).is_ok(), "users have their own buckets");
        assert!(UserRate::new(0, 0).check(7).is_ok(), "0 turns it off");
    }

    #[test]
    fn sockets_are_counted_per_user() {
        let sockets = Sockets::new(2);
        let a1 = sockets.admit(1).unwrap();
        let _a2 = sockets.admit(1).unwrap();
        assert_eq!(sockets.admit(1).err(), Some(SocketRefusal::PerUser));
        assert!(sockets.admit(2).is_ok(), "users have their own count");
        drop(a1);
        assert!(sockets.admit(1).is_ok(), "a closed socket frees its slot");
    }

    #[test]
    fn connections_are_counted_until_the_last_clone_of_a_slot_goes() {
        let connections = Connections::new(2);
        let a = connections.admit().unwrap();
        let a_kept = a.clone();
        let _b = connections.admit().unwrap();
        assert!(connections.admit().is_none());
        drop(a);
        assert!(connections.admit().is_none(), "a clone still holds the slot");
        drop(a_kept);
        assert_eq!(connections.count(), 1);
        assert!(connections.admit().is_some());
        assert!(Connections::new(0).admit().is_some(), "0 turns it off");
    }
}
