//! The device authorization grant (RFC 8628), end to end: the device authorization request
//! (`POST /oauth/device/code`), polling the token endpoint (moving the mock clock instead of
//! sleeping), the person's side over HTTP (user-code page, login, device consent, approve /
//! deny, CSRF, single-use `auth_token`, brute-force limits), a run with the third-party
//! `oauth2` crate as the device, and the person's side in a real headless Chromium.
//!
//! A [`Browser`] is a cookie-holding HTTP client that never follows redirects, so every hop of
//! the person's side is checked; forms are read out of the served HTML, as a browser would.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use fantoccini::Locator;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, ClientId, DeviceAuthorizationUrl, Scope, StandardDeviceAuthorizationResponse, TokenResponse as _,
    TokenUrl,
};
use passport::{ClientKind, NewClient, SystemClock, USER_CODE_ALPHABET};
use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};
use sqlx::{Connection as _, Row as _};

use crate::common::{TestServer, api_user, create_client};
use crate::support_browser::{artifact_dir, click, open_browser, start_driver, type_into, wait_for_url};
use crate::support_web::{Browser, Page};

const EMAIL: &str = "dana@example.com";
const PASSWORD: &str = "the remote is under the sofa";
const OTHER_EMAIL: &str = "eve@example.com";
const OTHER_PASSWORD: &str = "another long passphrase";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const DEVICE_CLIENT_NAME: &str = "Living Room TV";
/// What the entry page says about a code that leads nowhere.
const WRONG_CODE: &str = "That code is wrong or has expired.";

// ---------------------------------------------------------------------------------------------
// JSON answers of the device endpoints.
// ---------------------------------------------------------------------------------------------

/// A JSON answer (device authorization or token endpoint), read completely.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
}

impl Answer {
    async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.expect("body");
        let json = serde_json::from_str(&body).unwrap_or_else(|_| panic!("a JSON body, got {status}: {body}"));
        Self { status, headers, json }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().expect("ASCII header"))
    }

    fn error(&self) -> Option<&str> {
        self.json["error"].as_str()
    }

    /// An OAuth error: this status and code, a description, no token.
    fn assert_error(&self, status: u16, code: &str, what: &str) {
        assert_eq!(
            (self.status.as_u16(), self.error()),
            (status, Some(code)),
            "{what}: expected {status} {code}, got {} {}",
            self.status,
            self.json
        );
        assert!(
            self.json["error_description"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: error_description in {}",
            self.json
        );
        assert!(
            self.json.get("access_token").is_none(),
            "{what}: no token with an error"
        );
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "{what}: JSON error, got {:?}",
            self.header("content-type")
        );
    }

    /// A token response: 200, bearer access token and refresh token, not cacheable.
    fn assert_tokens(&self, what: &str) {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "{what}: tokens expected, got {}",
            self.json
        );
        assert_eq!(self.json["token_type"], "Bearer", "{what}: token_type");
        assert!(
            self.json["expires_in"].as_i64().is_some_and(|e| e > 0),
            "{what}: expires_in"
        );
        assert!(
            self.json["access_token"].as_str().is_some_and(|t| !t.is_empty()),
            "{what}: access_token"
        );
        assert!(
            self.json["refresh_token"].as_str().is_some_and(|t| !t.is_empty()),
            "{what}: refresh_token"
        );
        assert_eq!(self.header("cache-control"), Some("no-store"), "{what}: Cache-Control");
        assert_eq!(self.header("pragma"), Some("no-cache"), "{what}: Pragma");
    }

    fn str(&self, name: &str) -> String {
        self.json[name]
            .as_str()
            .unwrap_or_else(|| panic!("{name} in {}", self.json))
            .to_owned()
    }
}

/// The device's view of a device authorization response.
#[derive(Debug, Clone)]
struct Device {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: String,
}

/// `POST /oauth/device/code` with this form.
async fn device_request(server: &TestServer, form: &[(&str, &str)]) -> Answer {
    let response = server
        .http
        .post(server.url("/oauth/device/code"))
        .form(form)
        .send()
        .await
        .expect("device code request");
    Answer::read(response).await
}

/// A successful device authorization request for the public client `client_id` (and `scope`).
async fn start_device(server: &TestServer, client_id: &str, scope: Option<&str>) -> Device {
    start_device_as(server, client_id, None, scope).await
}

/// The same for a client that authenticates with `secret` (RFC 8628 §3.1: a confidential
/// client authenticates as at the token endpoint, RFC 6749 §2.3).
async fn start_device_as(server: &TestServer, client_id: &str, secret: Option<&str>, scope: Option<&str>) -> Device {
    let mut form = vec![("client_id", client_id)];
    if let Some(secret) = secret {
        form.push(("client_secret", secret));
    }
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let answer = device_request(server, &form).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "device authorization request: {}",
        answer.json
    );
    Device {
        device_code: answer.str("device_code"),
        user_code: answer.str("user_code"),
        verification_uri: answer.str("verification_uri"),
        verification_uri_complete: answer.str("verification_uri_complete"),
    }
}

/// The device polls the token endpoint.
async fn poll(server: &TestServer, client_id: &str, secret: Option<&str>, device_code: &str) -> Answer {
    let mut form = vec![
        ("grant_type", DEVICE_GRANT),
        ("client_id", client_id),
        ("device_code", device_code),
    ];
    if let Some(secret) = secret {
        form.push(("client_secret", secret));
    }
    Answer::read(server.token(&form).await).await
}

/// Records the person's decision through the library (no pages involved).
async fn decide_directly(server: &TestServer, user_code: &str, user_id: &str, approve: bool) {
    let record = server
        .passport
        .find_device_authorization(user_code)
        .await
        .expect("lookup")
        .unwrap_or_else(|| panic!("{user_code} is pending"));
    assert!(
        server
            .passport
            .decide_device(&record.id, user_id, approve)
            .await
            .expect("decide"),
        "the decision is recorded"
    );
}

/// A public device client named [`DEVICE_CLIENT_NAME`].
async fn public_device_client(server: &TestServer) -> String {
    create_client(
        server,
        NewClient::new(DEVICE_CLIENT_NAME, ClientKind::Device).public(true),
    )
    .await
    .0
}

/// Rows of `oauth_device_codes` as (id, user_code), read with plain SQL.
async fn device_code_rows(kind: &str, url: &str) -> Vec<(String, String)> {
    let sql = "SELECT id, user_code FROM oauth_device_codes";
    let rows: Vec<(String, String)> = if kind == "sqlite" {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("connect");
        let rows = sqlx::query(sql).fetch_all(&mut conn).await.expect("select");
        rows.iter()
            .map(|r| (r.get::<String, _>("id"), r.get::<String, _>("user_code")))
            .collect()
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
        let rows = sqlx::query(sql).fetch_all(&mut conn).await.expect("select");
        rows.iter()
            .map(|r| (r.get::<String, _>("id"), r.get::<String, _>("user_code")))
            .collect()
    };
    rows
}

/// How many access tokens a client holds, read with plain SQL.
async fn access_token_count(kind: &str, url: &str, client_id: &str) -> i64 {
    let sql = "SELECT COUNT(*) AS n FROM oauth_access_tokens WHERE client_id = $1";
    if kind == "sqlite" {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("connect");
        sqlx::query(sql)
            .bind(client_id)
            .fetch_one(&mut conn)
            .await
            .expect("count")
            .get::<i64, _>("n")
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
        sqlx::query(sql)
            .bind(client_id)
            .fetch_one(&mut conn)
            .await
            .expect("count")
            .get::<i64, _>("n")
    }
}

