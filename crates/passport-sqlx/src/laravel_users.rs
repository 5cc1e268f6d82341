//! Users from a Laravel application's own table, for running on the application's database:
//! [`LaravelUserProvider`] serves the `users` table (its name and columns configurable with
//! [`LaravelUsersConfig`]) to the password grant, the sign-in page and the guard. Passwords are
//! bcrypt (`$2y$`) or argon2, as Laravel's `Hash::make` writes them; for unknown users a dummy
//! check with the same algorithm and cost as the stored hashes spends the same time, so
//! timing does not tell which accounts exist. Laravel owns these rows: we never write or
//! delete them.
//!
//! Table and column names come from configuration, so they are checked (ASCII letters, digits
//! and `_`, the table with at most one `schema.` prefix) and quoted for the dialect before any
//! SQL is built; at construction the table and every column are looked up in the catalog,
//! and a missing one is an error naming it. The SQL of each dialect is built by one function
//! ([`Queries::new`]) from its [`Dialect`]'s quoting, placeholders and casts.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use passport::{HashParams, LaravelUsersConfig, PasswordHasher, StoreError, User, UserClaims, UserProvider};
use sqlx::{ColumnIndex, Decode, Row, Type};
use tokio::sync::OnceCell;

use crate::rows::backend;
use crate::users::numeric_id;
use crate::{DatabaseError, SqlPool};

/// The columns Laravel's migrations add beside the configured ones, read when present.
const EMAIL_VERIFIED_AT: &str = "email_verified_at";
const UPDATED_AT: &str = "updated_at";

/// Longest identifier part accepted (PostgreSQL's limit; MySQL's is 64).
const MAX_IDENT: usize = 63;

/// How one database spells what the queries need. (MySQL: backtick quotes, `?` placeholders,
/// `CAST(… AS CHAR)`, case-insensitive column names, and `information_schema.columns` in
/// [`table_columns`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL / MariaDB.
    #[cfg(feature = "mysql")]
    MySql,
}

impl Dialect {
    /// An identifier part, quoted (its characters were checked: nothing to escape, but a quote
    /// would be doubled all the same).
    fn quote(self, part: &str) -> String {
        match self {
            Self::Sqlite | Self::Postgres => format!("\"{}\"", part.replace('"', "\"\"")),
            #[cfg(feature = "mysql")]
            Self::MySql => format!("`{}`", part.replace('`', "``")),
        }
    }

    /// The `n`th (1-based) bind parameter.
    fn placeholder(self, n: usize) -> String {
        match self {
            Self::Sqlite => format!("?{n}"),
            Self::Postgres => format!("${n}"),
            #[cfg(feature = "mysql")]
            Self::MySql => "?".to_owned(),
        }
    }

    /// `expr` as text (every column is read as text and decoded here, whatever its type).
    fn as_text(self, expr: &str) -> String {
        match self {
            Self::Sqlite | Self::Postgres => format!("CAST({expr} AS TEXT)"),
            #[cfg(feature = "mysql")]
            Self::MySql => format!("CAST({expr} AS CHAR)"),
        }
    }

    /// Whether the catalog's column names compare case-insensitively.
    fn folds_case(self) -> bool {
        match self {
            Self::Sqlite => true,
            Self::Postgres => false,
            #[cfg(feature = "mysql")]
            Self::MySql => true,
        }
    }
}

/// A checked identifier: a table (maybe `schema.table`) or a column.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ident {
    schema: Option<String>,
    name: String,
}

impl Ident {
    /// Checks `text`, the value of setting `laravel_users.<setting>`.
    fn parse(setting: &str, text: &str, qualified: bool) -> Result<Self, DatabaseError> {
        let bad = || {
            let shape = if qualified {
                "letters, digits and _, optionally after one schema. prefix"
            } else {
                "letters, digits and _"
            };
            DatabaseError::UserTable(format!(
                "laravel_users.{setting} = {text:?} is not a plain identifier ({shape}, starting with a letter or _, at most {MAX_IDENT} characters)"
            ))
        };
        let (schema, name) = match text.split_once('.') {
            Some((schema, name)) if qualified => (Some(schema), name),
            Some(_) => return Err(bad()),
            None => (None, text),
        };
        if !schema.is_none_or(valid_part) || !valid_part(name) {
            return Err(bad());
        }
        Ok(Self {
            schema: schema.map(str::to_owned),
            name: name.to_owned(),
        })
    }

