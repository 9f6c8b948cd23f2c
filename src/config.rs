//! Environment → typed, validated configuration. Read once at start-up.
use std::{env, path::PathBuf, time::Duration};

use rand::RngCore;
use thiserror::Error;

/// Default database: an SQLite file in the working directory, created on first run.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://realtime-chat.db?mode=rwc";
const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Error)]
#[error("{var}: {why}")]
pub struct ConfigError {
    pub var: &'static str,
    pub why: String,
}

fn bad(var: &'static str, why: impl Into<String>) -> ConfigError {
    ConfigError { var, why: why.into() }
}

/// Which origins may call us from a browser.
#[derive(Clone, Debug)]
pub enum CorsOrigins {
    Any,
    List(Vec<String>),
}

#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: String,
    pub jwt_secret: Vec<u8>,
    pub jwt_expires_in_hours: i64,
    pub host: String,
    pub port: u16,
    pub cors_origins: CorsOrigins,
    /// Upper bound for a message's content, in UTF-8 bytes.
    pub max_message_bytes: usize,
    /// How long a user with no device still looks online (a quick reconnect does not flap).
    pub presence_grace: Duration,
    /// At most one `typing: true` per user and conversation is forwarded per this interval.
    pub typing_throttle: Duration,
    /// A `typing: true` without follow-up turns into `false` after this long.
    pub typing_timeout: Duration,
    /// Most queued messages handed to a connecting device in one page; pages follow
    /// until its queue is drained.
    pub catch_up_limit: u64,
    /// Most current members of one group.
    pub group_max_members: usize,
}

fn var(name: &'static str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| bad(name, format!("`{v}` is not a valid value"))),
    }
}

impl Config {
    /// Reads the environment (and `.env` if present).
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        let database_url = var("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        let is_sqlite = database_url.starts_with("sqlite:");
        if !is_sqlite
            && !database_url.starts_with("postgres://")
            && !database_url.starts_with("postgresql://")
        {
            return Err(bad("DATABASE_URL", "must start with sqlite:// or postgres://"));
        }
        let jwt_expires_in_hours: i64 = parse("JWT_EXPIRES_IN_HOURS", 24)?;
        if !(1..=24 * 365).contains(&jwt_expires_in_hours) {
            return Err(bad("JWT_EXPIRES_IN_HOURS", "must be between 1 and 8760"));
        }
        let max_message_bytes: usize = parse("MAX_MESSAGE_BYTES", 16 * 1024)?;
        if !(1..=1024 * 1024).contains(&max_message_bytes) {
            return Err(bad("MAX_MESSAGE_BYTES", "must be between 1 and 1048576"));
        }
        let cors_origins = match var("CORS_ORIGINS") {
            None => CorsOrigins::Any,
            Some(v) if v.trim() == "*" => CorsOrigins::Any,
            Some(v) => {
                let list: Vec<String> = v
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect();
                if let Some(o) = list
                    .iter()
                    .find(|o| !o.starts_with("http://") && !o.starts_with("https://"))
                {
                    return Err(bad("CORS_ORIGINS", format!("`{o}` is not an http(s) origin")));
                }
                CorsOrigins::List(list)
            }
        };
        let millis = |name: &'static str, default: u64| -> Result<Duration, ConfigError> {
            let ms: u64 = parse(name, default)?;
            if ms > 3_600_000 {
                return Err(bad(name, "must be at most 3600000 (one hour)"));
            }
            Ok(Duration::from_millis(ms))
        };
        // Last, once everything else is valid: with SQLite this may create the secret file.
        let jwt_secret = match var("JWT_SECRET") {
            Some(s) if s.len() >= MIN_SECRET_BYTES => s.into_bytes(),
            Some(_) => {
                return Err(bad(
                    "JWT_SECRET",
                    format!("must be at least {MIN_SECRET_BYTES} bytes"),
                ));
            }
            None if is_sqlite => local_secret(&database_url)?,
            None => {
                return Err(bad(
                    "JWT_SECRET",
                    "required with PostgreSQL (every node must share it)",
                ));
            }
        };
        let catch_up_limit: u64 = parse("CATCH_UP_LIMIT", 5_000)?;
        // Each queued message is one packet in the socket's buffer (8,192 packets).
        if !(1..=8_000).contains(&catch_up_limit) {
            return Err(bad("CATCH_UP_LIMIT", "must be between 1 and 8000"));
        }
        let group_max_members: usize = parse("GROUP_MAX_MEMBERS", 1_000)?;
        if !(2..=100_000).contains(&group_max_members) {
            return Err(bad("GROUP_MAX_MEMBERS", "must be between 2 and 100000"));
        }
        Ok(Config {
            catch_up_limit,
            group_max_members,
            presence_grace: millis("PRESENCE_GRACE_MS", 5_000)?,
            typing_throttle: millis("TYPING_THROTTLE_MS", 2_000)?,
            typing_timeout: millis("TYPING_TIMEOUT_MS", 6_000)?,
            database_url,
            jwt_secret,
            jwt_expires_in_hours,
            host: var("HOST").unwrap_or_else(|| "127.0.0.1".to_owned()),
            port: parse("PORT", 5000)?,
            cors_origins,
            max_message_bytes,
        })
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }
}

/// The SQLite file a `sqlite://path?opts` URL points at, if any.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// With the embedded default and no `JWT_SECRET`, keep a generated secret beside the
/// database so tokens survive restarts, rather than falling back to a fixed string.
fn local_secret(database_url: &str) -> Result<Vec<u8>, ConfigError> {
    let Some(db) = sqlite_path(database_url) else {
        tracing::warn!("JWT_SECRET unset and the database is in memory: using a random secret for this run");
        return Ok(random_secret().into_bytes());
    };
    let path = PathBuf::from(format!("{}.jwt-secret", db.display()));
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_owned();
        if existing.len() >= MIN_SECRET_BYTES {
            return Ok(existing.into_bytes());
        }
    }
    let secret = random_secret();
    write_private(&path, &secret).map_err(|e| {
        bad(
            "JWT_SECRET",
            format!("unset, and {} could not be written: {e}", path.display()),
        )
    })?;
    tracing::warn!(path = %path.display(), "JWT_SECRET unset: generated a secret and stored it beside the database");
    Ok(secret.into_bytes())
}

fn random_secret() -> String {
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_private(path: &PathBuf, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    opts.open(path)?.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_path_is_read_from_url() {
        assert_eq!(
            sqlite_path("sqlite://chat.db?mode=rwc"),
            Some(PathBuf::from("chat.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/x/chat.db"),
            Some(PathBuf::from("/tmp/x/chat.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }
}