/// `XXXX-XXXX` from the user-code alphabet.
fn assert_user_code_format(code: &str, what: &str) {
    let (left, right) = code
        .split_once('-')
        .unwrap_or_else(|| panic!("{what}: {code:?} is XXXX-XXXX"));
    assert!(left.len() == 4 && right.len() == 4, "{what}: {code:?} is XXXX-XXXX");
    assert!(
        left.bytes()
            .chain(right.bytes())
            .all(|b| USER_CODE_ALPHABET.contains(&b)),
        "{what}: {code:?} uses only BCDFGHJKLMNPQRSTVWXZ"
    );
    assert_eq!(USER_CODE_ALPHABET, b"BCDFGHJKLMNPQRSTVWXZ");
}

/// A user code from the alphabet that is (almost certainly) not issued.
fn unissued_user_code(issued: &[&str]) -> String {
    ["ZZZZ-ZZZZ", "XXXX-XXXX", "WWWW-WWWW"]
        .into_iter()
        .find(|c| !issued.contains(c))
        .expect("a free code")
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// The person: a browser of `support_web` (cookies kept, redirects not followed).
// ---------------------------------------------------------------------------------------------

/// Checks on the person's pages.
impl Page {
    /// A 302 to `target` (a path on the server).
    fn assert_redirect(&self, target: &str, what: &str) {
        assert_eq!(
            (self.status, self.location()),
            (StatusCode::FOUND, Some(target)),
            "{what}: a redirect to {target}\n{}",
            self.body
        );
    }

    /// The user-code entry form: a GET form to the device consent page with a `user_code`
    /// field holding `value`.
    fn assert_entry_form(&self, value: &str, what: &str) {
        self.assert_html_page(what);
        let forms = self.forms();
        let form = forms
            .iter()
            .find(|f| f.get("user_code").is_some())
            .unwrap_or_else(|| panic!("{what}: a form with a user_code field:\n{}", self.body));
        assert!(form.method.eq_ignore_ascii_case("GET"), "{what}: a GET form");
        assert_eq!(form.action, "/oauth/device/authorize", "{what}: form action");
        assert_eq!(form.get("user_code"), Some(value), "{what}: the field's value");
    }

    /// The device consent page: 200, both forms, the client's name and the user code.
    fn assert_consent(&self, client_name: &str, user_code: &str, what: &str) {
        assert_eq!(self.status, StatusCode::OK, "{what}: the consent page\n{}", self.body);
        self.assert_html_page(what);
        assert!(
            self.body.contains(client_name),
            "{what}: names the client\n{}",
            self.body
        );
        assert!(
            self.body.contains(user_code),
            "{what}: shows {user_code}\n{}",
            self.body
        );
        let approve = self.approve_form(what);
        let deny = self.deny_form(what);
        for form in [&approve, &deny] {
            assert!(form.method.eq_ignore_ascii_case("POST"), "{what}: POST forms");
            assert_eq!(form.action, "/oauth/device/authorize", "{what}: form action");
            assert!(form.get("_token").is_some_and(|t| !t.is_empty()), "{what}: _token");
            assert!(
                form.get("auth_token").is_some_and(|t| t.len() >= 32),
                "{what}: auth_token"
            );
        }
        assert_eq!(
            approve.get("auth_token"),
            deny.get("auth_token"),
            "{what}: one auth_token"
        );
    }

    /// The page after a decision: 200, and it sends the person back to their device.
    fn assert_done(&self, approved: bool, what: &str) {
        assert_eq!(self.status, StatusCode::OK, "{what}: the done page\n{}", self.body);
        self.assert_html_page(what);
        let heading = if approved { "Device connected" } else { "Request denied" };
        assert!(self.body.contains(heading), "{what}: {heading}\n{}", self.body);
        assert!(
            self.body.contains("return to your device") || self.body.contains("return to it"),
            "{what}: tells the person to return to the device\n{}",
            self.body
        );
    }

    /// A 4xx page that is not a redirect.
    fn assert_client_error(&self, status: u16, what: &str) {
        assert_eq!(self.status.as_u16(), status, "{what}: status\n{}", self.body);
        assert_eq!(self.location(), None, "{what}: no redirect");
        self.assert_html_page(what);
    }
}

/// The person's side of the device flow.
impl Browser {
    /// Types `typed` into the user-code form and submits it (a GET form, so the value is
    /// form-encoded into the query as a browser does).
    async fn enter_code(&self, typed: &str) -> Page {
        let mut url = Url::parse(&self.url("/oauth/device/authorize")).expect("url");
        url.query_pairs_mut().append_pair("user_code", typed);
        self.get(url.as_str()).await
    }
}

/// `path?user_code=…` form-encoded as a GET form would.
fn with_user_code(path: &str, typed: &str) -> String {
    let mut url = Url::parse(&format!("http://x{path}")).expect("url");
    url.query_pairs_mut().append_pair("user_code", typed);
    format!("{}?{}", url.path(), url.query().unwrap_or_default())
}

// ---------------------------------------------------------------------------------------------
// 1. The device authorization request.
// ---------------------------------------------------------------------------------------------

backend_test! {
    async fn device_authorization_response_follows_rfc_8628(db) {
        let server = TestServer::start_default(db).await;
        let (public_id, _) = server.client(ClientKind::Device, true).await;
        let (confidential_id, secret) = server.client(ClientKind::Device, false).await;
        assert!(secret.is_some(), "a confidential device client has a secret");
        let (web_id, web_secret) = create_client(
            &server,
            NewClient::new("Web and TV", ClientKind::AuthorizationCode { device_flow: true })
                .redirect_uris(["https://client.example/callback"]),
        )
        .await;
        let (secret, web_secret) = (secret.unwrap_or_default(), web_secret.unwrap_or_default());

        let mut device_codes = Vec::new();
        let mut user_codes = Vec::new();
        for (client_id, client_secret, label) in [
            (&public_id, None, "public device client"),
            (&confidential_id, Some(secret.as_str()), "confidential device client"),
            (&web_id, Some(web_secret.as_str()), "auth-code client with the device flow"),
        ] {
            let what = label;
            let mut form = vec![("client_id", client_id.as_str()), ("scope", "read write")];
            form.extend(client_secret.map(|s| ("client_secret", s)));
            let answer = device_request(&server, &form).await;
            assert_eq!(answer.status, StatusCode::OK, "{what}: {}", answer.json);
            assert!(
                answer
                    .header("content-type")
                    .is_some_and(|c| c.starts_with("application/json")),
                "{what}: JSON"
            );
            assert_eq!(
                answer.header("cache-control"),
                Some("no-store"),
                "{what}: Cache-Control"
            );
            assert_eq!(answer.header("pragma"), Some("no-cache"), "{what}: Pragma");

            let device_code = answer.str("device_code");
            assert!(
                device_code.len() >= 40 && device_code.bytes().all(|b| b.is_ascii_alphanumeric()),
                "{what}: a long opaque device code, got {device_code:?}"
            );
            let user_code = answer.str("user_code");
            assert_user_code_format(&user_code, what);
            let verification_uri = answer.str("verification_uri");
            assert_eq!(
                verification_uri,
                server.url("/oauth/device"),
                "{what}: verification_uri"
            );
            assert!(
                Url::parse(&verification_uri).is_ok_and(|u| u.has_host()),
                "{what}: verification_uri is absolute"
            );
            assert_eq!(
                answer.str("verification_uri_complete"),
                format!("{verification_uri}?user_code={user_code}"),
                "{what}: verification_uri_complete"
            );
            assert_eq!(answer.json["expires_in"], 600, "{what}: expires_in");
            assert_eq!(answer.json["interval"], 5, "{what}: interval");
            assert!(answer.json.get("access_token").is_none(), "{what}: no token yet");
            device_codes.push(device_code);
            user_codes.push(user_code);
        }
        device_codes.sort();
        device_codes.dedup();
        assert_eq!(device_codes.len(), 3, "every device code is fresh");
        user_codes.sort();
        user_codes.dedup();
        assert_eq!(user_codes.len(), 3, "every user code is fresh");

        // No scope asked: fine (no default scopes here); the client id may come by Basic auth
        // too (Passport reads the Basic user name), and JSON bodies are read like forms.
        let answer = device_request(&server, &[("client_id", &public_id)]).await;
        assert_eq!(answer.status, StatusCode::OK, "no scope: {}", answer.json);
        let response = server
            .http
            .post(server.url("/oauth/device/code"))
            .basic_auth(&public_id, Some(""))
            .form(&[("scope", "read")])
            .send()
            .await
            .expect("request");
        let answer = Answer::read(response).await;
        assert_eq!(answer.status, StatusCode::OK, "client id by Basic: {}", answer.json);
        let response = server
            .http
            .post(server.url("/oauth/device/code"))
            .json(&json!({"client_id": public_id, "scope": "read"}))
            .send()
            .await
            .expect("request");
        let answer = Answer::read(response).await;
        assert_eq!(answer.status, StatusCode::OK, "JSON body: {}", answer.json);
    }
}

#[tokio::test]
async fn verification_uri_uses_the_configured_issuer() {
    let db = passport_sqlx::testing::sqlite();
    let server = TestServer::start(db, |b| b.issuer("https://auth.example.com/")).await;
    let client_id = public_device_client(&server).await;
    let device = start_device(&server, &client_id, None).await;
    assert_eq!(device.verification_uri, "https://auth.example.com/oauth/device");
    assert_eq!(
        device.verification_uri_complete,
        format!("https://auth.example.com/oauth/device?user_code={}", device.user_code)
    );
}

backend_test! {
    async fn device_authorization_errors(db) {
        let server = TestServer::start_default(db).await;
        let device_id = public_device_client(&server).await;
        let (service_id, service_secret) = server.service_client().await;
        let (code_only_id, code_only_secret) = server
            .client(ClientKind::AuthorizationCode { device_flow: false }, false)
            .await;
        let code_only_secret = code_only_secret.expect("confidential");
        let (password_id, password_secret) = server.password_client().await;

        device_request(&server, &[("client_id", "00000000-0000-0000-0000-000000000000")])
            .await
            .assert_error(401, "invalid_client", "unknown client");
        device_request(&server, &[("client_id", "not a uuid at all")])
            .await
            .assert_error(401, "invalid_client", "malformed client id");
        // RFC 8628 §3.1 / RFC 6749 §2.3.1: a confidential client authenticates first, so its
        // grant types are told only to itself (security review: a wrong or missing secret got a
        // device code in the client's name).
        for (id, secret, label) in [
            (&service_id, &service_secret, "client credentials client"),
            (&code_only_id, &code_only_secret, "auth-code client without the device flow"),
            (&password_id, &password_secret, "password client"),
        ] {
            let missing = device_request(&server, &[("client_id", id)]).await;
            missing.assert_error(400, "invalid_request", &format!("{label} without its secret"));
            assert_eq!(missing.json["hint"], "Check the `client_secret` parameter");
            device_request(&server, &[("client_id", id), ("client_secret", "wrong")])
                .await
                .assert_error(401, "invalid_client", &format!("{label} with a wrong secret"));
            device_request(&server, &[("client_id", id), ("client_secret", secret)])
                .await
                .assert_error(400, "unauthorized_client", &format!("{label} with its secret"));
        }
        let (device_confidential, _) = server.client(ClientKind::Device, false).await;
        device_request(&server, &[("client_id", &device_confidential), ("client_secret", "wrong")])
            .await
            .assert_error(401, "invalid_client", "a device client with a wrong secret gets no code");
        device_request(&server, &[("client_id", &device_id), ("scope", "read teleport")])
            .await
            .assert_error(400, "invalid_scope", "unknown scope");
        device_request(&server, &[("scope", "read")])
            .await
            .assert_error(400, "invalid_request", "missing client_id");
        device_request(&server, &[("client_id", ""), ("scope", "read")])
            .await
            .assert_error(400, "invalid_request", "empty client_id");

        // A revoked client is unknown.
        let revoked = public_device_client(&server).await;
        assert!(server.db.store().revoke_client(&revoked).await.expect("revoke"));
        device_request(&server, &[("client_id", &revoked)])
            .await
            .assert_error(401, "invalid_client", "revoked client");

        // Only POST.
        let response = server
            .http
            .get(server.url("/oauth/device/code?client_id=x"))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "GET /device/code");
    }
}

