//! Prometheus metrics: the one catalogue of series (the README's "Metrics and logs" table
//! mirrors it), the recorder with its histogram buckets, and what is sampled at scrape time.
//!
//! Series are recorded through the `metrics` facade where things happen: the writer, the
//! dispatcher, the connect handlers, the HTTP middleware. Until [`install`] runs (the CLI
//! commands never call it) recording costs next to nothing and goes nowhere.
use std::{sync::OnceLock, time::Duration};

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sea_orm::DatabaseConnection;

use crate::{config::Config, store};

/// Gauge: sockets connected now (authenticated, handed to the writer).
pub const SOCKETS_CONNECTED: &str = "realtime_chat_sockets_connected";
/// Gauge: Engine.IO connections open, authenticated or not (what `MAX_CONNECTIONS` bounds).
pub const CONNECTIONS_OPEN: &str = "realtime_chat_connections_open";
/// Counter: handshakes that authenticated.
pub const HANDSHAKES_AUTHENTICATED: &str = "realtime_chat_handshakes_authenticated_total";
/// Counter, label `reason`: handshakes refused (see `AuthError::reason`).
pub const HANDSHAKES_REFUSED: &str = "realtime_chat_handshakes_refused_total";
/// Counter: new messages committed by the writer (retries of a stored `client_msg_id` excluded).
pub const MESSAGES_STORED: &str = "realtime_chat_messages_stored_total";
/// Counter: messages handed live to a device (one per receiving device).
pub const MESSAGES_DELIVERED: &str = "realtime_chat_messages_delivered_total";
/// Histogram: from a message's `sent_at` to its hand-over to a live device.
pub const DELIVERY_LATENCY: &str = "realtime_chat_delivery_latency_seconds";
/// Histogram: messages per committed writer transaction.
pub const WRITER_BATCH_SIZE: &str = "realtime_chat_writer_batch_messages";
/// Histogram: time to plan and commit one writer transaction.
pub const WRITER_COMMIT: &str = "realtime_chat_writer_commit_duration_seconds";
/// Gauge: commands in the writer's queue when it took its latest batch (that batch included).
pub const WRITER_QUEUE: &str = "realtime_chat_writer_queue_depth";
/// Counter, labels `method`, `route`, `status`: REST requests answered.
pub const HTTP_REQUESTS: &str = "realtime_chat_http_requests_total";
/// Histogram, labels `method`, `route`, `status`: time to answer a REST request.
pub const HTTP_DURATION: &str = "realtime_chat_http_request_duration_seconds";
/// Gauge, label `state` (`in_use`, `idle`): database pool connections, sampled at scrape time.
pub const DB_CONNECTIONS: &str = "realtime_chat_db_pool_connections";
/// Gauge: most connections the database pool may open.
pub const DB_MAX_CONNECTIONS: &str = "realtime_chat_db_pool_max_connections";
/// Gauge: 1 while this node's link to Redis is up, 0 while it is down (absent for one node).
pub const REDIS_UP: &str = "realtime_chat_redis_up";
/// Counter: events for other nodes dropped because Redis was away (recovered by seq).
pub const CLUSTER_DROPPED: &str = "realtime_chat_cluster_events_dropped_total";
/// Counter: push hooks written to the outbox (one per offline recipient of a message).
pub const PUSH_QUEUED: &str = "realtime_chat_push_hooks_queued_total";
/// Counter: push hooks the receiver answered with a 2xx.
pub const PUSH_SENT: &str = "realtime_chat_push_hooks_sent_total";
/// Counter: push hook attempts that failed (network error, timeout, non-2xx).
pub const PUSH_FAILED_ATTEMPTS: &str = "realtime_chat_push_attempts_failed_total";
/// Counter, label `reason` (`attempts`, `expired`, `refused`, `obsolete`, `unqueued`):
/// push hooks given up.
pub const PUSH_DROPPED: &str = "realtime_chat_push_hooks_dropped_total";
/// Gauge, label `name`: a configured limit (0 means off where the setting allows it).
pub const LIMIT: &str = "realtime_chat_limit";

/// Seconds, from a millisecond to ten seconds: local commits and hand-overs sit at the
/// low end, a hashing endpoint or a saturated writer at the high end.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Powers of two up to the writer's largest batch (1,024).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];

