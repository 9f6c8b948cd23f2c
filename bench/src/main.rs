//! realtime-chat-bench: drives any server speaking the seed's Socket.IO protocol.
//!
//! `pairs` measures 1:1 throughput, latency and correctness; `groups` group fan-out;
//! `connect` a connect storm and idle memory. Each result is one JSON line, for
//! `bench/run` to tabulate.
mod connect;
mod fanout;
mod groups;
mod pairs;
mod procfs;
mod rest;
mod sio;
mod stats;
mod users;

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "realtime-chat-bench",
    about = "Load generator for seed-protocol chat servers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Target {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:5000")]
    url: String,
    /// Mint tokens with this secret for user ids from --first-user-id (servers that need no
    /// user rows, or users seeded beforehand). Without it, users are registered over REST.
    #[arg(long)]
    secret: Option<String>,
    #[arg(long, default_value_t = 1)]
    first_user_id: i64,
    /// The server's pid, to report its CPU time and memory; for CPU time, also a
    /// comma-separated list (several nodes), whose times are summed.
    #[arg(long)]
    server_pid: Option<String>,
    /// A name for the result line.
    #[arg(long, default_value = "server")]
    label: String,
}

#[derive(Subcommand)]
enum Command {
    /// 1:1 throughput and latency.
    Pairs {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 100)]
        pairs: usize,
        #[arg(long, default_value_t = 500)]
        messages: u64,
        #[arg(long, default_value_t = 8)]
        window: u64,
        /// Give up on a receiver after this long without a message.
        #[arg(long, default_value_t = 5)]
        drain_secs: u64,
        /// Receivers connect here instead of --url (another node of the same cluster:
        /// every message then crosses between nodes). Users are minted or registered
        /// through --url.
        #[arg(long)]
        receiver_url: Option<String>,
        /// NAME=PID[,PID...]: also report the CPU time of these processes (summed per
        /// name) as `watched_cpu_s.NAME`; repeatable.
        #[arg(long = "watch", value_parser = parse_watch)]
        watch: Vec<(String, String)>,
    },
    /// Group fan-out: many groups at full speed, then one big group at a steady pace.
    /// Prints one line per part (`groups`, then `group_big`).
    Groups {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 10)]
        groups: usize,
        /// Members per group, the sender included.
        #[arg(long, default_value_t = 100)]
        members: usize,
        #[arg(long, default_value_t = 200)]
        messages: u64,
        #[arg(long, default_value_t = 4)]
        window: u64,
        /// Members of the big group, the sender included; 0 skips that part.
        #[arg(long, default_value_t = 1000)]
        big_members: usize,
        /// The big group gets one message a second for this long.
        #[arg(long, default_value_t = 30)]
        big_seconds: u64,
        #[arg(long, default_value_t = 5)]
        drain_secs: u64,
        /// Start at once, without first waiting until one message reaches every member.
        #[arg(long)]
        no_warm_up: bool,
        /// Pause between the parts, longer than the server's presence grace period
        /// (realtime-chat: 5 s), so that the first part's users going offline are handled
        /// before the second part's warm-up, not inside its measurement.
        #[arg(long, default_value_t = 6)]
        cool_down_secs: u64,
    },
    /// Connect storm and idle memory per socket.
    Connect {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
    },
}

fn parse_watch(s: &str) -> Result<(String, String), String> {
    let (name, pids) = s.split_once('=').ok_or("expected NAME=PID[,PID...]")?;
    if name.is_empty() || pids.split(',').any(|p| p.trim().parse::<u32>().is_err()) {
        return Err(format!("expected NAME=PID[,PID...], got {s:?}"));
    }
    Ok((name.to_owned(), pids.to_owned()))
}

async fn users_for(t: &Target, count: usize) -> anyhow::Result<Vec<users::BenchUser>> {
    match &t.secret {
        Some(secret) => Ok(users::mint(secret, t.first_user_id, count)),
        None => users::register(&t.url, count).await,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Pairs {
            target,
            pairs: n,
            messages,
            window,
            drain_secs,
            receiver_url,
            watch,
        } => {
            let users = users_for(&target, 2 * n).await?;
            let params = pairs::Params {
                url: target.url.clone(),
                receiver_url,
                watch,
                messages,
                window,
                drain: Duration::from_secs(drain_secs),
                server_pid: target.server_pid.clone(),
            };
            let report = pairs::run(params, users).await?;
            println!(
                "{}",
                serde_json::json!({ "scenario": "pairs", "label": target.label, "report": report })
            );
        }
        Command::Groups {
            target,
            groups: g,
            members,
            messages,
            window,
            big_members,
            big_seconds,
            drain_secs,
            no_warm_up,
            cool_down_secs,
        } => {
            anyhow::ensure!(members >= 2, "a group needs a sender and a receiver");
            // Separate users for the two parts: the big group's members carry no
            // membership or history from the first part.
            let users = users_for(&target, g * members + big_members).await?;
            let (small, big) = users.split_at(g * members);
            let common = groups::Common {
                url: &target.url,
                drain: Duration::from_secs(drain_secs),
                server_pid: target.server_pid.as_deref(),
                warm_up: !no_warm_up,
            };
            let pace = fanout::Pace::Window(window);
            let report = groups::run(&common, small, members, messages, pace).await?;
            println!(
                "{}",
                serde_json::json!({ "scenario": "groups", "label": target.label, "report": report })
            );
            if big_members >= 2 {
                tokio::time::sleep(Duration::from_secs(cool_down_secs)).await;
                let pace = fanout::Pace::Every(Duration::from_secs(1));
                let report = groups::run(&common, big, big_members, big_seconds, pace).await?;
                println!(
                    "{}",
                    serde_json::json!({ "scenario": "group_big", "label": target.label, "report": report })
                );
            }
        }
        Command::Connect { target, clients } => {
            let users = users_for(&target, clients).await?;
            let report = connect::run(&target.url, users, target.server_pid.as_deref()).await?;
            println!(
                "{}",
                serde_json::json!({ "scenario": "connect", "label": target.label, "report": report })
            );
        }
    }
    Ok(())
}
