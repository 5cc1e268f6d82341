//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OpenID Connect Core §9) at
//! the token and introspection endpoints: a client signs an assertion with a key of its
//! registered JWK Set, and every rule that keeps a stolen or misdirected assertion useless.

use jsonwebtoken::{EncodingKey, Header};
use passport::{Algorithm, ClientKind, NewClient, SigningKey, generate_key};
use serde_json::{Value, json};

use crate::cli::Deployment;
use crate::common::TestServer;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A client key: its private PEM, its kid and its public JWK.
struct ClientKey {
    algorithm: jsonwebtoken::Algorithm,
    private_pem: String,
    kid: String,
    jwk: Value,
}

fn client_key(algorithm: Algorithm) -> ClientKey {
    let generated = generate_key(algorithm, 2048).expect("generate a client key");
    let key = SigningKey::from_pem(&generated.private_pem, None).expect("parse the key");
    ClientKey {
        algorithm: match algorithm {
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            _ => jsonwebtoken::Algorithm::RS256,
        },
        kid: key.kid().to_owned(),
        jwk: key.public_jwk().clone(),
        private_pem: generated.private_pem,
    }
}

impl ClientKey {
    /// An assertion with these claims, signed with this key.
    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        let pem = self.private_pem.as_bytes();
        let key = match self.algorithm {
            jsonwebtoken::Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
            jsonwebtoken::Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
            _ => EncodingKey::from_rsa_pem(pem),
        }
        .expect("encoding key");
        jsonwebtoken::encode(&header, claims, &key).expect("sign")
    }
}

/// The claims RFC 7523 §3 asks for, for `client_id` at `issuer` at `now`, with a fresh jti.
fn claims(client_id: &str, issuer: &str, now: i64) -> Value {
    json!({
        "iss": client_id,
        "sub": client_id,
        "aud": issuer,
        "iat": now,
        "exp": now + 60,
        "jti": passport::random_hex(16).unwrap(),
    })
}

/// `client_credentials` with `assertion`; the status and the error (if any).
async fn with_assertion(server: &TestServer, assertion: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ];
    form.extend_from_slice(extra);
    let response = server.token(&form).await;
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

backend_test! {
    /// A client-credentials client with an ES256 and an EdDSA key: a valid assertion
    /// authenticates it (with or without `client_id`), and each broken rule is `invalid_client`.
    async fn private_key_jwt_authenticates_and_refuses_every_bent_rule(db) {
        let server = TestServer::start_default(db).await;
        let issuer = server.base.clone();
        let now = server.passport.now().timestamp();
        let (es, ed) = (client_key(Algorithm::ES256), client_key(Algorithm::EdDSA));
        let jwks = json!({"keys": [es.jwk, ed.jwk]}).to_string();
        let (client, secret) = server
            .passport
            .create_client(NewClient::new("Signed", ClientKind::ClientCredentials).jwks(Some(jwks)).can_introspect(true))
            .await
            .expect("create");
        assert!(secret.is_none(), "a private_key_jwt client has no secret");
        assert_eq!(client.token_endpoint_auth_method(), "private_key_jwt");
        let id = client.id.as_str().to_owned();

        // §3: the client named by the assertion alone, or by client_id too; either key.
        let assertion = es.sign(&claims(&id, &issuer, now));
        let (status, body) = with_assertion(&server, &assertion, &[]).await;
        assert_eq!(status, 200, "{body}");
        let access = body["access_token"].as_str().unwrap().to_owned();
        let (status, body) = with_assertion(&server, &ed.sign(&claims(&id, &issuer, now)), &[("client_id", &id)]).await;
        assert_eq!(status, 200, "{body}");

        // §3 item 7 (jti): an assertion is used once, on any instance.
        let (status, body) = with_assertion(&server, &assertion, &[]).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "a replay");

        let mut bent: Vec<(&str, Value)> = Vec::new();
        let mut c = claims(&id, &issuer, now);
        c["aud"] = json!(server.url("/oauth/token"));
        bent.push(("aud is the token endpoint, not the issuer (FAPI 2.0)", c));
        let mut c = claims(&id, &issuer, now);
        c["aud"] = json!([issuer, "https://other.example"]);
        bent.push(("aud lists another audience too", c));
        let mut c = claims(&id, &issuer, now);
        c["exp"] = json!(now - 120);
        bent.push(("expired", c));
        let mut c = claims(&id, &issuer, now);
        c["exp"] = json!(now + 3600);
        bent.push(("valid for an hour", c));
        let mut c = claims(&id, &issuer, now);
        c["iss"] = json!("someone-else");
        bent.push(("iss is not the client", c));
        let mut c = claims(&id, &issuer, now);
        c.as_object_mut().unwrap().remove("jti");
        bent.push(("no jti", c));
        for (what, claims) in &bent {
            let (status, body) = with_assertion(&server, &es.sign(claims), &[]).await;
            assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{what}: {body}");
        }
        let stranger = client_key(Algorithm::ES256);
        let (status, _) = with_assertion(&server, &stranger.sign(&claims(&id, &issuer, now)), &[("client_id", &id)]).await;
        assert_eq!(status, 401, "a key the client did not register");

        // RFC 6749 §2.3: one method; a secret is no way in for a keyed client.
        let (status, body) = with_assertion(&server, &es.sign(&claims(&id, &issuer, now)), &[("client_secret", "x")]).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{body}");
        let response = server.token(&[("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", "guess")]).await;
        assert_eq!(response.status(), 401, "a secret for a private_key_jwt client");
        let response = server.token(&[("grant_type", "client_credentials"), ("client_id", &id)]).await;
        assert_eq!(response.status(), 401, "no credentials at all");

        // Introspection (RFC 7662 §2.1) authenticates the same way.
        let response = server
            .http
            .post(server.url("/oauth/introspect"))
            .form(&[
                ("token", access.as_str()),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &es.sign(&claims(&id, &issuer, now))),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["active"], true, "{answer}");
    }
}