    fn quoted(&self, dialect: Dialect) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", dialect.quote(schema), dialect.quote(&self.name)),
            None => dialect.quote(&self.name),
        }
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

fn valid_part(part: &str) -> bool {
    let mut chars = part.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok && part.len() <= MAX_IDENT && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// How ids are compared: bound as integers (Laravel's `bigint unsigned`), or as text for a
/// textual key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdKind {
    Integer,
    Text,
}

impl IdKind {
    /// From the column's declared type, as the catalog spells it.
    fn of(declared: &str) -> Option<Self> {
        let declared = declared.to_ascii_lowercase();
        let first = declared.split([' ', '(']).next().unwrap_or("");
        const INTEGERS: [&str; 9] = [
            "int",
            "integer",
            "bigint",
            "smallint",
            "tinyint",
            "mediumint",
            "int2",
            "int4",
            "int8",
        ];
        const TEXTS: [&str; 7] = ["text", "varchar", "char", "character", "nvarchar", "nchar", "citext"];
        if INTEGERS.contains(&first) {
            Some(Self::Integer)
        } else if TEXTS.contains(&first) {
            Some(Self::Text)
        } else {
            None
        }
    }
}

/// The configured columns, checked.
#[derive(Debug, Clone)]
struct Names {
    table: Ident,
    id: Ident,
    name: Ident,
    email: Ident,
    password: Ident,
}

impl Names {
    fn parse(config: &LaravelUsersConfig) -> Result<Self, DatabaseError> {
        Ok(Self {
            table: Ident::parse("table", &config.table, true)?,
            id: Ident::parse("id", &config.id, false)?,
            name: Ident::parse("name", &config.name, false)?,
            email: Ident::parse("email", &config.email, false)?,
            password: Ident::parse("password", &config.password, false)?,
        })
    }
}

/// Every statement the provider runs, built once for its dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Queries {
    /// id, name, email by exact email (at most two rows: more than one is ambiguous).
    by_email: String,
    /// The same, case-insensitively.
    by_email_folded: String,
    /// id, name, email by id.
    by_id: String,
    /// The password hash by id.
    password_by_id: String,
    /// `email_verified_at`, `updated_at` as text by id (NULL for an absent column); `None`
    /// when the table has neither.
    claims_by_id: Option<String>,
    /// The newest bcrypt or argon2 hash, the model of the dummy check.
    sample: String,
}

impl Queries {
    fn new(dialect: Dialect, names: &Names, verified: bool, updated: bool) -> Self {
        let table = names.table.quoted(dialect);
        let id = names.id.quoted(dialect);
        let email = names.email.quoted(dialect);
        let password = names.password.quoted(dialect);
        let p1 = dialect.placeholder(1);
        let user = format!(
            "SELECT {}, {}, {} FROM {table}",
            dialect.as_text(&id),
            dialect.as_text(&names.name.quoted(dialect)),
            dialect.as_text(&email),
        );
        let optional = |present: bool, column: &str| match present {
            true => dialect.as_text(&dialect.quote(column)),
            false => "NULL".to_owned(),
        };
        Self {
            by_email: format!("{user} WHERE {email} = {p1} LIMIT 2"),
            by_email_folded: format!("{user} WHERE LOWER({email}) = LOWER({p1}) LIMIT 2"),
            by_id: format!("{user} WHERE {id} = {p1}"),
            password_by_id: format!("SELECT {} FROM {table} WHERE {id} = {p1}", dialect.as_text(&password)),
            claims_by_id: (verified || updated).then(|| {
                format!(
                    "SELECT {}, {} FROM {table} WHERE {id} = {p1}",
                    optional(verified, EMAIL_VERIFIED_AT),
                    optional(updated, UPDATED_AT),
                )
            }),
            sample: format!(
                "SELECT {} FROM {table} WHERE {password} LIKE '$2_$%' OR {password} LIKE '$argon2%' \
                 ORDER BY {id} DESC LIMIT 1",
                dialect.as_text(&password),
            ),
        }
    }
}

/// A value bound to a statement's one parameter.
#[derive(Debug, Clone, Copy)]
enum Arg<'a> {
    Int(i64),
    Text(&'a str),
}

