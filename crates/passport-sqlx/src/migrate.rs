//! Our schema migrations, applied by a runner of our own that records them in a table of our
//! own (`passport_migrations`), never in sqlx's `_sqlx_migrations`: an application that keeps
//! its own `sqlx::migrate!` history in the same database migrates both, in either order.
//!
//! Migrations come in three sets, so a database gets only what the features in use need:
//! [`Schema::Core`] (the `oauth_*` tables and `passport_secrets`), [`Schema::Sessions`]
//! (`passport_sessions`, for the built-in pages) and [`Schema::Users`] (`passport_users`, for
//! the SQL user provider).
//!
//! One run is one transaction, under a lock (PostgreSQL: a transaction-level advisory lock;
//! SQLite: `BEGIN IMMEDIATE`), so instances starting together apply each migration once and the
//! others wait, then find nothing to do. A migration changed after it was applied is refused.
//! MySQL cannot do that, as DDL commits by itself: see `run_mysql`.
//!
//! A database made by release 1 (one sqlx migration, `20260101000001`, that created everything)
//! is upgraded in place: its tables are renamed and completed to the first version of each of
//! the three sets, which are recorded as applied (later migrations then run as usual), and its
//! row leaves `_sqlx_migrations`.

use sha2::{Digest as _, Sha256};
use sqlx::{Connection as _, Executor as _, Row as _};

/// A set of tables a feature needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Schema {
    /// Clients, tokens, codes, device codes, consent requests, the server secret.
    Core,
    /// Browser sessions of the sign-in and consent pages (`passport_axum::Pages`).
    Sessions,
    /// The standalone server's users ([`crate::SqlUserProvider`]).
    Users,
}

impl Schema {
    /// Every set.
    pub const ALL: [Schema; 3] = [Self::Core, Self::Sessions, Self::Users];

    fn name(self) -> &'static str {
        match self {
            Self::Core => "core",
            Self::Sessions => "sessions",
            Self::Users => "users",
        }
    }
}

/// One migration of one set.
struct Migration {
    schema: Schema,
    version: i64,
    name: &'static str,
    sql: &'static str,
}

