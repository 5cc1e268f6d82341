//! `POST /oauth/token`: every grant and its errors (RFC 6749 §4–6, Passport 13 wire format).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::TimeDelta;
use passport::{Client, ClientKind, GrantType, NewClient};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestServer, api_user};

/// One year, the default access-token lifetime, in seconds.
const ONE_YEAR_SECONDS: i64 = 365 * 24 * 60 * 60;

/// The status, headers and JSON body of a response.
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("response body");
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
        Self { status, headers, body }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().expect("ASCII header"))
    }

    /// Asserts an RFC 6749 §5.2 error: status, code, and the no-store headers every token-endpoint
    /// response carries.
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "status for {}", self.body);
        assert_eq!(self.body["error"], code, "error code in {}", self.body);
        assert!(
            self.body["error_description"].as_str().is_some_and(|d| !d.is_empty()),
            "error_description in {}",
            self.body
        );
        self.assert_no_store();
    }

    /// RFC 6749 §5.1: `Cache-Control: no-store` and `Pragma: no-cache`.
    fn assert_no_store(&self) {
        assert_eq!(self.header("cache-control"), Some("no-store"), "Cache-Control");
        assert_eq!(self.header("pragma"), Some("no-cache"), "Pragma");
    }

    fn hint(&self) -> Option<&str> {
        self.body.get("hint").and_then(Value::as_str)
    }

    fn access_token(&self) -> &str {
        self.body["access_token"].as_str().expect("access_token")
    }

    fn refresh_token(&self) -> &str {
        self.body["refresh_token"].as_str().expect("refresh_token")
    }
}

/// POSTs a form to the token endpoint and reads the answer.
async fn post_form(server: &TestServer, form: &[(&str, &str)]) -> Answer {
    Answer::read(server.token(form).await).await
}

/// POSTs a form with an `Authorization` header.
async fn post_form_with_auth(server: &TestServer, authorization: &str, form: &[(&str, &str)]) -> Answer {
    let response = server
        .http
        .post(server.url("/oauth/token"))
        .header("authorization", authorization)
        .form(form)
        .send()
        .await
        .expect("token request");
    Answer::read(response).await
}

/// `Basic base64(id:secret)` (RFC 6749 §2.3.1; our ids and secrets need no form-encoding).
fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// The decoded JOSE header and claims of a compact JWT.
fn jwt_parts(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWS has three parts: {token}");
    let decode = |part: &str| -> Value {
        let bytes = URL_SAFE_NO_PAD.decode(part).expect("base64url without padding");
        serde_json::from_slice(&bytes).expect("JSON")
    };
    (decode(parts[0]), decode(parts[1]))
}

/// The scopes claim of a JWT.
fn jwt_scopes(token: &str) -> Vec<String> {
    let (_, claims) = jwt_parts(token);
    serde_json::from_value(claims["scopes"].clone()).expect("scopes array")
}

/// A password-grant token for `email`/`password` via a confidential password client.
async fn password_token(
    server: &TestServer,
    client: &(String, String),
    email: &str,
    password: &str,
    scope: &str,
) -> Answer {
    post_form(
        server,
        &[
            ("grant_type", "password"),
            ("client_id", &client.0),
            ("client_secret", &client.1),
            ("username", email),
            ("password", password),
            ("scope", scope),
        ],
    )
    .await
}

/// A refresh-grant request.
async fn refresh(server: &TestServer, client: &(String, String), refresh_token: &str, scope: Option<&str>) -> Answer {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("client_id", client.0.as_str()),
        ("client_secret", client.1.as_str()),
        ("refresh_token", refresh_token),
    ];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    post_form(server, &form).await
}

/// A client-credentials request.
async fn client_credentials(server: &TestServer, id: &str, secret: &str, scope: &str) -> Answer {
    post_form(
        server,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", scope),
        ],
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Client credentials (RFC 6749 §4.4) and client authentication (§2.3, §3.2.1)
// ---------------------------------------------------------------------------------------------

backend_test! {
    async fn client_credentials_token_calls_nothing_as_a_user(db) {
        let server = TestServer::start_default(db).await;
        let (id, secret) = server.service_client().await;
        let response = server
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", "read"),
            ])
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert!(body.get("refresh_token").is_none());
        let token = body["access_token"].as_str().unwrap();
        let user = server
            .http
            .get(server.url("/api/user"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            user.status(),
            401,
            "a client-credentials token never resolves to a user"
        );
    }
}

