//! # passport-sqlx — SQLite, PostgreSQL and MySQL / MariaDB storage for passport
//!
//! [`Database::connect`] opens the embedded SQLite default (`sqlite://…`, WAL), PostgreSQL
//! (`postgres://…`) or, with the `mysql` cargo feature, MySQL 8.0.13+ / MariaDB 10.3+
//! (`mysql://user:pass@host/db`, also `mariadb://…`; tested on MariaDB 10.11), and
//! [`Database::migrate`] applies the shipped migrations (one set per dialect). The stores
//! implement the core's [`passport::Store`] and the web adapter's [`passport::SessionStore`];
//! [`SqlUserProvider`] serves the standalone server's `passport_users` table to the password
//! grant and the guard.
//!
//! Each dialect has its own file with its own SQL (`sqlite.rs`, `postgres.rs`, `mysql.rs`);
//! what they share is the schema's shape and the row mappers (`rows.rs`).
//!
//! The `mysql` feature is off by default: it builds sqlx's MySQL driver, which pulls in the
//! `rsa` crate (for the password exchange of `caching_sha2_password` only; see this crate's
//! `Cargo.toml`). Instances on MySQL learn of each other's revocations by polling the feed, as
//! on SQLite (PostgreSQL wakes them with `NOTIFY`).

mod batch;
mod laravel_schema;
mod laravel_users;
mod migrate;
#[cfg(feature = "mysql")]
mod mysql;
mod postgres;
mod purge;
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
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Row as _, SqlitePool};

pub use laravel_users::LaravelUserProvider;
pub use migrate::{MigrateError, PlannedStep, Schema};
#[cfg(feature = "mysql")]
pub use mysql::MySqlStore;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use users::{SqlUserProvider, UserAdmin, UserRow};

/// Why the database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The URL names none of SQLite, PostgreSQL and MySQL.
    #[error("unsupported database URL (use sqlite://PATH, postgres://… or mysql://…)")]
    UnsupportedUrl,
    /// Connecting failed.
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[source] MigrateError),
    /// The URL carries a setting with a value we do not know.
    #[error("{0}")]
    Url(String),
    /// A pool handed to [`Database::from_pool`] lacks a setting the stores need.
    #[error("{0}")]
    Pool(String),
    /// Reading or writing the server secret failed.
    #[error("cannot read the server secret: {0}")]
    Secret(String),
    /// The application's users table ([`LaravelUserProvider`]) is misnamed, missing, or
    /// lacks a configured column; the message names which.
    #[error("{0}")]
    UserTable(String),
}

/// Takes our own `synchronous=` parameter off a SQLite URL (sqlx does not know it): `normal`
/// (the default) or `full`.
fn sqlite_synchronous(url: &str) -> Result<(String, SqliteSynchronous), DatabaseError> {
    let Some((path, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), SqliteSynchronous::Normal));
    };
    let mut synchronous = SqliteSynchronous::Normal;
    let mut rest = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("synchronous", value)) => {
                synchronous = match value.to_ascii_lowercase().as_str() {
                    "normal" => SqliteSynchronous::Normal,
                    "full" => SqliteSynchronous::Full,
                    _ => {
                        return Err(DatabaseError::Url(format!(
                            "synchronous={value}: use synchronous=normal or synchronous=full"
                        )));
                    }
                };
            }
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", rest.join("&"))
    };
    Ok((url, synchronous))
}

/// A pool of one of the supported drivers, for [`Database::from_pool`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SqlPool {
    /// SQLite.
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
    /// MySQL or MariaDB (the `mysql` feature).
    #[cfg(feature = "mysql")]
    MySql(sqlx::MySqlPool),
}

impl From<SqlitePool> for SqlPool {
    fn from(pool: SqlitePool) -> Self {
        Self::Sqlite(pool)
    }
}

impl From<PgPool> for SqlPool {
    fn from(pool: PgPool) -> Self {
        Self::Postgres(pool)
    }
}

/// The pool a store runs on, for readers of tables that are not ours
/// ([`LaravelUserProvider`]).
pub(crate) trait HasPool {
    fn sql_pool(&self) -> SqlPool;
}

impl HasPool for SqliteStore {
    fn sql_pool(&self) -> SqlPool {
        SqlPool::Sqlite(self.pool().clone())
    }
}

impl HasPool for PgStore {
    fn sql_pool(&self) -> SqlPool {
        SqlPool::Postgres(self.pool().clone())
    }
}

#[cfg(feature = "mysql")]
impl HasPool for MySqlStore {
    fn sql_pool(&self) -> SqlPool {
        SqlPool::MySql(self.pool().clone())
    }
}

