//! Limits that keep one user (or one address) from costing everyone else: sends,
//! typing and `sync` per user as token buckets, and sockets per user and in total.
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
                for rate in [&limits.sends, &limits.typing, &limits.sync] {
                    rate.forget_idle();
                }
            }
        });
    }
}

/// Counts sockets per user and in total; a slot is held by an [`Admission`].
pub struct Sockets {
    per_user: usize,
    total: usize,
    now: AtomicUsize,
    by_user: Mutex<HashMap<i64, usize>>,
}

/// Why a socket was not admitted; the text reaches the client as `connect_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SocketRefusal {
    #[error("too many connections for this user")]
    PerUser,
    #[error("server connection limit reached")]
    Total,
}

impl Sockets {
    /// Limits of 0 are off.
    pub fn new(per_user: usize, total: usize) -> Arc<Self> {
        Arc::new(Sockets {
            per_user,
            total,
            now: AtomicUsize::new(0),
            by_user: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a slot for one of `user`'s sockets, released when the admission is dropped.
    pub fn admit(self: &Arc<Self>, user: i64) -> Result<Admission, SocketRefusal> {
        let mut by_user = self.by_user.lock().expect("socket count lock poisoned");
        if self.total != 0 && self.now.load(Ordering::SeqCst) >= self.total {
            return Err(SocketRefusal::Total);
        }
        let count = by_user.entry(user).or_default();
        if self.per_user != 0 && *count >= self.per_user {
            return Err(SocketRefusal::PerUser);
        }
        *count += 1;
        self.now.fetch_add(1, Ordering::SeqCst);
        Ok(Admission {
            sockets: self.clone(),
            user,
        })
    }

    /// Sockets admitted now.
    pub fn count(&self) -> usize {
        self.now.load(Ordering::SeqCst)
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
        self.sockets.now.fetch_sub(1, Ordering::SeqCst);
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
    fn sockets_are_counted_per_user_and_in_total() {
        let sockets = Sockets::new(2, 3);
        let a1 = sockets.admit(1).unwrap();
        let _a2 = sockets.admit(1).unwrap();
        assert_eq!(sockets.admit(1).err(), Some(SocketRefusal::PerUser));
        let _b1 = sockets.admit(2).unwrap();
        assert_eq!(sockets.admit(3).err(), Some(SocketRefusal::Total));
        drop(a1);
        assert_eq!(sockets.count(), 2);
        assert!(sockets.admit(1).is_ok(), "a closed socket frees its slot");
    }
}