backend_test! {
    async fn device_codes_are_stored_only_as_hashes(db) {
        let (kind, url) = (db.kind, db.url.clone());
        let server = TestServer::start_default(db).await;
        let client_id = public_device_client(&server).await;
        let first = start_device(&server, &client_id, Some("read orders:read")).await;
        let second = start_device(&server, &client_id, None).await;

        let rows = device_code_rows(kind, &url).await;
        assert_eq!(rows.len(), 2, "two rows");
        for device in [&first, &second] {
            let hash = passport::sha256_hex(&device.device_code);
            assert!(
                rows.iter().all(|(id, _)| id != &device.device_code),
                "the device code itself is never a row id"
            );
            assert!(
                rows.iter().any(|(id, _)| id == &hash),
                "the row id is the SHA-256 of the device code"
            );
            for (id, user_code) in &rows {
                assert!(
                    !id.contains(&device.device_code) && !user_code.contains(&device.device_code),
                    "the device code appears nowhere"
                );
            }
        }

        let record = server
            .db
            .store()
            .find_device_code(&passport::sha256_hex(&first.device_code))
            .await
            .expect("find")
            .expect("stored under its hash");
        assert_eq!(record.client_id, client_id, "client");
        assert_eq!(record.scopes, ["read", "orders:read"], "scopes");
        assert_eq!(record.user_code, first.user_code.replace('-', ""), "user code");
        assert_eq!(record.interval, 5, "interval");
        assert_eq!(record.user_id, None, "undecided");
        assert!(!record.revoked, "live");
        assert_eq!(record.expires_at - record.created_at, TimeDelta::minutes(10), "TTL");
        assert!(
            server
                .db
                .store()
                .find_device_code(&first.device_code)
                .await
                .expect("find")
                .is_none(),
            "nothing is found under the plain device code"
        );
    }
}

