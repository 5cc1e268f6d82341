//! Pushed authorization requests (RFC 9126) and protected resource metadata (RFC 9728), over
//! HTTP: the push (client authentication, validation, the `201` answer), the authorize
//! endpoint's use of a `request_uri` (single use, expiry, client binding, conflicting
//! front-channel parameters, the login and consent round trip), PAR required per client and
//! globally, and what discovery and the well-known resource document say.

use chrono::TimeDelta;
use oauth2::PkceCodeChallenge;
use passport::{ClientKind, NewClient};
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};

use crate::common::{TestServer, api_user, create_client};
use crate::support_web::{Browser, Page};

const CALLBACK: &str = "https://client.example/callback";
const EMAIL: &str = "pat@example.com";
const PASSWORD: &str = "correct horse battery staple";
const CODE_CLIENT: ClientKind = ClientKind::AuthorizationCode { device_flow: false };
const PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// `POST /oauth/par` with `form`, authenticated with Basic when `basic` is given.
async fn push(server: &TestServer, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> Page {
    let mut request = server.http.post(server.url("/oauth/par")).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    Page::read(request.send().await.expect("push")).await
}

/// A code request for [`CALLBACK`] with `state` and an S256 challenge, plus `extra`.
fn code_request<'a>(challenge: &'a str, state: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("response_type", "code"),
        ("redirect_uri", CALLBACK),
        ("scope", "read"),
        ("state", state),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    form.extend_from_slice(extra);
    form
}

/// A successful push: its `request_uri`.
#[track_caller]
fn pushed(page: &Page, what: &str) -> String {
    assert_eq!(page.status, StatusCode::CREATED, "{what}: {}", page.body);
    assert_eq!(page.header("cache-control"), Some("no-store"), "{what}: no-store");
    let body = page.json();
    assert_eq!(body["expires_in"], 60, "{what}: {body}");
    let request_uri = body["request_uri"].as_str().expect("request_uri").to_owned();
    assert!(
        request_uri.starts_with(PREFIX) && request_uri.len() > PREFIX.len() + 32,
        "{what}: {request_uri}"
    );
    request_uri
}

/// A JSON error of the PAR endpoint.
#[track_caller]
fn refused(page: &Page, status: u16, error: &str, what: &str) {
    assert_eq!(page.status.as_u16(), status, "{what}: {}", page.body);
    assert_eq!(page.json()["error"], error, "{what}");
    assert_eq!(page.header("cache-control"), Some("no-store"), "{what}: no-store");
}

/// `/oauth/authorize` with `params`.
fn authorize(params: &[(&str, &str)]) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("/oauth/authorize?{query}")
}

/// An error page (never a redirect) naming `code`.
#[track_caller]
fn error_page(page: &Page, code: &str, what: &str) {
    assert_eq!(
        page.status,
        StatusCode::BAD_REQUEST,
        "{what}: {:?}\n{}",
        page.location(),
        page.body
    );
    assert_eq!(page.location(), None, "{what}: never a redirect");
    assert!(page.body.contains(code), "{what}: names {code}\n{}", page.body);
}

