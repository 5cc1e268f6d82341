//! The test harness: a real server on a loopback port per test, over a fresh database, and
//! [`backend_test!`], which makes one test per backend out of one test body.

#![allow(dead_code)]

/// One test body, one `#[tokio::test]` per backend: `NAME_sqlite` on a fresh SQLite file and
/// `NAME_postgres` on a fresh PostgreSQL database. The body gets the database (a
/// [`TestDatabase`]) under the name in parentheses. Without `PASSPORT_TEST_DATABASE_URL` the
/// PostgreSQL test returns at once and passes (`passport_sqlx::testing::postgres` prints why).
/// Doc comments are kept on every generated test. A test that needs the multi-threaded runtime
/// says so with `#[flavor(multi_thread, WORKERS)]` after its doc comments; the default is
/// tokio's current-thread runtime. rustfmt leaves the braces of a macro call alone: keep the
/// bodies formatted as it would (four spaces deeper than the `async fn`).
///
/// ```ignore
/// backend_test! {
///     /// What the test shows.
///     #[flavor(multi_thread, 4)]
///     async fn name(db) {
///         let server = TestServer::start_default(db).await;
///     }
/// }
/// ```
///
/// The backends are listed once, in the first arm: another backend (MySQL, say) is one more
/// `@one` line there, with the expression that opens its database (an
/// `Option<TestDatabase>`, `None` to skip).
macro_rules! backend_test {
    (
        $(#[doc = $doc:expr])*
        $(#[flavor(multi_thread, $workers:literal)])?
        async fn $name:ident($db:ident) $body:block
    ) => {
        backend_test!(@one sqlite, Some(passport_sqlx::testing::sqlite()),
            [$(#[doc = $doc])*] [$($workers)?] $name($db) $body);
        backend_test!(@one postgres, passport_sqlx::testing::postgres().await,
            [$(#[doc = $doc])*] [$($workers)?] $name($db) $body);
    };
    (
        @one $backend:ident, $open:expr,
        [$(#[doc = $doc:expr])*] [$($workers:literal)?] $name:ident($db:ident) $body:block
    ) => {
        pastey::paste! {
            $(#[doc = $doc])*
            #[tokio::test$((flavor = "multi_thread", worker_threads = $workers))?]
            async fn [<$name _ $backend>]() {
                let Some($db) = $open else { return };
                $body
            }
        }
    };
}

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use chrono::TimeDelta;
use passport::{
    ClientKind, GeneratedKeys, MockClock, NewClient, Passport, PassportBuilder, PassportConfig, generate_keys,
};
use passport_sqlx::Database;
use passport_sqlx::testing::TestDatabase;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::oneshot;

/// One 2048-bit key pair for the whole test process (generation takes a while).
pub(crate) fn test_keys() -> &'static GeneratedKeys {
    static KEYS: OnceLock<GeneratedKeys> = OnceLock::new();
    KEYS.get_or_init(|| generate_keys(2048).expect("generate test keys"))
}

/// The scopes every test server defines, in order.
pub(crate) const SCOPES: [(&str, &str); 4] = [
    ("read", "Read your data"),
    ("write", "Change your data"),
    ("admin", "Administer the account"),
    ("orders:read", "Read your orders"),
];

/// A running server.
pub(crate) struct TestServer {
    /// `http://127.0.0.1:PORT`
    pub(crate) base: String,
    /// The server's handle (shares the database with the server).
    pub(crate) passport: Passport,
    /// The database.
    pub(crate) db: Database,
    /// The server's clock; tests move it instead of sleeping.
    pub(crate) clock: Arc<MockClock>,
    /// A plain HTTP client (no cookies).
    pub(crate) http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    /// The database's owner (dropped last); `None` for a server beside another one.
    _database: Option<TestDatabase>,
    url: String,
}

impl TestServer {
    /// Starts a server with the test defaults: [`SCOPES`], no default scopes, password grant on,
    /// no rate or failure limits (the tests of those turn them on), a mock clock, the issuer
    /// at its own address; `configure` may change anything.
    pub(crate) async fn start(
        database: TestDatabase,
        configure: impl FnOnce(PassportBuilder) -> PassportBuilder,
    ) -> Self {
        let url = database.url.clone();
        Self::start_at(&url, Some(database), configure).await
    }

    /// A second server on this one's database (another instance of the same deployment),
    /// with its own clock and cache.
    pub(crate) async fn beside(&self, configure: impl FnOnce(PassportBuilder) -> PassportBuilder) -> Self {
        Self::start_at(&self.url, None, configure).await
    }

    async fn start_at(
        url: &str,
        database: Option<TestDatabase>,
        configure: impl FnOnce(PassportBuilder) -> PassportBuilder,
    ) -> Self {
        let db = Database::connect(url).await.expect("connect");
        db.migrate_schemas(&passport_sqlx::Schema::ALL).await.expect("migrate");
        let clock = Arc::new(MockClock::starting_now());
        let keys = test_keys();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let builder = passport_server::app::passport_builder(&PassportConfig::default(), &db)
            .keys_from_pem(keys.private_pem.clone(), Some(keys.public_pem.clone()))
            .tokens_can(SCOPES)
            .enable_password_grant(true)
            .token_rate_limit(0)
            .failure_limits(passport::FailureLimitSettings::OFF)
            .issuer(base.clone())
            .clock(clock.clone());
        let passport = configure(builder).build().expect("build passport");
        // As `passport serve`: the token cache follows the database's revocation feed.
        tokio::spawn(passport.clone().watch_revocations());
        let app = passport_server::app::router(&passport, &db).into_make_service_with_connect_info::<SocketAddr>();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Self {
            base,
            passport,
            db,
            clock,
            http: reqwest::Client::new(),
            shutdown: Some(tx),
            _database: database,
            url: url.to_owned(),
        }
    }

    /// Starts a server with the test defaults.
    pub(crate) async fn start_default(database: TestDatabase) -> Self {
        Self::start(database, |b| b).await
    }

    /// An absolute URL on this server.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Creates a client of `kind`; returns its id and plain secret (None for public clients).
    pub(crate) async fn client(&self, kind: ClientKind, public: bool) -> (String, Option<String>) {
        let mut new = NewClient::new("Test Client", kind).public(public);
        if matches!(kind, ClientKind::AuthorizationCode { .. } | ClientKind::Implicit) {
            new = new.redirect_uris(["https://client.example/callback"]);
        }
        create_client(self, new).await
    }

    /// A confidential client-credentials client.
    pub(crate) async fn service_client(&self) -> (String, String) {
        let (id, secret) = self.client(ClientKind::ClientCredentials, false).await;
        (id, secret.expect("confidential"))
    }

    /// A confidential password-grant client.
    pub(crate) async fn password_client(&self) -> (String, String) {
        let (id, secret) = self.client(ClientKind::Password, false).await;
        (id, secret.expect("confidential"))
    }

    /// Creates a user with this email and password; returns the id.
    pub(crate) async fn user(&self, email: &str, password: &str) -> String {
        let hash = self.passport.hasher().hash(password).await.expect("hash");
        self.db
            .users()
            .create_user("Test User", email, &hash, self.passport.now())
            .await
            .expect("create user")
    }

    /// POSTs a form to the token endpoint.
    pub(crate) async fn token(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url("/oauth/token"))
            .form(form)
            .send()
            .await
            .expect("token request")
    }

    /// Moves the server's clock forward.
    pub(crate) fn advance(&self, by: TimeDelta) {
        self.clock.advance(by);
    }
}

/// Creates a client; returns its id and plain secret (None for public clients).
pub(crate) async fn create_client(server: &TestServer, new: NewClient) -> (String, Option<String>) {
    let (client, secret) = server.passport.create_client(new).await.expect("create client");
    (client.id.into_string(), secret.map(|s| s.expose_secret().to_owned()))
}

/// `GET /api/user` with a bearer token: the status and the JSON body (`Null` when not JSON).
pub(crate) async fn api_user(server: &TestServer, access_token: &str) -> (StatusCode, Value) {
    let response = server
        .http
        .get(server.url("/api/user"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("api request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// An event listener that records every event (the tests read them with methods of their own).
#[derive(Debug, Default)]
pub(crate) struct Recorder(pub(crate) std::sync::Mutex<Vec<passport::Event>>);

impl passport::EventListener for Recorder {
    fn handle(&self, event: &passport::Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}