backend_test! {
    async fn device_code_endpoint_is_rate_limited(db) {
        let server = TestServer::start(db, |b| b.token_rate_limit(2)).await;
        let client_id = public_device_client(&server).await;
        for attempt in 1..=2 {
            let answer = device_request(&server, &[("client_id", &client_id)]).await;
            assert_eq!(answer.status, StatusCode::OK, "request {attempt}: {}", answer.json);
        }
        let answer = device_request(&server, &[("client_id", &client_id)]).await;
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS, "third request");
        assert!(
            answer.header("retry-after").is_some_and(|s| s.parse::<u64>().is_ok()),
            "Retry-After"
        );
        assert!(answer.error().is_some(), "a JSON error body");
        assert!(answer.json.get("device_code").is_none(), "no code when limited");
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Polling (mock clock, no sleeping).
// ---------------------------------------------------------------------------------------------

backend_test! {
    async fn polling_follows_rfc_8628(db) {
        let server = TestServer::start_default(db).await;
        let user_id = server.user(EMAIL, PASSWORD).await;
        let client_id = public_device_client(&server).await;
        let stored_interval = |device: &Device| {
            let store = server.db.store().clone();
            let id = passport::sha256_hex(&device.device_code);
            async move {
                store
                    .find_device_code(&id)
                    .await
                    .expect("find")
                    .expect("stored")
                    .interval
            }
        };

        // Before the person acts: pending; too fast: slow_down, and the interval grows by 5 s
        // for this and every later poll.
        let a = start_device(&server, &client_id, Some("read")).await;
        poll(&server, &client_id, None, &a.device_code)
            .await
            .assert_error(400, "authorization_pending", "first poll");
        poll(&server, &client_id, None, &a.device_code)
            .await
            .assert_error(400, "slow_down", "polled again at once");
        assert_eq!(stored_interval(&a).await, 10, "interval after one slow_down");
        server.advance(TimeDelta::seconds(6));
        poll(&server, &client_id, None, &a.device_code).await.assert_error(
            400,
            "slow_down",
            "6 s later, interval is 10",
        );
        assert_eq!(stored_interval(&a).await, 15, "interval after two slow_downs");
        server.advance(TimeDelta::seconds(15));
        poll(&server, &client_id, None, &a.device_code)
            .await
            .assert_error(400, "authorization_pending", "15 s later");
        server.advance(TimeDelta::seconds(11));
        poll(&server, &client_id, None, &a.device_code).await.assert_error(
            400,
            "slow_down",
            "11 s later, the raised interval (15) still applies",
        );

        // The brief's sequence on a fresh code: slow_down, then 11 s later pending.
        let b = start_device(&server, &client_id, Some("read")).await;
        poll(&server, &client_id, None, &b.device_code).await.assert_error(
            400,
            "authorization_pending",
            "b first poll",
        );
        poll(&server, &client_id, None, &b.device_code)
            .await
            .assert_error(400, "slow_down", "b too fast");
        server.advance(TimeDelta::seconds(11));
        poll(&server, &client_id, None, &b.device_code).await.assert_error(
            400,
            "authorization_pending",
            "b 11 s later",
        );
        // Exactly the interval later is allowed.
        server.advance(TimeDelta::seconds(10));
        poll(&server, &client_id, None, &b.device_code).await.assert_error(
            400,
            "authorization_pending",
            "b exactly 10 s later",
        );
        assert_eq!(stored_interval(&b).await, 10, "b's interval");
        // Each code has its own interval: a fresh code starts at 5.
        let c = start_device(&server, &client_id, None).await;
        assert_eq!(stored_interval(&c).await, 5, "a fresh code's interval");
        poll(&server, &client_id, None, &c.device_code).await.assert_error(
            400,
            "authorization_pending",
            "c first poll",
        );
        server.advance(TimeDelta::seconds(5));
        poll(&server, &client_id, None, &c.device_code)
            .await
            .assert_error(400, "authorization_pending", "c 5 s later");

        // Denied: access_denied with HTTP 400 (RFC 8628 §3.5), for good.
        let denied = start_device(&server, &client_id, Some("read")).await;
        decide_directly(&server, &denied.user_code, &user_id, false).await;
        for attempt in 1..=2 {
            server.advance(TimeDelta::seconds(6));
            poll(&server, &client_id, None, &denied.device_code).await.assert_error(
                400,
                "access_denied",
                &format!("denied, poll {attempt}"),
            );
        }

        // Approved: the tokens, exactly once.
        let approved = start_device(&server, &client_id, Some("read write")).await;
        poll(&server, &client_id, None, &approved.device_code)
            .await
            .assert_error(400, "authorization_pending", "before approval");
        decide_directly(&server, &approved.user_code, &user_id, true).await;
        server.advance(TimeDelta::seconds(5));
        let tokens = poll(&server, &client_id, None, &approved.device_code).await;
        tokens.assert_tokens("after approval");
        let (status, me) = api_user(&server, &tokens.str("access_token")).await;
        assert_eq!(status, StatusCode::OK, "the token works: {me}");
        assert_eq!(me["email"], EMAIL, "the token is the person's");
        for attempt in 1..=2 {
            server.advance(TimeDelta::seconds(6));
            poll(&server, &client_id, None, &approved.device_code)
                .await
                .assert_error(
                    400,
                    "invalid_grant",
                    &format!("poll {attempt} after the tokens were issued"),
                );
        }
        // The refresh token works like any other.
        let refreshed = Answer::read(
            server
                .token(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", &client_id),
                    ("refresh_token", &tokens.str("refresh_token")),
                ])
                .await,
        )
        .await;
        refreshed.assert_tokens("refresh after the device grant");

        // Expired: expired_token, whether pending or approved but never collected.
        let pending = start_device(&server, &client_id, None).await;
        let uncollected = start_device(&server, &client_id, None).await;
        decide_directly(&server, &uncollected.user_code, &user_id, true).await;
        server.advance(TimeDelta::minutes(11));
        for (device, label) in [(&pending, "pending"), (&uncollected, "approved")] {
            poll(&server, &client_id, None, &device.device_code).await.assert_error(
                400,
                "expired_token",
                &format!("{label} code after 11 minutes"),
            );
        }
        // And an expired code can no longer be found by the person.
        assert!(
            server
                .passport
                .find_device_authorization(&pending.user_code)
                .await
                .expect("lookup")
                .is_none(),
            "expired user codes lead nowhere"
        );
    }
}

backend_test! {
    async fn polling_clients_authenticate_and_use_their_own_codes(db) {
        let server = TestServer::start_default(db).await;
        let user_id = server.user(EMAIL, PASSWORD).await;
        let (confidential_id, secret) = server.client(ClientKind::Device, false).await;
        let secret = secret.expect("confidential");
        let public_id = public_device_client(&server).await;

        // A confidential device client must authenticate when polling.
        let device = start_device_as(&server, &confidential_id, Some(&secret), Some("read")).await;
        poll(&server, &confidential_id, None, &device.device_code)
            .await
            .assert_error(400, "invalid_request", "missing secret");
        let wrong = poll(&server, &confidential_id, Some("wrong secret"), &device.device_code).await;
        wrong.assert_error(401, "invalid_client", "wrong secret");
        let response = server
            .http
            .post(server.url("/oauth/token"))
            .basic_auth(&confidential_id, Some("wrong secret"))
            .form(&[("grant_type", DEVICE_GRANT), ("device_code", &device.device_code)])
            .send()
            .await
            .expect("request");
        let answer = Answer::read(response).await;
        answer.assert_error(401, "invalid_client", "wrong secret by Basic");
        assert!(
            answer.header("www-authenticate").is_some(),
            "WWW-Authenticate after Basic"
        );
        // None of these counted as polls: the first authenticated one is pending.
        poll(&server, &confidential_id, Some(&secret), &device.device_code)
            .await
            .assert_error(400, "authorization_pending", "right secret");
        decide_directly(&server, &device.user_code, &user_id, true).await;
        let response = server
            .http
            .post(server.url("/oauth/token"))
            .basic_auth(&confidential_id, Some(&secret))
            .form(&[("grant_type", DEVICE_GRANT), ("device_code", &device.device_code)])
            .send()
            .await
            .expect("request");
        Answer::read(response)
            .await
            .assert_tokens("confidential client by Basic");

        // A public one needs no secret.
        let device = start_device(&server, &public_id, Some("read")).await;
        poll(&server, &public_id, None, &device.device_code).await.assert_error(
            400,
            "authorization_pending",
            "public client",
        );

        // Another client's device code is not yours, and trying does not count as a poll.
        let theirs = start_device(&server, &public_id, Some("read")).await;
        poll(&server, &confidential_id, Some(&secret), &theirs.device_code)
            .await
            .assert_error(400, "invalid_grant", "another client's code");
        poll(&server, &public_id, None, &theirs.device_code).await.assert_error(
            400,
            "authorization_pending",
            "the owner's first poll is not slowed down",
        );
        decide_directly(&server, &theirs.user_code, &user_id, true).await;
        poll(&server, &confidential_id, Some(&secret), &theirs.device_code)
            .await
            .assert_error(400, "invalid_grant", "another client's approved code");
        poll(&server, &public_id, None, &theirs.device_code)
            .await
            .assert_tokens("the owner still gets the tokens");

        // Bad requests.
        let answer = Answer::read(
            server
                .token(&[("grant_type", DEVICE_GRANT), ("client_id", &public_id)])
                .await,
        )
        .await;
        answer.assert_error(400, "invalid_request", "missing device_code");
        poll(&server, &public_id, None, "0123456789abcdef").await.assert_error(
            400,
            "invalid_grant",
            "unknown device code",
        );
        let (service_id, service_secret) = server.service_client().await;
        poll(&server, &service_id, Some(&service_secret), &device.device_code)
            .await
            .assert_error(400, "unauthorized_client", "client without the grant");
        poll(
            &server,
            "00000000-0000-0000-0000-000000000000",
            None,
            &device.device_code,
        )
        .await
        .assert_error(401, "invalid_client", "unknown client");
    }
}