/// A row's columns as text (each statement casts them so); an integer a driver insists on is
/// turned into its decimal text.
fn cells<R>(row: &R) -> Result<Vec<Option<String>>, sqlx::Error>
where
    R: Row,
    usize: ColumnIndex<R>,
    for<'r> Option<String>: Decode<'r, R::Database>,
    Option<String>: Type<R::Database>,
    for<'r> Option<i64>: Decode<'r, R::Database>,
    Option<i64>: Type<R::Database>,
{
    (0..row.len())
        .map(|i| match row.try_get::<Option<String>, _>(i) {
            Ok(text) => Ok(text),
            Err(err) => row
                .try_get::<Option<i64>, _>(i)
                .map(|n| n.map(|n| n.to_string()))
                .map_err(|_| err),
        })
        .collect()
}

/// Runs `$sql` with `$arg` (if any) on `$pool`, returning every row as text cells.
macro_rules! fetch_cells {
    ($pool:expr, $sql:expr, $arg:expr) => {{
        let query = sqlx::query($sql);
        let query = match $arg {
            Some(Arg::Int(n)) => query.bind(n),
            Some(Arg::Text(s)) => query.bind(s),
            None => query,
        };
        match query.fetch_all($pool).await {
            Ok(rows) => rows.iter().map(cells).collect::<Result<Vec<_>, _>>(),
            Err(err) => Err(err),
        }
    }};
}

/// Serves a Laravel application's users table to the core (see the module documentation).
/// Build it with [`LaravelUserProvider::connect`] or [`crate::Database::laravel_user_provider`].
pub struct LaravelUserProvider {
    pool: SqlPool,
    table: String,
    id_kind: IdKind,
    queries: Queries,
    hasher: PasswordHasher,
    bcrypt_rounds: u32,
    /// The table has `email_verified_at` (so `email_verified` is known).
    has_email_verified_at: bool,
    /// A stored hash, read once, that dummy checks copy.
    sample: OnceCell<String>,
}

impl fmt::Debug for LaravelUserProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaravelUserProvider")
            .field("table", &self.table)
            .field("id_kind", &self.id_kind)
            .finish_non_exhaustive()
    }
}

impl LaravelUserProvider {
    /// A provider over the table `config` names, on `pool`, checking passwords with the
    /// process's shared hasher ([`PasswordHasher::default`]). Errors
    /// ([`DatabaseError::UserTable`]): a name that is not a plain identifier, a missing table
    /// or column, an id column neither integer nor text, a `bcrypt_rounds` outside 4–31; and
    /// [`DatabaseError::Connect`] when the catalog or the table cannot be read.
    pub async fn connect(pool: impl Into<SqlPool>, config: &LaravelUsersConfig) -> Result<Self, DatabaseError> {
        let pool = pool.into();
        let names = Names::parse(config)?;
        if !(4..=31).contains(&config.bcrypt_rounds) {
            return Err(DatabaseError::UserTable(format!(
                "laravel_users.bcrypt_rounds = {}: bcrypt costs run from 4 to 31",
                config.bcrypt_rounds
            )));
        }
        let dialect = dialect_of(&pool);
        let columns = table_columns(&pool, dialect, &names.table).await?;
        if columns.is_empty() {
            return Err(DatabaseError::UserTable(format!(
                "laravel_users.table: there is no table {}",
                names.table
            )));
        }
        let find = |name: &str| {
            columns.iter().find(|(column, _)| match dialect.folds_case() {
                true => column.eq_ignore_ascii_case(name),
                false => column == name,
            })
        };
        for (setting, ident) in [
            ("id", &names.id),
            ("name", &names.name),
            ("email", &names.email),
            ("password", &names.password),
        ] {
            if find(&ident.name).is_none() {
                return Err(DatabaseError::UserTable(format!(
                    "laravel_users.{setting}: table {} has no column {}",
                    names.table, ident.name
                )));
            }
        }
        let id_type = find(&names.id.name)
            .map(|(_, declared)| declared.as_str())
            .unwrap_or("");
        let id_kind = IdKind::of(id_type).ok_or_else(|| {
            DatabaseError::UserTable(format!(
                "laravel_users.id: column {}.{} is of type {id_type:?}; integer or text ids are supported",
                names.table, names.id.name
            ))
        })?;
        let has_email_verified_at = find(EMAIL_VERIFIED_AT).is_some();
        let queries = Queries::new(dialect, &names, has_email_verified_at, find(UPDATED_AT).is_some());
        let provider = Self {
            pool,
            table: names.table.to_string(),
            id_kind,
            queries,
            hasher: PasswordHasher::default(),
            bcrypt_rounds: config.bcrypt_rounds,
            has_email_verified_at,
            sample: OnceCell::new(),
        };
        // Reads the table once now: no permission to read it fails here, not at a sign-in.
        provider
            .fetch(&provider.queries.sample, None)
            .await
            .map_err(DatabaseError::Connect)?;
        Ok(provider)
    }

