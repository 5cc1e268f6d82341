//! The [`Passport`] handle: configuration, keys, storage, user providers and clock in one cheap
//! `Clone`, built once by [`PassportBuilder`]. Two servers with different settings can live in
//! one process: there are no globals.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use indexmap::IndexMap;

use crate::claims::{ClaimsHook, TokenContext, custom_claims};
use crate::client::{Client, ClientId, GrantType, NewClient};
use crate::clock::{Clock, SystemClock};
use crate::config::{ConfigError, PassportConfig, parse_duration};
use crate::error::OAuthError;
use crate::events::{Event, EventListener, Events};
use crate::group_commit::GroupCommit;
use crate::jwt::{self, AccessTokenClaims, TokenInvalid};
use crate::keyring::{KeyCache, Keyring, StoredKey, assemble};
use crate::keys::{Algorithm, KeySet, KeySource, SigningKey};
use crate::laravel::LaravelCompat;
use crate::limits::{FailureLimitSettings, FailureLimits};
use crate::metrics::{BearerOutcome, Cache, Metrics};
use crate::random::random_hex;
use crate::redirect::RedirectPolicy;
use crate::scope::{ScopeRegistry, ScopeSet, token_can};
use crate::secret::{
    ClientSecret, ClientSecretVerifier, PasswordHasher, ServerSecret, hash_client_secret, purpose, sha256_hex,
};
use crate::store::{AccessTokenRecord, RefreshTokenRecord, Store};
use crate::timed_store::TimedStore;
use crate::token_cache::{Forget, TokenCache};
use crate::user::{DEFAULT_PROVIDER, User, UserProvider};
use arc_swap::ArcSwap;
use sha2::{Digest as _, Sha256};

const ONE_YEAR: TimeDelta = TimeDelta::days(365);

/// Server settings after validation.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Public base URL.
    pub issuer: Option<String>,
    /// Access token lifetime.
    pub tokens_expire_in: TimeDelta,
    /// Refresh token lifetime.
    pub refresh_tokens_expire_in: TimeDelta,
    /// Personal access token lifetime.
    pub personal_access_tokens_expire_in: TimeDelta,
    /// The password grant is enabled.
    pub enable_password_grant: bool,
    /// The implicit grant is enabled.
    pub enable_implicit_grant: bool,
    /// Route prefix, without slashes (default `oauth`).
    pub path: String,
    /// SPA token cookie name.
    pub cookie: String,
    /// Session lifetime.
    pub session_lifetime: TimeDelta,
    /// Requests per minute per client address on the token endpoint; 0 = unlimited.
    pub token_rate_limit: u32,
    /// Login attempts per minute per client address; 0 = unlimited.
    pub login_rate_limit: u32,
    /// What redirect URIs may be registered.
    pub redirect_policy: RedirectPolicy,
    /// Brute-force limits on failures.
    pub failure_limits: FailureLimitSettings,
    /// How long after a rotation the same client may present the rotated refresh token again
    /// and get a fresh pair (zero: never; reuse revokes the family).
    pub refresh_token_reuse_grace: TimeDelta,
    /// Who may register clients (RFC 7591; off by default).
    pub client_registration: crate::registration::RegistrationPolicy,
    /// The FAPI 2.0 Security Profile applies to every client (README: FAPI 2.0).
    pub fapi_profile: bool,
    /// Every client must push its authorization requests (RFC 9126 §5): `/oauth/authorize`
    /// without `request_uri` is refused.
    pub require_pushed_authorization_requests: bool,
    /// DPoP proofs must carry a server nonce (RFC 9449 §8, §9).
    pub use_dpop_nonce: bool,
    /// Laravel Passport compatibility (`compat = "laravel"`), when on.
    pub laravel: Option<LaravelCompat>,
    /// Plaintext client secrets (Passport 11 without `hashClientSecrets`) verify, in constant
    /// time; off: they never match until `passport hash` hashes them.
    pub accept_plaintext_client_secrets: bool,
}

/// Builds a [`Passport`]. Every setting has Passport's default; `build()` checks them.
#[must_use]
pub struct PassportBuilder {
    scopes: IndexMap<String, String>,
    default_scopes: Vec<String>,
    inherited_scopes: bool,
    tokens_expire_in: Result<TimeDelta, ConfigError>,
    refresh_tokens_expire_in: Result<TimeDelta, ConfigError>,
    personal_access_tokens_expire_in: Result<TimeDelta, ConfigError>,
    session_lifetime: Result<TimeDelta, ConfigError>,
    enable_password_grant: bool,
    enable_implicit_grant: bool,
    insecure_http_redirect_uris: bool,
    require_pushed_authorization_requests: bool,
    issuer: Option<String>,
    path: String,
    cookie: String,
    token_rate_limit: u32,
    login_rate_limit: u32,
    failure_limits: FailureLimitSettings,
    refresh_token_reuse_grace: TimeDelta,
    client_registration: Result<crate::registration::RegistrationPolicy, ConfigError>,
    fapi_profile: bool,
    use_dpop_nonce: bool,
    accept_plaintext_client_secrets: bool,
    token_cache: bool,
    jwks_fetcher: Option<Arc<dyn crate::client_assertion::JwksFetcher>>,
    token_cache_max_age: TimeDelta,
    keys: KeySource,
    key_set: Option<KeySet>,
    stored_keys: Option<Vec<StoredKey>>,
    server_secret: Option<Result<ServerSecret, ConfigError>>,
    store: Option<Arc<dyn Store>>,
    providers: IndexMap<String, Arc<dyn UserProvider>>,
    default_provider: String,
    clock: Arc<dyn Clock>,
    hasher: PasswordHasher,
    listeners: Vec<Arc<dyn EventListener>>,
    claims_hook: Option<Arc<dyn ClaimsHook>>,
    laravel: Result<Option<LaravelCompat>, ConfigError>,
}