backend_test! {
    #[flavor(multi_thread, 4)]
    async fn parallel_polls_after_approval_yield_one_token(db) {
        const N: usize = 10;
        let (kind, url) = (db.kind, db.url.clone());
        let server = TestServer::start_default(db).await;
        let user_id = server.user(EMAIL, PASSWORD).await;
        let client_id = public_device_client(&server).await;
        let device = start_device(&server, &client_id, Some("read")).await;
        decide_directly(&server, &device.user_code, &user_id, true).await;

        let barrier = Arc::new(tokio::sync::Barrier::new(N));
        let mut tasks = Vec::new();
        for _ in 0..N {
            let http = server.http.clone();
            let token_url = server.url("/oauth/token");
            let form = vec![
                ("grant_type".to_owned(), DEVICE_GRANT.to_owned()),
                ("client_id".to_owned(), client_id.clone()),
                ("device_code".to_owned(), device.device_code.clone()),
            ];
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let response = http.post(token_url).form(&form).send().await.expect("poll");
                Answer::read(response).await
            }));
        }
        let mut winners = 0;
        for task in tasks {
            let answer = task.await.expect("task");
            if answer.status == StatusCode::OK {
                answer.assert_tokens("the winner");
                winners += 1;
            } else {
                answer.assert_error(400, "invalid_grant", "a loser");
            }
        }
        assert_eq!(winners, 1, "exactly one of {N} parallel polls gets tokens");
        assert_eq!(
            access_token_count(kind, &url, &client_id).await,
            1,
            "the losers left no tokens behind"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. The person's side over HTTP.
// ---------------------------------------------------------------------------------------------

backend_test! {
    async fn a_guest_enters_the_code_signs_in_and_approves(db) {
        let server = TestServer::start_default(db).await;
        server.user(EMAIL, PASSWORD).await;
        let client_id = public_device_client(&server).await;
        let device = start_device(&server, &client_id, Some("read orders:read")).await;
        let person = Browser::new(&server.base);

        // The entry page: a GET form with a user_code field, to the consent page.
        let page = person.get(&device.verification_uri).await;
        assert_eq!(page.status, StatusCode::OK, "entry page\n{}", page.body);
        page.assert_entry_form("", "entry page");
        assert!(page.body.contains("Enter the code"), "the entry page explains itself");

        // verification_uri_complete jumps to the consent page; a guest is sent to sign in.
        let complete = person.get(&device.verification_uri_complete).await;
        let consent_path = with_user_code("/oauth/device/authorize", &device.user_code);
        complete.assert_redirect(&consent_path, "?user_code= on the entry page");
        let page = person.get(&consent_path).await;
        page.assert_redirect("/login", "a guest signs in first");
        let page = person.login(EMAIL, PASSWORD).await;
        page.assert_redirect(&consent_path, "back to the device consent page");

        // The consent page names the client and the scopes, and shows the code.
        let page = person.get(&consent_path).await;
        page.assert_consent(DEVICE_CLIENT_NAME, &device.user_code, "consent");
        assert!(
            page.body.contains("Read your data") && page.body.contains("Read your orders"),
            "the scope descriptions\n{}",
            page.body
        );
        assert!(page.body.contains(EMAIL), "who is signed in");
        assert!(
            !page.body.contains(&device.device_code),
            "the device code never reaches the browser"
        );
        let meta = format!(
            "<meta name=\"csrf-token\" content=\"{}\">",
            page.approve_form("csrf").get("_token").expect("_token")
        );
        assert!(page.body.contains(&meta), "the CSRF token in <meta>");
        assert_eq!(
            person.cookie("XSRF-TOKEN").as_deref(),
            page.approve_form("csrf").get("_token"),
            "the XSRF-TOKEN cookie carries the CSRF token"
        );

        // The device is still waiting.
        poll(&server, &client_id, None, &device.device_code).await.assert_error(
            400,
            "authorization_pending",
            "before approval",
        );

        let done = person.submit(&page.approve_form("approve")).await;
        done.assert_done(true, "approved");

        server.advance(TimeDelta::seconds(5));
        let tokens = poll(&server, &client_id, None, &device.device_code).await;
        tokens.assert_tokens("the device gets its tokens");
        let (status, me) = api_user(&server, &tokens.str("access_token")).await;
        assert_eq!((status, &me["email"]), (StatusCode::OK, &json!(EMAIL)), "{me}");

        // Decided codes lead nowhere.
        let page = person.get(&consent_path).await;
        page.assert_client_error(422, "the used code");

        // Without a code, the consent page sends the person to the entry page.
        person
            .get("/oauth/device/authorize")
            .await
            .assert_redirect("/oauth/device", "no user_code");
    }
}

backend_test! {
    async fn typed_codes_are_normalized(db) {
        let server = TestServer::start_default(db).await;
        server.user(EMAIL, PASSWORD).await;
        let client_id = public_device_client(&server).await;
        let device = start_device(&server, &client_id, Some("read")).await;
        let person = Browser::signed_in(&server, EMAIL, PASSWORD).await;
        let plain = device.user_code.replace('-', "");
        let variants = [
            device.user_code.clone(),
            device.user_code.to_lowercase(),
            device.user_code.replace('-', " "),
            plain.clone(),
            plain.to_lowercase(),
            format!("  {}  ", device.user_code.to_lowercase()),
            format!("{} {}", &plain[..4].to_lowercase(), &plain[4..]),
        ];
        for typed in &variants {
            let page = person.enter_code(typed).await;
            page.assert_consent(DEVICE_CLIENT_NAME, &device.user_code, &format!("typed {typed:?}"));
        }
        // The entry page's ?user_code= keeps what was typed for the next step.
        let page = person.get(&with_user_code("/oauth/device", &variants[2])).await;
        let next = page.location().expect("a redirect").to_owned();
        let page = person.get(&next).await;
        page.assert_consent(DEVICE_CLIENT_NAME, &device.user_code, "via entry");
    }
}

backend_test! {
    async fn wrong_or_expired_codes_show_the_entry_page_again(db) {
        let server = TestServer::start_default(db).await;
        let user_id = server.user(EMAIL, PASSWORD).await;
        let client_id = public_device_client(&server).await;
        let live = start_device(&server, &client_id, None).await;
        let person = Browser::signed_in(&server, EMAIL, PASSWORD).await;

        let unissued = unissued_user_code(&[&live.user_code]);
        let attempts = [
            unissued.clone(),
            unissued.to_lowercase(),
            "BCDA-EFGH".to_owned(),
            "12345678".to_owned(),
            "\"><script>alert(1)</script>".to_owned(),
        ];
        for typed in &attempts {
            let what = format!("wrong code {typed:?}");
            let page = person.enter_code(typed).await;
            page.assert_client_error(422, &what);
            assert!(page.body.contains(WRONG_CODE), "{what}: a clear message\n{}", page.body);
            page.assert_entry_form(typed.trim(), &what);
            assert!(!page.body.contains("<script>alert(1)"), "{what}: escaped");
        }

        // Expired.
        let expiring = start_device(&server, &client_id, None).await;
        server.advance(TimeDelta::minutes(11));
        let page = person.enter_code(&expiring.user_code).await;
        page.assert_client_error(422, "expired code");
        assert!(page.body.contains(WRONG_CODE), "expired: a clear message");
        page.assert_entry_form(&expiring.user_code, "expired code");

        // Already decided (denied elsewhere).
        let decided = start_device(&server, &client_id, None).await;
        decide_directly(&server, &decided.user_code, &user_id, false).await;
        let page = person.enter_code(&decided.user_code).await;
        page.assert_client_error(422, "decided code");
    }
}

backend_test! {
    async fn approve_and_deny_by_post_override_and_by_delete(db) {
        let server = TestServer::start_default(db).await;
        server.user(EMAIL, PASSWORD).await;
        let client_id = public_device_client(&server).await;
        let person = Browser::signed_in(&server, EMAIL, PASSWORD).await;

        // Deny with the form (POST + _method=DELETE).
        let first = start_device(&server, &client_id, Some("read")).await;
        let page = person.enter_code(&first.user_code).await;
        page.assert_consent(DEVICE_CLIENT_NAME, &first.user_code, "deny by the form");
        let deny = page.deny_form("deny by the form");
        assert_eq!(deny.get("_method"), Some("DELETE"));
        person.submit(&deny).await.assert_done(false, "denied by the form");
        poll(&server, &client_id, None, &first.device_code).await.assert_error(
            400,
            "access_denied",
            "denied by the form",
        );

        // Deny with a real DELETE.
        let second = start_device(&server, &client_id, Some("read")).await;
        let page = person.enter_code(&second.user_code).await;
        page.assert_consent(DEVICE_CLIENT_NAME, &second.user_code, "deny by DELETE");
        let form = page.approve_form("deny by DELETE");
        person
            .delete(&form.action, &form.fields)
            .await
            .assert_done(false, "denied by DELETE");
        poll(&server, &client_id, None, &second.device_code).await.assert_error(
            400,
            "access_denied",
            "denied by DELETE",
        );

        // Approve: the device gets tokens.
        let third = start_device(&server, &client_id, Some("read")).await;
        let page = person.enter_code(&third.user_code).await;
        person
            .submit(&page.approve_form("approve"))
            .await
            .assert_done(true, "approved");
        poll(&server, &client_id, None, &third.device_code)
            .await
            .assert_tokens("approved");

        // An auth-code client with the device flow goes through the same pages.
        let (web_id, web_secret) = create_client(
            &server,
            NewClient::new("Acme Web + TV", ClientKind::AuthorizationCode { device_flow: true })
                .redirect_uris(["https://client.example/callback"]),
        )
        .await;
        let web_secret = web_secret.expect("confidential");
        let fourth = start_device_as(&server, &web_id, Some(&web_secret), Some("write")).await;
        let page = person.enter_code(&fourth.user_code).await;
        page.assert_consent("Acme Web + TV", &fourth.user_code, "web client");
        assert!(page.body.contains("Change your data"), "scope description");
        person
            .submit(&page.approve_form("web client"))
            .await
            .assert_done(true, "web client approved");
        poll(&server, &web_id, Some(&web_secret), &fourth.device_code)
            .await
            .assert_tokens("web client");
    }
}

backend_test! {
    async fn decisions_need_csrf_and_a_fresh_auth_token(db) {
        let server = TestServer::start_default(db).await;
        server.user(EMAIL, PASSWORD).await;
        server.user(OTHER_EMAIL, OTHER_PASSWORD).await;
        let client_id = public_device_client(&server).await;
        let device = start_device(&server, &client_id, Some("read")).await;
        let person = Browser::signed_in(&server, EMAIL, PASSWORD).await;
        let page = person.enter_code(&device.user_code).await;
        page.assert_consent(DEVICE_CLIENT_NAME, &device.user_code, "first tab");
        let approve = page.approve_form("first tab");
        let deny = page.deny_form("first tab");

        // CSRF: missing or wrong `_token` → 419, for approve and deny alike.
        for (form, label) in [(&approve, "approve"), (&deny, "deny")] {
            person
                .post(&form.action, &form.without("_token"))
                .await
                .assert_client_error(419, &format!("{label} without _token"));
            person
                .post(&form.action, &form.with("_token", "not-the-token"))
                .await
                .assert_client_error(419, &format!("{label} with a wrong _token"));
        }
        person
            .delete(&approve.action, &approve.with("_token", "not-the-token"))
            .await
            .assert_client_error(419, "DELETE with a wrong _token");
        // Without the session cookie (a cross-site attacker) → 419 as well.
        let stranger = Browser::new(&server.base);
        stranger
            .post(&approve.action, &approve.fields)
            .await
            .assert_client_error(419, "no session");

        // Forged auth_token → 403.
        person
            .post(
                &approve.action,
                &approve.with("auth_token", "forged-auth-token-forged-auth-token-xx"),
            )
            .await
            .assert_client_error(403, "forged auth_token");
        let missing = person.post(&approve.action, &approve.without("auth_token")).await;
        assert!(
            missing.status.is_client_error() && missing.location().is_none(),
            "missing auth_token: {}",
            missing.status
        );

        // Another signed-in person cannot use this auth_token (bound to the session).
        let other = Browser::signed_in(&server, OTHER_EMAIL, OTHER_PASSWORD).await;
        let other_page = other.get("/oauth/device").await;
        let other_csrf = other.cookie("XSRF-TOKEN").expect("XSRF-TOKEN cookie");
        assert_eq!(other_page.status, StatusCode::OK);
        other
            .post(&approve.action, &approve.with("_token", &other_csrf))
            .await
            .assert_client_error(403, "someone else's auth_token");

        // None of the failures used the auth_token up; the device is still waiting.
        poll(&server, &client_id, None, &device.device_code).await.assert_error(
            400,
            "authorization_pending",
            "still pending",
        );

        // A second consent page for the same code (another tab); approve in the first.
        let second_tab = person.enter_code(&device.user_code).await;
        second_tab.assert_consent(DEVICE_CLIENT_NAME, &device.user_code, "second tab");
        let second_deny = second_tab.deny_form("second tab");
        assert_ne!(
            second_deny.get("auth_token"),
            approve.get("auth_token"),
            "each consent page has its own auth_token"
        );
        person.submit(&approve).await.assert_done(true, "approved");

        // Reused auth_token → 403.
        person
            .submit(&approve)
            .await
            .assert_client_error(403, "reused auth_token");
        person
            .submit(&deny)
            .await
            .assert_client_error(403, "reused auth_token to deny");
        // The other tab's token cannot overturn the decision.
        let page = person.submit(&second_deny).await;
        assert!(
            page.status.is_client_error() && page.location().is_none(),
            "a decided code cannot be decided again: {}\n{}",
            page.status,
            page.body
        );
        assert!(!page.body.contains("Request denied"), "not denied");

        // The approval stands.
        poll(&server, &client_id, None, &device.device_code)
            .await
            .assert_tokens("the approval stands");
    }
}

#[tokio::test]
async fn a_consent_page_left_open_past_expiry_cannot_approve() {
    let db = passport_sqlx::testing::sqlite();
    let server = TestServer::start_default(db).await;
    server.user(EMAIL, PASSWORD).await;
    let client_id = public_device_client(&server).await;
    let device = start_device(&server, &client_id, Some("read")).await;
    let person = Browser::signed_in(&server, EMAIL, PASSWORD).await;
    let page = person.enter_code(&device.user_code).await;
    page.assert_consent(DEVICE_CLIENT_NAME, &device.user_code, "open");
    server.advance(TimeDelta::minutes(11));
    let page = person.submit(&page.approve_form("late")).await;
    assert!(
        page.status.is_client_error() && !page.body.contains("Device connected"),
        "a late approval fails: {}\n{}",
        page.status,
        page.body
    );
    poll(&server, &client_id, None, &device.device_code)
        .await
        .assert_error(400, "expired_token", "late approval");
}

backend_test! {
    async fn wrong_codes_are_limited_per_session(db) {
        let server = TestServer::start(db, |b| b.login_rate_limit(0)).await;
        server.user(EMAIL, PASSWORD).await;
        let client_id = public_device_client(&server).await;
        let device = start_device(&server, &client_id, None).await;
        let person = Browser::signed_in(&server, EMAIL, PASSWORD).await;
        let wrong = unissued_user_code(&[&device.user_code]);

        for attempt in 1..=10 {
            person
                .enter_code(&wrong)
                .await
                .assert_client_error(422, &format!("wrong attempt {attempt}"));
        }
        // The quota refills slowly (one every 6 s): the next few attempts hit it.
        let mut limited = None;
        for _ in 0..3 {
            let page = person.enter_code(&wrong).await;
            if page.status == StatusCode::TOO_MANY_REQUESTS {
                limited = Some(page);
                break;
            }
            page.assert_client_error(422, "an attempt after 10");
        }
        let page = limited.unwrap_or_else(|| panic!("more than 10 wrong attempts in a session → 429"));
        page.assert_client_error(429, "limited");
        assert!(
            page.header("retry-after")
                .is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1)),
            "Retry-After"
        );
        assert!(page.body.contains("Too many attempts"), "says why\n{}", page.body);
        page.assert_entry_form(&wrong, "limited page");
        // Even the right code waits now, in this session.
        let page = person.enter_code(&device.user_code).await;
        assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "the right code waits too");

        // Another session from the same address is not blocked by this one.
        let other = Browser::signed_in(&server, EMAIL, PASSWORD).await;
        other.enter_code(&device.user_code).await.assert_consent(
            DEVICE_CLIENT_NAME,
            &device.user_code,
            "other session",
        );
    }
}

