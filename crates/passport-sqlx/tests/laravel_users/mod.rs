//! `LaravelUserProvider` on a Laravel-shaped `users` table (as Laravel's default migration
//! makes it), per backend: `<name>_sqlite` always, `<name>_postgres` when
//! `PASSPORT_TEST_DATABASE_URL` is set. Hashes are made as Laravel writes them: bcrypt `$2y$`
//! (cost 4 here, to stay fast; Laravel's default is 12) and argon2i / argon2id PHC strings.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher as _, SaltString};
use chrono::DateTime;
use passport::{HashParams, LaravelUsersConfig, Passport, PasswordHasher, User, UserProvider};
use passport_sqlx::testing::{self, TestDatabase};
use passport_sqlx::{Database, DatabaseError, LaravelUserProvider};

/// A database and a raw connection to it for making the application's tables.
struct App {
    db: Database,
    kind: &'static str,
    raw: Raw,
    _database: TestDatabase,
}

enum Raw {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl App {
    async fn new(database: TestDatabase) -> Self {
        let db = Database::connect(&database.url).await.unwrap();
        let raw = match database.kind {
            "sqlite" => Raw::Sqlite(sqlx::SqlitePool::connect(&database.url).await.unwrap()),
            _ => Raw::Postgres(sqlx::PgPool::connect(&database.url).await.unwrap()),
        };
        Self {
            db,
            kind: database.kind,
            raw,
            _database: database,
        }
    }

    /// Runs `sql` (written with `$n` placeholders) binding `args` as text or NULL.
    async fn exec(&self, sql: &str, args: &[Option<&str>]) {
        match &self.raw {
            Raw::Sqlite(pool) => {
                let sql = sql.replace('$', "?");
                let mut query = sqlx::query(&sql);
                for arg in args {
                    query = query.bind(*arg);
                }
                query.execute(pool).await.unwrap();
            }
            Raw::Postgres(pool) => {
                let mut query = sqlx::query(sql);
                for arg in args {
                    query = query.bind(*arg);
                }
                query.execute(pool).await.unwrap();
            }
        }
    }

    /// Laravel's `create_users_table` migration, in this dialect.
    async fn laravel_users_table(&self, table: &str) {
        let (id, time) = match self.kind {
            "sqlite" => ("INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL", "DATETIME"),
            _ => ("BIGSERIAL PRIMARY KEY", "TIMESTAMP(0) WITHOUT TIME ZONE"),
        };
        self.exec(
            &format!(
                "CREATE TABLE {table} (id {id}, name VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL UNIQUE, \
                 email_verified_at {time} NULL, password VARCHAR(255) NOT NULL, remember_token VARCHAR(100) NULL, \
                 created_at {time} NULL, updated_at {time} NULL)"
            ),
            &[],
        )
        .await;
    }