#[cfg(feature = "mysql")]
impl From<sqlx::MySqlPool> for SqlPool {
    fn from(pool: sqlx::MySqlPool) -> Self {
        Self::MySql(pool)
    }
}

/// Whether `url` names MySQL or MariaDB.
fn is_mysql_url(url: &str) -> bool {
    url.starts_with("mysql:") || url.starts_with("mariadb:")
}

/// A SQLite pool must wait for the write lock (a busy timeout); WAL is advised.
async fn check_sqlite_pool(pool: &SqlitePool) -> Result<(), DatabaseError> {
    let mut conn = pool.acquire().await.map_err(DatabaseError::Connect)?;
    let busy: i64 = sqlx::query("PRAGMA busy_timeout")
        .fetch_one(&mut *conn)
        .await
        .and_then(|row| row.try_get(0))
        .map_err(DatabaseError::Connect)?;
    if busy == 0 {
        return Err(DatabaseError::Pool(
            "the SQLite pool has no busy timeout: build it with SqliteConnectOptions::busy_timeout(…) \
             (Database::connect uses 10 s)"
                .to_owned(),
        ));
    }
    let journal: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await
        .and_then(|row| row.try_get(0))
        .map_err(DatabaseError::Connect)?;
    if !journal.eq_ignore_ascii_case("wal") {
        tracing::warn!(
            journal,
            "the SQLite pool is not in WAL mode: token checks will wait for writers \
             (SqliteConnectOptions::journal_mode(SqliteJournalMode::Wal))"
        );
    }
    Ok(())
}

/// What a dialect's store offers besides the core's traits.
#[async_trait]
pub(crate) trait Backend: Send + Sync + Debug {
    /// Applies the pending migrations of `wanted`; returns how many ran.
    async fn migrate(&self, wanted: &[Schema]) -> Result<usize, MigrateError>;
    /// What [`Backend::migrate`] would do, changing nothing.
    async fn plan(&self, wanted: &[Schema]) -> Result<Vec<PlannedStep>, MigrateError>;
    /// Stores `candidate` as the server secret unless one exists; returns the stored one.
    async fn server_secret(&self, candidate: &str) -> Result<String, StoreError>;
    /// Closes the pool.
    async fn close(&self);
    /// The state of each connection pool.
    fn pool_stats(&self) -> Vec<PoolStats>;
}

/// A connection pool's state, for monitoring ([`Database::pool_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Which pool: `"main"`, or `"writer"` for SQLite's connection of its own for token
    /// batches.
    pub pool: &'static str,
    /// Connections open, idle ones included (sqlx's `Pool::size`).
    pub size: u32,
    /// Connections open and idle (`Pool::num_idle`); `size - idle` are in use.
    pub idle: usize,
    /// The most connections the pool opens.
    pub max: u32,
}

impl PoolStats {
    pub(crate) fn of<DB: sqlx::Database>(pool: &'static str, of: &sqlx::Pool<DB>) -> Self {
        Self {
            pool,
            size: of.size(),
            idle: of.num_idle(),
            max: of.options().get_max_connections(),
        }
    }

    /// Connections checked out of the pool right now.
    pub fn in_use(&self) -> u64 {
        u64::from(self.size).saturating_sub(self.idle as u64)
    }
}

/// The pools' gauges for a scrape, registered with
/// `passport.metrics().collector(|| db.pool_metrics())`:
/// `passport_db_pool_connections{pool, state="in_use"|"idle"}` and
/// `passport_db_pool_max_connections{pool}`.
#[derive(Debug, Clone)]
pub struct PoolMetrics {
    backend: Arc<dyn Backend>,
}

impl passport::Collect for PoolMetrics {
    fn collect(&self, out: &mut passport::Exposition) {
        let stats = self.backend.pool_stats();
        out.family(
            "passport_db_pool_connections",
            "gauge",
            "Database connections open, by pool and state (in_use, idle).",
        );
        for s in &stats {
            out.sample(
                "passport_db_pool_connections",
                &[("pool", s.pool), ("state", "in_use")],
                s.in_use(),
            );
            out.sample(
                "passport_db_pool_connections",
                &[("pool", s.pool), ("state", "idle")],
                s.idle,
            );
        }
        out.family(
            "passport_db_pool_max_connections",
            "gauge",
            "The most connections each database pool opens.",
        );
        for s in &stats {
            out.sample("passport_db_pool_max_connections", &[("pool", s.pool)], s.max);
        }
    }
}

/// Connection pool settings for [`Database::connect_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolSettings {
    /// Connections opened at most (default 16 on PostgreSQL and MySQL, 8 on SQLite).
    pub max_connections: Option<u32>,
    /// How long a query waits for a connection (and, on SQLite, for a lock) before it fails
    /// as unavailable (answered 503); default 10 s.
    pub acquire_timeout: Option<Duration>,
}