backend_test! {
    async fn wrong_codes_are_limited_per_address_across_sessions(db) {
        let server = TestServer::start(db, |b| b.login_rate_limit(0)).await;
        server.user(EMAIL, PASSWORD).await;
        let client_id = public_device_client(&server).await;
        let device = start_device(&server, &client_id, None).await;
        let wrong = unissued_user_code(&[&device.user_code]);
        let mut sessions = Vec::new();
        for _ in 0..3 {
            sessions.push(Browser::signed_in(&server, EMAIL, PASSWORD).await);
        }

        // Round robin over three sessions, at most 9 attempts each: never a per-session limit.
        let mut limited_at = None;
        for attempt in 1..=27 {
            let page = sessions[(attempt - 1) % 3].enter_code(&wrong).await;
            if attempt <= 20 {
                page.assert_client_error(422, &format!("attempt {attempt} of 20"));
            } else if page.status == StatusCode::TOO_MANY_REQUESTS {
                assert!(page.body.contains("Too many attempts"), "says why");
                limited_at = Some(attempt);
                break;
            } else {
                page.assert_client_error(422, &format!("attempt {attempt}"));
            }
        }
        let limited_at = limited_at.unwrap_or_else(|| panic!("more than 20 attempts per address → 429"));
        assert!(limited_at <= 24, "limited at attempt {limited_at}");
        // A fresh session from the same address is limited too.
        let fresh = Browser::signed_in(&server, EMAIL, PASSWORD).await;
        let page = fresh.enter_code(&device.user_code).await;
        assert_eq!(
            page.status,
            StatusCode::TOO_MANY_REQUESTS,
            "the address is limited, whatever the session\n{}",
            page.body
        );
    }
}

