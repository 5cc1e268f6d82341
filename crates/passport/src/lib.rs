//! # passport — an OAuth 2.0 authorization server core
//!
//! The protocol, without HTTP or SQL: clients and their grant types, scopes, the token
//! endpoint's grants, signed JWT access tokens, and bearer-token checks. `passport-sqlx` stores
//! it, `passport-axum` serves it, and the `passport` binary runs it standalone.
//!
//! ## A server in four steps
//!
//! **1. Build a [`Passport`].** Settings have Laravel Passport's names and defaults; `build()`
//! checks them, loads the keys and fails fast. Storage is any [`Store`] (SQLite or PostgreSQL
//! from `passport-sqlx`); users come from a [`UserProvider`] you implement or the SQL one.
//!
//! ```no_run
//! # fn demo(store: std::sync::Arc<dyn passport::Store>, secret: passport::ServerSecret) -> Result<(), Box<dyn std::error::Error>> {
//! use passport::Passport;
//!
//! let passport = Passport::builder()
//!     .tokens_can([("orders:read", "Read your orders"), ("orders:create", "Place orders")])
//!     .default_scopes(["orders:read"])
//!     .tokens_expire_in(chrono::TimeDelta::days(15))
//!     .load_keys_from("storage")          // oauth-private.key / oauth-public.key
//!     .server_secret(secret)              // shared by every instance (cookies, CSRF)
//!     .store(store)
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! **2. Register clients.** [`Passport::create_client`] validates the name and redirect URIs
//! and returns the plain secret once; only its hash is stored.
//!
//! ```no_run
//! # async fn demo(passport: passport::Passport) -> Result<(), passport::OAuthError> {
//! use passport::{ClientKind, NewClient};
//!
//! let (client, secret) = passport
//!     .create_client(NewClient::new("Billing service", ClientKind::ClientCredentials))
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! **3. Issue tokens.** The web adapter parses `POST /oauth/token` into a [`TokenRequest`];
//! [`Passport::issue_token`] dispatches on `grant_type` and answers RFC 6749 §5.1 or an
//! [`OAuthError`] (§5.2).
//!
//! ```no_run
//! # async fn demo(passport: passport::Passport, id: String, secret: String) -> Result<(), passport::OAuthError> {
//! use passport::TokenRequest;
//!
//! let request = TokenRequest::new(
//!     [("grant_type".to_owned(), "client_credentials".to_owned()),
//!      ("client_id".to_owned(), id),
//!      ("client_secret".to_owned(), secret)],
//!     None,
//! );
//! let response = passport.issue_token(&request).await?;
//! # Ok(()) }
//! ```
//!
//! **4. Check tokens.** [`Passport::authenticate_bearer`] verifies the signature, the time
//! claims, the token's row and its client; the user comes from the row, never from `sub`.
//!
//! ```no_run
//! # async fn demo(passport: passport::Passport, bearer: &str) -> Result<(), passport::TokenInvalid> {
//! let token = passport.authenticate_bearer(bearer).await?;
//! assert!(passport.token_can(&token, "orders:read"));
//! # Ok(()) }
//! ```
//!
//! ## Where things live
//! * Grants: one module each under `grants`, dispatched by a table on `grant_type`.
//! * The authorization endpoint: [`Passport::validate_authorization`], the pure [`decide`],
//!   [`Passport::approve_authorization`]; consent requests in [`Passport::begin_consent`].
//! * OpenID Connect: id_tokens from the code, implicit and refresh grants, the claims of the
//!   `openid`/`profile`/`email` scopes ([`UserProvider::openid_claims`],
//!   [`ClaimsHook::user_claims`]), [`Passport::userinfo`], [`Passport::validate_logout`].
//! * Token introspection (RFC 7662) and revocation (RFC 7009): [`Passport::introspect`],
//!   [`Passport::revoke`].
//! * State changes (revocations, client updates, user deletion) are operations of
//!   [`Passport`] that emit their [`Event`]s; the store is never reached around them.
//! * DPoP (RFC 9449): [`Passport::check_dpop_proof`]; bound tokens carry `cnf.jkt`
//!   ([`AccessToken::jkt`]).
//! * Keys: a [`KeySet`] keyed by `kid`; HMAC keys derive from one [`ServerSecret`].
//! * Time comes from a [`Clock`]; tests move a [`MockClock`].
//! * Monitoring: [`Passport::metrics`] counts tokens issued, token endpoint errors, bearer
//!   checks, cache hits, events and store query latency, and renders them for Prometheus
//!   ([`Metrics::render`]); the adapters add their own families through [`Collect`].