    /// Verifies passwords with `hasher` instead (pass the [`passport::Passport`]'s, when it
    /// has one of its own, so that one limit bounds every slow check).
    pub fn with_hasher(mut self, hasher: PasswordHasher) -> Self {
        self.hasher = hasher;
        self
    }

    /// The hash unknown users' dummy checks copy the algorithm and cost of: the newest bcrypt
    /// or argon2 hash in the table (read once, then kept), or, while there is none,
    /// `$2y$<bcrypt_rounds>$` (Laravel's default, bcrypt 12).
    pub async fn timing_sample(&self) -> String {
        if let Some(sample) = self.sample.get() {
            return sample.clone();
        }
        match self.fetch(&self.queries.sample, None).await {
            Ok(rows) => {
                let stored = rows.into_iter().next().and_then(|row| row.into_iter().next().flatten());
                if let Some(stored) = stored.filter(|s| HashParams::of(s).is_some()) {
                    return self.sample.get_or_init(|| async { stored }).await.clone();
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, table = %self.table, "cannot read a password hash to model dummy checks on")
            }
        }
        format!("$2y${:02}$", self.bcrypt_rounds)
    }

    async fn fetch(&self, sql: &str, arg: Option<Arg<'_>>) -> Result<Vec<Vec<Option<String>>>, sqlx::Error> {
        match &self.pool {
            SqlPool::Sqlite(pool) => fetch_cells!(pool, sql, arg),
            SqlPool::Postgres(pool) => fetch_cells!(pool, sql, arg),
            #[cfg(feature = "mysql")]
            SqlPool::MySql(pool) => fetch_cells!(pool, sql, arg),
        }
    }

    /// `id` as the key column compares it: for integer ids only the exact decimal text of one
    /// ("01", "1.0" and "1abc" name nobody).
    fn id_arg<'a>(&self, id: &'a str) -> Option<Arg<'a>> {
        match self.id_kind {
            IdKind::Integer => numeric_id(id).map(Arg::Int),
            IdKind::Text => Some(Arg::Text(id)),
        }
    }

    /// The one user of `rows` (id, name, email); none or several (an ambiguous email) is none.
    fn one_user(&self, rows: Vec<Vec<Option<String>>>) -> Option<User> {
        if rows.len() > 1 {
            tracing::warn!(table = %self.table, "several users have this email; none is chosen");
            return None;
        }
        let mut cells = rows.into_iter().next()?.into_iter();
        let id = cells.next().flatten()?;
        let name = cells.next().flatten().unwrap_or_default();
        let email = cells.next().flatten().unwrap_or_default();
        Some(User {
            id,
            name,
            email,
            extra: serde_json::Map::new(),
        })
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        let Some(arg) = self.id_arg(id) else {
            return Ok(None);
        };
        let rows = self.fetch(&self.queries.by_id, Some(arg)).await.map_err(backend)?;
        Ok(self.one_user(rows))
    }
}

#[async_trait]
impl UserProvider for LaravelUserProvider {
    /// By email: the exact address first (the unique index serves it), then
    /// case-insensitively (`LOWER(email)`: on a large PostgreSQL table an index on
    /// `LOWER(email)` serves that too). Several matches are none.
    async fn find_for_passport(&self, username: &str) -> Result<Option<User>, StoreError> {
        let exact = self
            .fetch(&self.queries.by_email, Some(Arg::Text(username)))
            .await
            .map_err(backend)?;
        if !exact.is_empty() {
            return Ok(self.one_user(exact));
        }
        let folded = self
            .fetch(&self.queries.by_email_folded, Some(Arg::Text(username)))
            .await
            .map_err(backend)?;
        Ok(self.one_user(folded))
    }