impl fmt::Debug for PassportBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PassportBuilder")
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl Default for PassportBuilder {
    fn default() -> Self {
        Self {
            scopes: IndexMap::new(),
            default_scopes: Vec::new(),
            inherited_scopes: false,
            tokens_expire_in: Ok(ONE_YEAR),
            refresh_tokens_expire_in: Ok(ONE_YEAR),
            personal_access_tokens_expire_in: Ok(ONE_YEAR),
            session_lifetime: Ok(TimeDelta::minutes(120)),
            enable_password_grant: false,
            enable_implicit_grant: false,
            insecure_http_redirect_uris: false,
            require_pushed_authorization_requests: false,
            issuer: None,
            path: "oauth".to_owned(),
            cookie: "passport_token".to_owned(),
            token_rate_limit: 0,
            login_rate_limit: 0,
            failure_limits: FailureLimitSettings::default(),
            refresh_token_reuse_grace: TimeDelta::zero(),
            client_registration: Ok(crate::registration::RegistrationPolicy::Off),
            fapi_profile: false,
            use_dpop_nonce: false,
            accept_plaintext_client_secrets: false,
            token_cache: true,
            jwks_fetcher: None,
            token_cache_max_age: TimeDelta::minutes(5),
            keys: KeySource::None,
            key_set: None,
            stored_keys: None,
            server_secret: None,
            store: None,
            providers: IndexMap::new(),
            default_provider: DEFAULT_PROVIDER.to_owned(),
            clock: Arc::new(SystemClock),
            hasher: PasswordHasher::default(),
            listeners: Vec::new(),
            claims_hook: None,
            laravel: Ok(None),
        }
    }
}

fn lifetime(text: Option<&String>, default: TimeDelta) -> Result<TimeDelta, ConfigError> {
    text.map_or(Ok(default), |t| parse_duration(t))
}

impl PassportBuilder {
    /// A builder with settings from a [`PassportConfig`]. Durations are checked by `build()`.
    pub fn from_config(config: &PassportConfig) -> Self {
        let mut b = Self {
            scopes: config.scopes.clone(),
            default_scopes: config.default_scopes.clone(),
            inherited_scopes: config.inherited_scopes,
            tokens_expire_in: lifetime(config.tokens_expire_in.as_ref(), ONE_YEAR),
            refresh_tokens_expire_in: lifetime(config.refresh_tokens_expire_in.as_ref(), ONE_YEAR),
            personal_access_tokens_expire_in: lifetime(config.personal_access_tokens_expire_in.as_ref(), ONE_YEAR),
            session_lifetime: lifetime(config.session_lifetime.as_ref(), TimeDelta::minutes(120)),
            enable_password_grant: config.enable_password_grant,
            enable_implicit_grant: config.enable_implicit_grant,
            insecure_http_redirect_uris: config.insecure_http_redirect_uris,
            require_pushed_authorization_requests: config.require_pushed_authorization_requests,
            issuer: config.issuer.clone(),
            use_dpop_nonce: config.use_dpop_nonce,
            ..Self::default()
        };
        if let Some(path) = &config.path {
            b.path = path.trim_matches('/').to_owned();
        }
        if let Some(cookie) = &config.cookie {
            b.cookie.clone_from(cookie);
        }
        if let Some(limit) = config.token_rate_limit {
            b.token_rate_limit = limit;
        }
        if let Some(limit) = config.login_rate_limit {
            b.login_rate_limit = limit;
        }
        if let Some(seconds) = config.refresh_token_reuse_grace {
            b.refresh_token_reuse_grace = TimeDelta::seconds(i64::from(seconds));
        }
        if let Some(policy) = &config.client_registration {
            b.client_registration = policy.parse();
        }
        b.fapi_profile = config.fapi_profile;
        b.laravel = config.laravel_compat();
        // Passport 11/12 stored client secrets in plain text unless told to hash them; 13
        // never accepts them (`passport:hash` first).
        b.accept_plaintext_client_secrets =
            matches!(&b.laravel, Ok(Some(c)) if c.version() == crate::laravel::PassportVersion::V12);
        let limits = &mut b.failure_limits;
        for (setting, value) in [
            (
                &mut limits.client_auth_failures_per_client,
                config.client_auth_failures_per_client,
            ),
            (
                &mut limits.client_auth_failures_per_address,
                config.client_auth_failures_per_address,
            ),
            (
                &mut limits.login_failures_per_account,
                config.login_failures_per_account,
            ),
            (
                &mut limits.login_failures_per_address,
                config.login_failures_per_address,
            ),
        ] {
            if let Some(value) = value {
                *setting = value;
            }
        }
        if let Some(secret) = &config.server_secret {
            b.server_secret = Some(ServerSecret::parse(secret).map_err(|e| ConfigError(format!("server_secret: {e}"))));
        }
        if let Some(private) = &config.private_key {
            b.keys = KeySource::Pem {
                private: private.clone(),
                public: config.public_key.clone(),
            };
        }
        b
    }

    /// Defines the scopes and their descriptions (Passport's `tokensCan`), in display order.
    pub fn tokens_can<K: Into<String>, V: Into<String>>(mut self, scopes: impl IntoIterator<Item = (K, V)>) -> Self {
        self.scopes = scopes.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        self
    }

