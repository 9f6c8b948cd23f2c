//! Logging: `RUST_LOG` filters, default `info` for us and `warn` for dependencies.
use tracing_subscriber::{EnvFilter, fmt};

pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,realtime_chat=info,tower_http=warn"));
    // Logs go to stderr; stdout carries only the "listening on" line and CLI output.
    fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
