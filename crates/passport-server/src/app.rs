//! Wiring for the standalone server: configuration, database, the `Passport` handle, and the
//! router (`/oauth/*`, the demo `GET /api/user` and its protected resource metadata,
//! `GET /health`, `GET /ready`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::Request;
use axum::response::IntoResponse as _;
use axum::routing::get;
use axum::{Json, Router};
use passport::{KeySet, KeySource, Passport, PassportBuilder, PassportConfig, TracingListener, User};
use passport_axum::{AuthUser, BearerToken, Pages, ProtectedResource, Views};
use passport_sqlx::{Database, Schema, SqlUserProvider};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::cli::Cli;

/// Settings every command shares.
#[derive(Debug)]
pub struct Context {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub config: PassportConfig,
}

impl Context {
    pub fn from_cli(cli: &Cli) -> anyhow::Result<Self> {
        let data_dir = cli.data_dir.clone();
        let config_path = cli.config.clone().or_else(|| {
            let default = data_dir.join("passport.toml");
            default.exists().then_some(default)
        });
        let mut config = match &config_path {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
                PassportConfig::from_toml(&text)?
            }
            None => PassportConfig::default(),
        };
        config.apply_env(std::env::vars())?;
        let database_url = match &cli.database {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", data_dir.join("passport.db").display()),
        };
        Ok(Self {
            data_dir,
            database_url,
            config,
        })
    }

    /// Opens the database (creating the data directory for SQLite).
    pub async fn database(&self) -> anyhow::Result<Database> {
        if self.database_url.starts_with("sqlite:") {
            std::fs::create_dir_all(&self.data_dir)
                .with_context(|| format!("cannot create {}", self.data_dir.display()))?;
        }
        let mut settings = passport_sqlx::PoolSettings::default();
        if let Some(n) = self.config.database_max_connections {
            settings = settings.max_connections(n);
        }
        if let Some(text) = &self.config.database_acquire_timeout {
            let wait = passport::parse_duration(text)
                .ok()
                .and_then(|d| d.to_std().ok())
                .ok_or_else(|| anyhow::anyhow!("database_acquire_timeout: invalid duration {text:?}"))?;
            settings = settings.acquire_timeout(wait);
        }
        Ok(Database::connect_with(&self.database_url, settings).await?)
    }

    /// Opens and migrates the database. In Laravel compatibility mode nothing is migrated
    /// here (only `passport migrate` changes a Laravel database): a database with pending
    /// migrations is refused with the command to run.
    pub async fn migrated_database(&self) -> anyhow::Result<Database> {
        let db = self.database().await?;
        if let Err(err) = self.check_database(&db) {
            db.close().await;
            return Err(err);
        }
        if self.compat().is_none() {
            db.migrate_schemas(self.schemas()).await?;
            return Ok(db);
        }
        let pending = db.migration_plan(self.schemas()).await?;
        if !pending.is_empty() {
            db.close().await;
            anyhow::bail!(
                "compat = \"laravel\": the database needs {} migration step(s) first; review them with \
                 `passport migrate --dry-run`, then run `passport migrate`",
                pending.len()
            );
        }
        Ok(db)
    }

    /// Laravel compatibility (`compat = "laravel"`), when on and valid.
    pub fn compat(&self) -> Option<passport::LaravelCompat> {
        self.config.laravel_compat().ok().flatten()
    }

    /// The table sets this server uses: all of them, or in Laravel compatibility mode the core
    /// and the pages' sessions (users are the application's).
    pub fn schemas(&self) -> &'static [Schema] {
        match self.compat() {
            Some(_) => &[Schema::Core, Schema::Sessions],
            None => &Schema::ALL,
        }
    }

    /// Laravel compatibility runs on SQLite and MySQL/MariaDB databases.
    pub fn check_database(&self, db: &Database) -> anyhow::Result<()> {
        if self.compat().is_some() && db.kind() == "postgres" {
            anyhow::bail!(
                "compat = \"laravel\" runs on SQLite and MySQL/MariaDB databases; a Laravel database on PostgreSQL is not supported yet"
            );
        }
        Ok(())
    }

    /// Laravel's guard verifies RS256 only.
    pub fn check_compat_algorithm(&self, algorithm: passport::Algorithm) -> anyhow::Result<()> {
        if self.compat().is_some() && algorithm != passport::Algorithm::RS256 {
            anyhow::bail!("compat = \"laravel\": Passport's TokenGuard verifies RS256 only; use --algorithm rs256");
        }
        Ok(())
    }

    /// Checks the configuration (scopes, lifetimes) before anything is created.
    pub fn check(&self) -> anyhow::Result<()> {
        Ok(PassportBuilder::from_config(&self.config).check()?)
    }

    /// Whether keys come from the environment / config rather than files.
    pub fn keys_from_config(&self) -> bool {
        self.config.private_key.is_some()
    }

    pub fn key_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The `Passport` handle over `db`. The server secret comes from the configuration
    /// (`server_secret`), else from the database, so that every instance on it shares one.
    pub async fn passport(&self, db: &Database) -> anyhow::Result<Passport> {
        self.passport_with(db, |b| b).await
    }

    /// The same, with `configure` applied to the builder.
    pub async fn passport_with(
        &self,
        db: &Database,
        configure: impl FnOnce(PassportBuilder) -> PassportBuilder,
    ) -> anyhow::Result<Passport> {
        // The key set lives in the database. The key file (or PASSPORT_PRIVATE_KEY) seeds it,
        // and a key there that the database does not know yet becomes the signing key.
        let configured = match &self.config.private_key {
            Some(private) => Some(KeySource::Pem {
                private: private.clone(),
                public: self.config.public_key.clone(),
            }),
            None => Some(KeySource::Directory(self.data_dir.clone()))
                .filter(|_| self.data_dir.join(passport::PRIVATE_KEY_FILE).exists()),
        };
        let file_keys = configured.as_ref().map(KeySet::load).transpose()?;
        let stored = db.store().list_keys().await?;
        let mut builder = passport_builder(&self.config, db)
            .keys_or_directory(&self.data_dir)
            .stored_keys(stored);
        // In Laravel compatibility mode the users are the application's (`[laravel_users]`,
        // Laravel's `users` table by default); so they are when that table is configured.
        let laravel_users = match (&self.config.laravel_users, self.compat()) {
            (Some(users), _) => Some(users.clone()),
            (None, Some(_)) => Some(passport::LaravelUsersConfig::default()),
            (None, None) => None,
        };
        if let Some(users) = &laravel_users {
            builder = builder.user_provider(passport::DEFAULT_PROVIDER, db.laravel_user_provider(users).await?);
        }
        if let Some(keys) = &file_keys {
            builder = builder.key_set(keys.clone());
        }
        let mut builder = configure(builder);
        if self.config.server_secret.is_none() {
            builder = builder.server_secret(db.server_secret().await?);
        }
        let passport = builder.build()?;
        if self.compat().is_some() && passport.signing_algorithm() != passport::Algorithm::RS256 {
            anyhow::bail!(
                "compat = \"laravel\": the signing key must be Passport's RSA key (RS256), not {}",
                passport.signing_algorithm().as_str()
            );
        }
        passport.sync_key_store().await?;
        if let Some(keys) = file_keys
            && passport.import_signing_key(keys.current()).await?
        {
            tracing::info!(
                kid = keys.current().kid(),
                "a new key from the key file or PASSPORT_PRIVATE_KEY now signs"
            );
        }
        Ok(passport)
    }
}

