//! Bad input at `POST /oauth/token` never yields a 5xx or a panic (README: HTTP): every malformed,
//! oversized or hostile body is a 4xx with an RFC 6749 §5.2 JSON error.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use crate::common::TestServer;

/// What a case sends and expects.
struct Case {
    name: &'static str,
    /// `Content-Type` header, raw bytes (`None`: no header).
    content_type: Option<&'static [u8]>,
    /// Extra `Authorization` header.
    authorization: Option<String>,
    body: Vec<u8>,
    status: u16,
    error: &'static str,
}

const FORM: Option<&[u8]> = Some(b"application/x-www-form-urlencoded");
const JSON: Option<&[u8]> = Some(b"application/json");

fn case(
    name: &'static str,
    content_type: Option<&'static [u8]>,
    body: impl Into<Vec<u8>>,
    status: u16,
    error: &'static str,
) -> Case {
    Case {
        name,
        content_type,
        authorization: None,
        body: body.into(),
        status,
        error,
    }
}

/// The cases, given a live client-credentials client and a password client (`id`, `secret`).
fn cases(cc: &(String, String), pw: &(String, String)) -> Vec<Case> {
    let (cc_id, cc_secret) = (cc.0.as_str(), cc.1.as_str());
    let (pw_id, pw_secret) = (pw.0.as_str(), pw.1.as_str());
    let cc_form = format!("grant_type=client_credentials&client_id={cc_id}&client_secret={cc_secret}");
    let unknown_scopes: String = (0..500).map(|i| format!("s{i:04}x ")).collect(); // ~3.5 KiB, under the value limit
    let huge_scope = "read ".repeat(1000); // 5000 bytes: over the 4 KiB value limit
    let many_params: String = (0..1500).map(|i| format!("p{i}=1&")).collect();
    let multipart =
        "--xyz\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nclient_credentials\r\n--xyz--\r\n";
    let basic_nul = format!("Basic {}", base64_encode(b"\0:secret"));
    let basic_bad_utf8 = format!("Basic {}", base64_encode(b"\xff\xfe:secret"));

    let mut out = vec![
        // Malformed forms.
        case("form: only separators", FORM, "&&&===&=", 400, "invalid_request"),
        case(
            "form: bad percent escape",
            FORM,
            "grant_type=client%ZZcredentials",
            400,
            "unsupported_grant_type",
        ),
        case(
            "form: truncated percent escape",
            FORM,
            "grant_type=%",
            400,
            "unsupported_grant_type",
        ),
        case("form: name without value", FORM, "grant_type", 400, "invalid_request"),
        case(
            "form: no content type",
            None,
            "grant_type=foo",
            400,
            "unsupported_grant_type",
        ),
        case(
            "form: control characters in grant_type",
            FORM,
            "grant_type=%01%02%1B",
            400,
            "unsupported_grant_type",
        ),
        case(
            "form: 1500 distinct parameters",
            FORM,
            many_params,
            400,
            "invalid_request",
        ),
        case(
            "form: 10 KiB parameter name",
            FORM,
            format!("{}=1&grant_type=foo", "n".repeat(10 * 1024)),
            400,
            "unsupported_grant_type",
        ),
        // Wrong content types (README: HTTP: a form or JSON body only).
        case(
            "text/plain",
            Some(b"text/plain"),
            cc_form.clone(),
            400,
            "invalid_request",
        ),
        case(
            "multipart/form-data",
            Some(b"multipart/form-data; boundary=xyz"),
            multipart,
            400,
            "invalid_request",
        ),
        case(
            "application/xml",
            Some(b"application/xml"),
            "<grant_type/>",
            400,
            "invalid_request",
        ),
        case(
            "content type without a type",
            Some(b";;;"),
            cc_form.clone(),
            400,
            "invalid_request",
        ),
        case(
            "content type with non-ASCII bytes",
            Some(b"application/json\xff"),
            "{}",
            400,
            "invalid_request",
        ),
        // Repeated parameters (RFC 6749 §3.2: "parameters MUST NOT be included more than once").
        case(
            "form: grant_type twice",
            FORM,
            "grant_type=a&grant_type=b",
            400,
            "invalid_request",
        ),
        case(
            "form: valid request with client_secret twice",
            FORM,
            format!("{cc_form}&client_secret={cc_secret}"),
            400,
            "invalid_request",
        ),
        case(
            "form: same name spelled with an escape",
            FORM,
            "grant_type=client_credentials&grant%5Ftype=client_credentials",
            400,
            "invalid_request",
        ),
        case(
            "json: duplicated keys",
            JSON,
            r#"{"grant_type":"a","grant_type":"b"}"#,
            400,
            "invalid_request",
        ),
        case(
            "json: valid request with a duplicated key",
            JSON,
            format!(
                r#"{{"grant_type":"client_credentials","client_id":"{cc_id}","client_secret":"{cc_secret}","client_id":"{cc_id}"}}"#
            ),
            400,
            "invalid_request",
        ),
        // Sizes: the body is capped at 16 KiB, a single value at 4 KiB.
        case(
            "form: body over 16 KiB",
            FORM,
            format!("grant_type=client_credentials&scope={}", "a".repeat(17 * 1024)),
            400,
            "invalid_request",
        ),
        case(
            "json: body over 16 KiB",
            JSON,
            json!({"grant_type": "client_credentials", "pad": "x".repeat(20 * 1024)}).to_string(),
            400,
            "invalid_request",
        ),
        case(
            "form: 5000-byte scope value",
            FORM,
            format!("{cc_form}&scope={huge_scope}"),
            400,
            "invalid_request",
        ),
        case(
            "json: 5000-byte string value",
            JSON,
            json!({"grant_type": "client_credentials", "client_id": "c".repeat(5000)}).to_string(),
            400,
            "invalid_request",
        ),
        case(
            "form: 3.5 KiB of unknown scopes",
            FORM,
            format!("{cc_form}&scope={unknown_scopes}"),
            400,
            "invalid_scope",
        ),
        // Invalid UTF-8.
        case("form: %FF in a value", FORM, "grant_type=%FF", 400, "invalid_request"),
        case(
            "form: %FF in a name",
            FORM,
            "grant%FF=client_credentials",
            400,
            "invalid_request",
        ),
        case(
            "form: overlong encoding",
            FORM,
            "grant_type=%C0%AF",
            400,
            "invalid_request",
        ),
        case(
            "form: raw 0xFF bytes",
            FORM,
            b"grant_type=\xff\xfe".to_vec(),
            400,
            "invalid_request",
        ),
        case(
            "json: raw 0xFF bytes",
            JSON,
            b"{\"grant_type\":\"\xff\"}".to_vec(),
            400,
            "invalid_request",
        ),
        case(
            "json: lone surrogate escape",
            JSON,
            r#"{"grant_type":"\ud800"}"#,
            400,
            "invalid_request",
        ),
        // JSON that is not a flat object of scalars.
        case(
            "json: array",
            JSON,
            r#"[{"grant_type":"client_credentials"}]"#,
            400,
            "invalid_request",
        ),
        case("json: string", JSON, r#""grant_type""#, 400, "invalid_request"),
        case("json: number", JSON, "42", 400, "invalid_request"),
        case("json: null", JSON, "null", 400, "invalid_request"),
        case(
            "json: object value",
            JSON,
            r#"{"grant_type":{"a":"b"}}"#,
            400,
            "invalid_request",
        ),
        case(
            "json: array value",
            JSON,
            r#"{"grant_type":["client_credentials"]}"#,
            400,
            "invalid_request",
        ),
        case(
            "json: nested object in a valid request",
            JSON,
            format!(
                r#"{{"grant_type":"client_credentials","client_id":"{cc_id}","client_secret":{{"v":"{cc_secret}"}}}}"#
            ),
            400,
            "invalid_request",
        ),
        case(
            "json: truncated",
            JSON,
            r#"{"grant_type":"client_cre"#,
            400,
            "invalid_request",
        ),
        case(
            "json: trailing garbage",
            JSON,
            r#"{"grant_type":"foo"} {"#,
            400,
            "invalid_request",
        ),
        case(
            "json: deeply nested",
            JSON,
            format!(r#"{{"a":{}"#, "[".repeat(8000)),
            400,
            "invalid_request",
        ),
        case(
            "json: number out of range",
            JSON,
            r#"{"grant_type":1e999}"#,
            400,
            "invalid_request",
        ),
        case(
            "json: boolean grant type",
            JSON,
            r#"{"grant_type":true}"#,
            400,
            "unsupported_grant_type",
        ),
        case(
            "json: numeric client id",
            JSON,
            r#"{"grant_type":"client_credentials","client_id":12345}"#,
            401,
            "invalid_client",
        ),
        case(
            "json: vendor +json type",
            Some(b"application/vnd.api+json"),
            r#"{"grant_type":"x"}"#,
            400,
            "unsupported_grant_type",
        ),
        // Empty bodies.
        case("form: empty body", FORM, "", 400, "invalid_request"),
        case("json: empty body", JSON, "", 400, "invalid_request"),
        case("json: whitespace body", JSON, " \n\t ", 400, "invalid_request"),
        case("json: empty object", JSON, "{}", 400, "invalid_request"),
        // NUL bytes: PostgreSQL refuses them in text, so they must not turn into database errors.
        case(
            "form: NUL in grant_type",
            FORM,
            "grant_type=client_credentials%00",
            400,
            "unsupported_grant_type",
        ),
        case(
            "form: raw NUL byte",
            FORM,
            b"grant_type=client_credentials\0".to_vec(),
            400,
            "unsupported_grant_type",
        ),
        case(
            "form: NUL client_id",
            FORM,
            "grant_type=client_credentials&client_id=%00",
            401,
            "invalid_client",
        ),
        case(
            "form: NUL in client_secret",
            FORM,
            format!("grant_type=client_credentials&client_id={cc_id}&client_secret={cc_secret}%00"),
            401,
            "invalid_client",
        ),
        case(
            "form: NUL in scope",
            FORM,
            format!("{cc_form}&scope=read%00"),
            400,
            "invalid_scope",
        ),
        case(
            "json: NUL in username",
            JSON,
            format!(
                r#"{{"grant_type":"password","client_id":"{pw_id}","client_secret":"{pw_secret}","username":"a\u0000@example.com","password":"x"}}"#
            ),
            400,
            "invalid_grant",
        ),
        case(
            "form: NUL in refresh_token",
            FORM,
            format!("grant_type=refresh_token&client_id={pw_id}&client_secret={pw_secret}&refresh_token=abc%00def"),
            400,
            "invalid_grant",
        ),
        case(
            "json: NUL in a key",
            JSON,
            r#"{"grant_type\u0000":"client_credentials"}"#,
            400,
            "invalid_request",
        ),
    ];

    // Hostile Basic credentials: ignored when malformed, refused when they name no client.
    out.push(Case {
        authorization: Some(basic_nul),
        ..case(
            "basic: NUL client id",
            FORM,
            "grant_type=client_credentials",
            401,
            "invalid_client",
        )
    });
    out.push(Case {
        authorization: Some(basic_bad_utf8),
        ..case(
            "basic: invalid UTF-8",
            FORM,
            "grant_type=client_credentials",
            400,
            "invalid_request",
        )
    });
    out.push(Case {
        authorization: Some(format!("Basic {}", "A".repeat(8 * 1024))),
        ..case(
            "basic: 8 KiB of base64",
            FORM,
            "grant_type=client_credentials",
            400,
            "invalid_request",
        )
    });
    out
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Sends a raw body to the token endpoint; returns the status, headers and body bytes.
async fn send_raw(
    server: &TestServer,
    content_type: Option<&[u8]>,
    authorization: Option<&str>,
    body: Vec<u8>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = server.http.post(server.url("/oauth/token")).body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", HeaderValue::from_bytes(ct).expect("header value"));
    }
    if let Some(auth) = authorization {
        request = request.header("authorization", auth);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body").to_vec();
    (status, headers, bytes)
}

/// Checks the invariant every token-endpoint answer holds: never 5xx; JSON; an error with
/// `error` and `error_description` unless it is a success with an `access_token`; no-store.
fn check_answer(status: u16, headers: &reqwest::header::HeaderMap, body: &[u8]) -> Result<Value, String> {
    if status >= 500 {
        return Err(format!("server error {status}: {}", String::from_utf8_lossy(body)));
    }
    let json: Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "status {status}: body is not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    })?;
    if status == 200 {
        if !json["access_token"].is_string() {
            return Err(format!("200 without an access token: {json}"));
        }
    } else {
        if !(400..500).contains(&status) {
            return Err(format!("unexpected status {status}: {json}"));
        }
        if !json["error"].is_string() || !json["error_description"].is_string() {
            return Err(format!(
                "status {status}: error body lacks error/error_description: {json}"
            ));
        }
    }
    let no_store = headers.get("cache-control").and_then(|v| v.to_str().ok()) == Some("no-store");
    if !no_store {
        return Err(format!("status {status}: missing Cache-Control: no-store"));
    }
    Ok(json)
}

backend_test! {
    async fn malformed_token_requests_get_json_4xx_errors(db) {
        let mut failures = Vec::new();
        let server = TestServer::start_default(db).await;
        let cc = server.service_client().await;
        let pw = server.password_client().await;
        server.user("a@example.com", "x").await;
        for case in cases(&cc, &pw) {
            let (status, headers, body) =
                send_raw(&server, case.content_type, case.authorization.as_deref(), case.body).await;
            match check_answer(status, &headers, &body) {
                Err(problem) => failures.push(format!("{}: {problem}", case.name)),
                Ok(json) => {
                    if status != case.status || json["error"] != case.error {
                        failures.push(format!(
                            "{}: expected {} {}, got {status} {json}",
                            case.name, case.status, case.error
                        ));
                    }
                }
            }
        }
        // The server is still healthy after all that.
        let (id, secret) = &cc;
        let ok = server
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ])
            .await;
        assert_eq!(ok.status(), 200);
        assert!(
            failures.is_empty(),
            "{} case(s) failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

/// Parameter names the server knows.
const NAMES: [&str; 11] = [
    "grant_type",
    "client_id",
    "client_secret",
    "scope",
    "username",
    "password",
    "refresh_token",
    "code",
    "redirect_uri",
    "code_verifier",
    "device_code",
];

/// Grant types, real and not.
const GRANT_TYPES: [&str; 7] = [
    "client_credentials",
    "password",
    "refresh_token",
    "personal_access",
    "authorization_code",
    "urn:ietf:params:oauth:grant-type:device_code",
    "implicit",
];

/// Live values the generated requests draw from, so that many get past client authentication
/// and reach the grants and the database.
#[derive(Debug, Clone)]
struct Pool {
    client_ids: Vec<String>,
    secrets: Vec<String>,
    /// (grant type, client id, secret) that belong together.
    coherent: Vec<(String, String, String)>,
    username: String,
    password: String,
    refresh_tokens: Vec<String>,
}

/// A generated request.
#[derive(Debug, Clone)]
enum Generated {
    Bytes {
        content_type: Option<&'static str>,
        body: Vec<u8>,
    },
    Form(Vec<(String, String)>),
    Json(Vec<(String, Value)>),
}

/// Arbitrary text: any characters, control characters, or a live value.
fn noise(pool: &Pool) -> impl Strategy<Value = String> + Clone + use<> {
    let mut live: Vec<String> = pool.client_ids.clone();
    live.extend(pool.secrets.iter().cloned());
    live.extend(GRANT_TYPES.iter().map(|g| (*g).to_owned()));
    prop_oneof![
        3 => ".{0,64}",
        1 => "[\\x00-\\x1f ]{1,6}",
        2 => proptest::sample::select(live),
    ]
}

/// Mostly plausible token requests, with parameters missing, mangled, repeated and shuffled.
fn pairs(pool: &Pool) -> impl Strategy<Value = Vec<(String, String)>> + use<> {
    use proptest::option::weighted;
    use proptest::sample::select;
    let grant = prop_oneof![4 => select(GRANT_TYPES.to_vec()).prop_map(str::to_owned), 1 => noise(pool)];
    let client_id = prop_oneof![4 => select(pool.client_ids.clone()), 1 => noise(pool)];
    let secret = prop_oneof![4 => select(pool.secrets.clone()), 1 => noise(pool)];
    let username = prop_oneof![3 => Just(pool.username.clone()), 1 => noise(pool)];
    let password = prop_oneof![3 => Just(pool.password.clone()), 1 => noise(pool)];
    let scope = prop_oneof![3 => "(read|write|admin|orders:read|\\*|nope)( (read|write|\\*|x)){0,3}", 1 => noise(pool)];
    let refresh = prop_oneof![2 => select(pool.refresh_tokens.clone()), 1 => noise(pool)];
    // Extra parameters: sometimes a known name again (a repeated parameter), mostly unknown ones.
    let name = prop_oneof![1 => select(NAMES.to_vec()).prop_map(str::to_owned), 3 => "[a-z_]{1,12}|.{0,12}"];
    let extras = proptest::collection::vec((name, noise(pool)), 0..2);
    // Half the time a coherent grant type + client + secret, so requests reach the grants.
    let coherent = select(pool.coherent.clone()).prop_map(|(g, c, s)| (Some(g), Some(c), Some(s)));
    let independent = (weighted(0.9, grant), weighted(0.8, client_id), weighted(0.7, secret));
    (
        prop_oneof![coherent, independent],
        (
            weighted(0.4, username),
            weighted(0.4, password),
            weighted(0.5, scope),
            weighted(0.3, refresh),
        ),
        extras,
    )
        .prop_map(|((g, c, s), (u, p, sc, r), extras)| {
            let named = [
                ("grant_type", g),
                ("client_id", c),
                ("client_secret", s),
                ("username", u),
                ("password", p),
                ("scope", sc),
                ("refresh_token", r),
            ];
            let mut out: Vec<(String, String)> = named
                .into_iter()
                .filter_map(|(n, v)| v.map(|v| (n.to_owned(), v)))
                .collect();
            out.extend(extras);
            out
        })
        .prop_shuffle()
}

fn content_types() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        Just(None),
        Just(Some("application/x-www-form-urlencoded")),
        Just(Some("application/json")),
        Just(Some("text/plain")),
    ]
}

fn requests(pool: &Pool) -> impl Strategy<Value = Generated> + use<> {
    // How each JSON member is typed: mostly strings, sometimes numbers, booleans, null, arrays
    // or objects.
    let json = (pairs(pool), proptest::collection::vec(0u8..30, 10)).prop_map(|(pairs, kinds)| {
        let members = pairs
            .into_iter()
            .zip(kinds.into_iter().cycle())
            .map(|((k, v), kind)| {
                let value = match kind {
                    0..=24 => Value::String(v),
                    25 => Value::from(v.len()),
                    26 => Value::Bool(v.is_empty()),
                    27 => Value::Null,
                    28 => json!([v]),
                    _ => json!({ "v": v }),
                };
                (k, value)
            })
            .collect();
        Generated::Json(members)
    });
    prop_oneof![
        1 => (content_types(), proptest::collection::vec(any::<u8>(), 0..2048))
            .prop_map(|(content_type, body)| Generated::Bytes { content_type, body }),
        2 => pairs(pool).prop_map(Generated::Form),
        2 => json,
    ]
}

/// Encodes a generated request (JSON by hand, so duplicate keys survive).
fn encode(generated: &Generated) -> (Option<&'static str>, Vec<u8>) {
    match generated {
        Generated::Bytes { content_type, body } => (*content_type, body.clone()),
        Generated::Form(pairs) => {
            let mut body = String::new();
            for (k, v) in pairs {
                if !body.is_empty() {
                    body.push('&');
                }
                body.push_str(&form_encode(k));
                body.push('=');
                body.push_str(&form_encode(v));
            }
            (Some("application/x-www-form-urlencoded"), body.into_bytes())
        }
        Generated::Json(pairs) => {
            let members: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), v))
                .collect();
            (
                Some("application/json"),
                format!("{{{}}}", members.join(",")).into_bytes(),
            )
        }
    }
}

