//! Dynamic client registration (RFC 7591) and its management protocol (RFC 7592), driven over
//! HTTP as a client library would, under each policy.

use std::time::Duration;

use passport::RegistrationPolicy;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cli::Deployment;
use crate::common::TestServer;

const REGISTER: &str = "/oauth/register";

/// POSTs client metadata; the status, the headers and the JSON body.
async fn register(
    server: &TestServer,
    bearer: Option<&str>,
    metadata: &Value,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = server.http.post(server.url(REGISTER)).json(metadata);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("register");
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.json().await.unwrap_or(Value::Null))
}

/// The error code of a refused registration, checking the RFC 7591 §3.2.2 shape.
async fn refused(server: &TestServer, metadata: &Value) -> String {
    let (status, headers, body) = register(server, None, metadata).await;
    assert_eq!(status, 400, "{metadata}: {body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(body["error_description"].is_string(), "{body}");
    body["error"].as_str().expect("error").to_owned()
}

#[tokio::test]
async fn registration_is_off_by_default() {
    let server = TestServer::start_default(passport_sqlx::testing::sqlite()).await;
    let (status, _, _) = register(&server, None, &json!({"redirect_uris": ["https://a.example/cb"]})).await;
    assert_eq!(status, 404, "no registration endpoint");
    let discovery: Value = server
        .http
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(discovery.get("registration_endpoint").is_none(), "not advertised");
}

backend_test! {
    /// A machine client registers itself with an initial access token (RFC 7591 §3.1), gets
    /// its credentials and a registration access token (§3.2.1), uses them at the token
    /// endpoint, then reads, updates and deletes its registration with that token (RFC 7592
    /// §2.1 to §2.3).
    async fn a_registered_client_works_and_manages_its_registration(db) {
        let server = TestServer::start(db, |b| b.client_registration(RegistrationPolicy::InitialAccessToken)).await;
        let (initial, _) = server.passport.issue_initial_access_token(chrono::TimeDelta::hours(1)).await.unwrap();
        let discovery: Value = server.http.get(server.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
        assert_eq!(discovery["registration_endpoint"], server.url(REGISTER));

        let metadata = json!({
            "client_name": "Reporting job",
            "grant_types": ["client_credentials"],
            "scope": "read",
            "software_id": "ignored: RFC 7591 §2 says members not understood are ignored",
        });
        let (status, headers, body) = register(&server, Some(&initial), &metadata).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(headers["cache-control"], "no-store");
        let id = body["client_id"].as_str().expect("client_id").to_owned();
        let secret = body["client_secret"].as_str().expect("client_secret").to_owned();
        let management = body["registration_access_token"].as_str().expect("registration_access_token").to_owned();
        let uri = body["registration_client_uri"].as_str().expect("registration_client_uri").to_owned();
        assert_eq!(uri, server.url(&format!("{REGISTER}/{id}")));
        assert_eq!(body["client_secret_expires_at"], 0);
        assert_eq!(body["grant_types"], json!(["client_credentials"]));
        assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
        assert_eq!(body["scope"], "read");

        // The credentials work; the registered scope limit holds.
        let form = [("grant_type", "client_credentials"), ("client_id", id.as_str()), ("client_secret", secret.as_str())];
        let response = server.token(&form).await;
        assert_eq!(response.status(), 200);
        let token: Value = response.json().await.unwrap();
        let access = token["access_token"].as_str().unwrap().to_owned();
        let wider = server.token(&[("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", &secret), ("scope", "read write")]).await;
        assert_eq!(wider.status(), 200);
        let wider: Value = wider.json().await.unwrap();
        assert_eq!(wider["scope"], "read", "a scope outside the registration is not granted");

        // RFC 7592 §2.1: read with the registration access token, and only with it.
        let read = server.http.get(&uri).bearer_auth(&management).send().await.unwrap();
        assert_eq!(read.status(), 200);
        let read: Value = read.json().await.unwrap();
        assert_eq!(read["client_id"], id.as_str());
        assert!(read.get("client_secret").is_none(), "the secret is never shown again");
        for wrong in [Some("nope"), Some(secret.as_str()), None] {
            let mut request = server.http.get(&uri);
            if let Some(wrong) = wrong {
                request = request.bearer_auth(wrong);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{wrong:?}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer error=\"invalid_token\"");
        }

        // §2.2: the name may change; the grant types may not; client_id must match.
        let update = json!({"client_id": id, "client_name": "Nightly report", "grant_types": ["client_credentials"]});
        let response = server.http.put(&uri).bearer_auth(&management).json(&update).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let updated: Value = response.json().await.unwrap();
        assert_eq!(updated["client_name"], "Nightly report");
        for bad in [
            json!({"client_id": id, "grant_types": ["authorization_code"], "redirect_uris": ["https://a.example/cb"]}),
            json!({"client_id": "someone-else", "client_name": "x"}),
            json!({"client_id": id, "scope": "read write"}),
        ] {
            let response = server.http.put(&uri).bearer_auth(&management).json(&bad).send().await.unwrap();
            assert_eq!(response.status(), 400, "{bad}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "invalid_client_metadata");
        }

        // §2.3: deleting revokes the client and its tokens.
        let response = server.http.delete(&uri).bearer_auth(&management).send().await.unwrap();
        assert_eq!(response.status(), 204);
        let check = server.http.get(server.url("/api/token")).bearer_auth(&access).send().await.unwrap();
        assert_eq!(check.status(), 401, "its token stopped working");
        assert_eq!(server.token(&form).await.status(), 401, "its credentials too");
        let read = server.http.get(&uri).bearer_auth(&management).send().await.unwrap();
        assert_eq!(read.status(), 401, "and its registration");
    }
}

/// RFC 7591 §2 and §3.2.2: metadata is checked by the CLI's rules; a public client (`none`)
/// gets no secret; what cannot be honoured is refused with the RFC's error codes.
#[tokio::test]
async fn registration_metadata_is_validated() {
    let server = TestServer::start(passport_sqlx::testing::sqlite(), |b| {
        b.client_registration(RegistrationPolicy::Open)
    })
    .await;
    let (status, _, body) = register(
        &server,
        None,
        &json!({"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "none", "client_name": "SPA"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(body.get("client_secret").is_none(), "a public client has no secret");
    assert_eq!(body["grant_types"], json!(["authorization_code", "refresh_token"]));
    assert_eq!(body["response_types"], json!(["code"]));
    let scope = body["scope"]
        .as_str()
        .expect("registered clients always get a scope list");
    assert!(scope.split(' ').all(|s| s != "*"), "never the wildcard: {scope}");

    // A private_key_jwt client registers its public keys inline (RFC 7591 §2 `jwks`).
    let key = passport::generate_key(passport::Algorithm::ES256, 2048).unwrap();
    let jwk = passport::SigningKey::from_pem(&key.private_pem, None)
        .unwrap()
        .public_jwk()
        .clone();
    let (status, _, body) = register(
        &server,
        None,
        &json!({"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [jwk]}}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["token_endpoint_auth_method"], "private_key_jwt");
    assert!(body.get("client_secret").is_none(), "it signs assertions instead");
    let (status, _, body) = register(
        &server,
        None,
        &json!({"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://app.example/jwks"}),
    )
    .await;
    assert_eq!(status, 201, "keys at a jwks_uri: {body}");

    for (metadata, error) in [
        (
            json!({"redirect_uris": ["http://app.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb#frag"]}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (json!({"grant_types": ["password"]}), "invalid_client_metadata"),
        (
            json!({"grant_types": ["implicit"], "redirect_uris": ["https://app.example/cb"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb"], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb"], "jwks_uri": "https://app.example/jwks"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "client_secret_jwt"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb"], "scope": "read unknown"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb"], "scope": "*"}),
            "invalid_client_metadata",
        ),
        (
            json!({"grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": "https://app.example/cb"}),
            "invalid_client_metadata",
        ),
    ] {
        assert_eq!(refused(&server, &metadata).await, error, "{metadata}");
    }
    let response = server
        .http
        .post(server.url(REGISTER))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("redirect_uris=https://app.example/cb")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "JSON only (RFC 7591 §3.1)");
}

/// `client_registration = "token"`: only a request with an initial access token from
/// `passport client registration-token` registers (RFC 7591 §3), until it expires.
#[tokio::test]
async fn registration_with_an_initial_access_token_from_the_cli() {
    let site = Deployment::sqlite();
    site.write_config("client_registration = \"token\"\n");
    site.keys();
    let issued = site.json(&["client", "registration-token", "--json"]);
    let token = issued["initial_access_token"]
        .as_str()
        .expect("initial_access_token")
        .to_owned();
    let short = site.json(&["client", "registration-token", "--expires-in", "1s", "--json"]);
    let short = short["initial_access_token"].as_str().unwrap().to_owned();
    let server = site.serve();
    let http = reqwest::Client::new();
    let metadata = json!({"grant_types": ["client_credentials"], "client_name": "Batch"});
    let post = |bearer: Option<String>| {
        let mut request = http.post(server.url(REGISTER)).json(&metadata);
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        request.send()
    };
    for bearer in [None, Some("not-issued".to_owned())] {
        let response = post(bearer.clone()).await.unwrap();
        assert_eq!(response.status(), 401, "{bearer:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer error=\"invalid_token\"");
    }
    let response = post(Some(token.clone())).await.unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert!(body["client_secret"].is_string());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(post(Some(short)).await.unwrap().status(), 401, "expired");
    assert_eq!(
        post(Some(token)).await.unwrap().status(),
        201,
        "usable until it expires"
    );
}
