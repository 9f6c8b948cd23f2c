//! When to try a failed hook again, and when to give up: pure rules, no I/O.
use std::time::Duration;

use chrono::{DateTime, Utc};

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// A 2xx answer: the receiver has it.
    Delivered,
    /// A network error, a timeout, a 5xx, 408 or 429: worth another try, after
    /// `retry_after` when the receiver said so.
    Transient { retry_after: Option<Duration> },
    /// Any other answer (a 4xx, a redirect): trying again would get the same.
    Refused(u16),
}

impl Attempt {
    /// Classifies an HTTP status and its `Retry-After` header.
    pub fn from_status(status: u16, retry_after: Option<&str>, now: DateTime<Utc>) -> Attempt {
        match status {
            200..=299 => Attempt::Delivered,
            408 | 429 | 500..=599 => Attempt::Transient {
                retry_after: retry_after.and_then(|v| parse_retry_after(v, now)),
            },
            other => Attempt::Refused(other),
        }
    }
}

/// What to do with a hook after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Done,
    RetryAt(DateTime<Utc>),
    Drop(DropReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// `PUSH_MAX_ATTEMPTS` attempts failed.
    Attempts,
    /// The next try would fall past `PUSH_MAX_AGE_SECS` after the message.
    Expired,
    /// The receiver refused it with a status that retrying cannot change.
    Refused,
}

impl DropReason {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::Attempts => "attempts",
            DropReason::Expired => "expired",
            DropReason::Refused => "refused",
        }
    }
}

/// The schedule of one deployment's retries.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub max_attempts: u32,
    pub max_age: Duration,
    pub base: Duration,
    pub max: Duration,
}

impl Policy {
    /// After attempt number `attempts` (1 for the first) of a hook for a message created
    /// at `created_at` ended as `outcome`. `jitter` in [0, 1) spreads retries of many
    /// hooks that failed together (a receiver coming back is not hit by all at once).
    pub fn next(
        &self,
        outcome: &Attempt,
        attempts: u32,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
        jitter: f64,
    ) -> Next {
        let retry_after = match outcome {
            Attempt::Delivered => return Next::Done,
            Attempt::Refused(_) => return Next::Drop(DropReason::Refused),
            Attempt::Transient { retry_after } => *retry_after,
        };
        if attempts >= self.max_attempts {
            return Next::Drop(DropReason::Attempts);
        }
        let wait = retry_after.unwrap_or_else(|| self.backoff(attempts, jitter));
        let at = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX / 2);
        let deadline =
            created_at + chrono::Duration::from_std(self.max_age).unwrap_or(chrono::Duration::MAX / 2);
        if at > deadline {
            Next::Drop(DropReason::Expired)
        } else {
            Next::RetryAt(at)
        }
    }

    /// Exponential, capped, with "equal jitter": half the step fixed, half random, so a
    /// retry never comes sooner than half its step.
    fn backoff(&self, attempts: u32, jitter: f64) -> Duration {
        let step = self
            .base
            .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1)))
            .min(self.max);
        step / 2 + step.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
    }
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3). Nonsense is ignored.
fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at: DateTime<Utc> = httpdate::parse_http_date(value).ok()?.into();
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            max_attempts: 5,
            max_age: Duration::from_secs(3600),
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    const FAILED: Attempt = Attempt::Transient { retry_after: None };

    #[test]
    fn statuses_are_classified() {
        assert_eq!(Attempt::from_status(204, None, at(0)), Attempt::Delivered);
        assert_eq!(Attempt::from_status(503, None, at(0)), FAILED);
        assert_eq!(
            Attempt::from_status(429, Some("7"), at(0)),
            Attempt::Transient {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(Attempt::from_status(404, None, at(0)), Attempt::Refused(404));
        assert_eq!(Attempt::from_status(301, None, at(0)), Attempt::Refused(301));
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now: DateTime<Utc> = DateTime::parse_from_rfc2822("Tue, 08 Dec 2026 00:00:00 GMT")
            .unwrap()
            .into();
        assert_eq!(
            parse_retry_after("Tue, 08 Dec 2026 00:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Mon, 07 Dec 2026 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_doubles_within_its_jitter_and_is_capped() {
        let p = policy();
        let wait = |attempts, jitter| match p.next(&FAILED, attempts, at(0), at(0), jitter) {
            Next::RetryAt(t) => (t - at(0)).num_milliseconds(),
            other => panic!("{other:?}"),
        };
        assert_eq!((wait(1, 0.0), wait(1, 0.999)), (500, 999));
        assert_eq!((wait(2, 0.0), wait(3, 0.0)), (1_000, 2_000));
        let p = Policy {
            max_attempts: 100,
            ..policy()
        };
        assert_eq!(
            p.next(&FAILED, 40, at(0), at(0), 0.0),
            Next::RetryAt(at(30)),
            "capped at half of 60 s plus jitter"
        );
    }

    #[test]
    fn retry_after_is_honoured() {
        let told = Attempt::Transient {
            retry_after: Some(Duration::from_secs(120)),
        };
        assert_eq!(policy().next(&told, 1, at(0), at(0), 0.5), Next::RetryAt(at(120)));
    }

    #[test]
    fn gives_up_after_the_attempts_or_the_age() {
        assert_eq!(
            policy().next(&FAILED, 5, at(0), at(0), 0.0),
            Next::Drop(DropReason::Attempts)
        );
        assert_eq!(
            policy().next(&FAILED, 1, at(0), at(3600), 0.0),
            Next::Drop(DropReason::Expired)
        );
        assert_eq!(
            policy().next(&Attempt::Refused(400), 1, at(0), at(0), 0.0),
            Next::Drop(DropReason::Refused)
        );
        assert_eq!(
            policy().next(&Attempt::Delivered, 5, at(0), at(0), 0.0),
            Next::Done
        );
    }
}
