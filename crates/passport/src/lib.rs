//! # passport — an OAuth 2.0 authorization server core
//!
//! The protocol, without HTTP or SQL: clients and their grant types, scopes, the token
//! endpoint's grants, RS256 access tokens, and bearer-token checks. `passport-sqlx` stores it,
//! `passport-axum` serves it, and the `passport` binary runs it standalone.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn passport::Store>) -> Result<(), Box<dyn std::error::Error>> {
//! use passport::{Passport, TokenRequest};
//!
//! let passport = Passport::builder()
//!     .tokens_can([("orders:read", "Read your orders"), ("orders:create", "Place orders")])
//!     .default_scopes(["orders:read"])
//!     .tokens_expire_in(chrono::TimeDelta::days(15))
//!     .load_keys_from("passport-data")
//!     .store(store)
//!     .build()?;
//!
//! let request = TokenRequest::new(
//!     [("grant_type".to_owned(), "client_credentials".to_owned()),
//!      ("client_id".to_owned(), "…".to_owned()),
//!      ("client_secret".to_owned(), "…".to_owned())],
//!     None,
//! );
//! let response = passport.issue_token(&request).await?;
//! let token = passport.authenticate_bearer(&response.access_token).await?;
//! assert!(passport.token_can(&token, "orders:read"));
//! # Ok(()) }
//! ```

mod authorize;
mod client;
mod clock;
mod config;
mod device;
mod error;
mod events;
mod grants;
mod jwt;
mod keys;
mod manage;
mod passport;
mod random;
mod redirect;
mod scope;
mod secret;
mod store;
mod transient;
mod user;

pub use authorize::{
    AUTH_CODE_TTL, AuthorizationRequest, AuthorizeError, Decision, ErrorRedirect, Prompt, ResponseType, UserState,
    ValidatedAuthorization, decide, error_redirect, redirect_with,
};
pub use client::{Client, ClientKind, GrantType, NewClient};
pub use clock::{Clock, MockClock, SystemClock};
pub use config::{ConfigError, PassportConfig, parse_duration};
pub use device::{
    DEVICE_CODE_TTL, DEVICE_POLL_INTERVAL, DeviceAuthorization, USER_CODE_ALPHABET, display_user_code,
    normalize_user_code,
};
pub use error::{ErrorCode, OAuthError, StoreError};
pub use events::{Event, EventListener};
pub use grants::{BasicCredentials, PersonalAccessToken, TokenRequest, TokenResponse};
pub use jwt::{AccessTokenClaims, TokenInvalid};
pub use keys::{
    GeneratedKeys, KeyError, KeySource, Keys, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, generate_keys, write_keys,
};
pub use manage::Connection;
pub use passport::{AccessToken, Passport, PassportBuilder, Settings};
pub use random::{random_alphanumeric, random_from_alphabet, random_hex};
pub use redirect::{RedirectUri, redirect_uri_matches};
pub use scope::{ScopeDescription, ScopeRegistry, WILDCARD, parse_scope_param, token_can};
pub use secret::{
    ClientSecret, PasswordHasher, hash_client_secret, is_hashed_secret, sha256_hex, verify_client_secret,
};
pub use store::{
    AccessTokenRecord, AuthCodeRecord, AuthCodeStore, ClientStore, DeviceCodeRecord, DeviceCodeStore,
    PendingAuthorizationRecord, PurgeCounts, PurgeFilter, RefreshTokenRecord, SessionRecord, SessionStore, Store,
    TokenStatus, TokenStore,
};
pub use transient::TransientToken;
pub use user::{DEFAULT_PROVIDER, User, UserProvider};