    /// Scopes given to requests that name none (Passport's `defaultScopes`).
    pub fn default_scopes(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.default_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// `a` satisfies a check for `a:b` (Passport's `$withInheritedScopes`).
    pub fn with_inherited_scopes(mut self, on: bool) -> Self {
        self.inherited_scopes = on;
        self
    }

    /// Access token lifetime (default one year).
    pub fn tokens_expire_in(mut self, ttl: TimeDelta) -> Self {
        self.tokens_expire_in = Ok(ttl);
        self
    }

    /// Refresh token lifetime (default one year).
    pub fn refresh_tokens_expire_in(mut self, ttl: TimeDelta) -> Self {
        self.refresh_tokens_expire_in = Ok(ttl);
        self
    }

    /// Personal access token lifetime (default one year).
    pub fn personal_access_tokens_expire_in(mut self, ttl: TimeDelta) -> Self {
        self.personal_access_tokens_expire_in = Ok(ttl);
        self
    }

    /// Session lifetime for the browser pages (default two hours).
    pub fn session_lifetime(mut self, ttl: TimeDelta) -> Self {
        self.session_lifetime = Ok(ttl);
        self
    }

    /// Turns the password grant on (off by default).
    pub fn enable_password_grant(mut self, on: bool) -> Self {
        self.enable_password_grant = on;
        self
    }

    /// Laravel Passport compatibility: Passport's refresh tokens and codes are redeemed and
    /// its wire format kept (see [`LaravelCompat`]). Off by default.
    pub fn laravel_compat(mut self, compat: Option<LaravelCompat>) -> Self {
        self.laravel = Ok(compat);
        self
    }

    /// Turns the implicit grant on (off by default).
    pub fn enable_implicit_grant(mut self, on: bool) -> Self {
        self.enable_implicit_grant = on;
        self
    }

    /// Allows plain `http` redirect URIs to hosts other than loopback at registration (off by
    /// default: codes and tokens would cross the network unencrypted).
    pub fn insecure_http_redirect_uris(mut self, on: bool) -> Self {
        self.insecure_http_redirect_uris = on;
        self
    }

    /// Requires pushed authorization requests (RFC 9126) of every client: `/oauth/authorize`
    /// without a `request_uri` is refused with `invalid_request` (off by default; a client can
    /// be required to push on its own with `NewClient::require_pushed_authorization_requests`).
    pub fn require_pushed_authorization_requests(mut self, on: bool) -> Self {
        self.require_pushed_authorization_requests = on;
        self
    }

    /// Public base URL of the server.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Route prefix (default `oauth`).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into().trim_matches('/').to_owned();
        self
    }

    /// Requests per minute per client address on the token endpoint, successful or not
    /// (default 0: off; the failure limits are what stops guessing).
    pub fn token_rate_limit(mut self, per_minute: u32) -> Self {
        self.token_rate_limit = per_minute;
        self
    }

    /// Login requests per minute per client address on `POST /login` (default 0: off).
    pub fn login_rate_limit(mut self, per_minute: u32) -> Self {
        self.login_rate_limit = per_minute;
        self
    }

    /// Brute-force limits on failures (see [`FailureLimitSettings`]; on by default).
    pub fn failure_limits(mut self, limits: FailureLimitSettings) -> Self {
        self.failure_limits = limits;
        self
    }

    /// How long after a rotation the same client may present the refresh token it has just
    /// rotated and get a fresh pair, the unused one being revoked, instead of reuse detection
    /// revoking the whole family (default zero: off). A client whose answer was lost to a crash
    /// or a network failure can then retry safely; keep it short (seconds), since within it a
    /// stolen token and the client's own retry look alike.
    pub fn refresh_token_reuse_grace(mut self, grace: TimeDelta) -> Self {
        self.refresh_token_reuse_grace = grace.max(TimeDelta::zero());
        self
    }

    /// How the key sets of `private_key_jwt` clients registered with a `jwks_uri` are fetched
    /// (`passport_axum::HttpJwksFetcher` is the bounded HTTPS one); without one, such clients
    /// cannot authenticate.
    pub fn jwks_fetcher(mut self, fetcher: Arc<dyn crate::client_assertion::JwksFetcher>) -> Self {
        self.jwks_fetcher = Some(fetcher);
        self
    }

    /// Applies the FAPI 2.0 Security Profile to every client (off by default; see the README):
    /// the password and implicit grants cannot be enabled with it.
    pub fn fapi_profile(mut self, on: bool) -> Self {
        self.fapi_profile = on;
        self
    }

    /// Who may register clients at `POST /{path}/register` (RFC 7591; off by default).
    pub fn client_registration(mut self, policy: crate::registration::RegistrationPolicy) -> Self {
        self.client_registration = Ok(policy);
        self
    }

    /// DPoP proofs must carry a nonce of the server's (RFC 9449 §8, §9; off by default): a
    /// proof without the current one is answered `use_dpop_nonce` with a `DPoP-Nonce` header,
    /// and the client retries with it. Nonces are derived from the server secret and the time
    /// (a new one every [`crate::DPOP_NONCE_PERIOD`], the previous one still accepted), so every
    /// instance accepts every other's; proofs made long ahead of their use are refused.
    pub fn use_dpop_nonce(mut self, on: bool) -> Self {
        self.use_dpop_nonce = on;
        self
    }

    /// Remember live bearer tokens in memory (on by default; see [`crate::TokenCache`]): a
    /// repeated check skips the signature and the database. Revocations stay immediate here
    /// and reach other instances through the database's revocation feed, which
    /// [`Passport::watch_revocations`] applies; until it runs, checks go to the database.
    pub fn token_cache(mut self, on: bool) -> Self {
        self.token_cache = on;
        self
    }

    /// How long a checked token is remembered at most (default five minutes; keep it short
    /// when something outside the feed's reach changes token rows).
    pub fn token_cache_max_age(mut self, max_age: TimeDelta) -> Self {
        self.token_cache_max_age = max_age.max(TimeDelta::zero());
        self
    }

    /// Loads `oauth-private.key` / `oauth-public.key` from `dir` (Passport's `loadKeysFrom`).
    pub fn load_keys_from(mut self, dir: impl Into<PathBuf>) -> Self {
        self.keys = KeySource::Directory(dir.into());
        self
    }

    /// Uses PEM keys given as text.
    pub fn keys_from_pem(mut self, private: impl Into<String>, public: Option<String>) -> Self {
        self.keys = KeySource::Pem {
            private: private.into(),
            public,
        };
        self
    }

