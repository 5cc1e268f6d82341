//! Protecting routes with the library's pieces (README: For library users; RFC 6750 §3): an
//! axum app built here from `AuthUser`, `AuthUser<G>`, `BearerToken` and the `CheckToken`
//! layers, served next to a real Passport server whose token endpoint issues the tokens.

// Helpers outside #[test] functions panic on failure too: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::TimeDelta;
use passport::{ClientKind, NewClient, Passport, StoreError, User, UserProvider};
use passport_axum::{AuthUser, BearerToken, CheckToken, Guard};
use serde_json::{Value, json};

use crate::common::{TestServer, test_keys};

/// The guard of the "admins" user provider.
struct AdminsGuard;

impl Guard for AdminsGuard {
    const PROVIDER: Option<&'static str> = Some("admins");
}

/// The guard of the "users" provider, named explicitly.
struct UsersGuard;

impl Guard for UsersGuard {
    const PROVIDER: Option<&'static str> = Some("users");
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A second user provider: administrators kept in memory, plain-text passwords.
#[derive(Debug, Default)]
struct Admins {
    accounts: Mutex<Vec<(User, String)>>,
}

impl Admins {
    fn add(&self, id: &str, email: &str, password: &str) {
        let user = User {
            id: id.to_owned(),
            name: format!("Admin {email}"),
            email: email.to_owned(),
            extra: serde_json::Map::new(),
        };
        self.accounts.lock().unwrap().push((user, password.to_owned()));
    }

    fn find(&self, matches: impl Fn(&User) -> bool) -> Option<(User, String)> {
        self.accounts.lock().unwrap().iter().find(|(u, _)| matches(u)).cloned()
    }
}

// `UserProvider` is an `async_trait`; implemented by hand with the signatures it expands to.
impl UserProvider for Admins {
    fn find_for_passport<'a, 'b, 'r>(&'a self, username: &'b str) -> BoxFuture<'r, Result<Option<User>, StoreError>>
    where
        'a: 'r,
        'b: 'r,
        Self: 'r,
    {
        let found = self.find(|u| u.email == username).map(|(u, _)| u);
        Box::pin(async move { Ok(found) })
    }

    fn validate_for_passport_password_grant<'a, 'b, 'c, 'r>(
        &'a self,
        user: &'b User,
        password: &'c str,
    ) -> BoxFuture<'r, Result<bool, StoreError>>
    where
        'a: 'r,
        'b: 'r,
        'c: 'r,
        Self: 'r,
    {
        let ok = self.find(|u| u.id == user.id).is_some_and(|(_, p)| p == password);
        Box::pin(async move { Ok(ok) })
    }

    fn retrieve_by_id<'a, 'b, 'r>(&'a self, id: &'b str) -> BoxFuture<'r, Result<Option<User>, StoreError>>
    where
        'a: 'r,
        'b: 'r,
        Self: 'r,
    {
        let found = self.find(|u| u.id == id).map(|(u, _)| u);
        Box::pin(async move { Ok(found) })
    }
}

fn user_json(user: &User, token: &BearerToken) -> Value {
    json!({
        "id": user.id,
        "email": user.email,
        "client_id": token.token.client_id,
        "token_can_read": token.can("read"),
    })
}

async fn me(user: AuthUser) -> Json<Value> {
    assert_eq!(user.token_can("read"), user.token.can("read"));
    Json(user_json(&user.user, &user.token))
}

async fn admin_me(user: AuthUser<AdminsGuard>) -> Json<Value> {
    Json(user_json(&user.user, &user.token))
}

async fn users_me(user: AuthUser<UsersGuard>) -> Json<Value> {
    Json(user_json(&user.user, &user.token))
}

const PROBES: [&str; 6] = ["read", "write", "admin", "orders:read", "orders", "anything"];

async fn token_info(token: BearerToken) -> Json<Value> {
    let can: serde_json::Map<String, Value> = PROBES.iter().map(|s| ((*s).to_owned(), token.can(s).into())).collect();
    let cant: serde_json::Map<String, Value> = PROBES.iter().map(|s| ((*s).to_owned(), token.cant(s).into())).collect();
    Json(json!({
        "id": token.token.id,
        "client_id": token.token.client_id,
        "user_id": token.token.user_id,
        "scopes": token.token.scopes,
        "client_provider": token.token.client_provider,
        "is_client": token.is_client_token(),
        "can": can,
        "cant": cant,
    }))
}

async fn ok() -> Json<Value> {
    Json(json!({"ok": true}))
}

/// The protected app under test.
fn router(passport: &Passport) -> Router {
    Router::new()
        .route("/me", get(me))
        .route("/admins/me", get(admin_me))
        .route("/users/me", get(users_me))
        .route("/token", get(token_info))
        .route("/all", get(ok).layer(CheckToken::all(passport, ["read", "write"])))
        .route("/any", get(ok).layer(CheckToken::any(passport, ["write", "admin"])))
        .route("/client", get(ok).layer(CheckToken::client(passport, ["read"])))
        .route("/read/me", get(me).layer(CheckToken::all(passport, ["read"])))
        .with_state(passport.clone())
}

/// The app, served on a loopback port; stops when dropped.
struct App {
    base: String,
    http: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_app(server: &TestServer) -> App {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(&server.passport);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    App {
        base,
        http: reqwest::Client::new(),
        task,
    }
}

/// What a protected route answered.
#[derive(Debug)]
struct Reply {
    status: u16,
    challenge: Option<String>,
    body: Value,
}

impl App {
    /// GET `path` with this `Authorization` header value (or none).
    async fn call(&self, path: &str, authorization: Option<&str>) -> Reply {
        let mut request = self.http.get(format!("{}{}", self.base, path));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            content_type.as_deref(),
            Some("application/json"),
            "{path}: JSON responses"
        );
        let body = response.json().await.unwrap();
        Reply {
            status,
            challenge,
            body,
        }
    }

