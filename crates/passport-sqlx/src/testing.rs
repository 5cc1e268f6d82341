//! Test support: every backend a test should run on. SQLite always (a fresh file); PostgreSQL
//! when `PASSPORT_TEST_DATABASE_URL` points at a server, MySQL / MariaDB (the `mysql` feature)
//! when `PASSPORT_TEST_MYSQL_URL` does (a fresh database per call, named after the one in the
//! URL, so a CI run can drop them all by prefix).

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection as _, PgConnection};

/// The environment variable naming the PostgreSQL database tests may create databases beside.
pub const POSTGRES_ENV: &str = "PASSPORT_TEST_DATABASE_URL";

/// The environment variable naming the MySQL / MariaDB database tests may create databases
/// beside (e.g. `mysql://root@127.0.0.1:3306/test`).
#[cfg(feature = "mysql")]
pub const MYSQL_ENV: &str = "PASSPORT_TEST_MYSQL_URL";

/// A database for one test. Keeps its SQLite directory alive while held.
#[derive(Debug)]
pub struct TestDatabase {
    /// `"sqlite"`, `"postgres"` or `"mysql"`.
    pub kind: &'static str,
    /// The URL to connect to.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh SQLite database file.
pub fn sqlite() -> TestDatabase {
    #[allow(clippy::expect_used)]
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("passport.db").display());
    TestDatabase {
        kind: "sqlite",
        url,
        _dir: Some(dir),
    }
}

/// A fresh PostgreSQL database, or `None` (with a printed reason) when the variable is unset.
pub async fn postgres() -> Option<TestDatabase> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let Ok(base) = std::env::var(POSTGRES_ENV) else {
        eprintln!("skipping PostgreSQL: {POSTGRES_ENV} is not set");
        return None;
    };
    let (server, base_name) = base.rsplit_once('/')?;
    let base_name = base_name.split('?').next().unwrap_or(base_name);
    let name = format!(
        "{base_name}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    #[allow(clippy::expect_used)]
    let mut admin = PgConnection::connect(&base)
        .await
        .expect("PASSPORT_TEST_DATABASE_URL must point at a reachable PostgreSQL database");
    #[allow(clippy::expect_used)]
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let _ = admin.close().await;
    Some(TestDatabase {
        kind: "postgres",
        url: format!("{server}/{name}"),
        _dir: None,
    })
}

/// A fresh MySQL / MariaDB database, or `None` (with a printed reason) when
/// `PASSPORT_TEST_MYSQL_URL` is unset. Its name is the URL's database name, the process id and
/// a counter (MySQL allows 64 characters); the URL's query string is kept.
#[cfg(feature = "mysql")]
pub async fn mysql() -> Option<TestDatabase> {
    use sqlx::Executor as _;

    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let Ok(base) = std::env::var(MYSQL_ENV) else {
        eprintln!("skipping MySQL: {MYSQL_ENV} is not set");
        return None;
    };
    let (server, rest) = base.rsplit_once('/')?;
    let (base_name, query) = match rest.split_once('?') {
        Some((name, query)) => (name, format!("?{query}")),
        None => (rest, String::new()),
    };
    let name = format!(
        "{base_name}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    #[allow(clippy::expect_used)]
    let mut admin = sqlx::MySqlConnection::connect(&base)
        .await
        .expect("PASSPORT_TEST_MYSQL_URL must point at a reachable MySQL or MariaDB database");
    #[allow(clippy::expect_used)]
    admin
        .execute(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4").as_str())
        .await
        .expect("create test database");
    let _ = admin.close().await;
    Some(TestDatabase {
        kind: "mysql",
        url: format!("{server}/{name}{query}"),
        _dir: None,
    })
}