backend_test! {
    /// RFC 6749 §5.1: `token_type`, `expires_in`, `access_token`, no refresh token for client
    /// credentials (§4.4.3), and the no-store headers.
    async fn client_credentials_success_has_the_token_response_shape(db) {
        let server = TestServer::start_default(db).await;
        let (id, secret) = server.service_client().await;
        let answer = client_credentials(&server, &id, &secret, "read write").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.assert_no_store();
        assert!(
            answer
                .header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "JSON content type"
        );
        assert_eq!(answer.body["token_type"], "Bearer");
        assert_eq!(
            answer.body["expires_in"], ONE_YEAR_SECONDS,
            "default lifetime is one year"
        );
        assert!(!answer.access_token().is_empty());
        assert!(
            answer.body.get("refresh_token").is_none(),
            "no refresh token for client credentials"
        );
        assert!(
            answer.body.get("scope").is_none(),
            "scope omitted when granted as requested"
        );
    }
}

backend_test! {
    /// SPEC §5: an RS256 JWT with `kid`, and claims `aud`, `jti`, `iat`, `nbf`, `exp`, `sub`, `scopes`.
    async fn client_credentials_jwt_carries_passport_claims(db) {
        let server = TestServer::start_default(db).await;
        let (id, secret) = server.service_client().await;
        let answer = client_credentials(&server, &id, &secret, "read write").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let (header, claims) = jwt_parts(answer.access_token());
        assert_eq!(header["alg"], "RS256", "{header}");
        assert_eq!(header["kid"], server.passport.kid(), "kid is the key's thumbprint");
        assert_eq!(claims["aud"], id.as_str(), "aud is the client id");
        assert_eq!(
            claims["sub"],
            id.as_str(),
            "sub is the client id for client credentials"
        );
        let jti = claims["jti"].as_str().expect("jti");
        assert_eq!(jti.len(), 80, "jti is 40 random bytes in hex");
        assert!(jti.bytes().all(|b| b.is_ascii_hexdigit()), "jti {jti}");
        for claim in ["iat", "nbf", "exp"] {
            assert!(claims[claim].is_i64(), "{claim} is an integer in {claims}");
        }
        let now = server.passport.now().timestamp();
        assert_eq!(claims["iat"], now, "iat comes from the server clock");
        assert_eq!(claims["nbf"], now);
        assert_eq!(claims["exp"], now + ONE_YEAR_SECONDS);
        assert_eq!(claims["scopes"], json!(["read", "write"]));
        // The jti is the database key of the stored token.
        let stored = server.passport.store().find_access_token(jti).await.unwrap();
        let stored = stored.unwrap_or_else(|| panic!("token row for jti"));
        assert_eq!(stored.client_id, id);
        assert_eq!(stored.user_id, None, "client-credentials tokens have no user");
    }
}

backend_test! {
    async fn client_credentials_allows_the_wildcard_scope(db) {
        let server = TestServer::start_default(db).await;
        let (id, secret) = server.service_client().await;
        let answer = client_credentials(&server, &id, &secret, "*").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(jwt_scopes(answer.access_token()), ["*"]);
        assert!(answer.body.get("scope").is_none(), "`*` granted as requested");
    }
}

backend_test! {
    /// SPEC §6.7 / RFC 6749 §5.1: `scope` is in the response only when the granted scopes differ
    /// from the requested ones.
    async fn token_response_names_the_scope_only_when_it_differs_from_the_request(db) {
        let server = TestServer::start(db, |b| b.default_scopes(["read"])).await;
        let (id, secret) = server.service_client().await;

        // No scope asked: the defaults are granted, and named.
        let answer = post_form(
            &server,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["scope"], "read", "default scopes applied");
        assert_eq!(jwt_scopes(answer.access_token()), ["read"]);

        // Exactly what was asked, in any order: no scope field.
        let answer = client_credentials(&server, &id, &secret, "write read").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(answer.body.get("scope").is_none(), "{}", answer.body);

        // A client limited to `read` asking for more is granted less, and told so.
        let mut limited = NewClient::new("Limited", ClientKind::ClientCredentials);
        limited.scopes = Some(vec!["read".to_owned()]);
        let (client, limited_secret) = server.passport.create_client(limited).await.unwrap();
        let limited_secret = limited_secret.unwrap().expose_secret().to_owned();
        let answer = client_credentials(&server, &client.id, &limited_secret, "read write").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["scope"], "read", "narrowed by the client's scope list");
        assert_eq!(jwt_scopes(answer.access_token()), ["read"]);
    }
}