    async fn validate_for_passport_password_grant(&self, user: &User, password: &str) -> Result<bool, StoreError> {
        let stored = match self.id_arg(&user.id) {
            Some(arg) => self
                .fetch(&self.queries.password_by_id, Some(arg))
                .await
                .map_err(backend)?
                .into_iter()
                .next()
                .and_then(|row| row.into_iter().next().flatten()),
            None => None,
        };
        match stored.filter(|hash| !hash.is_empty()) {
            Some(hash) => Ok(self.hasher.verify(&hash, password).await),
            // No password (an account that signs in elsewhere): as long as a wrong one.
            None => {
                self.verify_dummy_password(password).await;
                Ok(false)
            }
        }
    }

    async fn retrieve_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.user_by_id(id).await
    }

    /// Laravel owns its users: they are never deleted from here.
    fn can_delete_users(&self) -> bool {
        false
    }

    /// `name` and `email`, `email_verified` from `email_verified_at` and `updated_at`, when
    /// the table has those columns.
    async fn openid_claims(&self, user: &User) -> Result<UserClaims, StoreError> {
        let mut claims = UserClaims::from_user(user);
        let (Some(sql), Some(arg)) = (&self.queries.claims_by_id, self.id_arg(&user.id)) else {
            return Ok(claims);
        };
        let rows = self.fetch(sql, Some(arg)).await.map_err(backend)?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(claims);
        };
        let mut cells = row.into_iter();
        let verified = cells.next().flatten();
        let updated = cells.next().flatten();
        if self.has_email_verified_at {
            claims.email_verified = Some(verified.is_some());
        }
        claims.updated_at = updated.as_deref().and_then(parse_timestamp);
        Ok(claims)
    }

    /// A dummy check like [`Self::timing_sample`]: the stored hashes' algorithm and cost.
    async fn verify_dummy_password(&self, password: &str) -> bool {
        let sample = self.timing_sample().await;
        self.hasher.verify_dummy_like(&sample, password).await;
        true
    }
}

fn dialect_of(pool: &SqlPool) -> Dialect {
    match pool {
        SqlPool::Sqlite(_) => Dialect::Sqlite,
        SqlPool::Postgres(_) => Dialect::Postgres,
        #[cfg(feature = "mysql")]
        SqlPool::MySql(_) => Dialect::MySql,
    }
}

/// The table's columns and their declared types, from the catalog; empty when there is no such
/// table.
async fn table_columns(
    pool: &SqlPool,
    dialect: Dialect,
    table: &Ident,
) -> Result<Vec<(String, String)>, DatabaseError> {
    let rows: Vec<Vec<Option<String>>> = match pool {
        SqlPool::Sqlite(pool) => match &table.schema {
            Some(schema) => {
                fetch_two(
                    pool,
                    "SELECT name, type FROM pragma_table_info(?1, ?2)",
                    &table.name,
                    schema,
                )
                .await
            }
            None => {
                let sql = "SELECT name, type FROM pragma_table_info(?1)";
                fetch_cells!(pool, sql, Some(Arg::Text(&table.name)))
            }
        },
        SqlPool::Postgres(pool) => {
            // to_regclass resolves the name as the queries will (search_path), NULL when
            // there is no such table.
            let sql = "SELECT a.attname::text, format_type(a.atttypid, NULL) FROM pg_catalog.pg_attribute a \
                       WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum";
            let quoted = table.quoted(dialect);
            fetch_cells!(pool, sql, Some(Arg::Text(&quoted)))
        }
        #[cfg(feature = "mysql")]
        SqlPool::MySql(pool) => {
            let schema_sql = match &table.schema {
                Some(_) => {
                    "SELECT CAST(column_name AS CHAR), CAST(data_type AS CHAR) FROM information_schema.columns \
                     WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position"
                }
                None => {
                    "SELECT CAST(column_name AS CHAR), CAST(data_type AS CHAR) FROM information_schema.columns \
                     WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position"
                }
            };
            let query = sqlx::query(schema_sql);
            let query = match &table.schema {
                Some(schema) => query.bind(schema).bind(&table.name),
                None => query.bind(&table.name),
            };
            match query.fetch_all(pool).await {
                Ok(rows) => rows.iter().map(cells).collect::<Result<Vec<_>, _>>(),
                Err(err) => Err(err),
            }
        }
    }
    .map_err(DatabaseError::Connect)?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let mut cells = row.into_iter();
            let name = cells.next().flatten()?;
            Some((name, cells.next().flatten().unwrap_or_default()))
        })
        .collect())
}