    /// GET `path` with a bearer token.
    async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(path, Some(&format!("Bearer {token}"))).await
    }
}

const ALL_ROUTES: [&str; 8] = [
    "/me",
    "/admins/me",
    "/users/me",
    "/token",
    "/all",
    "/any",
    "/client",
    "/read/me",
];

#[track_caller]
fn assert_ok(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 200, "{what}: {reply:?}");
    assert!(reply.challenge.is_none(), "{what}: {reply:?}");
}

/// 401 without a token: a bare challenge (RFC 6750 §3.1: no error code when no credentials).
#[track_caller]
fn assert_missing(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 401, "{what}: {reply:?}");
    assert_eq!(reply.challenge.as_deref(), Some("Bearer realm=\"passport\""), "{what}");
    assert_eq!(reply.body, json!({"message": "Unauthenticated."}), "{what}");
}

/// 401 with `error="invalid_token"`.
#[track_caller]
fn assert_invalid(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 401, "{what}: {reply:?}");
    let challenge = reply
        .challenge
        .as_deref()
        .unwrap_or_else(|| panic!("{what}: WWW-Authenticate"));
    assert!(
        challenge.starts_with("Bearer realm=\"passport\""),
        "{what}: {challenge}"
    );
    assert!(challenge.contains("error=\"invalid_token\""), "{what}: {challenge}");
    assert_eq!(reply.body["error"], "invalid_token", "{what}: {reply:?}");
    assert_eq!(reply.body["message"], "Unauthenticated.", "{what}");
}

/// 403 with `error="insufficient_scope"` naming `scopes`.
#[track_caller]
fn assert_insufficient(reply: &Reply, scopes: &[&str], what: &str) {
    assert_eq!(reply.status, 403, "{what}: {reply:?}");
    let challenge = reply
        .challenge
        .as_deref()
        .unwrap_or_else(|| panic!("{what}: WWW-Authenticate"));
    assert!(
        challenge.starts_with("Bearer realm=\"passport\""),
        "{what}: {challenge}"
    );
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{what}: {challenge}"
    );
    assert!(
        challenge.contains(&format!("scope=\"{}\"", scopes.join(" "))),
        "{what}: {challenge}"
    );
    assert_eq!(reply.body["error"], "insufficient_scope", "{what}");
    assert_eq!(reply.body["scopes"], json!(scopes), "{what}: {reply:?}");
    assert_eq!(reply.body["message"], "Invalid scope(s) provided.", "{what}");
}

