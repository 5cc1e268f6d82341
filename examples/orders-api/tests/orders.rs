//! The orders API's own tests. No files: passport's test kit for the guard tests, an in-memory
//! SQLite pool (shared with passport) for the end-to-end ones, the server on a loopback port.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use example_orders_api::{AppState, Customers, MIGRATIONS, SCOPES, app, passport};
use passport::{ClientKind, NewClient, Passport, PassportBuilder, User};
use passport_axum::testing::acting_as;
use serde_json::{Value, json};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use tower::ServiceExt as _;

/// An in-memory database (one connection: each in-memory connection is a database of its own).
async fn memory_pool() -> SqlitePool {
    let options = SqliteConnectOptions::from_str("sqlite::memory:")
        .unwrap()
        .busy_timeout(Duration::from_secs(5));
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap()
}

fn customer(id: &str) -> User {
    User {
        id: id.into(),
        name: "Ada".into(),
        email: "ada@example.com".into(),
        extra: Default::default(),
    }
}

async fn call(app: axum::Router, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value, Option<String>) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), challenge)
}

/// With the test kit: no keys on disk, no passport tables; `acting_as` passes the guard.
#[tokio::test]
async fn scopes_per_method_on_one_path_and_our_error_format() {
    let pool = memory_pool().await;
    MIGRATIONS.run(&pool).await.unwrap();
    let id = Customers::new(pool.clone())
        .add("ada@example.com", "Ada", "pw-ada-1", "gold")
        .await
        .unwrap();
    let passport = PassportBuilder::for_tests().tokens_can(SCOPES).build().unwrap();
    let state = AppState {
        passport: passport.clone(),
        pool,
    };

    let reader = app(state.clone()).layer(acting_as(customer(&id), ["orders:read"]));
    let (status, body, _) = call(reader.clone(), "GET", "/orders", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["orders"], json!([]));
    let (status, body, challenge) = call(reader, "POST", "/orders", Some(json!({"item": "tea"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "GET's scope does not open POST");
    assert_eq!(
        body,
        json!({"status": "error", "code": "forbidden"}),
        "the application's format"
    );
    assert!(
        challenge.is_some_and(|c| c.contains("insufficient_scope") && c.contains("orders:create")),
        "RFC 6750 §3.1: the challenge stays ours"
    );

    let writer = app(state.clone()).layer(acting_as(customer(&id), ["orders:create"]));
    let (status, body, _) = call(writer.clone(), "POST", "/orders", Some(json!({"item": "tea"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _, _) = call(writer, "GET", "/orders", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "POST's scope does not open GET");

    let (status, body, challenge) = call(app(state.clone()), "GET", "/orders", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({"status": "error", "code": "unauthenticated"}));
    assert!(challenge.is_some_and(|c| c.starts_with("Bearer")));

    // Served without connect info (plain `oneshot` here), the token endpoint's per-address
    // limit cannot tell callers apart: it refuses rather than put everyone in one bucket.
    let (status, body, _) = call(
        app(state),
        "POST",
        "/oauth/token",
        Some(json!({"grant_type": "client_credentials"})),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"], "server_error");
}

/// The whole application on one in-memory pool, served the README's way: the application's
/// migrations before and after ours, a customer's password grant, the tier claim, both scopes.
#[tokio::test]
async fn customers_sign_in_with_the_password_grant_and_carry_their_tier() {
    let pool = memory_pool().await;
    let passport = passport(&pool, |b| {
        let keys = passport::testing::test_keys();
        b.keys_from_pem(keys.private_pem.clone(), Some(keys.public_pem.clone()))
    })
    .await
    .unwrap();
    MIGRATIONS
        .run(&pool)
        .await
        .expect("the application's migrations run after ours too");
    let passport_tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('passport_users', 'passport_sessions', 'users', 'sessions')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(passport_tables, 0, "only the core's tables: customers are the users");
    Customers::new(pool.clone())
        .add("ada@example.com", "Ada", "pw-ada-1", "gold")
        .await
        .unwrap();
    let (client, secret) = passport
        .create_client(NewClient::new("Shop app", ClientKind::Password).provider(Some("customers".to_owned())))
        .await
        .unwrap();
    let base = serve(&passport, pool).await;
    let http = reqwest::Client::new();

    let token = |scope: &'static str| {
        http.post(format!("{base}/oauth/token"))
            .form(&[
                ("grant_type", "password"),
                ("client_id", client.id.as_str()),
                ("client_secret", secret.as_ref().unwrap().expose_secret()),
                ("username", "ada@example.com"),
                ("password", "pw-ada-1"),
                ("scope", scope),
            ])
            .send()
    };
    let both: Value = token("orders:read orders:create").await.unwrap().json().await.unwrap();
    let access = both["access_token"].as_str().expect("a token");
    let created = http
        .post(format!("{base}/orders"))
        .bearer_auth(access)
        .json(&json!({"item": "tea"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let listed: Value = http
        .get(format!("{base}/orders"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["orders"][0]["item"], "tea");
    assert_eq!(listed["tier"], "gold", "the custom claim, read back from the token");
    let read_only: Value = token("orders:read").await.unwrap().json().await.unwrap();
    let refused = http
        .post(format!("{base}/orders"))
        .bearer_auth(read_only["access_token"].as_str().unwrap())
        .json(&json!({"item": "more tea"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(refused.json::<Value>().await.unwrap()["code"], "forbidden");
}

/// Served through `passport_axum::serve`, the per-address limits see who calls: a hundred bad
/// token requests from one address do not lock out another.
#[tokio::test]
async fn bad_requests_from_one_address_do_not_lock_out_another() {
    let pool = memory_pool().await;
    let passport = passport(&pool, |b| {
        let keys = passport::testing::test_keys();
        b.keys_from_pem(keys.private_pem.clone(), Some(keys.public_pem.clone()))
    })
    .await
    .unwrap();
    let (client, secret) = passport
        .create_client(NewClient::new("Billing", ClientKind::ClientCredentials))
        .await
        .unwrap();
    let base = serve(&passport, pool).await;
    let from = |address: [u8; 4]| {
        reqwest::Client::builder()
            .local_address(IpAddr::V4(Ipv4Addr::from(address)))
            .build()
            .unwrap()
    };
    let attacker = from([127, 0, 0, 2]);
    let mut limited = 0;
    for _ in 0..100 {
        let answer = attacker
            .post(format!("{base}/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client.id.as_str()),
                ("client_secret", "wrong"),
            ])
            .send()
            .await
            .unwrap();
        limited += usize::from(answer.status() == 429);
    }
    assert!(limited > 0, "the attacker's address is limited");
    let answer = from([127, 0, 0, 1])
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client.id.as_str()),
            ("client_secret", secret.as_ref().unwrap().expose_secret()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "another address is not");
}

/// Starts the application on a loopback port with `passport_axum::serve`.
async fn serve(passport: &Passport, pool: SqlitePool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = app(AppState {
        passport: passport.clone(),
        pool,
    });
    tokio::spawn(async move { passport_axum::serve(listener, router).await });
    base
}