async fn fetch_two(
    pool: &sqlx::SqlitePool,
    sql: &str,
    first: &str,
    second: &str,
) -> Result<Vec<Vec<Option<String>>>, sqlx::Error> {
    let rows = sqlx::query(sql).bind(first).bind(second).fetch_all(pool).await?;
    rows.iter().map(cells).collect()
}

/// A timestamp as the databases print them: `2024-05-01 10:00:00` (Laravel's format, in the
/// application's timezone, taken as UTC as Laravel's default is), with fractions or an offset
/// (`+00`, `+02:00`), RFC 3339, or Unix seconds.
fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    if let Ok(at) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z") {
        return Some(at.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Some(at.and_utc());
        }
    }
    text.parse::<i64>()
        .ok()
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LaravelUsersConfig {
        LaravelUsersConfig::default()
    }

    #[test]
    fn identifiers_are_plain_or_refused() {
        for good in ["users", "_users", "Users2", "app.users", "a_b.c_d"] {
            assert!(Ident::parse("table", good, true).is_ok(), "{good}");
        }
        let long = "x".repeat(MAX_IDENT + 1);
        for bad in [
            "",
            "users;drop table users",
            "users\"",
            "\"users\"",
            "us ers",
            "a.b.c",
            ".users",
            "users.",
            "1users",
            "usérs",
            "users--",
            "`users`",
            long.as_str(),
        ] {
            let err = Ident::parse("table", bad, true).unwrap_err();
            assert!(err.to_string().contains("laravel_users.table"), "{err}");
        }
        assert!(
            Ident::parse("email", "app.email", false).is_err(),
            "columns take no prefix"
        );
    }

    #[test]
    fn queries_quote_every_name() {
        let mut custom = config();
        custom.table = "app.members".to_owned();
        custom.email = "login".to_owned();
        let names = Names::parse(&custom).unwrap();
        let pg = Queries::new(Dialect::Postgres, &names, true, false);
        assert_eq!(
            pg.by_email,
            "SELECT CAST(\"id\" AS TEXT), CAST(\"name\" AS TEXT), CAST(\"login\" AS TEXT) FROM \"app\".\"members\" \
             WHERE \"login\" = $1 LIMIT 2"
        );
        assert!(
            pg.by_email_folded
                .ends_with("WHERE LOWER(\"login\") = LOWER($1) LIMIT 2")
        );
        assert_eq!(
            pg.claims_by_id.as_deref(),
            Some("SELECT CAST(\"email_verified_at\" AS TEXT), NULL FROM \"app\".\"members\" WHERE \"id\" = $1")
        );
        let lite = Queries::new(Dialect::Sqlite, &names, false, false);
        assert!(lite.by_id.ends_with("WHERE \"id\" = ?1"), "{}", lite.by_id);
        assert_eq!(lite.claims_by_id, None);
    }

    #[test]
    fn ids_and_timestamps_decode_leniently() {
        assert_eq!(IdKind::of("bigint"), Some(IdKind::Integer));
        assert_eq!(IdKind::of("INTEGER"), Some(IdKind::Integer));
        assert_eq!(IdKind::of("bigint unsigned"), Some(IdKind::Integer));
        assert_eq!(IdKind::of("character varying"), Some(IdKind::Text));
        assert_eq!(IdKind::of("varchar(36)"), Some(IdKind::Text));
        assert_eq!(IdKind::of("uuid"), None);
        assert_eq!(IdKind::of("interval"), None);
        assert_eq!(IdKind::of("point"), None);
        assert_eq!(IdKind::of("DATETIME"), None);
        let at = DateTime::from_timestamp(1_714_557_600, 0).unwrap();
        for text in [
            "2024-05-01 10:00:00",
            "2024-05-01 10:00:00.000",
            "2024-05-01 10:00:00+00",
            "2024-05-01 12:00:00+02:00",
            "2024-05-01T10:00:00Z",
            "2024-05-01T10:00:00",
            "1714557600",
        ] {
            assert_eq!(parse_timestamp(text), Some(at), "{text}");
        }
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
