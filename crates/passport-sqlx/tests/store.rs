//! The store conformance suite (`passport::testing::conformance`) on every SQL backend, one
//! generated test per check and backend (`<check>_sqlite`, `<check>_postgres`, `<check>_mysql`;
//! the PostgreSQL ones run when `PASSPORT_TEST_DATABASE_URL` is set, the MySQL / MariaDB ones
//! when `PASSPORT_TEST_MYSQL_URL` is), plus what only the SQL stores do: migrations, the
//! `passport_users` table, the server secret, the revocation feed's triggers, exact ids.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod laravel_users;

use std::future::Future;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use passport::testing::conformance::{self, CHECKS};
use passport::{AccessTokenRecord, GeneratedKeys, Passport, PasswordHasher, Store, StoreError, UserProvider as _};
use passport_sqlx::testing::{self, TestDatabase};
use passport_sqlx::{Database, SqlUserProvider};

/// Connects, migrates (the first run applies, a second is a no-op) and runs `check`.
async fn run<F, Fut>(database: TestDatabase, check: F)
where
    F: FnOnce(Arc<dyn Store>, Database) -> Fut,
    Fut: Future<Output = ()>,
{
    let db = Database::connect(&database.url).await.unwrap();
    let all = passport_sqlx::Schema::ALL;
    assert!(db.migrate_schemas(&all).await.unwrap() >= 1, "first migrate applies");
    assert_eq!(db.migrate_schemas(&all).await.unwrap(), 0, "second migrate is a no-op");
    check(db.store(), db.clone()).await;
    db.close().await;
}

/// `name_sqlite`, `name_postgres` and `name_mysql` from one body taking `(store, db)`.
macro_rules! backend_tests {
    ($($name:ident => $body:expr;)*) => {
        $(pastey::paste! {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn [<$name _sqlite>]() {
                run(testing::sqlite(), $body).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn [<$name _postgres>]() {
                if let Some(database) = testing::postgres().await {
                    run(database, $body).await;
                }
            }

            #[cfg(feature = "mysql")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn [<$name _mysql>]() {
                if let Some(database) = testing::mysql().await {
                    run(database, $body).await;
                }
            }
        })*
    };
}

/// Every conformance check, per backend; `every_conformance_check_runs_here` keeps the list
/// complete.
macro_rules! conformance_tests {
    ($($check:ident),* $(,)?) => {
        const COVERED: &[&str] = &[$(stringify!($check)),*];
        backend_tests! {
            $($check => |store, _db| conformance::$check(store);)*
        }
    };
}

conformance_tests!(
    clients_round_trip_and_revoke,
    token_status_joins_client_and_follows_revocation,
    token_batches_are_stored_all_or_none,
    refresh_rotation_is_single_use_and_family_revocation_reaches_descendants,
    a_retry_within_the_grace_replaces_only_an_unused_pair,
    concurrent_rotations_have_exactly_one_winner,
    purge_removes_only_what_it_is_asked_to,
    auth_codes_redeem_once_and_keep_their_extensions,
    device_codes_are_decided_once_and_redeemed_once,
    consent_requests_are_single_use_and_bound_to_their_session,
    pushed_requests_are_single_use_bound_to_their_client_and_expire,
    revoking_a_users_grants_reaches_tokens_codes_and_owned_clients,
    clients_owned_by_a_user_can_be_listed_and_updated,
    signing_keys_are_stored_once_and_retired_once,
    dpop_proofs_are_accepted_once_until_they_expire,
);

#[test]
fn every_conformance_check_runs_here() {
    let mut listed: Vec<&str> = CHECKS.iter().map(|(name, _)| *name).collect();
    let mut covered = COVERED.to_vec();
    listed.sort_unstable();
    covered.sort_unstable();
    assert_eq!(covered, listed);
}

/// One instant for the whole run, whole seconds: values written and read back at different
/// moments of a test compare equal (a wall clock read twice can straddle a second on a loaded
/// machine).
fn now() -> DateTime<Utc> {
    static NOW: std::sync::OnceLock<DateTime<Utc>> = std::sync::OnceLock::new();
    #[allow(clippy::disallowed_methods)]
    *NOW.get_or_init(|| Utc::now().trunc_subsecs(0))
}

fn test_keys() -> &'static GeneratedKeys {
    static KEYS: OnceLock<GeneratedKeys> = OnceLock::new();
    KEYS.get_or_init(|| passport::generate_keys(2048).unwrap())
}