/// A token from the server's token endpoint.
async fn issue(server: &TestServer, form: &[(&str, &str)]) -> String {
    let response = server.token(form).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{form:?} → {body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn cc_token(server: &TestServer, client: &(String, String), scope: &str) -> String {
    issue(
        server,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client.0),
            ("client_secret", &client.1),
            ("scope", scope),
        ],
    )
    .await
}

async fn password_token(
    server: &TestServer,
    client: &(String, String),
    username: &str,
    password: &str,
    scope: &str,
) -> String {
    issue(
        server,
        &[
            ("grant_type", "password"),
            ("client_id", &client.0),
            ("client_secret", &client.1),
            ("username", username),
            ("password", password),
            ("scope", scope),
        ],
    )
    .await
}

/// Creates a confidential client of `kind` bound to `provider`.
async fn client_for(server: &TestServer, kind: ClientKind, provider: &str) -> (String, String) {
    let new = NewClient::new(format!("{provider} client"), kind).provider(Some(provider.to_owned()));
    let (client, secret) = server.passport.create_client(new).await.unwrap();
    (client.id.into_string(), secret.unwrap().expose_secret().to_owned())
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Signs `claims` as RS256 with `private_pem`.
fn sign(claims: &Value, private_pem: &str, kid: &str) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

backend_test! {
    async fn missing_token_gets_a_bare_bearer_challenge(db) {
        let server = TestServer::start_default(db).await;
        let app = serve_app(&server).await;
        for path in ALL_ROUTES {
            assert_missing(&app.call(path, None).await, path);
            // Not a bearer credential at all: the same as none.
            assert_missing(&app.call(path, Some("Basic dXNlcjpwYXNz")).await, path);
            assert_missing(&app.call(path, Some("Bearer ")).await, path);
            assert_missing(&app.call(path, Some("Bearer")).await, path);
        }
    }
}

backend_test! {
    async fn malformed_and_forged_tokens_are_invalid(db) {
        let server = TestServer::start_default(db).await;
        let app = serve_app(&server).await;
        let user = server.user("alice@example.com", "alice password").await;
        let client = server.password_client().await;
        let good = password_token(&server, &client, "alice@example.com", "alice password", "read write").await;
        assert_ok(&app.get("/all", &good).await, "the genuine token");
        let genuine = claims(&good);
        let parts: Vec<&str> = good.split('.').collect();

        // Same claims, signed by another key.
        let other = passport::generate_keys(2048).unwrap();
        let foreign = sign(&genuine, &other.private_pem, &server.passport.kid());
        // The payload widened to `*`, the original signature kept.
        let mut widened = genuine.clone();
        widened["scopes"] = json!(["*"]);
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&widened).unwrap()),
            parts[2]
        );
        // alg=none, and HS256 keyed with the public key (algorithm confusion).
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"none"}"#),
            parts[1]
        );
        let hs256 = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &genuine,
            &jsonwebtoken::EncodingKey::from_secret(test_keys().public_pem.as_bytes()),
        )
        .unwrap();
        // Signed with the server's own key but unknown to its database (no row) or naming
        // another client than its row.
        let mut unknown = genuine.clone();
        unknown["jti"] = json!("0".repeat(80));
        let unknown = sign(&unknown, &test_keys().private_pem, &server.passport.kid());
        let (other_client, _) = server.password_client().await;
        let mut wrong_aud = genuine.clone();
        wrong_aud["aud"] = json!(other_client);
        let wrong_aud = sign(&wrong_aud, &test_keys().private_pem, &server.passport.kid());

        let bad = [
            ("garbage", "garbage".to_owned()),
            ("three dots", "a.b.c".to_owned()),
            ("truncated", good[..good.len() - 10].to_owned()),
            ("another key", foreign),
            ("tampered payload", tampered),
            ("alg none", none),
            ("HS256 with the public key", hs256),
            ("unknown jti", unknown),
            ("wrong aud", wrong_aud),
        ];
        for (what, token) in &bad {
            for path in ALL_ROUTES {
                assert_invalid(&app.get(path, token).await, &format!("{what} at {path}"));
            }
        }
        // The genuine token still works, under any case of the scheme.
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let reply = app.call("/me", Some(&format!("{scheme} {good}"))).await;
            assert_ok(&reply, scheme);
            assert_eq!(reply.body["id"], user.as_str());
        }
    }
}

