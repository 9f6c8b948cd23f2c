//! Logging: `RUST_LOG` filters, default `info` for us and `warn` for dependencies;
//! `LOG_FORMAT=json` writes one JSON object per line instead of text.
use tracing_subscriber::{EnvFilter, fmt};

use crate::config::LogFormat;

pub fn init() {
    // Logging starts before the configuration is read: `.env` must count here too.
    let _ = dotenvy::dotenv();
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,realtime_chat=info,tower_http=warn"));
    // Logs go to stderr; stdout carries only the "listening on" line and CLI output.
    let logs = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A bad LOG_FORMAT falls back to text here; the configuration then refuses it.
    match LogFormat::from_env() {
        Ok(LogFormat::Json) => logs.json().flatten_event(true).init(),
        _ => logs.init(),
    }
}
