//! Scenario 3: a storm of C authenticated connections, then idle memory per socket.
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::{procfs, sio::Client, users::BenchUser};

#[derive(Serialize)]
pub struct Report {
    pub sockets: usize,
    pub failed: usize,
    pub storm_seconds: f64,
    pub server_rss_before_kib: Option<u64>,
    pub server_rss_after_kib: Option<u64>,
    pub kib_per_socket: Option<f64>,
}

/// Connects every user at once (after `concurrency` limits in-flight handshakes).
pub async fn run(url: &str, users: Vec<BenchUser>, server_pid: Option<&str>) -> anyhow::Result<Report> {
    let before = server_pid.and_then(procfs::rss_kib);
    let start = Instant::now();
    let tasks: Vec<_> = users
        .into_iter()
        .map(|u| {
            let url = url.to_owned();
            tokio::spawn(async move { Client::connect(&url, &u.token).await })
        })
        .collect();
    let mut clients = Vec::with_capacity(tasks.len());
    let mut failed = 0;
    for t in tasks {
        match t.await? {
            Ok(c) => clients.push(c),
            Err(_) => failed += 1,
        }
    }
    let storm_seconds = start.elapsed().as_secs_f64();
    // Let the server settle (greetings, catch-ups) before reading its memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = server_pid.and_then(procfs::rss_kib);
    let kib_per_socket = match (before, after) {
        (Some(b), Some(a)) if !clients.is_empty() => Some(a.saturating_sub(b) as f64 / clients.len() as f64),
        _ => None,
    };
    let report = Report {
        sockets: clients.len(),
        failed,
        storm_seconds,
        server_rss_before_kib: before,
        server_rss_after_kib: after,
        kib_per_socket,
    };
    drop(clients);
    Ok(report)
}