backend_test! {
    /// Reference §5.4: client credentials need a confidential client. A public client row carrying
    /// the grant (e.g. imported from Laravel) is refused as `invalid_client`.
    async fn client_credentials_refuses_a_public_client(db) {
        let server = TestServer::start_default(db).await;
        let now = server.passport.now();
        let id = uuid::Uuid::new_v4().to_string();
        let client = Client {
            id: id.clone(),
            owner_id: None,
            name: "Imported public service".to_owned(),
            secret_hash: None,
            provider: None,
            redirect_uris: Vec::new(),
            grant_types: vec![GrantType::ClientCredentials],
            scopes: None,
            skips_authorization: false,
            revoked: false,
            created_at: now,
            updated_at: now,
        };
        server.passport.store().insert_client(&client).await.unwrap();
        for secret in ["", "anything"] {
            let answer = client_credentials(&server, &id, secret, "read").await;
            answer.assert_error(401, "invalid_client");
        }
    }
}

backend_test! {
    /// RFC 6749 §5.2: a wrong secret is `invalid_client` 401, without `WWW-Authenticate` when the
    /// client did not use the Authorization header; no hint (reference §17.2).
    async fn wrong_client_secret_is_invalid_client_401(db) {
        let server = TestServer::start_default(db).await;
        let (id, secret) = server.service_client().await;
        let answer = client_credentials(&server, &id, &format!("{secret}x"), "read").await;
        answer.assert_error(401, "invalid_client");
        assert_eq!(answer.body["error_description"], "Client authentication failed",);
        assert!(answer.body.get("hint").is_none(), "{}", answer.body);
        assert!(
            answer.header("www-authenticate").is_none(),
            "no challenge without an Authorization header"
        );
    }
}

backend_test! {
    async fn confidential_client_without_a_secret_is_invalid_request(db) {
        let server = TestServer::start_default(db).await;
        let (id, _) = server.service_client().await;
        for form in [
            vec![("grant_type", "client_credentials"), ("client_id", id.as_str())],
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", id.as_str()),
                ("client_secret", "  "),
            ],
        ] {
            let answer = post_form(&server, &form).await;
            answer.assert_error(400, "invalid_request");
            assert_eq!(answer.hint(), Some("Check the `client_secret` parameter"));
        }
    }
}

backend_test! {
    async fn missing_client_id_is_invalid_request(db) {
        let server = TestServer::start_default(db).await;
        let answer = post_form(&server, &[("grant_type", "client_credentials"), ("client_secret", "s")]).await;
        answer.assert_error(400, "invalid_request");
        assert_eq!(answer.hint(), Some("Check the `client_id` parameter"));
    }
}

backend_test! {
    async fn unknown_client_is_invalid_client(db) {
        let server = TestServer::start_default(db).await;
        let random = uuid::Uuid::new_v4().to_string();
        for id in [random.as_str(), "not-a-uuid", "1", "' OR 1=1 --"] {
            let answer = client_credentials(&server, id, "secret", "read").await;
            answer.assert_error(401, "invalid_client");
        }
    }
}

backend_test! {
    /// A revoked client can neither get new tokens nor use the ones it had (revocation is immediate).
    async fn revoked_client_is_invalid_client_and_its_tokens_stop_working(db) {
        let server = TestServer::start_default(db).await;
        let (id, secret) = server.service_client().await;
        assert_eq!(client_credentials(&server, &id, &secret, "read").await.status, 200,);

        let client = server.password_client().await;
        server.user("rev@example.com", "pw-rev-1").await;
        let issued = password_token(&server, &client, "rev@example.com", "pw-rev-1", "read").await;
        assert_eq!(issued.status, 200, "{}", issued.body);
        assert_eq!(api_user(&server, issued.access_token()).await.0, 200);

        assert!(server.passport.store().revoke_client(&id).await.unwrap());
        assert!(server.passport.store().revoke_client(&client.0).await.unwrap(),);

        client_credentials(&server, &id, &secret, "read")
            .await
            .assert_error(401, "invalid_client");
        password_token(&server, &client, "rev@example.com", "pw-rev-1", "read")
            .await
            .assert_error(401, "invalid_client");
        refresh(&server, &client, issued.refresh_token(), None)
            .await
            .assert_error(401, "invalid_client");
        assert_eq!(
            api_user(&server, issued.access_token()).await.0,
            401,
            "revoked client's token"
        );
    }
}