/// The query parameters of a redirect to [`CALLBACK`].
#[track_caller]
fn callback(page: &Page, what: &str) -> Vec<(String, String)> {
    assert_eq!(page.status, StatusCode::FOUND, "{what}: {}", page.body);
    let location = page.location().expect("Location");
    assert!(location.starts_with(&format!("{CALLBACK}?")), "{what}: {location}");
    Url::parse(location)
        .expect("absolute")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

backend_test! {
    /// RFC 9126 §2.1–§2.2 and §4: a confidential client pushes with HTTP Basic, the browser
    /// brings only `client_id` and `request_uri`, signs in, consents, and the code is exchanged
    /// with the pushed PKCE challenge's verifier. The `request_uri` is single use (§4, §7.3):
    /// used again it is `invalid_request_uri`, as is the reference the sign-in carried.
    async fn a_pushed_request_runs_the_whole_flow_once(db) {
        let server = TestServer::start_default(db).await;
        let (client_id, secret) = server.client(CODE_CLIENT, false).await;
        let secret = secret.expect("confidential");
        server.user(EMAIL, PASSWORD).await;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = "s 1&2";
        let form = code_request(challenge.as_str(), state, &[]);
        let request_uri = pushed(
            &push(&server, Some((client_id.as_str(), secret.as_str())), &form).await,
            "push",
        );

        let browser = Browser::new(&server.base);
        let url = authorize(&[("client_id", client_id.as_str()), ("request_uri", request_uri.as_str())]);
        let page = browser.get(&url).await;
        assert_eq!(
            (page.status, page.location()),
            (StatusCode::FOUND, Some("/login")),
            "a guest signs in first\n{}",
            page.body
        );
        let page = browser.login(EMAIL, PASSWORD).await;
        let back = page.location().expect("back to the request").to_owned();
        assert!(
            back.starts_with("/oauth/authorize?") && !back.contains(&request_uri[PREFIX.len()..]),
            "the sign-in carries a fresh reference, not the used one: {back}"
        );
        let consent = browser.get(&back).await;
        assert_eq!(consent.status, StatusCode::OK, "consent page\n{}", consent.body);
        let approve = consent.approve_form("consent");
        assert_eq!(approve.get("state"), Some(state), "the pushed state");
        let params = callback(&browser.submit(&approve).await, "approve");
        assert_eq!(get(&params, "state"), Some(state));
        let code = get(&params, "code").expect("code").to_owned();

        let answer = server
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", verifier.secret()),
                ("client_id", &client_id),
                ("client_secret", &secret),
            ])
            .await;
        assert_eq!(answer.status(), StatusCode::OK);
        let body: Value = answer.json().await.unwrap();
        let (status, user) = api_user(&server, body["access_token"].as_str().unwrap()).await;
        assert_eq!((status, user["email"].as_str()), (StatusCode::OK, Some(EMAIL)));

        for (what, path) in [
            ("the pushed request_uri again", url.as_str()),
            ("the carried one again", back.as_str()),
        ] {
            error_page(&browser.get(path).await, "invalid_request_uri", what);
        }
    }
}

backend_test! {
    /// RFC 9126 §2.2: the `request_uri` is bound to the client that pushed it (another client
    /// naming it is refused, and does not use it up) and lives `expires_in` seconds. Unknown
    /// references are refused the same way, as a page (§4: no redirect to an unverified URI).
    async fn a_request_uri_is_bound_to_its_client_and_expires(db) {
        let server = TestServer::start_default(db).await;
        let (client_id, secret) = server.client(CODE_CLIENT, false).await;
        let secret = secret.expect("confidential");
        let (other_id, _) = server.client(CODE_CLIENT, false).await;
        let (challenge, _) = PkceCodeChallenge::new_random_sha256();
        let form = code_request(challenge.as_str(), "s", &[]);
        let guest = Browser::new(&server.base);

        let request_uri = pushed(
            &push(&server, Some((client_id.as_str(), secret.as_str())), &form).await,
            "push",
        );
        let foreign = authorize(&[("client_id", other_id.as_str()), ("request_uri", request_uri.as_str())]);
        error_page(&guest.get(&foreign).await, "invalid_request_uri", "another client's");
        let own = authorize(&[("client_id", client_id.as_str()), ("request_uri", request_uri.as_str())]);
        let page = guest.get(&own).await;
        assert_eq!(
            page.location(),
            Some("/login"),
            "still there for its client\n{}",
            page.body
        );

        let request_uri = pushed(
            &push(&server, Some((client_id.as_str(), secret.as_str())), &form).await,
            "push",
        );
        server.advance(TimeDelta::seconds(61));
        let late = authorize(&[("client_id", client_id.as_str()), ("request_uri", request_uri.as_str())]);
        error_page(&guest.get(&late).await, "invalid_request_uri", "expired");

        let unknown = format!("{PREFIX}nothing-was-pushed-under-this");
        for (what, uri) in [
            ("unknown", unknown.as_str()),
            ("not ours", "https://client.example/request.jwt"),
        ] {
            let url = authorize(&[("client_id", client_id.as_str()), ("request_uri", uri)]);
            error_page(&guest.get(&url).await, "invalid_request_uri", what);
        }
        let url = authorize(&[("request_uri", unknown.as_str())]);
        error_page(&guest.get(&url).await, "invalid_request", "no client_id");
    }
}

