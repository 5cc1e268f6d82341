//! Whole requests through the standalone server's routes (token, authorize, device, login,
//! JSON API, account, the guarded `/api/user`), with any method, path, query, headers (`Host`,
//! forwarded headers, `Authorization`, `Cookie`, CSRF headers, `Content-Type`) and body.
//! Oracles: no panic; no 500; nothing a request's `Host` or forwarded headers say ever comes
//! back in the answer (absolute URLs come from the issuer only).
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use axum::routing::get;
use libfuzzer_sys::fuzz_target;
use passport::testing::MemoryStore;
use passport::{Client, ClientStore as _, GrantType, PassportBuilder, RedirectUri, hash_client_secret};
use passport_axum::{AuthUser, Pages};
use tower::ServiceExt as _;

/// What a `Host` or forwarded header says; it must never come back.
const MARKER: &str = "host-marker.invalid";

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    method: u8,
    path: Path,
    query: Option<String>,
    headers: Vec<(Name, Value)>,
    body: Vec<u8>,
    peer: u16,
}

#[derive(Debug, arbitrary::Arbitrary)]
enum Path {
    Known(u8),
    KnownWithSuffix(u8, String),
    Raw(String),
}

#[derive(Debug, arbitrary::Arbitrary)]
enum Name {
    Known(u8),
    Raw(Vec<u8>),
}

#[derive(Debug, arbitrary::Arbitrary)]
enum Value {
    Marker,
    Known(u8),
    Raw(Vec<u8>),
}

const METHODS: &[Method] = &[
    Method::GET,
    Method::POST,
    Method::DELETE,
    Method::PUT,
    Method::HEAD,
    Method::OPTIONS,
];
const PATHS: &[&str] = &[
    "/oauth/token",
    "/oauth/authorize",
    "/oauth/device/code",
    "/oauth/device",
    "/oauth/device/authorize",
    "/login",
    "/logout",
    "/",
    "/account",
    "/oauth/scopes",
    "/oauth/clients",
    "/oauth/clients/fuzz-public",
    "/oauth/tokens",
    "/oauth/tokens/x",
    "/oauth/personal-access-tokens",
    "/oauth/token/refresh",
    "/api/user",
];
const NAMES: &[&str] = &[
    "host",
    "x-forwarded-host",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "content-type",
    "authorization",
    "cookie",
    "x-csrf-token",
    "x-xsrf-token",
    "accept",
    "origin",
    "referer",
];
const VALUES: &[&str] = &[
    "application/x-www-form-urlencoded",
    "application/json",
    // fuzz-confidential:fuzz-secret
    "Basic ZnV6ei1jb25maWRlbnRpYWw6ZnV6ei1zZWNyZXQ=",
    "Bearer x.y.z",
    "passport_guest=x.y",
    "passport_session=0123456789abcdef",
    "XSRF-TOKEN=x",
    "text/html",
];

