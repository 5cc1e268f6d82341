//! The FAPI 2.0 Security Profile switch (README: FAPI 2.0), per client and for the whole
//! server: what it refuses and what still works, each rule citing its section.

use passport::{Algorithm, ClientKind, NewClient, PassportBuilder, SigningKey, generate_key};
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};

use crate::common::TestServer;
use crate::support_web::Browser;

const CALLBACK: &str = "https://bank-app.example/cb";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct Key {
    pem: String,
    kid: String,
    jwks: String,
}

fn key() -> Key {
    let generated = generate_key(Algorithm::ES256, 2048).unwrap();
    let signing = SigningKey::from_pem(&generated.private_pem, None).unwrap();
    Key {
        kid: signing.kid().to_owned(),
        jwks: json!({"keys": [signing.public_jwk()]}).to_string(),
        pem: generated.private_pem,
    }
}

impl Key {
    fn assertion(&self, server: &TestServer, client_id: &str) -> String {
        let now = server.passport.now().timestamp();
        let claims = json!({"iss": client_id, "sub": client_id, "aud": server.base, "exp": now + 60, "jti": passport::random_hex(16).unwrap()});
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let encoding = jsonwebtoken::EncodingKey::from_ec_pem(self.pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, &claims, &encoding).unwrap()
    }
}

/// The authorization request's parameters for `client_id`, with `pkce`.
fn request_params<'a>(client_id: &'a str, pkce: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut params = vec![
        ("client_id", client_id),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("scope", "read"),
        ("state", "st"),
    ];
    params.extend_from_slice(pkce);
    params
}