fn access(id: &str, client_id: &str, user: &str) -> AccessTokenRecord {
    AccessTokenRecord {
        id: id.to_owned(),
        user_id: Some(user.to_owned()),
        client_id: client_id.into(),
        name: None,
        scopes: passport::testing::scopes(&["read"]),
        family_id: None,
        revoked: false,
        created_at: now(),
        expires_at: now() + TimeDelta::hours(1),
    }
}

async fn users_are_unique_by_email_and_deleting_revokes_their_tokens(store: Arc<dyn Store>, db: Database) {
    let users = db.users();
    let id = users
        .create_user("Ann", "Ann@Example.com", "$argon2id$x", now())
        .await
        .unwrap();
    assert!(matches!(
        users
            .create_user("Ann 2", "ann@example.com", "$argon2id$y", now())
            .await,
        Err(StoreError::Conflict)
    ));
    let found = users.find_user_by_email(" ANN@example.com ").await.unwrap().unwrap();
    assert_eq!(found.id, id);
    assert_eq!(found.email, "ann@example.com");
    assert!(
        users.find_user_by_id(&format!("0{id}")).await.unwrap().is_none(),
        "no numeric coercion"
    );
    assert!(users.find_user_by_id("not-a-number").await.unwrap().is_none());

    // OpenID Connect claims: email_verified and updated_at come from the row.
    let provider = SqlUserProvider::new(users.clone());
    let user = provider.retrieve_by_id(&id).await.unwrap().unwrap();
    let claims = provider.openid_claims(&user).await.unwrap();
    assert_eq!((claims.email_verified, claims.updated_at), (Some(false), Some(now())));
    let later = now() + TimeDelta::hours(1);
    assert!(users.set_email_verified(&id, Some(later), later).await.unwrap());
    assert!(!users.set_email_verified("404", Some(later), later).await.unwrap());
    let claims = provider.openid_claims(&user).await.unwrap();
    assert_eq!((claims.email_verified, claims.updated_at), (Some(true), Some(later)));
    assert_eq!(claims.email.as_deref(), Some("ann@example.com"));

    // Deleting goes through the core, which revokes what the user holds.
    let keys = test_keys();
    let passport = Passport::builder()
        .keys_from_pem(keys.private_pem.clone(), Some(keys.public_pem.clone()))
        .store(store.clone())
        .user_provider(
            passport::DEFAULT_PROVIDER,
            Arc::new(SqlUserProvider::new(users.clone()).with_hasher(PasswordHasher::new(1))),
        )
        .build()
        .unwrap();
    store.insert_client(&conformance::client("c1")).await.unwrap();
    store.insert_tokens(&access("ut", "c1", &id), None).await.unwrap();
    assert!(passport.delete_user(None, &id).await.unwrap().is_some());
    assert!(passport.delete_user(None, &id).await.unwrap().is_none());
    assert!(store.token_status("ut").await.unwrap().unwrap().revoked);
    assert!(users.list_users().await.unwrap().is_empty());
}

async fn the_server_secret_is_made_once_and_shared(_store: Arc<dyn Store>, db: Database) {
    let first = db.server_secret().await.unwrap();
    let again = db.server_secret().await.unwrap();
    assert_eq!(first, again, "every instance on this database gets the same secret");
}

/// Ids match exactly, on every backend: no case folding, no trailing-space padding (MySQL's
/// default collations do both; our MySQL tables compare bytes).
async fn ids_compare_exactly(store: Arc<dyn Store>, _db: Database) {
    store.insert_client(&conformance::client("Client-A")).await.unwrap();
    store.insert_client(&conformance::client("client-a")).await.unwrap();
    for other in ["CLIENT-A", "Client-A ", "Cliént-A"] {
        assert_eq!(store.find_client(other).await.unwrap(), None, "{other:?}");
    }
    assert_eq!(
        store.find_client("Client-A").await.unwrap().unwrap().id.as_str(),
        "Client-A"
    );
    assert_eq!(store.list_clients().await.unwrap().len(), 2, "two ids, not one");
}

backend_tests! {
    users_are_unique_by_email_and_deleting_revokes_their_tokens => users_are_unique_by_email_and_deleting_revokes_their_tokens;
    the_server_secret_is_made_once_and_shared => the_server_secret_is_made_once_and_shared;
    ids_compare_exactly => ids_compare_exactly;
}

