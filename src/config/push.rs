//! `PUSH_*` settings: where hooks go, how they are signed, what they may carry and how
//! long they are retried. Read once with the rest of [`super::Config`].
use std::time::Duration;

use super::ConfigError;

/// What a hook may carry beyond ids and times; each level includes the one before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Include {
    /// Ids, seq and time only: the receiver fetches the rest with the user's token.
    #[default]
    None,
    /// Also the sender's id and display name.
    Sender,
    /// Also the start of the text (never for a deleted message).
    Preview,
}

/// Push hook settings, validated.
#[derive(Clone)]
pub struct PushConfig {
    pub url: url::Url,
    /// HMAC-SHA256 key for `X-RC-Signature`.
    pub secret: Vec<u8>,
    pub include: Include,
    /// Attempts per hook before it is dropped (at least 1).
    pub max_attempts: u32,
    /// A hook still unanswered this long after its message is dropped.
    pub max_age: Duration,
    /// The first retry waits about this long, each next one twice as long, up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// One POST may take this long before it counts as a failed attempt.
    pub timeout: Duration,
    /// Zero: one hook per message. Otherwise a hook waits this long, and the hooks of
    /// one user due together go as one.
    pub coalesce: Duration,
}

/// Everything but the secret, which must never reach a log.
impl std::fmt::Debug for PushConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushConfig")
            .field("url", &self.url.as_str())
            .field("secret", &"<redacted>")
            .field("include", &self.include)
            .field("max_attempts", &self.max_attempts)
            .field("max_age", &self.max_age)
            .field("retry_base", &self.retry_base)
            .field("retry_max", &self.retry_max)
            .field("timeout", &self.timeout)
            .field("coalesce", &self.coalesce)
            .finish()
    }
}

const MIN_SECRET_BYTES: usize = 32;

impl PushConfig {
    /// The coalescing window, when coalescing is on.
    pub fn coalesce_window(&self) -> Option<Duration> {
        (!self.coalesce.is_zero()).then_some(self.coalesce)
    }

    /// None when `PUSH_WEBHOOK_URL` is unset (hooks off).
    pub fn from_env(var: impl Fn(&'static str) -> Option<String>) -> Result<Option<PushConfig>, ConfigError> {
        let bad = |var: &'static str, why: &str| ConfigError {
            var,
            why: why.to_owned(),
        };
        let Some(raw_url) = var("PUSH_WEBHOOK_URL") else {
            return Ok(None);
        };
        let url = url::Url::parse(raw_url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| bad("PUSH_WEBHOOK_URL", "must be an http:// or https:// URL"))?;
        let secret = var("PUSH_WEBHOOK_SECRET")
            .ok_or_else(|| bad("PUSH_WEBHOOK_SECRET", "required when PUSH_WEBHOOK_URL is set"))?;
        if secret.len() < MIN_SECRET_BYTES {
            return Err(bad("PUSH_WEBHOOK_SECRET", "must be at least 32 bytes"));
        }
        let include = match var("PUSH_INCLUDE")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("none") => Include::None,
            Some("sender") => Include::Sender,
            Some("preview") => Include::Preview,
            Some(_) => return Err(bad("PUSH_INCLUDE", "must be none, sender or preview")),
        };
        let number = |name: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| {
            let value = match var(name) {
                None => default,
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| bad(name, &format!("`{v}` is not a whole number")))?,
            };
            if range.contains(&value) {
                Ok(value)
            } else {
                Err(bad(
                    name,
                    &format!("must be between {} and {}", range.start(), range.end()),
                ))
            }
        };
        const DAY_SECS: u64 = 24 * 3600;
        let retry_base = number("PUSH_RETRY_BASE_MS", 1_000, 1..=3_600_000)?;
        let retry_max = number("PUSH_RETRY_MAX_MS", 300_000, 1..=DAY_SECS * 1000)?;
        if retry_max < retry_base {
            return Err(bad("PUSH_RETRY_MAX_MS", "must not be below PUSH_RETRY_BASE_MS"));
        }
        Ok(Some(PushConfig {
            url,
            secret: secret.into_bytes(),
            include,
            max_attempts: number("PUSH_MAX_ATTEMPTS", 8, 1..=100)? as u32,
            max_age: Duration::from_secs(number("PUSH_MAX_AGE_SECS", 3_600, 1..=7 * DAY_SECS)?),
            retry_base: Duration::from_millis(retry_base),
            retry_max: Duration::from_millis(retry_max),
            timeout: Duration::from_millis(number("PUSH_TIMEOUT_MS", 10_000, 1..=300_000)?),
            coalesce: Duration::from_millis(number("PUSH_COALESCE_MS", 0, 0..=600_000)?),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&'static str, &str)]) -> Result<Option<PushConfig>, ConfigError> {
        let env: HashMap<&str, String> = pairs.iter().map(|(k, v)| (*k, v.to_string())).collect();
        PushConfig::from_env(|name| env.get(name).cloned())
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn off_without_a_url() {
        assert!(read(&[]).unwrap().is_none());
    }

    #[test]
    fn defaults_carry_nothing_but_ids() {
        let c = read(&[
            ("PUSH_WEBHOOK_URL", "https://hooks.example/rc"),
            ("PUSH_WEBHOOK_SECRET", SECRET),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.include, Include::None);
        assert_eq!(c.max_attempts, 8);
        assert_eq!(c.retry_base, Duration::from_secs(1));
    }

    #[test]
    fn refusals_name_the_variable() {
        let url = ("PUSH_WEBHOOK_URL", "https://hooks.example/rc");
        let secret = ("PUSH_WEBHOOK_SECRET", SECRET);
        assert_eq!(read(&[url]).unwrap_err().var, "PUSH_WEBHOOK_SECRET");
        assert_eq!(
            read(&[url, ("PUSH_WEBHOOK_SECRET", "short")]).unwrap_err().var,
            "PUSH_WEBHOOK_SECRET"
        );
        assert_eq!(
            read(&[("PUSH_WEBHOOK_URL", "ftp://x"), secret]).unwrap_err().var,
            "PUSH_WEBHOOK_URL"
        );
        assert_eq!(
            read(&[url, secret, ("PUSH_INCLUDE", "all")]).unwrap_err().var,
            "PUSH_INCLUDE"
        );
        assert_eq!(
            read(&[url, secret, ("PUSH_MAX_ATTEMPTS", "0")]).unwrap_err().var,
            "PUSH_MAX_ATTEMPTS"
        );
        assert_eq!(
            read(&[
                url,
                secret,
                ("PUSH_RETRY_BASE_MS", "500"),
                ("PUSH_RETRY_MAX_MS", "100")
            ])
            .unwrap_err()
            .var,
            "PUSH_RETRY_MAX_MS"
        );
    }
}
