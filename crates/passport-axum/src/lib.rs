//! # passport-axum — serve passport from an axum application
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use passport::Passport;
//! use passport_axum::{AuthUser, CheckToken, Pages};
//!
//! async fn me(user: AuthUser) -> String {
//!     format!("hello {}", user.user.name)
//! }
//!
//! fn app(passport: Passport, sessions: std::sync::Arc<dyn passport::SessionStore>) -> Router {
//!     Router::new()
//!         .route("/api/user", get(me))
//!         .route(
//!             "/api/orders",
//!             get(|| async { "orders" }).layer(CheckToken::all(&passport, ["orders:read"])),
//!         )
//!         .with_state(passport.clone())
//!         .merge(passport_axum::routes(Pages::new(&passport, sessions)))
//! }
//! ```
//!
//! [`routes`] mounts every OAuth route under the configured prefix (`/oauth`) and the sign-in
//! pages; the individual routers ([`token_routes`], [`authorize_routes`], [`device_routes`],
//! [`pushed_authorization_routes`], [`oidc_routes`], [`login_routes`]) let you mount them
//! piecemeal (Passport's `ignoreRoutes`). Each returns a
//! `Router` whose state is already set, to `merge` into yours. Handlers of your own need
//! `Passport: FromRef<YourState>`; a `Passport` is itself a valid state.
//!
//! Monitoring: [`record_requests`] records the latency of every route of a router, and
//! [`metrics_router`] serves `GET /metrics` (Prometheus text format) with those and the core's
//! counters; mount it on a listener only your monitoring reaches.
//!
//! Handlers here are thin: extractors do the session, CSRF and sign-in checks, the core does
//! the work, and one error type per kind of endpoint (pages, JSON API, [`OAuthJsonError`] for
//! the token endpoint) shapes the answer.

mod api;
mod device;
mod discovery;
mod error;
mod extract;
mod forwarded;
#[doc(hidden)]
pub mod fuzzing;
mod guard;
mod introspect;
mod jwks_fetch;
mod metrics;
mod oidc;
mod page;
mod pages;
mod par;
mod rate_limit;
mod registration;
mod resource;
mod serve;
pub mod session;
pub mod testing;
mod token;
mod views;

use axum::Router;
use axum::routing::{get, post};
use passport::Passport;

pub use error::OAuthJsonError;
pub use forwarded::parse_trusted_proxies;
pub use guard::{
    Api, AuthUser, BearerToken, CheckToken, CheckTokenService, DpopRejection, Guard, GuardRejection, RenderRejections,
    RenderRejectionsService,
};
pub use introspect::{introspect_token, revoke_token};
pub use jwks_fetch::HttpJwksFetcher;
pub use metrics::{metrics_router, record_requests};
pub use pages::{Pages, create_fresh_api_token};
pub use rate_limit::AddressLimiter;
pub use resource::ProtectedResource;
pub use serve::{Serve, ServeOptions, serve};
pub use token::issue_token;
pub use views::{Renderer, Views};

/// Every OAuth route under `/{path}` (default `/oauth`) plus the default sign-in pages, with
/// pages configured by `pages` (views, product name, login path, session store).
pub fn routes(pages: Pages) -> Router {
    let passport = pages.passport.clone();
    token_routes(&passport)
        .merge(registration_routes(&passport))
        .merge(pushed_authorization_routes(&passport))
        .merge(discovery_routes(&passport))
        .merge(authorize_routes(pages.clone()))
        .merge(device_routes(pages.clone()))
        .merge(oidc_routes(pages.clone()))
        .merge(login_routes(pages))
}

/// OpenID Connect: `GET|POST /{path}/userinfo` (bearer token with `openid`) and
/// `GET|POST /{path}/logout` (RP-initiated logout, the `end_session_endpoint`). Part of
/// [`routes`].
pub fn oidc_routes(pages: Pages) -> Router {
    let prefix = format!("/{}", pages.passport.settings().path);
    let userinfo = Router::new()
        .route(&format!("{prefix}/userinfo"), get(oidc::userinfo).post(oidc::userinfo))
        .with_state(pages.passport.clone());
    let logout = Router::new().route(&format!("{prefix}/logout"), get(oidc::logout).post(oidc::logout_post));
    userinfo.merge(with_pages(logout, pages))
}