/// Runs one statement on the database at `url` through a connection of its own, as another
/// program would.
async fn execute(url: &str, dialect: &str, sql: &str) {
    match dialect {
        "sqlite" => {
            sqlx::query(sql).execute(&sqlite_pool(url).await).await.unwrap();
        }
        #[cfg(feature = "mysql")]
        "mysql" => {
            sqlx::query(sql)
                .execute(&sqlx::MySqlPool::connect(url).await.unwrap())
                .await
                .unwrap();
        }
        _ => {
            sqlx::query(sql)
                .execute(&sqlx::PgPool::connect(url).await.unwrap())
                .await
                .unwrap();
        }
    }
}

/// The revocation feed is filled by triggers: what another program writes straight into the
/// tables (an application, an operator's SQL) reaches it, once per revocation and in order,
/// and nothing else does; a purge keeps its last hour.
async fn the_revocation_feed_records_what_other_programs_write(database: TestDatabase) {
    use passport::RevocationKind::{Client, Key, Token, User};

    let dialect = database.kind;
    let db = Database::connect(&database.url).await.unwrap();
    db.migrate_schemas(&passport_sqlx::Schema::ALL).await.unwrap();
    let store = db.store();
    store.insert_client(&conformance::client("c1")).await.unwrap();
    store.insert_client(&conformance::client("c2")).await.unwrap();
    store.insert_tokens(&access("t1", "c1", "7"), None).await.unwrap();
    store
        .insert_key(&passport::StoredKey {
            kid: "k1".to_owned(),
            algorithm: "ES256".to_owned(),
            private_key: "v1.sealed".to_owned(),
            public_key: "-----BEGIN PUBLIC KEY-----".to_owned(),
            created_at: now(),
            activates_at: now(),
            retired_at: None,
        })
        .await
        .unwrap();
    let user = db
        .users()
        .create_user("Ann", "ann@example.com", "$argon2id$x", now())
        .await
        .unwrap();
    let head = store.revocation_head().await.unwrap();

    let statements = [
        "UPDATE oauth_access_tokens SET revoked = TRUE WHERE id = 't1'".to_owned(),
        "UPDATE oauth_access_tokens SET revoked = TRUE WHERE id = 't1'".to_owned(),
        "UPDATE oauth_clients SET name = 'Renamed' WHERE id = 'c1'".to_owned(),
        "UPDATE oauth_clients SET revoked = TRUE WHERE id = 'c1'".to_owned(),
        "DELETE FROM oauth_clients WHERE id = 'c2'".to_owned(),
        "UPDATE passport_keys SET retired_at = created_at WHERE kid = 'k1'".to_owned(),
        format!("DELETE FROM passport_users WHERE id = {user}"),
    ];
    for sql in &statements {
        execute(&database.url, dialect, sql).await;
    }
    let events = store.revocations_after(head, 100).await.unwrap();
    let seen: Vec<_> = events.iter().map(|e| (e.kind, e.subject.as_str())).collect();
    assert_eq!(
        seen,
        [
            (Token, "t1"),
            (Client, "c1"),
            (Client, "c2"),
            (Key, "k1"),
            (User, user.as_str())
        ],
        "a second revocation and a rename record nothing"
    );
    assert!(events.windows(2).all(|pair| pair[0].seq < pair[1].seq));
    assert_eq!(store.revocation_head().await.unwrap(), events[events.len() - 1].seq);

    let purge_at = |now| passport::PurgeFilter {
        revoked: false,
        expired_before: None,
        now,
    };
    store.purge(purge_at(now())).await.unwrap();
    assert_eq!(
        store.revocations_after(head, 100).await.unwrap().len(),
        5,
        "kept an hour"
    );
    store.purge(purge_at(now() + TimeDelta::hours(2))).await.unwrap();
    assert!(store.revocations_after(head, 100).await.unwrap().is_empty());
    db.close().await;
}

/// An application's own sqlx migrations, in a folder of their own.
fn app_migrations(dialect: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let id = match dialect {
        "sqlite" => "INTEGER PRIMARY KEY",
        "mysql" => "BIGINT AUTO_INCREMENT PRIMARY KEY",
        _ => "BIGSERIAL PRIMARY KEY",
    };
    std::fs::write(
        dir.path().join("20250101000000_create_customers.sql"),
        format!(
            "CREATE TABLE customers (id {id}, name TEXT NOT NULL);\nINSERT INTO customers (name) VALUES ('Acme');\n"
        ),
    )
    .unwrap();
    dir
}