impl PoolSettings {
    const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

    /// At most `n` connections.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = Some(n);
        self
    }

    /// Wait at most `wait` for a connection or a lock.
    pub fn acquire_timeout(mut self, wait: Duration) -> Self {
        self.acquire_timeout = Some(wait);
        self
    }
}

/// An open database: the core store, the session store and the standalone user table, on one
/// pool.
#[derive(Debug, Clone)]
pub struct Database {
    store: Arc<dyn passport::Store>,
    sessions: Arc<dyn SessionStore>,
    users: Arc<dyn UserAdmin>,
    backend: Arc<dyn Backend>,
    pool: SqlPool,
    kind: &'static str,
}

impl Database {
    /// Opens `url`: `sqlite://path/to/file.db` (created if missing), `postgres://…`, or (with the
    /// `mysql` feature) `mysql://user:pass@host/db` or `mariadb://…`.
    ///
    /// SQLite runs in WAL mode with `synchronous = NORMAL`: every commit survives a crash of the
    /// process, but a power loss or an operating-system crash can lose the last commits (never
    /// corrupt the file). `?synchronous=full` on the URL syncs every commit to disk instead
    /// (slower writes; nothing acknowledged is lost).
    pub async fn connect(url: &str) -> Result<Self, DatabaseError> {
        Self::connect_with(url, PoolSettings::default()).await
    }

    /// [`Database::connect`] with pool settings of your own.
    pub async fn connect_with(url: &str, settings: PoolSettings) -> Result<Self, DatabaseError> {
        let wait = settings.acquire_timeout.unwrap_or(PoolSettings::ACQUIRE_TIMEOUT);
        if url.starts_with("sqlite:") {
            let (url, synchronous) = sqlite_synchronous(url)?;
            let options = SqliteConnectOptions::from_str(&url)
                .map_err(DatabaseError::Connect)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(synchronous)
                .busy_timeout(wait)
                .foreign_keys(true)
                // Reads map the file instead of copying pages into each connection's cache:
                // random inserts into the token id index read pages all over it.
                .pragma("mmap_size", "268435456");
            let pool = SqlitePoolOptions::new()
                .max_connections(settings.max_connections.unwrap_or(8).max(1))
                .acquire_timeout(wait)
                .connect_with(options)
                .await
                .map_err(DatabaseError::Connect)?;
            Ok(Self::from_store(Arc::new(SqliteStore::new(pool)), "sqlite"))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(settings.max_connections.unwrap_or(16).max(1))
                .acquire_timeout(wait)
                .connect(url)
                .await
                .map_err(DatabaseError::Connect)?;
            Ok(Self::from_store(Arc::new(PgStore::new(pool)), "postgres"))
        } else if is_mysql_url(url) {
            Self::connect_mysql(url, settings.max_connections, wait).await
        } else {
            Err(DatabaseError::UnsupportedUrl)
        }
    }

    #[cfg(feature = "mysql")]
    async fn connect_mysql(url: &str, max_connections: Option<u32>, wait: Duration) -> Result<Self, DatabaseError> {
        // sqlx sets each connection's time zone to UTC and its character set to utf8mb4.
        let pool = sqlx::mysql::MySqlPoolOptions::new()
            .max_connections(max_connections.unwrap_or(16).max(1))
            .acquire_timeout(wait)
            .connect(url)
            .await
            .map_err(DatabaseError::Connect)?;
        Ok(Self::from_store(Arc::new(MySqlStore::new(pool)), "mysql"))
    }

    #[cfg(not(feature = "mysql"))]
    async fn connect_mysql(_url: &str, _max: Option<u32>, _wait: Duration) -> Result<Self, DatabaseError> {
        Err(DatabaseError::Url(
            "this build has no MySQL support: build passport-sqlx with its `mysql` feature".to_owned(),
        ))
    }