/// The CLI makes a private_key_jwt client from a JWK Set file, refuses private keys in it, and
/// discovery advertises the method.
#[tokio::test]
async fn the_cli_registers_a_jwk_set_and_discovery_lists_private_key_jwt() {
    let site = Deployment::sqlite();
    site.keys();
    let key = client_key(Algorithm::ES256);
    let file = site.data_dir().join("client-jwks.json");
    std::fs::write(&file, json!({"keys": [key.jwk]}).to_string()).unwrap();
    let out = site.json(&[
        "client",
        "--client",
        "--name",
        "Signed",
        "--jwks-file",
        file.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out["token_endpoint_auth_method"], "private_key_jwt", "{out}");
    assert!(out["client_secret"].is_null(), "{out}");
    let mut private = key.jwk.clone();
    private["d"] = json!("AAAA");
    std::fs::write(&file, json!({"keys": [private]}).to_string()).unwrap();
    let error = site.fails(&[
        "client",
        "--client",
        "--name",
        "Leaky",
        "--jwks-file",
        file.to_str().unwrap(),
    ]);
    assert!(error.contains("public keys only"), "{error}");

    let server = site.serve();
    let discovery: Value = reqwest::get(server.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let methods = discovery["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(methods.iter().any(|m| m == "private_key_jwt"), "{discovery}");
    assert!(!methods.iter().any(|m| m == "client_secret_jwt"));
    assert_eq!(
        discovery["token_endpoint_auth_signing_alg_values_supported"],
        json!(["RS256", "PS256", "ES256", "EdDSA"])
    );
}

/// A client's key set served over HTTP on a loopback port (the fetcher is told to allow it,
/// as in development): `/jwks` (what `keys` holds now), `/moved` (a redirect to it), `/huge`.
async fn key_host(keys: std::sync::Arc<std::sync::Mutex<String>>) -> String {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/jwks", get(move || async move { keys.lock().unwrap().clone() }))
        .route(
            "/moved",
            get(|| async { (axum::http::StatusCode::FOUND, [("location", "/jwks")]) }),
        )
        .route("/huge", get(|| async { "x".repeat(100 * 1024) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

backend_test! {
    /// RFC 7591 §2 `jwks_uri`: the key set is fetched (within limits: no redirect followed, at
    /// most 64 KiB), cached, and fetched again when a newer key signs (a rotation), but not
    /// more than every 30 s.
    async fn a_jwks_uri_is_fetched_within_limits_and_follows_rotation(db) {
        let server = TestServer::start(db, |b| {
            b.jwks_fetcher(std::sync::Arc::new(passport_axum::HttpJwksFetcher::new().allow_insecure_loopback(true)))
        })
        .await;
        let issuer = server.base.clone();
        let (old, new) = (client_key(Algorithm::ES256), client_key(Algorithm::EdDSA));
        let served = std::sync::Arc::new(std::sync::Mutex::new(json!({"keys": [old.jwk]}).to_string()));
        let host = key_host(served.clone()).await;
        let client_for = |path: &str| NewClient::new("Fetched", ClientKind::ClientCredentials).jwks_uri(Some(format!("{host}{path}")));
        let (client, secret) = server.passport.create_client(client_for("/jwks")).await.unwrap();
        assert!(secret.is_none());
        let id = client.id.as_str().to_owned();

        let now = || server.passport.now().timestamp();
        let (status, body) = with_assertion(&server, &old.sign(&claims(&id, &issuer, now())), &[]).await;
        assert_eq!(status, 200, "{body}");

        // The client rotates: the new key is unknown to the cached set, which is fresh, so it
        // is not fetched again yet.
        *served.lock().unwrap() = json!({"keys": [new.jwk]}).to_string();
        let (status, _) = with_assertion(&server, &new.sign(&claims(&id, &issuer, now())), &[]).await;
        assert_eq!(status, 401, "the cached set, fetched a moment ago");
        server.advance(chrono::TimeDelta::seconds(31));
        let (status, body) = with_assertion(&server, &new.sign(&claims(&id, &issuer, now())), &[]).await;
        assert_eq!(status, 200, "fetched again after 30 s: {body}");
        let (status, _) = with_assertion(&server, &old.sign(&claims(&id, &issuer, now())), &[]).await;
        assert_eq!(status, 401, "the retired key");

        for path in ["/moved", "/huge", "/missing"] {
            let (client, _) = server.passport.create_client(client_for(path)).await.unwrap();
            let id = client.id.as_str().to_owned();
            let (status, body) = with_assertion(&server, &new.sign(&claims(&id, &issuer, now())), &[]).await;
            assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{path}");
        }
        // Without the development switch, the loopback host is refused outright.
        let strict = passport_axum::HttpJwksFetcher::new();
        assert!(passport::JwksFetcher::fetch(&strict, &format!("{host}/jwks")).await.is_err());
    }
}