/// Runs sqlx migrations from `dir` on the database at `url`, as an application would (strict:
/// a row in `_sqlx_migrations` it does not know is an error).
async fn run_app_migrations(
    url: &str,
    dialect: &str,
    dir: &std::path::Path,
) -> Result<(), sqlx::migrate::MigrateError> {
    run_sqlx_migrations(url, dialect, dir, false).await
}

async fn run_sqlx_migrations(
    url: &str,
    dialect: &str,
    dir: &std::path::Path,
    ignore_missing: bool,
) -> Result<(), sqlx::migrate::MigrateError> {
    let mut migrator = sqlx::migrate::Migrator::new(dir).await?;
    migrator.set_ignore_missing(ignore_missing);
    match dialect {
        "sqlite" => migrator.run(&sqlite_pool(url).await).await,
        #[cfg(feature = "mysql")]
        "mysql" => migrator.run(&sqlx::MySqlPool::connect(url).await?).await,
        _ => migrator.run(&sqlx::PgPool::connect(url).await?).await,
    }
}

async fn sqlite_pool(url: &str) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!("{url}?mode=rwc")).await.unwrap()
}

async fn scalar(url: &str, dialect: &str, sql: &str) -> i64 {
    match dialect {
        "sqlite" => {
            let pool = sqlite_pool(url).await;
            sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap()
        }
        #[cfg(feature = "mysql")]
        "mysql" => {
            let pool = sqlx::MySqlPool::connect(url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap()
        }
        _ => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap()
        }
    }
}

/// An application keeping its own sqlx migrations in the same database migrates both, in
/// either order: our runner records its versions in `passport_migrations`, never in
/// `_sqlx_migrations`.
async fn our_migrations_live_beside_an_applications_sqlx_migrations(database: TestDatabase) {
    let dialect = database.kind;
    let app = app_migrations(dialect);
    // The application first, then us, then the application again.
    run_app_migrations(&database.url, dialect, app.path()).await.unwrap();
    let db = Database::connect(&database.url).await.unwrap();
    assert_eq!(db.migrate().await.unwrap(), 14, "core: its fourteen migrations");
    run_app_migrations(&database.url, dialect, app.path())
        .await
        .expect("the application's migrator does not trip over ours");
    // Us again, with more sets, then the application.
    assert_eq!(
        db.migrate_schemas(&passport_sqlx::Schema::ALL).await.unwrap(),
        4,
        "sessions, users (three)"
    );
    assert_eq!(db.migrate_schemas(&passport_sqlx::Schema::ALL).await.unwrap(), 0);
    run_app_migrations(&database.url, dialect, app.path()).await.unwrap();
    assert_eq!(
        scalar(&database.url, dialect, "SELECT COUNT(*) FROM _sqlx_migrations").await,
        1,
        "only the app's"
    );
    assert_eq!(
        scalar(&database.url, dialect, "SELECT COUNT(*) FROM customers").await,
        1
    );
    db.close().await;
}

/// Only what is asked for: the core alone creates no users or sessions table (an application
/// with its own `users` table keeps it).
async fn the_core_alone_creates_no_users_or_sessions_table(database: TestDatabase) {
    let dialect = database.kind;
    let tables = match dialect {
        "sqlite" => {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('passport_users', 'passport_sessions', 'users', 'sessions')"
        }
        "mysql" => {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN ('passport_users', 'passport_sessions', 'users', 'sessions')"
        }
        _ => {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name IN ('passport_users', 'passport_sessions', 'users', 'sessions')"
        }
    };
    let db = Database::connect(&database.url).await.unwrap();
    db.migrate().await.unwrap();
    assert_eq!(scalar(&database.url, dialect, tables).await, 0);
    db.migrate_sessions().await.unwrap();
    assert_eq!(scalar(&database.url, dialect, tables).await, 1, "passport_sessions");
    db.close().await;
}

