//! `ATTACHMENT*` settings: where uploads are stored and what is accepted.
use std::{path::PathBuf, time::Duration};

use super::{ConfigError, bad, parse, sqlite_path, var};

/// Where attachment bytes live.
#[derive(Clone, Debug)]
pub enum AttachmentStorage {
    /// A folder on the local disk.
    Local(PathBuf),
    /// An S3-compatible bucket.
    S3(S3Settings),
}

/// An S3-compatible bucket (AWS, MinIO, Ceph, moto…). Unset keys fall back to the usual
/// `AWS_*` environment variables and instance credentials (object_store's defaults).
#[derive(Clone, Debug)]
pub struct S3Settings {
    pub bucket: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Allow a plain `http://` endpoint (a local test server).
    pub allow_http: bool,
}

#[derive(Clone, Debug)]
pub struct AttachmentsConfig {
    pub storage: AttachmentStorage,
    /// Largest upload, in bytes.
    pub max_bytes: u64,
    /// An upload no message refers to is removed once this old.
    pub orphan_ttl: Duration,
    /// How often each node sweeps for such uploads.
    pub sweep_interval: Duration,
}

/// Default size limit: 25 MB.
pub const DEFAULT_MAX_BYTES: u64 = 25 * 1000 * 1000;

impl AttachmentsConfig {
    pub fn from_env(database_url: &str) -> Result<Self, ConfigError> {
        let max_bytes: u64 = parse("ATTACHMENT_MAX_BYTES", DEFAULT_MAX_BYTES)?;
        if !(1..=5 * 1024 * 1024 * 1024).contains(&max_bytes) {
            return Err(bad(
                "ATTACHMENT_MAX_BYTES",
                "must be between 1 and 5368709120 (5 GiB)",
            ));
        }
        let orphan_ttl: u64 = parse("ATTACHMENT_ORPHAN_TTL_SECS", 86_400)?;
        if orphan_ttl > 10 * 365 * 24 * 3600 {
            return Err(bad(
                "ATTACHMENT_ORPHAN_TTL_SECS",
                "must be at most 315360000 (ten years)",
            ));
        }
        let sweep_ms: u64 = parse("ATTACHMENT_SWEEP_INTERVAL_MS", 3_600_000)?;
        if !(1..=86_400_000).contains(&sweep_ms) {
            return Err(bad(
                "ATTACHMENT_SWEEP_INTERVAL_MS",
                "must be between 1 and 86400000 (a day)",
            ));
        }
        let storage = match var("ATTACHMENTS_S3_BUCKET") {
            Some(bucket) => AttachmentStorage::S3(S3Settings {
                bucket: bucket.trim().to_owned(),
                endpoint: var("ATTACHMENTS_S3_ENDPOINT"),
                region: var("ATTACHMENTS_S3_REGION"),
                access_key_id: var("ATTACHMENTS_S3_ACCESS_KEY_ID"),
                secret_access_key: var("ATTACHMENTS_S3_SECRET_ACCESS_KEY"),
                allow_http: match var("ATTACHMENTS_S3_ALLOW_HTTP").as_deref().map(str::trim) {
                    None | Some("false") | Some("0") => false,
                    Some("true") | Some("1") => true,
                    Some(other) => {
                        return Err(bad(
                            "ATTACHMENTS_S3_ALLOW_HTTP",
                            format!("`{other}` is not true or false"),
                        ));
                    }
                },
            }),
            None => AttachmentStorage::Local(match var("ATTACHMENTS_DIR") {
                Some(dir) => PathBuf::from(dir.trim()),
                None => default_dir(database_url),
            }),
        };
        Ok(AttachmentsConfig {
            storage,
            max_bytes,
            orphan_ttl: Duration::from_secs(orphan_ttl),
            sweep_interval: Duration::from_millis(sweep_ms),
        })
    }
}

/// Beside the SQLite file (`<db>.attachments/`); otherwise (PostgreSQL, an in-memory
/// database) `attachments/` in the working directory. Several nodes must share one
/// folder (or use S3).
fn default_dir(database_url: &str) -> PathBuf {
    match sqlite_path(database_url) {
        Some(db) => PathBuf::from(format!("{}.attachments", db.display())),
        None => PathBuf::from("attachments"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_folder_sits_beside_the_sqlite_file() {
        assert_eq!(
            default_dir("sqlite://data/chat.db?mode=rwc"),
            PathBuf::from("data/chat.db.attachments")
        );
        assert_eq!(
            default_dir("postgres://localhost/chat"),
            PathBuf::from("attachments")
        );
    }
}