    /// Adds a user as Laravel's `User::create` would.
    async fn add_user(&self, name: &str, email: &str, hash: &str, verified_at: Option<&str>) {
        let cast = |p: &str| match self.kind {
            "sqlite" => p.to_owned(),
            _ => format!("CAST({p} AS TIMESTAMP)"),
        };
        self.exec(
            &format!(
                "INSERT INTO users (name, email, password, email_verified_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, {}, {}, {})",
                cast("$4"),
                cast("$5"),
                cast("$5")
            ),
            &[
                Some(name),
                Some(email),
                Some(hash),
                verified_at,
                Some("2024-05-01 10:00:00"),
            ],
        )
        .await;
    }
}

/// `name_sqlite` and `name_postgres` from one async body taking an `App`.
macro_rules! laravel_tests {
    ($($(#[$meta:meta])* $name:ident => $body:expr;)*) => {
        $(pastey::paste! {
            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn [<$name _sqlite>]() {
                $body(App::new(testing::sqlite()).await).await;
            }

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn [<$name _postgres>]() {
                if let Some(database) = testing::postgres().await {
                    $body(App::new(database).await).await;
                }
            }
        })*
    };
}

/// bcrypt as Laravel writes it: `$2y$` (the bcrypt crate writes `$2b$`, the same algorithm).
fn laravel_bcrypt(password: &str) -> String {
    let hash = bcrypt::hash(password, 4).unwrap().replacen("$2b$", "$2y$", 1);
    assert!(hash.starts_with("$2y$04$"));
    hash
}

/// argon2 as PHP's `password_hash(…, PASSWORD_ARGON2I / PASSWORD_ARGON2ID)` writes it (lower
/// costs than PHP's default m=65536,t=4,p=1, to stay fast).
fn php_argon2(algorithm: argon2::Algorithm, password: &str) -> String {
    let params = argon2::Params::new(1024, 2, 1, None).unwrap();
    let salt = SaltString::encode_b64(b"a salt of 16 b..").unwrap();
    argon2::Argon2::new(algorithm, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

fn user_table_error(result: Result<Arc<dyn UserProvider>, DatabaseError>) -> String {
    match result {
        Err(err @ DatabaseError::UserTable(_)) => err.to_string(),
        other => panic!("expected a users table error, got {other:?}"),
    }
}

async fn sign_in_finds_validates_and_describes_laravel_users(app: App) {
    app.laravel_users_table("users").await;
    let argon2i = php_argon2(argon2::Algorithm::Argon2i, "argon2i password");
    assert!(argon2i.starts_with("$argon2i$v=19$m=1024,t=2,p=1$"), "{argon2i}");
    let argon2id = php_argon2(argon2::Algorithm::Argon2id, "argon2id password");
    let bcrypt = laravel_bcrypt("bcrypt password");
    app.add_user("Ann", "ann@example.com", &argon2i, Some("2024-04-01 09:00:00"))
        .await;
    app.add_user("Ida", "ida@example.com", &argon2id, None).await;
    app.add_user(
        "Taylor Otwell",
        "Taylor@Example.com",
        &bcrypt,
        Some("2024-04-02 09:00:00"),
    )
    .await;

    let users = app
        .db
        .laravel_user_provider(&LaravelUsersConfig::default())
        .await
        .unwrap();
    assert!(!users.can_delete_users(), "Laravel owns its users");

    let taylor = users.find_for_passport("taylor@example.com").await.unwrap().unwrap();
    assert_eq!(
        (taylor.id.as_str(), taylor.name.as_str(), taylor.email.as_str()),
        ("3", "Taylor Otwell", "Taylor@Example.com"),
        "found case-insensitively, as stored"
    );
    assert_eq!(
        users.find_for_passport("Taylor@Example.com").await.unwrap(),
        Some(taylor.clone())
    );
    assert_eq!(users.find_for_passport("nobody@example.com").await.unwrap(), None);
    assert_eq!(
        users.find_for_passport("%@example.com").await.unwrap(),
        None,
        "no pattern"
    );

    assert!(
        users
            .validate_for_passport_password_grant(&taylor, "bcrypt password")
            .await
            .unwrap()
    );
    assert!(
        !users
            .validate_for_passport_password_grant(&taylor, "bcrypt Password")
            .await
            .unwrap()
    );
    let ann = users.find_for_passport("ann@example.com").await.unwrap().unwrap();
    assert!(
        users
            .validate_for_passport_password_grant(&ann, "argon2i password")
            .await
            .unwrap()
    );
    assert!(
        !users
            .validate_for_passport_password_grant(&ann, "bcrypt password")
            .await
            .unwrap()
    );
    let ida = users.find_for_passport("IDA@example.com").await.unwrap().unwrap();
    assert!(
        users
            .validate_for_passport_password_grant(&ida, "argon2id password")
            .await
            .unwrap()
    );
    let ghost = User {
        id: "1abc".to_owned(),
        ..ann.clone()
    };
    assert!(
        !users
            .validate_for_passport_password_grant(&ghost, "argon2i password")
            .await
            .unwrap()
    );

    assert_eq!(users.retrieve_by_id("1").await.unwrap(), Some(ann.clone()));
    for nobody in ["01", "1abc", " 1", "1.0", "+1", "", "999", "-1", "99999999999999999999"] {
        assert_eq!(users.retrieve_by_id(nobody).await.unwrap(), None, "{nobody:?}");
    }

    let claims = users.openid_claims(&taylor).await.unwrap();
    assert_eq!(claims.name.as_deref(), Some("Taylor Otwell"));
    assert_eq!(claims.email.as_deref(), Some("Taylor@Example.com"));
    assert_eq!(claims.email_verified, Some(true));
    assert_eq!(
        claims.updated_at,
        DateTime::from_timestamp(1_714_557_600, 0),
        "2024-05-01 10:00:00"
    );
    assert_eq!(users.openid_claims(&ida).await.unwrap().email_verified, Some(false));

    // Through the core, as the password grant and the sign-in page call it.
    let passport = Passport::for_tests();
    let signed_in = passport
        .authenticate_user(users.as_ref(), None, "TAYLOR@example.com", "bcrypt password")
        .await
        .unwrap();
    assert_eq!(signed_in.map(|u| u.id), Some("3".to_owned()));
    for (username, password) in [
        ("taylor@example.com", "wrong"),
        ("nobody@example.com", "bcrypt password"),
    ] {
        let refused = passport
            .authenticate_user(users.as_ref(), None, username, password)
            .await;
        assert_eq!(refused.unwrap(), None, "{username}");
    }
}

async fn unknown_users_are_checked_like_the_stored_hashes(app: App) {
    app.laravel_users_table("users").await;
    let config = LaravelUsersConfig::default();
    let provider = LaravelUserProvider::connect(pool_of(&app).await, &config)
        .await
        .unwrap();
    assert_eq!(
        provider.timing_sample().await,
        "$2y$12$",
        "an empty table: Laravel's default cost"
    );
    let ten = LaravelUsersConfig {
        bcrypt_rounds: 10,
        ..config.clone()
    };
    let provider = LaravelUserProvider::connect(pool_of(&app).await, &ten).await.unwrap();
    assert_eq!(provider.timing_sample().await, "$2y$10$", "or the configured one");
    assert_eq!(HashParams::of("$2y$10$"), Some(HashParams::Bcrypt { cost: 10 }));

    app.add_user(
        "Ann",
        "ann@example.com",
        &php_argon2(argon2::Algorithm::Argon2i, "pw"),
        None,
    )
    .await;
    let bcrypt = laravel_bcrypt("pw");
    app.add_user("Bob", "bob@example.com", &bcrypt, None).await;
    let hasher = PasswordHasher::new(2);
    let provider = LaravelUserProvider::connect(pool_of(&app).await, &config)
        .await
        .unwrap()
        .with_hasher(hasher.clone());
    let sample = provider.timing_sample().await;
    assert_eq!(sample, bcrypt, "the newest stored hash");
    let dummy = hasher.dummy_hash_like(&sample).await.unwrap();
    assert!(dummy.starts_with("$2y$04$"), "bcrypt at the stored cost: {dummy}");
    assert_eq!(HashParams::of(&dummy), Some(HashParams::Bcrypt { cost: 4 }));
    assert!(
        provider.verify_dummy_password("a guess").await,
        "the provider spends it itself"
    );
    app.exec("DELETE FROM users", &[]).await;
    assert_eq!(provider.timing_sample().await, bcrypt, "read once, then kept");
    let passport = Passport::for_tests();
    let refused = passport
        .authenticate_user(&provider, None, "bob@example.com", "pw")
        .await
        .unwrap();
    assert_eq!(refused, None, "gone: an unknown user");
}

/// The application's pool, as a library user hands it over.
async fn pool_of(app: &App) -> passport_sqlx::SqlPool {
    match &app.raw {
        Raw::Sqlite(pool) => pool.clone().into(),
        Raw::Postgres(pool) => pool.clone().into(),
    }
}

async fn custom_tables_and_columns_are_read(app: App) {
    let (schema, id) = match app.kind {
        "sqlite" => ("main", "INTEGER PRIMARY KEY"),
        _ => {
            app.exec("CREATE SCHEMA app", &[]).await;
            ("app", "BIGINT PRIMARY KEY")
        }
    };
    app.exec(
        &format!("CREATE TABLE {schema}.members (member_id {id}, full_name TEXT, login TEXT NOT NULL, pass_hash TEXT)"),
        &[],
    )
    .await;
    let bcrypt = laravel_bcrypt("member password");
    app.exec(
        &format!("INSERT INTO {schema}.members VALUES (42, NULL, 'm@example.com', $1), (43, 'No Password', 'n@example.com', NULL)"),
        &[Some(&bcrypt)],
    )
    .await;
    let config = LaravelUsersConfig {
        table: format!("{schema}.members"),
        id: "member_id".to_owned(),
        name: "full_name".to_owned(),
        email: "login".to_owned(),
        password: "pass_hash".to_owned(),
        ..LaravelUsersConfig::default()
    };
    let members = app.db.laravel_user_provider(&config).await.unwrap();
    let member = members.find_for_passport("M@example.com").await.unwrap().unwrap();
    assert_eq!(
        (member.id.as_str(), member.name.as_str()),
        ("42", ""),
        "a NULL name is empty"
    );
    assert!(
        members
            .validate_for_passport_password_grant(&member, "member password")
            .await
            .unwrap()
    );
    assert_eq!(members.retrieve_by_id("42").await.unwrap(), Some(member.clone()));
    let claims = members.openid_claims(&member).await.unwrap();
    assert_eq!(claims.email_verified, None, "no email_verified_at column: unknown");
    assert_eq!(claims.updated_at, None);
    let no_password = members.find_for_passport("n@example.com").await.unwrap().unwrap();
    assert!(
        !members
            .validate_for_passport_password_grant(&no_password, "")
            .await
            .unwrap()
    );
    assert!(
        !members
            .validate_for_passport_password_grant(&no_password, "NULL")
            .await
            .unwrap()
    );

    // Text ids (a HasUuids model) compare as text.
    app.exec(
        "CREATE TABLE uuid_users (id VARCHAR(36) PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, password TEXT NOT NULL)",
        &[],
    )
    .await;
    let id = "0190c8a5-7b3e-7c1e-9d1a-3f2b9a0e4d11";
    app.exec(
        "INSERT INTO uuid_users VALUES ($1, 'U', 'u@example.com', $2)",
        &[Some(id), Some(&bcrypt)],
    )
    .await;
    let config = LaravelUsersConfig {
        table: "uuid_users".to_owned(),
        ..LaravelUsersConfig::default()
    };
    let uuids = app.db.laravel_user_provider(&config).await.unwrap();
    assert_eq!(uuids.retrieve_by_id(id).await.unwrap().unwrap().email, "u@example.com");
    assert_eq!(uuids.retrieve_by_id(&id.to_uppercase()).await.unwrap(), None);
}

async fn bad_names_and_missing_columns_are_refused(app: App) {
    app.laravel_users_table("users").await;
    let with = |edit: fn(&mut LaravelUsersConfig)| {
        let mut config = LaravelUsersConfig::default();
        edit(&mut config);
        config
    };
    for (config, expected) in [
        (
            with(|c| c.table = "users; DROP TABLE users".to_owned()),
            "laravel_users.table = \"users; DROP TABLE users\" is not a plain identifier",
        ),
        (
            with(|c| c.email = "email\" OR 1=1 --".to_owned()),
            "laravel_users.email = ",
        ),
        (
            with(|c| c.password = "users.password".to_owned()),
            "laravel_users.password = ",
        ),
        (with(|c| c.table = "a.b.users".to_owned()), "laravel_users.table = "),
        (
            with(|c| c.table = "members".to_owned()),
            "laravel_users.table: there is no table members",
        ),
        (
            with(|c| c.email = "mail".to_owned()),
            "laravel_users.email: table users has no column mail",
        ),
        (
            with(|c| c.password = "password_hash".to_owned()),
            "laravel_users.password: table users has no column password_hash",
        ),
        (
            with(|c| c.id = "created_at".to_owned()),
            "laravel_users.id: column users.created_at is of type",
        ),
        (with(|c| c.bcrypt_rounds = 3), "laravel_users.bcrypt_rounds = 3"),
    ] {
        let message = user_table_error(app.db.laravel_user_provider(&config).await);
        assert!(message.contains(expected), "{message}");
        assert!(!message.contains('\n'), "one line: {message}");
    }
    app.exec("SELECT COUNT(*) FROM users", &[]).await;
}

laravel_tests! {
    /// find (case-insensitive email), validate (bcrypt `$2y$`, argon2i, argon2id), retrieve
    /// (exact decimal ids), claims (`email_verified_at`, `updated_at`), and the core's check.
    laravel_users_sign_in => sign_in_finds_validates_and_describes_laravel_users;
    /// The dummy check of unknown users copies the stored hashes' algorithm and cost.
    laravel_users_dummy_check => unknown_users_are_checked_like_the_stored_hashes;
    /// Configured table (with a schema) and column names; NULL names and passwords; text ids.
    laravel_users_custom_names => custom_tables_and_columns_are_read;
    /// Names that are not plain identifiers and missing tables or columns, each in one line.
    laravel_users_refusals => bad_names_and_missing_columns_are_refused;
}