backend_test! {
    async fn expired_token_is_invalid(db) {
        let server = TestServer::start(db, |b| b.tokens_expire_in(TimeDelta::minutes(10))).await;
        let app = serve_app(&server).await;
        server.user("alice@example.com", "alice password").await;
        let client = server.password_client().await;
        let user_token = password_token(&server, &client, "alice@example.com", "alice password", "read write").await;
        let service = server.service_client().await;
        let service_token = cc_token(&server, &service, "read").await;

        server.advance(TimeDelta::minutes(9));
        assert_ok(&app.get("/me", &user_token).await, "9 minutes old");
        assert_ok(&app.get("/all", &user_token).await, "9 minutes old");
        assert_ok(&app.get("/client", &service_token).await, "9 minutes old");

        server.advance(TimeDelta::minutes(1));
        for path in ALL_ROUTES {
            assert_invalid(
                &app.get(path, &user_token).await,
                &format!("expired user token at {path}"),
            );
            assert_invalid(
                &app.get(path, &service_token).await,
                &format!("expired client token at {path}"),
            );
        }
    }
}

backend_test! {
    async fn revoked_token_revoked_client_and_deleted_user_are_invalid(db) {
        let server = TestServer::start_default(db).await;
        let app = serve_app(&server).await;
        let alice = server.user("alice@example.com", "alice password").await;
        let client = server.password_client().await;
        let other_client = server.password_client().await;
        let first = password_token(&server, &client, "alice@example.com", "alice password", "read write").await;
        let second = password_token(&server, &client, "alice@example.com", "alice password", "read write").await;
        let elsewhere = password_token(
            &server,
            &other_client,
            "alice@example.com",
            "alice password",
            "read write",
        )
        .await;
        for token in [&first, &second, &elsewhere] {
            assert_ok(&app.get("/me", token).await, "before revocation");
        }

        // Revoking one token takes effect at once, on every kind of guard.
        let jti = claims(&first)["jti"].as_str().unwrap().to_owned();
        assert!(server.passport.revoke_token(&jti).await.unwrap());
        for path in ALL_ROUTES {
            assert_invalid(&app.get(path, &first).await, &format!("revoked token at {path}"));
        }
        assert_ok(&app.get("/me", &second).await, "a sibling token is untouched");

        // Revoking the client kills all its tokens, not other clients'.
        assert!(!server.passport.revoke_client(&client.0).await.unwrap().clients.is_empty());
        for path in ALL_ROUTES {
            assert_invalid(
                &app.get(path, &second).await,
                &format!("token of a revoked client at {path}"),
            );
        }
        let reply = app.get("/me", &elsewhere).await;
        assert_ok(&reply, "another client's token");
        assert_eq!(reply.body["id"], alice.as_str());

        // A deleted user's tokens stop resolving: a row deleted under the server reaches its
        // cache through the revocation feed, within a second.
        assert!(server.db.users().delete_user_row(&alice).await.unwrap());
        let deleted_at = std::time::Instant::now();
        let mut reply = app.get("/me", &elsewhere).await;
        while reply.status == 200 && deleted_at.elapsed() < std::time::Duration::from_secs(1) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            reply = app.get("/me", &elsewhere).await;
        }
        assert_invalid(&reply, "deleted user");
    }
}

backend_test! {
    async fn scope_layers_check_all_or_any_and_answer_403(db) {
        let server = TestServer::start_default(db).await;
        let app = serve_app(&server).await;
        let service = server.service_client().await;
        // (granted scopes, /all needs read+write → missing, /any needs write or admin → passes)
        let cases: [(&str, &[&str], bool); 6] = [
            ("read", &["write"], false),
            ("write", &["read"], true),
            ("admin", &["read", "write"], true),
            ("read write", &[], true),
            ("orders:read", &["read", "write"], false),
            ("read admin", &["write"], true),
        ];
        for (granted, missing_all, any_passes) in cases {
            let token = cc_token(&server, &service, granted).await;
            let what = format!("token with {granted:?}");
            let reply = app.get("/all", &token).await;
            if missing_all.is_empty() {
                assert_ok(&reply, &what);
                assert_eq!(reply.body, json!({"ok": true}));
            } else {
                assert_insufficient(&reply, missing_all, &format!("{what} at /all"));
            }
            let reply = app.get("/any", &token).await;
            if any_passes {
                assert_ok(&reply, &format!("{what} at /any"));
            } else {
                // Any-of checks list every acceptable scope.
                assert_insufficient(&reply, &["write", "admin"], &format!("{what} at /any"));
            }
        }
    }
}