impl Migration {
    fn checksum(&self) -> String {
        Sha256::digest(self.sql.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The row recording it. Our own constants (no quotes in them), not input, so they are
    /// written into the statement.
    fn record(&self) -> String {
        format!(
            "INSERT INTO passport_migrations (schema_name, version, name, checksum) VALUES ('{}', {}, '{}', '{}')",
            self.schema.name(),
            self.version,
            self.name,
            self.checksum()
        )
    }
}

macro_rules! migrations {
    ($dialect:literal) => {
        &[
            Migration {
                schema: Schema::Core,
                version: 1,
                name: "create oauth tables",
                sql: include_str!(concat!(
                    "../migrations/",
                    $dialect,
                    "/core/0001_create_oauth_tables.sql"
                )),
            },
            Migration {
                schema: Schema::Core,
                version: 2,
                name: "refresh rotation",
                sql: include_str!(concat!("../migrations/", $dialect, "/core/0002_refresh_rotation.sql")),
            },
            Migration {
                schema: Schema::Core,
                version: 3,
                name: "openid connect",
                sql: include_str!(concat!("../migrations/", $dialect, "/core/0003_openid_connect.sql")),
            },
            Migration {
                schema: Schema::Core,
                version: 4,
                name: "openid refresh auth time",
                sql: include_str!(concat!(
                    "../migrations/",
                    $dialect,
                    "/core/0004_openid_refresh_auth_time.sql"
                )),
            },
            Migration {
                schema: Schema::Core,
                version: 5,
                name: "revocation feed",
                sql: include_str!(concat!("../migrations/", $dialect, "/core/0005_revocation_feed.sql")),
            },
            Migration {
                schema: Schema::Core,
                version: 6,
                name: "failure counters",
                sql: include_str!(concat!("../migrations/", $dialect, "/core/0006_failure_counters.sql")),
            },
            Migration {
                schema: Schema::Core,
                version: 7,
                name: "client policies",
                sql: include_str!(concat!("../migrations/", $dialect, "/core/0007_client_policies.sql")),
            },
            // Version 8 is pushed authorization requests (RFC 9126).
            Migration {
                schema: Schema::Core,
                version: 8,
                name: "pushed requests",
                sql: include_str!(concat!("../migrations/", $dialect, "/core/0008_pushed_requests.sql")),
            },
            Migration {
                schema: Schema::Core,
                version: 9,
                name: "dpop",
                sql: include_str!(concat!("../migrations/", $dialect, "/core/0009_dpop.sql")),
            },
            Migration {
                schema: Schema::Core,
                version: 10,
                name: "client registration",
                sql: include_str!(concat!(
                    "../migrations/",
                    $dialect,
                    "/core/0010_client_registration.sql"
                )),
            },
            Migration {
                schema: Schema::Core,
                version: 11,
                name: "private key jwt",
                sql: include_str!(concat!("../migrations/", $dialect, "/core/0011_private_key_jwt.sql")),
            },
            Migration {
                schema: Schema::Core,
                version: 12,
                name: "fapi profile",
                sql: include_str!(concat!("../migrations/", $dialect, "/core/0012_fapi_profile.sql")),
            },
            Migration {
                schema: Schema::Core,
                version: 13,
                name: "jwks uri",
                sql: include_str!(concat!("../migrations/", $dialect, "/core/0013_jwks_uri.sql")),
            },
            Migration {
                schema: Schema::Core,
                version: 14,
                name: "token deleted feed",
                sql: include_str!(concat!("../migrations/", $dialect, "/core/0014_token_deleted_feed.sql")),
            },
            Migration {
                schema: Schema::Sessions,
                version: 1,
                name: "create sessions",
                sql: include_str!(concat!(
                    "../migrations/",
                    $dialect,
                    "/sessions/0001_create_sessions.sql"
                )),
            },
            Migration {
                schema: Schema::Users,
                version: 1,
                name: "create users",
                sql: include_str!(concat!("../migrations/", $dialect, "/users/0001_create_users.sql")),
            },
            Migration {
                schema: Schema::Users,
                version: 2,
                name: "openid claims",
                sql: include_str!(concat!("../migrations/", $dialect, "/users/0002_openid_claims.sql")),
            },
            Migration {
                schema: Schema::Users,
                version: 3,
                name: "revocation feed",
                sql: include_str!(concat!("../migrations/", $dialect, "/users/0003_revocation_feed.sql")),
            },
        ]
    };
}

static SQLITE: &[Migration] = migrations!("sqlite");
static POSTGRES: &[Migration] = migrations!("postgres");
#[cfg(feature = "mysql")]
static MYSQL: &[Migration] = migrations!("mysql");

/// Release 1's row in `_sqlx_migrations`.
const RELEASE_1: &str = "version = 20260101000001 AND description = 'create passport tables'";

/// Why migrating failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// The database refused a statement.
    #[error("{0}")]
    Database(#[from] sqlx::Error),
    /// Another process held the migration lock longer than we waited (MySQL; the other
    /// dialects wait for as long as their lock takes).
    #[error("another process has been migrating this database for {0} s: try again once it is done")]
    Locked(u32),
    /// An applied migration differs from the one shipped.
    #[error(
        "migration {schema}/{version} ({name}) was changed after it was applied: restore it, or restore the database from before it"
    )]
    Changed {
        /// The set.
        schema: &'static str,
        /// Its version.
        version: i64,
        /// Its name.
        name: &'static str,
    },
    /// The database cannot be migrated here (a Laravel database on PostgreSQL).
    #[error("{0}")]
    Unsupported(String),
}

/// The SQL dialect, where a statement must be written per dialect (the Laravel upgrade).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    Sqlite,
    Postgres,
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    Mysql,
}

