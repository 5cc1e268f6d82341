//! # passport-sqlx — SQLite and PostgreSQL storage for passport
//!
//! [`Database::connect`] opens the embedded SQLite default (`sqlite://…`, WAL) or PostgreSQL
//! (`postgres://…`) and [`Database::migrate`] applies the shipped migrations (one set per
//! dialect). The stores implement the core's [`passport::Store`]; [`SqlUserProvider`] serves the
//! standalone server's `users` table to the password grant and the guard.
//!
//! Both dialects run the same statements (`$n` placeholders work in both); what differs is the
//! schema, kept in `migrations/sqlite` and `migrations/postgres`.

mod store;
#[cfg(feature = "test-util")]
pub mod testing;
mod users;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use store::{PgStore, SqliteStore};
pub use users::{SqlUserProvider, UserAdmin, UserRow};

/// Why the database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The URL names neither SQLite nor PostgreSQL.
    #[error("unsupported database URL (use sqlite://PATH or postgres://…)")]
    UnsupportedUrl,
    /// Connecting failed.
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// An open database: the core store and the standalone user table on the same pool.
#[derive(Debug, Clone)]
pub struct Database {
    store: Arc<dyn passport::Store>,
    users: Arc<dyn UserAdmin>,
    kind: &'static str,
}

impl Database {
    /// Opens `url`: `sqlite://path/to/file.db` (created if missing) or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Self, DatabaseError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(DatabaseError::Connect)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options)
                .await
                .map_err(DatabaseError::Connect)?;
            let store = Arc::new(SqliteStore::new(pool));
            Ok(Self {
                store: store.clone(),
                users: store,
                kind: "sqlite",
            })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .map_err(DatabaseError::Connect)?;
            let store = Arc::new(PgStore::new(pool));
            Ok(Self {
                store: store.clone(),
                users: store,
                kind: "postgres",
            })
        } else {
            Err(DatabaseError::UnsupportedUrl)
        }
    }

    /// Applies pending migrations; returns how many were applied.
    pub async fn migrate(&self) -> Result<usize, DatabaseError> {
        self.users.migrate().await.map_err(DatabaseError::Migrate)
    }

    /// The core store.
    pub fn store(&self) -> Arc<dyn passport::Store> {
        self.store.clone()
    }

    /// The standalone server's user table.
    pub fn users(&self) -> Arc<dyn UserAdmin> {
        self.users.clone()
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Closes the pool, waiting for connections to finish (checkpointing SQLite's WAL).
    pub async fn close(&self) {
        self.users.close().await;
    }
}