    /// Uses keys from the configuration when it carried some, else from `dir`.
    pub fn keys_or_directory(mut self, dir: impl Into<PathBuf>) -> Self {
        if matches!(self.keys, KeySource::None) {
            self.keys = KeySource::Directory(dir.into());
        }
        self
    }

    /// Uses the key set kept in the store (`list_keys()` of it; see [`crate::KeyStore`]): when
    /// it holds keys, they take precedence over a [`KeySource`] and a [`KeySet`]. Needs a
    /// [`server_secret`](Self::server_secret) to unseal them.
    pub fn stored_keys(mut self, keys: Vec<StoredKey>) -> Self {
        self.stored_keys = Some(keys);
        self
    }

    /// Uses a key set built elsewhere (takes precedence over a [`KeySource`]).
    pub fn key_set(mut self, keys: KeySet) -> Self {
        self.key_set = Some(keys);
        self
    }

    /// The secret every instance shares; the SPA cookie's key (and every other HMAC key) is
    /// derived from it. Without one, it is derived from the current signing key (as earlier
    /// releases did): then rotating the signing key signs SPA users out.
    pub fn server_secret(mut self, secret: ServerSecret) -> Self {
        self.server_secret = Some(Ok(secret));
        self
    }

    /// The storage backend (required).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Registers a named user provider. The first one registered is the default unless
    /// [`default_provider`](Self::default_provider) says otherwise.
    pub fn user_provider(mut self, name: impl Into<String>, provider: Arc<dyn UserProvider>) -> Self {
        let name = name.into();
        if self.providers.is_empty() {
            self.default_provider.clone_from(&name);
        }
        self.providers.insert(name, provider);
        self
    }

    /// Names the provider used by clients without one.
    pub fn default_provider(mut self, name: impl Into<String>) -> Self {
        self.default_provider = name.into();
        self
    }

    /// Replaces the clock (tests use [`crate::MockClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Registers an event listener (Passport's `Event::listen`).
    pub fn listen(mut self, listener: Arc<dyn EventListener>) -> Self {
        self.listeners.push(listener);
        self
    }

    /// Adds claims to every access token issued (see [`ClaimsHook`]).
    pub fn custom_claims(mut self, hook: Arc<dyn ClaimsHook>) -> Self {
        self.claims_hook = Some(hook);
        self
    }

    /// Replaces the password hasher (e.g. to change its concurrency). Slow client-secret
    /// checks (bcrypt, argon2) take its permits too.
    pub fn password_hasher(mut self, hasher: PasswordHasher) -> Self {
        self.hasher = hasher;
        self
    }

    /// Lets plaintext client secrets verify (off by default), as Passport stored them before
    /// `Passport::hashClientSecrets()` (compared in constant time, through SHA-256 digests of
    /// both). For running on a Laravel database that still has such rows; `passport hash`
    /// replaces them with hashes, after which this can be turned off.
    pub fn accept_plaintext_client_secrets(mut self, on: bool) -> Self {
        self.accept_plaintext_client_secrets = on;
        self
    }

