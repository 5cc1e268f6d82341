//! Provider metadata (OpenID Connect Discovery 1.0 §3-4, RFC 8414 §2-3) and the JWK Set
//! (RFC 7517 §5): what a client library or a resource server reads to find everything else.

use serde_json::Value;

use crate::common::TestServer;

/// GETs a JSON document; returns status, Cache-Control and body.
async fn document(server: &TestServer, path: &str) -> (u16, Option<String>, Value) {
    let response = server.http.get(server.url(path)).send().await.expect("GET");
    let status = response.status().as_u16();
    let cache = response
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().expect("ASCII").to_owned());
    (status, cache, response.json().await.unwrap_or(Value::Null))
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("an array: {value}"))
        .iter()
        .map(|v| v.as_str().expect("strings"))
        .collect()
}

backend_test! {
    /// Discovery §3 and RFC 8414 §2: every endpoint, built from the issuer and the route prefix,
    /// and what the server supports; both well-known names serve the same document.
    async fn the_metadata_names_every_endpoint_and_what_is_supported(db) {
        let server = TestServer::start_default(db).await;
        let (status, cache, meta) = document(&server, "/.well-known/openid-configuration").await;
        assert_eq!(status, 200, "{meta}");
        assert!(cache.is_some_and(|c| c.contains("max-age")), "cacheable");
        let base = server.url("/oauth");
        assert_eq!(meta["issuer"], server.base.as_str());
        for (field, path) in [
            ("authorization_endpoint", "/authorize"),
            ("token_endpoint", "/token"),
            ("userinfo_endpoint", "/userinfo"),
            ("jwks_uri", "/jwks"),
            ("end_session_endpoint", "/logout"),
            ("introspection_endpoint", "/introspect"),
            ("revocation_endpoint", "/revoke"),
            ("device_authorization_endpoint", "/device/code"),
        ] {
            assert_eq!(meta[field], format!("{base}{path}"), "{field}");
        }
        let scopes = strings(&meta["scopes_supported"]);
        for scope in ["openid", "read", "write"] {
            assert!(scopes.contains(&scope), "scope {scope} in {scopes:?}");
        }
        assert_eq!(strings(&meta["response_types_supported"]), ["code"], "implicit is off");
        assert_eq!(strings(&meta["response_modes_supported"]), ["query", "fragment", "form_post"]);
        let grants = strings(&meta["grant_types_supported"]);
        assert!(grants.contains(&"password"), "the test server enables the password grant");
        assert!(!grants.contains(&"implicit"), "only enabled grants: {grants:?}");
        assert_eq!(strings(&meta["subject_types_supported"]), ["public"]);
        assert!(strings(&meta["id_token_signing_alg_values_supported"]).contains(&"RS256"), "Discovery §3: RS256 MUST be listed");
        assert_eq!(
            strings(&meta["token_endpoint_auth_methods_supported"]),
            ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
        );
        assert_eq!(strings(&meta["code_challenge_methods_supported"]), ["S256", "plain"]);
        for claim in ["sub", "iss", "auth_time", "nonce", "email", "name"] {
            assert!(strings(&meta["claims_supported"]).contains(&claim), "claim {claim}");
        }
        assert_eq!(meta["authorization_response_iss_parameter_supported"], true, "RFC 9207 §3");

        let (status, _, oauth) = document(&server, "/.well-known/oauth-authorization-server").await;
        assert_eq!(status, 200);
        assert_eq!(oauth, meta, "one document under both names");
    }
}

/// The metadata follows the configuration: a route prefix of its own, the implicit grant on,
/// and an issuer with a path (served in both forms, Discovery §4.1 and RFC 8414 §3.1); a
/// request's `Host` never leaks into it.
#[tokio::test]
async fn the_metadata_follows_the_prefix_the_grants_and_an_issuer_with_a_path() {
    let server = TestServer::start(passport_sqlx::testing::sqlite(), |b| {
        b.path("auth")
            .enable_implicit_grant(true)
            .enable_password_grant(false)
            .issuer("https://id.example.test/tenant")
    })
    .await;
    for path in [
        "/.well-known/openid-configuration",
        "/tenant/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server/tenant",
    ] {
        let (status, _, meta) = document(&server, path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(meta["issuer"], "https://id.example.test/tenant", "{path}");
        assert_eq!(meta["token_endpoint"], "https://id.example.test/tenant/auth/token");
        assert_eq!(meta["jwks_uri"], "https://id.example.test/tenant/auth/jwks");
        let grants = strings(&meta["grant_types_supported"]);
        assert!(
            grants.contains(&"implicit") && !grants.contains(&"password"),
            "{grants:?}"
        );
        let types = strings(&meta["response_types_supported"]);
        assert!(types.contains(&"id_token token"), "{types:?}");
    }
    let spoofed = server
        .http
        .get(server.url("/.well-known/openid-configuration"))
        .header("host", "evil.example")
        .header("x-forwarded-host", "evil.example")
        .send()
        .await
        .expect("GET");
    let text = spoofed.text().await.expect("body");
    assert!(!text.contains("evil.example"), "{text}");
    let (status, _, _) = document(&server, "/auth/jwks").await;
    assert_eq!(status, 200, "the JWKS under the route prefix");
}

/// RFC 7517 §5: the JWK Set holds the signing key with `kid`, `kty`, `use: "sig"` and `alg`,
/// and its `kid` is the one access tokens name.
#[tokio::test]
async fn the_jwks_publishes_the_key_tokens_name() {
    let server = TestServer::start_default(passport_sqlx::testing::sqlite()).await;
    let response = server.http.get(server.url("/oauth/jwks")).send().await.expect("GET");
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/jwk-set+json");
    assert!(headers["cache-control"].to_str().unwrap().contains("max-age=300"));
    let jwks: Value = response.json().await.expect("JSON");
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["kid"], server.passport.kid().as_str());
    assert!(key.get("d").is_none(), "no private member");
}
