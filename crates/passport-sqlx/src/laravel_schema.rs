//! A Laravel Passport database (11/12 or 13) brought, in place, to what our first core
//! migration makes, so the later ones run on it as on ours.
//!
//! Passport's tables already exist with Passport's columns. We only add: the columns of ours
//! that a table lacks (nullable, or with a default, so rows the Laravel application keeps
//! writing stay valid and its models never see a difference) and the tables we need that are
//! missing. Nothing of Laravel's is dropped, renamed or rewritten; what a table lacks is found
//! by asking the database, so an application that added `grant_types` or `scopes` itself (as
//! Passport 11/12 documented) keeps its columns. Rows Laravel wrote leave our columns empty,
//! and the row mappers read Passport's columns for them (`rows.rs`).
//!
//! SQLite and MySQL/MariaDB, the databases Laravel applications run on and that the fixtures
//! of Passport 12 and 13 cover. PostgreSQL is refused: Laravel's `uuid` and `timestamp`
//! columns there do not compare with or decode into the types our queries bind.

use crate::migrate::{Conn, Flavor, MigrateError};

/// A column of ours, with its type per dialect (nullable or defaulted).
struct ColumnSpec {
    table: &'static str,
    column: &'static str,
    sqlite: &'static str,
    mysql: &'static str,
}

const fn col(table: &'static str, column: &'static str, sqlite: &'static str, mysql: &'static str) -> ColumnSpec {
    ColumnSpec {
        table,
        column,
        sqlite,
        mysql,
    }
}

/// Our first migration's columns of Passport's tables. The ones every Passport version has
/// (`id`, `name`, `revoked`, …) are not listed: they are there.
const COLUMNS: &[ColumnSpec] = &[
    col("oauth_clients", "owner_type", "TEXT NULL", "VARCHAR(255) NULL"),
    col("oauth_clients", "owner_id", "TEXT NULL", "VARCHAR(255) NULL"),
    col("oauth_clients", "redirect_uris", "TEXT NULL", "TEXT NULL"),
    col("oauth_clients", "grant_types", "TEXT NULL", "TEXT NULL"),
    col("oauth_clients", "scopes", "TEXT NULL", "TEXT NULL"),
    col(
        "oauth_clients",
        "skips_authorization",
        "BOOLEAN NOT NULL DEFAULT FALSE",
        "TINYINT(1) NOT NULL DEFAULT 0",
    ),
    col("oauth_access_tokens", "family_id", "TEXT NULL", "VARCHAR(100) NULL"),
    col("oauth_refresh_tokens", "client_id", "TEXT NULL", "VARCHAR(255) NULL"),
    col("oauth_refresh_tokens", "user_id", "TEXT NULL", "VARCHAR(255) NULL"),
    col("oauth_refresh_tokens", "scopes", "TEXT NULL", "TEXT NULL"),
    col("oauth_refresh_tokens", "family_id", "TEXT NULL", "VARCHAR(100) NULL"),
    col("oauth_refresh_tokens", "created_at", "TEXT NULL", "DATETIME(6) NULL"),
    col("oauth_auth_codes", "redirect_uri", "TEXT NULL", "TEXT NULL"),
    col("oauth_auth_codes", "code_challenge", "TEXT NULL", "VARCHAR(255) NULL"),
    col(
        "oauth_auth_codes",
        "code_challenge_method",
        "TEXT NULL",
        "VARCHAR(16) NULL",
    ),
    col("oauth_auth_codes", "extensions", "TEXT NULL", "TEXT NULL"),
    col("oauth_auth_codes", "created_at", "TEXT NULL", "DATETIME(6) NULL"),
    // Passport 13's device codes have neither.
    col(
        "oauth_device_codes",
        "interval",
        "INTEGER NOT NULL DEFAULT 5",
        "INT NOT NULL DEFAULT 5",
    ),
    col("oauth_device_codes", "created_at", "TEXT NULL", "DATETIME(6) NULL"),
];

/// Indexes of ours on Passport's tables: (table, index, columns).
const INDEXES: &[(&str, &str, &str)] = &[
    (
        "oauth_access_tokens",
        "oauth_access_tokens_family_id_index",
        "family_id",
    ),
    (
        "oauth_refresh_tokens",
        "oauth_refresh_tokens_family_id_index",
        "family_id",
    ),
];