/// What differs between the dialects for a run.
pub(crate) struct Dialect {
    flavor: Flavor,
    migrations: &'static [Migration],
    release_1_upgrade: &'static str,
    begin: &'static [&'static str],
    create_table: &'static str,
    has_sqlx_table: &'static str,
}

pub(crate) const SQLITE_DIALECT: Dialect = Dialect {
    flavor: Flavor::Sqlite,
    migrations: SQLITE,
    release_1_upgrade: include_str!("../migrations/sqlite/legacy/release_1_upgrade.sql"),
    // Writers queue here (busy_timeout): one instance migrates, the others wait for it.
    begin: &["BEGIN IMMEDIATE"],
    create_table: "CREATE TABLE IF NOT EXISTS passport_migrations (schema_name TEXT NOT NULL, \
         version BIGINT NOT NULL, name TEXT NOT NULL, checksum TEXT NOT NULL, \
         applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (schema_name, version))",
    has_sqlx_table: "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
};

pub(crate) const POSTGRES_DIALECT: Dialect = Dialect {
    flavor: Flavor::Postgres,
    migrations: POSTGRES,
    release_1_upgrade: include_str!("../migrations/postgres/legacy/release_1_upgrade.sql"),
    begin: &["BEGIN", "SELECT pg_advisory_xact_lock(7302147401)"],
    create_table: "CREATE TABLE IF NOT EXISTS passport_migrations (schema_name TEXT NOT NULL, \
         version BIGINT NOT NULL, name TEXT NOT NULL, checksum TEXT NOT NULL, \
         applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (schema_name, version))",
    has_sqlx_table: "SELECT COUNT(*) FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'",
};

/// MySQL never had a release 1 (nothing to upgrade), and its migrations cannot share one
/// transaction (see [`run_mysql`]); `begin` and the release-1 fields go unused.
#[cfg(feature = "mysql")]
pub(crate) const MYSQL_DIALECT: Dialect = Dialect {
    flavor: Flavor::Mysql,
    migrations: MYSQL,
    release_1_upgrade: "",
    begin: &[],
    // A case-insensitive collation, unlike our tables' utf8mb4_bin: sqlx reads text of a binary
    // collation as bytes only, and these names are ours.
    create_table: "CREATE TABLE IF NOT EXISTS passport_migrations (schema_name VARCHAR(64) NOT NULL, \
         version BIGINT NOT NULL, name VARCHAR(191) NOT NULL, checksum VARCHAR(64) NOT NULL, \
         applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), PRIMARY KEY (schema_name, version)) \
         ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
    has_sqlx_table: "SELECT 0",
};

