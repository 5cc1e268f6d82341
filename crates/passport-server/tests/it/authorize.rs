//! The browser side of the authorization code and implicit grants, end to end over HTTP:
//! `GET /oauth/authorize` (validation, error pages vs error redirects, redirect-URI matching,
//! login redirect, consent, `prompt`), the approve / deny forms (`auth_token`, CSRF, cookies),
//! the code exchange (PKCE, redirect-URI binding, expiry, single use, replay, concurrency), the
//! implicit grant, bad input, and a run with the third-party `oauth2` crate as the client.
//!
//! A [`Browser`] is a cookie-holding HTTP client that never follows redirects, so every hop of
//! the flow is checked; forms are read out of the served HTML, exactly as a browser would.

use std::sync::Arc;

use chrono::TimeDelta;
use oauth2::basic::{BasicClient, BasicErrorResponseType, BasicTokenType};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RefreshToken, RequestTokenError, Scope, TokenResponse as _, TokenUrl,
};
use passport::{ClientKind, NewClient};
use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url};
use serde_json::Value;

use crate::common::{TestServer, api_user, create_client};
use crate::support_web::{Browser, Page};

/// The redirect URI `TestServer::client` registers for code and implicit clients.
const CALLBACK: &str = "https://client.example/callback";
const EMAIL: &str = "alice@example.com";
const PASSWORD: &str = "correct horse battery staple";
const CODE_CLIENT: ClientKind = ClientKind::AuthorizationCode { device_flow: false };
/// The message the login page shows for any failed attempt.
const BAD_CREDENTIALS: &str = "These credentials do not match our records.";
/// A `state` that needs every kind of encoding: spaces, `&`, `#`, `=`, `+`, `%`, `/`, `?` and
/// non-ASCII text.
const AWKWARD_STATE: &str = "a b&c#d=e+f%20g/h?i é✓ 🚀";

// ---------------------------------------------------------------------------------------------
// The flow's pages and redirects, as the browser of `support_web` sees them.
// ---------------------------------------------------------------------------------------------

/// Checks on the pages of the authorization flow.
impl Page {
    /// An error page: 4xx, HTML, no `Location` (never a redirect), not frameable.
    fn assert_error_page(&self, what: &str) {
        assert!(
            self.status.is_client_error(),
            "{what}: a 4xx error page, got {} {:?}\n{}",
            self.status,
            self.location(),
            self.body
        );
        assert_eq!(self.location(), None, "{what}: an error page must not redirect");
        self.assert_html_page(what);
    }

    /// A 4xx answer of any kind, never a 5xx or a redirect.
    fn assert_any_client_error(&self, what: &str) {
        assert!(
            self.status.is_client_error(),
            "{what}: expected 4xx, got {}\n{}",
            self.status,
            self.body
        );
        assert_eq!(self.location(), None, "{what}: no redirect");
    }

    /// A redirect to the client at `target`; returns the parameters in the query (or, when
    /// `fragment`, in the fragment), asserting the other part is absent and the whole is
    /// well-formed.
    fn callback(&self, target: &str, fragment: bool, what: &str) -> Params {
        assert_eq!(
            self.status,
            StatusCode::FOUND,
            "{what}: a 302 to the client, got {} {:?}\n{}",
            self.status,
            self.location(),
            self.body
        );
        assert_eq!(
            self.header("cache-control"),
            Some("no-store"),
            "{what}: redirects are not cached"
        );
        let location = self.location().unwrap_or_else(|| panic!("{what}: Location"));
        let separator = if fragment { '#' } else { '?' };
        let rest = location
            .strip_prefix(target)
            .and_then(|r| r.strip_prefix(separator))
            .unwrap_or_else(|| panic!("{what}: {location:?} is not {target}{separator}…"));
        assert!(
            !rest.contains([' ', '#', '?']) && !rest.contains(|c: char| !c.is_ascii()),
            "{what}: the parameters must be URL-encoded: {location:?}"
        );
        if !fragment {
            let url = Url::parse(location).expect("absolute Location");
            assert_eq!(url.fragment(), None, "{what}: no fragment in {location:?}");
        }
        Params::parse(rest)
    }
}

/// Query (or fragment) parameters of a redirect.
#[derive(Debug)]
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(encoded: &str) -> Self {
        let url = Url::parse(&format!("http://x/?{encoded}")).expect("parameters");
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        for (i, (k, _)) in pairs.iter().enumerate() {
            assert!(
                !pairs[..i].iter().any(|(n, _)| n == k),
                "parameter {k} twice in {encoded:?}"
            );
        }
        Self(pairs)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn require(&self, name: &str, what: &str) -> &str {
        self.get(name)
            .unwrap_or_else(|| panic!("{what}: no {name} in {:?}", self.0))
    }

    /// An OAuth error carrying `state`.
    fn assert_error(&self, code: &str, state: Option<&str>, what: &str) {
        assert_eq!(self.get("error"), Some(code), "{what}: error in {:?}", self.0);
        assert!(
            self.get("error_description").is_some_and(|d| !d.is_empty()),
            "{what}: error_description in {:?}",
            self.0
        );
        assert_eq!(self.get("state"), state, "{what}: state must round-trip exactly");
        assert_eq!(self.get("code"), None, "{what}: no code with an error");
        assert_eq!(self.get("access_token"), None, "{what}: no token with an error");
    }
}

/// The authorization flow, driven by a browser.
impl Browser {
    /// Runs an authorization request for a signed-in user up to the redirect back to the
    /// client: GET, approve on the consent page if one is shown. Returns the final response.
    async fn authorize(&self, url: &str, what: &str) -> Page {
        let page = self.get(url).await;
        if page.status != StatusCode::OK {
            return page;
        }
        let approve = page.approve_form(what);
        self.submit(&approve).await
    }

    /// A code for `url` delivered to `target`, with `state` checked.
    async fn code(&self, url: &str, target: &str, what: &str) -> String {
        let page = self.authorize(url, what).await;
        let params = page.callback(target, false, what);
        let expected_state = Url::parse(url)
            .expect("url")
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned());
        assert_eq!(params.get("state").map(str::to_owned), expected_state, "{what}: state");
        params.require("code", what).to_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers.
// ---------------------------------------------------------------------------------------------

/// `/oauth/authorize?…` on the server, parameters form-encoded.
fn authorize_url(server: &TestServer, params: &[(&str, &str)]) -> String {
    let mut url = Url::parse(&server.url("/oauth/authorize")).expect("url");
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

/// A standard code request for `client_id` (redirect URI given, scope `read`).
fn code_url(server: &TestServer, client_id: &str, state: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", CALLBACK),
        ("scope", "read"),
        ("state", state),
    ];
    for (k, v) in extra {
        params.retain(|(n, _)| n != k);
        params.push((k, v));
    }
    authorize_url(server, &params)
}

/// The path and query of an absolute URL (what the login page sends the user back to).
fn path_and_query(url: &str) -> String {
    let url = Url::parse(url).expect("url");
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

/// A confidential authorization-code client with [`CALLBACK`].
async fn confidential(server: &TestServer) -> (String, String) {
    let (id, secret) = server.client(CODE_CLIENT, false).await;
    (id, secret.expect("confidential"))
}

/// A token-endpoint answer.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn assert_error(&self, status: u16, code: &str, what: &str) {
        assert_eq!(self.status.as_u16(), status, "{what}: status for {}", self.body);
        assert_eq!(self.body["error"], code, "{what}: error in {}", self.body);
    }

    fn assert_ok(&self, what: &str) {
        assert_eq!(self.status, StatusCode::OK, "{what}: {}", self.body);
        assert_eq!(self.body["token_type"], "Bearer", "{what}: token_type");
        assert_eq!(
            self.headers.get("cache-control").and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{what}: Cache-Control"
        );
    }

    fn access_token(&self) -> &str {
        self.body["access_token"].as_str().expect("access_token")
    }

    fn refresh_token(&self) -> &str {
        self.body["refresh_token"].as_str().expect("refresh_token")
    }
}

