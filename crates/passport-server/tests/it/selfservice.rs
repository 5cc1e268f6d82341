//! The self-service features end to end (README: For library users, and HTTP for the pages,
//! sessions and CSRF):
//!
//! * personal access tokens from the library (`create_token`, `personal_access_tokens`) and
//!   the absence of a `personal_access` grant at the token endpoint;
//! * the JSON management API (`/oauth/scopes`, `/oauth/clients`, `/oauth/tokens`,
//!   `/oauth/personal-access-tokens`) with exact shapes, owner isolation, session and CSRF
//!   refusal, and 422 validation;
//! * the SPA cookie (`passport_token`): set on GET pages, accepted only with a matching CSRF
//!   header and before it expires, renewed by `POST /oauth/token/refresh`, cleared on logout;
//! * events delivered to listeners (including panicking and slow ones that must never fail or
//!   delay a token request);
//! * library token management (`revoke_token`, `revoke_all_tokens`, `connections`), scope
//!   helpers and inherited scopes;
//! * the account dashboard (`GET /account`) driven by a real headless Chromium.
//!
//! Browsers here are cookie-holding HTTP clients that never follow redirects; state-changing
//! API calls send the `XSRF-TOKEN` cookie back as `X-XSRF-TOKEN`, as the dashboard's script does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use fantoccini::Locator;
use passport::{ClientKind, ErrorCode, Event, EventListener, NewClient, PassportBuilder, sha256_hex};
use passport_axum::{BearerToken, CheckToken};
use passport_sqlx::testing::TestDatabase;
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};

use crate::common::Recorder;
use crate::common::{SCOPES, TestServer, api_user};
use crate::support_browser::{artifact_dir, click, open_browser, start_driver};
use crate::support_web::{Browser, Page, parse_forms};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const PASSWORD: &str = "correct horse battery staple";
/// The redirect URI of the third-party clients made here.
const CALLBACK: &str = "https://client.example/callback";
const CODE_CLIENT: ClientKind = ClientKind::AuthorizationCode { device_flow: false };
/// Keys of a client in the JSON API (never `secret`).
const CLIENT_KEYS: [&str; 10] = [
    "id",
    "user_id",
    "name",
    "redirect",
    "redirect_uris",
    "grant_types",
    "confidential",
    "revoked",
    "created_at",
    "updated_at",
];
/// Keys of a token row in the JSON API.
const TOKEN_KEYS: [&str; 8] = [
    "id",
    "user_id",
    "client_id",
    "name",
    "scopes",
    "revoked",
    "created_at",
    "expires_at",
];

// ---------------------------------------------------------------------------------------------
// Servers, replies, browsers.
// ---------------------------------------------------------------------------------------------

/// A test server without a login rate limit (tests sign in many times from one address).
async fn start(db: TestDatabase, configure: impl FnOnce(PassportBuilder) -> PassportBuilder) -> TestServer {
    TestServer::start(db, |b| configure(b.login_rate_limit(0))).await
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The value of a `Set-Cookie` line.
fn cookie_value(set_cookie: &str) -> &str {
    let pair = set_cookie.split(';').next().unwrap_or_default();
    pair.split_once('=').map(|(_, v)| v).unwrap_or_default()
}

/// Whether a `Set-Cookie` line carries `attribute` (case-insensitive, e.g. `HttpOnly`).
fn has_attribute(set_cookie: &str, attribute: &str) -> bool {
    set_cookie
        .split(';')
        .skip(1)
        .any(|a| a.trim().eq_ignore_ascii_case(attribute))
}

/// A JSON body of exactly `{"message": message}` with `status`.
#[track_caller]
fn assert_message(reply: &Page, status: u16, message: &str, what: &str) {
    assert_eq!(reply.status.as_u16(), status, "{what}: {}", reply.body);
    assert_eq!(reply.json(), json!({ "message": message }), "{what}");
}

/// A 422 `{"message", "errors": {field: [..]}}` naming exactly `fields`.
#[track_caller]
fn assert_unprocessable(reply: &Page, fields: &[&str], what: &str) {
    assert_eq!(reply.status.as_u16(), 422, "{what}: {}", reply.body);
    let body = reply.json();
    let object = body.as_object().expect("a JSON object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["errors", "message"], "{what}: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: a message: {body}"
    );
    let errors = body["errors"].as_object().expect("errors object");
    let mut named: Vec<&str> = errors.keys().map(String::as_str).collect();
    named.sort_unstable();
    let mut expected = fields.to_vec();
    expected.sort_unstable();
    assert_eq!(named, expected, "{what}: fields in error: {body}");
    for (field, messages) in errors {
        let messages = messages.as_array().unwrap_or_else(|| panic!("{what}: {field}: a list"));
        assert!(!messages.is_empty(), "{what}: {field}: at least one message");
        for m in messages {
            assert!(
                m.as_str().is_some_and(|m| !m.is_empty()),
                "{what}: {field}: messages are text: {body}"
            );
        }
    }
}

/// Asserts `value` is an object holding at least `keys`.
#[track_caller]
fn assert_keys(value: &Value, keys: &[&str], what: &str) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("{what}: an object: {value}"));
    for key in keys {
        assert!(object.contains_key(*key), "{what}: no {key} in {value}");
    }
}