/// The statements of a MySQL migration file, in order: they are sent one at a time (a server
/// or proxy may refuse several statements in one query, and `CREATE TRIGGER` cannot be
/// prepared). Our MySQL files end each statement with `;` and have none inside one (their
/// triggers are single statements, without `BEGIN … END`); `--` comment lines are dropped
/// first.
#[cfg(feature = "mysql")]
fn mysql_statements(sql: &str) -> Vec<String> {
    let code: Vec<&str> = sql
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect();
    code.join("\n")
        .split(';')
        .map(str::trim)
        .filter(|statement| !statement.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A connection of any driver; each method is one statement.
pub(crate) enum Conn {
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
    #[cfg(feature = "mysql")]
    MySql(sqlx::pool::PoolConnection<sqlx::MySql>),
}

impl Conn {
    /// Runs a statement, or a script of several (a plain string runs as a script, as sqlx's
    /// migrator runs its files).
    async fn execute(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(c) => c.execute(sql).await.map(|_| ()),
            Self::Postgres(c) => c.execute(sql).await.map(|_| ()),
            #[cfg(feature = "mysql")]
            Self::MySql(c) => {
                for statement in mysql_statements(sql) {
                    c.execute(statement.as_str()).await?;
                }
                Ok(())
            }
        }
    }

    /// The single number a `SELECT COUNT(*)` answers.
    async fn count(&mut self, sql: &str) -> Result<i64, sqlx::Error> {
        match self {
            Self::Sqlite(c) => sqlx::query(sql).fetch_one(&mut **c).await?.try_get(0),
            Self::Postgres(c) => sqlx::query(sql).fetch_one(&mut **c).await?.try_get(0),
            #[cfg(feature = "mysql")]
            Self::MySql(c) => sqlx::query(sql).fetch_one(&mut **c).await?.try_get(0),
        }
    }

    /// The first column of every row, as text.
    pub(crate) async fn strings(&mut self, sql: &str) -> Result<Vec<String>, sqlx::Error> {
        match self {
            Self::Sqlite(c) => sqlx::query(sql)
                .fetch_all(&mut **c)
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect(),
            Self::Postgres(c) => sqlx::query(sql)
                .fetch_all(&mut **c)
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect(),
            #[cfg(feature = "mysql")]
            Self::MySql(c) => sqlx::query(sql)
                .fetch_all(&mut **c)
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect(),
        }
    }

    /// The applied migrations: (set, version, checksum).
    async fn applied(&mut self) -> Result<Vec<(String, i64, String)>, sqlx::Error> {
        const SQL: &str = "SELECT schema_name, version, checksum FROM passport_migrations";
        fn read<R: sqlx::Row>(row: &R) -> Result<(String, i64, String), sqlx::Error>
        where
            usize: sqlx::ColumnIndex<R>,
            for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        {
            Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
        }
        match self {
            Self::Sqlite(c) => sqlx::query(SQL).fetch_all(&mut **c).await?.iter().map(read).collect(),
            Self::Postgres(c) => sqlx::query(SQL).fetch_all(&mut **c).await?.iter().map(read).collect(),
            #[cfg(feature = "mysql")]
            Self::MySql(c) => sqlx::query(SQL).fetch_all(&mut **c).await?.iter().map(read).collect(),
        }
    }

    /// Closes the connection instead of giving it back to the pool.
    async fn discard(self) {
        let _ = match self {
            Self::Sqlite(c) => c.detach().close().await,
            Self::Postgres(c) => c.detach().close().await,
            #[cfg(feature = "mysql")]
            Self::MySql(c) => c.detach().close().await,
        };
    }
}

/// Applies the pending migrations of `wanted` on `conn`, in one locked transaction; returns how
/// many ran (an in-place upgrade of release 1 counts as one).
pub(crate) async fn run(mut conn: Conn, dialect: &Dialect, wanted: &[Schema]) -> Result<usize, MigrateError> {
    for statement in dialect.begin {
        conn.execute(statement).await?;
    }
    let result = apply(&mut conn, dialect, wanted).await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    if let Err(err) = conn.execute(end).await {
        // A connection whose transaction is in doubt is not given back to the pool.
        conn.discard().await;
        return Err(err.into());
    }
    result
}

/// How long a MySQL run waits for another process's run to end.
#[cfg(feature = "mysql")]
const MYSQL_LOCK_WAIT_SECONDS: u32 = 300;

/// Applies the pending migrations of `wanted` on a MySQL connection; returns how many ran.
///
/// MySQL commits before and after every DDL statement, so a run cannot be one transaction.
/// Instead one process migrates at a time under a named lock held by this connection
/// (`GET_LOCK`, named after the database so that runs on other databases of the server do not
/// wait; released at the end, or by the server if the connection drops), and each migration is
/// recorded right after it applied: a failure leaves the ones before it applied and recorded.
/// A MySQL migration file can run again after failing midway (tables are created `IF NOT
/// EXISTS`, triggers dropped before they are created, and a file's one `ALTER TABLE`, if any,
/// comes last), so the next run completes it.
#[cfg(feature = "mysql")]
pub(crate) async fn run_mysql(mut conn: Conn, wanted: &[Schema]) -> Result<usize, MigrateError> {
    const LOCK: &str = "CONCAT('passport_migrate_', SHA1(COALESCE(DATABASE(), '')))";
    let locked = conn
        .count(&format!(
            "SELECT CAST(COALESCE(GET_LOCK({LOCK}, {MYSQL_LOCK_WAIT_SECONDS}), 0) AS SIGNED)"
        ))
        .await?;
    if locked != 1 {
        return Err(MigrateError::Locked(MYSQL_LOCK_WAIT_SECONDS));
    }
    let result = apply(&mut conn, &MYSQL_DIALECT, wanted).await;
    if let Err(err) = conn.execute(&format!("DO RELEASE_LOCK({LOCK})")).await {
        // The server releases the lock with the connection.
        conn.discard().await;
        result?;
        return Err(err.into());
    }
    result
}

async fn apply(conn: &mut Conn, dialect: &Dialect, wanted: &[Schema]) -> Result<usize, MigrateError> {
    conn.execute(dialect.create_table).await?;
    let mut applied = conn.applied().await?;
    let mut count = 0;
    if applied.is_empty()
        && conn.count(dialect.has_sqlx_table).await? > 0
        && conn
            .count(&format!("SELECT COUNT(*) FROM _sqlx_migrations WHERE {RELEASE_1}"))
            .await?
            > 0
    {
        // The upgrade brings every set to its first version; later ones run below.
        conn.execute(dialect.release_1_upgrade).await?;
        for migration in dialect.migrations.iter().filter(|m| m.version == 1) {
            conn.execute(&migration.record()).await?;
            applied.push((
                migration.schema.name().to_owned(),
                migration.version,
                migration.checksum(),
            ));
        }
        conn.execute(&format!("DELETE FROM _sqlx_migrations WHERE {RELEASE_1}"))
            .await?;
        count += 1;
    }
    if let Some(statements) = laravel_upgrade(conn, dialect, wanted, &applied).await? {
        // A Laravel Passport database: its tables completed in place stand for our first
        // core migration; the later ones run below.
        for statement in &statements {
            conn.execute(statement).await?;
        }
        let first = dialect
            .migrations
            .iter()
            .find(|m| m.schema == Schema::Core && m.version == 1);
        if let Some(migration) = first {
            conn.execute(&migration.record()).await?;
            applied.push((
                migration.schema.name().to_owned(),
                migration.version,
                migration.checksum(),
            ));
        }
        count += 1;
    }
    for migration in dialect.migrations.iter().filter(|m| wanted.contains(&m.schema)) {
        let schema = migration.schema.name();
        match applied.iter().find(|(s, v, _)| s == schema && *v == migration.version) {
            Some((_, _, checksum)) if *checksum == migration.checksum() => {}
            Some(_) => {
                return Err(MigrateError::Changed {
                    schema,
                    version: migration.version,
                    name: migration.name,
                });
            }
            None => {
                conn.execute(migration.sql).await?;
                conn.execute(&migration.record()).await?;
                count += 1;
            }
        }
    }
    Ok(count)
}

/// The statements of the Laravel upgrade, when the core set is wanted, its first migration is
/// not applied, and the database holds Laravel Passport's tables.
async fn laravel_upgrade(
    conn: &mut Conn,
    dialect: &Dialect,
    wanted: &[Schema],
    applied: &[(String, i64, String)],
) -> Result<Option<Vec<String>>, MigrateError> {
    let core_started = applied.iter().any(|(s, v, _)| s == Schema::Core.name() && *v == 1);
    if core_started
        || !wanted.contains(&Schema::Core)
        || !crate::laravel_schema::is_laravel(conn, dialect.flavor).await?
    {
        return Ok(None);
    }
    crate::laravel_schema::upgrade(conn, dialect.flavor).await.map(Some)
}

/// One step `migrate` would take, for `passport migrate --dry-run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStep {
    /// What it is: `core/0002 refresh rotation`, or `laravel upgrade` for the columns and
    /// tables a Laravel Passport database gets before our first core migration is recorded.
    pub label: String,
    /// The SQL it runs.
    pub sql: String,
}