/// A builder configured from `config`, storing in `db`, with the `passport_users` table as the
/// default user provider. Keys and the server secret still have to be chosen.
pub fn passport_builder(config: &PassportConfig, db: &Database) -> PassportBuilder {
    PassportBuilder::from_config(config)
        .store(db.store())
        .user_provider(passport::DEFAULT_PROVIDER, Arc::new(SqlUserProvider::new(db.users())))
        .listen(Arc::new(TracingListener))
        .jwks_fetcher(Arc::new(passport_axum::HttpJwksFetcher::new()))
}

/// The demo resource: the authenticated user.
async fn api_user(user: AuthUser) -> Json<User> {
    Json(user.user)
}

/// The demo resource for any bearer token (a user's or a client's): what the token says about
/// itself. It reads nothing but the token check, so it shows what that check costs.
async fn api_token(bearer: BearerToken) -> axum::response::Response {
    #[derive(serde::Serialize)]
    struct Claims<'a> {
        jti: &'a str,
        client_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        user_id: Option<&'a str>,
        scopes: &'a passport::ScopeSet,
        exp: i64,
        #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
        custom_claims: &'a serde_json::Map<String, serde_json::Value>,
    }
    let token = &bearer.token;
    Json(Claims {
        jti: &token.id,
        client_id: token.client_id.as_str(),
        user_id: token.user_id.as_deref(),
        scopes: &token.scopes,
        exp: token.expires_at.timestamp(),
        custom_claims: &token.custom_claims,
    })
    .into_response()
}