/// `application/x-www-form-urlencoded` serialization of one name or value.
fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Property: whatever the body, the endpoint answers JSON, never 5xx (SQLite, one server).
#[test]
fn arbitrary_token_requests_never_cause_server_errors() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (server, pool) = runtime.block_on(async {
        let server = TestServer::start_default(passport_sqlx::testing::sqlite()).await;
        let (cc_id, cc_secret) = server.service_client().await;
        let (pw_id, pw_secret) = server.password_client().await;
        server.user("prop@example.com", "prop-password").await;
        let mut refresh_tokens = Vec::new();
        for _ in 0..3 {
            let issued: Value = server
                .token(&[
                    ("grant_type", "password"),
                    ("client_id", &pw_id),
                    ("client_secret", &pw_secret),
                    ("username", "prop@example.com"),
                    ("password", "prop-password"),
                ])
                .await
                .json()
                .await
                .expect("token response");
            refresh_tokens.push(issued["refresh_token"].as_str().expect("refresh token").to_owned());
        }
        let pool = Pool {
            coherent: vec![
                ("client_credentials".to_owned(), cc_id.clone(), cc_secret.clone()),
                ("password".to_owned(), pw_id.clone(), pw_secret.clone()),
                ("refresh_token".to_owned(), pw_id.clone(), pw_secret.clone()),
            ],
            client_ids: vec![cc_id, pw_id, uuid::Uuid::new_v4().to_string()],
            secrets: vec![cc_secret, pw_secret, "wrong-secret".to_owned()],
            username: "prop@example.com".to_owned(),
            password: "prop-password".to_owned(),
            refresh_tokens,
        };
        (server, pool)
    });
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&requests(&pool), |generated| {
        let (content_type, body) = encode(&generated);
        let (status, headers, bytes) = runtime.block_on(send_raw(&server, content_type.map(str::as_bytes), None, body));
        check_answer(status, &headers, &bytes).map_err(TestCaseError::fail)?;
        Ok(())
    });
    if let Err(err) = result {
        panic!("{err}");
    }
    runtime.block_on(async move { drop(server) });
}