    /// Checks the settings that need neither keys nor storage (scopes, lifetimes, providers), so
    /// a bad configuration is reported before anything is created.
    pub fn check(&self) -> Result<(), ConfigError> {
        if let Err(err) = &self.client_registration {
            return Err(err.clone());
        }
        if let Err(err) = &self.laravel {
            return Err(err.clone());
        }
        if self.fapi_profile && (self.enable_password_grant || self.enable_implicit_grant) {
            return Err(ConfigError(
                "fapi_profile: the FAPI 2.0 profile forbids the password and implicit grants; turn them off".to_owned(),
            ));
        }
        for lifetime in [
            &self.tokens_expire_in,
            &self.refresh_tokens_expire_in,
            &self.personal_access_tokens_expire_in,
            &self.session_lifetime,
        ] {
            match lifetime {
                Err(err) => return Err(err.clone()),
                Ok(ttl) if *ttl > TimeDelta::days(365 * 100) => {
                    return Err(ConfigError(
                        "lifetimes longer than 100 years are not supported".to_owned(),
                    ));
                }
                Ok(ttl) if *ttl <= TimeDelta::zero() => {
                    return Err(ConfigError("lifetimes must be longer than zero".to_owned()));
                }
                Ok(_) => {}
            }
        }
        for scope in &self.default_scopes {
            let built_in = crate::scope::OPENID_SCOPES.iter().any(|(id, _)| id == scope);
            if !self.scopes.contains_key(scope) && !built_in {
                return Err(ConfigError(format!("default scope {scope:?} is not defined in scopes")));
            }
        }
        if let Some(bad) = self
            .scopes
            .keys()
            .find(|s| s.is_empty() || s.contains(char::is_whitespace) || *s == "*")
        {
            return Err(ConfigError(format!(
                "invalid scope id {bad:?}: no spaces, not empty, not *"
            )));
        }
        if let Some(issuer) = &self.issuer {
            let valid = url::Url::parse(issuer).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some_and(|h| !h.is_empty())
                    && u.query().is_none()
                    && u.fragment().is_none()
            });
            if !valid {
                return Err(ConfigError(format!(
                    "invalid issuer {issuer:?}: use the server's absolute http(s) URL, without query or fragment"
                )));
            }
        }
        if !self.providers.is_empty() && !self.providers.contains_key(&self.default_provider) {
            return Err(ConfigError(format!(
                "default provider {:?} is not registered",
                self.default_provider
            )));
        }
        Ok(())
    }

    /// Checks every setting, loads the keys and returns the immutable handle.
    pub fn build(self) -> Result<Passport, ConfigError> {
        self.check()?;
        let store = self
            .store
            .ok_or_else(|| ConfigError("no store configured: call .store(...)".to_owned()))?;
        let given_secret = self.server_secret.transpose()?;
        let settings = Settings {
            issuer: self.issuer,
            tokens_expire_in: self.tokens_expire_in?,
            refresh_tokens_expire_in: self.refresh_tokens_expire_in?,
            personal_access_tokens_expire_in: self.personal_access_tokens_expire_in?,
            session_lifetime: self.session_lifetime?,
            enable_password_grant: self.enable_password_grant,
            enable_implicit_grant: self.enable_implicit_grant,
            path: self.path,
            cookie: self.cookie,
            token_rate_limit: self.token_rate_limit,
            login_rate_limit: self.login_rate_limit,
            redirect_policy: RedirectPolicy {
                insecure_http: self.insecure_http_redirect_uris,
            },
            failure_limits: self.failure_limits,
            refresh_token_reuse_grace: self.refresh_token_reuse_grace,
            client_registration: self.client_registration.clone()?,
            fapi_profile: self.fapi_profile,
            require_pushed_authorization_requests: self.require_pushed_authorization_requests,
            use_dpop_nonce: self.use_dpop_nonce,
            laravel: self.laravel.clone()?,
            accept_plaintext_client_secrets: self.accept_plaintext_client_secrets,
        };
        let mut cache = KeyCache::default();
        let keys = match (self.stored_keys, self.key_set) {
            (Some(stored), _) if !stored.is_empty() => {
                let secret = given_secret.as_ref().ok_or_else(|| {
                    ConfigError("keys kept in the store need a server secret to unseal them".to_owned())
                })?;
                let sealing = secret
                    .aead_key(purpose::KEY_SEALING)
                    .map_err(|e| ConfigError(e.to_string()))?;
                let longest = crate::keyring::longest_token_lifetime(&settings);
                assemble(&stored, self.clock.now(), longest, &sealing, &mut cache)
                    .map_err(|e| ConfigError(format!("stored signing keys: {}", e.description())))?
                    .ok_or_else(|| ConfigError("the stored key set is empty".to_owned()))?
            }
            (_, Some(keys)) => keys,
            _ => KeySet::load(&self.keys).map_err(|e| ConfigError(e.to_string()))?,
        };
        let server_secret = given_secret.unwrap_or_else(|| keys.current().fallback_secret());
        let settings_nonce = settings.use_dpop_nonce;
        let metrics = Arc::new(Metrics::default());
        // Every store call is timed here, whichever backend serves it.
        let store: Arc<dyn Store> = Arc::new(TimedStore::new(store, metrics.clone()));
        Ok(Passport {
            inner: Arc::new(Inner {
                scopes: ScopeRegistry::new(self.scopes, self.default_scopes, self.inherited_scopes),
                settings,
                keyring: Keyring::new(
                    server_secret
                        .aead_key(purpose::KEY_SEALING)
                        .map_err(|e| ConfigError(e.to_string()))?,
                    cache,
                ),
                token_cache: TokenCache::new(self.token_cache, self.token_cache_max_age),
                jwks_fetcher: self.jwks_fetcher,
                jwks_cache: crate::client_assertion::JwksCache::default(),
                group_commit: Arc::default(),
                cookie_key: server_secret.hmac_key(purpose::TRANSIENT_COOKIE),
                guest_key: server_secret.hmac_key(purpose::GUEST_SESSION),
                dpop_nonce_key: settings_nonce.then(|| server_secret.hmac_key(purpose::DPOP_NONCE)),
                limits: FailureLimits::new(self.failure_limits, self.clock.clone()),
                keys: ArcSwap::from_pointee(keys),
                store,
                providers: self.providers,
                default_provider: self.default_provider,
                client_secrets: ClientSecretVerifier::new(
                    self.hasher.clone(),
                    self.accept_plaintext_client_secrets,
                    self.clock.clone(),
                ),
                clock: self.clock,
                hasher: self.hasher,
                events: Events::new(self.listeners, metrics.clone()),
                claims_hook: self.claims_hook,
                metrics,
            }),
        })
    }
}

struct Inner {
    /// Fetches `jwks_uri` key sets of private_key_jwt clients (none: such clients fail).
    jwks_fetcher: Option<Arc<dyn crate::client_assertion::JwksFetcher>>,
    jwks_cache: crate::client_assertion::JwksCache,
    scopes: ScopeRegistry,
    settings: Settings,
    cookie_key: aws_lc_rs::hmac::Key,
    guest_key: aws_lc_rs::hmac::Key,
    /// The key DPoP nonces are derived with, when `use_dpop_nonce` is on.
    dpop_nonce_key: Option<aws_lc_rs::hmac::Key>,
    limits: FailureLimits,
    /// Swapped whole when the key set changes (rotation, retirement), so a signing or checking
    /// request holds one consistent set without locking.
    keys: ArcSwap<KeySet>,
    keyring: Keyring,
    token_cache: TokenCache,
    group_commit: Arc<GroupCommit>,
    store: Arc<dyn Store>,
    providers: IndexMap<String, Arc<dyn UserProvider>>,
    default_provider: String,
    clock: Arc<dyn Clock>,
    hasher: PasswordHasher,
    /// The token endpoint's client-secret checks (on `hasher`'s permits).
    client_secrets: ClientSecretVerifier,
    events: Events,
    claims_hook: Option<Arc<dyn ClaimsHook>>,
    metrics: Arc<Metrics>,
}

/// The authorization server: cheap to clone, shared by every handler.
#[derive(Clone)]
pub struct Passport {
    inner: Arc<Inner>,
}

impl fmt::Debug for Passport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passport")
            .field("settings", &self.inner.settings)
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

/// A validated bearer token: what a protected route learns about its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The token id (`jti`).
    pub id: String,
    /// The client the token was issued to.
    pub client_id: ClientId,
    /// The user; always `None` for client-credentials tokens.
    pub user_id: Option<String>,
    /// Granted scopes.
    pub scopes: ScopeSet,
    /// The token's custom claims (see [`crate::ClaimsHook`]).
    pub custom_claims: serde_json::Map<String, serde_json::Value>,
    /// The client's user provider.
    pub client_provider: Option<String>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// The thumbprint of the key a DPoP-bound token is bound to (its `cnf.jkt`): such a token
    /// is only good with a proof of that key (RFC 9449 §7).
    pub jkt: Option<String>,
}

