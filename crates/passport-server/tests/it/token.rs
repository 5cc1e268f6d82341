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

/// A token request's form: names and values, in the order they are sent.
type Form = Vec<(&'static str, String)>;

/// A form from borrowed pairs.
fn form(pairs: &[(&'static str, &str)]) -> Form {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

/// POSTs a [`Form`] to the token endpoint and reads the answer.
async fn post(server: &TestServer, form: &Form) -> Answer {
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    post_form(server, &pairs).await
}

/// A password-grant request for `email`/`password` via a confidential password client.
fn password_form(client: &(String, String), email: &str, password: &str, scope: &str) -> Form {
    form(&[
        ("grant_type", "password"),
        ("client_id", &client.0),
        ("client_secret", &client.1),
        ("username", email),
        ("password", password),
        ("scope", scope),
    ])
}

/// A password-grant token for `email`/`password` via a confidential password client.
async fn password_token(
    server: &TestServer,
    client: &(String, String),
    email: &str,
    password: &str,
    scope: &str,
) -> Answer {
    post(server, &password_form(client, email, password, scope)).await
}

/// A refresh-grant request.
fn refresh_form(client: &(String, String), refresh_token: &str, scope: Option<&str>) -> Form {
    let mut form = form(&[
        ("grant_type", "refresh_token"),
        ("client_id", &client.0),
        ("client_secret", &client.1),
        ("refresh_token", refresh_token),
    ]);
    if let Some(scope) = scope {
        form.push(("scope", scope.to_owned()));
    }
    form
}

/// A refresh-grant request, sent.
async fn refresh(server: &TestServer, client: &(String, String), refresh_token: &str, scope: Option<&str>) -> Answer {
    post(server, &refresh_form(client, refresh_token, scope)).await
}

/// A client-credentials request.
fn client_credentials_form(id: &str, secret: &str, scope: &str) -> Form {
    form(&[
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
        ("scope", scope),
    ])
}

/// A client-credentials request, sent.
async fn client_credentials(server: &TestServer, id: &str, secret: &str, scope: &str) -> Answer {
    post(server, &client_credentials_form(id, secret, scope)).await
}

/// Sets up a password client, a user and a first token pair with scopes `read write`.
async fn first_pair(server: &TestServer, email: &str) -> ((String, String), Answer) {
    let client = server.password_client().await;
    server.user(email, "pair-password").await;
    let answer = password_token(server, &client, email, "pair-password", "read write").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    (client, answer)
}

// ---------------------------------------------------------------------------------------------
// Error tables: each row sends one bad request and names the error it gets (RFC 6749 §5.2).
// Errors that need a server configured otherwise (the password grant off, short-lived refresh
// tokens) or several requests (rotation, reuse, revocation) are tests of their own below.
// ---------------------------------------------------------------------------------------------

/// What a row expects of an optional part of the answer.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Not checked.
    Any,
    /// Must be absent.
    Absent,
    /// Must be exactly this.
    Is(&'static str),
}

impl Expect {
    /// `None` when `actual` is as expected, else what was expected.
    fn mismatch(self, actual: Option<&str>) -> Option<String> {
        match (self, actual) {
            (Self::Any, _) | (Self::Absent, None) => None,
            (Self::Is(want), Some(got)) if want == got => None,
            (Self::Absent, Some(_)) => Some("absent".to_owned()),
            (Self::Is(want), _) => Some(format!("{want:?}")),
        }
    }
}

/// One bad request to the token endpoint and the error answer it must get.
struct Case {
    /// What is sent.
    name: String,
    /// What says so: an RFC section, the README, or Laravel Passport 13's behaviour.
    cites: &'static str,
    form: Form,
    status: u16,
    error: &'static str,
    /// The `hint` member.
    hint: Expect,
    /// The `error_description` member (always present and non-empty).
    description: Expect,
    /// The `WWW-Authenticate` header.
    challenge: Expect,
}

fn case(name: impl Into<String>, cites: &'static str, form: Form, status: u16, error: &'static str) -> Case {
    Case {
        name: name.into(),
        cites,
        form,
        status,
        error,
        hint: Expect::Any,
        description: Expect::Any,
        challenge: Expect::Any,
    }
}

impl Case {
    fn hint(self, hint: &'static str) -> Self {
        Self {
            hint: Expect::Is(hint),
            ..self
        }
    }

    fn no_hint(self) -> Self {
        Self {
            hint: Expect::Absent,
            ..self
        }
    }

    fn description(self, description: &'static str) -> Self {
        Self {
            description: Expect::Is(description),
            ..self
        }
    }

    fn no_challenge(self) -> Self {
        Self {
            challenge: Expect::Absent,
            ..self
        }
    }
}

/// Sends every case and checks its answer: the status, the error code, a non-empty
/// `error_description`, the RFC 6749 §5.1 no-store headers, and what the row expects of the
/// hint, the description and the challenge. Fails once, listing every row that went wrong.
async fn check_cases(server: &TestServer, cases: Vec<Case>) {
    let mut failures = Vec::new();
    for case in cases {
        let answer = post(server, &case.form).await;
        let mut problems = Vec::new();
        if answer.status.as_u16() != case.status {
            problems.push(format!("status {} instead of {}", answer.status.as_u16(), case.status));
        }
        if answer.body["error"] != case.error {
            problems.push(format!("error {} instead of {:?}", answer.body["error"], case.error));
        }
        let description = answer.body["error_description"].as_str();
        if description.is_none_or(str::is_empty) {
            problems.push("no error_description".to_owned());
        }
        for (name, want) in [("Cache-Control", "no-store"), ("Pragma", "no-cache")] {
            if answer.header(name) != Some(want) {
                problems.push(format!("{name} {:?} instead of {want:?}", answer.header(name)));
            }
        }
        // A `hint` that is there but not a string counts as present (and never matches).
        let hint = answer
            .body
            .get("hint")
            .map(|h| h.as_str().map_or_else(|| h.to_string(), str::to_owned));
        for (what, expect, actual) in [
            ("hint", case.hint, hint.as_deref()),
            ("error_description", case.description, description),
            ("WWW-Authenticate", case.challenge, answer.header("www-authenticate")),
        ] {
            if let Some(want) = expect.mismatch(actual) {
                problems.push(format!("{what} {actual:?} instead of {want}"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{} ({}): {} in {}",
                case.name,
                case.cites,
                problems.join("; "),
                answer.body
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The clients, users and tokens the error tables refer to.
struct Fixture {
    /// A confidential client-credentials client.
    service: (String, String),
    /// A confidential password client.
    password: (String, String),
    /// A confidential personal access client.
    personal: (String, String),
    /// A public client row carrying the client-credentials grant (e.g. imported from Laravel).
    public_service: String,
    /// The password client of a first token pair ([`first_pair`]).
    pair_client: (String, String),
}

impl Fixture {
    async fn new(server: &TestServer) -> Self {
        let service = server.service_client().await;
        let password = server.password_client().await;
        let (personal_id, personal_secret) = server.client(ClientKind::PersonalAccess, false).await;
        let personal = (personal_id, personal_secret.expect("confidential"));
        let now = server.passport.now();
        let public_service = uuid::Uuid::new_v4().to_string();
        let client = Client {
            id: public_service.clone().into(),
            owner_id: None,
            name: "Imported public service".to_owned(),
            secret_hash: None,
            provider: None,
            redirect_uris: Vec::new(),
            grant_types: vec![GrantType::ClientCredentials],
            scopes: None,
            skips_authorization: false,
            post_logout_redirect_uris: Vec::new(),
            can_introspect: false,
            require_pushed_authorization_requests: false,
            dpop_bound_access_tokens: false,
            jwks: None,
            fapi_profile: false,
            jwks_uri: None,
            revoked: false,
            created_at: now,
            updated_at: now,
        };
        server.db.store().insert_client(&client).await.unwrap();
        server.user("unauth@example.com", "pw-unauth-1").await;
        server.user("carol@example.com", "carol-pw").await;
        let (pair_client, _) = first_pair(server, "miss@example.com").await;
        Self {
            service,
            password,
            personal,
            public_service,
            pair_client,
        }
    }
}

/// Client authentication (RFC 6749 §2.3, §3.2.1), `grant_type`, and the client-credentials
/// grant (§4.4).
fn client_cases(f: &Fixture) -> Vec<Case> {
    let (cc_id, cc_secret) = (f.service.0.as_str(), f.service.1.as_str());
    let grant_type_hint = "Check the `grant_type` parameter";
    let mut out = vec![
        // grant_type is required (§4.1.3, §4.3.2, §4.4.2, §6).
        case(
            "no grant_type",
            "RFC 6749 §4.4.2, §5.2",
            form(&[("client_id", cc_id), ("client_secret", cc_secret)]),
            400,
            "invalid_request",
        )
        .hint(grant_type_hint),
        case(
            "empty grant_type",
            "RFC 6749 §4.4.2, §5.2",
            form(&[("grant_type", ""), ("client_id", cc_id)]),
            400,
            "invalid_request",
        )
        .hint(grant_type_hint),
        case("empty form", "RFC 6749 §4.4.2, §5.2", form(&[]), 400, "invalid_request").hint(grant_type_hint),
    ];
    // Grant types are exact strings; Passport 13 never serves `personal_access` over HTTP
    // (README: HTTP).
    for grant_type in ["foo", "CLIENT_CREDENTIALS", "personal_access", "urn:example:nope"] {
        out.push(case(
            format!("grant_type {grant_type:?} from a personal access client"),
            "RFC 6749 §5.2 unsupported_grant_type",
            form(&[
                ("grant_type", grant_type),
                ("client_id", &f.personal.0),
                ("client_secret", &f.personal.1),
            ]),
            400,
            "unsupported_grant_type",
        ));
    }
    out.extend([
        case(
            "client_credentials without client_id",
            "RFC 6749 §3.2.1, §5.2",
            form(&[("grant_type", "client_credentials"), ("client_secret", "s")]),
            400,
            "invalid_request",
        )
        .hint("Check the `client_id` parameter"),
        // A confidential client must authenticate (§3.2.1); Laravel Passport 13 calls a missing
        // secret invalid_request.
        case(
            "confidential client without client_secret",
            "RFC 6749 §3.2.1; Laravel Passport 13 behaves so",
            form(&[("grant_type", "client_credentials"), ("client_id", cc_id)]),
            400,
            "invalid_request",
        )
        .hint("Check the `client_secret` parameter"),
        case(
            "confidential client with a blank client_secret",
            "RFC 6749 §3.2.1; Laravel Passport 13 behaves so",
            form(&[
                ("grant_type", "client_credentials"),
                ("client_id", cc_id),
                ("client_secret", "  "),
            ]),
            400,
            "invalid_request",
        )
        .hint("Check the `client_secret` parameter"),
        // No WWW-Authenticate when the client did not use the Authorization header; no hint, as
        // in Laravel Passport 13.
        case(
            "wrong client_secret",
            "RFC 6749 §5.2 invalid_client",
            client_credentials_form(cc_id, &format!("{cc_secret}x"), "read"),
            401,
            "invalid_client",
        )
        .description("Client authentication failed")
        .no_hint()
        .no_challenge(),
    ]);
    let random = uuid::Uuid::new_v4().to_string();
    for id in [random.as_str(), "not-a-uuid", "1", "' OR 1=1 --"] {
        out.push(case(
            format!("unknown client id {id:?}"),
            "RFC 6749 §5.2 invalid_client",
            client_credentials_form(id, "secret", "read"),
            401,
            "invalid_client",
        ));
    }
    // Client credentials are for confidential clients only: a public client row carrying the
    // grant is refused, whatever secret it sends (README: HTTP).
    for secret in ["", "anything"] {
        out.push(case(
            format!("public client asking for client credentials, secret {secret:?}"),
            "RFC 6749 §4.4, §5.2 invalid_client",
            client_credentials_form(&f.public_service, secret, "read"),
            401,
            "invalid_client",
        ));
    }
    out.extend([
        case(
            "password client asking for client credentials",
            "RFC 6749 §5.2 unauthorized_client",
            client_credentials_form(&f.password.0, &f.password.1, "read"),
            400,
            "unauthorized_client",
        ),
        case(
            "unknown scope",
            "RFC 6749 §3.3, §5.2 invalid_scope",
            client_credentials_form(cc_id, cc_secret, "read nope"),
            400,
            "invalid_scope",
        )
        .hint("Check the `nope` scope"),
    ]);
    out
}

/// The password grant (RFC 6749 §4.3).
fn password_cases(f: &Fixture) -> Vec<Case> {
    let base = [
        ("grant_type", "password"),
        ("client_id", f.password.0.as_str()),
        ("client_secret", f.password.1.as_str()),
    ];
    let with = |extra: &[(&'static str, &'static str)]| -> Form {
        let pairs: Vec<_> = base.iter().chain(extra).copied().collect();
        form(&pairs)
    };
    vec![
        case(
            "client-credentials client asking for the password grant",
            "RFC 6749 §5.2 unauthorized_client",
            password_form(&f.service, "unauth@example.com", "pw-unauth-1", "read"),
            400,
            "unauthorized_client",
        ),
        // username and password are required (§4.3.2).
        case(
            "password without username",
            "RFC 6749 §4.3.2, §5.2",
            with(&[("password", "pw")]),
            400,
            "invalid_request",
        )
        .hint("Check the `username` parameter"),
        case(
            "username without password",
            "RFC 6749 §4.3.2, §5.2",
            with(&[("username", "a@example.com")]),
            400,
            "invalid_request",
        )
        .hint("Check the `password` parameter"),
        case(
            "blank password",
            "RFC 6749 §4.3.2, §5.2",
            with(&[("username", "a@example.com"), ("password", "   ")]),
            400,
            "invalid_request",
        )
        .hint("Check the `password` parameter"),
        case(
            "neither username nor password",
            "RFC 6749 §4.3.2, §5.2",
            with(&[]),
            400,
            "invalid_request",
        )
        .hint("Check the `username` parameter"),
        // Scopes are validated before the user, so a bad scope is reported even with a wrong
        // password.
        case(
            "unknown scope with a wrong password",
            "RFC 6749 §5.2 invalid_scope; Laravel Passport 13 behaves so",
            password_form(&f.password, "carol@example.com", "wrong", "read nope"),
            400,
            "invalid_scope",
        )
        .hint("Check the `nope` scope"),
    ]
}

/// The refresh-token grant (RFC 6749 §6).
fn refresh_cases(f: &Fixture) -> Vec<Case> {
    vec![
        case(
            "client-credentials client asking for the refresh grant",
            "RFC 6749 §5.2 unauthorized_client",
            refresh_form(&f.service, "whatever", None),
            400,
            "unauthorized_client",
        ),
        case(
            "no refresh_token",
            "RFC 6749 §6, §5.2",
            form(&[
                ("grant_type", "refresh_token"),
                ("client_id", &f.pair_client.0),
                ("client_secret", &f.pair_client.1),
            ]),
            400,
            "invalid_request",
        )
        .hint("Check the `refresh_token` parameter"),
        case(
            "unknown refresh token",
            "RFC 6749 §5.2 invalid_grant",
            refresh_form(&f.pair_client, "def50200deadbeef", None),
            400,
            "invalid_grant",
        ),
    ]
}

backend_test! {
    /// The rows of [`client_cases`].
    async fn client_authentication_and_client_credentials_errors(db) {
        let server = TestServer::start_default(db).await;
        let fixture = Fixture::new(&server).await;
        check_cases(&server, client_cases(&fixture)).await;
    }
}

backend_test! {
    /// The rows of [`password_cases`].
    async fn password_grant_errors(db) {
        let server = TestServer::start_default(db).await;
        let fixture = Fixture::new(&server).await;
        check_cases(&server, password_cases(&fixture)).await;
    }
}

backend_test! {
    /// The rows of [`refresh_cases`].
    async fn refresh_grant_errors(db) {
        let server = TestServer::start_default(db).await;
        let fixture = Fixture::new(&server).await;
        check_cases(&server, refresh_cases(&fixture)).await;
    }
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
    /// Laravel Passport 13's access token: an RS256 JWT with claims `aud`, `jti`, `iat`, `nbf`,
    /// `exp`, `sub`, `scopes`; the header carries `kid` (README: Where we differ from Laravel
    /// Passport).
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
        let stored = server.db.store().find_access_token(jti).await.unwrap();
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
    /// RFC 6749 §5.1 (README: HTTP): `scope` is in the response only when the granted scopes differ
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
        limited.scopes = Some(vec!["read".to_owned()].into());
        let (client, limited_secret) = server.passport.create_client(limited).await.unwrap();
        let limited_secret = limited_secret.unwrap().expose_secret().to_owned();
        let answer = client_credentials(&server, client.id.as_str(), &limited_secret, "read write").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["scope"], "read", "narrowed by the client's scope list");
        assert_eq!(jwt_scopes(answer.access_token()), ["read"]);
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

        assert!(!server.passport.revoke_client(&id).await.unwrap().clients.is_empty());
        assert!(!server.passport.revoke_client(&client.0).await.unwrap().clients.is_empty());

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

        // A Bearer Authorization header gets a Bearer challenge (RFC 6749 §5.2: the challenge
        // matches the scheme the client used).
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
    /// Laravel Passport 13 behaves so: body credentials win over Basic; each part falls back
    /// separately.
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
    /// README: HTTP (a form or JSON body), as in Laravel Passport 13: JSON bodies work like forms.
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
    /// Laravel Passport 13's wording).
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
    /// RFC 6749 §2.1, §3.2.1: a public client identifies itself by `client_id` alone; a secret it
    /// sends is ignored, as in Laravel Passport 13.
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
        // Granted exactly as requested: RFC 6749 §5.1 omits `scope`.
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
    /// Laravel Passport 13 behaves so: it strips `*` when refreshing.
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
    /// RFC 9700 §4.14.2 (README: Where we differ from Laravel Passport): presenting a rotated
    /// refresh token again revokes the family.
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
    /// README: refresh_token_reuse_grace. Within the grace, the client presenting the token it
    /// has just rotated (its answer lost) gets a fresh pair and the pair it never saw stops
    /// working; past the grace, or once the new pair was used, presenting it is reuse again.
    async fn a_retry_within_the_reuse_grace_gets_a_fresh_pair(db) {
        let server = TestServer::start(db, |b| b.refresh_token_reuse_grace(TimeDelta::seconds(30))).await;
        let (client, a) = first_pair(&server, "grace@example.com").await;
        let lost = refresh(&server, &client, a.refresh_token(), None).await;
        assert_eq!(lost.status, 200, "{}", lost.body);

        server.advance(TimeDelta::seconds(20));
        let retry = refresh(&server, &client, a.refresh_token(), None).await;
        assert_eq!(retry.status, 200, "a retry within the grace: {}", retry.body);
        assert_eq!(jwt_scopes(retry.access_token()), ["read", "write"], "the same grant");
        assert_eq!(api_user(&server, lost.access_token()).await.0, 401, "the lost pair is revoked");
        assert_eq!(api_user(&server, retry.access_token()).await.0, 200);

        // The client goes on with the retried pair; then the grace no longer covers A.
        let next = refresh(&server, &client, retry.refresh_token(), None).await;
        assert_eq!(next.status, 200, "{}", next.body);
        refresh(&server, &client, a.refresh_token(), None)
            .await
            .assert_error(400, "invalid_grant");
        assert_eq!(api_user(&server, next.access_token()).await.0, 401, "reuse revoked the family");

        // Past the grace a retry is reuse.
        let (client, b) = first_pair(&server, "late@example.com").await;
        let rotated = refresh(&server, &client, b.refresh_token(), None).await;
        assert_eq!(rotated.status, 200);
        server.advance(TimeDelta::seconds(31));
        refresh(&server, &client, b.refresh_token(), None)
            .await
            .assert_error(400, "invalid_grant");
        assert_eq!(api_user(&server, rotated.access_token()).await.0, 401, "family revoked");
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
    /// README: Where we differ from Laravel Passport: single use is atomic. Ten parallel
    /// redemptions of one refresh token: exactly one wins, every other one is `invalid_grant`.
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
