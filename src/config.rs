//! Environment → typed, validated configuration. Read once at start-up.
mod attachments;
mod push;

use std::{env, net::SocketAddr, path::PathBuf, time::Duration};

use rand::RngCore;
use thiserror::Error;

pub use attachments::{AttachmentStorage, AttachmentsConfig, S3Settings};
pub use push::{Include as PushInclude, PushConfig};

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
    /// Optional `iss` / `aud` put in issued tokens and required of presented ones.
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    /// This node's name in logs and `/health` (`NODE_ID`, or random per start).
    pub node_id: String,
    /// `REDIS_URL`: join the other nodes through this Redis (None: one node, in-process).
    pub redis_url: Option<String>,
    /// With Redis: a node whose heartbeat is this old is dead, and its users offline.
    pub presence_node_ttl: Duration,
    pub host: String,
    pub port: u16,
    pub cors_origins: CorsOrigins,
    /// Upper bound for a message's content, in UTF-8 bytes.
    pub max_message_bytes: usize,
    /// How long after sending its sender may edit a message (zero: never).
    pub edit_window: Duration,
    /// Upper bound for an encrypted message's envelope bodies together, in bytes of base64.
    pub max_encrypted_bytes: usize,
    /// A device left with fewer unclaimed one-time prekeys than this hears `prekeys_low`
    /// (zero: never).
    pub prekey_low_watermark: u64,
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
    /// Password hashes running at once (0: no limit), and how many more may wait.
    pub hash_concurrency: usize,
    pub hash_queue: usize,
    /// Sends per user: a token bucket of this rate and burst (0: off).
    pub rate_sends_per_sec: u32,
    pub rate_sends_burst: u32,
    /// `typing` and `sync` per user, per second (0: off); bursts of twice that.
    pub rate_typing_per_sec: u32,
    pub rate_sync_per_sec: u32,
    /// Searches and key-bundle fetches per user, per second (0: off); bursts of twice
    /// that. Each can cost the database far more than a send.
    pub rate_lookups_per_sec: u32,
    /// Sockets per user and in total (0: off).
    pub max_sockets_per_user: usize,
    pub max_connections: usize,
    /// How long an Engine.IO session may go without a Socket.IO CONNECT.
    pub connect_timeout: Duration,
    /// Engine.IO heartbeat: a ping this often, and a socket whose pong is this late is
    /// closed. A silently dropped connection is noticed within their sum when idle, and
    /// within the timeout once a message is waiting for its proof of receipt.
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    /// Bytes of messages emitted to one socket and not yet shown received (0: off); past
    /// it a live socket is disconnected (it catches up when it reconnects) and a
    /// catch-up page stops early.
    pub socket_buffer_bytes: usize,
    /// On SIGTERM/SIGINT: how long to wait for accepted sends to commit and clients to
    /// go before exiting anyway.
    pub drain_timeout: Duration,
    /// Where `/metrics` is served instead of the public port (None: on the public port).
    pub metrics_addr: Option<SocketAddr>,
    /// Push hooks (`PUSH_*`); None when `PUSH_WEBHOOK_URL` is unset.
    pub push: Option<PushConfig>,
    /// How log lines are written (the subscriber is set up before this is read; see
    /// [`LogFormat::from_env`]).
    pub log_format: LogFormat,
    /// Uploads: storage, size limit, orphan sweep (`ATTACHMENT*`).
    pub attachments: AttachmentsConfig,
}

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl LogFormat {
    /// `LOG_FORMAT`: `text` (default) or `json`. Read on its own because logging starts
    /// before the rest of the configuration is validated.
    pub fn from_env() -> Result<Self, ConfigError> {
        match var("LOG_FORMAT")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("text") => Ok(LogFormat::Text),
            Some("json") => Ok(LogFormat::Json),
            Some(other) => Err(bad("LOG_FORMAT", format!("`{other}` is not `text` or `json`"))),
        }
    }
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
        // A heartbeat of 0 would mean no heartbeat at all, and no proof of receipt.
        let positive_millis = |name: &'static str, default: u64| -> Result<Duration, ConfigError> {
            match millis(name, default)? {
                d if d.is_zero() => Err(bad(name, "must be at least 1")),
                d => Ok(d),
            }
        };
        let metrics_addr = match var("METRICS_ADDR") {
            None => None,
            Some(v) => Some(v.trim().parse::<SocketAddr>().map_err(|_| {
                bad(
                    "METRICS_ADDR",
                    format!("`{v}` is not an address such as 127.0.0.1:9100"),
                )
            })?),
        };
        let log_format = LogFormat::from_env()?;
        let attachments = AttachmentsConfig::from_env(&database_url)?;
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
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let hash_concurrency: usize = parse("HASH_CONCURRENCY", cores)?;
        let hash_queue: usize = parse("HASH_QUEUE", 32)?;
        let edit_window_secs: u64 = parse("EDIT_WINDOW_SECS", 900)?;
        if edit_window_secs > 10 * 365 * 24 * 3600 {
            return Err(bad("EDIT_WINDOW_SECS", "must be at most 315360000 (ten years)"));
        }
        let max_encrypted_bytes: usize = parse("MAX_ENCRYPTED_BYTES", 64 * 1024)?;
        if !(1..=1024 * 1024).contains(&max_encrypted_bytes) {
            return Err(bad("MAX_ENCRYPTED_BYTES", "must be between 1 and 1048576"));
        }
        let prekey_low_watermark: u64 = parse("PREKEY_LOW_WATERMARK", 10)?;
        if prekey_low_watermark > crate::domain::e2e::keys::MAX_PREKEYS_HELD {
            return Err(bad("PREKEY_LOW_WATERMARK", "must be at most 1000"));
        }
        Ok(Config {
            rate_sends_per_sec: parse("RATE_SENDS_PER_SEC", 20)?,
            rate_sends_burst: parse("RATE_SENDS_BURST", 100)?,
            rate_typing_per_sec: parse("RATE_TYPING_PER_SEC", 5)?,
            rate_sync_per_sec: parse("RATE_SYNC_PER_SEC", 10)?,
            rate_lookups_per_sec: parse("RATE_LOOKUPS_PER_SEC", 10)?,
            max_sockets_per_user: parse("MAX_SOCKETS_PER_USER", 20)?,
            max_connections: parse("MAX_CONNECTIONS", 100_000)?,
            connect_timeout: match millis("CONNECT_TIMEOUT_MS", 5_000)? {
                d if d.is_zero() => Duration::from_secs(45),
                d => d,
            },
            ping_interval: positive_millis("PING_INTERVAL_MS", 10_000)?,
            ping_timeout: positive_millis("PING_TIMEOUT_MS", 5_000)?,
            socket_buffer_bytes: parse("SOCKET_BUFFER_BYTES", 4 * 1024 * 1024)?,
            drain_timeout: millis("DRAIN_TIMEOUT_MS", 10_000)?,
            hash_concurrency,
            hash_queue,
            metrics_addr,
            log_format,
            attachments,
            catch_up_limit,
            group_max_members,
            presence_grace: millis("PRESENCE_GRACE_MS", 5_000)?,
            typing_throttle: millis("TYPING_THROTTLE_MS", 2_000)?,
            typing_timeout: millis("TYPING_TIMEOUT_MS", 6_000)?,
            database_url,
            jwt_secret,
            jwt_expires_in_hours,
            jwt_issuer: var("JWT_ISSUER"),
            jwt_audience: var("JWT_AUDIENCE"),
            node_id: var("NODE_ID").unwrap_or_else(|| format!("{:08x}", rand::random::<u32>())),
            redis_url: match var("REDIS_URL") {
                Some(url) if !(url.starts_with("redis://") || url.starts_with("rediss://")) => {
                    return Err(bad("REDIS_URL", "must start with redis:// or rediss://"));
                }
                url => url,
            },
            presence_node_ttl: positive_millis("PRESENCE_NODE_TTL_MS", 15_000)?,
            host: var("HOST").unwrap_or_else(|| "127.0.0.1".to_owned()),
            port: parse("PORT", 5000)?,
            cors_origins,
            max_message_bytes,
            edit_window: Duration::from_secs(edit_window_secs),
            max_encrypted_bytes,
            prekey_low_watermark,
            push: PushConfig::from_env(var)?,
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
    let refuse = |why: String| bad("JWT_SECRET", format!("unset, and {}: {why}", path.display()));
    match read_private(&path) {
        Ok(Some(existing)) => {
            let existing = existing.trim().to_owned();
            if existing.len() < MIN_SECRET_BYTES {
                return Err(refuse(format!(
                    "holds fewer than {MIN_SECRET_BYTES} bytes; delete it to have a new secret generated"
                )));
            }
            return Ok(existing.into_bytes());
        }
        Ok(None) => {}
        Err(why) => return Err(refuse(why)),
    }
    let secret = random_secret();
    create_private(&path, &secret).map_err(|e| refuse(format!("could not be created: {e}")))?;
    tracing::warn!(path = %path.display(), "JWT_SECRET unset: generated a secret and stored it beside the database");
    Ok(secret.into_bytes())
}

/// The secret file's contents, None if it does not exist. A symbolic link is never
/// followed, and a file others may read or write (or another user owns) is refused:
/// anyone who can read the secret can forge tokens, and anyone who can write it can
/// choose it.
fn read_private(path: &PathBuf) -> Result<Option<String>, String> {
    use std::io::Read;
    #[cfg(unix)]
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    opts.custom_flags(libc::O_NOFOLLOW);
    let mut file = match opts.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err("is a symbolic link, which is never followed".into());
        }
        Err(e) => return Err(format!("cannot be read: {e}")),
    };
    let meta = file.metadata().map_err(|e| format!("cannot be inspected: {e}"))?;
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    #[cfg(unix)]
    {
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "has permissions {mode:03o}; it must be readable by its owner only (chmod 600)"
            ));
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(format!(
                "is owned by uid {}, not by this process (uid {me})",
                meta.uid()
            ));
        }
    }
    let mut contents = String::new();
    file.read_to_string(&mut contents)
        .map_err(|e| format!("cannot be read: {e}"))?;
    Ok(Some(contents))
}

fn random_secret() -> String {
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates the file for the owner only, failing if anything (even a dangling link)
/// is already there: no race with someone planting a file or link in its place.
fn create_private(path: &PathBuf, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    opts.open(path)?.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn unsafe_secret_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("rc-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}/chat.db", dir.display());
        let file = dir.join("chat.db.jwt-secret");

        let made = local_secret(&url).expect("created on first use");
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(local_secret(&url).unwrap(), made, "kept across starts");

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = local_secret(&url).unwrap_err().to_string();
        assert!(e.contains("permissions 644"), "{e}");

        std::fs::remove_file(&file).unwrap();
        let elsewhere = dir.join("planted");
        std::fs::write(&elsewhere, "x".repeat(64)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &file).unwrap();
        let e = local_secret(&url).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");

        std::fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink(dir.join("nowhere"), &file).unwrap();
        assert!(
            local_secret(&url).is_err(),
            "a dangling link is not created through"
        );
        assert!(!dir.join("nowhere").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

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
