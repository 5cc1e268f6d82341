//! The example application's router, kept in a library so its own tests can drive it.

use std::sync::Arc;

use axum::extract::FromRef;
use axum::routing::get;
use axum::{Json, Router};
use passport::Passport;
use passport_axum::{AuthUser, BearerToken, CheckToken, Pages};
use serde_json::{Value, json};

/// The application's state. Handlers that guard routes need `Passport: FromRef<AppState>`.
#[derive(Debug, Clone, FromRef)]
pub struct AppState {
    /// The authorization server.
    pub passport: Passport,
    /// Its sign-in and consent pages (and where their sessions live).
    pub pages: Pages,
    /// Shown in responses.
    pub shop_name: Arc<str>,
}

/// Any valid user token (Passport's `auth:api`).
async fn me(user: AuthUser) -> Json<Value> {
    Json(json!({ "id": user.user.id, "email": user.user.email, "can_write": user.token_can("orders:create") }))
}

/// Guarded by `CheckToken::all(["orders:read"])` in the router: only tokens with that scope
/// get here. `BearerToken` gives the token itself (also client-credentials tokens).
async fn orders(token: BearerToken, axum::extract::State(shop): axum::extract::State<Arc<str>>) -> Json<Value> {
    Json(json!({ "shop": &*shop, "client": token.token.client_id, "orders": [] }))
}

/// The application: `/api/me` for any user token, `/api/orders` for tokens with `orders:read`.
pub fn app(state: AppState) -> Router {
    let passport = state.passport.clone();
    let pages = state.pages.clone();
    Router::new()
        .route("/api/me", get(me))
        .route(
            "/api/orders",
            get(orders).layer(CheckToken::all(&passport, ["orders:read"])),
        )
        .with_state(state)
        // POST /oauth/token and the rest of the OAuth routes.
        .merge(passport_axum::routes(pages))
}