    fn from_store<S>(store: Arc<S>, kind: &'static str) -> Self
    where
        S: passport::Store + SessionStore + UserAdmin + Backend + HasPool + 'static,
    {
        Self {
            pool: store.sql_pool(),
            store: store.clone(),
            sessions: store.clone(),
            users: store.clone(),
            backend: store,
            kind,
        }
    }

    /// Uses a pool the application already has; ours and the application's tables then live
    /// in one database. Requirements, checked here: a SQLite pool needs a busy timeout
    /// (`SqliteConnectOptions::busy_timeout`; [`Database::connect`] sets 10 s), or concurrent
    /// writers fail at once with "database is locked"; WAL (`journal_mode(Wal)`) is strongly
    /// advised (readers then never wait for writers) and its absence is logged. A PostgreSQL
    /// or MySQL pool needs nothing special beyond a few connections more than your own load
    /// (on MySQL our tables are InnoDB; times are stored and read as UTC whatever the
    /// connection's time zone).
    pub async fn from_pool(pool: impl Into<SqlPool>) -> Result<Self, DatabaseError> {
        match pool.into() {
            SqlPool::Sqlite(pool) => {
                check_sqlite_pool(&pool).await?;
                Ok(Self::from_store(Arc::new(SqliteStore::new(pool)), "sqlite"))
            }
            SqlPool::Postgres(pool) => Ok(Self::from_store(Arc::new(PgStore::new(pool)), "postgres")),
            #[cfg(feature = "mysql")]
            SqlPool::MySql(pool) => Ok(Self::from_store(Arc::new(MySqlStore::new(pool)), "mysql")),
        }
    }

    /// Applies the pending migrations of the core's tables (`oauth_*`, `passport_secrets`);
    /// returns how many ran. Add [`migrate_sessions`](Self::migrate_sessions) for the built-in
    /// pages and [`migrate_users`](Self::migrate_users) for [`SqlUserProvider`].
    pub async fn migrate(&self) -> Result<usize, DatabaseError> {
        self.migrate_schemas(&[Schema::Core]).await
    }

    /// Applies the pending migrations of `passport_sessions` (the pages' session store).
    pub async fn migrate_sessions(&self) -> Result<usize, DatabaseError> {
        self.migrate_schemas(&[Schema::Sessions]).await
    }

    /// Applies the pending migrations of `passport_users` (the SQL user provider).
    pub async fn migrate_users(&self) -> Result<usize, DatabaseError> {
        self.migrate_schemas(&[Schema::Users]).await
    }

    /// Applies the pending migrations of these sets (e.g. [`Schema::ALL`], as the standalone
    /// server does).
    pub async fn migrate_schemas(&self, wanted: &[Schema]) -> Result<usize, DatabaseError> {
        self.backend.migrate(wanted).await.map_err(DatabaseError::Migrate)
    }

    /// What [`migrate_schemas`](Self::migrate_schemas) would do, changing nothing (for
    /// `passport migrate --dry-run`, and for a server that must not migrate by itself).
    pub async fn migration_plan(&self, wanted: &[Schema]) -> Result<Vec<PlannedStep>, DatabaseError> {
        self.backend.plan(wanted).await.map_err(DatabaseError::Migrate)
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

    /// The users of the Laravel application whose database this is, from the table `config`
    /// names (checked now: see [`LaravelUserProvider::connect`] for the errors), verifying
    /// passwords with the process's shared hasher. Register it as the `Passport`'s user
    /// provider.
    pub async fn laravel_user_provider(
        &self,
        config: &passport::LaravelUsersConfig,
    ) -> Result<Arc<dyn passport::UserProvider>, DatabaseError> {
        Ok(Arc::new(LaravelUserProvider::connect(self.pool.clone(), config).await?))
    }

    /// The state of each connection pool (open, idle, the most allowed), e.g. for gauges.
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        self.backend.pool_stats()
    }

    /// The pools as Prometheus gauges: register them on the `Passport` served from this
    /// database with `passport.metrics().collector(|| db.pool_metrics())`, and they appear in
    /// [`passport::Metrics::render`].
    pub fn pool_metrics(&self) -> PoolMetrics {
        PoolMetrics {
            backend: self.backend.clone(),
        }
    }

    /// `"sqlite"`, `"postgres"` or `"mysql"`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Closes the pool, waiting for connections to finish (checkpointing SQLite's WAL).
    pub async fn close(&self) {
        self.backend.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_synchronous_parameter_is_ours_and_leaves_the_rest_to_sqlx() {
        let (url, sync) = sqlite_synchronous("sqlite://a.db?mode=rwc&synchronous=FULL").unwrap();
        assert_eq!(url, "sqlite://a.db?mode=rwc");
        assert!(matches!(sync, SqliteSynchronous::Full));
        let (url, sync) = sqlite_synchronous("sqlite://a.db?synchronous=normal").unwrap();
        assert_eq!(url, "sqlite://a.db");
        assert!(matches!(sync, SqliteSynchronous::Normal));
        let (url, sync) = sqlite_synchronous("sqlite://a.db").unwrap();
        assert_eq!(url, "sqlite://a.db");
        assert!(matches!(sync, SqliteSynchronous::Normal));
        let err = sqlite_synchronous("sqlite://a.db?synchronous=off").unwrap_err();
        assert!(err.to_string().contains("synchronous=full"), "{err}");
    }
}