backend_test! {
    /// RFC 9126 §4: the pushed parameters are the request. The front channel may repeat them,
    /// but a parameter that differs (or that the push did not have) is refused with
    /// `invalid_request`, sent to the pushed redirect URI with the pushed `state`.
    async fn front_channel_parameters_must_not_conflict(db) {
        let server = TestServer::start_default(db).await;
        let (client_id, secret) = server.client(CODE_CLIENT, false).await;
        let secret = secret.expect("confidential");
        let (challenge, _) = PkceCodeChallenge::new_random_sha256();
        let form = code_request(challenge.as_str(), "pushed", &[]);
        let guest = Browser::new(&server.base);
        for (name, value) in [("scope", "read admin"), ("state", "other"), ("prompt", "none")] {
            let request_uri = pushed(
                &push(&server, Some((client_id.as_str(), secret.as_str())), &form).await,
                name,
            );
            let url = authorize(&[
                ("client_id", client_id.as_str()),
                ("request_uri", request_uri.as_str()),
                (name, value),
            ]);
            let params = callback(&guest.get(&url).await, name);
            assert_eq!(get(&params, "error"), Some("invalid_request"), "{name}: {params:?}");
            assert_eq!(get(&params, "state"), Some("pushed"), "{name}");
            assert_eq!(get(&params, "code"), None, "{name}");
        }
        let request_uri = pushed(
            &push(&server, Some((client_id.as_str(), secret.as_str())), &form).await,
            "same",
        );
        let url = authorize(&[
            ("client_id", client_id.as_str()),
            ("request_uri", request_uri.as_str()),
            ("response_type", "code"),
            ("scope", "read"),
        ]);
        let page = guest.get(&url).await;
        assert_eq!(
            page.location(),
            Some("/login"),
            "identical values are tolerated\n{}",
            page.body
        );
    }
}

backend_test! {
    /// RFC 9126 §2.1 and §2.3: the client authenticates as at the token endpoint (a public
    /// client by its `client_id`), a `request_uri` in the push is refused, and the request is
    /// validated as the authorize endpoint would; errors are token-endpoint JSON.
    async fn pushes_are_authenticated_and_validated(db) {
        let server = TestServer::start_default(db).await;
        let (client_id, secret) = server.client(CODE_CLIENT, false).await;
        let secret = secret.expect("confidential");
        let (public_id, _) = server.client(CODE_CLIENT, true).await;
        let (challenge, _) = PkceCodeChallenge::new_random_sha256();
        let challenge = challenge.as_str();
        let basic = Some((client_id.as_str(), secret.as_str()));

        let with_public = [
            &[("client_id", public_id.as_str())][..],
            &code_request(challenge, "s", &[])[..],
        ]
        .concat();
        pushed(
            &push(&server, None, &with_public).await,
            "a public client by its client_id",
        );
        let in_body = [
            &[("client_id", client_id.as_str()), ("client_secret", secret.as_str())][..],
            &code_request(challenge, "s", &[])[..],
        ]
        .concat();
        pushed(&push(&server, None, &in_body).await, "client_secret_post");

        let wrong = push(
            &server,
            Some((client_id.as_str(), "not-the-secret")),
            &code_request(challenge, "s", &[]),
        )
        .await;
        refused(&wrong, 401, "invalid_client", "wrong secret");
        assert_eq!(wrong.header("www-authenticate"), Some("Basic realm=\"OAuth\""));
        let cases = [
            (
                "§2.1: request_uri pushed",
                vec![("request_uri", "urn:ietf:params:oauth:request_uri:x")],
                "invalid_request",
            ),
            (
                "§2.3: unregistered redirect_uri",
                vec![("redirect_uri", "https://evil.example/cb")],
                "invalid_request",
            ),
            ("unknown scope", vec![("scope", "nope")], "invalid_scope"),
            (
                "response_type",
                vec![("response_type", "token")],
                "unsupported_response_type",
            ),
        ];
        for (what, changed, error) in cases {
            let mut form = code_request(challenge, "s", &[]);
            for (name, value) in changed {
                form.retain(|(n, _)| *n != name);
                form.push((name, value));
            }
            refused(&push(&server, basic, &form).await, 400, error, what);
        }
        let no_pkce: Vec<_> = code_request(challenge, "s", &[("client_id", public_id.as_str())])
            .into_iter()
            .filter(|(n, _)| !n.starts_with("code_challenge"))
            .collect();
        refused(
            &push(&server, None, &no_pkce).await,
            400,
            "invalid_request",
            "public client without PKCE",
        );
        let get = server.http.get(server.url("/oauth/par")).send().await.unwrap();
        assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED, "§2.3: POST only");
        // Bodies are read as at the token endpoint: strictly.
        let browser = Browser::new(&server.base);
        let body = format!("client_id={public_id}&state=a&state=b");
        let repeated = browser
            .post_raw("/oauth/par", "application/x-www-form-urlencoded", body)
            .await;
        refused(&repeated, 400, "invalid_request", "a repeated parameter");
        let xml = browser.post_raw("/oauth/par", "text/xml", "<a/>").await;
        refused(&xml, 400, "invalid_request", "another content type");
    }
}