backend_test! {
    async fn wildcard_scope_passes_every_scope_check(db) {
        let server = TestServer::start_default(db).await;
        let app = serve_app(&server).await;
        let alice = server.user("alice@example.com", "alice password").await;
        let user_token = password_token(
            &server,
            &server.password_client().await,
            "alice@example.com",
            "alice password",
            "*",
        )
        .await;
        let service_token = cc_token(&server, &server.service_client().await, "*").await;
        assert_eq!(claims(&user_token)["scopes"], json!(["*"]));
        assert_eq!(claims(&service_token)["scopes"], json!(["*"]));

        for path in ["/all", "/any", "/read/me", "/me"] {
            assert_ok(&app.get(path, &user_token).await, &format!("* user token at {path}"));
        }
        let reply = app.get("/me", &user_token).await;
        assert_eq!(reply.body["id"], alice.as_str());
        assert_eq!(reply.body["token_can_read"], true);
        let reply = app.get("/token", &user_token).await;
        for probe in PROBES {
            assert_eq!(reply.body["can"][probe], true, "* can {probe}");
            assert_eq!(reply.body["cant"][probe], false, "* cant {probe}");
        }
        // `*` does not turn a user token into a client token.
        assert_invalid(&app.get("/client", &user_token).await, "* user token at /client");

        for path in ["/all", "/any", "/client"] {
            assert_ok(
                &app.get(path, &service_token).await,
                &format!("* client token at {path}"),
            );
        }
    }
}

backend_test! {
    async fn client_layer_takes_only_client_credentials_tokens(db) {
        let server = TestServer::start_default(db).await;
        let app = serve_app(&server).await;
        let service = server.service_client().await;
        server.user("alice@example.com", "alice password").await;
        let app_client = server.password_client().await;

        assert_ok(
            &app.get("/client", &cc_token(&server, &service, "read").await).await,
            "cc read",
        );
        assert_ok(
            &app.get("/client", &cc_token(&server, &service, "read write").await)
                .await,
            "cc read write",
        );
        assert_insufficient(
            &app.get("/client", &cc_token(&server, &service, "write").await).await,
            &["read"],
            "cc without read",
        );
        // A user's token is refused even with the scope: it is not the client's own token.
        let user_token = password_token(&server, &app_client, "alice@example.com", "alice password", "read").await;
        assert_ok(&app.get("/read/me", &user_token).await, "the user token is valid");
        assert_invalid(&app.get("/client", &user_token).await, "password token at /client");
        server
            .passport
            .create_client(NewClient::new("PAT", ClientKind::PersonalAccess))
            .await
            .unwrap();
        let alice = server
            .db
            .users()
            .find_user_by_email("alice@example.com")
            .await
            .unwrap()
            .unwrap();
        let personal = server
            .passport
            .create_token(&alice.id, None, "cli", &["read".to_owned()])
            .await
            .unwrap();
        assert_invalid(
            &app.get("/client", &personal.access_token).await,
            "personal token at /client",
        );
        assert_ok(
            &app.get("/me", &personal.access_token).await,
            "personal token resolves its user",
        );
    }
}