/// What [`run`] would do on `conn`, changing nothing (not even our bookkeeping table).
pub(crate) async fn plan(
    mut conn: Conn,
    dialect: &Dialect,
    wanted: &[Schema],
) -> Result<Vec<PlannedStep>, MigrateError> {
    let have_table = match dialect.flavor {
        Flavor::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'passport_migrations'",
        Flavor::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = 'passport_migrations'"
        }
        Flavor::Mysql => {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_name = 'passport_migrations'"
        }
    };
    let mut applied = if conn.count(have_table).await? > 0 {
        conn.applied().await?
    } else {
        Vec::new()
    };
    let mut steps = Vec::new();
    if let Some(statements) = laravel_upgrade(&mut conn, dialect, wanted, &applied).await? {
        steps.push(PlannedStep {
            label: "laravel upgrade (Passport's tables completed in place; stands for core/0001)".to_owned(),
            sql: statements.join(";\n"),
        });
        applied.push((Schema::Core.name().to_owned(), 1, String::new()));
    }
    for migration in dialect.migrations.iter().filter(|m| wanted.contains(&m.schema)) {
        let schema = migration.schema.name();
        match applied.iter().find(|(s, v, _)| s == schema && *v == migration.version) {
            Some((_, _, checksum)) if checksum.is_empty() || *checksum == migration.checksum() => {}
            Some(_) => {
                return Err(MigrateError::Changed {
                    schema,
                    version: migration.version,
                    name: migration.name,
                });
            }
            None => steps.push(PlannedStep {
                label: format!("{schema}/{:04} {}", migration.version, migration.name),
                sql: migration.sql.trim().to_owned(),
            }),
        }
    }
    Ok(steps)
}