backend_test! {
    /// RFC 6749 §5.2 `unauthorized_client`: the client is known but may not use this grant.
    async fn client_lacking_the_grant_is_unauthorized_client(db) {
        let server = TestServer::start_default(db).await;
        let (pw_id, pw_secret) = server.password_client().await;
        let answer = client_credentials(&server, &pw_id, &pw_secret, "read").await;
        answer.assert_error(400, "unauthorized_client");

        let (cc_id, cc_secret) = server.service_client().await;
        server.user("unauth@example.com", "pw-unauth-1").await;
        let answer = password_token(
            &server,
            &(cc_id.clone(), cc_secret.clone()),
            "unauth@example.com",
            "pw-unauth-1",
            "read",
        )
        .await;
        answer.assert_error(400, "unauthorized_client");
        let answer = refresh(&server, &(cc_id, cc_secret), "whatever", None).await;
        answer.assert_error(400, "unauthorized_client");
    }
}

backend_test! {
    async fn unknown_scope_is_invalid_scope(db) {
        let server = TestServer::start_default(db).await;
        let (id, secret) = server.service_client().await;
        let answer = client_credentials(&server, &id, &secret, "read nope").await;
        answer.assert_error(400, "invalid_scope");
        assert_eq!(answer.hint(), Some("Check the `nope` scope"));
    }
}

backend_test! {
    /// RFC 6749 §2.3.1: HTTP Basic client authentication; §5.2: `invalid_client` after Basic
    /// authentication carries `WWW-Authenticate`.
    async fn basic_auth_authenticates_the_client_and_failures_carry_a_challenge(db) {
        let server = TestServer::start_default(db).await;
        let (id, secret) = server.service_client().await;
        let form = [("grant_type", "client_credentials"), ("scope", "read")];

        let answer = post_form_with_auth(&server, &basic(&id, &secret), &form).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.assert_no_store();
        let (_, claims) = jwt_parts(answer.access_token());
        assert_eq!(claims["aud"], id.as_str());

        // The scheme is case-insensitive.
        let lower = basic(&id, &secret).replacen("Basic", "basic", 1);
        assert_eq!(post_form_with_auth(&server, &lower, &form).await.status, 200);

        let answer = post_form_with_auth(&server, &basic(&id, "wrong"), &form).await;
        answer.assert_error(401, "invalid_client");
        assert_eq!(answer.header("www-authenticate"), Some("Basic realm=\"OAuth\""),);

        let unknown = uuid::Uuid::new_v4().to_string();
        let answer = post_form_with_auth(&server, &basic(&unknown, "x"), &form).await;
        answer.assert_error(401, "invalid_client");
        assert_eq!(answer.header("www-authenticate"), Some("Basic realm=\"OAuth\""),);

        // A Bearer Authorization header gets a Bearer challenge (reference §3.2).
        let body_creds = [
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", "wrong"),
        ];
        let answer = post_form_with_auth(&server, "Bearer abc", &body_creds).await;
        answer.assert_error(401, "invalid_client");
        assert_eq!(answer.header("www-authenticate"), Some("Bearer realm=\"OAuth\""),);

        // Malformed Basic credentials are ignored, as if absent: no client id at all.
        let answer = post_form_with_auth(&server, "Basic !!!not-base64", &form).await;
        answer.assert_error(400, "invalid_request");
        assert_eq!(answer.hint(), Some("Check the `client_id` parameter"));
    }
}

backend_test! {
    /// Reference §3.2: body credentials win over Basic; each part falls back separately.
    async fn body_credentials_win_over_basic_auth(db) {
        let server = TestServer::start_default(db).await;
        let (id, secret) = server.service_client().await;

        let right_body = [
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ];
        let answer = post_form_with_auth(&server, &basic(&id, "wrong"), &right_body).await;
        assert_eq!(answer.status, 200, "correct body beats wrong Basic: {}", answer.body);

        let wrong_body = [
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", "wrong"),
        ];
        let answer = post_form_with_auth(&server, &basic(&id, &secret), &wrong_body).await;
        answer.assert_error(401, "invalid_client");

        // The id from the body, the secret from Basic.
        let id_only = [("grant_type", "client_credentials"), ("client_id", id.as_str())];
        let answer = post_form_with_auth(&server, &basic(&id, &secret), &id_only).await;
        assert_eq!(answer.status, 200, "secret falls back to Basic: {}", answer.body);
    }
}

