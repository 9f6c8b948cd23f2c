//! Command line: `serve` (default), `migrate`, `user create`, `token`.
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use realtime_chat::{
    app,
    auth::jwt::JwtKeys,
    config::Config,
    domain::{accounts, hashing::Hasher},
    telemetry,
};

#[derive(Parser)]
#[command(
    name = "realtime-chat",
    version,
    about = "Socket.IO chat server (seed-compatible)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default when no command is given).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Print a JWT for a user id (for curl, Postman, the test page).
    Token {
        #[arg(long)]
        user_id: i64,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user and print its id and a token.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        #[arg(long)]
        display_name: Option<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    keep_large_allocations_returnable();
    let cli = Cli::parse();
    telemetry::init();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    match run(cli.command.unwrap_or(Command::Serve), config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => app::serve(config).await,
        Command::Migrate => {
            app::open_database(&config).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Create {
                    email,
                    password,
                    display_name,
                },
        } => {
            let db = app::open_database(&config).await?;
            let user = accounts::register(
                &db,
                &Hasher::new(0, 0),
                &email,
                &password,
                display_name.as_deref(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let token = JwtKeys::new(&config.jwt_secret, config.jwt_expires_in_hours)
                .with_parties(config.jwt_issuer.clone(), config.jwt_audience.clone())
                .issue(user.id, user.token_version);
            println!("created user {} <{}>\ntoken: {token}", user.id, user.email);
            Ok(())
        }
        Command::Token { user_id } => {
            let db = app::open_database(&config).await?;
            let user = realtime_chat::domain::accounts::get(&db, user_id)
                .await
                .map_err(|e| anyhow::anyhow!("user {user_id}: {e}"))?;
            println!(
                "{}",
                JwtKeys::new(&config.jwt_secret, config.jwt_expires_in_hours)
                    .with_parties(config.jwt_issuer.clone(), config.jwt_audience.clone())
                    .issue(user_id, user.token_version)
            );
            Ok(())
        }
    }
}

/// argon2id allocates 19 MiB per hash. glibc serves allocations that large with mmap,
/// but after the first one is freed it raises its mmap threshold (up to 32 MiB) and then
/// serves them from per-thread heaps that keep the memory: a login flood left the
/// process hundreds of MiB larger for good. A fixed threshold keeps them mmapped, so each
/// hash's memory goes back to the system when it is done.
fn keep_large_allocations_returnable() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; glibc applies it process-wide under its own locks.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}