#[cfg(all(test, feature = "mysql"))]
mod tests {
    use super::*;

    /// What `run_mysql` relies on to finish a migration that failed midway: only statements
    /// that can run again, and at most one `ALTER TABLE`, last; no trigger with a body of
    /// several statements (the split on `;` would cut it).
    #[test]
    fn mysql_migrations_split_into_statements_that_can_run_again() {
        for migration in MYSQL {
            let what = format!("{}/{} {}", migration.schema.name(), migration.version, migration.name);
            let statements = mysql_statements(migration.sql);
            assert!(!statements.is_empty(), "{what}");
            let alters = statements.iter().filter(|s| s.starts_with("ALTER TABLE")).count();
            assert!(alters <= 1, "{what}: one ALTER TABLE at most");
            if alters == 1 {
                assert!(
                    statements[statements.len() - 1].starts_with("ALTER TABLE"),
                    "{what}: the ALTER comes last"
                );
            }
            for (i, statement) in statements.iter().enumerate() {
                assert!(!statement.contains("BEGIN"), "{what}: {statement}");
                if let Some(rest) = statement.strip_prefix("CREATE TRIGGER ") {
                    let name = rest.split_whitespace().next().unwrap_or_default();
                    assert_eq!(
                        statements.get(i.wrapping_sub(1)).map(String::as_str),
                        Some(format!("DROP TRIGGER IF EXISTS {name}").as_str()),
                        "{what}: a trigger is dropped before it is created"
                    );
                } else {
                    assert!(
                        ["CREATE TABLE IF NOT EXISTS ", "DROP TRIGGER IF EXISTS ", "ALTER TABLE "]
                            .iter()
                            .any(|start| statement.starts_with(start)),
                        "{what}: {statement}"
                    );
                }
            }
        }
    }

    #[test]
    fn comment_lines_and_blank_statements_are_dropped() {
        let sql = "-- a comment; with a semicolon\nCREATE TABLE IF NOT EXISTS a (x INT);\n\n  -- more\nDROP TRIGGER IF EXISTS t;\n";
        assert_eq!(
            mysql_statements(sql),
            ["CREATE TABLE IF NOT EXISTS a (x INT)", "DROP TRIGGER IF EXISTS t"]
        );
    }
}