/// Tables of our first migration that a Passport database may lack: (name, SQLite, MySQL).
/// Passport 11/12 have no device codes.
const TABLES: &[(&str, &str, &str)] = &[
    (
        "oauth_device_codes",
        "CREATE TABLE oauth_device_codes (id TEXT PRIMARY KEY NOT NULL, user_id TEXT NULL, \
         client_id TEXT NOT NULL, user_code TEXT NOT NULL UNIQUE, scopes TEXT NULL, \
         revoked BOOLEAN NOT NULL DEFAULT FALSE, user_approved_at TEXT NULL, last_polled_at TEXT NULL, \
         \"interval\" INTEGER NOT NULL DEFAULT 5, created_at TEXT NOT NULL, expires_at TEXT NULL)",
        "CREATE TABLE oauth_device_codes (id VARCHAR(100) PRIMARY KEY NOT NULL, user_id VARCHAR(255) NULL, \
         client_id VARCHAR(255) NOT NULL, user_code VARCHAR(32) NOT NULL UNIQUE, scopes TEXT NULL, \
         revoked TINYINT(1) NOT NULL DEFAULT 0, user_approved_at DATETIME(6) NULL, \
         last_polled_at DATETIME(6) NULL, `interval` INT NOT NULL DEFAULT 5, created_at DATETIME(6) NOT NULL, \
         expires_at DATETIME(6) NULL, INDEX oauth_device_codes_client_id_index (client_id)) \
         DEFAULT CHARSET = utf8mb4",
    ),
    (
        "oauth_pending_authorizations",
        "CREATE TABLE oauth_pending_authorizations (id TEXT PRIMARY KEY NOT NULL, session_id TEXT NOT NULL, \
         user_id TEXT NOT NULL, payload TEXT NOT NULL, expires_at TEXT NOT NULL)",
        "CREATE TABLE oauth_pending_authorizations (id VARCHAR(100) PRIMARY KEY NOT NULL, \
         session_id VARCHAR(100) NOT NULL, user_id VARCHAR(255) NOT NULL, payload TEXT NOT NULL, \
         expires_at DATETIME(6) NOT NULL, INDEX oauth_pending_authorizations_session_id_index (session_id)) \
         DEFAULT CHARSET = utf8mb4",
    ),
    (
        "passport_secrets",
        "CREATE TABLE passport_secrets (name TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)",
        "CREATE TABLE passport_secrets (name VARCHAR(100) PRIMARY KEY NOT NULL, value TEXT NOT NULL) \
         DEFAULT CHARSET = utf8mb4",
    ),
];

/// Passport's own tables, which tell a Laravel database.
const PASSPORT_TABLES: &[&str] = &[
    "oauth_clients",
    "oauth_access_tokens",
    "oauth_refresh_tokens",
    "oauth_auth_codes",
];

fn tables_sql(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table'",
        Flavor::Postgres => {
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()"
        }
        Flavor::Mysql => {
            "SELECT CAST(table_name AS CHAR) FROM information_schema.tables WHERE table_schema = DATABASE()"
        }
    }
}

/// The column names of `table` (one of our constants, never input).
fn columns_sql(flavor: Flavor, table: &str) -> String {
    match flavor {
        Flavor::Sqlite => format!("SELECT name FROM pragma_table_info('{table}')"),
        Flavor::Postgres => format!(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = '{table}'"
        ),
        Flavor::Mysql => format!(
            "SELECT CAST(column_name AS CHAR) FROM information_schema.columns \
             WHERE table_schema = DATABASE() AND table_name = '{table}'"
        ),
    }
}

/// Whether the database holds Laravel Passport's tables (and not ours: call it only while our
/// first core migration is not recorded).
pub(crate) async fn is_laravel(conn: &mut Conn, flavor: Flavor) -> Result<bool, MigrateError> {
    let tables = conn.strings(tables_sql(flavor)).await?;
    Ok(PASSPORT_TABLES
        .iter()
        .all(|t| tables.iter().any(|have| have.eq_ignore_ascii_case(t))))
}

/// The statements that bring a Laravel Passport database to our first core migration, in
/// order; empty when there is nothing to add.
pub(crate) async fn upgrade(conn: &mut Conn, flavor: Flavor) -> Result<Vec<String>, MigrateError> {
    if flavor == Flavor::Postgres {
        return Err(MigrateError::Unsupported(
            "a Laravel Passport database on PostgreSQL is not supported yet (SQLite and MySQL/MariaDB are)".into(),
        ));
    }
    let tables = conn.strings(tables_sql(flavor)).await?;
    let has_table = |name: &str| tables.iter().any(|t| t.eq_ignore_ascii_case(name));
    let mut statements = Vec::new();
    for (table, sqlite, mysql) in TABLES {
        if !has_table(table) {
            statements.push(match flavor {
                Flavor::Mysql => (*mysql).to_owned(),
                _ => (*sqlite).to_owned(),
            });
        }
    }
    let mut current: Option<(&str, Vec<String>)> = None;
    for spec in COLUMNS {
        // A table made just above has every column already.
        if !has_table(spec.table) {
            continue;
        }
        if current.as_ref().is_none_or(|(t, _)| *t != spec.table) {
            current = Some((spec.table, conn.strings(&columns_sql(flavor, spec.table)).await?));
        }
        let Some((_, columns)) = &current else { continue };
        if columns.iter().any(|c| c.eq_ignore_ascii_case(spec.column)) {
            continue;
        }
        statements.push(match flavor {
            Flavor::Mysql => format!("ALTER TABLE {} ADD COLUMN `{}` {}", spec.table, spec.column, spec.mysql),
            _ => format!(
                "ALTER TABLE {} ADD COLUMN \"{}\" {}",
                spec.table, spec.column, spec.sqlite
            ),
        });
    }
    for (table, index, column) in INDEXES {
        match flavor {
            // MySQL (unlike MariaDB) has no `CREATE INDEX IF NOT EXISTS`.
            Flavor::Mysql => {
                let existing = conn
                    .strings(&format!(
                        "SELECT CAST(index_name AS CHAR) FROM information_schema.statistics \
                         WHERE table_schema = DATABASE() AND table_name = '{table}'"
                    ))
                    .await?;
                if !existing.iter().any(|i| i.eq_ignore_ascii_case(index)) {
                    statements.push(format!("CREATE INDEX {index} ON {table} ({column})"));
                }
            }
            _ => statements.push(format!("CREATE INDEX IF NOT EXISTS {index} ON {table} ({column})")),
        }
    }
    Ok(statements)
}