/// `GET /ready`: 200 when the database answers within two seconds, else 503 with
/// `Retry-After` (the server listens only once migrations ran and keys are loaded).
async fn ready(axum::extract::State(passport): axum::extract::State<Passport>) -> axum::response::Response {
    use axum::http::{HeaderValue, StatusCode, header};
    match tokio::time::timeout(std::time::Duration::from_secs(2), passport.ready()).await {
        Ok(Ok(())) => "ready".into_response(),
        Ok(Err(_)) | Err(_) => {
            let mut response = (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            response
        }
    }
}

/// The standalone server's router with the built-in pages, sessions in `db`.
pub fn router(passport: &Passport, db: &Database) -> Router {
    router_with(Pages::new(passport, db.sessions()))
}

/// The pages of the standalone server (sessions in `db`): built-in views, each replaceable by a
/// file of the same name in `<data-dir>/views/` (`login.html`, `authorize.html`, `error.html`,
/// `layout.html`, `home.html`, `device_user_code.html`, `device_authorize.html`,
/// `device_done.html`, `form_post.html`, `logout.html`, `signed_out.html`).
pub fn pages(passport: &Passport, db: &Database, data_dir: &Path) -> anyhow::Result<Pages> {
    let dir = data_dir.join("views");
    let pages = Pages::new(passport, db.sessions());
    if dir.is_dir() {
        let views = Views::with_overrides_from(&dir).map_err(|e| anyhow::anyhow!("views: {e}"))?;
        tracing::info!(dir = %dir.display(), "using page templates from the data directory");
        return Ok(pages.renderer(views));
    }
    Ok(pages)
}

/// The standalone server's router, with the latency of every route recorded for
/// `GET /metrics` (served apart, on `metrics_bind`).
pub fn router_with(pages: Pages) -> Router {
    let passport = pages.passport().clone();
    let api = Router::new()
        .route("/api/user", get(api_user))
        .route("/api/token", get(api_token))
        .with_state(passport.clone());
    // RFC 9728: the demo API's metadata, named by its 401 challenges (needs an issuer).
    let api = match ProtectedResource::for_passport(&passport, "/api") {
        Ok(resource) => {
            let resource = resource.resource_name("Passport demo API").also_at_root(true);
            resource.challenge(api).merge(resource.router())
        }
        Err(_) => api,
    };
    let router = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .with_state(passport.clone())
        .merge(api)
        .merge(passport_axum::home_routes(pages.clone()))
        .merge(passport_axum::account_routes(pages.clone()))
        .merge(passport_axum::json_api_routes(pages.clone()))
        .merge(passport_axum::routes(pages.clone()))
        // Signed-in browsers get the SPA token cookie on every GET (Passport's CreateFreshApiToken).
        .layer(axum::middleware::from_fn_with_state(
            pages,
            passport_axum::create_fresh_api_token,
        ))
        .layer(
            // Spans carry the method, the path and the request id only: query strings may hold
            // codes or state.
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let id = request.extensions().get::<RequestId>().map_or("", |id| id.0.as_str());
                tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id = id)
            }),
        )
        .layer(axum::middleware::from_fn(request_id))
        .layer(CatchPanicLayer::new());
    // Outermost, so a panic's 500 and the time of every layer count.
    passport_axum::record_requests(router, &passport)
}

/// The id of one request: the caller's `X-Request-Id` when it is a plausible id (1 to 128
/// visible ASCII characters), else 16 random bytes in hex. It is in every log line of the
/// request and in the response's `X-Request-Id`.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

const REQUEST_ID: &str = "x-request-id";

async fn request_id(mut request: Request, next: axum::middleware::Next) -> axum::response::Response {
    let given = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic()));
    let id = match given {
        Some(id) => id.to_owned(),
        None => passport::random_hex(16).unwrap_or_default(),
    };
    let value = axum::http::HeaderValue::from_str(&id).ok();
    request.extensions_mut().insert(RequestId(id));
    let mut response = next.run(request).await;
    if let Some(value) = value {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}
