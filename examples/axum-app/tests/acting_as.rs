//! The example application's own tests, using passport's testing helpers: requests pass the
//! guard and the scope checks as a chosen user or client, with no real tokens.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use example_axum_app::{AppState, app};
use passport::{Passport, User, generate_keys};
use passport_axum::testing::{acting_as, acting_as_client};
use tower::ServiceExt as _;

async fn state() -> (AppState, passport_sqlx::testing::TestDatabase) {
    let database = passport_sqlx::testing::sqlite();
    let db = passport_sqlx::Database::connect(&database.url).await.unwrap();
    db.migrate().await.unwrap();
    db.migrate_sessions().await.unwrap();
    let keys = generate_keys(2048).unwrap();
    let passport = Passport::builder()
        .tokens_can([("orders:read", "Read your orders"), ("orders:create", "Place orders")])
        .keys_from_pem(keys.private_pem, Some(keys.public_pem))
        .store(db.store())
        .build()
        .unwrap();
    let state = AppState {
        pages: passport_axum::Pages::new(&passport, db.sessions()),
        passport,
        shop_name: Arc::from("Test Shop"),
    };
    (state, database)
}

fn ada() -> User {
    User {
        id: "7".into(),
        name: "Ada".into(),
        email: "ada@example.com".into(),
        extra: Default::default(),
    }
}

async fn get(app: axum::Router, path: &str) -> (StatusCode, String) {
    let response = app
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn acting_as_a_user_passes_the_guard_and_the_scope_checks() {
    let (state, _db) = state().await;
    let (status, body) = get(app(state.clone()).layer(acting_as(ada(), ["orders:read"])), "/api/me").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("ada@example.com") && body.contains("\"can_write\":false"),
        "{body}"
    );

    let (status, _) = get(
        app(state.clone()).layer(acting_as(ada(), ["orders:read"])),
        "/api/orders",
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (status, _) = get(
        app(state.clone()).layer(acting_as(ada(), ["orders:create"])),
        "/api/orders",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a missing scope still fails");

    let (status, body) = get(app(state.clone()).layer(acting_as(ada(), ["*"])), "/api/me").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("\"can_write\":true"), "* grants everything: {body}");

    let (status, _) = get(app(state), "/api/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "without the helper there is no user");
}

#[tokio::test]
async fn acting_as_a_client_is_never_a_user() {
    let (state, _db) = state().await;
    let layer = acting_as_client("billing-service", ["orders:read"]);
    let (status, body) = get(app(state.clone()).layer(layer.clone()), "/api/orders").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("billing-service"), "{body}");
    let (status, _) = get(app(state).layer(layer), "/api/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