backend_test! {
    /// RFC 9126 §4–§6: with PAR required for a client, or for every client, an authorization
    /// request without `request_uri` is refused with `invalid_request` (redirected, the client
    /// and its redirect URI being valid) while a pushed one goes on; discovery says which.
    async fn required_pushes_refuse_plain_requests(db) {
        let server = TestServer::start_default(db).await;
        let (strict_id, strict_secret) = create_client(
            &server,
            NewClient::new("Strict", CODE_CLIENT)
                .redirect_uris([CALLBACK])
                .require_pushed_authorization_requests(true),
        )
        .await;
        let strict_secret = strict_secret.expect("confidential");
        let (lax_id, lax_secret) = server.client(CODE_CLIENT, false).await;
        let lax_secret = lax_secret.expect("confidential");
        let everyone = server.beside(|b| b.require_pushed_authorization_requests(true)).await;
        let (challenge, _) = PkceCodeChallenge::new_random_sha256();
        let form = code_request(challenge.as_str(), "s", &[]);

        for (what, target, client_id) in [
            ("per client", &server, strict_id.as_str()),
            ("globally", &everyone, lax_id.as_str()),
        ] {
            let guest = Browser::new(&target.base);
            let plain = [&[("client_id", client_id)][..], &form[..]].concat();
            let params = callback(&guest.get(&authorize(&plain)).await, what);
            assert_eq!(get(&params, "error"), Some("invalid_request"), "{what}: {params:?}");
            assert_eq!(get(&params, "state"), Some("s"), "{what}");
        }
        let lax = Browser::new(&server.base);
        let plain = [&[("client_id", lax_id.as_str())][..], &form[..]].concat();
        assert_eq!(
            lax.get(&authorize(&plain)).await.location(),
            Some("/login"),
            "not required"
        );
        for (what, target, client) in [
            ("per client", &server, (strict_id.as_str(), strict_secret.as_str())),
            ("globally", &everyone, (lax_id.as_str(), lax_secret.as_str())),
        ] {
            let request_uri = pushed(&push(target, Some(client), &form).await, what);
            let url = authorize(&[("client_id", client.0), ("request_uri", request_uri.as_str())]);
            let page = Browser::new(&target.base).get(&url).await;
            assert_eq!(page.location(), Some("/login"), "{what}: pushed goes on\n{}", page.body);
        }

        for (target, required) in [(&server, false), (&everyone, true)] {
            let response = target
                .http
                .get(target.url("/.well-known/oauth-authorization-server"))
                .send()
                .await;
            let metadata: Value = response.unwrap().json().await.unwrap();
            assert_eq!(
                metadata["pushed_authorization_request_endpoint"],
                json!(format!("{}/oauth/par", target.base))
            );
            assert_eq!(metadata["require_pushed_authorization_requests"], json!(required));
        }
    }
}

/// RFC 9728 §2–§3: the standalone server describes its `/api` at the well-known location derived
/// from the resource identifier (and at the root), and its 401 challenges name that document
/// (§5.1).
#[tokio::test]
async fn the_api_publishes_its_protected_resource_metadata() {
    let server = TestServer::start_default(passport_sqlx::testing::sqlite()).await;
    let expected = json!({
        "resource": format!("{}/api", server.base),
        "authorization_servers": [server.base],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["read", "write", "admin", "orders:read"],
        "resource_name": "Passport demo API",
    });
    // `openid`, `profile` and `email` are the sign-in's, not the API's.
    let location = server.url("/.well-known/oauth-protected-resource/api");
    for path in [
        "/.well-known/oauth-protected-resource/api",
        "/.well-known/oauth-protected-resource",
    ] {
        let page = Page::read(server.http.get(server.url(path)).send().await.unwrap()).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert_eq!(page.json(), expected, "{path}");
    }
    let page = Page::read(server.http.get(server.url("/api/user")).send().await.unwrap()).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        page.header("www-authenticate"),
        Some(format!("Bearer realm=\"passport\", resource_metadata=\"{location}\"").as_str())
    );
}