/// The minted parts of a token response, before they are stored.
pub(crate) struct Minted {
    pub(crate) access: AccessTokenRecord,
    pub(crate) jwt: String,
    pub(crate) refresh: Option<(String, RefreshTokenRecord)>,
    /// The grant that minted them and the algorithm that signed the JWT (for the metrics).
    pub(crate) grant: GrantType,
    pub(crate) alg: Algorithm,
    /// The DPoP key the access token is bound to.
    pub(crate) jkt: Option<String>,
}

/// What to mint.
pub(crate) struct MintSpec<'a> {
    /// The grant issuing the tokens (told to the claims hook).
    pub(crate) grant: GrantType,
    pub(crate) client: &'a Client,
    pub(crate) user_id: Option<String>,
    pub(crate) scopes: ScopeSet,
    pub(crate) ttl: TimeDelta,
    pub(crate) name: Option<String>,
    /// The grant family the tokens join.
    pub(crate) family: Family,
    /// Issue a refresh token too (needs a family).
    pub(crate) with_refresh: bool,
    /// Bind the access token (and a public client's refresh token) to this DPoP key.
    pub(crate) jkt: Option<String>,
}

/// Which grant family minted tokens belong to: revoking a family revokes every access and
/// refresh token in it (refresh reuse, authorization code replay).
pub(crate) enum Family {
    /// Stand-alone token (client credentials, personal access).
    None,
    /// Start a new family.
    New,
    /// Continue a family (refresh rotation, or a family named after an authorization code).
    Existing(String),
}

impl Passport {
    /// Starts a builder.
    pub fn builder() -> PassportBuilder {
        PassportBuilder::default()
    }

    /// The scope registry.
    pub fn scopes(&self) -> &ScopeRegistry {
        &self.inner.scopes
    }

    /// The validated settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The storage backend. Crate-private: every state change goes through an operation of
    /// the core, which emits its events.
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// The password hasher.
    pub fn hasher(&self) -> &PasswordHasher {
        &self.inner.hasher
    }

    /// The client-secret checks of client authentication.
    pub(crate) fn client_secrets(&self) -> &ClientSecretVerifier {
        &self.inner.client_secrets
    }

    /// Queues an event for the listeners (never waits for them).
    pub(crate) fn emit(&self, event: Event) {
        if let Event::AccessTokenRevoked { token_id } = &event {
            self.inner.token_cache.forget(&[Forget::Tokens(vec![token_id.clone()])]);
        }
        self.inner.events.emit(event);
    }

    /// Waits until the listeners have handled every event emitted so far (for tests).
    pub async fn flush_events(&self) {
        self.inner.events.flush().await;
    }

    /// Emits the creation events of freshly stored tokens (and counts them).
    pub(crate) fn announce(&self, minted: &Minted) {
        self.inner.metrics.token_issued(minted.grant, minted.alg);
        self.emit(Event::AccessTokenCreated {
            token_id: minted.access.id.clone(),
            user_id: minted.access.user_id.clone(),
            client_id: minted.access.client_id.to_string(),
        });
        if let Some((_, refresh)) = &minted.refresh {
            self.emit(Event::RefreshTokenCreated {
                refresh_token_id: refresh.id.clone(),
                access_token_id: minted.access.id.clone(),
            });
        }
    }

    pub(crate) fn cookie_key(&self) -> &aws_lc_rs::hmac::Key {
        &self.inner.cookie_key
    }

    pub(crate) fn guest_key(&self) -> &aws_lc_rs::hmac::Key {
        &self.inner.guest_key
    }

    pub(crate) fn dpop_nonce_key(&self) -> Option<&aws_lc_rs::hmac::Key> {
        self.inner.dpop_nonce_key.as_ref()
    }

    /// The server's counters and histograms, for Prometheus (see [`Metrics::render`]).
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The bearer check's cache.
    pub fn token_cache(&self) -> &TokenCache {
        &self.inner.token_cache
    }

    pub(crate) fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    pub(crate) fn inner_jwks_cache(&self) -> &crate::client_assertion::JwksCache {
        &self.inner.jwks_cache
    }

    pub(crate) fn inner_jwks_fetcher(&self) -> Option<&Arc<dyn crate::client_assertion::JwksFetcher>> {
        self.inner.jwks_fetcher.as_ref()
    }

    pub(crate) fn limits(&self) -> &FailureLimits {
        &self.inner.limits
    }

    /// The key set tokens are signed and verified with, as it is now.
    pub fn keys(&self) -> Arc<KeySet> {
        self.inner.keys.load_full()
    }

    /// Replaces the key set (a rotation or retirement picked up from the database); tokens in
    /// flight finish with the set they started with.
    pub fn replace_keys(&self, keys: KeySet) {
        let kids: Vec<&str> = keys.keys().map(SigningKey::kid).collect();
        self.inner.token_cache.forget_keys_not_in(&kids);
        self.inner.keys.store(Arc::new(keys));
    }

    /// The current signing key's id.
    pub fn kid(&self) -> String {
        self.inner.keys.load().current().kid().to_owned()
    }

    /// The algorithm the current key signs with (an id_token's `at_hash` uses its hash).
    pub fn signing_algorithm(&self) -> Algorithm {
        self.inner.keys.load().current().algorithm()
    }

    /// Signs `claims` as a compact JWS with the current key: the header names its `kid` and
    /// `alg` (and `typ: JWT`). EdDSA, ES256 and RSA keys up to 2048 bits sign in place (tens
    /// to a few hundred microseconds; handing the work to another thread would cost more than
    /// it saves); larger RSA keys (milliseconds) sign on the blocking pool.
    pub async fn sign_jwt(&self, claims: &impl serde::Serialize) -> Result<String, OAuthError> {
        Ok(self.sign_jwt_with_algorithm(claims).await?.0)
    }