fn setup() -> &'static (Router, tokio::runtime::Runtime) {
    static APP: OnceLock<(Router, tokio::runtime::Runtime)> = OnceLock::new();
    APP.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        let store = Arc::new(MemoryStore::new());
        let now = passport_fuzz::now();
        let client = |id: &str, secret: Option<&str>, grants: Vec<GrantType>| Client {
            id: id.into(),
            owner_id: None,
            name: id.to_owned(),
            secret_hash: secret.map(hash_client_secret),
            provider: None,
            redirect_uris: vec![
                RedirectUri::parse("http://127.0.0.1/cb").expect("valid"),
                RedirectUri::parse("https://app.example/cb").expect("valid"),
            ],
            grant_types: grants,
            scopes: None,
            skips_authorization: false,
            post_logout_redirect_uris: Vec::new(),
            can_introspect: false,
            revoked: false,
            created_at: now,
            updated_at: now,
        };
        runtime.block_on(async {
            let public = client(
                "fuzz-public",
                None,
                vec![
                    GrantType::AuthorizationCode,
                    GrantType::RefreshToken,
                    GrantType::DeviceCode,
                ],
            );
            let confidential = client(
                "fuzz-confidential",
                Some("fuzz-secret"),
                vec![
                    GrantType::ClientCredentials,
                    GrantType::AuthorizationCode,
                    GrantType::DeviceCode,
                ],
            );
            store.insert_client(&public).await.expect("insert");
            store.insert_client(&confidential).await.expect("insert");
        });
        let passport = PassportBuilder::for_tests()
            .store(store.clone())
            .tokens_can([("read", "Read"), ("write", "Write")])
            .issuer("http://127.0.0.1:8000")
            .clock(Arc::new(passport::MockClock::new(now)))
            .build()
            .expect("the server builds");
        let pages = Pages::new(&passport, store);
        let router = Router::new()
            .route("/api/user", get(|user: AuthUser| async move { user.user.id }))
            .with_state(passport)
            .merge(passport_axum::home_routes(pages.clone()))
            .merge(passport_axum::account_routes(pages.clone()))
            .merge(passport_axum::json_api_routes(pages.clone()))
            .merge(passport_axum::routes(pages.clone()))
            .layer(axum::middleware::from_fn_with_state(
                pages,
                passport_axum::create_fresh_api_token,
            ));
        (router, runtime)
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

fuzz_target!(|input: Input| {
    let (router, runtime) = setup();
    let path = match &input.path {
        Path::Known(i) => PATHS[usize::from(*i) % PATHS.len()].to_owned(),
        Path::KnownWithSuffix(i, s) => format!("{}{s}", PATHS[usize::from(*i) % PATHS.len()]),
        Path::Raw(s) => s.clone(),
    };
    let target = match &input.query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let Ok(uri) = Uri::try_from(target.as_str()) else {
        return;
    };
    let mut request = Request::new(Body::from(input.body.clone()));
    *request.method_mut() = METHODS[usize::from(input.method) % METHODS.len()].clone();
    *request.uri_mut() = uri;
    let mut marked = false;
    let mut elsewhere = contains(target.as_bytes(), MARKER.as_bytes()) || contains(&input.body, MARKER.as_bytes());
    for (name, value) in &input.headers {
        let name = match name {
            Name::Known(i) => HeaderName::from_static(NAMES[usize::from(*i) % NAMES.len()]),
            Name::Raw(raw) => match HeaderName::from_bytes(raw) {
                Ok(name) => name,
                Err(_) => continue,
            },
        };
        let host_like = matches!(name.as_str(), "host" | "x-forwarded-host" | "forwarded");
        let value = match value {
            Value::Marker => {
                marked |= host_like;
                elsewhere |= !host_like;
                HeaderValue::from_static(MARKER)
            }
            Value::Known(i) => HeaderValue::from_static(VALUES[usize::from(*i) % VALUES.len()]),
            Value::Raw(raw) => match HeaderValue::from_bytes(raw) {
                Ok(value) => {
                    elsewhere |= contains(raw, MARKER.as_bytes());
                    value
                }
                Err(_) => continue,
            },
        };
        request.headers_mut().append(name, value);
    }
    let peer = SocketAddr::from(([10, 0, (input.peer >> 8) as u8, input.peer as u8], 40000));
    request.extensions_mut().insert(ConnectInfo(peer));

    let (status, headers, body) = runtime.block_on(async {
        let response = router.clone().oneshot(request).await.expect("infallible");
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.expect("the body is read");
        (parts.status, parts.headers, body)
    });
    assert_ne!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "500: {}",
        String::from_utf8_lossy(&body)
    );
    if marked && !elsewhere {
        assert!(
            !contains(&body, MARKER.as_bytes()),
            "the Host header came back in the body"
        );
        for value in headers.values() {
            assert!(
                !contains(value.as_bytes(), MARKER.as_bytes()),
                "the Host header came back: {value:?}"
            );
        }
    }
});