backend_test! {
    async fn missing_grant_type_is_invalid_request(db) {
        let server = TestServer::start_default(db).await;
        let (id, secret) = server.service_client().await;
        for form in [
            vec![("client_id", id.as_str()), ("client_secret", secret.as_str())],
            vec![("grant_type", ""), ("client_id", id.as_str())],
            vec![],
        ] {
            let answer = post_form(&server, &form).await;
            answer.assert_error(400, "invalid_request");
            assert_eq!(answer.hint(), Some("Check the `grant_type` parameter"));
        }
    }
}

backend_test! {
    /// RFC 6749 §5.2 `unsupported_grant_type`; Passport 13 never serves `personal_access` over HTTP.
    async fn unknown_or_private_grant_type_is_unsupported_grant_type(db) {
        let server = TestServer::start_default(db).await;
        let (pat_id, pat_secret) = server.client(ClientKind::PersonalAccess, false).await;
        let pat_secret = pat_secret.expect("confidential");
        for grant_type in ["foo", "CLIENT_CREDENTIALS", "personal_access", "urn:example:nope"] {
            let answer = post_form(
                &server,
                &[
                    ("grant_type", grant_type),
                    ("client_id", &pat_id),
                    ("client_secret", &pat_secret),
                ],
            )
            .await;
            answer.assert_error(400, "unsupported_grant_type");
        }
    }
}

backend_test! {
    /// Reference §3.1: JSON bodies work like forms.
    async fn json_body_is_accepted(db) {
        let server = TestServer::start_default(db).await;
        let (id, secret) = server.service_client().await;
        for content_type in ["application/json", "application/json; charset=utf-8"] {
            let response = server
                .http
                .post(server.url("/oauth/token"))
                .header("content-type", content_type)
                .body(
                    json!({
                        "grant_type": "client_credentials",
                        "client_id": id,
                        "client_secret": secret,
                        "scope": "read",
                    })
                    .to_string(),
                )
                .send()
                .await
                .unwrap();
            let answer = Answer::read(response).await;
            assert_eq!(answer.status, 200, "{content_type}: {}", answer.body);
            answer.assert_no_store();
            assert_eq!(jwt_scopes(answer.access_token()), ["read"]);
        }
        // Errors in JSON requests are the same JSON errors.
        let response = server
            .http
            .post(server.url("/oauth/token"))
            .json(&json!({"grant_type": "client_credentials", "client_id": id, "client_secret": "nope"}))
            .send()
            .await
            .unwrap();
        Answer::read(response).await.assert_error(401, "invalid_client");
    }
}

// ---------------------------------------------------------------------------------------------
// Password grant (RFC 6749 §4.3)
// ---------------------------------------------------------------------------------------------

backend_test! {
    async fn password_grant_issues_a_user_token_with_a_refresh_token(db) {
        let server = TestServer::start_default(db).await;
        let client = server.password_client().await;
        let user_id = server.user("alice@example.com", "correct horse").await;
        let answer = password_token(&server, &client, "alice@example.com", "correct horse", "read").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.assert_no_store();
        assert_eq!(answer.body["token_type"], "Bearer");
        assert_eq!(answer.body["expires_in"], ONE_YEAR_SECONDS);
        assert!(answer.refresh_token().len() >= 32, "high-entropy refresh token");
        assert!(answer.body.get("scope").is_none());
        let (_, claims) = jwt_parts(answer.access_token());
        assert_eq!(claims["sub"], user_id.as_str(), "sub is the user id");
        assert_eq!(claims["aud"], client.0.as_str());

        let (status, user) = api_user(&server, answer.access_token()).await;
        assert_eq!(status, 200, "{user}");
        assert_eq!(user["email"], "alice@example.com");
        assert_eq!(user["id"], user_id.as_str());
    }
}

