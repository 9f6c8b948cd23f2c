//! Typing indicators: throttled, self-expiring, cleared by sending.
//!
//! Ephemeral by nature, so kept in memory on the typing user's node; losing it on a
//! restart only ends an indicator early.
use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

struct Entry {
    last_forwarded: Instant,
    generation: u64,
}

pub struct Typing {
    throttle: Duration,
    entries: Mutex<HashMap<(i64, i64), Entry>>,
    generation: Mutex<u64>,
}

/// What to do with a `typing: true`.
#[derive(Debug, PartialEq, Eq)]
pub struct Started {
    /// Whether to forward it (false: throttled).
    pub forward: bool,
    /// Expire with this generation unless something newer arrives first.
    pub generation: u64,
}

impl Typing {
    pub fn new(throttle: Duration) -> Self {
        Typing {
            throttle,
            entries: Mutex::default(),
            generation: Mutex::new(0),
        }
    }

    /// The user is typing in the conversation (again).
    pub fn start(&self, conversation: i64, user: i64, now: Instant) -> Started {
        let generation = {
            let mut g = self.generation.lock().expect("typing lock poisoned");
            *g += 1;
            *g
        };
        let mut entries = self.entries.lock().expect("typing lock poisoned");
        match entries.get_mut(&(conversation, user)) {
            Some(e) if now.duration_since(e.last_forwarded) < self.throttle => {
                e.generation = generation;
                Started {
                    forward: false,
                    generation,
                }
            }
            _ => {
                entries.insert(
                    (conversation, user),
                    Entry {
                        last_forwarded: now,
                        generation,
                    },
                );
                Started {
                    forward: true,
                    generation,
                }
            }
        }
    }

    /// The user stopped (or sent a message); true when receivers must hear `false`.
    pub fn stop(&self, conversation: i64, user: i64) -> bool {
        self.entries
            .lock()
            .expect("typing lock poisoned")
            .remove(&(conversation, user))
            .is_some()
    }

    /// The timeout for `generation` fired; true when receivers must hear `false`.
    pub fn expire(&self, conversation: i64, user: i64, generation: u64) -> bool {
        let mut entries = self.entries.lock().expect("typing lock poisoned");
        match entries.get(&(conversation, user)) {
            Some(e) if e.generation == generation => {
                entries.remove(&(conversation, user));
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_and_expires_only_the_latest() {
        let t = Typing::new(Duration::from_secs(2));
        let t0 = Instant::now();
        let first = t.start(1, 7, t0);
        assert!(first.forward);
        let second = t.start(1, 7, t0 + Duration::from_millis(500));
        assert!(!second.forward, "within the throttle interval");
        assert!(
            !t.expire(1, 7, first.generation),
            "a newer keystroke extends the indicator"
        );
        assert!(t.expire(1, 7, second.generation));
        assert!(
            t.start(1, 7, t0 + Duration::from_millis(600)).forward,
            "after expiry it forwards again"
        );
        assert!(t.stop(1, 7));
        assert!(!t.stop(1, 7));
        assert!(t.start(1, 7, t0 + Duration::from_secs(3)).forward);
    }
}
