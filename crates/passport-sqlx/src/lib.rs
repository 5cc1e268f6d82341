//! # passport-sqlx — SQLite and PostgreSQL storage for passport
//!
//! [`Database::connect`] opens the embedded SQLite default (`sqlite://…`, WAL) or PostgreSQL
//! (`postgres://…`) and [`Database::migrate`] applies the shipped migrations (one set per
//! dialect). The stores implement the core's [`passport::Store`] and the web adapter's
//! [`passport::SessionStore`]; [`SqlUserProvider`] serves the standalone server's
//! `passport_users` table to the password grant and the guard.
//!
//! Each dialect has its own file with its own SQL (`sqlite.rs`, `postgres.rs`); what they share
//! is the schema's shape and the row mappers (`rows.rs`).

mod postgres;
mod rows;
mod sqlite;
#[cfg(feature = "test-util")]
pub mod testing;
mod users;

use std::fmt::Debug;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use passport::{ServerSecret, SessionStore, StoreError};
use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use postgres::PgStore;
pub use sqlite::SqliteStore;
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
    Migrate(#[source] MigrateError),
    /// Reading or writing the server secret failed.
    #[error("cannot read the server secret: {0}")]
    Secret(String),
}

/// What a dialect's store offers besides the core's traits.
#[async_trait]
pub(crate) trait Backend: Send + Sync + Debug {
    /// Applies pending migrations; returns how many ran.
    async fn migrate(&self) -> Result<usize, MigrateError>;
    /// Stores `candidate` as the server secret unless one exists; returns the stored one.
    async fn server_secret(&self, candidate: &str) -> Result<String, StoreError>;
    /// Closes the pool.
    async fn close(&self);
}

/// The migrations of `migrator` not yet applied on `conn`.
pub(crate) async fn pending_migrations<C: Migrate + ?Sized>(
    migrator: &Migrator,
    conn: &mut C,
) -> Result<usize, MigrateError> {
    conn.ensure_migrations_table().await?;
    let applied = conn.list_applied_migrations().await?;
    Ok(migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration() && !applied.iter().any(|a| a.version == m.version))
        .count())
}

/// An open database: the core store, the session store and the standalone user table, on one
/// pool.
#[derive(Debug, Clone)]
pub struct Database {
    store: Arc<dyn passport::Store>,
    sessions: Arc<dyn SessionStore>,
    users: Arc<dyn UserAdmin>,
    backend: Arc<dyn Backend>,
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
            Ok(Self::from_store(Arc::new(SqliteStore::new(pool)), "sqlite"))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .map_err(DatabaseError::Connect)?;
            Ok(Self::from_store(Arc::new(PgStore::new(pool)), "postgres"))
        } else {
            Err(DatabaseError::UnsupportedUrl)
        }
    }

    fn from_store<S>(store: Arc<S>, kind: &'static str) -> Self
    where
        S: passport::Store + SessionStore + UserAdmin + Backend + 'static,
    {
        Self {
            store: store.clone(),
            sessions: store.clone(),
            users: store.clone(),
            backend: store,
            kind,
        }
    }

    /// Applies pending migrations; returns how many were applied.
    pub async fn migrate(&self) -> Result<usize, DatabaseError> {
        self.backend.migrate().await.map_err(DatabaseError::Migrate)
    }

    /// The server secret kept in the database, made on first use, so that every instance on
    /// this database shares it (see [`passport::ServerSecret`]).
    pub async fn server_secret(&self) -> Result<ServerSecret, DatabaseError> {
        let candidate = ServerSecret::generate().map_err(|e| DatabaseError::Secret(e.to_string()))?;
        let stored = self
            .backend
            .server_secret(&candidate.to_text())
            .await
            .map_err(|e| DatabaseError::Secret(e.to_string()))?;
        ServerSecret::parse(&stored).map_err(|e| DatabaseError::Secret(e.to_string()))
    }

    /// The core store.
    pub fn store(&self) -> Arc<dyn passport::Store> {
        self.store.clone()
    }

    /// The browser session store of the web pages.
    pub fn sessions(&self) -> Arc<dyn SessionStore> {
        self.sessions.clone()
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
        self.backend.close().await;
    }
}