/// A database made by release 1 (its one sqlx migration applied), with an application's own
/// migration and table beside ours: migrating renames our `users` and `sessions`, keeps their
/// rows, takes our row out of `_sqlx_migrations`, and leaves the application's alone.
async fn upgrading_release_1_renames_our_tables_and_nothing_else(database: TestDatabase) {
    let dialect = database.kind;
    let release_1 = tempfile::tempdir().unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/release-1")
        .join(format!("{dialect}.sql"));
    std::fs::copy(
        fixture,
        release_1.path().join("20260101000001_create_passport_tables.sql"),
    )
    .unwrap();
    // Release 1 and the application shared `_sqlx_migrations`; each had to ignore the other's
    // rows then.
    run_sqlx_migrations(&database.url, dialect, release_1.path(), true)
        .await
        .unwrap();
    let app = app_migrations(dialect);
    run_sqlx_migrations(&database.url, dialect, app.path(), true)
        .await
        .unwrap();
    let now = if dialect == "sqlite" {
        "'2026-01-01T00:00:00Z'"
    } else {
        "now()"
    };
    let insert = format!(
        "INSERT INTO users (name, email, password, created_at, updated_at) VALUES ('Old', 'old@example.com', 'x', {now}, {now})"
    );
    scalar(&database.url, dialect, &format!("{insert} RETURNING id")).await;

    let db = Database::connect(&database.url).await.unwrap();
    assert_eq!(
        db.migrate_schemas(&passport_sqlx::Schema::ALL).await.unwrap(),
        16,
        "the upgrade to the first versions, then core's second to fourteenth and users' second and third"
    );
    assert_eq!(db.migrate_schemas(&passport_sqlx::Schema::ALL).await.unwrap(), 0);
    let old = db.users().find_user_by_email("old@example.com").await.unwrap();
    assert_eq!(
        old.map(|u| u.name).as_deref(),
        Some("Old"),
        "the row moved with the table"
    );
    assert_eq!(db.server_secret().await.unwrap(), db.server_secret().await.unwrap());
    db.close().await;
    assert_eq!(
        scalar(&database.url, dialect, "SELECT COUNT(*) FROM customers").await,
        1,
        "untouched"
    );
    assert_eq!(
        scalar(&database.url, dialect, "SELECT COUNT(*) FROM _sqlx_migrations").await,
        1,
        "only the app's row is left"
    );
    run_app_migrations(&database.url, dialect, app.path())
        .await
        .expect("the application's migrator still runs");
}

/// Instances starting together migrate together: each migration applies once, the others wait
/// for the lock and then find nothing to do.
async fn concurrent_runs_apply_each_migration_once(database: TestDatabase) {
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let url = database.url.clone();
            tokio::spawn(async move {
                let db = Database::connect(&url).await.unwrap();
                let applied = db.migrate_schemas(&passport_sqlx::Schema::ALL).await.unwrap();
                db.close().await;
                applied
            })
        })
        .collect();
    let mut applied = Vec::new();
    for run in runs {
        applied.push(run.await.unwrap());
    }
    applied.sort_unstable();
    assert_eq!(applied, [0, 0, 18], "one run applies all eighteen");
}

macro_rules! migration_tests {
    ($($name:ident),*) => {
        $(pastey::paste! {
            #[tokio::test]
            async fn [<$name _sqlite>]() {
                $name(testing::sqlite()).await;
            }

            #[tokio::test]
            async fn [<$name _postgres>]() {
                if let Some(database) = testing::postgres().await {
                    $name(database).await;
                }
            }
        })*
    };
}

/// The same on MySQL / MariaDB (which had no release 1 to upgrade).
macro_rules! mysql_migration_tests {
    ($($name:ident),*) => {
        $(pastey::paste! {
            #[cfg(feature = "mysql")]
            #[tokio::test]
            async fn [<$name _mysql>]() {
                if let Some(database) = testing::mysql().await {
                    $name(database).await;
                }
            }
        })*
    };
}

migration_tests!(
    our_migrations_live_beside_an_applications_sqlx_migrations,
    the_core_alone_creates_no_users_or_sessions_table,
    upgrading_release_1_renames_our_tables_and_nothing_else,
    the_revocation_feed_records_what_other_programs_write,
    concurrent_runs_apply_each_migration_once
);

mysql_migration_tests!(
    our_migrations_live_beside_an_applications_sqlx_migrations,
    the_core_alone_creates_no_users_or_sessions_table,
    the_revocation_feed_records_what_other_programs_write,
    concurrent_runs_apply_each_migration_once
);