/// Installs the process-wide recorder once and returns its handle; later calls return
/// the same handle (the `metrics` facade holds one recorder per process).
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = [DELIVERY_LATENCY, WRITER_COMMIT, HTTP_DURATION]
                .into_iter()
                .map(|name| (name, LATENCY_BUCKETS))
                .chain([(WRITER_BATCH_SIZE, BATCH_BUCKETS)])
                .fold(PrometheusBuilder::new(), |builder, (name, buckets)| {
                    builder
                        .set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets)
                        .expect("bucket lists are not empty")
                });
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if let Err(e) = metrics::set_global_recorder(recorder) {
                tracing::warn!(error = %e, "another metrics recorder is installed: /metrics stays empty");
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    describe_gauge!(SOCKETS_CONNECTED, "Sockets connected now.");
    describe_gauge!(
        CONNECTIONS_OPEN,
        "Engine.IO connections open, authenticated or not (bounded by MAX_CONNECTIONS)."
    );
    describe_counter!(
        HANDSHAKES_AUTHENTICATED,
        "Socket.IO handshakes that authenticated."
    );
    describe_counter!(HANDSHAKES_REFUSED, "Socket.IO handshakes refused, by reason.");
    describe_counter!(MESSAGES_STORED, "New messages committed.");
    describe_counter!(
        MESSAGES_DELIVERED,
        "Messages a device has shown it received (one per device; see docs/PROTOCOL.md, Delivery guarantee)."
    );
    describe_histogram!(
        DELIVERY_LATENCY,
        Unit::Seconds,
        "From a message's sent_at to a device's proof of receipt (the pong after it)."
    );
    describe_histogram!(WRITER_BATCH_SIZE, Unit::Count, "Messages per writer transaction.");
    describe_histogram!(
        WRITER_COMMIT,
        Unit::Seconds,
        "Time to commit one writer transaction."
    );
    describe_gauge!(
        WRITER_QUEUE,
        "Commands in the writer's queue when it took its latest batch."
    );
    describe_counter!(
        HTTP_REQUESTS,
        "REST requests, by method, route template and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer a REST request, by method, route template and status."
    );
    describe_gauge!(DB_CONNECTIONS, "Database pool connections in use and idle.");
    describe_gauge!(DB_MAX_CONNECTIONS, "Most connections the database pool may open.");
    describe_gauge!(LIMIT, "Configured limits (0: off where the setting allows it).");
    describe_gauge!(REDIS_UP, "1 while the link to Redis is up, 0 while it is down.");
    describe_counter!(
        CLUSTER_DROPPED,
        "Events for other nodes dropped while Redis was away."
    );
    describe_counter!(
        PUSH_QUEUED,
        "Push hooks queued (one per offline recipient of a message)."
    );
    describe_counter!(PUSH_SENT, "Push hooks answered with a 2xx.");
    describe_counter!(PUSH_FAILED_ATTEMPTS, "Push hook attempts that failed.");
    describe_counter!(PUSH_DROPPED, "Push hooks given up, by reason.");
    // Present from the start, so rates and dashboards have a zero to begin from.
    gauge!(SOCKETS_CONNECTED).set(0.0);
    gauge!(CONNECTIONS_OPEN).set(0.0);
    for name in [
        HANDSHAKES_AUTHENTICATED,
        MESSAGES_STORED,
        MESSAGES_DELIVERED,
        PUSH_QUEUED,
        PUSH_SENT,
        PUSH_FAILED_ATTEMPTS,
    ] {
        metrics::counter!(name).increment(0);
    }
}

/// Publishes the configured limits, so dashboards can draw them beside what they bound.
pub fn record_limits(config: &Config) {
    let limits: [(&'static str, f64); 16] = [
        ("rate_sends_per_sec", config.rate_sends_per_sec.into()),
        ("rate_sends_burst", config.rate_sends_burst.into()),
        ("rate_typing_per_sec", config.rate_typing_per_sec.into()),
        ("rate_sync_per_sec", config.rate_sync_per_sec.into()),
        ("rate_lookups_per_sec", config.rate_lookups_per_sec.into()),
        ("max_sockets_per_user", config.max_sockets_per_user as f64),
        ("max_connections", config.max_connections as f64),
        ("hash_concurrency", config.hash_concurrency as f64),
        ("hash_queue", config.hash_queue as f64),
        ("group_max_members", config.group_max_members as f64),
        ("max_message_bytes", config.max_message_bytes as f64),
        ("catch_up_limit", config.catch_up_limit as f64),
        ("connect_timeout_seconds", config.connect_timeout.as_secs_f64()),
        ("ping_interval_seconds", config.ping_interval.as_secs_f64()),
        ("ping_timeout_seconds", config.ping_timeout.as_secs_f64()),
        ("socket_buffer_bytes", config.socket_buffer_bytes as f64),
    ];
    for (name, value) in limits {
        gauge!(LIMIT, "name" => name).set(value);
    }
}

/// Samples what is cheaper to read when asked than to track: the database pool.
pub fn sample(db: &DatabaseConnection) {
    if let Some(pool) = store::db::pool_usage(db) {
        gauge!(DB_CONNECTIONS, "state" => "in_use")
            .set((pool.open as usize).saturating_sub(pool.idle) as f64);
        gauge!(DB_CONNECTIONS, "state" => "idle").set(pool.idle as f64);
        gauge!(DB_MAX_CONNECTIONS).set(pool.max as f64);
    }
}

/// Drains histogram samples into their buckets now and then, as the exporter asks of
/// anyone who renders without its own listener (memory stays bounded between scrapes).
pub async fn upkeep(handle: PrometheusHandle) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}