/// Dynamic client registration (RFC 7591, RFC 7592): `POST /{path}/register` and
/// `GET|PUT|DELETE /{path}/register/{client_id}`, under the `token_rate_limit` budget (20
/// requests per minute and address when that is off); no
/// routes at all while [`passport::Settings::client_registration`] is off. Part of [`routes`].
pub fn registration_routes(passport: &Passport) -> Router {
    if passport.settings().client_registration == passport::RegistrationPolicy::Off {
        return Router::new();
    }
    let prefix = format!("/{}", passport.settings().path);
    // Each registration is a row that stays: never unlimited, even with token_rate_limit off.
    let per_minute = match passport.settings().token_rate_limit {
        0 => registration::RATE_LIMIT,
        n => n,
    };
    let limit = || {
        let limiter = AddressLimiter::per_minute(per_minute);
        axum::middleware::from_fn_with_state(limiter, rate_limit::limit)
    };
    Router::new()
        .route(
            &format!("{prefix}/register"),
            post(registration::register).route_layer(limit()),
        )
        .route(
            &format!("{prefix}/register/{{client_id}}"),
            get(registration::read)
                .put(registration::update)
                .delete(registration::delete)
                .route_layer(limit()),
        )
        .layer(axum::extract::DefaultBodyLimit::max(registration::BODY_LIMIT))
        .with_state(passport.clone())
}

/// Provider metadata and keys: `GET /.well-known/openid-configuration`,
/// `GET /.well-known/oauth-authorization-server` (also in their forms for an issuer with a
/// path) and `GET /{path}/jwks`. Part of [`routes`].
pub fn discovery_routes(passport: &Passport) -> Router {
    discovery::routes(passport)
}

/// The pages' middleware (error pages, sessions) and state on a router of page routes.
fn with_pages(router: Router<Pages>, pages: Pages) -> Router {
    router
        .layer(axum::middleware::from_fn_with_state(pages.clone(), page::finish))
        .with_state(pages)
}

/// The JSON management API (session + CSRF): `GET /{path}/scopes`, `GET|POST /{path}/clients`,
/// `PUT|DELETE /{path}/clients/{id}`, `GET /{path}/tokens`, `DELETE /{path}/tokens/{id}`,
/// `GET|POST /{path}/personal-access-tokens`, `DELETE /{path}/personal-access-tokens/{id}`, and
/// `POST /{path}/token/refresh` (renews the SPA cookie). Not part of [`routes`]: mount it when
/// your pages need it (the standalone server does).
pub fn json_api_routes(pages: Pages) -> Router {
    let p = format!("/{}", pages.passport.settings().path);
    let router = Router::new()
        .route(&format!("{p}/scopes"), get(api::scopes))
        .route(&format!("{p}/clients"), get(api::list_clients).post(api::create_client))
        .route(
            &format!("{p}/clients/{{id}}"),
            axum::routing::put(api::update_client).delete(api::delete_client),
        )
        .route(&format!("{p}/tokens"), get(api::list_tokens))
        .route(&format!("{p}/tokens/{{id}}"), axum::routing::delete(api::revoke_token))
        .route(
            &format!("{p}/personal-access-tokens"),
            get(api::list_personal_tokens).post(api::create_personal_token),
        )
        .route(
            &format!("{p}/personal-access-tokens/{{id}}"),
            axum::routing::delete(api::revoke_token),
        )
        .route(&format!("{p}/token/refresh"), post(api::refresh_cookie));
    with_pages(router, pages)
}