/// POSTs a form to the token endpoint.
async fn token(server: &TestServer, form: &[(&str, &str)]) -> Answer {
    let response = server.token(form).await;
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
    Answer { status, headers, body }
}

/// `grant_type=authorization_code` with the given extra fields.
async fn exchange(server: &TestServer, code: &str, fields: &[(&str, &str)]) -> Answer {
    let mut form = vec![("grant_type", "authorization_code"), ("code", code)];
    form.extend_from_slice(fields);
    token(server, &form).await
}

/// A PKCE verifier and its S256 challenge.
fn pkce_s256() -> (String, String) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    (verifier.secret().clone(), challenge.as_str().to_owned())
}

/// A valid PKCE string of 43+ unreserved characters, different for each `seed`.
fn pkce_string(seed: char) -> String {
    format!("{}-._~{}", seed.to_string().repeat(30), "AbC123xyz0123")
}

// ---------------------------------------------------------------------------------------------
// 1. Errors: shown vs redirected.
// ---------------------------------------------------------------------------------------------

/// One error case: what it is, the error code expected, the request parameters.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);

backend_test! {
    /// Errors about the client or its redirect URI are pages, never redirects; every later error
    /// is redirected to the validated URI with `error`, `error_description` and `state`.
    async fn errors_are_shown_or_redirected_with_state(db) {
        let server = TestServer::start_default(db).await;
        let browser = Browser::new(&server.base);
        let (confidential_id, _) = confidential(&server).await;
        let (public_id, _) = server.client(CODE_CLIENT, true).await;
        let (multi_id, _) = create_client(
            &server,
            NewClient::new("Two URIs", CODE_CLIENT).redirect_uris([CALLBACK, "https://client.example/other"]),
        )
        .await;
        let (password_id, _) = create_client(
            &server,
            NewClient::new("Password app", ClientKind::Password).redirect_uris([CALLBACK]),
        )
        .await;
        let (revoked_id, _) = confidential(&server).await;
        assert!(
            server
                .db
                .store()
                .revoke_client(&revoked_id)
                .await
                .expect("revoke"),
            "revoked"
        );
        let unknown = uuid::Uuid::new_v4().to_string();
        let (unknown, revoked_id, confidential_id, public_id, multi_id, password_id) = (
            unknown.as_str(),
            revoked_id.as_str(),
            confidential_id.as_str(),
            public_id.as_str(),
            multi_id.as_str(),
            password_id.as_str(),
        );

        // Shown as a page: the client or its redirect URI cannot be trusted.
        let shown: Vec<Case<'_>> = vec![
            (
                "unknown client",
                "invalid_client",
                vec![
                    ("response_type", "code"),
                    ("client_id", unknown),
                    ("redirect_uri", CALLBACK),
                    ("state", "s"),
                ],
            ),
            (
                "revoked client",
                "invalid_client",
                vec![
                    ("response_type", "code"),
                    ("client_id", revoked_id),
                    ("redirect_uri", CALLBACK),
                    ("state", "s"),
                ],
            ),
            (
                "client id that is not a UUID",
                "invalid_client",
                vec![
                    ("response_type", "code"),
                    ("client_id", "nope"),
                    ("redirect_uri", CALLBACK),
                    ("state", "s"),
                ],
            ),
            (
                "missing client_id",
                "invalid_request",
                vec![("response_type", "code"), ("redirect_uri", CALLBACK), ("state", "s")],
            ),
            (
                "empty client_id",
                "invalid_request",
                vec![
                    ("response_type", "code"),
                    ("client_id", ""),
                    ("redirect_uri", CALLBACK),
                    ("state", "s"),
                ],
            ),
            (
                "missing response_type",
                "invalid_request",
                vec![
                    ("client_id", confidential_id),
                    ("redirect_uri", CALLBACK),
                    ("state", "s"),
                ],
            ),
            (
                "unregistered redirect_uri",
                "invalid_client",
                vec![
                    ("response_type", "code"),
                    ("client_id", confidential_id),
                    ("redirect_uri", "https://evil.example/callback"),
                    ("state", "s"),
                ],
            ),
            (
                "several registered URIs and no redirect_uri",
                "invalid_request",
                vec![("response_type", "code"), ("client_id", multi_id), ("state", "s")],
            ),
        ];
        for (what, code, params) in &shown {
            let page = browser.get(&authorize_url(&server, params)).await;
            page.assert_error_page(what);
            assert!(
                page.body.contains(&format!("<code>{code}</code>")),
                "{what}: {code}:\n{}",
                page.body
            );
            assert!(
                !page.body.contains("evil.example"),
                "{what}: the page does not link the unregistered URI"
            );
        }

        // Redirected to the validated URI.
        let too_short = "a".repeat(42);
        let too_short = too_short.as_str();
        let bad_chars = format!("{}!", "a".repeat(43));
        let bad_chars = bad_chars.as_str();
        let good_challenge = pkce_string('q');
        let good_challenge = good_challenge.as_str();
        let redirected: Vec<Case<'_>> = vec![
            (
                "unknown scope",
                "invalid_scope",
                vec![("client_id", confidential_id), ("scope", "read nope")],
            ),
            (
                "response_type=token with the implicit grant off",
                "unsupported_response_type",
                vec![("client_id", confidential_id), ("response_type", "token")],
            ),
            (
                "unknown response_type",
                "unsupported_response_type",
                vec![("client_id", confidential_id), ("response_type", "id_token")],
            ),
            (
                "client without the grant",
                "unauthorized_client",
                vec![("client_id", password_id)],
            ),
            (
                "public client without code_challenge",
                "invalid_request",
                vec![("client_id", public_id)],
            ),
            (
                "unknown code_challenge_method",
                "invalid_request",
                vec![
                    ("client_id", public_id),
                    ("code_challenge", good_challenge),
                    ("code_challenge_method", "S512"),
                ],
            ),
            (
                "code_challenge too short",
                "invalid_request",
                vec![
                    ("client_id", public_id),
                    ("code_challenge", too_short),
                    ("code_challenge_method", "S256"),
                ],
            ),
            (
                "code_challenge with a forbidden character",
                "invalid_request",
                vec![
                    ("client_id", public_id),
                    ("code_challenge", bad_chars),
                    ("code_challenge_method", "S256"),
                ],
            ),
        ];
        for (what, code, extra) in &redirected {
            let page = browser.get(&code_url(&server, "", AWKWARD_STATE, extra)).await;
            page.callback(CALLBACK, false, what)
                .assert_error(code, Some(AWKWARD_STATE), what);

            // Without state, no state comes back (and no stray separator).
            let mut params: Vec<(&str, &str)> = vec![("response_type", "code"), ("redirect_uri", CALLBACK)];
            for (k, v) in extra {
                params.retain(|(n, _)| n != k);
                params.push((k, v));
            }
            let page = browser.get(&authorize_url(&server, &params)).await;
            let location = page.location().unwrap_or_default().to_owned();
            page.callback(CALLBACK, false, what).assert_error(code, None, what);
            assert!(!location.contains("?&"), "{what}: no empty parameter in {location}");
        }

        // The state is opaque: it comes back byte for byte, surrounding spaces included.
        for state in ["  padded state  ", "\ttab", "%", "+", "&", "#", "=", "日本語"] {
            let what = format!("state {state:?}");
            let page = browser
                .get(&code_url(&server, confidential_id, state, &[("scope", "nope")]))
                .await;
            page.callback(CALLBACK, false, &what)
                .assert_error("invalid_scope", Some(state), &what);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Redirect URI matching.
// ---------------------------------------------------------------------------------------------

backend_test! {
    /// Exact matching, plus RFC 8252's any-port rule for `http://127.0.0.1` and `http://[::1]`
    /// (and not for `localhost`). `prompt=none` as a guest reveals where the server would send the
    /// user without needing a login.
    async fn redirect_uris_match_exactly_except_loopback_ports(db) {
        let server = TestServer::start_default(db).await;
        let guest = Browser::new(&server.base);
        let (web_id, _) = confidential(&server).await;
        let (native_id, native_secret) = create_client(
            &server,
            NewClient::new("Native app", CODE_CLIENT).redirect_uris([
                "http://127.0.0.1/cb",
                "http://[::1]/cb",
                "http://localhost/cb",
            ]),
        )
        .await;
        let native_secret = native_secret.expect("confidential");

        let cases = [
            (&web_id, CALLBACK, true),
            (&web_id, "https://client.example/callback/", false),
            (&web_id, "https://client.example/callback?x=1", false),
            (&web_id, "https://client.example/callback#frag", false),
            (&web_id, "https://client.example/Callback", false),
            (&web_id, "https://CLIENT.example/callback", false),
            (&web_id, "http://client.example/callback", false),
            (&web_id, "https://client.example:8443/callback", false),
            (&web_id, "https://client.example/callback/../callback", false),
            (&native_id, "http://127.0.0.1/cb", true),
            (&native_id, "http://127.0.0.1:53123/cb", true),
            (&native_id, "http://[::1]:53123/cb", true),
            (&native_id, "http://localhost/cb", true),
            (&native_id, "http://localhost:53123/cb", false),
            (&native_id, "http://127.0.0.1:53123/other", false),
            (&native_id, "http://127.0.0.1:53123/cb?x=1", false),
            (&native_id, "https://127.0.0.1:53123/cb", false),
            (&native_id, "http://127.0.0.2:53123/cb", false),
        ];
        for (client_id, uri, accepted) in cases {
            let what = format!("redirect_uri {uri}");
            let url = code_url(&server, client_id, "s", &[("redirect_uri", uri), ("prompt", "none")]);
            let page = guest.get(&url).await;
            if accepted {
                page.callback(uri, false, &what)
                    .assert_error("login_required", Some("s"), &what);
            } else {
                page.assert_error_page(&what);
            }
        }

        // The whole flow on a loopback port the client never registered: the code is delivered
        // there and the exchange repeats that exact URI.
        server.user(EMAIL, PASSWORD).await;
        let browser = Browser::signed_in(&server, EMAIL, PASSWORD).await;
        let port_uri = "http://127.0.0.1:53123/cb";
        let url = code_url(&server, &native_id, "loop", &[("redirect_uri", port_uri)]);
        let code = browser.code(&url, port_uri, "loopback flow").await;
        let answer = exchange(
            &server,
            &code,
            &[
                ("client_id", &native_id),
                ("client_secret", &native_secret),
                ("redirect_uri", port_uri),
            ],
        )
        .await;
        answer.assert_ok("loopback exchange");
    }
}

// ---------------------------------------------------------------------------------------------
// 3. The guest flow: login, consent, approve, exchange; deny.
// ---------------------------------------------------------------------------------------------

backend_test! {
    async fn guest_signs_in_consents_and_the_code_is_exchanged(db) {
        let server = TestServer::start_default(db).await;
        let (client_id, secret) = create_client(
            &server,
            NewClient::new("Acme Photo Printer", CODE_CLIENT).redirect_uris([CALLBACK]),
        )
        .await;
        let secret = secret.expect("confidential");
        server.user(EMAIL, PASSWORD).await;
        let browser = Browser::new(&server.base);
        let state = "xyz 1&2";
        let url = code_url(&server, &client_id, state, &[("scope", "read orders:read")]);

        // A guest is sent to the login page.
        let page = browser.get(&url).await;
        assert_eq!(page.status, StatusCode::FOUND, "guest redirect\n{}", page.body);
        assert_eq!(page.location(), Some("/login"), "guest goes to /login");

        let (login, form) = browser.login_form().await;
        login.assert_html_page("login page");
        assert_eq!(form.action, "/login", "login form action");
        assert!(
            login.body.contains(r#"<meta name="csrf-token" content=""#),
            "csrf meta tag"
        );

        // Wrong password and unknown email: the same answer.
        let wrong = browser.login(EMAIL, "wrong password").await;
        let unknown_email = "nobody@example.com";
        let unknown = browser.login(unknown_email, PASSWORD).await;
        for (what, page) in [("wrong password", &wrong), ("unknown email", &unknown)] {
            assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{what}\n{}", page.body);
            assert!(page.body.contains(BAD_CREDENTIALS), "{what}: generic message");
            assert_eq!(page.location(), None, "{what}: no redirect");
            page.assert_html_page(what);
        }
        assert_eq!(
            wrong.body.replace(EMAIL, "EMAIL"),
            unknown.body.replace(unknown_email, "EMAIL"),
            "a wrong password and an unknown email must look the same"
        );

        // The right password returns to the exact authorization URL.
        let page = browser.login(EMAIL, PASSWORD).await;
        assert_eq!(page.status, StatusCode::FOUND, "login\n{}", page.body);
        assert_eq!(
            page.location(),
            Some(path_and_query(&url).as_str()),
            "back to the request"
        );

        // The consent page names the client and each requested scope.
        let consent = browser.get(page.location().expect("location")).await;
        assert_eq!(consent.status, StatusCode::OK, "consent page\n{}", consent.body);
        consent.assert_html_page("consent page");
        assert_eq!(consent.header("cache-control"), Some("no-store"), "consent not cached");
        for text in ["Acme Photo Printer", "Read your data", "Read your orders", EMAIL] {
            assert!(consent.body.contains(text), "consent page shows {text:?}");
        }
        for text in ["Change your data", "Administer the account"] {
            assert!(!consent.body.contains(text), "consent page must not show {text:?}");
        }
        let approve = consent.approve_form("consent page");
        let deny = consent.deny_form("consent page");
        for form in [&approve, &deny] {
            assert_eq!(form.action, "/oauth/authorize", "consent form action");
            assert_eq!(form.get("state"), Some(state), "state field");
            assert_eq!(form.get("client_id"), Some(client_id.as_str()), "client_id field");
            assert!(
                form.get("auth_token").is_some_and(|t| !t.is_empty()),
                "auth_token field"
            );
            assert!(form.get("_token").is_some_and(|t| !t.is_empty()), "_token field");
        }

        // Approve: the code comes back with the state.
        let page = browser.submit(&approve).await;
        let params = page.callback(CALLBACK, false, "approve");
        assert_eq!(params.get("state"), Some(state), "state after approval");
        let code = params.require("code", "approve").to_owned();

        let answer = exchange(
            &server,
            &code,
            &[
                ("client_id", &client_id),
                ("client_secret", &secret),
                ("redirect_uri", CALLBACK),
            ],
        )
        .await;
        answer.assert_ok("exchange");
        assert!(!answer.refresh_token().is_empty(), "refresh token");
        let (status, user) = api_user(&server, answer.access_token()).await;
        assert_eq!(status, StatusCode::OK, "/api/user with the new token");
        assert_eq!(user["email"], EMAIL, "the token is the user's");

        // Deny with the HTML form (POST + _method=DELETE) and with a real DELETE.
        let url = code_url(&server, &client_id, state, &[("prompt", "consent")]);
        let consent = browser.get(&url).await;
        let page = browser.submit(&consent.deny_form("deny form")).await;
        page.callback(CALLBACK, false, "deny form")
            .assert_error("access_denied", Some(state), "deny form");

        let consent = browser.get(&url).await;
        let fields = consent.approve_form("DELETE").fields;
        let page = browser
            .send(browser.http.delete(browser.url("/oauth/authorize")).form(&fields))
            .await;
        page.callback(CALLBACK, false, "DELETE")
            .assert_error("access_denied", Some(state), "DELETE");
        // That request is finished: its auth_token cannot approve it afterwards.
        let page = browser.post("/oauth/authorize", &fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "approve after deny\n{}", page.body);

        // The client name and the state are escaped on the consent page.
        let (evil_id, _) = create_client(
            &server,
            NewClient::new("Evil <script>alert(1)</script>", CODE_CLIENT).redirect_uris([CALLBACK]),
        )
        .await;
        let evil_state = r#""><script>alert(2)</script>"#;
        let consent = browser.get(&code_url(&server, &evil_id, evil_state, &[])).await;
        assert_eq!(consent.status, StatusCode::OK, "consent\n{}", consent.body);
        assert!(
            !consent.body.contains("<script>"),
            "nothing unescaped:\n{}",
            consent.body
        );
        assert!(
            consent.body.contains("Evil &lt;script&gt;"),
            "the name is shown escaped"
        );
        let approve = consent.approve_form("escaped consent page");
        assert_eq!(approve.get("state"), Some(evil_state), "state field round-trips");

        // A client revoked while the consent page was open: an error page, no code.
        server.db.store().revoke_client(&evil_id).await.expect("revoke");
        let page = browser.submit(&approve).await;
        page.assert_error_page("approve for a revoked client");
    }
}

// ---------------------------------------------------------------------------------------------
// 4. auth_token, CSRF and cookies.
// ---------------------------------------------------------------------------------------------

backend_test! {
    async fn consent_needs_its_own_auth_token_and_the_csrf_token(db) {
        let server = TestServer::start_default(db).await;
        let (client_id, _) = confidential(&server).await;
        server.user(EMAIL, PASSWORD).await;
        server.user("bob@example.com", "bob's password").await;
        let url = code_url(&server, &client_id, "st", &[("prompt", "consent")]);

        // Cookies: a guest's session is a signed cookie (nothing is stored for anonymous
        // visitors), HttpOnly + SameSite=Lax like the signed-in session's; the CSRF cookie
        // readable.
        let alice = Browser::new(&server.base);
        let (login, form) = alice.login_form().await;
        assert_eq!(login.set_cookie("passport_session"), None, "no stored session for a guest");
        let session = login.set_cookie("passport_guest").expect("guest session cookie");
        let xsrf = login.set_cookie("XSRF-TOKEN").expect("XSRF-TOKEN cookie");
        let lower = session.to_ascii_lowercase();
        assert!(lower.contains("; httponly"), "session cookie HttpOnly: {session}");
        assert!(
            lower.contains("; samesite=lax"),
            "session cookie SameSite=Lax: {session}"
        );
        assert!(
            lower.contains("; path=/"),
            "session cookie for the whole site: {session}"
        );
        assert!(
            !xsrf.to_ascii_lowercase().contains("httponly"),
            "XSRF-TOKEN readable: {xsrf}"
        );
        let guest_csrf = form.get("_token").expect("_token").to_owned();
        assert_eq!(
            alice.cookie("XSRF-TOKEN").as_deref(),
            Some(guest_csrf.as_str()),
            "XSRF = _token"
        );
        assert!(
            login
                .body
                .contains(&format!(r#"<meta name="csrf-token" content="{guest_csrf}">"#)),
            "csrf meta tag"
        );
        assert!(alice.cookie("passport_guest").is_some(), "the guest session");

        // Signing in starts a new session with a new CSRF token (no fixation).
        let page = alice.login(EMAIL, PASSWORD).await;
        assert_eq!(page.status, StatusCode::FOUND, "login");
        let session = page.set_cookie("passport_session").expect("new session cookie");
        assert!(
            session.to_ascii_lowercase().contains("; httponly"),
            "HttpOnly after login"
        );
        for attribute in ["; samesite=lax", "; path=/"] {
            assert!(session.to_ascii_lowercase().contains(attribute), "{attribute} after login: {session}");
        }
        assert_eq!(alice.cookie("passport_guest"), None, "the guest session ends at login");
        let csrf = alice.cookie("XSRF-TOKEN").expect("XSRF-TOKEN");
        assert_ne!(csrf, guest_csrf, "new CSRF token at login");

        let consent = alice.get(&url).await;
        assert_eq!(consent.status, StatusCode::OK, "consent\n{}", consent.body);
        let approve = consent.approve_form("alice's consent");
        assert_eq!(
            approve.get("_token"),
            Some(csrf.as_str()),
            "the form carries the session's token"
        );

        // Missing or wrong auth_token.
        let page = alice.post("/oauth/authorize", &approve.without("auth_token")).await;
        page.assert_error_page("no auth_token");
        let page = alice.post("/oauth/authorize", &approve.with("auth_token", "")).await;
        page.assert_error_page("empty auth_token");
        let forged = "A".repeat(40);
        let page = alice
            .post("/oauth/authorize", &approve.with("auth_token", &forged))
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "forged auth_token\n{}", page.body);
        assert_eq!(page.location(), None, "forged auth_token: no redirect");

        // CSRF: missing, wrong, from another session, no session at all.
        let page = alice.post("/oauth/authorize", &approve.without("_token")).await;
        assert_eq!(page.status.as_u16(), 419, "no _token\n{}", page.body);
        let page = alice.post("/oauth/authorize", &approve.with("_token", "wrong")).await;
        assert_eq!(page.status.as_u16(), 419, "wrong _token");
        let page = alice
            .post("/oauth/authorize", &approve.with("_token", &guest_csrf))
            .await;
        assert_eq!(page.status.as_u16(), 419, "the token of the session before login");
        let cookieless = Browser::new(&server.base);
        let page = cookieless.post("/oauth/authorize", &approve.fields).await;
        assert_eq!(page.status.as_u16(), 419, "no session cookie");
        let page = cookieless.get("/oauth/authorize").await;
        assert!(page.status.is_client_error(), "bare GET");

        // Another user's auth_token is refused, and stays usable by its owner.
        let bob = Browser::signed_in(&server, "bob@example.com", "bob's password").await;
        let bob_consent = bob.get(&url).await;
        let bob_approve = bob_consent.approve_form("bob's consent");
        let stolen = approve.with("auth_token", bob_approve.get("auth_token").expect("auth_token"));
        let page = alice.post("/oauth/authorize", &stolen).await;
        assert_eq!(
            page.status,
            StatusCode::FORBIDDEN,
            "another session's auth_token\n{}",
            page.body
        );
        let page = bob.submit(&bob_approve).await;
        page.callback(CALLBACK, false, "bob approves");

        // Single use.
        let consent = alice.get(&url).await;
        let approve = consent.approve_form("single use");
        let page = alice.submit(&approve).await;
        page.callback(CALLBACK, false, "first approval");
        let page = alice.submit(&approve).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "auth_token reused\n{}", page.body);
        let page = alice.submit(&consent.deny_form("deny with a used auth_token")).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "deny with a used auth_token");

        // The CSRF token may come in a header instead of the field, as a script would send it.
        let consent = alice.get(&url).await;
        let fields = consent.approve_form("X-CSRF-TOKEN").without("_token");
        let page = alice
            .send(
                alice
                    .http
                    .post(alice.url("/oauth/authorize"))
                    .header("X-CSRF-TOKEN", &csrf)
                    .form(&fields),
            )
            .await;
        page.callback(CALLBACK, false, "X-CSRF-TOKEN");
        let consent = alice.get(&url).await;
        let fields = consent.deny_form("X-XSRF-TOKEN deny").without("_token");
        let cookie_value = alice.cookie("XSRF-TOKEN").expect("XSRF-TOKEN");
        let page = alice
            .send(
                alice
                    .http
                    .post(alice.url("/oauth/authorize"))
                    .header("X-XSRF-TOKEN", cookie_value)
                    .form(&fields),
            )
            .await;
        page.callback(CALLBACK, false, "X-XSRF-TOKEN")
            .assert_error("access_denied", Some("st"), "X-XSRF-TOKEN deny");
        let consent = alice.get(&url).await;
        let fields = consent.approve_form("wrong X-CSRF-TOKEN").without("_token");
        let page = alice
            .send(
                alice
                    .http
                    .post(alice.url("/oauth/authorize"))
                    .header("X-CSRF-TOKEN", "wrong")
                    .form(&fields),
            )
            .await;
        assert_eq!(page.status.as_u16(), 419, "wrong X-CSRF-TOKEN");

        // A consent page left open too long can no longer be answered.
        let consent = alice.get(&url).await;
        let approve = consent.approve_form("approve after 31 minutes");
        server.advance(TimeDelta::minutes(31));
        let page = alice.submit(&approve).await;
        assert_eq!(
            page.status,
            StatusCode::FORBIDDEN,
            "approve after 31 minutes\n{}",
            page.body
        );

        // After logout the session (and its pending consent) is gone.
        let consent = alice.get(&url).await;
        let approve = consent.approve_form("approve after logout");
        let page = alice.post("/logout", &[("_token".to_owned(), csrf.clone())]).await;
        assert_eq!(page.status, StatusCode::FOUND, "logout\n{}", page.body);
        let page = alice.submit(&approve).await;
        assert_eq!(page.status.as_u16(), 419, "approve after logout");
        let page = alice.post("/logout", &[("_token".to_owned(), csrf.clone())]).await;
        assert_eq!(page.status.as_u16(), 419, "logout needs a session");
    }
}

// ---------------------------------------------------------------------------------------------
// 5. prompt, and when consent is skipped.
// ---------------------------------------------------------------------------------------------

backend_test! {
    async fn prompt_and_skipping_consent(db) {
        let server = TestServer::start(db, |b| b.login_rate_limit(0)).await;
        let (client_id, secret) = confidential(&server).await;
        server.user(EMAIL, PASSWORD).await;
        let browser = Browser::new(&server.base);
        let url = |scope: &str, prompt: Option<&str>| {
            let mut extra = vec![("scope", scope)];
            if let Some(p) = prompt {
                extra.push(("prompt", p));
            }
            code_url(&server, &client_id, "st 8", &extra)
        };

        // Guest + prompt=none: login_required.
        let page = browser.get(&url("read", Some("none"))).await;
        page.callback(CALLBACK, false, "guest prompt=none").assert_error(
            "login_required",
            Some("st 8"),
            "guest prompt=none",
        );

        // Signed in, nothing granted yet: consent_required.
        let page = browser.login(EMAIL, PASSWORD).await;
        assert_eq!(page.status, StatusCode::FOUND, "login");
        let page = browser.get(&url("read", Some("none"))).await;
        page.callback(CALLBACK, false, "prompt=none").assert_error(
            "consent_required",
            Some("st 8"),
            "prompt=none without a grant",
        );

        // Grant read + write (consent, approve, exchange: live tokens are the grant).
        let consent = browser.get(&url("read write", None)).await;
        assert_eq!(consent.status, StatusCode::OK, "first consent\n{}", consent.body);
        let page = browser.submit(&consent.approve_form("first consent")).await;
        let code = page
            .callback(CALLBACK, false, "first approval")
            .require("code", "first approval")
            .to_owned();
        exchange(
            &server,
            &code,
            &[
                ("client_id", &client_id),
                ("client_secret", &secret),
                ("redirect_uri", CALLBACK),
            ],
        )
        .await
        .assert_ok("exchange");

        // Now prompt=none, the same scopes and a subset go straight back with a code.
        for (scope, prompt) in [
            ("read write", Some("none")),
            ("read write", None),
            ("read", None),
            ("write", Some("none")),
        ] {
            let what = format!("granted {scope} prompt={prompt:?}");
            let page = browser.get(&url(scope, prompt)).await;
            let params = page.callback(CALLBACK, false, &what);
            assert!(params.get("code").is_some(), "{what}: code without consent");
            assert_eq!(params.get("state"), Some("st 8"), "{what}: state");
        }

        // A wider scope asks again; prompt=none then fails; prompt=consent always asks.
        let page = browser.get(&url("read admin", None)).await;
        assert_eq!(page.status, StatusCode::OK, "wider scope asks again");
        assert!(page.body.contains("Administer the account"), "the new scope is listed");
        let page = browser.get(&url("read admin", Some("none"))).await;
        page.callback(CALLBACK, false, "wider + prompt=none").assert_error(
            "consent_required",
            Some("st 8"),
            "wider + prompt=none",
        );
        let page = browser.get(&url("read", Some("consent"))).await;
        assert_eq!(page.status, StatusCode::OK, "prompt=consent asks\n{}", page.body);

        // prompt=login sends the user to log in again; afterwards the request continues (here
        // straight to the code, the scopes being granted). Until that login succeeds the
        // session lives on: a link with prompt=login cannot sign anyone out (security review:
        // the GET used to end the session).
        let login_url = url("read", Some("login"));
        let page = browser.get(&login_url).await;
        assert_eq!(page.status, StatusCode::FOUND, "prompt=login\n{}", page.body);
        assert_eq!(page.location(), Some("/login"), "prompt=login goes to /login");
        let home = browser.get("/").await;
        assert!(
            home.body.contains("You are signed in"),
            "prompt=login keeps the session until the new login:\n{}",
            home.body
        );
        let page = browser.get(&url("read", None)).await;
        page.callback(CALLBACK, false, "still signed in, already granted");
        // (That visit replaced the intended URL; start over from the prompt=login request.)
        let page = browser.get(&login_url).await;
        assert_eq!(page.location(), Some("/login"), "prompt=login asks for the login");
        let page = browser.login(EMAIL, PASSWORD).await;
        assert_eq!(
            page.location(),
            Some(path_and_query(&login_url).as_str()),
            "back to the request"
        );
        let page = browser.get(&login_url).await;
        let params = page.callback(CALLBACK, false, "after prompt=login");
        assert!(params.get("code").is_some(), "flow continues after the login");
        // The login satisfied that one request only.
        let page = browser.get(&login_url).await;
        assert_eq!(page.location(), Some("/login"), "prompt=login asks again next time");
        let page = browser.login(EMAIL, PASSWORD).await;
        assert_eq!(page.location(), Some(path_and_query(&login_url).as_str()), "back again");
        let page = browser.get(&login_url).await;
        page.callback(CALLBACK, false, "second prompt=login");

        // A signed-in user with prompt=login and no grant: log in, then consent.
        let (other_id, _) = confidential(&server).await;
        let other_url = code_url(&server, &other_id, "o", &[("prompt", "login")]);
        let page = browser.get(&other_url).await;
        assert_eq!(page.location(), Some("/login"), "prompt=login for another client");
        browser.login(EMAIL, PASSWORD).await;
        let page = browser.get(&other_url).await;
        assert_eq!(page.status, StatusCode::OK, "consent after prompt=login\n{}", page.body);

        // A client that skips authorization never shows consent.
        let (trusted_id, _) = create_client(
            &server,
            NewClient::new("First party", CODE_CLIENT)
                .redirect_uris([CALLBACK])
                .skips_authorization(true),
        )
        .await;
        for prompt in [None, Some("none")] {
            let mut extra = vec![("scope", "read write admin")];
            if let Some(p) = prompt {
                extra.push(("prompt", p));
            }
            let what = format!("skips_authorization prompt={prompt:?}");
            let page = browser.get(&code_url(&server, &trusted_id, "t", &extra)).await;
            let params = page.callback(CALLBACK, false, &what);
            assert!(params.get("code").is_some(), "{what}: code without consent");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 6. PKCE and the redirect-URI binding of a code.
// ---------------------------------------------------------------------------------------------

backend_test! {
    async fn pkce_and_redirect_uri_binding(db) {
        let server = TestServer::start_default(db).await;
        let (public_id, _) = server.client(CODE_CLIENT, true).await;
        let (client_id, secret) = confidential(&server).await;
        server.user(EMAIL, PASSWORD).await;
        let browser = Browser::signed_in(&server, EMAIL, PASSWORD).await;
        let pkce_code = |challenge: &str, method: Option<&str>| {
            let mut extra = vec![("code_challenge", challenge.to_owned())];
            if let Some(m) = method {
                extra.push(("code_challenge_method", m.to_owned()));
            }
            let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
            code_url(&server, &public_id, "p", &extra)
        };

        // S256, public client, no secret.
        let (verifier, challenge) = pkce_s256();
        let code = browser
            .code(&pkce_code(&challenge, Some("S256")), CALLBACK, "S256")
            .await;
        let answer = exchange(
            &server,
            &code,
            &[
                ("client_id", &public_id),
                ("redirect_uri", CALLBACK),
                ("code_verifier", &verifier),
            ],
        )
        .await;
        answer.assert_ok("S256 exchange");
        assert!(!answer.refresh_token().is_empty(), "public clients get a refresh token");
        let (status, _) = api_user(&server, answer.access_token()).await;
        assert_eq!(status, StatusCode::OK, "PKCE token works");

        // Failures, each on a fresh code.
        let (other_verifier, _) = pkce_s256();
        let cases: Vec<(&str, Option<&str>, u16, &str)> = vec![
            ("wrong verifier", Some(other_verifier.as_str()), 400, "invalid_grant"),
            (
                "the challenge as verifier",
                Some(challenge.as_str()),
                400,
                "invalid_grant",
            ),
            ("missing verifier", None, 400, "invalid_request"),
            ("malformed verifier", Some("short"), 400, "invalid_request"),
        ];
        for (what, sent, status, error) in cases {
            let what = format!("S256 with {what}");
            let code = browser
                .code(&pkce_code(&challenge, Some("S256")), CALLBACK, &what)
                .await;
            let mut fields = vec![("client_id", public_id.as_str()), ("redirect_uri", CALLBACK)];
            if let Some(v) = sent {
                fields.push(("code_verifier", v));
            }
            exchange(&server, &code, &fields)
                .await
                .assert_error(status, error, &what);
        }

        // plain, explicit and by default.
        let plain = pkce_string('p');
        for method in [Some("plain"), None] {
            let what = format!("plain ({method:?})");
            let code = browser.code(&pkce_code(&plain, method), CALLBACK, &what).await;
            let wrong = pkce_string('w');
            exchange(
                &server,
                &code,
                &[
                    ("client_id", &public_id),
                    ("redirect_uri", CALLBACK),
                    ("code_verifier", &wrong),
                ],
            )
            .await
            .assert_error(400, "invalid_grant", &what);
            let code = browser.code(&pkce_code(&plain, method), CALLBACK, &what).await;
            exchange(
                &server,
                &code,
                &[
                    ("client_id", &public_id),
                    ("redirect_uri", CALLBACK),
                    ("code_verifier", &plain),
                ],
            )
            .await
            .assert_ok(&what);
        }

        // Downgrade protection: a verifier for a code issued without a challenge.
        let plain_url = code_url(&server, &client_id, "d", &[]);
        let code = browser.code(&plain_url, CALLBACK, "verifier without challenge").await;
        exchange(
            &server,
            &code,
            &[
                ("client_id", &client_id),
                ("client_secret", &secret),
                ("redirect_uri", CALLBACK),
                ("code_verifier", &verifier),
            ],
        )
        .await
        .assert_error(400, "invalid_request", "verifier without challenge");

        // The code is bound to the redirect_uri it was requested with.
        let creds = [("client_id", client_id.as_str()), ("client_secret", secret.as_str())];
        let code = browser.code(&plain_url, CALLBACK, "another redirect_uri").await;
        let mut fields = creds.to_vec();
        fields.push(("redirect_uri", "https://client.example/other"));
        exchange(&server, &code, &fields)
            .await
            .assert_error(400, "invalid_grant", "another redirect_uri");
        let code = browser.code(&plain_url, CALLBACK, "redirect_uri left out").await;
        exchange(&server, &code, &creds)
            .await
            .assert_error(400, "invalid_request", "redirect_uri left out");
        let code = browser.code(&plain_url, CALLBACK, "the same redirect_uri").await;
        let mut fields = creds.to_vec();
        fields.push(("redirect_uri", CALLBACK));
        exchange(&server, &code, &fields)
            .await
            .assert_ok("the same redirect_uri");

        // A request without redirect_uri (one registered URI) needs none at the exchange.
        let url = authorize_url(
            &server,
            &[
                ("response_type", "code"),
                ("client_id", &client_id),
                ("scope", "read"),
                ("state", "n"),
            ],
        );
        let code = browser.code(&url, CALLBACK, "no redirect_uri at either step").await;
        exchange(&server, &code, &creds)
            .await
            .assert_ok("no redirect_uri at either step");
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Codes: lifetime, single use, replay, races, client binding.
// ---------------------------------------------------------------------------------------------

backend_test! {
    async fn codes_expire_are_single_use_and_replay_revokes(db) {
        let server = TestServer::start_default(db).await;
        let (client_id, secret) = confidential(&server).await;
        let (other_id, other_secret) = confidential(&server).await;
        server.user(EMAIL, PASSWORD).await;
        let browser = Browser::signed_in(&server, EMAIL, PASSWORD).await;
        let url = code_url(&server, &client_id, "c", &[]);
        let creds = [
            ("client_id", client_id.as_str()),
            ("client_secret", secret.as_str()),
            ("redirect_uri", CALLBACK),
        ];

        // Ten minutes: valid after nine, expired after eleven.
        let code = browser.code(&url, CALLBACK, "a nine-minute-old code").await;
        server.advance(TimeDelta::minutes(9));
        exchange(&server, &code, &creds)
            .await
            .assert_ok("a nine-minute-old code");
        let code = browser.code(&url, CALLBACK, "an eleven-minute-old code").await;
        server.advance(TimeDelta::minutes(11));
        exchange(&server, &code, &creds)
            .await
            .assert_error(400, "invalid_grant", "an eleven-minute-old code");

        // Single use; the replay revokes what the first exchange issued.
        let code = browser.code(&url, CALLBACK, "first exchange").await;
        let first = exchange(&server, &code, &creds).await;
        first.assert_ok("first exchange");
        let (status, _) = api_user(&server, first.access_token()).await;
        assert_eq!(status, StatusCode::OK, "token works before the replay");
        exchange(&server, &code, &creds)
            .await
            .assert_error(400, "invalid_grant", "replayed code");
        let (status, _) = api_user(&server, first.access_token()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "replay revokes the access token");
        let refreshed = token(
            &server,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &client_id),
                ("client_secret", &secret),
                ("refresh_token", first.refresh_token()),
            ],
        )
        .await;
        refreshed.assert_error(400, "invalid_grant", "replay revokes the refresh token");

        // Unknown and garbage codes.
        for bogus in ["0".repeat(80), "not a code".to_owned(), "é".to_owned()] {
            exchange(&server, &bogus, &creds).await.assert_error(
                400,
                "invalid_grant",
                &format!("bogus code {bogus:?}"),
            );
        }
        let answer = token(
            &server,
            &[("grant_type", "authorization_code"), creds[0], creds[1], creds[2]],
        )
        .await;
        answer.assert_error(400, "invalid_request", "no code");

        // A code issued to one client is worthless to another.
        let code = browser.code(&url, CALLBACK, "another client's code").await;
        exchange(
            &server,
            &code,
            &[
                ("client_id", &other_id),
                ("client_secret", &other_secret),
                ("redirect_uri", CALLBACK),
            ],
        )
        .await
        .assert_error(400, "invalid_grant", "another client's code");
        // ... and the right client's secret is still required.
        exchange(
            &server,
            &code,
            &[
                ("client_id", &client_id),
                ("client_secret", "wrong"),
                ("redirect_uri", CALLBACK),
            ],
        )
        .await
        .assert_error(401, "invalid_client", "wrong secret");
    }
}

backend_test! {
    #[flavor(multi_thread, 4)]
    async fn concurrent_exchanges_of_one_code_yield_one_token(db) {
        let server = TestServer::start_default(db).await;
        let (client_id, secret) = confidential(&server).await;
        server.user(EMAIL, PASSWORD).await;
        let browser = Browser::signed_in(&server, EMAIL, PASSWORD).await;
        let code = browser
            .code(&code_url(&server, &client_id, "c", &[]), CALLBACK, "the raced code")
            .await;

        let barrier = Arc::new(tokio::sync::Barrier::new(10));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..10 {
            let http = server.http.clone();
            let url = server.url("/oauth/token");
            let form = [
                ("grant_type", "authorization_code".to_owned()),
                ("code", code.clone()),
                ("client_id", client_id.clone()),
                ("client_secret", secret.clone()),
                ("redirect_uri", CALLBACK.to_owned()),
            ];
            let barrier = barrier.clone();
            tasks.spawn(async move {
                barrier.wait().await;
                let response = http.post(url).form(&form).send().await.expect("token request");
                let status = response.status();
                let body: Value = response.json().await.expect("JSON");
                (status, body)
            });
        }
        let mut winners = Vec::new();
        let mut losers = 0;
        while let Some(result) = tasks.join_next().await {
            let (status, body) = result.expect("task");
            match status {
                StatusCode::OK => winners.push(body),
                StatusCode::BAD_REQUEST => {
                    assert_eq!(body["error"], "invalid_grant", "a losing exchange: {body}");
                    losers += 1;
                }
                other => panic!("unexpected {other}: {body}"),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one exchange wins: {winners:?}");
        assert_eq!(losers, 9, "the others lose");
        // The losers were replays: the winner's tokens are revoked too.
        let access = winners[0]["access_token"].as_str().expect("access_token");
        let (status, _) = api_user(&server, access).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "replays revoke the winner's token");
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Implicit grant.
// ---------------------------------------------------------------------------------------------

backend_test! {
    async fn implicit_grant_puts_the_token_in_the_fragment(db) {
        let server = TestServer::start(db, |b| b.enable_implicit_grant(true)).await;
        let (implicit_id, secret) = server.client(ClientKind::Implicit, false).await;
        assert_eq!(secret, None, "implicit clients are public");
        let (code_id, _) = confidential(&server).await;
        server.user(EMAIL, PASSWORD).await;
        let browser = Browser::signed_in(&server, EMAIL, PASSWORD).await;
        let token_url = |state: &str, extra: &[(&str, &str)]| {
            let mut params = vec![
                ("response_type", "token"),
                ("client_id", implicit_id.as_str()),
                ("redirect_uri", CALLBACK),
                ("scope", "read"),
                ("state", state),
            ];
            for (k, v) in extra {
                params.retain(|(n, _)| n != k);
                params.push((k, v));
            }
            authorize_url(&server, &params)
        };

        let consent = browser.get(&token_url(AWKWARD_STATE, &[])).await;
        assert_eq!(consent.status, StatusCode::OK, "implicit consent\n{}", consent.body);
        let page = browser.submit(&consent.approve_form("implicit consent")).await;
        let what = "implicit approve";
        let params = page.callback(CALLBACK, true, what);
        assert_eq!(params.get("token_type"), Some("Bearer"), "{what}: token_type");
        assert_eq!(params.get("state"), Some(AWKWARD_STATE), "{what}: state");
        let expires_in: i64 = params
            .require("expires_in", what)
            .parse()
            .expect("expires_in is a number");
        assert!(expires_in > 0, "{what}: expires_in {expires_in}");
        assert_eq!(params.get("refresh_token"), None, "{what}: no refresh token");
        assert_eq!(params.get("code"), None, "{what}: no code");
        let access = params.require("access_token", what);
        let (status, user) = api_user(&server, access).await;
        assert_eq!(status, StatusCode::OK, "{what}: the token works");
        assert_eq!(user["email"], EMAIL, "{what}: the user's token");

        // Errors go in the fragment too.
        let consent = browser.get(&token_url("d s", &[("prompt", "consent")])).await;
        let page = browser.submit(&consent.deny_form("implicit deny")).await;
        page.callback(CALLBACK, true, "implicit deny")
            .assert_error("access_denied", Some("d s"), "implicit deny");
        let page = browser.get(&token_url(AWKWARD_STATE, &[("scope", "nope")])).await;
        page.callback(CALLBACK, true, "implicit invalid_scope").assert_error(
            "invalid_scope",
            Some(AWKWARD_STATE),
            "implicit invalid_scope",
        );
        let guest = Browser::new(&server.base);
        let page = guest.get(&token_url("g", &[("prompt", "none")])).await;
        page.callback(CALLBACK, true, "implicit login_required").assert_error(
            "login_required",
            Some("g"),
            "implicit login_required",
        );

        // Each client only gets its own grant.
        let page = browser.get(&code_url(&server, &implicit_id, "x", &[])).await;
        page.callback(CALLBACK, false, "implicit client, code flow")
            .assert_error("unauthorized_client", Some("x"), "implicit client, code flow");
        let page = browser.get(&token_url("y", &[("client_id", code_id.as_str())])).await;
        page.callback(CALLBACK, true, "code client, implicit flow")
            .assert_error("unauthorized_client", Some("y"), "code client, implicit flow");
    }
}

backend_test! {
    /// With the implicit grant off (the default), response_type=token is refused.
    async fn implicit_grant_is_off_by_default(db) {
        let server = TestServer::start_default(db).await;
        let (implicit_id, _) = server.client(ClientKind::Implicit, true).await;
        server.user(EMAIL, PASSWORD).await;
        let browser = Browser::signed_in(&server, EMAIL, PASSWORD).await;
        let url = authorize_url(
            &server,
            &[
                ("response_type", "token"),
                ("client_id", &implicit_id),
                ("redirect_uri", CALLBACK),
                ("scope", "read"),
                ("state", "off"),
            ],
        );
        let page = browser.get(&url).await;
        let location = page.location().unwrap_or_default().to_owned();
        assert!(!location.contains("access_token"), "no token when disabled: {location}");
        page.callback(CALLBACK, false, "implicit disabled").assert_error(
            "unsupported_response_type",
            Some("off"),
            "implicit disabled",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 9. Bad input: always 4xx, never 5xx.
// ---------------------------------------------------------------------------------------------

backend_test! {
    async fn bad_input_is_refused_with_4xx(db) {
        let server = TestServer::start(db, |b| b.login_rate_limit(0)).await;
        let (client_id, _) = confidential(&server).await;
        server.user(EMAIL, PASSWORD).await;
        let guest = Browser::new(&server.base);
        let big = "x".repeat(5000);
        let base = format!(
            "/oauth/authorize?response_type=code&client_id={client_id}&redirect_uri=https%3A%2F%2Fclient.example%2Fcallback&scope=read"
        );

        // The authorization endpoint.
        let queries = [
            ("doubled client_id", format!("{base}&client_id={client_id}&state=s")),
            ("doubled state", format!("{base}&state=a&state=b")),
            (
                "doubled redirect_uri",
                format!("{base}&redirect_uri=https%3A%2F%2Fevil.example%2F&state=s"),
            ),
            ("oversized state", format!("{base}&state={big}")),
            (
                "oversized scope",
                format!("/oauth/authorize?response_type=code&client_id={client_id}&state=s&scope={big}"),
            ),
            ("oversized unknown parameter", format!("{base}&state=s&junk={big}")),
            ("%FF in state", format!("{base}&state=%FF")),
            ("%FF in a name", format!("{base}&st%FFate=s")),
            (
                "%C3%28 in client_id",
                "/oauth/authorize?response_type=code&client_id=%C3%28".to_owned(),
            ),
        ];
        for (what, path) in &queries {
            let what = format!("authorize with {what}");
            let page = guest.get(path).await;
            page.assert_error_page(&what);
        }

        // The login form.
        let (_, form) = guest.login_form().await;
        let csrf = form.get("_token").expect("_token").to_owned();
        let form_type = "application/x-www-form-urlencoded";
        let bodies: Vec<(&str, &str, Vec<u8>)> = vec![
            (
                "doubled email",
                form_type,
                format!("_token={csrf}&email=a%40b.c&email=d%40e.f&password=x").into_bytes(),
            ),
            (
                "doubled _token",
                form_type,
                format!("_token={csrf}&_token={csrf}&email=a&password=x").into_bytes(),
            ),
            (
                "%FF in email",
                form_type,
                format!("_token={csrf}&email=%FF&password=x").into_bytes(),
            ),
            (
                "raw invalid UTF-8",
                form_type,
                [format!("_token={csrf}&email=").into_bytes(), vec![0xff, 0xfe]].concat(),
            ),
            (
                "oversized password",
                form_type,
                format!("_token={csrf}&email={EMAIL}&password={big}").into_bytes(),
            ),
            (
                "body over 16 KiB",
                form_type,
                format!("_token={csrf}&email={EMAIL}&password={}", "y".repeat(20_000)).into_bytes(),
            ),
            (
                "text/plain",
                "text/plain",
                format!("_token={csrf}&email={EMAIL}&password=x").into_bytes(),
            ),
            (
                "multipart",
                "multipart/form-data; boundary=XyZ",
                b"--XyZ\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\na\r\n--XyZ--\r\n".to_vec(),
            ),
            ("malformed JSON", "application/json", b"{\"email\":".to_vec()),
        ];
        for (what, content_type, body) in bodies {
            let what = format!("login with {what}");
            let page = guest.post_raw("/login", content_type, body).await;
            page.assert_any_client_error(&what);
        }
        // None of that signed anyone in; the real form still works.
        let page = guest.login(EMAIL, PASSWORD).await;
        assert_eq!(page.status, StatusCode::FOUND, "login after bad input\n{}", page.body);

        // The consent forms.
        let consent = guest
            .get(&code_url(&server, &client_id, "s", &[("prompt", "consent")]))
            .await;
        let approve = consent.approve_form("the consent forms");
        let encoded = |fields: &[(String, String)]| {
            let mut url = Url::parse("http://x/").expect("url");
            url.query_pairs_mut().extend_pairs(fields);
            url.query().unwrap_or_default().to_owned()
        };
        let fields = encoded(&approve.fields);
        let auth_token = approve.get("auth_token").expect("auth_token").to_owned();
        let bodies: Vec<(&str, &str, Vec<u8>)> = vec![
            (
                "doubled auth_token",
                form_type,
                format!("{fields}&auth_token={auth_token}").into_bytes(),
            ),
            (
                "%FF in state",
                form_type,
                format!("{}&state=%FF", encoded(&approve.without("state"))).into_bytes(),
            ),
            (
                "oversized state",
                form_type,
                format!("{}&state={big}", encoded(&approve.without("state"))).into_bytes(),
            ),
            (
                "oversized auth_token",
                form_type,
                encoded(&approve.with("auth_token", &big)).into_bytes(),
            ),
            (
                "body over 16 KiB",
                form_type,
                format!("{fields}&junk={}", "z".repeat(20_000)).into_bytes(),
            ),
            ("text/plain", "text/plain", fields.clone().into_bytes()),
            ("JSON array", "application/json", b"[1,2]".to_vec()),
        ];
        for (what, content_type, body) in bodies {
            let what = format!("consent form with {what}");
            let page = guest.post_raw("/oauth/authorize", content_type, body.clone()).await;
            page.assert_any_client_error(&what);
            let page = guest
                .send(
                    guest
                        .http
                        .delete(guest.url("/oauth/authorize"))
                        .header("content-type", content_type)
                        .body(body),
                )
                .await;
            page.assert_any_client_error(&format!("{what} (DELETE)"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 10. A third-party client library drives the flow.
// ---------------------------------------------------------------------------------------------

/// The `oauth2` crate builds the authorization URL (state + S256 PKCE), a cookie-holding client
/// plays the browser, and the crate exchanges the code and refreshes the token.
async fn oauth2_crate_flow(server: &TestServer, public: bool) {
    let what = format!(
        "oauth2 crate, {} client",
        if public { "public" } else { "confidential" }
    );
    let (id, secret) = server.client(CODE_CLIENT, public).await;
    assert_eq!(secret.is_none(), public, "{what}: secret");
    let mut client = BasicClient::new(ClientId::new(id))
        .set_auth_uri(AuthUrl::new(server.url("/oauth/authorize")).expect("auth URL"))
        .set_token_uri(TokenUrl::new(server.url("/oauth/token")).expect("token URL"))
        .set_redirect_uri(RedirectUrl::new(CALLBACK.to_owned()).expect("redirect URL"));
    if let Some(secret) = secret {
        client = client.set_client_secret(ClientSecret::new(secret));
    }
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf_state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".to_owned()))
        .add_scope(Scope::new("orders:read".to_owned()))
        .set_pkce_challenge(challenge)
        .url();

    // The user's browser: login, consent, approve.
    let browser = Browser::new(&server.base);
    let page = browser.get(auth_url.as_str()).await;
    assert_eq!(page.location(), Some("/login"), "{what}: guest goes to login");
    let page = browser.login(EMAIL, PASSWORD).await;
    let back = page.location().expect("back to the request").to_owned();
    assert_eq!(back, path_and_query(auth_url.as_str()), "{what}: back to the request");
    let consent = browser.get(&back).await;
    assert_eq!(consent.status, StatusCode::OK, "{what}: consent\n{}", consent.body);
    assert!(consent.body.contains("Read your orders"), "{what}: scopes listed");
    let page = browser.submit(&consent.approve_form(&what)).await;
    let params = page.callback(CALLBACK, false, &what);
    assert_eq!(params.get("state"), Some(csrf_state.secret().as_str()), "{what}: state");
    let code = params.require("code", &what).to_owned();

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("{what}: code exchange: {e:?}"));
    assert_eq!(*tokens.token_type(), BasicTokenType::Bearer, "{what}: token type");
    assert!(
        tokens.expires_in().is_some_and(|d| d.as_secs() > 0),
        "{what}: expires_in"
    );
    let (status, user) = api_user(server, tokens.access_token().secret()).await;
    assert_eq!(status, StatusCode::OK, "{what}: the token works");
    assert_eq!(user["email"], EMAIL, "{what}: the user's token");
    let refresh = tokens.refresh_token().expect("refresh token").clone();

    let renewed = client
        .exchange_refresh_token(&refresh)
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("{what}: refresh: {e:?}"));
    let (status, _) = api_user(server, renewed.access_token().secret()).await;
    assert_eq!(status, StatusCode::OK, "{what}: the refreshed token works");
    let (status, _) = api_user(server, tokens.access_token().secret()).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "{what}: the old token is revoked by rotation"
    );
    let new_refresh = renewed.refresh_token().expect("rotated refresh token");
    assert_ne!(new_refresh.secret(), refresh.secret(), "{what}: refresh tokens rotate");

    // The used refresh token is refused, and the library reports the RFC error.
    match client
        .exchange_refresh_token(&RefreshToken::new(refresh.secret().clone()))
        .request_async(&http)
        .await
    {
        Err(RequestTokenError::ServerResponse(err)) => {
            assert_eq!(
                *err.error(),
                BasicErrorResponseType::InvalidGrant,
                "{what}: reuse error"
            );
        }
        other => panic!("{what}: a used refresh token must fail with invalid_grant: {other:?}"),
    }

    // A wrong verifier is reported as invalid_grant to the library too.
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, _) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".to_owned()))
        .set_pkce_challenge(challenge)
        .url();
    let page = browser.authorize(auth_url.as_str(), &what).await;
    let code = page.callback(CALLBACK, false, &what).require("code", &what).to_owned();
    let wrong = PkceCodeVerifier::new(pkce_string('v'));
    match client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(wrong)
        .request_async(&http)
        .await
    {
        Err(RequestTokenError::ServerResponse(err)) => {
            assert_eq!(
                *err.error(),
                BasicErrorResponseType::InvalidGrant,
                "{what}: wrong verifier"
            );
        }
        other => panic!("{what}: a wrong verifier must fail with invalid_grant: {other:?}"),
    }
}

backend_test! {
    async fn the_oauth2_crate_completes_the_flow(db) {
        let server = TestServer::start(db, |b| b.login_rate_limit(0)).await;
        server.user(EMAIL, PASSWORD).await;
        oauth2_crate_flow(&server, true).await;
        oauth2_crate_flow(&server, false).await;
    }
}