backend_test! {
    async fn client_credentials_token_never_resolves_a_user(db) {
        let admins = Arc::new(Admins::default());
        let provider = admins.clone();
        let server = TestServer::start(db, move |b| b.user_provider("admins", provider)).await;
        let app = serve_app(&server).await;
        let alice = server.user("alice@example.com", "alice password").await;

        // A plain service token: valid as a token, never a user.
        let service = server.service_client().await;
        let token = cc_token(&server, &service, "read").await;
        assert_eq!(claims(&token)["sub"], service.0.as_str(), "sub carries the client id");
        for path in ["/me", "/users/me", "/admins/me", "/read/me"] {
            assert_invalid(&app.get(path, &token).await, &format!("client token at {path}"));
        }
        let reply = app.get("/token", &token).await;
        assert_ok(&reply, "BearerToken takes any valid token");
        assert_eq!(reply.body["user_id"], Value::Null);
        assert_eq!(reply.body["is_client"], true);
        assert_eq!(reply.body["client_id"], service.0.as_str());
        assert_eq!(reply.body["scopes"], json!(["read"]));

        // CVE-2026-39976: a user whose id equals the client id. The admins provider holds one;
        // the token's `sub` names it, and its client serves that provider. Still no user.
        let admin_service = client_for(&server, ClientKind::ClientCredentials, "admins").await;
        admins.add(&admin_service.0, "shadow@example.com", "shadow password");
        let token = cc_token(&server, &admin_service, "read").await;
        assert_eq!(claims(&token)["sub"], admin_service.0.as_str());
        assert_invalid(
            &app.get("/admins/me", &token).await,
            "client token, user with the client's id",
        );
        assert_invalid(&app.get("/me", &token).await, "client token at the default guard");
        let reply = app.get("/token", &token).await;
        assert_eq!(reply.body["client_provider"], "admins");
        assert_eq!(reply.body["is_client"], true);
        // The same account does resolve through a password grant: the refusal is the rule.
        let admin_app = client_for(&server, ClientKind::Password, "admins").await;
        let admin_token = password_token(&server, &admin_app, "shadow@example.com", "shadow password", "read").await;
        let reply = app.get("/admins/me", &admin_token).await;
        assert_ok(&reply, "the shadow admin by password");
        assert_eq!(reply.body["id"], admin_service.0.as_str());

        // The user comes from the token's row, never from `sub`: re-signed with the server's
        // own key, a client token claiming a user's id is still no user...
        let mut forged = claims(&cc_token(&server, &service, "read").await);
        forged["sub"] = json!(alice);
        let forged = sign(&forged, &test_keys().private_pem, &server.passport.kid());
        assert_invalid(&app.get("/me", &forged).await, "client token with sub = a user id");
        // ...and a user token claiming another user's id still resolves its own user.
        let bob = server.user("bob@example.com", "bob password").await;
        let app_client = server.password_client().await;
        let mut forged = claims(&password_token(&server, &app_client, "bob@example.com", "bob password", "read").await);
        forged["sub"] = json!(alice);
        let forged = sign(&forged, &test_keys().private_pem, &server.passport.kid());
        let reply = app.get("/me", &forged).await;
        assert_ok(&reply, "user token with a forged sub");
        assert_eq!(reply.body["id"], bob.as_str(), "the row's user, not sub's");
        assert_eq!(reply.body["email"], "bob@example.com");
    }
}

backend_test! {
    async fn guards_are_bound_to_their_user_provider(db) {
        let admins = Arc::new(Admins::default());
        let provider = admins.clone();
        let server = TestServer::start(db, move |b| b.user_provider("admins", provider)).await;
        assert_eq!(
            server.passport.default_provider(),
            "users",
            "the first registered provider"
        );
        let app = serve_app(&server).await;

        // Same id and email in both providers, different passwords.
        let user_id = server.user("same@example.com", "user password").await;
        admins.add(&user_id, "same@example.com", "admin password");
        let users_client = server.password_client().await;
        let admins_client = client_for(&server, ClientKind::Password, "admins").await;

        // The token endpoint asks the client's provider.
        let response = server
            .token(&[
                ("grant_type", "password"),
                ("client_id", &users_client.0),
                ("client_secret", &users_client.1),
                ("username", "same@example.com"),
                ("password", "admin password"),
            ])
            .await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_grant");
        let user_token = password_token(&server, &users_client, "same@example.com", "user password", "read").await;
        let admin_token = password_token(&server, &admins_client, "same@example.com", "admin password", "read").await;

        // An admins token: refused by the default guard, accepted by the admins guard.
        assert_invalid(&app.get("/me", &admin_token).await, "admins token at the default guard");
        assert_invalid(
            &app.get("/users/me", &admin_token).await,
            "admins token at the users guard",
        );
        let reply = app.get("/admins/me", &admin_token).await;
        assert_ok(&reply, "admins token at the admins guard");
        assert_eq!(reply.body["id"], user_id.as_str());
        assert_eq!(reply.body["client_id"], admins_client.0.as_str());
        // And vice versa.
        assert_invalid(
            &app.get("/admins/me", &user_token).await,
            "users token at the admins guard",
        );
        for path in ["/me", "/users/me"] {
            let reply = app.get(path, &user_token).await;
            assert_ok(&reply, &format!("users token at {path}"));
            assert_eq!(reply.body["client_id"], users_client.0.as_str());
        }
        // Both are valid tokens; scope layers do not care about providers.
        for token in [&admin_token, &user_token] {
            assert_ok(&app.get("/token", token).await, "BearerToken");
            assert_insufficient(&app.get("/all", token).await, &["write"], "all-of layer");
            assert_insufficient(&app.get("/any", token).await, &["write", "admin"], "any-of layer");
        }
        assert_eq!(app.get("/token", &admin_token).await.body["client_provider"], "admins");
        assert_eq!(
            app.get("/token", &user_token).await.body["client_provider"],
            Value::Null
        );
        // The standalone server's own /api/user is the default guard too.
        let api = |token: String| {
            let request = server.http.get(server.url("/api/user")).bearer_auth(token);
            async move { request.send().await.unwrap().status().as_u16() }
        };
        assert_eq!(api(admin_token.clone()).await, 401);
        assert_eq!(api(user_token.clone()).await, 200);
    }
}