    /// [`Self::sign_jwt`], also answering the algorithm of the key that signed.
    async fn sign_jwt_with_algorithm(&self, claims: &impl serde::Serialize) -> Result<(String, Algorithm), OAuthError> {
        let json = serde_json::to_vec(claims).map_err(|_| OAuthError::server_error("claims serialization failed"))?;
        let keys = self.inner.keys.load_full();
        let alg = keys.current().algorithm();
        if keys.current().signs_quickly() {
            return Ok((keys.current().sign(&json)?, alg));
        }
        let jwt = tokio::task::spawn_blocking(move || keys.current().sign(&json))
            .await
            .map_err(|_| OAuthError::server_error("signing task failed"))??;
        Ok((jwt, alg))
    }

    /// The custom claims hook, if one is registered.
    pub(crate) fn claims_hook(&self) -> Option<&Arc<dyn ClaimsHook>> {
        self.inner.claims_hook.as_ref()
    }

    /// The name of the default user provider.
    pub fn default_provider(&self) -> &str {
        &self.inner.default_provider
    }

    /// The user a bearer token acts for: `user_id` of the provider named `provider`, reused
    /// for up to [`crate::USER_TTL`] (evicted at once when the user is deleted, here or on any
    /// instance); `None` when there is no such provider or user.
    pub async fn token_user(
        &self,
        provider: &str,
        user_id: &str,
    ) -> Result<Option<Arc<User>>, crate::error::StoreError> {
        let cache = &self.inner.token_cache;
        let cached = cache.user(provider, user_id);
        self.inner.metrics.cache_lookup(Cache::User, cached.is_some());
        if let Some(user) = cached {
            return Ok(Some(user));
        }
        let Some(users) = self.user_provider(Some(provider)) else {
            return Ok(None);
        };
        let epoch = cache.epoch();
        let Some(user) = users.retrieve_by_id(user_id).await? else {
            return Ok(None);
        };
        let user = Arc::new(user);
        cache.insert_user(provider, user.clone(), epoch);
        Ok(Some(user))
    }

    /// Whether the FAPI 2.0 Security Profile applies to `client` (globally or for it alone).
    pub fn fapi_applies(&self, client: &Client) -> bool {
        self.inner.settings.fapi_profile || client.fapi_profile
    }

    /// A user provider by name (`None` = the default one).
    pub fn user_provider(&self, name: Option<&str>) -> Option<&Arc<dyn UserProvider>> {
        self.inner.providers.get(name.unwrap_or(&self.inner.default_provider))
    }

    /// Registers a client and returns it with its plain secret (shown once; `None` for public
    /// clients). Fails with `invalid_request` on a bad name, redirect URI or kind/public mix.
    pub async fn create_client(&self, new: NewClient) -> Result<(Client, Option<ClientSecret>), OAuthError> {
        let valid = new.validate(self.inner.settings.redirect_policy)?;
        // A private_key_jwt client signs assertions instead: it has no secret.
        let secret = if valid.confidential && new.jwks.is_none() && new.jwks_uri.is_none() {
            Some(ClientSecret::generate()?)
        } else {
            None
        };
        let now = self.now();
        let client = Client {
            id: ClientId::new(uuid::Uuid::now_v7().to_string()),
            owner_id: new.owner_id,
            name: valid.name,
            secret_hash: secret.as_ref().map(|s| hash_client_secret(s.expose_secret())),
            provider: new.provider,
            redirect_uris: valid.redirect_uris,
            grant_types: new.kind.grant_types(),
            scopes: new.scopes,
            skips_authorization: new.skips_authorization,
            post_logout_redirect_uris: valid.post_logout_redirect_uris,
            can_introspect: new.can_introspect,
            require_pushed_authorization_requests: new.require_pushed_authorization_requests,
            dpop_bound_access_tokens: new.dpop_bound_access_tokens,
            jwks: new.jwks,
            fapi_profile: new.fapi_profile,
            jwks_uri: new.jwks_uri,
            revoked: false,
            created_at: now,
            updated_at: now,
        };
        self.inner.store.insert_client(&client).await?;
        Ok((client, secret))
    }

    /// A live (not revoked) client.
    pub async fn find_active_client(&self, id: &str) -> Result<Option<Client>, OAuthError> {
        Ok(self.inner.store.find_client(id).await?.filter(|c| !c.revoked))
    }

    /// Stores freshly minted tokens (through group commit: the rows of concurrent requests go
    /// into one transaction) and announces them. Returns once they are committed.
    pub(crate) async fn store_minted(&self, minted: Minted) -> Result<Minted, OAuthError> {
        let Minted {
            access,
            jwt,
            refresh,
            grant,
            alg,
            jkt,
        } = minted;
        let (value, refresh) = match refresh {
            Some((value, record)) => (Some(value), Some(record)),
            None => (None, None),
        };
        let (access, refresh) = self
            .inner
            .group_commit
            .insert(&self.inner.store, (access, refresh))
            .await?;
        let minted = Minted {
            access,
            jwt,
            refresh: value.zip(refresh),
            grant,
            alg,
            jkt,
        };
        self.announce(&minted);
        Ok(minted)
    }

