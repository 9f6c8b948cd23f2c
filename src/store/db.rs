//! Opening the database and bringing its schema up to date.
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, TransactionTrait};

/// Connects to `url` (SQLite or PostgreSQL, chosen by the scheme).
pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10));
    if url.starts_with("sqlite:") {
        use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
        // WAL lets REST reads proceed while the message writer commits; FULL keeps a
        // commit durable before we tell the sender "sent".
        // No ping before every acquire (as on PostgreSQL below): an SQLite connection is
        // a worker thread of this process, which cannot be lost as a network connection
        // can, and the ping is one more round trip to that thread before every query (as
        // many as the queries themselves: a REST read is an authentication query and its
        // own).
        opts.max_connections(4)
            .min_connections(1)
            .test_before_acquire(false)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10))
            });
    } else {
        opts.max_connections(16).min_connections(2);
        if let Some(port) = postgres_port(url) {
            // Per sqlx connection (SeaORM's own after_connect runs once per pool).
            // No ping before every acquire: a round trip per transaction is a high price,
            // and a connection that died is dropped by sqlx on its first error.
            opts.map_sqlx_postgres_pool_opts(move |pool| {
                pool.test_before_acquire(false)
                    .after_connect(move |_conn, _meta| {
                        Box::pin(async move {
                            super::nodelay::apply(port);
                            Ok(())
                        })
                    })
            });
        }
    }
    Ok(Database::connect(opts).await?)
}

/// The TCP port of a `postgres://` URL (None for Unix-socket URLs).
fn postgres_port(url: &str) -> Option<u16> {
    let parsed = url::Url::parse(url).ok()?;
    if parsed
        .query_pairs()
        .any(|(k, v)| k == "host" && v.starts_with('/'))
    {
        return None;
    }
    Some(parsed.port().unwrap_or(5432))
}

/// Applies pending migrations.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    if db.get_database_backend() != DbBackend::Postgres {
        Migrator::up(db, None).await?;
        return Ok(());
    }
    // Nodes starting together on a fresh database would race to create the same tables:
    // one migrates while the others wait on this lock, then find nothing to do. The lock
    // is held by a transaction of its own and released when it ends.
    let lock = db.begin().await?;
    lock.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
        .await?;
    let migrated = Migrator::up(db, None).await;
    lock.commit().await?;
    Ok(migrated?)
}

/// The advisory lock key the nodes migrate under (any fixed number, ours alone).
const MIGRATION_LOCK: i64 = 0x7263_6d69_6772;

/// Whether the database answers a trivial query within two seconds.
pub async fn ping(db: &DatabaseConnection) -> bool {
    let probe = db.execute_unprepared("SELECT 1");
    matches!(
        tokio::time::timeout(Duration::from_secs(2), probe).await,
        Ok(Ok(_))
    )
}

/// A moment's view of the connection pool, for the metrics.
pub struct PoolUsage {
    /// Connections open now, in use or idle.
    pub open: u32,
    pub idle: usize,
    /// Most connections the pool may open.
    pub max: u32,
}

/// The pool's connections now (None for a connection that is not a sqlx pool).
pub fn pool_usage(db: &DatabaseConnection) -> Option<PoolUsage> {
    use sea_orm::DbBackend;
    // The pool getters panic on the other backend: ask the backend first.
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            Some(PoolUsage {
                open: pool.size(),
                idle: pool.num_idle(),
                max: pool.options().get_max_connections(),
            })
        }
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            Some(PoolUsage {
                open: pool.size(),
                idle: pool.num_idle(),
                max: pool.options().get_max_connections(),
            })
        }
        _ => None,
    }
}
