//! # passport-axum — serve passport from an axum application
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use passport::Passport;
//! use passport_axum::{AuthUser, CheckToken};
//!
//! async fn me(user: AuthUser) -> String {
//!     format!("hello {}", user.user.name)
//! }
//!
//! fn app(passport: Passport) -> Router {
//!     Router::new()
//!         .route("/api/user", get(me))
//!         .route(
//!             "/api/orders",
//!             get(|| async { "orders" }).layer(CheckToken::all(&passport, ["orders:read"])),
//!         )
//!         .with_state(passport.clone())
//!         .merge(passport_axum::routes(&passport))
//! }
//! ```
//!
//! [`routes`] mounts every OAuth route under the configured prefix (`/oauth`); the individual
//! routers ([`token_routes`]) let you mount them piecemeal (Passport's `ignoreRoutes`).
//! Handlers need `Passport: FromRef<YourState>`; a `Passport` is itself a valid state.

mod error;
mod guard;
mod rate_limit;
mod token;

use axum::Router;
use axum::routing::post;
use passport::Passport;

pub use error::OAuthJsonError;
pub use guard::{Api, AuthUser, BearerToken, CheckToken, CheckTokenService, Guard, GuardRejection};
pub use rate_limit::AddressLimiter;
pub use token::issue_token;

/// Every OAuth route, under `/{path}` (default `/oauth`).
pub fn routes(passport: &Passport) -> Router {
    token_routes(passport)
}

/// `POST /{path}/token`, rate limited per client address.
pub fn token_routes(passport: &Passport) -> Router {
    let path = format!("/{}/token", passport.settings().path);
    let limiter = AddressLimiter::per_minute(passport.settings().token_rate_limit);
    Router::new()
        .route(&path, post(issue_token))
        .route_layer(axum::middleware::from_fn_with_state(limiter, rate_limit::limit))
        .with_state(passport.clone())
}