#[tokio::test]
async fn guests_and_bad_input_on_the_person_side() {
    let db = passport_sqlx::testing::sqlite();
    let server = TestServer::start_default(db).await;
    server.user(EMAIL, PASSWORD).await;
    let client_id = public_device_client(&server).await;
    let device = start_device(&server, &client_id, None).await;
    let guest = Browser::new(&server.base);

    // A guest may see the entry page; deciding needs a session with a user.
    guest
        .get("/oauth/device")
        .await
        .assert_entry_form("", "guest entry page");
    let page = guest.enter_code(&device.user_code).await;
    page.assert_redirect("/login", "guest consent page");
    let csrf = guest.cookie("XSRF-TOKEN").expect("a guest session");
    let fields = vec![("_token".to_owned(), csrf), ("auth_token".to_owned(), "x".repeat(40))];
    let page = guest.post("/oauth/device/authorize", &fields).await;
    assert!(
        page.status.is_client_error() && page.location().is_none(),
        "a guest cannot decide: {}",
        page.status
    );

    // Odd input is a 4xx, never a 5xx.
    let person = Browser::signed_in(&server, EMAIL, PASSWORD).await;
    for query in [
        "user_code=BCDF-GHJK&user_code=BCDF-GHJK",
        "user_code=%FF%FE",
        &format!("user_code={}", "B".repeat(5000)),
    ] {
        for path in ["/oauth/device", "/oauth/device/authorize"] {
            let page = person.get(&format!("{path}?{query}")).await;
            assert!(
                page.status.is_client_error() || page.status == StatusCode::FOUND,
                "{path}?{}…: {}",
                &query[..query.len().min(40)],
                page.status
            );
        }
    }
    poll(&server, &client_id, None, &device.device_code).await.assert_error(
        400,
        "authorization_pending",
        "nothing was decided",
    );
}

/// Replacement device pages, as an operator would drop them into `<data-dir>/views/`.
const CUSTOM_VIEWS: [(&str, &str); 3] = [
    (
        "device_user_code.html",
        r#"<p id="custom-entry">Type it here. {{ error }}</p>
<form method="GET" action="{{ authorize_url }}"><input name="user_code" value="{{ user_code }}"></form>"#,
    ),
    (
        "device_authorize.html",
        r#"<h1 id="custom-consent">{{ client.name }} | {{ user_code }} | {% for s in scopes %}{{ s.description }};{% endfor %}</h1>
<form method="POST" action="{{ authorize_url }}"><input type="hidden" name="_token" value="{{ csrf_token }}"><input type="hidden" name="auth_token" value="{{ auth_token }}"></form>"#,
    ),
    (
        "device_done.html",
        r#"<p id="custom-done">{% if approved %}custom approved{% else %}custom denied{% endif %}</p>"#,
    ),
];