    /// Builds and signs an access token (and a refresh token if asked), without storing them.
    pub(crate) async fn mint(&self, spec: MintSpec<'_>) -> Result<Minted, OAuthError> {
        let now = self.now();
        let expires_at = now + spec.ttl;
        let id = crate::random::token_id(now.timestamp_millis())?;
        let claims = AccessTokenClaims {
            aud: spec.client.id.to_string(),
            jti: id.clone(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: expires_at.timestamp(),
            sub: match (&spec.user_id, &self.inner.settings.laravel) {
                (Some(user), _) => user.clone(),
                // Passport 11/12 wrote `""`, which PHP guards without the CVE-2026-39976 fix
                // cannot map to a user; the client id is what 13 writes (and we otherwise).
                // So does 13 when client ids are integers (`Passport::$clientUuids = false`, or
                // a database that kept 11/12's ids): a guard without the fix would map `"3"` to
                // user 3 (CVE-2026-39976).
                (None, Some(compat))
                    if compat.version() == crate::laravel::PassportVersion::V12
                        || spec.client.id.as_str().bytes().all(|b| b.is_ascii_digit()) =>
                {
                    String::new()
                }
                (None, _) => spec.client.id.to_string(),
            },
            scopes: spec.scopes.to_vec(),
            iss: self.inner.settings.issuer.clone(),
            client_id: Some(spec.client.id.to_string()),
            cnf: spec.jkt.clone().map(|jkt| crate::dpop::Confirmation { jkt }),
            custom: match &self.inner.claims_hook {
                None => serde_json::Map::new(),
                Some(hook) => {
                    let token = TokenContext {
                        grant: spec.grant,
                        client: spec.client,
                        user_id: spec.user_id.as_deref(),
                        scopes: &spec.scopes,
                    };
                    custom_claims(hook.as_ref(), token).await?
                }
            },
        };
        let (jwt, alg) = self.sign_jwt_with_algorithm(&claims).await?;
        let family_id = match spec.family {
            Family::None => None,
            Family::New => Some(random_hex(16)?),
            Family::Existing(family) => Some(family),
        };
        let refresh = match (&family_id, spec.with_refresh) {
            (Some(family), true) => {
                let value = random_hex(40)?;
                let record = RefreshTokenRecord {
                    id: sha256_hex(&value),
                    access_token_id: id.clone(),
                    client_id: spec.client.id.clone(),
                    user_id: spec.user_id.clone(),
                    scopes: spec.scopes.clone(),
                    family_id: family.clone(),
                    revoked: false,
                    rotated_at: None,
                    rotated_to: None,
                    auth_time: None,
                    // RFC 9449 §5: a public client's refresh token is bound to its key (a
                    // confidential client's is bound by its authentication already).
                    dpop_jkt: spec.jkt.clone().filter(|_| !spec.client.is_confidential()),
                    created_at: now,
                    expires_at: now + self.inner.settings.refresh_tokens_expire_in,
                };
                Some((value, record))
            }
            _ => None,
        };
        Ok(Minted {
            access: AccessTokenRecord {
                id,
                user_id: spec.user_id,
                client_id: spec.client.id.clone(),
                name: spec.name,
                scopes: spec.scopes,
                family_id,
                revoked: false,
                created_at: now,
                expires_at,
            },
            jwt,
            refresh,
            grant: spec.grant,
            alg,
            jkt: spec.jkt,
        })
    }

    /// Checks a bearer token: signature, time claims, its database row (not revoked, not purged)
    /// and its client (not revoked). One indexed read. The user comes from the row, never from
    /// `sub`, so a client-credentials token can never act as a user.
    ///
    /// A DPoP-bound token ([`AccessToken::jkt`] is `Some`) is only half checked here: it must
    /// come with a proof of that key (RFC 9449 §7.1), checked with
    /// [`Passport::check_dpop_proof`] and compared with `jkt`, as `passport_axum`'s guard does.
    /// Code that protects routes with this method alone must refuse bound tokens.
    pub async fn authenticate_bearer(&self, token: &str) -> Result<AccessToken, TokenInvalid> {
        let checked = self.check_bearer(token).await;
        let outcome = match &checked {
            Ok(_) => BearerOutcome::Valid,
            Err(reason) => BearerOutcome::from(*reason),
        };
        self.inner.metrics.bearer_check(outcome);
        checked
    }

    async fn check_bearer(&self, token: &str) -> Result<AccessToken, TokenInvalid> {
        let now = self.now();
        let cache = &self.inner.token_cache;
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let known = cache.get(&key, now);
        self.inner.metrics.cache_lookup(Cache::Token, known.is_some());
        if let Some(known) = known {
            return Ok((*known).clone());
        }
        // Read before the database, so an eviction meanwhile keeps this answer out of it.
        let epoch = cache.epoch();
        let (claims, kid) = jwt::verify_with_kid(&self.inner.keys.load(), token, now)?;
        let nbf = claims.nbf;
        let status = match self.inner.store.token_status(&claims.jti).await {
            Ok(Some(status)) => status,
            Ok(None) => return Err(TokenInvalid::Revoked),
            Err(err) => {
                tracing::error!(error = %err, "token lookup failed");
                return Err(TokenInvalid::Unavailable);
            }
        };
        if status.revoked || status.client_revoked || status.client_id != claims.aud {
            return Err(TokenInvalid::Revoked);
        }
        let checked = AccessToken {
            id: claims.jti,
            client_id: status.client_id,
            user_id: status.user_id,
            scopes: claims.scopes.into(),
            custom_claims: claims.custom,
            client_provider: status.client_provider,
            expires_at: DateTime::from_timestamp(claims.exp, 0).unwrap_or_default(),
            jkt: claims.cnf.map(|cnf| cnf.jkt),
        };
        cache.insert(key, Arc::new(checked.clone()), Some(kid), nbf, now, epoch);
        Ok(checked)
    }

    /// Whether `token` grants `scope` (honouring `*` and, when enabled, inheritance).
    pub fn token_can(&self, token: &AccessToken, scope: &str) -> bool {
        token_can(&token.scopes, scope, self.inner.scopes.inherited())
    }

    /// Whether the grant type is switched on for this server.
    pub(crate) fn grant_enabled(&self, grant: GrantType) -> bool {
        match grant {
            GrantType::Password => self.inner.settings.enable_password_grant,
            GrantType::Implicit => self.inner.settings.enable_implicit_grant,
            _ => true,
        }
    }
}
