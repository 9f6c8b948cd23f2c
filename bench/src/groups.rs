//! Scenario 2: group fan-out. (a) G groups of M connected members, one sender per group
//! keeping W messages in flight; (b) one big group, one message per second. Groups are
//! created over REST (`POST /api/groups`, the sender as owner) before anyone connects, so
//! no server has to add live sockets to a group.
use std::{collections::HashMap, time::Duration};

use serde::Serialize;
use serde_json::json;

use crate::{
    fanout::{self, Group, Outcome, Pace},
    rest::Rest,
    sio::{Client, Listener},
    stats::Latencies,
    users::BenchUser,
};

/// How long every member may take to be live after the connects (see `fanout::warm_up`).
const WARM_UP_LIMIT: Duration = Duration::from_secs(60);

/// Handshakes in flight while connecting members: a storm is scenario 3's business.
const CONNECT_CONCURRENCY: usize = 64;

#[derive(Serialize)]
pub struct Report {
    pub groups: usize,
    pub members_per_group: usize,
    pub messages_per_group: u64,
    /// Messages × receiving members (every member but the sender).
    pub expected: u64,
    pub delivered: u64,
    pub missing: u64,
    /// Repeats, and arrivals after a higher `seq`, per member by the server's `seq`.
    pub duplicated: u64,
    pub reordered: u64,
    /// Members who missed at least one message.
    pub members_incomplete: u64,
    pub send_errors: u64,
    pub unanswered: u64,
    pub seconds: f64,
    pub deliveries_per_sec: f64,
    /// Send → one member's `new_message`, over every delivery.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Send → the last member's `new_message`, over messages every member received.
    pub p50_all_ms: f64,
    pub p99_all_ms: f64,
    pub max_all_ms: f64,
    pub generator_cpu_s: f64,
    pub server_cpu_s: Option<f64>,
    /// After the connects, how long one unmeasured message took to reach every member.
    pub warm_up_ms: f64,
}

/// What both parts of the scenario share.
pub struct Common<'a> {
    pub url: &'a str,
    /// Give up on a member after this long without a message.
    pub drain: Duration,
    pub server_pid: Option<&'a str>,
    /// Wait until one unmeasured message reached every member before measuring.
    pub warm_up: bool,
}

/// One run: `users` split into groups of `members` (the first of each the sender).
pub async fn run(
    common: &Common<'_>,
    users: &[BenchUser],
    members: usize,
    messages: u64,
    pace: Pace,
) -> anyhow::Result<Report> {
    let rest = Rest::new(common.url);
    let mut groups = Vec::new();
    for (i, chunk) in users.chunks_exact(members).enumerate() {
        groups.push(set_up(&rest, common.url, i, chunk).await?);
    }
    let warm_up = if common.warm_up {
        fanout::warm_up(&mut groups, WARM_UP_LIMIT).await?
    } else {
        Duration::ZERO
    };
    let outcome = fanout::run(groups, messages, pace, common.drain, common.server_pid).await?;
    let mut report = tally(outcome, members, messages);
    report.warm_up_ms = warm_up.as_secs_f64() * 1000.0;
    Ok(report)
}

/// Creates one group owned by `members[0]` and connects all its members.
async fn set_up(rest: &Rest, url: &str, index: usize, members: &[BenchUser]) -> anyhow::Result<Group> {
    let (owner, others) = members.split_first().expect("a group has an owner");
    let body = json!({
        "name": format!("bench group {index}"),
        "member_ids": others.iter().map(|u| u.id).collect::<Vec<_>>(),
    });
    let created = rest.post("/api/groups", Some(&owner.token), &body).await?;
    let conversation_id = created["group"]["conversation_id"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("POST /api/groups: no group.conversation_id in {created}"))?;
    let sender = Client::connect(url, &owner.token).await?;
    let mut receivers = Vec::with_capacity(others.len());
    for chunk in others.chunks(CONNECT_CONCURRENCY) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|u| {
                let (url, token) = (url.to_owned(), u.token.clone());
                tokio::spawn(async move { Listener::connect(&url, &token).await })
            })
            .collect();
        for t in tasks {
            receivers.push(t.await??);
        }
    }
    Ok(Group {
        conversation_id,
        sender,
        receivers,
    })
}

/// Counts what every member saw against what was sent.
fn tally(outcome: Outcome, members: usize, messages: u64) -> Report {
    let groups = outcome.members.len();
    let receivers = members.saturating_sub(1) as u64;
    let expected = groups as u64 * receivers * messages;
    let (mut delivered, mut duplicated, mut reordered, mut incomplete) = (0, 0, 0, 0);
    let mut deliveries = Latencies::default();
    let mut all_members = Latencies::default();
    let mut last_us = 0;
    for group in &outcome.members {
        // Per message index: when it was sent, when its last member got it, how many did.
        let mut per_message: HashMap<u64, (u64, u64, u64)> = HashMap::new();
        for m in group {
            delivered += m.stream.unique();
            duplicated += m.stream.duplicated;
            reordered += m.stream.reordered;
            incomplete += u64::from(m.stream.unique() < messages);
            for &(index, sent, arrived) in &m.arrivals {
                deliveries.push(arrived.saturating_sub(sent));
                last_us = last_us.max(arrived);
                let e = per_message.entry(index).or_insert((sent, 0, 0));
                e.1 = e.1.max(arrived);
                e.2 += 1;
            }
        }
        for (sent, last, count) in per_message.into_values() {
            if count == receivers {
                all_members.push(last.saturating_sub(sent));
            }
        }
    }
    let seconds = last_us as f64 / 1e6;
    Report {
        groups,
        members_per_group: members,
        messages_per_group: messages,
        expected,
        delivered,
        missing: expected - delivered.min(expected),
        duplicated,
        reordered,
        members_incomplete: incomplete,
        send_errors: outcome.send_errors,
        unanswered: outcome.unanswered,
        seconds,
        deliveries_per_sec: if seconds > 0.0 {
            delivered as f64 / seconds
        } else {
            0.0
        },
        p50_ms: deliveries.percentile_ms(50.0),
        p99_ms: deliveries.percentile_ms(99.0),
        p50_all_ms: all_members.percentile_ms(50.0),
        p99_all_ms: all_members.percentile_ms(99.0),
        max_all_ms: all_members.percentile_ms(100.0),
        generator_cpu_s: outcome.generator_cpu_s,
        server_cpu_s: outcome.server_cpu_s,
        warm_up_ms: 0.0,
    }
}
