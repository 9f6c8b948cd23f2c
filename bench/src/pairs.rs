//! Scenario 1: N sender→receiver pairs, each sender keeping W messages in flight.
use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Barrier;

use crate::{
    procfs,
    sio::{Client, Incoming},
    stats::{Latencies, Stream},
    users::BenchUser,
};

pub struct Params {
    /// Where senders connect.
    pub url: String,
    /// Where receivers connect: another node of the same cluster (cross-node delivery);
    /// `None`, the same server as the senders.
    pub receiver_url: Option<String>,
    pub messages: u64,
    pub window: u64,
    pub drain: Duration,
    pub server_pid: Option<String>,
    /// Other processes whose CPU time to report, by name (e.g. `redis`, or each node):
    /// a pid, or a comma-separated list whose times are summed.
    pub watch: Vec<(String, String)>,
}

#[derive(Serialize)]
pub struct Report {
    pub pairs: usize,
    pub expected: u64,
    pub delivered: u64,
    pub missing: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub send_errors: u64,
    /// Sends the server never acknowledged (neither `message_sent` nor `error`).
    pub unanswered: u64,
    pub seconds: f64,
    pub msgs_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub generator_cpu_s: f64,
    pub server_cpu_s: Option<f64>,
    /// CPU seconds of each `--watch` name over the run (absent: not asked for, or gone).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub watched_cpu_s: BTreeMap<String, f64>,
}

struct ReceiverResult {
    streams: Stream,
    latencies: Latencies,
    last_at: Option<Instant>,
}

/// Runs the scenario with `users` split into (sender, receiver) pairs.
pub async fn run(params: Params, users: Vec<BenchUser>) -> anyhow::Result<Report> {
    let pairs: Vec<(BenchUser, BenchUser)> = users
        .chunks_exact(2)
        .map(|c| (c[0].clone(), c[1].clone()))
        .collect();
    let n = pairs.len();
    let mut senders = Vec::with_capacity(n);
    let mut receivers = Vec::with_capacity(n);
    let receiver_url = params.receiver_url.as_deref().unwrap_or(&params.url);
    for (s, r) in &pairs {
        receivers.push(Client::connect(receiver_url, &r.token).await?);
        senders.push((Client::connect(&params.url, &s.token).await?, r.id));
    }

    let base = Instant::now();
    let barrier = Arc::new(Barrier::new(2 * n + 1));
    let gen_cpu0 = procfs::cpu_seconds("self").unwrap_or(0.0);
    let srv_cpu0 = params.server_pid.as_deref().and_then(procfs::cpu_seconds);
    let watched0: Vec<Option<f64>> = params
        .watch
        .iter()
        .map(|(_, pids)| procfs::cpu_seconds(pids))
        .collect();

    let mut receiver_tasks = Vec::with_capacity(n);
    for mut client in receivers {
        let (barrier, m, drain) = (barrier.clone(), params.messages, params.drain);
        receiver_tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut res = ReceiverResult {
                streams: Stream::default(),
                latencies: Latencies::default(),
                last_at: None,
            };
            // Ends once everything arrived, or when nothing has arrived for `drain`.
            while res.streams.unique() < m {
                let next = tokio::time::timeout(drain, client.rx.recv()).await;
                let Ok(Some(Incoming::Event(name, payload))) = next else {
                    break;
                };
                if name != "new_message" {
                    continue;
                }
                let Some((index, sent_us)) = parse_content(&payload) else {
                    continue;
                };
                let now = Instant::now();
                res.latencies
                    .push((now.duration_since(base).as_micros() as u64).saturating_sub(sent_us));
                res.streams.record(index);
                res.last_at = Some(now);
            }
            // A late repeat still counts as a duplicate: listen a little longer.
            while let Ok(Some(Incoming::Event(name, payload))) =
                tokio::time::timeout(Duration::from_millis(200), client.rx.recv()).await
            {
                if name == "new_message"
                    && let Some((index, _)) = parse_content(&payload)
                {
                    res.streams.record(index);
                }
            }
            res
        }));
    }

    let mut sender_tasks = Vec::with_capacity(n);
    for (mut client, to) in senders {
        let (barrier, m, w, drain) = (barrier.clone(), params.messages, params.window, params.drain);
        sender_tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let send = |client: &Client, i: u64| {
                let micros = Instant::now().duration_since(base).as_micros();
                client.emit(
                    "send_message",
                    &json!({ "to_user_id": to, "content": format!("{i}:{micros}") }),
                );
            };
            let mut sent = 0;
            while sent < w.min(m) {
                send(&client, sent);
                sent += 1;
            }
            let (mut acked, mut errors) = (0u64, 0u64);
            while acked + errors < m {
                // A server that stops answering must not hang the run: what it never
                // acknowledged is reported as unanswered.
                match tokio::time::timeout(drain, client.rx.recv()).await {
                    Ok(Some(Incoming::Event(name, _))) if name == "message_sent" => acked += 1,
                    Ok(Some(Incoming::Event(name, _))) if name == "error" => errors += 1,
                    Ok(Some(Incoming::Event(..))) => continue,
                    _ => break,
                }
                if sent < m {
                    send(&client, sent);
                    sent += 1;
                }
            }
            (errors, sent - acked - errors)
        }));
    }

    barrier.wait().await;
    let (mut send_errors, mut unanswered) = (0, 0);
    for t in sender_tasks {
        let (errors, silent) = t.await?;
        send_errors += errors;
        unanswered += silent;
    }
    let mut streams = Vec::with_capacity(n);
    let mut latencies = Latencies::default();
    let mut last = base;
    for t in receiver_tasks {
        let r = t.await?;
        latencies.extend(r.latencies);
        if let Some(at) = r.last_at {
            last = last.max(at);
        }
        streams.push(r.streams);
    }
    let seconds = last.duration_since(base).as_secs_f64();
    let expected = n as u64 * params.messages;
    let delivered: u64 = streams.iter().map(Stream::unique).sum();
    Ok(Report {
        pairs: n,
        expected,
        delivered,
        missing: expected - delivered.min(expected),
        duplicated: streams.iter().map(|s| s.duplicated).sum(),
        reordered: streams.iter().map(|s| s.reordered).sum(),
        send_errors,
        unanswered,
        seconds,
        msgs_per_sec: if seconds > 0.0 {
            delivered as f64 / seconds
        } else {
            0.0
        },
        p50_ms: latencies.percentile_ms(50.0),
        p99_ms: latencies.percentile_ms(99.0),
        max_ms: latencies.percentile_ms(100.0),
        generator_cpu_s: procfs::cpu_seconds("self").unwrap_or(0.0) - gen_cpu0,
        server_cpu_s: params
            .server_pid
            .as_deref()
            .and_then(procfs::cpu_seconds)
            .zip(srv_cpu0)
            .map(|(b, a)| b - a),
        watched_cpu_s: params
            .watch
            .iter()
            .zip(watched0)
            .filter_map(|((name, pids), before)| Some((name.clone(), procfs::cpu_seconds(pids)? - before?)))
            .collect(),
    })
}

/// Our content is `"<index>:<micros since base>"`.
fn parse_content(payload: &Value) -> Option<(u64, u64)> {
    let (index, micros) = payload.get("content")?.as_str()?.split_once(':')?;
    Some((index.parse().ok()?, micros.parse().ok()?))
}