backend_test! {
    /// The password grant must not reveal whether an account exists (RFC 6749 §10.7 spirit;
    /// reference §5.3 wording).
    async fn password_grant_unknown_user_and_wrong_password_answer_identically(db) {
        let server = TestServer::start_default(db).await;
        let client = server.password_client().await;
        server.user("bob@example.com", "bob-password").await;
        let wrong_password = password_token(&server, &client, "bob@example.com", "not-it", "read").await;
        let unknown_user = password_token(&server, &client, "nobody@example.com", "bob-password", "read").await;
        for answer in [&wrong_password, &unknown_user] {
            answer.assert_error(400, "invalid_grant");
            assert_eq!(answer.body["error_description"], "The user credentials were incorrect.",);
            assert!(answer.body.get("hint").is_none(), "{}", answer.body);
        }
        assert_eq!(wrong_password.status, unknown_user.status);
        assert_eq!(wrong_password.body, unknown_user.body, "identical bodies");
    }
}

backend_test! {
    async fn password_grant_missing_username_or_password_is_invalid_request(db) {
        let server = TestServer::start_default(db).await;
        let (id, secret) = server.password_client().await;
        let base = [
            ("grant_type", "password"),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ];
        for (extra, missing) in [
            (vec![("password", "pw")], "username"),
            (vec![("username", "a@example.com")], "password"),
            (vec![("username", "a@example.com"), ("password", "   ")], "password"),
            (vec![], "username"),
        ] {
            let form: Vec<_> = base.iter().copied().chain(extra).collect();
            let answer = post_form(&server, &form).await;
            answer.assert_error(400, "invalid_request");
            let expected = format!("Check the `{missing}` parameter");
            assert_eq!(answer.hint(), Some(expected.as_str()));
        }
    }
}

backend_test! {
    /// Reference §5.3: scopes are validated before the user, so a bad scope is reported even with a
    /// wrong password.
    async fn password_grant_checks_the_scope_before_the_credentials(db) {
        let server = TestServer::start_default(db).await;
        let client = server.password_client().await;
        server.user("carol@example.com", "carol-pw").await;
        let answer = password_token(&server, &client, "carol@example.com", "wrong", "read nope").await;
        answer.assert_error(400, "invalid_scope");
        assert_eq!(answer.hint(), Some("Check the `nope` scope"));
    }
}

backend_test! {
    async fn password_grant_disabled_is_unsupported_grant_type(db) {
        let server = TestServer::start(db, |b| b.enable_password_grant(false)).await;
        let client = server.password_client().await;
        server.user("dave@example.com", "dave-pw").await;
        let answer = password_token(&server, &client, "dave@example.com", "dave-pw", "read").await;
        answer.assert_error(400, "unsupported_grant_type");
    }
}

backend_test! {
    async fn password_grant_allows_the_wildcard_scope(db) {
        let server = TestServer::start_default(db).await;
        let client = server.password_client().await;
        server.user("erin@example.com", "erin-pw").await;
        let answer = password_token(&server, &client, "erin@example.com", "erin-pw", "*").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(jwt_scopes(answer.access_token()), ["*"]);
        assert_eq!(api_user(&server, answer.access_token()).await.0, 200);
    }
}