/// Pushes the request (RFC 9126 §2.1) with a client assertion; the status and the body.
async fn push(server: &TestServer, key: &Key, client_id: &str, pkce: &[(&str, &str)]) -> (u16, Value) {
    let assertion = key.assertion(server, client_id);
    let mut form = request_params(client_id, pkce);
    form.push(("client_assertion_type", JWT_BEARER));
    form.push(("client_assertion", &assertion));
    let response = server
        .http
        .post(server.url("/oauth/par"))
        .form(&form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

/// A signed-in browser follows an authorization request (`query`) through consent; the
/// parameters of the redirect back to the client.
async fn authorize(server: &TestServer, browser: &Browser, query: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut url = Url::parse(&server.url("/oauth/authorize")).unwrap();
    for (k, v) in query {
        url.query_pairs_mut().append_pair(k, v);
    }
    let mut page = browser.get(url.as_str()).await;
    if page.status == StatusCode::OK {
        page = browser.submit(&page.approve_form("fapi consent")).await;
    }
    let location = page.location().unwrap_or_else(|| panic!("a redirect\n{}", page.body));
    Url::parse(location)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Pushes a valid request and runs it; the redirect's parameters.
async fn pushed_flow(
    server: &TestServer,
    browser: &Browser,
    key: &Key,
    client_id: &str,
    pkce: &[(&str, &str)],
) -> Vec<(String, String)> {
    let (status, body) = push(server, key, client_id, pkce).await;
    assert_eq!(status, 201, "{body}");
    let request_uri = body["request_uri"].as_str().unwrap().to_owned();
    authorize(
        server,
        browser,
        &[("client_id", client_id), ("request_uri", &request_uri)],
    )
    .await
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A PKCE pair from the oauth2 crate: (verifier, S256 challenge).
fn pkce() -> (String, String) {
    let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
    (verifier.secret().clone(), challenge.as_str().to_owned())
}

backend_test! {
    /// A FAPI 2.0 client: pushed requests only and PKCE with S256 only (FAPI 2.0 §5.3.2.2),
    /// private_key_jwt only
    /// (§5.3.2.1), codes that live 60 s at most (§5.3.2.1), `iss` in the response (RFC 9207).
    async fn a_fapi_client_gets_the_profile_and_others_do_not(db) {
        let server = TestServer::start_default(db).await;
        server.user("fapi@example.com", "fapi password").await;
        let key = key();
        let (client, secret) = server
            .passport
            .create_client(
                NewClient::new("Bank app", ClientKind::AuthorizationCode { device_flow: false })
                    .redirect_uris([CALLBACK])
                    .jwks(Some(key.jwks.clone()))
                    .fapi_profile(true),
            )
            .await
            .unwrap();
        assert!(secret.is_none());
        let id = client.id.as_str().to_owned();
        let browser = Browser::signed_in(&server, "fapi@example.com", "fapi password").await;

        let (verifier, challenge) = pkce();
        // §5.3.2.2: PKCE with S256, checked when the request is pushed.
        for (pkce, what) in [(vec![], "no PKCE"), (vec![("code_challenge", verifier.as_str()), ("code_challenge_method", "plain")], "plain PKCE")] {
            let (status, body) = push(&server, &key, &id, &pkce).await;
            assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{what}: {body}");
        }
        let pkce = [("code_challenge", challenge.as_str()), ("code_challenge_method", "S256")];
        // §5.3.2.2: pushed authorization requests only.
        let params = authorize(&server, &browser, &request_params(&id, &pkce)).await;
        assert_eq!(param(&params, "error"), Some("invalid_request"), "a front-channel request: {params:?}");
        let params = pushed_flow(&server, &browser, &key, &id, &pkce).await;
        assert_eq!(param(&params, "iss"), Some(server.base.as_str()), "RFC 9207 iss");
        let code = param(&params, "code").expect("a code").to_owned();
        let dpop = crate::dpop::ProofKey::new(Algorithm::ES256);
        let token_url = server.url("/oauth/token");
        let exchange = |code: String, assertion: Option<String>| {
            let mut form = vec![
                ("grant_type".to_owned(), "authorization_code".to_owned()),
                ("code".to_owned(), code),
                ("redirect_uri".to_owned(), CALLBACK.to_owned()),
                ("code_verifier".to_owned(), verifier.clone()),
                ("client_id".to_owned(), id.clone()),
            ];
            if let Some(assertion) = assertion {
                form.push(("client_assertion_type".to_owned(), JWT_BEARER.to_owned()));
                form.push(("client_assertion".to_owned(), assertion));
            }
            let proof = dpop.proof(&server, "POST", &token_url, None);
            server.http.post(&token_url).header("DPoP", proof).form(&form).send()
        };
        let response = exchange(code.clone(), None).await.unwrap();
        assert_eq!(response.status(), 401, "without an assertion");
        let response = exchange(code, Some(key.assertion(&server, &id))).await.unwrap();
        assert_eq!(response.status(), 200);
        let tokens: Value = response.json().await.unwrap();
        assert_eq!(tokens["token_type"], "DPoP", "§5.3.2.1: sender-constrained");

        // §5.3.2.1: without a DPoP proof the exchange is refused.
        let params = pushed_flow(&server, &browser, &key, &id, &pkce).await;
        let code = param(&params, "code").expect("a code").to_owned();
        let assertion = key.assertion(&server, &id);
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier.as_str()),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion.as_str()),
        ];
        let response = server.http.post(&token_url).form(&form).send().await.unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_dpop_proof", "{body}");

        // §5.3.2.1: a code is refused after 60 s.
        let params = pushed_flow(&server, &browser, &key, &id, &pkce).await;
        let code = param(&params, "code").expect("a code").to_owned();
        server.advance(chrono::TimeDelta::seconds(61));
        let response = exchange(code, Some(key.assertion(&server, &id))).await.unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_grant", "a 61-second-old code: {body}");

        // Another client of the same server keeps the ordinary rules.
        let (other, _) = server.client(ClientKind::AuthorizationCode { device_flow: false }, false).await;
        let mut url = Url::parse(&server.url("/oauth/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", &other)
            .append_pair("redirect_uri", "https://client.example/callback")
            .append_pair("response_type", "code")
            .append_pair("state", "st");
        let page = browser.get(url.as_str()).await;
        assert_eq!(page.status, StatusCode::OK, "no PKCE needed for a confidential non-FAPI client");

        // A FAPI client is a private_key_jwt code client, nothing else.
        for refused in [
            NewClient::new("No keys", ClientKind::AuthorizationCode { device_flow: false }).redirect_uris([CALLBACK]).fapi_profile(true),
            NewClient::new("Machine", ClientKind::ClientCredentials).jwks(Some(key.jwks.clone())).fapi_profile(true),
            NewClient::new("TV", ClientKind::AuthorizationCode { device_flow: true })
                .redirect_uris([CALLBACK])
                .jwks(Some(key.jwks.clone()))
                .fapi_profile(true),
        ] {
            assert!(server.passport.create_client(refused).await.is_err());
        }
    }
}

/// `fapi_profile` for the whole server: secrets are refused everywhere, and the password and
/// implicit grants cannot be switched on with it.
#[tokio::test]
async fn the_global_profile_refuses_secrets_and_weak_grants() {
    let server = TestServer::start(passport_sqlx::testing::sqlite(), |b| {
        b.enable_password_grant(false).fapi_profile(true)
    })
    .await;
    let (id, secret) = server.service_client().await;
    let response = server
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ])
        .await;
    assert_eq!(response.status(), 401, "a secret under the FAPI 2.0 profile");
    let discovery: Value = server
        .http
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        discovery["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "private_key_jwt")
    );

    let config = passport::PassportConfig {
        fapi_profile: true,
        enable_password_grant: true,
        ..passport::PassportConfig::default()
    };
    let error = PassportBuilder::from_config(&config).check().unwrap_err();
    assert!(error.to_string().contains("FAPI"), "{error}");
}