mod authorize;
mod claims;
mod client;
mod client_assertion;
mod client_cache;
mod clock;
mod config;
mod consent;
mod device;
mod dpop;
mod error;
mod events;
#[doc(hidden)]
pub mod fuzzing;
mod grants;
mod group_commit;
mod introspect;
mod jwt;
mod keyring;
mod keys;
mod laravel;
mod limits;
mod manage;
mod metrics;
mod names;
mod oidc;
mod par;
mod passport;
mod pkce;
mod random;
mod redirect;
mod registration;
mod scope;
mod secret;
mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod timed_store;
mod token_cache;
mod transient;
mod user;

pub use async_trait::async_trait;
pub use authorize::{
    AUTH_CODE_TTL, AuthorizationExtensions, AuthorizationRequest, AuthorizationResponse, AuthorizeError, Decision,
    ErrorRedirect, FAPI_AUTH_CODE_TTL, Prompt, ResponseMode, ResponseType, UserState, ValidatedAuthorization, decide,
    error_redirect, redirect_with,
};
pub use claims::{ClaimsHook, ClaimsTarget, RESERVED_CLAIMS, TokenContext, UserClaimsContext};
pub use client::{Client, ClientId, ClientKind, GrantType, NewClient};
pub use client_assertion::{ASSERTION_ALGORITHMS, JWT_BEARER, JwksFetcher};
pub use client_cache::CLIENT_TTL;
pub use clock::{Clock, MockClock, SystemClock};
pub use config::{ConfigError, LaravelUsersConfig, PassportConfig, parse_duration};
pub use consent::{CONSENT_TTL, DeviceConsent, PendingConsent};
pub use device::{
    DEVICE_CODE_TTL, DEVICE_POLL_INTERVAL, DeviceAuthorization, USER_CODE_ALPHABET, display_user_code,
    normalize_user_code,
};
pub use dpop::{
    Confirmation, DPOP_ALGORITHMS, DPOP_CLOCK_SKEW, DPOP_NONCE_PERIOD, DPOP_PROOF_MAX_AGE, DpopCheck, DpopError,
    VerifiedProof, access_token_hash, verify_proof_signature_for_bench,
};
pub use error::{ErrorCode, OAuthError, StoreError};
pub use events::{Event, EventListener, TracingListener};
pub use grants::{BasicCredentials, ClientCredentials, PersonalAccessToken, TokenRequest, TokenResponse};
pub use introspect::{ActiveToken, Introspection, TokenKind};
pub use jwt::{AccessTokenClaims, TokenInvalid};
pub use keyring::{JWKS_MAX_AGE, KeyInfo, KeyState, KeyStore, StoredKey, key_states};
pub use keys::{
    Algorithm, GeneratedKeys, KeyError, KeySet, KeySource, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, SigningKey, generate_key,
    generate_keys, write_key_files, write_keys,
};
pub use laravel::{LaravelCompat, PassportVersion};
pub use limits::FailureLimitSettings;
pub use manage::Connection;
pub use metrics::{BUCKETS, BearerOutcome, Collect, Exposition, Histogram, Metrics};
pub use names::{MAX_NAME_CHARS, NameError, check_name};
pub use oidc::{ID_TOKEN_TTL, IdTokenHint, LogoutRequest, UserinfoRefusal, ValidatedLogout};
pub use par::{PUSHED_LOGIN_TTL, PUSHED_REQUEST_TTL, PushedAuthorization, REQUEST_URI_PREFIX, ResolvedAuthorization};
pub use passport::{AccessToken, Passport, PassportBuilder, Settings};
pub use pkce::PkceMethod;
pub use random::{random_alphanumeric, random_from_alphabet, random_hex};
pub use redirect::{
    RedirectPolicy, RedirectUri, authorize_redirect_uri, check_exchange_redirect_uri, redirect_uri_matches,
};
pub use registration::{ClientMetadata, Registered, RegistrationError, RegistrationPolicy};
pub use scope::{OPENID_SCOPES, ScopeDescription, ScopeRegistry, ScopeSet, WILDCARD, parse_scope_param, token_can};
pub use secret::{
    ClientSecret, HashError, HashParams, PasswordHasher, ServerSecret, VERIFIED_TTL, hash_client_secret,
    is_hashed_secret, sha256_hex, verify_client_secret,
};
pub use store::{
    AccessTokenRecord, AuthCodeRecord, AuthCodeStore, ClientStore, ConsentStore, DeviceCodeRecord, DeviceCodeStore,
    PendingAuthorizationRecord, PurgeCounts, PurgeFilter, PushedRequestRecord, RefreshTokenRecord, RevocationEvent,
    RevocationFeed, RevocationKind, Revoked, SessionRecord, SessionStore, Store, TokenStatus, TokenStore,
};
pub use token_cache::{FEED_STALE_AFTER, Forget, TOKEN_CACHE_CAPACITY, TokenCache, USER_TTL};
pub use transient::TransientToken;
pub use user::{DEFAULT_PROVIDER, User, UserClaims, UserProvider};