/// The account dashboard: `GET /account` and its script `GET /account/app.js`. Needs
/// [`json_api_routes`] mounted too.
pub fn account_routes(pages: Pages) -> Router {
    let router = Router::new()
        .route("/account", get(pages::account))
        .route("/account/app.js", get(pages::account_script));
    with_pages(router, pages)
}

/// The device flow (RFC 8628): `POST /{path}/device/code` (rate limited like the token
/// endpoint), `GET /{path}/device`, `GET|POST|DELETE /{path}/device/authorize`.
pub fn device_routes(pages: Pages) -> Router {
    let prefix = format!("/{}", pages.passport.settings().path);
    let limiter = AddressLimiter::per_minute(pages.passport.settings().token_rate_limit);
    let code = post(device::device_code).route_layer(axum::middleware::from_fn_with_state(limiter, rate_limit::limit));
    let router = Router::new()
        .route(&format!("{prefix}/device/code"), code)
        .route(&format!("{prefix}/device"), get(device::user_code_page))
        .route(
            &format!("{prefix}/device/authorize"),
            get(device::authorize_page).post(device::decide).delete(device::decide),
        );
    with_pages(router, pages)
}

/// Pushed authorization requests (RFC 9126): `POST /{path}/par`, client-authenticated as the
/// token endpoint and rate limited like it (`token_rate_limit`, a budget of its own). Part of
/// [`routes`].
pub fn pushed_authorization_routes(passport: &Passport) -> Router {
    let limiter = AddressLimiter::per_minute(passport.settings().token_rate_limit);
    let push = post(par::push).route_layer(axum::middleware::from_fn_with_state(limiter, rate_limit::limit));
    Router::new()
        .route(&format!("/{}/par", passport.settings().path), push)
        .with_state(passport.clone())
}

/// `GET /{path}/authorize` and the approve / deny forms (`POST` / `DELETE`).
pub fn authorize_routes(pages: Pages) -> Router {
    let path = format!("/{}/authorize", pages.passport.settings().path);
    let router = Router::new().route(
        &path,
        get(pages::authorize)
            .post(pages::decide_authorization)
            .delete(pages::decide_authorization),
    );
    with_pages(router, pages)
}

/// The default sign-in pages: `GET /login`, `POST /login` (rate limited), `POST /logout`.
pub fn login_routes(pages: Pages) -> Router {
    let limiter = pages.login_limiter.clone();
    let post_login = post(pages::login).route_layer(axum::middleware::from_fn_with_state(limiter, rate_limit::limit));
    let router = Router::new()
        .route("/login", get(pages::login_form).merge(post_login))
        .route("/logout", post(pages::logout));
    with_pages(router, pages)
}

/// `GET /`: who is signed in (the standalone server's home page).
pub fn home_routes(pages: Pages) -> Router {
    with_pages(Router::new().route("/", get(pages::home)), pages)
}

/// `POST /{path}/token`, `POST /{path}/introspect` (RFC 7662) and `POST /{path}/revoke`
/// (RFC 7009), each rate limited per client address (`token_rate_limit`, a budget per
/// endpoint, so a resource server's introspections never eat its token requests).
pub fn token_routes(passport: &Passport) -> Router {
    let prefix = format!("/{}", passport.settings().path);
    let limit = || {
        let limiter = AddressLimiter::per_minute(passport.settings().token_rate_limit);
        axum::middleware::from_fn_with_state(limiter, rate_limit::limit)
    };
    // The token endpoint's refusals are counted among its errors.
    let token_limit = axum::middleware::from_fn_with_state(
        (
            AddressLimiter::per_minute(passport.settings().token_rate_limit),
            passport.clone(),
        ),
        rate_limit::limit_token,
    );
    Router::new()
        .route(&format!("{prefix}/token"), post(issue_token).route_layer(token_limit))
        .route(
            &format!("{prefix}/introspect"),
            post(introspect_token).route_layer(limit()),
        )
        .route(&format!("{prefix}/revoke"), post(revoke_token).route_layer(limit()))
        .with_state(passport.clone())
}