backend_test! {
    /// Reference §3.2: a public client authenticates by id alone; a secret it sends is ignored.
    async fn password_grant_public_client_needs_no_secret(db) {
        let server = TestServer::start_default(db).await;
        let (id, secret) = server.client(ClientKind::Password, true).await;
        assert!(secret.is_none(), "public clients have no secret");
        server.user("frank@example.com", "frank-pw").await;
        for form_secret in [None, Some("ignored")] {
            let mut form = vec![
                ("grant_type", "password"),
                ("client_id", id.as_str()),
                ("username", "frank@example.com"),
                ("password", "frank-pw"),
            ];
            if let Some(s) = form_secret {
                form.push(("client_secret", s));
            }
            let answer = post_form(&server, &form).await;
            assert_eq!(answer.status, 200, "{form_secret:?}: {}", answer.body);
            assert!(answer.body.get("refresh_token").is_some());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Refresh token grant (RFC 6749 §6, RFC 9700 §4.14.2)
// ---------------------------------------------------------------------------------------------

/// Sets up a password client, a user and a first token pair with scopes `read write`.
async fn first_pair(server: &TestServer, email: &str) -> ((String, String), Answer) {
    let client = server.password_client().await;
    server.user(email, "pair-password").await;
    let answer = password_token(server, &client, email, "pair-password", "read write").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    (client, answer)
}

backend_test! {
    async fn refresh_rotates_the_pair_and_revokes_the_old_one(db) {
        let server = TestServer::start_default(db).await;
        let (client, first) = first_pair(&server, "rot@example.com").await;

        let second = refresh(&server, &client, first.refresh_token(), None).await;
        assert_eq!(second.status, 200, "{}", second.body);
        second.assert_no_store();
        assert_eq!(second.body["token_type"], "Bearer");
        assert_ne!(second.access_token(), first.access_token(), "new access token");
        assert_ne!(second.refresh_token(), first.refresh_token(), "new refresh token");
        assert!(second.body.get("scope").is_none(), "same scopes as before");
        assert_eq!(jwt_scopes(second.access_token()), ["read", "write"]);
        let (_, old_claims) = jwt_parts(first.access_token());
        let (_, new_claims) = jwt_parts(second.access_token());
        assert_eq!(old_claims["sub"], new_claims["sub"], "same user");

        assert_eq!(
            api_user(&server, first.access_token()).await.0,
            401,
            "old access token revoked"
        );
        let (status, user) = api_user(&server, second.access_token()).await;
        assert_eq!(status, 200);
        assert_eq!(user["email"], "rot@example.com");

        let replay = refresh(&server, &client, first.refresh_token(), None).await;
        replay.assert_error(400, "invalid_grant");
        assert_eq!(replay.body["error_description"], "The refresh token is invalid.",);
    }
}

backend_test! {
    async fn refresh_missing_or_unknown_token_is_refused(db) {
        let server = TestServer::start_default(db).await;
        let (client, _) = first_pair(&server, "miss@example.com").await;
        let answer = post_form(
            &server,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &client.0),
                ("client_secret", &client.1),
            ],
        )
        .await;
        answer.assert_error(400, "invalid_request");
        assert_eq!(answer.hint(), Some("Check the `refresh_token` parameter"));

        refresh(&server, &client, "def50200deadbeef", None)
            .await
            .assert_error(400, "invalid_grant");
    }
}

backend_test! {
    /// RFC 6749 §6: the new scope may not include anything not originally granted; narrowing is
    /// allowed and sticks to the new pair.
    async fn refresh_may_narrow_the_scopes_but_never_widen_them(db) {
        let server = TestServer::start_default(db).await;
        let (client, first) = first_pair(&server, "narrow@example.com").await;

        let widened = refresh(&server, &client, first.refresh_token(), Some("read write admin")).await;
        widened.assert_error(400, "invalid_scope");
        assert_eq!(widened.hint(), Some("Check the `admin` scope"));

        // The refused widening did not use the token up.
        let narrowed = refresh(&server, &client, first.refresh_token(), Some("read")).await;
        assert_eq!(narrowed.status, 200, "{}", narrowed.body);
        assert_eq!(jwt_scopes(narrowed.access_token()), ["read"], "narrowed token");
        // Granted exactly as requested: SPEC §6.7 / RFC 6749 §5.1 omit `scope`.
        assert!(narrowed.body.get("scope").is_none(), "{}", narrowed.body);

        // The new refresh token carries the narrowed set: no scope means `read`, and `write`
        // cannot come back.
        let back = refresh(&server, &client, narrowed.refresh_token(), Some("read write")).await;
        back.assert_error(400, "invalid_scope");
        assert_eq!(back.hint(), Some("Check the `write` scope"));
        let again = refresh(&server, &client, narrowed.refresh_token(), None).await;
        assert_eq!(again.status, 200, "{}", again.body);
        assert_eq!(jwt_scopes(again.access_token()), ["read"]);
    }
}

backend_test! {
    /// Reference §5.5 step 8: Passport 13 strips `*` when refreshing.
    async fn refresh_drops_the_wildcard_scope(db) {
        let server = TestServer::start_default(db).await;
        let client = server.password_client().await;
        server.user("star@example.com", "star-pw").await;
        let first = password_token(&server, &client, "star@example.com", "star-pw", "*").await;
        assert_eq!(first.status, 200, "{}", first.body);
        let second = refresh(&server, &client, first.refresh_token(), None).await;
        assert_eq!(second.status, 200, "{}", second.body);
        assert!(jwt_scopes(second.access_token()).is_empty());
        assert!(
            second.body.get("scope").is_some(),
            "granted scopes differ from the `*` asked for"
        );
    }
}

backend_test! {
    /// RFC 6749 §6: the refresh token is bound to the client it was issued to.
    async fn refresh_token_of_another_client_is_invalid_grant(db) {
        let server = TestServer::start_default(db).await;
        let (client, first) = first_pair(&server, "other@example.com").await;
        let other = server.password_client().await;
        let answer = refresh(&server, &other, first.refresh_token(), None).await;
        answer.assert_error(400, "invalid_grant");
        assert_eq!(answer.hint(), Some("Token is not linked to client"));
        // The attempt did not burn the token for its rightful owner.
        let owner = refresh(&server, &client, first.refresh_token(), None).await;
        assert_eq!(owner.status, 200, "{}", owner.body);
    }
}

backend_test! {
    async fn expired_refresh_token_is_invalid_grant(db) {
        let server = TestServer::start(db, |b| b.refresh_tokens_expire_in(TimeDelta::minutes(5))).await;
        let (client, first) = first_pair(&server, "exp@example.com").await;
        server.advance(TimeDelta::minutes(10));
        let answer = refresh(&server, &client, first.refresh_token(), None).await;
        answer.assert_error(400, "invalid_grant");
        assert_eq!(answer.hint(), Some("Token has expired"));
    }
}

backend_test! {
    /// SPEC §6.2 / RFC 9700 §4.14.2: presenting a rotated refresh token again revokes the family.
    async fn reused_refresh_token_revokes_the_whole_family(db) {
        let server = TestServer::start_default(db).await;
        let (client, a) = first_pair(&server, "reuse@example.com").await;
        let b = refresh(&server, &client, a.refresh_token(), None).await;
        assert_eq!(b.status, 200, "{}", b.body);
        assert_eq!(api_user(&server, b.access_token()).await.0, 200);

        let replay = refresh(&server, &client, a.refresh_token(), None).await;
        replay.assert_error(400, "invalid_grant");

        refresh(&server, &client, b.refresh_token(), None)
            .await
            .assert_error(400, "invalid_grant");
        assert_eq!(
            api_user(&server, b.access_token()).await.0,
            401,
            "B's access token revoked"
        );

        // Another family of the same user is untouched.
        let other = password_token(&server, &client, "reuse@example.com", "pair-password", "read").await;
        assert_eq!(other.status, 200);
        assert_eq!(api_user(&server, other.access_token()).await.0, 200);
        assert_eq!(refresh(&server, &client, other.refresh_token(), None).await.status, 200,);
    }
}

backend_test! {
    async fn expired_access_token_is_refused_at_the_api(db) {
        let server = TestServer::start(db, |b| b.tokens_expire_in(TimeDelta::minutes(1))).await;
        let (_, first) = first_pair(&server, "short@example.com").await;
        assert_eq!(first.body["expires_in"], 60);
        assert_eq!(api_user(&server, first.access_token()).await.0, 200);
        server.advance(TimeDelta::minutes(2));
        assert_eq!(api_user(&server, first.access_token()).await.0, 401, "expired");
    }
}

backend_test! {
    /// SPEC §6.1: single use is atomic. Ten parallel redemptions of one refresh token: exactly one
    /// wins, every other one is `invalid_grant`.
    #[flavor(multi_thread, 4)]
    async fn concurrent_refreshes_of_one_token_succeed_exactly_once(db) {
        const N: usize = 10;
        let server = Arc::new(TestServer::start_default(db).await);
        let (client, first) = first_pair(&server, "race@example.com").await;
        let client = Arc::new(client);
        let token: Arc<str> = first.refresh_token().into();
        let barrier = Arc::new(tokio::sync::Barrier::new(N));
        let tasks: Vec<_> = (0..N)
            .map(|_| {
                let (server, client, token, barrier) = (server.clone(), client.clone(), token.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    refresh(&server, &client, &token, None).await
                })
            })
            .collect();
        let mut wins = 0;
        for task in tasks {
            let answer = task.await.expect("task");
            if answer.status == 200 {
                wins += 1;
            } else {
                answer.assert_error(400, "invalid_grant");
            }
        }
        assert_eq!(wins, 1, "exactly one refresh succeeds");
        // The original token is used up either way.
        refresh(&server, &client, &token, None)
            .await
            .assert_error(400, "invalid_grant");
    }
}
