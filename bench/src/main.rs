//! realtime-chat-bench: drives any server speaking the seed's Socket.IO protocol.
//!
//! `pairs` measures 1:1 throughput, latency and correctness; `connect` measures a connect
//! storm and idle memory. Each prints one JSON line, for `bench/run` to tabulate.
mod connect;
mod pairs;
mod procfs;
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
    /// The server's pid, to report its CPU time and memory.
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
    },
    /// Connect storm and idle memory per socket.
    Connect {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
    },
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
        } => {
            let users = users_for(&target, 2 * n).await?;
            let params = pairs::Params {
                url: target.url.clone(),
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