#[tokio::test]
async fn device_pages_can_be_replaced() {
    let db = passport_sqlx::testing::sqlite();
    let server = TestServer::start_default(db).await;
    server.user(EMAIL, PASSWORD).await;
    let client_id = public_device_client(&server).await;
    let device = start_device(&server, &client_id, Some("read")).await;

    // The standalone server's pages with `<data-dir>/views/device_*.html`, over the same
    // Passport (and database).
    let data_dir = tempfile::tempdir().expect("data dir");
    std::fs::create_dir_all(data_dir.path().join("views")).expect("views dir");
    for (name, source) in CUSTOM_VIEWS {
        std::fs::write(data_dir.path().join("views").join(name), source).expect("write view");
    }
    let pages = passport_server::app::pages(&server.passport, &server.db, data_dir.path()).expect("pages");
    let app = passport_server::app::router_with(pages).into_make_service_with_connect_info::<SocketAddr>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let person = Browser::new(&base);
    let page = person.login(EMAIL, PASSWORD).await;
    assert_eq!(page.status, StatusCode::FOUND, "sign in\n{}", page.body);
    let page = person.get("/oauth/device").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("custom-entry"),
        "the custom entry page:\n{}",
        page.body
    );
    page.assert_entry_form("", "custom entry page");

    let page = person.enter_code(&unissued_user_code(&[&device.user_code])).await;
    page.assert_client_error(422, "custom entry page, wrong code");
    assert!(
        page.body.contains("custom-entry") && page.body.contains(WRONG_CODE),
        "{}",
        page.body
    );

    let page = person.enter_code(&device.user_code).await;
    assert_eq!(page.status, StatusCode::OK, "custom consent page\n{}", page.body);
    page.assert_html_page("custom consent page");
    assert!(
        page.body.contains(&format!(
            "{DEVICE_CLIENT_NAME} | {} | Read your data;",
            device.user_code
        )),
        "the custom consent page gets the client, the code and the scopes:\n{}",
        page.body
    );
    let form = page.forms().remove(0);
    let done = person.submit(&form).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(
        done.body.contains("custom approved"),
        "the custom done page:\n{}",
        done.body
    );
    poll(&server, &client_id, None, &device.device_code)
        .await
        .assert_tokens("approved through custom pages");
}

// ---------------------------------------------------------------------------------------------
// 4. End to end with the `oauth2` crate as the device (real clock, real 5 s interval).
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oauth2_crate_runs_the_device_flow() {
    let db = passport_sqlx::testing::sqlite();
    let server = TestServer::start(db, |b| b.clock(Arc::new(SystemClock))).await;
    server.user(EMAIL, PASSWORD).await;
    let client_id = public_device_client(&server).await;

    let client = BasicClient::new(ClientId::new(client_id.clone()))
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(server.url("/oauth/device/code")).expect("device url"),
        )
        .set_token_uri(TokenUrl::new(server.url("/oauth/token")).expect("token url"))
        .set_auth_type(AuthType::RequestBody);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");

    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("read".to_owned()))
        .request_async(&http)
        .await
        .expect("device authorization");
    assert_eq!(details.interval(), Duration::from_secs(5));
    assert_eq!(details.expires_in(), Duration::from_secs(600));
    assert_eq!(details.verification_uri().as_str(), server.url("/oauth/device"));
    assert!(details.verification_uri_complete().is_some());
    assert_user_code_format(details.user_code().secret(), "oauth2 crate");

    // The person, on another screen: signs in, types the code, approves.
    let base = server.base.clone();
    let user_code = details.user_code().secret().to_owned();
    let entry = details.verification_uri().to_string();
    let person = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let person = Browser::new(&base);
        let page = person.login(EMAIL, PASSWORD).await;
        assert_eq!(page.status, StatusCode::FOUND, "sign in\n{}", page.body);
        let page = person.get(&entry).await;
        page.assert_entry_form("", "entry page");
        let page = person.enter_code(&user_code.to_lowercase()).await;
        page.assert_consent(DEVICE_CLIENT_NAME, &user_code, "oauth2 crate consent");
        person
            .submit(&page.approve_form("oauth2 crate"))
            .await
            .assert_done(true, "oauth2 crate");
    });

    let token = client
        .exchange_device_access_token(&details)
        .request_async(&http, tokio::time::sleep, Some(Duration::from_secs(90)))
        .await
        .expect("the device gets a token");
    person.await.expect("the person's side");
    assert!(token.refresh_token().is_some(), "a refresh token");
    let (status, me) = api_user(&server, token.access_token().secret()).await;
    assert_eq!(status, StatusCode::OK, "the token works: {me}");
    assert_eq!(me["email"], EMAIL);
}

// ---------------------------------------------------------------------------------------------
// 5. The person's side in a real browser (headless Chromium through chromedriver).
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_connects_a_device_in_a_real_browser() {
    let Some(driver) = start_driver("device browser test") else {
        return;
    };
    let db = passport_sqlx::testing::sqlite();
    let server = TestServer::start(db, |b| b.login_rate_limit(0)).await;
    server.user(EMAIL, PASSWORD).await;
    let client_id = public_device_client(&server).await;
    let device = start_device(&server, &client_id, Some("read orders:read")).await;

    let browser = open_browser(&driver, "1000,900").await;
    // The person opens the address the device shows and types the code as it comes: lower
    // case, a space instead of the dash.
    browser.goto(&device.verification_uri).await.expect("goto");
    let typed = device.user_code.to_lowercase().replace('-', " ");
    type_into(&browser, "input[name=user_code]", &typed).await;
    click(&browser, "#continue").await;

    // A guest is sent to sign in, and comes back to the device consent page.
    wait_for_url(&browser, &server.url("/login")).await;
    type_into(&browser, "input[name=email]", EMAIL).await;
    type_into(&browser, "input[name=password]", PASSWORD).await;
    click(&browser, "button[type=submit]").await;
    browser
        .wait()
        .for_element(Locator::Css("#approve"))
        .await
        .expect("the device consent page");
    let current = browser.current_url().await.expect("url");
    assert!(
        current.as_str().starts_with(&server.url("/oauth/device/authorize")),
        "on the device consent page: {current}"
    );
    let page = browser.source().await.expect("page source");
    assert!(
        page.contains(&format!("Connect {DEVICE_CLIENT_NAME}")),
        "names the client"
    );
    assert!(page.contains(&device.user_code), "shows the code");
    assert!(
        page.contains("Read your data") && page.contains("Read your orders"),
        "describes each scope"
    );
    assert!(page.contains(EMAIL), "says who is signed in");
    let screenshot = browser.screenshot().await.expect("screenshot");
    assert!(screenshot.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(artifact_dir().join("device-consent.png"), &screenshot).expect("save screenshot");

    poll(&server, &client_id, None, &device.device_code).await.assert_error(
        400,
        "authorization_pending",
        "before Allow",
    );
    click(&browser, "#approve").await;
    let mut done = String::new();
    for _ in 0..100 {
        done = browser.source().await.expect("page source");
        if done.contains("Device connected") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(done.contains("Device connected"), "the done page:\n{done}");
    assert!(
        done.contains("return to your device"),
        "sends the person back to the device"
    );

    server.advance(TimeDelta::seconds(5));
    let tokens = poll(&server, &client_id, None, &device.device_code).await;
    tokens.assert_tokens("after Allow in the browser");
    let (status, me) = api_user(&server, &tokens.str("access_token")).await;
    assert_eq!((status, &me["email"]), (StatusCode::OK, &json!(EMAIL)));

    browser.close().await.expect("close browser");
}