backend_test! {
    async fn default_provider_can_be_chosen(db) {
        let admins = Arc::new(Admins::default());
        admins.add("7", "root@example.com", "root password");
        let provider = admins.clone();
        let server = TestServer::start(db, move |b| {
            b.user_provider("admins", provider).default_provider("admins")
        })
        .await;
        assert_eq!(server.passport.default_provider(), "admins");
        let app = serve_app(&server).await;
        server.user("alice@example.com", "alice password").await;

        // A client without a provider now serves the admins.
        let (id, secret) = server.password_client().await;
        let root = password_token(&server, &(id, secret), "root@example.com", "root password", "read").await;
        let reply = app.get("/me", &root).await;
        assert_ok(&reply, "default guard = admins");
        assert_eq!(reply.body["id"], "7");
        assert_ok(&app.get("/admins/me", &root).await, "admins guard");
        assert_invalid(&app.get("/users/me", &root).await, "users guard");

        // A client bound to "users" explicitly is served by the users guard only.
        let users_client = client_for(&server, ClientKind::Password, "users").await;
        let alice = password_token(&server, &users_client, "alice@example.com", "alice password", "read").await;
        assert_ok(&app.get("/users/me", &alice).await, "users guard");
        assert_invalid(&app.get("/me", &alice).await, "default (admins) guard");
        assert_invalid(&app.get("/admins/me", &alice).await, "admins guard");
    }
}

backend_test! {
    async fn bearer_token_can_and_cant_and_layers_hand_the_token_on(db) {
        let server = TestServer::start_default(db).await;
        let app = serve_app(&server).await;
        let alice = server.user("alice@example.com", "alice password").await;
        let client = server.password_client().await;
        let token = password_token(
            &server,
            &client,
            "alice@example.com",
            "alice password",
            "read orders:read",
        )
        .await;

        let reply = app.get("/token", &token).await;
        assert_ok(&reply, "BearerToken");
        assert_eq!(reply.body["user_id"], alice.as_str());
        assert_eq!(reply.body["client_id"], client.0.as_str());
        assert_eq!(reply.body["is_client"], false);
        assert_eq!(reply.body["id"], claims(&token)["jti"]);
        assert_eq!(reply.body["scopes"], json!(["read", "orders:read"]));
        for (probe, can) in [
            ("read", true),
            ("orders:read", true),
            ("write", false),
            ("admin", false),
            ("orders", false),
            ("anything", false),
        ] {
            assert_eq!(reply.body["can"][probe], can, "can {probe}");
            assert_eq!(reply.body["cant"][probe], !can, "cant {probe}");
        }

        // A layer validates once and the extractor behind it reuses the token.
        let reply = app.get("/read/me", &token).await;
        assert_ok(&reply, "layer + AuthUser");
        assert_eq!(reply.body["id"], alice.as_str());
        assert_eq!(reply.body["token_can_read"], true);
        let write_only = password_token(&server, &client, "alice@example.com", "alice password", "write").await;
        assert_insufficient(
            &app.get("/read/me", &write_only).await,
            &["read"],
            "layer before AuthUser",
        );
        let reply = app.get("/me", &write_only).await;
        assert_ok(&reply, "AuthUser alone checks no scope");
        assert_eq!(reply.body["token_can_read"], false);
    }
}
