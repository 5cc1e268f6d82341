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

/// A signed-in browser's authorization request for `client_id`; the redirect's parameters.
async fn authorize(
    server: &TestServer,
    browser: &Browser,
    client_id: &str,
    pkce: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut url = Url::parse(&server.url("/oauth/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("response_type", "code")
        .append_pair("scope", "read")
        .append_pair("state", "st");
    for (k, v) in pkce {
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

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A PKCE pair from the oauth2 crate: (verifier, S256 challenge).
fn pkce() -> (String, String) {
    let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
    (verifier.secret().clone(), challenge.as_str().to_owned())
}

backend_test! {
    /// A FAPI 2.0 client: PKCE with S256 only (FAPI 2.0 §5.3.2.2), private_key_jwt only
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
        for (pkce, what) in [(vec![], "no PKCE"), (vec![("code_challenge", verifier.as_str()), ("code_challenge_method", "plain")], "plain PKCE")] {
            let params = authorize(&server, &browser, &id, &pkce).await;
            assert_eq!(param(&params, "error"), Some("invalid_request"), "{what}: {params:?}");
        }
        let pkce = [("code_challenge", challenge.as_str()), ("code_challenge_method", "S256")];
        let params = authorize(&server, &browser, &id, &pkce).await;
        assert_eq!(param(&params, "iss"), Some(server.base.as_str()), "RFC 9207 iss");
        let code = param(&params, "code").expect("a code").to_owned();
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
            server.http.post(server.url("/oauth/token")).form(&form).send()
        };
        let response = exchange(code.clone(), None).await.unwrap();
        assert_eq!(response.status(), 401, "without an assertion");
        let response = exchange(code, Some(key.assertion(&server, &id))).await.unwrap();
        assert_eq!(response.status(), 200);

        // §5.3.2.1: a code is refused after 60 s.
        let params = authorize(&server, &browser, &id, &pkce).await;
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