/// An ISO-8601 UTC timestamp.
#[track_caller]
fn timestamp(value: &Value) -> DateTime<Utc> {
    let text = value.as_str().unwrap_or_else(|| panic!("a timestamp, got {value}"));
    assert!(text.ends_with('Z'), "UTC with Z: {text}");
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

/// Two instants equal to the database's precision.
#[track_caller]
fn assert_close(a: DateTime<Utc>, b: DateTime<Utc>, what: &str) {
    assert!((a - b).num_milliseconds().abs() <= 1, "{what}: {a} vs {b}");
}

/// The JSON API and the authorization flow, driven by a browser.
impl Browser {
    /// The session's CSRF token, from the readable `XSRF-TOKEN` cookie.
    fn csrf(&self) -> String {
        self.cookie("XSRF-TOKEN").expect("an XSRF-TOKEN cookie")
    }

    /// A JSON API request with exactly these extra headers (no CSRF header unless given).
    async fn request(&self, method: Method, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> Page {
        let mut request = self
            .http
            .request(method, self.url(path))
            .header("accept", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request).await
    }

    /// A JSON API request as the dashboard sends it: `X-XSRF-TOKEN` from the cookie.
    async fn api(&self, method: Method, path: &str, body: Option<Value>) -> Page {
        let csrf = self.csrf();
        self.request(method, path, body.as_ref(), &[("x-xsrf-token", &csrf)])
            .await
    }

    /// Authorizes `client_id` for `scope` (approving the consent page if shown); the code.
    async fn code_for(&self, client_id: &str, redirect_uri: &str, scope: &str) -> String {
        let mut url = Url::parse(&self.url("/oauth/authorize")).expect("url");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", scope)
            .append_pair("state", "self-service");
        let mut reply = self.get(url.as_str()).await;
        if reply.status == StatusCode::OK {
            let approve = parse_forms(&reply.body)
                .into_iter()
                .find(|f| f.get("auth_token").is_some() && f.get("_method").is_none())
                .unwrap_or_else(|| panic!("an approve form: {}", reply.body));
            reply = self.post(&approve.action, &approve.fields).await;
        }
        assert_eq!(reply.status, StatusCode::FOUND, "authorize: {}", reply.body);
        let location = reply.header("location").expect("Location");
        assert!(location.starts_with(redirect_uri), "back to the client: {location}");
        let url = Url::parse(location).expect("absolute Location");
        url.query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("a code in {location}"))
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens.
// ---------------------------------------------------------------------------------------------

/// POSTs a form to the token endpoint: status and JSON body.
async fn token(server: &TestServer, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let reply = Page::read(server.token(form).await).await;
    let body = reply.json();
    (reply.status, body)
}

/// A successful token response.
#[track_caller]
fn assert_issued(answer: &(StatusCode, Value), what: &str) -> Value {
    assert_eq!(answer.0, StatusCode::OK, "{what}: {}", answer.1);
    assert_eq!(answer.1["token_type"], "Bearer", "{what}");
    answer.1.clone()
}

/// An error response.
#[track_caller]
fn assert_token_error(answer: &(StatusCode, Value), status: u16, code: &str, what: &str) {
    assert_eq!(answer.0.as_u16(), status, "{what}: {}", answer.1);
    assert_eq!(answer.1["error"], code, "{what}: {}", answer.1);
}

async fn password_grant(server: &TestServer, (id, secret): (&str, &str), email: &str, scope: &str) -> Value {
    let answer = token(
        server,
        &[
            ("grant_type", "password"),
            ("client_id", id),
            ("client_secret", secret),
            ("username", email),
            ("password", PASSWORD),
            ("scope", scope),
        ],
    )
    .await;
    assert_issued(&answer, "password grant")
}

async fn refresh(server: &TestServer, (id, secret): (&str, &str), refresh_token: &str) -> (StatusCode, Value) {
    token(
        server,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", id),
            ("client_secret", secret),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

async fn exchange(server: &TestServer, (id, secret): (&str, &str), code: &str) -> (StatusCode, Value) {
    token(
        server,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", id),
            ("client_secret", secret),
            ("redirect_uri", CALLBACK),
            ("code", code),
        ],
    )
    .await
}

/// The authorization-code flow for the signed-in browser, through to the tokens.
async fn authorization_code(server: &TestServer, browser: &Browser, client: (&str, &str), scope: &str) -> Value {
    let code = browser.code_for(client.0, CALLBACK, scope).await;
    assert_issued(&exchange(server, client, &code).await, "code exchange")
}

fn access_token(answer: &Value) -> &str {
    answer["access_token"].as_str().expect("access_token")
}

fn refresh_token(answer: &Value) -> &str {
    answer["refresh_token"].as_str().expect("refresh_token")
}

/// The claims of a JWT (not verified: the server does that).
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url payload")).expect("JSON claims")
}

/// The token id (`jti`) of a JWT.
fn jti(jwt: &str) -> String {
    claims(jwt)["jti"].as_str().expect("jti").to_owned()
}

#[track_caller]
fn assert_user(answer: &(StatusCode, Value), user_id: &str, email: &str, what: &str) {
    assert_eq!(answer.0, StatusCode::OK, "{what}: {}", answer.1);
    assert_eq!(answer.1["id"], user_id, "{what}");
    assert_eq!(answer.1["email"], email, "{what}");
}

#[track_caller]
fn assert_refused(answer: &(StatusCode, Value), what: &str) {
    assert_eq!(answer.0, StatusCode::UNAUTHORIZED, "{what}: {}", answer.1);
}

/// A personal access client.
async fn pat_client(server: &TestServer) -> String {
    let (client, _) = server
        .passport
        .create_client(NewClient::new("PAT", ClientKind::PersonalAccess))
        .await
        .expect("personal access client");
    client.id.into_string()
}

/// A confidential third-party authorization-code client redirecting to [`CALLBACK`].
async fn code_client(server: &TestServer, name: &str) -> (String, String) {
    let (client, secret) = server
        .passport
        .create_client(NewClient::new(name, CODE_CLIENT).redirect_uris([CALLBACK]))
        .await
        .expect("code client");
    (
        client.id.into_string(),
        secret.expect("confidential").expose_secret().to_owned(),
    )
}

/// A confidential password client with a name.
async fn named_password_client(server: &TestServer, name: &str) -> (String, String) {
    let (client, secret) = server
        .passport
        .create_client(NewClient::new(name, ClientKind::Password))
        .await
        .expect("password client");
    (
        client.id.into_string(),
        secret.expect("confidential").expose_secret().to_owned(),
    )
}

fn pair(client: &(String, String)) -> (&str, &str) {
    (client.0.as_str(), client.1.as_str())
}

// ---------------------------------------------------------------------------------------------
// 1. Personal access tokens from the library.
// ---------------------------------------------------------------------------------------------

backend_test! {
    async fn personal_access_tokens_from_the_library(db) {
        let server = start(db, |b| b.personal_access_tokens_expire_in(TimeDelta::days(7))).await;
        let alice = server.user(ALICE, PASSWORD).await;
        let bob = server.user(BOB, PASSWORD).await;
        let passport = &server.passport;

        // Without a personal access client (other kinds do not count): a clear error.
        let password_client = server.password_client().await;
        let err = passport
            .create_token(&alice, None, "CLI", &strings(&["read"]))
            .await
            .expect_err("no personal access client yet");
        assert_eq!(err.code(), ErrorCode::InvalidRequest, "{err}");
        let text = format!("{err} {}", err.hint().unwrap_or_default());
        assert!(
            text.contains("Personal access client not found for 'users' user provider. Please create one."),
            "the error says what to do: {text}"
        );

        let pat = pat_client(&server).await;

        // One that will expire: PATs live 7 days here.
        let expiring = passport
            .create_token(&alice, None, "old", &[])
            .await
            .expect("expiring PAT");
        server.advance(TimeDelta::days(8));

        // A token with scopes: a JWT that works, and a record that says what it is.
        let issued = passport
            .create_token(&alice, None, "CLI", &strings(&["read", "write"]))
            .await
            .expect("create_token");
        let now = passport.now();
        let record = &issued.token;
        assert_eq!(record.name.as_deref(), Some("CLI"));
        assert_eq!(record.scopes, ["read", "write"]);
        assert_eq!(record.user_id.as_deref(), Some(alice.as_str()));
        assert_eq!(record.client_id, pat, "issued by the personal access client");
        assert!(!record.revoked);
        assert_eq!(record.created_at, now);
        assert_eq!(
            record.expires_at,
            now + TimeDelta::days(7),
            "personal_access_tokens_expire_in"
        );
        assert_eq!(record.family_id, None, "no refresh family");
        let c = claims(&issued.access_token);
        assert_eq!(c["jti"], record.id.as_str());
        assert_eq!(c["sub"], alice.as_str());
        assert_eq!(c["aud"], pat.as_str());
        assert_eq!(c["scopes"], json!(["read", "write"]));
        assert_eq!(
            c["exp"].as_i64().expect("exp") - c["iat"].as_i64().expect("iat"),
            TimeDelta::days(7).num_seconds(),
            "the JWT expires with the record"
        );
        assert_user(
            &api_user(&server, &issued.access_token).await,
            &alice,
            ALICE,
            "PAT at /api/user",
        );
        assert_refused(&api_user(&server, &expiring.access_token).await, "an expired PAT");
        let stored = server
            .db
            .store()
            .find_access_token(&record.id)
            .await
            .expect("find")
            .expect("stored");
        assert_eq!(stored.name.as_deref(), Some("CLI"));
        assert_eq!(stored.scopes, ["read", "write"]);
        assert_close(stored.expires_at, record.expires_at, "stored expiry");

        // No scopes: the defaults (none here); `*` is allowed; unknown scopes are refused.
        server.advance(TimeDelta::seconds(1));
        let plain = passport
            .create_token(&alice, None, "plain", &[])
            .await
            .expect("no scopes");
        assert!(plain.token.scopes.is_empty(), "{:?}", plain.token.scopes);
        server.advance(TimeDelta::seconds(1));
        let everything = passport
            .create_token(&alice, None, "everything", &strings(&["*"]))
            .await
            .expect("wildcard");
        assert_eq!(everything.token.scopes, ["*"]);
        let err = passport
            .create_token(&alice, None, "bad", &strings(&["read", "nope"]))
            .await
            .expect_err("unknown scope");
        assert_eq!(err.code(), ErrorCode::InvalidScope, "{err}");

        // What must not be listed: revoked, expired, other users', other kinds of tokens.
        let revoked = passport.create_token(&alice, None, "revoked", &[]).await.expect("PAT");
        assert!(passport.revoke_token(&revoked.token.id).await.expect("revoke"),);
        let bobs = passport.create_token(&bob, None, "bob's", &[]).await.expect("PAT");
        let grant = password_grant(&server, pair(&password_client), ALICE, "read").await;

        let listed: Vec<String> = passport
            .personal_access_tokens(&alice)
            .await
            .expect("list")
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(
            listed,
            [
                everything.token.id.clone(),
                plain.token.id.clone(),
                issued.token.id.clone()
            ],
            "alice's live PATs, newest first (expired {}, revoked {}, bob's {}, password {})",
            expiring.token.id,
            revoked.token.id,
            bobs.token.id,
            jti(access_token(&grant))
        );
        let bob_listed: Vec<String> = passport
            .personal_access_tokens(&bob)
            .await
            .expect("list")
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(bob_listed, std::slice::from_ref(&bobs.token.id));

        // The newest live personal access client issues; a revoked one's tokens disappear.
        server.advance(TimeDelta::seconds(1));
        let newer = pat_client(&server).await;
        let from_newer = passport.create_token(&alice, None, "newer", &[]).await.expect("PAT");
        assert_eq!(from_newer.token.client_id, newer, "the newest client");
        assert!(server.db.store().revoke_client(&newer).await.expect("revoke client"));
        let listed = passport.personal_access_tokens(&alice).await.expect("list");
        assert!(
            listed.iter().all(|t| t.id != from_newer.token.id),
            "tokens of a revoked client are not listed"
        );
        let fallback = passport.create_token(&alice, None, "fallback", &[]).await.expect("PAT");
        assert_eq!(fallback.token.client_id, pat, "back to the live client");

        // There is no personal_access grant on the wire.
        for form in [
            vec![("grant_type", "personal_access")],
            vec![
                ("grant_type", "personal_access"),
                ("client_id", pat.as_str()),
                ("user_id", alice.as_str()),
                ("scope", "read"),
            ],
        ] {
            let answer = token(&server, &form).await;
            assert_token_error(&answer, 400, "unsupported_grant_type", "grant_type=personal_access");
        }
    }
}

/// With default scopes configured, a PAT created without scopes gets them (Passport 13).
#[tokio::test]
async fn personal_access_tokens_get_the_default_scopes() {
    let server = start(passport_sqlx::testing::sqlite(), |b| b.default_scopes(["read"])).await;
    let alice = server.user(ALICE, PASSWORD).await;
    pat_client(&server).await;
    let issued = server
        .passport
        .create_token(&alice, None, "defaults", &[])
        .await
        .expect("PAT");
    assert_eq!(issued.token.scopes, ["read"]);
    assert_eq!(claims(&issued.access_token)["scopes"], json!(["read"]));
    let named = server
        .passport
        .create_token(&alice, None, "named", &strings(&["write"]))
        .await
        .expect("PAT");
    assert_eq!(named.token.scopes, ["write"], "named scopes replace the defaults");
}

// ---------------------------------------------------------------------------------------------
// 2. The JSON API, happy paths.
// ---------------------------------------------------------------------------------------------

backend_test! {
    async fn json_api_lists_scopes_in_definition_order(db) {
        let server = start(db, |b| b).await;
        server.user(ALICE, PASSWORD).await;
        let alice = Browser::signed_in(&server, ALICE, PASSWORD).await;
        let reply = alice.request(Method::GET, "/oauth/scopes", None, &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        // The configured scopes, then the OpenID Connect ones every server defines.
        let expected: Vec<Value> = SCOPES
            .iter()
            .chain(&passport::OPENID_SCOPES)
            .map(|(id, description)| json!({"id": id, "description": description}))
            .collect();
        assert_eq!(reply.json(), Value::Array(expected));
    }
}

backend_test! {
    async fn json_api_manages_the_users_clients(db) {
        let server = start(db, |b| b).await;
        let alice_id = server.user(ALICE, PASSWORD).await;
        let alice = Browser::signed_in(&server, ALICE, PASSWORD).await;

        let reply = alice.api(Method::GET, "/oauth/clients", None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.json(), json!([]), "no clients yet");

        // Create: 201 with the plain secret, this once.
        let created = alice
            .api(
                Method::POST,
                "/oauth/clients",
                Some(json!({"name": "Zeta Reports", "redirect": CALLBACK})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let client = created.json();
        assert_keys(&client, &CLIENT_KEYS, "created client");
        let id = client["id"].as_str().expect("id").to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "a UUID id: {id}");
        assert_eq!(client["user_id"], alice_id.as_str(), "owned by the user");
        assert_eq!(client["name"], "Zeta Reports");
        assert_eq!(client["redirect"], CALLBACK);
        assert_eq!(client["redirect_uris"], json!([CALLBACK]));
        assert_eq!(client["confidential"], true, "confidential by default");
        assert_eq!(client["revoked"], false);
        let grants = client["grant_types"].as_array().expect("grant_types");
        assert!(grants.contains(&json!("authorization_code")), "{client}");
        let created_at = timestamp(&client["created_at"]);
        assert_eq!(created_at, timestamp(&client["updated_at"]));
        let secret = client["secret"].as_str().expect("the plain secret").to_owned();
        assert_eq!(secret.len(), 40, "a 40-character secret");
        assert!(secret.chars().all(|c| c.is_ascii_alphanumeric()), "{secret}");
        assert_eq!(client["plainSecret"], secret.as_str());
        let stored = server
            .db
            .store()
            .find_client(&id)
            .await
            .expect("find")
            .expect("stored");
        let hash = stored.secret_hash.clone().expect("a secret hash");
        assert!(!hash.contains(&secret), "the secret is stored hashed");
        assert!(passport::verify_client_secret(&hash, &secret).await);

        // A public client has no secret.
        let public = alice
            .api(
                Method::POST,
                "/oauth/clients",
                Some(json!({"name": "Alpha CLI", "redirect": "http://127.0.0.1/callback", "confidential": false})),
            )
            .await;
        assert_eq!(public.status, StatusCode::CREATED, "{}", public.body);
        let public = public.json();
        assert_eq!(public["secret"], Value::Null, "{public}");
        assert_eq!(public["confidential"], false);
        let public_id = public["id"].as_str().expect("id").to_owned();
        let stored = server
            .db
            .store()
            .find_client(&public_id)
            .await
            .expect("find")
            .expect("stored");
        assert_eq!(stored.secret_hash, None, "no secret stored");

        // Listed by name, never with a secret.
        let reply = alice.api(Method::GET, "/oauth/clients", None).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(!reply.body.contains(&secret), "the secret is shown only once");
        let list = reply.json();
        let list = list.as_array().expect("array");
        let names: Vec<&str> = list.iter().map(|c| c["name"].as_str().expect("name")).collect();
        assert_eq!(names, ["Alpha CLI", "Zeta Reports"], "ordered by name");
        for c in list {
            assert_keys(c, &CLIENT_KEYS, "listed client");
            assert!(c.get("secret").is_none() && c.get("plainSecret").is_none(), "{c}");
        }

        // The secret is real: the app signs the user in with it.
        let tokens = authorization_code(&server, &alice, (&id, &secret), "read").await;
        assert_user(
            &api_user(&server, access_token(&tokens)).await,
            &alice_id,
            ALICE,
            "the app's token",
        );

        // Update name and redirect URIs.
        server.advance(TimeDelta::minutes(1));
        let updated = alice
            .api(
                Method::PUT,
                &format!("/oauth/clients/{id}"),
                Some(json!({"name": "Zeta Reports v2", "redirect": "https://zeta.example/cb, https://zeta.example/other"})),
            )
            .await;
        assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
        assert!(!updated.body.contains(&secret));
        let updated = updated.json();
        assert_keys(&updated, &CLIENT_KEYS, "updated client");
        assert!(updated.get("secret").is_none(), "{updated}");
        assert_eq!(updated["id"], id.as_str());
        assert_eq!(updated["name"], "Zeta Reports v2");
        assert_eq!(
            updated["redirect_uris"],
            json!(["https://zeta.example/cb", "https://zeta.example/other"]),
        );
        assert_eq!(
            updated["redirect"],
            "https://zeta.example/cb,https://zeta.example/other",
        );
        assert_close(timestamp(&updated["created_at"]), created_at, "created_at kept");
        assert!(
            timestamp(&updated["updated_at"]) > created_at,
            "updated_at moves: {updated}"
        );
        let list = alice.api(Method::GET, "/oauth/clients", None).await.json();
        let row = list
            .as_array()
            .expect("array")
            .iter()
            .find(|c| c["id"] == id.as_str())
            .expect("still listed")
            .clone();
        assert_eq!(row["name"], "Zeta Reports v2");
        assert_eq!(row["redirect"], "https://zeta.example/cb,https://zeta.example/other",);
        // The old redirect URI is no longer accepted.
        let mut url = Url::parse(&server.url("/oauth/authorize")).expect("url");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &id)
            .append_pair("redirect_uri", CALLBACK);
        let page = alice.get(url.as_str()).await;
        assert!(page.status.is_client_error(), "{}", page.status);
        assert_eq!(page.header("location"), None, "never redirected");
        // Updating does not revoke anything.
        assert_user(
            &api_user(&server, access_token(&tokens)).await,
            &alice_id,
            ALICE,
            "the app's token after the update",
        );

        // Delete: 204, the client's tokens stop working at once.
        let deleted = alice.api(Method::DELETE, &format!("/oauth/clients/{id}"), None).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
        assert!(deleted.body.is_empty(), "no body");
        assert_refused(
            &api_user(&server, access_token(&tokens)).await,
            "a token of a deleted client",
        );
        let answer = refresh(&server, (&id, &secret), refresh_token(&tokens)).await;
        assert_token_error(&answer, 401, "invalid_client", "refresh for a deleted client");
        let stored = server
            .db
            .store()
            .find_access_token(&jti(access_token(&tokens)))
            .await
            .expect("find")
            .expect("row");
        assert!(stored.revoked, "the token row is revoked");
        let list = alice.api(Method::GET, "/oauth/clients", None).await.json();
        let names: Vec<&str> = list
            .as_array()
            .expect("array")
            .iter()
            .map(|c| c["name"].as_str().expect("name"))
            .collect();
        assert_eq!(names, ["Alpha CLI"]);
        let body = json!({"name": "Again", "redirect": CALLBACK});
        let again = alice
            .api(Method::PUT, &format!("/oauth/clients/{id}"), Some(body))
            .await;
        assert_message(&again, 404, "Not found.", "PUT a deleted client");
        let again = alice.api(Method::DELETE, &format!("/oauth/clients/{id}"), None).await;
        assert_message(&again, 404, "Not found.", "DELETE twice");
        let unknown = alice
            .api(
                Method::DELETE,
                "/oauth/clients/00000000-0000-0000-0000-000000000000",
                None,
            )
            .await;
        assert_message(&unknown, 404, "Not found.", "unknown client");
        let stored = server
            .db
            .store()
            .find_client(&id)
            .await
            .expect("find")
            .expect("kept");
        assert!(stored.revoked, "the client is revoked");
    }
}

backend_test! {
    async fn json_api_lists_and_revokes_authorized_tokens(db) {
        let server = start(db, |b| b.tokens_expire_in(TimeDelta::hours(1))).await;
        let alice_id = server.user(ALICE, PASSWORD).await;
        let bob_id = server.user(BOB, PASSWORD).await;
        pat_client(&server).await;
        let acme = code_client(&server, "Acme").await;
        let mobile = named_password_client(&server, "Mobile app").await;
        let alice = Browser::signed_in(&server, ALICE, PASSWORD).await;

        let acme_tokens = authorization_code(&server, &alice, pair(&acme), "read write").await;
        server.advance(TimeDelta::seconds(1));
        let mobile_tokens = password_grant(&server, pair(&mobile), ALICE, "read").await;
        let pat = server
            .passport
            .create_token(&alice_id, None, "script", &[])
            .await
            .expect("PAT");
        let bob_tokens = password_grant(&server, pair(&mobile), BOB, "read").await;
        let acme_id = jti(access_token(&acme_tokens));
        let mobile_id = jti(access_token(&mobile_tokens));

        let reply = alice.api(Method::GET, "/oauth/tokens", None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let list = reply.json();
        let list = list.as_array().expect("array");
        let ids: Vec<&str> = list.iter().map(|t| t["id"].as_str().expect("id")).collect();
        assert_eq!(
            ids,
            [mobile_id.as_str(), acme_id.as_str()],
            "alice's authorized tokens, newest first, no PAT ({}), not bob's ({})",
            pat.token.id,
            jti(access_token(&bob_tokens))
        );
        let acme_row = &list[1];
        assert_keys(acme_row, &TOKEN_KEYS, "Acme token row");
        assert_eq!(acme_row["user_id"], alice_id.as_str());
        assert_eq!(acme_row["client_id"], acme.0.as_str());
        assert_eq!(acme_row["name"], Value::Null);
        assert_eq!(acme_row["scopes"], json!(["read", "write"]));
        assert_eq!(acme_row["revoked"], false);
        let created = timestamp(&acme_row["created_at"]);
        assert_close(
            timestamp(&acme_row["expires_at"]),
            created + TimeDelta::hours(1),
            "Acme token expiry",
        );
        assert_eq!(acme_row["client"]["id"], acme.0.as_str(), "the client is embedded");
        assert_eq!(acme_row["client"]["name"], "Acme");
        assert!(acme_row["client"].get("secret").is_none());
        assert_eq!(list[0]["client"]["name"], "Mobile app");
        assert_eq!(list[0]["scopes"], json!(["read"]));

        // Revoke one: it and its refresh token stop working; the others are untouched.
        let revoked = alice
            .api(Method::DELETE, &format!("/oauth/tokens/{acme_id}"), None)
            .await;
        assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
        assert!(revoked.body.is_empty());
        assert_refused(&api_user(&server, access_token(&acme_tokens)).await, "a revoked token");
        let answer = refresh(&server, pair(&acme), refresh_token(&acme_tokens)).await;
        assert_token_error(&answer, 400, "invalid_grant", "its refresh token");
        assert_user(
            &api_user(&server, access_token(&mobile_tokens)).await,
            &alice_id,
            ALICE,
            "the mobile app's token",
        );
        assert_user(
            &api_user(&server, &pat.access_token).await,
            &alice_id,
            ALICE,
            "the personal access token",
        );
        assert_user(
            &api_user(&server, access_token(&bob_tokens)).await,
            &bob_id,
            BOB,
            "bob's token",
        );
        let list = alice.api(Method::GET, "/oauth/tokens", None).await.json();
        let ids: Vec<&str> = list
            .as_array()
            .expect("array")
            .iter()
            .map(|t| t["id"].as_str().expect("id"))
            .collect();
        assert_eq!(ids, [mobile_id.as_str()]);
        let again = alice
            .api(Method::DELETE, &format!("/oauth/tokens/{acme_id}"), None)
            .await;
        assert_message(&again, 404, "Not found.", "revoked twice");
        let unknown = alice.api(Method::DELETE, "/oauth/tokens/nope", None).await;
        assert_message(&unknown, 404, "Not found.", "unknown token");

        // Expired tokens are not listed.
        server.advance(TimeDelta::minutes(61));
        let list = alice.api(Method::GET, "/oauth/tokens", None).await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.body);
        assert_eq!(list.json(), json!([]), "expired tokens are gone");
    }
}

backend_test! {
    async fn json_api_manages_personal_access_tokens(db) {
        let server = start(db, |b| b.personal_access_tokens_expire_in(TimeDelta::days(30))).await;
        let alice_id = server.user(ALICE, PASSWORD).await;
        let alice = Browser::signed_in(&server, ALICE, PASSWORD).await;

        // No personal access client: a clear message, nothing created.
        let reply = alice
            .api(
                Method::POST,
                "/oauth/personal-access-tokens",
                Some(json!({"name": "Deploy"})),
            )
            .await;
        assert!(reply.status.is_server_error(), "{} {}", reply.status, reply.body);
        let message = reply.json()["message"].as_str().expect("message").to_owned();
        assert!(message.contains("Personal access client not found"), "{message}");

        let pat = pat_client(&server).await;
        let reply = alice.api(Method::GET, "/oauth/personal-access-tokens", None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.json(), json!([]));

        let created = alice
            .api(
                Method::POST,
                "/oauth/personal-access-tokens",
                Some(json!({"name": "Deploy", "scopes": ["read", "orders:read"]})),
            )
            .await;
        assert_eq!(created.status, StatusCode::OK, "{}", created.body);
        let created = created.json();
        let object = created.as_object().expect("object");
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["accessToken", "token"], "{created}");
        let jwt = created["accessToken"].as_str().expect("accessToken").to_owned();
        let row = &created["token"];
        assert_keys(row, &TOKEN_KEYS, "created token row");
        let id = row["id"].as_str().expect("id").to_owned();
        assert_eq!(jti(&jwt), id, "the row is the token's");
        assert_eq!(row["name"], "Deploy");
        assert_eq!(row["scopes"], json!(["read", "orders:read"]));
        assert_eq!(row["user_id"], alice_id.as_str());
        assert_eq!(row["client_id"], pat.as_str());
        assert_eq!(row["revoked"], false);
        assert_close(timestamp(&row["created_at"]), server.passport.now(), "created_at");
        assert_close(
            timestamp(&row["expires_at"]),
            server.passport.now() + TimeDelta::days(30),
            "expires_at",
        );
        assert_user(
            &api_user(&server, &jwt).await,
            &alice_id,
            ALICE,
            "the new personal access token",
        );

        server.advance(TimeDelta::seconds(1));
        let bare = alice
            .api(
                Method::POST,
                "/oauth/personal-access-tokens",
                Some(json!({"name": "No scopes"})),
            )
            .await;
        assert_eq!(bare.status, StatusCode::OK, "{}", bare.body);
        let bare = bare.json();
        assert_eq!(bare["token"]["scopes"], json!([]));
        let bare_id = bare["token"]["id"].as_str().expect("id").to_owned();

        let list = alice.api(Method::GET, "/oauth/personal-access-tokens", None).await;
        assert_eq!(list.status, StatusCode::OK);
        assert!(!list.body.contains(&jwt), "the token itself is shown once");
        let list = list.json();
        let list = list.as_array().expect("array");
        let ids: Vec<&str> = list.iter().map(|t| t["id"].as_str().expect("id")).collect();
        assert_eq!(ids, [bare_id.as_str(), id.as_str()], "newest first");
        for t in list {
            assert_keys(t, &TOKEN_KEYS, "listed token");
        }
        assert_eq!(list[1]["name"], "Deploy");

        // PATs are not "authorized applications".
        let tokens = alice.api(Method::GET, "/oauth/tokens", None).await.json();
        assert_eq!(tokens, json!([]));

        let deleted = alice
            .api(Method::DELETE, &format!("/oauth/personal-access-tokens/{id}"), None)
            .await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
        assert!(deleted.body.is_empty());
        assert_refused(&api_user(&server, &jwt).await, "a revoked PAT");
        let list = alice
            .api(Method::GET, "/oauth/personal-access-tokens", None)
            .await
            .json();
        let ids: Vec<&str> = list
            .as_array()
            .expect("array")
            .iter()
            .map(|t| t["id"].as_str().expect("id"))
            .collect();
        assert_eq!(ids, [bare_id.as_str()]);
        let again = alice
            .api(Method::DELETE, &format!("/oauth/personal-access-tokens/{id}"), None)
            .await;
        assert_message(&again, 404, "Not found.", "revoked twice");
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Owner isolation.
// ---------------------------------------------------------------------------------------------

backend_test! {
    async fn users_never_see_or_change_each_others_clients_and_tokens(db) {
        let server = start(db, |b| b).await;
        let alice_id = server.user(ALICE, PASSWORD).await;
        server.user(BOB, PASSWORD).await;
        pat_client(&server).await;
        let alice = Browser::signed_in(&server, ALICE, PASSWORD).await;
        let bob = Browser::signed_in(&server, BOB, PASSWORD).await;

        // Alice's client, a token she granted to it, and a PAT.
        let created = alice
            .api(
                Method::POST,
                "/oauth/clients",
                Some(json!({"name": "Alice's app", "redirect": CALLBACK})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let created = created.json();
        let client_id = created["id"].as_str().expect("id").to_owned();
        let secret = created["secret"].as_str().expect("secret").to_owned();
        let tokens = authorization_code(&server, &alice, (&client_id, &secret), "read").await;
        let token_id = jti(access_token(&tokens));
        let pat = alice
            .api(
                Method::POST,
                "/oauth/personal-access-tokens",
                Some(json!({"name": "Alice's script", "scopes": ["read"]})),
            )
            .await
            .json();
        let pat_jwt = pat["accessToken"].as_str().expect("accessToken").to_owned();
        let pat_id = pat["token"]["id"].as_str().expect("id").to_owned();

        // Bob sees none of it.
        for path in ["/oauth/clients", "/oauth/tokens", "/oauth/personal-access-tokens"] {
            let reply = bob.api(Method::GET, path, None).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}");
            assert_eq!(reply.json(), json!([]), "bob's {path}");
        }

        // Bob cannot change any of it: 404, valid body or not.
        let client_path = format!("/oauth/clients/{client_id}");
        for body in [
            json!({"name": "Bob was here", "redirect": "https://evil.example/cb"}),
            json!({"name": "", "redirect": "not a url"}),
        ] {
            let reply = bob.api(Method::PUT, &client_path, Some(body)).await;
            assert_message(&reply, 404, "Not found.", "bob updates alice's client");
        }
        let reply = bob.api(Method::DELETE, &client_path, None).await;
        assert_message(&reply, 404, "Not found.", "bob deletes alice's client");
        for path in [
            format!("/oauth/tokens/{token_id}"),
            format!("/oauth/personal-access-tokens/{pat_id}"),
            format!("/oauth/tokens/{pat_id}"),
            format!("/oauth/personal-access-tokens/{token_id}"),
        ] {
            let reply = bob.api(Method::DELETE, &path, None).await;
            assert_message(&reply, 404, "Not found.", &format!("bob revokes {path}"));
        }

        // Nothing changed.
        let list = alice.api(Method::GET, "/oauth/clients", None).await.json();
        assert_eq!(list.as_array().expect("array").len(), 1);
        assert_eq!(list[0]["name"], "Alice's app");
        assert_eq!(list[0]["redirect"], CALLBACK);
        assert_user(
            &api_user(&server, access_token(&tokens)).await,
            &alice_id,
            ALICE,
            "alice's app token",
        );
        assert_user(
            &api_user(&server, &pat_jwt).await,
            &alice_id,
            ALICE,
            "alice's personal access token",
        );
        let answer = refresh(&server, (&client_id, &secret), refresh_token(&tokens)).await;
        assert_issued(&answer, "alice's refresh token still works");
        let list = alice
            .api(Method::GET, "/oauth/personal-access-tokens", None)
            .await
            .json();
        assert_eq!(list.as_array().expect("array").len(), 1);
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Session and CSRF.
// ---------------------------------------------------------------------------------------------

/// Every state-changing request of the API, for a user with a client `client_id`, a token
/// `token_id` and a PAT `pat_id`.
fn state_changing(client_id: &str, token_id: &str, pat_id: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (
            Method::POST,
            "/oauth/clients".to_owned(),
            Some(json!({"name": "Sneaky", "redirect": CALLBACK})),
        ),
        (
            Method::PUT,
            format!("/oauth/clients/{client_id}"),
            Some(json!({"name": "Renamed", "redirect": "https://evil.example/cb"})),
        ),
        (Method::DELETE, format!("/oauth/clients/{client_id}"), None),
        (Method::DELETE, format!("/oauth/tokens/{token_id}"), None),
        (
            Method::POST,
            "/oauth/personal-access-tokens".to_owned(),
            Some(json!({"name": "Sneaky"})),
        ),
        (Method::DELETE, format!("/oauth/personal-access-tokens/{pat_id}"), None),
        (Method::POST, "/oauth/token/refresh".to_owned(), None),
    ]
}

/// What is wrong with a request, its headers, its body.
type CsrfVariant<'a> = (String, Vec<(&'a str, &'a str)>, Option<Value>);

const READS: [&str; 4] = [
    "/oauth/scopes",
    "/oauth/clients",
    "/oauth/tokens",
    "/oauth/personal-access-tokens",
];

backend_test! {
    async fn json_api_needs_a_session_and_the_csrf_token(db) {
        let server = start(db, |b| b.session_lifetime(TimeDelta::minutes(30))).await;
        let alice_id = server.user(ALICE, PASSWORD).await;
        server.user(BOB, PASSWORD).await;
        pat_client(&server).await;
        let alice = Browser::signed_in(&server, ALICE, PASSWORD).await;
        let csrf = alice.csrf();
        assert_eq!(csrf.len(), 40, "a CSRF token in the XSRF-TOKEN cookie");

        let created = alice
            .api(
                Method::POST,
                "/oauth/clients",
                Some(json!({"name": "Original", "redirect": CALLBACK})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let created = created.json();
        let client_id = created["id"].as_str().expect("id").to_owned();
        let secret = created["secret"].as_str().expect("secret").to_owned();
        let tokens = authorization_code(&server, &alice, (&client_id, &secret), "read").await;
        let token_id = jti(access_token(&tokens));
        let pat = server
            .passport
            .create_token(&alice_id, None, "script", &[])
            .await
            .expect("PAT");
        let requests = state_changing(&client_id, &token_id, &pat.token.id);

        // No session at all: 401 JSON, CSRF header or not.
        let stranger = Browser::new(&server.base);
        for (method, path, body) in &requests {
            for headers in [vec![], vec![("x-csrf-token", csrf.as_str())]] {
                let reply = stranger.request(method.clone(), path, body.as_ref(), &headers).await;
                assert_message(
                    &reply,
                    401,
                    "Unauthenticated.",
                    &format!("{method} {path} without a session"),
                );
            }
        }
        for path in READS {
            let reply = stranger.request(Method::GET, path, None, &[]).await;
            assert_message(
                &reply,
                401,
                "Unauthenticated.",
                &format!("GET {path} without a session"),
            );
        }
        // A made-up session cookie, or a guest session, is no better.
        let forged = stranger
            .request(
                Method::GET,
                "/oauth/clients",
                None,
                &[("cookie", "passport_session=0123456789abcdef")],
            )
            .await;
        assert_message(&forged, 401, "Unauthenticated.", "forged session");
        let guest = Browser::new(&server.base);
        assert_eq!(guest.get("/login").await.status, StatusCode::OK);
        let guest_csrf = guest.csrf();
        let reply = guest
            .request(
                Method::POST,
                "/oauth/clients",
                Some(&json!({"name": "Guest", "redirect": CALLBACK})),
                &[("x-csrf-token", &guest_csrf)],
            )
            .await;
        assert_message(&reply, 401, "Unauthenticated.", "a guest session");

        // A session but no, a wrong, or another session's CSRF token: 419.
        let bob = Browser::signed_in(&server, BOB, PASSWORD).await;
        let bob_csrf = bob.csrf();
        let wrong = "x".repeat(40);
        for (method, path, body) in &requests {
            let mut variants: Vec<CsrfVariant<'_>> = vec![
                ("no header".to_owned(), vec![], body.clone()),
                (
                    "wrong X-CSRF-TOKEN".to_owned(),
                    vec![("x-csrf-token", wrong.as_str())],
                    body.clone(),
                ),
                (
                    "wrong X-XSRF-TOKEN".to_owned(),
                    vec![("x-xsrf-token", wrong.as_str())],
                    body.clone(),
                ),
                ("empty header".to_owned(), vec![("x-csrf-token", "")], body.clone()),
                (
                    "bob's token".to_owned(),
                    vec![("x-xsrf-token", bob_csrf.as_str())],
                    body.clone(),
                ),
                (
                    "a prefix of the token".to_owned(),
                    vec![("x-csrf-token", &csrf[..20])],
                    body.clone(),
                ),
            ];
            let mut with_field = body.clone().unwrap_or_else(|| json!({}));
            with_field["_token"] = json!(wrong);
            variants.push(("wrong _token field".to_owned(), vec![], Some(with_field)));
            for (what, headers, body) in variants {
                let reply = alice.request(method.clone(), path, body.as_ref(), &headers).await;
                assert_message(
                    &reply,
                    419,
                    "CSRF token mismatch.",
                    &format!("{method} {path} with {what}"),
                );
            }
        }
        // GETs need no CSRF token.
        for path in READS {
            let reply = alice.request(Method::GET, path, None, &[]).await;
            assert_eq!(reply.status, StatusCode::OK, "GET {path}: {}", reply.body);
        }
        // Nothing was changed by the refused requests.
        let clients = alice.api(Method::GET, "/oauth/clients", None).await.json();
        assert_eq!(clients.as_array().expect("array").len(), 1, "{clients}");
        assert_eq!(clients[0]["name"], "Original");
        assert_eq!(clients[0]["redirect"], CALLBACK);
        assert_user(
            &api_user(&server, access_token(&tokens)).await,
            &alice_id,
            ALICE,
            "alice's app token",
        );
        assert_user(
            &api_user(&server, &pat.access_token).await,
            &alice_id,
            ALICE,
            "alice's personal access token",
        );
        let pats = server.passport.personal_access_tokens(&alice_id).await.expect("list");
        assert_eq!(pats.len(), 1, "no PAT was created");

        // The right token in any accepted place works.
        let reply = alice
            .request(
                Method::POST,
                "/oauth/clients",
                Some(&json!({"name": "A via X-CSRF-TOKEN", "redirect": CALLBACK})),
                &[("x-csrf-token", &csrf)],
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "X-CSRF-TOKEN: {}", reply.body);
        let cookie = alice.cookie("XSRF-TOKEN").expect("readable XSRF-TOKEN cookie");
        let reply = alice
            .request(
                Method::PUT,
                &format!("/oauth/clients/{client_id}"),
                Some(&json!({"name": "B via X-XSRF-TOKEN", "redirect": CALLBACK})),
                &[("x-xsrf-token", &cookie)],
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "X-XSRF-TOKEN: {}", reply.body);
        let reply = alice
            .request(
                Method::POST,
                "/oauth/personal-access-tokens",
                Some(&json!({"name": "Via _token", "_token": csrf})),
                &[],
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "_token field: {}", reply.body);
        let form = alice
            .send(alice.http.post(alice.url("/oauth/clients")).form(&[
                ("_token", csrf.as_str()),
                ("name", "C via a form"),
                ("redirect", CALLBACK),
            ]))
            .await;
        assert_eq!(form.status, StatusCode::CREATED, "a form body: {}", form.body);
        let reply = alice
            .request(
                Method::DELETE,
                &format!("/oauth/tokens/{token_id}"),
                None,
                &[("x-csrf-token", &csrf)],
            )
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
        let names: Vec<String> = alice
            .api(Method::GET, "/oauth/clients", None)
            .await
            .json()
            .as_array()
            .expect("array")
            .iter()
            .map(|c| c["name"].as_str().expect("name").to_owned())
            .collect();
        assert_eq!(names, ["A via X-CSRF-TOKEN", "B via X-XSRF-TOKEN", "C via a form"],);

        // An expired session is no session.
        server.advance(TimeDelta::minutes(31));
        let reply = alice.api(Method::GET, "/oauth/clients", None).await;
        assert_message(&reply, 401, "Unauthenticated.", "expired session");
        let reply = alice
            .api(
                Method::POST,
                "/oauth/clients",
                Some(json!({"name": "Late", "redirect": CALLBACK})),
            )
            .await;
        assert_message(&reply, 401, "Unauthenticated.", "expired session");

        // After logout, the session is gone too.
        let bob_list = bob.api(Method::GET, "/oauth/clients", None).await;
        assert_message(&bob_list, 401, "Unauthenticated.", "bob's session expired too");
        let carol = Browser::signed_in(&server, BOB, PASSWORD).await;
        let csrf = carol.csrf();
        let out = carol
            .send(carol.http.post(carol.url("/logout")).form(&[("_token", csrf.as_str())]))
            .await;
        assert_eq!(out.status, StatusCode::FOUND, "logout: {}", out.body);
        let reply = carol
            .request(Method::GET, "/oauth/clients", None, &[("x-csrf-token", &csrf)])
            .await;
        assert_message(&reply, 401, "Unauthenticated.", "after logout");
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Validation.
// ---------------------------------------------------------------------------------------------

backend_test! {
    async fn json_api_validates_input_with_422(db) {
        let server = start(db, |b| b).await;
        let alice_id = server.user(ALICE, PASSWORD).await;
        pat_client(&server).await;
        let alice = Browser::signed_in(&server, ALICE, PASSWORD).await;
        let long = "a".repeat(256);

        let bad_clients: Vec<(&str, Value, Vec<&str>)> = vec![
            ("empty name", json!({"name": "", "redirect": CALLBACK}), vec!["name"]),
            ("blank name", json!({"name": "   ", "redirect": CALLBACK}), vec!["name"]),
            ("missing name", json!({"redirect": CALLBACK}), vec!["name"]),
            ("name not text", json!({"name": 42, "redirect": CALLBACK}), vec!["name"]),
            ("name of 256", json!({"name": long, "redirect": CALLBACK}), vec!["name"]),
            (
                "not a url",
                json!({"name": "App", "redirect": "not a url"}),
                vec!["redirect"],
            ),
            (
                "javascript:",
                json!({"name": "App", "redirect": "javascript:alert(1)"}),
                vec!["redirect"],
            ),
            (
                "data:",
                json!({"name": "App", "redirect": "data:text/html,hi"}),
                vec!["redirect"],
            ),
            (
                "a fragment",
                json!({"name": "App", "redirect": "https://app.example/cb#x"}),
                vec!["redirect"],
            ),
            (
                "one bad of two",
                json!({"name": "App", "redirect": "https://app.example/cb,not a url"}),
                vec!["redirect"],
            ),
            ("missing redirect", json!({"name": "App"}), vec!["redirect"]),
            (
                "empty redirect",
                json!({"name": "App", "redirect": ""}),
                vec!["redirect"],
            ),
            (
                "only commas",
                json!({"name": "App", "redirect": " , ,"}),
                vec!["redirect"],
            ),
            ("nothing", json!({}), vec!["name", "redirect"]),
        ];
        for (what, body, fields) in &bad_clients {
            let reply = alice.api(Method::POST, "/oauth/clients", Some(body.clone())).await;
            assert_unprocessable(&reply, fields, &format!("POST client with {what}"));
        }
        let reply = alice.api(Method::GET, "/oauth/clients", None).await.json();
        assert_eq!(reply, json!([]), "nothing was created");

        // Limits are in characters: 255 of them is fine.
        let ok = alice
            .api(
                Method::POST,
                "/oauth/clients",
                Some(json!({"name": "é".repeat(255), "redirect": [CALLBACK, "http://127.0.0.1/cb"]})),
            )
            .await;
        assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
        let ok = ok.json();
        assert_eq!(ok["redirect_uris"], json!([CALLBACK, "http://127.0.0.1/cb"]));
        let id = ok["id"].as_str().expect("id").to_owned();

        // PUT validates the same way and changes nothing when refusing.
        for (what, body, fields) in &bad_clients {
            let reply = alice
                .api(Method::PUT, &format!("/oauth/clients/{id}"), Some(body.clone()))
                .await;
            assert_unprocessable(&reply, fields, &format!("PUT client with {what}"));
        }
        let list = alice.api(Method::GET, "/oauth/clients", None).await.json();
        assert_eq!(list[0]["name"], "é".repeat(255), "unchanged");
        assert_eq!(list[0]["redirect_uris"], json!([CALLBACK, "http://127.0.0.1/cb"]),);

        // Personal access tokens: a name, and only defined scopes.
        let bad_pats: Vec<(&str, Value, Vec<&str>)> = vec![
            ("no name", json!({"scopes": ["read"]}), vec!["name"]),
            ("empty name", json!({"name": "", "scopes": ["read"]}), vec!["name"]),
            ("name of 256", json!({"name": long}), vec!["name"]),
            (
                "unknown scope",
                json!({"name": "x", "scopes": ["read", "nope"]}),
                vec!["scopes"],
            ),
            ("a scope not text", json!({"name": "x", "scopes": [1]}), vec!["scopes"]),
            (
                "scopes not a list",
                json!({"name": "x", "scopes": {"read": true}}),
                vec!["scopes"],
            ),
            ("both", json!({"name": "", "scopes": ["nope"]}), vec!["name", "scopes"]),
        ];
        for (what, body, fields) in &bad_pats {
            let reply = alice
                .api(Method::POST, "/oauth/personal-access-tokens", Some(body.clone()))
                .await;
            assert_unprocessable(&reply, fields, &format!("POST PAT with {what}"));
        }
        let unknown = alice
            .api(
                Method::POST,
                "/oauth/personal-access-tokens",
                Some(json!({"name": "x", "scopes": ["nope"]})),
            )
            .await
            .json();
        let message = unknown["errors"]["scopes"][0].as_str().expect("message");
        assert!(message.contains("nope"), "names the unknown scope: {message}");
        let pats = server.passport.personal_access_tokens(&alice_id).await.expect("list");
        assert!(pats.is_empty(), "nothing was created");
        let first = alice
            .api(Method::POST, "/oauth/clients", Some(json!({"name": ""})))
            .await
            .json();
        assert_eq!(
            first["message"], first["errors"]["name"][0],
            "the message is the first error"
        );

        // Malformed bodies are client errors too.
        let csrf = alice.csrf();
        let reply = alice
            .send(
                alice
                    .http
                    .post(alice.url("/oauth/clients"))
                    .header("content-type", "application/json")
                    .header("x-csrf-token", &csrf)
                    .body("[1, 2"),
            )
            .await;
        assert!(reply.status.is_client_error(), "{} {}", reply.status, reply.body);
    }
}

// ---------------------------------------------------------------------------------------------
// 6. The SPA cookie.
// ---------------------------------------------------------------------------------------------

/// `GET /api/user` with only the SPA cookie and these headers.
async fn with_spa_cookie(server: &TestServer, cookie: &str, headers: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut request = server
        .http
        .get(server.url("/api/user"))
        .header("accept", "application/json")
        .header("cookie", format!("passport_token={cookie}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let reply = Page::read(request.send().await.expect("request")).await;
    let body = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
    (reply.status, body)
}

/// What is wrong with an SPA cookie request, the cookie, the headers.
type CookieVariant<'a> = (&'a str, String, Vec<(&'a str, String)>);

#[track_caller]
fn assert_spa_cookie(set_cookie: Option<&str>, max_age: i64, what: &str) -> String {
    let line = set_cookie.unwrap_or_else(|| panic!("{what}: sets passport_token"));
    assert!(has_attribute(line, "HttpOnly"), "{what}: HttpOnly: {line}");
    assert!(has_attribute(line, "SameSite=Lax"), "{what}: SameSite=Lax: {line}");
    assert!(has_attribute(line, "Path=/"), "{what}: Path=/: {line}");
    assert!(
        has_attribute(line, &format!("Max-Age={max_age}")),
        "{what}: lives as long as the session: {line}"
    );
    let value = cookie_value(line);
    assert!(!value.is_empty(), "{what}: a value");
    value.to_owned()
}

/// Replaces the character at `index` by another one of the same alphabet.
fn flip(value: &str, index: usize) -> String {
    let mut bytes = value.as_bytes().to_vec();
    bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ASCII")
}

backend_test! {
    async fn the_spa_cookie_works_only_with_the_csrf_header_and_until_it_expires(db) {
        let server = start(db, |b| b.session_lifetime(TimeDelta::minutes(5))).await;
        let alice_id = server.user(ALICE, PASSWORD).await;
        let bob_id = server.user(BOB, PASSWORD).await;

        // Guests get no SPA cookie.
        let guest = Browser::new(&server.base);
        let home = guest.get("/").await;
        assert_eq!(home.status, StatusCode::OK);
        assert_eq!(home.set_cookie("passport_token"), None, "not for guests");

        let alice = Browser::signed_in(&server, ALICE, PASSWORD).await;
        let csrf = alice.csrf();
        let page = alice.get("/account").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let cookie = assert_spa_cookie(page.set_cookie("passport_token"), 300, "GET /account");
        let home = alice.get("/").await;
        assert_spa_cookie(home.set_cookie("passport_token"), 300, "GET /");
        let json_get = alice.api(Method::GET, "/oauth/clients", None).await;
        assert_spa_cookie(json_get.set_cookie("passport_token"), 300, "a JSON GET");
        let post = alice
            .api(
                Method::POST,
                "/oauth/clients",
                Some(json!({"name": "App", "redirect": CALLBACK})),
            )
            .await;
        assert_eq!(post.status, StatusCode::CREATED);
        assert_eq!(post.set_cookie("passport_token"), None, "only GET responses");

        // With a matching CSRF header the cookie authenticates; otherwise it does not.
        for header in ["x-xsrf-token", "x-csrf-token"] {
            assert_user(
                &with_spa_cookie(&server, &cookie, &[(header, &csrf)]).await,
                &alice_id,
                ALICE,
                &format!("SPA cookie with {header}"),
            );
        }
        let refused: Vec<CookieVariant<'_>> = vec![
            ("no header", cookie.clone(), vec![]),
            ("a wrong header", cookie.clone(), vec![("x-xsrf-token", "x".repeat(40))]),
            ("an empty header", cookie.clone(), vec![("x-csrf-token", String::new())]),
            (
                "a prefix of the token",
                cookie.clone(),
                vec![("x-csrf-token", csrf[..39].to_owned())],
            ),
        ];
        let (payload, tag) = cookie.split_once('.').expect("payload.signature");
        let mut forged_claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("payload")).expect("claims");
        assert_eq!(forged_claims["sub"], alice_id.as_str(), "{forged_claims}");
        forged_claims["sub"] = json!(bob_id);
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).expect("json"));
        let mut later_claims = forged_claims.clone();
        later_claims["sub"] = json!(alice_id);
        later_claims["exp"] = json!(later_claims["exp"].as_i64().expect("exp") + 86_400);
        let later_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&later_claims).expect("json"));
        let mut refused = refused;
        for (what, tampered) in [
            ("a changed signature", format!("{payload}.{}", flip(tag, tag.len() / 2))),
            (
                "a changed payload",
                format!("{}.{tag}", flip(payload, payload.len() / 2)),
            ),
            ("another user in the payload", format!("{forged_payload}.{tag}")),
            ("a later expiry in the payload", format!("{later_payload}.{tag}")),
            ("no signature", payload.to_owned()),
            ("garbage", "garbage".to_owned()),
        ] {
            refused.push((what, tampered, vec![("x-xsrf-token", csrf.clone())]));
        }
        for (what, value, headers) in &refused {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            assert_refused(
                &with_spa_cookie(&server, value, &headers).await,
                &format!("SPA cookie with {what}"),
            );
        }

        // POST /oauth/token/refresh renews it (with the CSRF header, like any POST).
        server.advance(TimeDelta::minutes(3));
        let refused = alice.request(Method::POST, "/oauth/token/refresh", None, &[]).await;
        assert_message(&refused, 419, "CSRF token mismatch.", "refresh without CSRF");
        let refreshed = alice
            .request(Method::POST, "/oauth/token/refresh", None, &[("x-xsrf-token", &csrf)])
            .await;
        assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
        assert_eq!(refreshed.body, "Refreshed.");
        let renewed = assert_spa_cookie(refreshed.set_cookie("passport_token"), 300, "POST /oauth/token/refresh");
        assert_ne!(renewed, cookie, "a new cookie");
        let no_session = Browser::new(&server.base)
            .request(Method::POST, "/oauth/token/refresh", None, &[("x-xsrf-token", &csrf)])
            .await;
        assert_message(&no_session, 401, "Unauthenticated.", "refresh without a session");
        assert_eq!(no_session.set_cookie("passport_token"), None);

        // After the session lifetime the first cookie is dead; the renewed one still lives.
        server.advance(TimeDelta::minutes(3));
        assert_refused(
            &with_spa_cookie(&server, &cookie, &[("x-xsrf-token", &csrf)]).await,
            "an expired SPA cookie",
        );
        assert_user(
            &with_spa_cookie(&server, &renewed, &[("x-xsrf-token", &csrf)]).await,
            &alice_id,
            ALICE,
            "the renewed cookie",
        );
        server.advance(TimeDelta::minutes(3));
        assert_refused(
            &with_spa_cookie(&server, &renewed, &[("x-xsrf-token", &csrf)]).await,
            "the renewed cookie expired too",
        );

        // Logout clears it.
        let again = Browser::signed_in(&server, ALICE, PASSWORD).await;
        let page = again.get("/account").await;
        assert_spa_cookie(page.set_cookie("passport_token"), 300, "GET /account again");
        assert!(again.cookie("passport_token").is_some(), "the browser holds it");
        let csrf = again.csrf();
        let out = again
            .send(again.http.post(again.url("/logout")).form(&[("_token", csrf.as_str())]))
            .await;
        assert_eq!(out.status, StatusCode::FOUND, "logout: {}", out.body);
        let cleared = out
            .set_cookie("passport_token")
            .unwrap_or_else(|| panic!("logout clears passport_token"));
        assert_eq!(cookie_value(cleared), "", "{cleared}");
        assert!(has_attribute(cleared, "Max-Age=0"), "{cleared}");
        assert!(has_attribute(cleared, "Path=/"), "the same path: {cleared}");
        assert_eq!(again.cookie("passport_token"), None, "the browser dropped it");
        let after = again.get("/").await;
        assert_eq!(after.set_cookie("passport_token"), None, "not set again after logout");
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Events.
// ---------------------------------------------------------------------------------------------

impl Recorder {
    /// Every event since the last call, once the listeners have caught up.
    async fn drain(&self, server: &TestServer) -> Vec<Event> {
        server.passport.flush_events().await;
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Panics on the first event it gets (once, to keep the test output readable: the panic is
/// reported on stderr by the event thread).
#[derive(Debug, Default)]
struct Panicking(AtomicBool);

impl EventListener for Panicking {
    fn handle(&self, _event: &Event) {
        if !self.0.swap(true, Ordering::SeqCst) {
            panic!("a failing event listener (expected in this test)");
        }
    }
}

/// Takes two seconds per event.
#[derive(Debug)]
struct Slow;

impl EventListener for Slow {
    fn handle(&self, _event: &Event) {
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn created(token_id: &str, user_id: Option<&str>, client_id: &str) -> Event {
    Event::AccessTokenCreated {
        token_id: token_id.to_owned(),
        user_id: user_id.map(str::to_owned),
        client_id: client_id.to_owned(),
    }
}

fn refresh_created(refresh_token: &str, access_token_id: &str) -> Event {
    Event::RefreshTokenCreated {
        refresh_token_id: sha256_hex(refresh_token),
        access_token_id: access_token_id.to_owned(),
    }
}

backend_test! {
    async fn events_reach_listeners(db) {
        let recorder = Arc::new(Recorder::default());
        let listener = recorder.clone();
        let server = start(db, move |b| b.listen(Arc::new(Panicking::default())).listen(listener)).await;
        let alice_id = server.user(ALICE, PASSWORD).await;
        let service = server.service_client().await;
        let mobile = server.password_client().await;
        let acme = code_client(&server, "Acme").await;
        let pat = pat_client(&server).await;
        assert_eq!(recorder.drain(&server).await, [], "nothing yet");

        // Client credentials: one token, no user.
        let answer = token(
            &server,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &service.0),
                ("client_secret", &service.1),
                ("scope", "read"),
            ],
        )
        .await;
        let issued = assert_issued(&answer, "client credentials");
        assert_eq!(
            recorder.drain(&server).await,
            [created(&jti(access_token(&issued)), None, &service.0)],
            "client credentials"
        );

        // Password grant: the access token, then its refresh token.
        let issued = password_grant(&server, pair(&mobile), ALICE, "read write").await;
        let first_id = jti(access_token(&issued));
        assert_eq!(
            recorder.drain(&server).await,
            [
                created(&first_id, Some(&alice_id), &mobile.0),
                refresh_created(refresh_token(&issued), &first_id),
            ],
            "password grant"
        );

        // Refresh: the old access token revoked, then the new pair.
        let renewed = assert_issued(
            &refresh(&server, pair(&mobile), refresh_token(&issued)).await,
            "refresh",
        );
        let second_id = jti(access_token(&renewed));
        assert_eq!(
            recorder.drain(&server).await,
            [
                Event::AccessTokenRevoked {
                    token_id: first_id.clone()
                },
                created(&second_id, Some(&alice_id), &mobile.0),
                refresh_created(refresh_token(&renewed), &second_id),
            ],
            "refresh"
        );

        // Reusing the rotated refresh token.
        let answer = refresh(&server, pair(&mobile), refresh_token(&issued)).await;
        assert_token_error(&answer, 400, "invalid_grant", "reuse");
        assert_eq!(
            recorder.drain(&server).await,
            [Event::RefreshTokenReused {
                client_id: mobile.0.clone()
            }],
            "refresh reuse"
        );
        assert_refused(
            &api_user(&server, access_token(&renewed)).await,
            "reuse revoked the whole family",
        );

        // Authorization code: the pair; replaying the code.
        let browser = Browser::signed_in(&server, ALICE, PASSWORD).await;
        let code = browser.code_for(&acme.0, CALLBACK, "read").await;
        assert_eq!(recorder.drain(&server).await, [], "signing in and consenting");
        let issued = assert_issued(&exchange(&server, pair(&acme), &code).await, "code");
        let code_token = jti(access_token(&issued));
        assert_eq!(
            recorder.drain(&server).await,
            [
                created(&code_token, Some(&alice_id), &acme.0),
                refresh_created(refresh_token(&issued), &code_token),
            ],
            "authorization code"
        );
        let answer = exchange(&server, pair(&acme), &code).await;
        assert_token_error(&answer, 400, "invalid_grant", "replay");
        assert_eq!(
            recorder.drain(&server).await,
            [Event::AuthCodeReplayed {
                client_id: acme.0.clone()
            }],
            "code replay"
        );

        // Personal access token: no refresh token.
        let personal = server
            .passport
            .create_token(&alice_id, None, "script", &[])
            .await
            .expect("PAT");
        assert_eq!(
            recorder.drain(&server).await,
            [created(&personal.token.id, Some(&alice_id), &pat)],
            "personal access token"
        );

        // Failed client authentication: wrong secret, unknown client.
        let answer = token(
            &server,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &service.0),
                ("client_secret", "wrong"),
            ],
        )
        .await;
        assert_token_error(&answer, 401, "invalid_client", "wrong secret");
        let unknown = "00000000-0000-0000-0000-000000000000";
        let answer = token(
            &server,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", unknown),
                ("client_secret", "whatever"),
            ],
        )
        .await;
        assert_token_error(&answer, 401, "invalid_client", "unknown client");
        assert_eq!(
            recorder.drain(&server).await,
            [
                Event::ClientAuthenticationFailed {
                    client_id: service.0.clone()
                },
                Event::ClientAuthenticationFailed {
                    client_id: unknown.to_owned()
                },
            ],
            "failed client authentication"
        );

        // Wrong user credentials: password grant (wrong password, unknown user), login page.
        for username in [ALICE, "nobody@example.com"] {
            let answer = token(
                &server,
                &[
                    ("grant_type", "password"),
                    ("client_id", &mobile.0),
                    ("client_secret", &mobile.1),
                    ("username", username),
                    ("password", "wrong password"),
                ],
            )
            .await;
            assert_token_error(&answer, 400, "invalid_grant", "wrong user credentials");
        }
        let failed = Event::UserAuthenticationFailed {
            client_id: Some(mobile.0.clone()),
        };
        assert_eq!(
            recorder.drain(&server).await,
            [failed.clone(), failed],
            "failed user authentication"
        );
        let reply = Browser::new(&server.base).login(ALICE, "wrong password").await;
        assert_eq!(reply.status.as_u16(), 422, "{}", reply.body);
        assert_eq!(
            recorder.drain(&server).await,
            [Event::UserAuthenticationFailed { client_id: None }],
            "failed sign-in on the login page"
        );

        // Revocations: library, JSON API, client deletion.
        assert!(server.passport.revoke_token(&personal.token.id).await.expect("revoke"));
        assert_eq!(
            recorder.drain(&server).await,
            [Event::AccessTokenRevoked {
                token_id: personal.token.id.clone()
            }],
            "revoke_token"
        );
        let third = password_grant(&server, pair(&mobile), ALICE, "read").await;
        let third_id = jti(access_token(&third));
        recorder.drain(&server).await;
        let reply = browser
            .api(Method::DELETE, &format!("/oauth/tokens/{third_id}"), None)
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
        assert_eq!(
            recorder.drain(&server).await,
            [Event::AccessTokenRevoked {
                token_id: third_id.clone()
            }],
            "DELETE /oauth/tokens/{{id}}"
        );
        let created_client = browser
            .api(
                Method::POST,
                "/oauth/clients",
                Some(json!({"name": "Mine", "redirect": CALLBACK})),
            )
            .await
            .json();
        let mine = (
            created_client["id"].as_str().expect("id").to_owned(),
            created_client["secret"].as_str().expect("secret").to_owned(),
        );
        let issued = authorization_code(&server, &browser, pair(&mine), "read").await;
        let mine_token = jti(access_token(&issued));
        recorder.drain(&server).await;
        let reply = browser
            .api(Method::DELETE, &format!("/oauth/clients/{}", mine.0), None)
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
        assert_eq!(
            recorder.drain(&server).await,
            [Event::AccessTokenRevoked { token_id: mine_token }],
            "deleting a client"
        );
    }
}

#[tokio::test]
async fn panicking_and_slow_listeners_never_fail_or_delay_token_requests() {
    let recorder = Arc::new(Recorder::default());
    let listener = recorder.clone();
    let server = start(passport_sqlx::testing::sqlite(), move |b| {
        b.listen(Arc::new(Panicking::default()))
            .listen(Arc::new(Slow))
            .listen(listener)
    })
    .await;
    let service = server.service_client().await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", service.0.as_str()),
        ("client_secret", service.1.as_str()),
    ];
    let mut ids = Vec::new();
    for attempt in 1..=2 {
        let started = Instant::now();
        let answer = token(&server, &form).await;
        let elapsed = started.elapsed();
        let issued = assert_issued(&answer, &format!("request {attempt}"));
        assert!(
            elapsed < Duration::from_millis(1500),
            "request {attempt} took {elapsed:?}: listeners must not delay token requests"
        );
        ids.push(jti(access_token(&issued)));
    }
    // Every event still reaches the listener after the failing and the slow one.
    let events = recorder.drain(&server).await;
    let expected: Vec<Event> = ids.iter().map(|id| created(id, None, &service.0)).collect();
    assert_eq!(events, expected);
}

// ---------------------------------------------------------------------------------------------
// 8. Library token management and scopes.
// ---------------------------------------------------------------------------------------------

backend_test! {
    async fn the_library_manages_a_users_tokens(db) {
        let server = start(db, |b| b).await;
        let passport = &server.passport;
        let alice_id = server.user(ALICE, PASSWORD).await;
        let bob_id = server.user(BOB, PASSWORD).await;
        pat_client(&server).await;
        let mobile = named_password_client(&server, "Mobile app").await;
        let desktop = named_password_client(&server, "Desktop app").await;

        let m1 = password_grant(&server, pair(&mobile), ALICE, "read").await;
        server.advance(TimeDelta::seconds(1));
        let d1 = password_grant(&server, pair(&desktop), ALICE, "write").await;
        server.advance(TimeDelta::seconds(1));
        let m2 = password_grant(&server, pair(&mobile), ALICE, "read write").await;
        let personal = passport
            .create_token(&alice_id, None, "script", &[])
            .await
            .expect("PAT");
        let bobs = password_grant(&server, pair(&mobile), BOB, "read").await;

        // Connections: grouped by client, newest token first, PATs excluded.
        let connections = passport.connections(&alice_id).await.expect("connections");
        let summary: Vec<(String, Vec<String>)> = connections
            .iter()
            .map(|c| (c.client.name.clone(), c.tokens.iter().map(|t| t.id.clone()).collect()))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "Mobile app".to_owned(),
                    vec![jti(access_token(&m2)), jti(access_token(&m1))]
                ),
                ("Desktop app".to_owned(), vec![jti(access_token(&d1))]),
            ],
        );
        assert_eq!(connections[0].tokens[0].scopes, ["read", "write"]);
        let bob_connections = passport.connections(&bob_id).await.expect("connections");
        assert_eq!(bob_connections.len(), 1);
        assert_eq!(bob_connections[0].tokens[0].id, jti(access_token(&bobs)));

        // revoke_token: the token and its refresh token; once.
        let m1_id = jti(access_token(&m1));
        assert!(passport.revoke_token(&m1_id).await.expect("revoke"));
        assert!(!passport.revoke_token(&m1_id).await.expect("revoke"), "already revoked");
        assert!(!passport.revoke_token("unknown").await.expect("revoke"), "unknown");
        assert_refused(&api_user(&server, access_token(&m1)).await, "revoked");
        let answer = refresh(&server, pair(&mobile), refresh_token(&m1)).await;
        assert_token_error(&answer, 400, "invalid_grant", "revoked token's refresh");
        // (Presenting a revoked refresh token is reuse: its family is gone, not m2's.)
        assert_user(&api_user(&server, access_token(&m2)).await, &alice_id, ALICE, "m2");
        let connections = passport.connections(&alice_id).await.expect("connections");
        assert_eq!(
            connections[0].tokens.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
            [jti(access_token(&m2))],
        );

        // revoke_all_tokens: every live token of alice, PATs included; bob untouched.
        assert_eq!(passport.revoke_all_tokens(&alice_id).await.expect("revoke all").len(), 3,);
        for (what, jwt) in [
            ("m2", access_token(&m2)),
            ("d1", access_token(&d1)),
            ("PAT", personal.access_token.as_str()),
        ] {
            assert_refused(&api_user(&server, jwt).await, &format!("{what} after revoke_all"));
        }
        for (what, client, answer) in [("m2", &mobile, &m2), ("d1", &desktop, &d1)] {
            let answer = refresh(&server, pair(client), refresh_token(answer)).await;
            assert_token_error(&answer, 400, "invalid_grant", &format!("{what}'s refresh"));
        }
        assert!(passport.connections(&alice_id).await.expect("connections").is_empty(),);
        assert!(
            passport
                .personal_access_tokens(&alice_id)
                .await
                .expect("PATs")
                .is_empty(),
        );
        assert_eq!(passport.revoke_all_tokens(&alice_id).await.expect("again").len(), 0);
        assert_user(
            &api_user(&server, access_token(&bobs)).await,
            &bob_id,
            BOB,
            "bob's token",
        );
    }
}

#[tokio::test]
async fn scope_helpers_describe_the_defined_scopes() {
    let server = start(passport_sqlx::testing::sqlite(), |b| b).await;
    let scopes = server.passport.scopes();
    let ids: Vec<&str> = SCOPES
        .iter()
        .chain(&passport::OPENID_SCOPES)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(
        scopes.scope_ids(),
        ids,
        "definition order, then the OpenID Connect scopes"
    );
    let described: Vec<(String, String)> = scopes.scopes().into_iter().map(|s| (s.id, s.description)).collect();
    let expected: Vec<(String, String)> = SCOPES
        .iter()
        .chain(&passport::OPENID_SCOPES)
        .map(|(id, d)| ((*id).to_owned(), (*d).to_owned()))
        .collect();
    assert_eq!(described, expected);
    let some: Vec<(String, String)> = scopes
        .scopes_for(["orders:read", "nope", "*", "read"])
        .into_iter()
        .map(|s| (s.id, s.description))
        .collect();
    assert_eq!(
        some,
        [
            ("orders:read".to_owned(), "Read your orders".to_owned()),
            ("read".to_owned(), "Read your data".to_owned()),
        ],
        "in the order asked, unknown ids and * skipped"
    );
    assert!(scopes.scopes_for([]).is_empty());
    for id in ["read", "write", "admin", "orders:read", "*"] {
        assert!(scopes.has_scope(id), "{id}");
    }
    for id in ["orders", "nope", "", "READ", "read "] {
        assert!(!scopes.has_scope(id), "{id:?}");
    }
    assert!(!scopes.inherited(), "inheritance is off by default");
}

/// A protected app on the server's `Passport`: `CheckToken` layers over scope paths.
async fn serve_scope_app(server: &TestServer) -> (String, tokio::task::JoinHandle<()>) {
    async fn can(token: BearerToken) -> Json<Value> {
        let probes = [
            "orders",
            "orders:read",
            "orders:read:summary",
            "orders:write",
            "billing",
        ];
        let can: serde_json::Map<String, Value> =
            probes.iter().map(|s| ((*s).to_owned(), token.can(s).into())).collect();
        Json(Value::Object(can))
    }
    let passport = &server.passport;
    let ok = || async { "ok" };
    let app = Router::new()
        .route("/orders", get(ok).layer(CheckToken::all(passport, ["orders"])))
        .route(
            "/orders/read",
            get(ok).layer(CheckToken::all(passport, ["orders:read"])),
        )
        .route(
            "/orders/read/summary",
            get(ok).layer(CheckToken::all(passport, ["orders:read:summary"])),
        )
        .route(
            "/orders/write",
            get(ok).layer(CheckToken::all(passport, ["orders:write"])),
        )
        .route(
            "/any",
            get(ok).layer(CheckToken::any(passport, ["billing", "orders:read"])),
        )
        .route("/can", get(can))
        .with_state(passport.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address: SocketAddr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{address}"), task)
}

#[tokio::test]
async fn inherited_scopes_let_a_parent_scope_satisfy_its_children() {
    const ORDER_SCOPES: [(&str, &str); 4] = [
        ("orders", "Manage your orders"),
        ("orders:read", "Read your orders"),
        ("orders:write", "Change your orders"),
        ("billing", "See your invoices"),
    ];
    for inherited in [true, false] {
        let server = start(passport_sqlx::testing::sqlite(), |b| {
            b.tokens_can(ORDER_SCOPES).with_inherited_scopes(inherited)
        })
        .await;
        assert_eq!(server.passport.scopes().inherited(), inherited);
        let (base, task) = serve_scope_app(&server).await;
        let service = server.service_client().await;
        let token_for = |scope: &'static str| {
            let server = &server;
            let service = &service;
            async move {
                let answer = token(
                    server,
                    &[
                        ("grant_type", "client_credentials"),
                        ("client_id", &service.0),
                        ("client_secret", &service.1),
                        ("scope", scope),
                    ],
                )
                .await;
                access_token(&assert_issued(&answer, scope)).to_owned()
            }
        };
        let parent = token_for("orders").await;
        let child = token_for("orders:read").await;
        let status = |path: &str, bearer: &str| {
            let request = server.http.get(format!("{base}{path}")).bearer_auth(bearer);
            async move { request.send().await.expect("request").status().as_u16() }
        };

        // `orders` passes checks for `orders:*` only with inheritance.
        let child_status = if inherited { 200 } else { 403 };
        assert_eq!(status("/orders", &parent).await, 200, "inherited={inherited}");
        for path in ["/orders/read", "/orders/read/summary", "/orders/write", "/any"] {
            assert_eq!(
                status(path, &parent).await,
                child_status,
                "inherited={inherited}: `orders` at {path}"
            );
        }
        // A child never satisfies its parent or a sibling.
        assert_eq!(status("/orders", &child).await, 403, "inherited={inherited}");
        assert_eq!(status("/orders/write", &child).await, 403, "inherited={inherited}");
        assert_eq!(status("/orders/read", &child).await, 200, "inherited={inherited}");
        assert_eq!(
            status("/orders/read/summary", &child).await,
            child_status,
            "inherited={inherited}: `orders:read` at orders:read:summary"
        );
        assert_eq!(status("/any", &child).await, 200, "inherited={inherited}");

        let response = server
            .http
            .get(format!("{base}/can"))
            .bearer_auth(&parent)
            .send()
            .await
            .expect("request");
        let can: Value = response.json().await.expect("json");
        assert_eq!(
            can,
            json!({
                "orders": true,
                "orders:read": inherited,
                "orders:read:summary": inherited,
                "orders:write": inherited,
                "billing": false,
            }),
            "inherited={inherited}"
        );
        task.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// 9. The dashboard in a real browser.
// ---------------------------------------------------------------------------------------------

/// Polls `check` every 100 ms for up to 10 s.
async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn count(browser: &fantoccini::Client, css: &str) -> usize {
    browser.find_all(Locator::Css(css)).await.expect("find_all").len()
}

async fn displayed(browser: &fantoccini::Client, css: &str) -> bool {
    browser
        .find(Locator::Css(css))
        .await
        .expect("element")
        .is_displayed()
        .await
        .expect("is_displayed")
}

async fn text_of(browser: &fantoccini::Client, css: &str) -> String {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .expect("text")
}

/// The text of an element the script may be re-rendering: `None` while it is missing or stale.
async fn try_text(browser: &fantoccini::Client, css: &str) -> Option<String> {
    browser.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

async fn fill(browser: &fantoccini::Client, css: &str, value: &str) {
    let field = browser.find(Locator::Css(css)).await.expect("field");
    field.clear().await.expect("clear");
    field.send_keys(value).await.expect("type");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_manages_apps_and_tokens_in_a_real_browser() {
    let Some(driver) = start_driver("dashboard test") else {
        return;
    };
    let server = start(passport_sqlx::testing::sqlite(), |b| b).await;
    let alice_id = server.user(ALICE, PASSWORD).await;
    pat_client(&server).await;
    let browser = open_browser(&driver, "1200,1500").await;

    // A guest is sent to sign in and comes back to the dashboard.
    browser.goto(&server.url("/account")).await.expect("goto");
    wait_until("the login page", || async {
        browser
            .current_url()
            .await
            .is_ok_and(|u| u.as_str().starts_with(&server.url("/login")))
    })
    .await;
    fill(&browser, "input[name=email]", ALICE).await;
    fill(&browser, "input[name=password]", PASSWORD).await;
    click(&browser, "button[type=submit]").await;
    browser
        .wait()
        .for_element(Locator::Css("#client-name"))
        .await
        .expect("the dashboard");
    assert!(
        browser.current_url().await.expect("url").as_str().ends_with("/account"),
        "back at /account"
    );
    wait_until("the scopes are loaded", || async {
        count(&browser, "#pat-scopes input[name=scope]").await == SCOPES.len() + passport::OPENID_SCOPES.len()
    })
    .await;
    assert!(!displayed(&browser, "#client-secret-box").await, "no secret box yet");
    assert!(!displayed(&browser, "#pat-box").await, "no token box yet");
    assert!(!displayed(&browser, "#error").await, "no error box");
    assert!(
        !displayed(&browser, "#client-cancel").await,
        "no Cancel button outside editing"
    );

    // Create an app: its secret is shown once, and it is listed.
    fill(&browser, "#client-name", "Acme Reports").await;
    fill(&browser, "#client-redirect", "https://acme.example/callback").await;
    click(&browser, "#client-save").await;
    wait_until("the secret is shown", || async {
        displayed(&browser, "#client-secret-box").await
    })
    .await;
    let secret = text_of(&browser, "#client-secret").await;
    assert_eq!(secret.len(), 40, "a 40-character secret: {secret:?}");
    assert!(secret.chars().all(|c| c.is_ascii_alphanumeric()), "{secret:?}");
    wait_until("the app is listed", || async {
        count(&browser, "#clients tr[data-id]").await == 1
    })
    .await;
    let row = text_of(&browser, "#clients tr[data-id]").await;
    assert!(
        row.contains("Acme Reports") && row.contains("https://acme.example/callback"),
        "{row}"
    );
    let owned = server.db.store().clients_owned_by(&alice_id).await.expect("clients");
    assert_eq!(owned.len(), 1);
    assert_eq!(owned[0].name, "Acme Reports");
    assert!(row.contains(owned[0].id.as_str()), "the client id is shown: {row}");
    let hash = owned[0].secret_hash.clone().expect("hashed secret");
    assert!(
        passport::verify_client_secret(&hash, &secret).await,
        "the shown secret is the app's"
    );

    // Reload: the secret is gone for good.
    browser.refresh().await.expect("reload");
    wait_until("the app is listed again", || async {
        count(&browser, "#clients tr[data-id]").await == 1
    })
    .await;
    assert!(
        !displayed(&browser, "#client-secret-box").await,
        "the secret box is hidden"
    );
    let source = browser.source().await.expect("source");
    assert!(
        !source.contains(&secret),
        "the secret is not in the page after a reload"
    );

    // Edit the app.
    click(&browser, "#clients tr[data-id] button.edit").await;
    let name_field = browser.find(Locator::Css("#client-name")).await.expect("name");
    assert_eq!(
        name_field.prop("value").await.expect("value").as_deref(),
        Some("Acme Reports")
    );
    assert!(displayed(&browser, "#client-cancel").await, "Cancel while editing");
    assert_eq!(text_of(&browser, "#client-save").await, "Save changes");
    fill(&browser, "#client-name", "Acme Reports 2").await;
    click(&browser, "#client-save").await;
    wait_until("the app is renamed", || async {
        try_text(&browser, "#clients tr[data-id]")
            .await
            .is_some_and(|row| row.contains("Acme Reports 2"))
    })
    .await;
    assert!(!displayed(&browser, "#client-cancel").await, "editing is over");
    assert_eq!(text_of(&browser, "#client-save").await, "Create application");

    // Create a personal access token with one scope.
    wait_until("the scopes are loaded", || async {
        count(&browser, "#pat-scopes input[name=scope]").await == SCOPES.len() + passport::OPENID_SCOPES.len()
    })
    .await;
    fill(&browser, "#pat-name", "Deploy script").await;
    click(&browser, "#pat-scopes input[name=scope][value=read]").await;
    click(&browser, "#pat-create").await;
    wait_until("the token is shown", || async { displayed(&browser, "#pat-box").await }).await;
    let pat = text_of(&browser, "#pat-token").await;
    assert_eq!(claims(&pat)["scopes"], json!(["read"]), "the checked scope");
    let pat_id = jti(&pat);
    wait_until("the token is listed", || async {
        count(&browser, &format!("#pats tr[data-id='{pat_id}']")).await == 1
    })
    .await;
    let row = text_of(&browser, &format!("#pats tr[data-id='{pat_id}']")).await;
    assert!(row.contains("Deploy script") && row.contains("read"), "{row}");
    assert_user(
        &api_user(&server, &pat).await,
        &alice_id,
        ALICE,
        "the PAT from the dashboard",
    );
    assert!(!displayed(&browser, "#error").await, "no error shown");

    let screenshot = browser.screenshot().await.expect("screenshot");
    assert!(screenshot.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(artifact_dir().join("dashboard.png"), &screenshot).expect("save screenshot");

    // Revoke it: the row goes away and the token stops working.
    click(&browser, &format!("#pats tr[data-id='{pat_id}'] button.revoke")).await;
    wait_until("the token row disappears", || async {
        count(&browser, &format!("#pats tr[data-id='{pat_id}']")).await == 0
    })
    .await;
    assert_refused(&api_user(&server, &pat).await, "a PAT revoked from the dashboard");
    assert!(!displayed(&browser, "#error").await, "no error shown");

    browser.close().await.expect("close browser");
}
