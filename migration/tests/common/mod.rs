//! A fresh database per test: a SQLite file always, a PostgreSQL database when
//! `TEST_DATABASE_URL` is set (required under `CI=true`, where its absence fails the
//! test instead of skipping it).
use std::path::PathBuf;

use sea_orm_migration::sea_orm::{ConnectionTrait, Database, DatabaseConnection};

/// A database made for one test, and what to remove when it is done.
pub struct Fresh {
    pub db: DatabaseConnection,
    made: Made,
}

enum Made {
    File(PathBuf),
    Database { admin: DatabaseConnection, name: String },
}

/// An empty SQLite file in a folder named after `name` and the process.
pub async fn sqlite(name: &str) -> Fresh {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("upgrade.db");
    let _ = std::fs::remove_file(&path);
    let db = Database::connect(format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .expect("open SQLite");
    Fresh {
        db,
        made: Made::File(dir),
    }
}

/// An empty PostgreSQL database named after `name` and the process, on the server of
/// `TEST_DATABASE_URL`; None when that is unset outside CI.
pub async fn postgres(name: &str) -> Option<Fresh> {
    let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true needs TEST_DATABASE_URL for the PostgreSQL migration tests"
        );
        eprintln!("TEST_DATABASE_URL not set: PostgreSQL test {name} skipped");
        return None;
    };
    let admin = Database::connect(&url)
        .await
        .expect("connect to TEST_DATABASE_URL");
    let name = format!("{name}_{}", std::process::id());
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        admin.execute_unprepared(&sql).await.expect(&sql);
    }
    let base = url
        .rsplit_once('/')
        .map(|(base, _)| base)
        .expect("URL with a database name");
    let db = Database::connect(format!("{base}/{name}"))
        .await
        .expect("connect to the fresh database");
    Some(Fresh {
        db,
        made: Made::Database { admin, name },
    })
}

impl Fresh {
    /// Closes the database and removes it.
    pub async fn done(self) {
        self.db.close().await.unwrap();
        match self.made {
            Made::File(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Made::Database { admin, name } => {
                admin
                    .execute_unprepared(&format!("DROP DATABASE {name}"))
                    .await
                    .expect("drop the test database");
            }
        }
    }
}
