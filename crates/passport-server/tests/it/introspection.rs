//! `POST /oauth/introspect` (RFC 7662) and `POST /oauth/revoke` (RFC 7009): every case as a row
//! citing its section, the revocations shown to take effect at `/api/user` and at the token
//! endpoint, the claims RFC 9068 adds to access tokens, the failure and rate limits these
//! endpoints share with the token endpoint, and a resource server made with the CLI.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::TimeDelta;
use passport::{ClientKind, Event, FailureLimitSettings, NewClient};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::cli::{Deployment, jwt_claims, post_token};
use crate::common::Recorder;
use crate::common::{TestServer, api_user, create_client};

const INTROSPECT: &str = "/oauth/introspect";
const REVOKE: &str = "/oauth/revoke";

/// The members of an active access token's introspection, sorted.
const ACCESS_MEMBERS: [&str; 11] = [
    "active",
    "aud",
    "client_id",
    "exp",
    "iat",
    "iss",
    "jti",
    "nbf",
    "scope",
    "sub",
    "token_type",
];

/// How a request authenticates its client.
#[derive(Debug, Clone, Copy)]
enum Auth<'a> {
    /// `Authorization: Basic` (RFC 6749 §2.3.1).
    Basic(&'a str, &'a str),
    /// `client_id` and, if given, `client_secret` in the body.
    Body(&'a str, Option<&'a str>),
    /// No credentials at all.
    Nobody,
}

/// A response: status, headers, body text and the body as JSON (`Null` when empty or not JSON).
struct Answer {
    status: u16,
    headers: HeaderMap,
    text: String,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().expect("ASCII header"))
    }

    /// RFC 6749 §5.2 JSON error with the no-store headers; `WWW-Authenticate` exactly when the
    /// client tried HTTP Basic and got `invalid_client`.
    fn assert_error(&self, what: &str, status: u16, code: &str, basic: bool) {
        assert_eq!(
            (self.status, self.body["error"].as_str()),
            (status, Some(code)),
            "{what}: {}",
            self.text
        );
        let challenge = self.header("www-authenticate");
        if code == "invalid_client" && basic {
            assert_eq!(
                challenge,
                Some("Basic realm=\"OAuth\""),
                "{what}: RFC 6749 §5.2 challenge"
            );
        } else {
            assert_eq!(challenge, None, "{what}: no challenge");
        }
        self.assert_no_store(what);
    }

    fn assert_no_store(&self, what: &str) {
        assert_eq!(self.header("cache-control"), Some("no-store"), "{what}: Cache-Control");
    }
}

/// POSTs `params` to `path` with `auth`.
async fn post(server: &TestServer, path: &str, auth: Auth<'_>, params: &[(&str, &str)]) -> Answer {
    let mut form: Vec<(&str, &str)> = params.to_vec();
    let mut request = server.http.post(server.url(path));
    match auth {
        Auth::Basic(id, secret) => request = request.basic_auth(id, Some(secret)),
        Auth::Body(id, secret) => {
            form.push(("client_id", id));
            if let Some(secret) = secret {
                form.push(("client_secret", secret));
            }
        }
        Auth::Nobody => {}
    }
    let response = request.form(&form).send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        body,
    }
}

async fn introspect(server: &TestServer, auth: Auth<'_>, token: &str, hint: Option<&str>) -> Answer {
    let mut params = vec![("token", token)];
    params.extend(hint.map(|h| ("token_type_hint", h)));
    post(server, INTROSPECT, auth, &params).await
}

async fn revoke(server: &TestServer, auth: Auth<'_>, token: &str, hint: Option<&str>) -> Answer {
    let mut params = vec![("token", token)];
    params.extend(hint.map(|h| ("token_type_hint", h)));
    post(server, REVOKE, auth, &params).await
}

/// An access and a refresh token from the password grant.
struct Pair {
    access: String,
    refresh: String,
}

impl Pair {
    fn jti(&self) -> String {
        jwt_claims(&self.access)["jti"].as_str().expect("jti").to_owned()
    }
}

async fn password_pair(server: &TestServer, client: &str, secret: Option<&str>, scope: &str) -> Pair {
    let mut form = vec![
        ("grant_type", "password"),
        ("client_id", client),
        ("username", "ada@example.com"),
        ("password", "correct horse"),
        ("scope", scope),
    ];
    form.extend(secret.map(|s| ("client_secret", s)));
    let response = server.token(&form).await;
    assert_eq!(response.status(), 200, "password grant");
    let body: Value = response.json().await.expect("token JSON");
    Pair {
        access: body["access_token"].as_str().expect("access_token").to_owned(),
        refresh: body["refresh_token"].as_str().expect("refresh_token").to_owned(),
    }
}

/// The refresh grant's status for `refresh`.
async fn refresh_status(server: &TestServer, client: &str, secret: Option<&str>, refresh: &str) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("client_id", client),
        ("refresh_token", refresh),
    ];
    form.extend(secret.map(|s| ("client_secret", s)));
    let response = server.token(&form).await;
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

/// The clients and tokens the tables use.
struct Fixture {
    ada: String,
    /// A confidential password client (the tokens' own client).
    app: (String, String),
    /// A public password client.
    public_app: String,
    /// A confidential client-credentials client, not a resource server.
    service: (String, String),
    /// A resource server: confidential, `can_introspect`.
    gateway: (String, String),
    /// `app`'s live tokens.
    live: Pair,
    /// `service`'s client-credentials token.
    service_token: String,
}

impl Fixture {
    async fn new(server: &TestServer) -> Self {
        let ada = server.user("ada@example.com", "correct horse").await;
        let app = server.password_client().await;
        let (public_app, _) = server.client(ClientKind::Password, true).await;
        let service = server.service_client().await;
        let new = NewClient::new("Gateway", ClientKind::ClientCredentials).can_introspect(true);
        let (gateway, secret) = create_client(server, new).await;
        let gateway = (gateway, secret.expect("confidential"));
        let live = password_pair(server, &app.0, Some(&app.1), "read write").await;
        let response = server
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", &service.0),
                ("client_secret", &service.1),
                ("scope", "read"),
            ])
            .await;
        let body: Value = response.json().await.expect("token JSON");
        let service_token = body["access_token"].as_str().expect("access_token").to_owned();
        Self {
            ada,
            app,
            public_app,
            service,
            gateway,
            live,
            service_token,
        }
    }

    fn app(&self) -> Auth<'_> {
        Auth::Basic(&self.app.0, &self.app.1)
    }

    fn service(&self) -> Auth<'_> {
        Auth::Basic(&self.service.0, &self.service.1)
    }

    fn gateway(&self) -> Auth<'_> {
        Auth::Basic(&self.gateway.0, &self.gateway.1)
    }
}

/// What an introspection must answer.
#[derive(Debug, Clone, Copy)]
enum Expect<'a> {
    /// Active access token `token` of `client` for `sub` with `scope`.
    Access {
        token: &'a str,
        client: &'a str,
        sub: &'a str,
        scope: &'a str,
    },
    /// Active refresh token of `client` for `sub` with `scope`.
    Refresh {
        client: &'a str,
        sub: &'a str,
        scope: &'a str,
    },
    /// `{"active": false}` and nothing else.
    Inactive,
    /// An RFC 6749 §5.2 error.
    Error(u16, &'static str),
}

/// One introspection request and what it must answer.
struct Row<'a> {
    what: &'static str,
    auth: Auth<'a>,
    /// Body parameters besides the credentials.
    params: Vec<(&'static str, &'a str)>,
    expect: Expect<'a>,
}

fn row<'a>(what: &'static str, auth: Auth<'a>, token: &'a str, hint: Option<&'a str>, expect: Expect<'a>) -> Row<'a> {
    let mut params = vec![("token", token)];
    params.extend(hint.map(|h| ("token_type_hint", h)));
    Row {
        what,
        auth,
        params,
        expect,
    }
}

/// Checks one introspection answer against `expect`.
fn check(server: &TestServer, what: &str, auth: Auth<'_>, answer: &Answer, expect: Expect<'_>) {
    if let Expect::Error(status, code) = expect {
        answer.assert_error(what, status, code, matches!(auth, Auth::Basic(..)));
        return;
    }
    assert_eq!(answer.status, 200, "{what}: {}", answer.text);
    answer.assert_no_store(what);
    assert!(
        answer
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{what}: JSON"
    );
    let body = &answer.body;
    let mut members: Vec<&str> = body
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    members.sort_unstable();
    let (client, sub, scope) = match expect {
        Expect::Inactive => {
            assert_eq!(
                *body,
                json!({"active": false}),
                "{what}: RFC 7662 §2.2 inactive, nothing else"
            );
            return;
        }
        Expect::Access {
            token,
            client,
            sub,
            scope,
        } => {
            assert_eq!(members, ACCESS_MEMBERS, "{what}: {body}");
            assert_eq!(body["token_type"], "Bearer", "{what}");
            let claims = jwt_claims(token);
            for claim in ["jti", "exp", "iat", "nbf", "aud"] {
                assert_eq!(body[claim], claims[claim], "{what}: {claim} as in the token");
            }
            (client, sub, scope)
        }
        Expect::Refresh { client, sub, scope } => {
            let expected: Vec<&str> = ACCESS_MEMBERS.into_iter().filter(|m| *m != "token_type").collect();
            assert_eq!(members, expected, "{what}: no token_type for a refresh token: {body}");
            let iat = body["iat"].as_i64().expect("iat");
            assert_eq!(body["nbf"], iat, "{what}");
            assert_eq!(body["exp"], iat + 365 * 24 * 3600, "{what}: the refresh lifetime");
            assert_eq!(body["aud"], client, "{what}");
            let jti = body["jti"].as_str().expect("jti");
            assert!(
                jti.len() == 64 && jti.bytes().all(|b| b.is_ascii_hexdigit()),
                "{what}: a hash, {jti}"
            );
            (client, sub, scope)
        }
        Expect::Error(..) => unreachable!("handled above"),
    };
    assert_eq!(body["active"], true, "{what}");
    assert_eq!(body["client_id"], client, "{what}");
    assert_eq!(body["sub"], sub, "{what}");
    assert_eq!(body["scope"], scope, "{what}");
    assert_eq!(body["iss"], server.base.as_str(), "{what}: the configured issuer");
}

async fn check_rows(server: &TestServer, rows: Vec<Row<'_>>) {
    for row in rows {
        let answer = post(server, INTROSPECT, row.auth, &row.params).await;
        check(server, row.what, row.auth, &answer, row.expect);
    }
}

/// A JWT with `alg: none` carrying `token`'s claims.
fn unsigned(token: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = token.split('.').nth(1).expect("payload");
    format!("{header}.{payload}.")
}

/// `token` with the last character of its signature changed.
fn tampered(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let last = bytes.last_mut().expect("non-empty");
    *last = if *last == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ASCII")
}

backend_test! {
    /// RFC 9068 §2.2: access tokens carry `iss` (the configured issuer) and `client_id` beside
    /// Passport's claims; the header keeps `typ: JWT` for Passport compatibility.
    async fn access_tokens_carry_iss_and_client_id(db) {
        let server = TestServer::start_default(db).await;
        let fixture = Fixture::new(&server).await;
        let claims = jwt_claims(&fixture.live.access);
        let mut names: Vec<&str> = claims.as_object().unwrap().keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["aud", "client_id", "exp", "iat", "iss", "jti", "nbf", "scopes", "sub"]
        );
        assert_eq!(claims["iss"], server.base.as_str());
        assert_eq!(claims["client_id"], fixture.app.0.as_str());
        assert_eq!(claims["aud"], fixture.app.0.as_str());
        let header = fixture.live.access.split('.').next().unwrap();
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        assert_eq!(header["typ"], "JWT");
        let service = jwt_claims(&fixture.service_token);
        assert_eq!(service["client_id"], fixture.service.0.as_str());
        assert_eq!(service["sub"], fixture.service.0.as_str(), "client credentials: sub is the client");
    }
}

backend_test! {
    /// Every introspection case (RFC 7662), one row each, then expiry (the clock moves past
    /// both lifetimes) and the refresh token shown unconsumed.
    async fn introspection_cases(db) {
        let server = TestServer::start_default(db).await;
        let f = Fixture::new(&server).await;
        let (app, service, gateway) = (f.app.0.as_str(), f.service.0.as_str(), f.gateway.0.as_str());
        let own_access = Expect::Access { token: &f.live.access, client: app, sub: &f.ada, scope: "read write" };
        let own_refresh = Expect::Refresh { client: app, sub: &f.ada, scope: "read write" };

        // A revoked pair, and the pair of a client revoked since.
        let revoked = password_pair(&server, app, Some(&f.app.1), "read").await;
        assert!(server.passport.revoke_token(&revoked.jti()).await.unwrap());
        let gone = server.password_client().await;
        let orphan = password_pair(&server, &gone.0, Some(&gone.1), "read").await;
        server.passport.revoke_client(&gone.0).await.unwrap();
        let unknown = "7".repeat(80);
        let alg_none = unsigned(&f.live.access);
        let forged = tampered(&f.live.access);

        let rows = vec![
            row("§2.2: own access token (Basic)", f.app(), &f.live.access, None, own_access),
            row("§2.2: own access token (credentials in the body)", Auth::Body(app, Some(&f.app.1)), &f.live.access, None, own_access),
            row("§2.2: own refresh token", f.app(), &f.live.refresh, None, own_refresh),
            row("§2.2: own client-credentials token, sub is the client (RFC 9068 §2.2)", f.service(), &f.service_token, None,
                Expect::Access { token: &f.service_token, client: service, sub: service, scope: "read" }),
            row("§4: another client's access token, caller without can_introspect", f.service(), &f.live.access, None, Expect::Inactive),
            row("§4: another client's refresh token, caller without can_introspect", f.service(), &f.live.refresh, None, Expect::Inactive),
            row("§4: a resource server (can_introspect) sees another client's access token", f.gateway(), &f.live.access, None, own_access),
            row("§4: a resource server sees another client's refresh token", f.gateway(), &f.live.refresh, None, own_refresh),
            row("§4: a resource server sees a client-credentials token", f.gateway(), &f.service_token, None,
                Expect::Access { token: &f.service_token, client: service, sub: service, scope: "read" }),
            row("§2.1: hint refresh_token, yet an access token: still found", f.gateway(), &f.live.access, Some("refresh_token"), own_access),
            row("§2.1: hint access_token, yet a refresh token: still found", f.gateway(), &f.live.refresh, Some("access_token"), own_refresh),
            row("§2.1: an unknown hint is ignored", f.gateway(), &f.live.refresh, Some("id_token"), own_refresh),
            row("§2.2: revoked access token", f.gateway(), &revoked.access, None, Expect::Inactive),
            row("§2.2: the refresh token of a revoked access token", f.gateway(), &revoked.refresh, None, Expect::Inactive),
            row("§2.2: access token of a revoked client", f.gateway(), &orphan.access, None, Expect::Inactive),
            row("§2.2: refresh token of a revoked client", f.gateway(), &orphan.refresh, None, Expect::Inactive),
            row("§2.2: unknown token", f.gateway(), &unknown, None, Expect::Inactive),
            row("§2.2: garbage", f.gateway(), "not a token at all", None, Expect::Inactive),
            row("§2.2: three dots of garbage", f.gateway(), "a.b.c", None, Expect::Inactive),
            row("§2.2: alg none", f.gateway(), &alg_none, None, Expect::Inactive),
            row("§2.2: a bad signature", f.gateway(), &forged, None, Expect::Inactive),
            Row { what: "§2.1: token is REQUIRED", auth: f.gateway(), params: vec![], expect: Expect::Error(400, "invalid_request") },
            row("§2.1: an empty token is a missing one", f.gateway(), "", None, Expect::Error(400, "invalid_request")),
            row("§2.1 / RFC 6749 §5.2: wrong secret by Basic", Auth::Basic(gateway, "wrong"), &f.live.access, None, Expect::Error(401, "invalid_client")),
            row("§2.1 / RFC 6749 §5.2: wrong secret in the body", Auth::Body(gateway, Some("wrong")), &f.live.access, None, Expect::Error(401, "invalid_client")),
            row("§2.1: unknown client", Auth::Body("no-such-client", Some("x")), &f.live.access, None, Expect::Error(401, "invalid_client")),
            row("§2.1: a revoked client cannot call", Auth::Basic(&gone.0, &gone.1), &orphan.access, None, Expect::Error(401, "invalid_client")),
            row("§2.1: a public client cannot authenticate, so is refused", Auth::Body(&f.public_app, None), &f.live.access, None, Expect::Error(401, "invalid_client")),
            row("§2.1: a confidential client must give its secret", Auth::Body(gateway, None), &f.live.access, None, Expect::Error(400, "invalid_request")),
            row("§2.1: no client at all", Auth::Nobody, &f.live.access, None, Expect::Error(400, "invalid_request")),
        ];
        check_rows(&server, rows).await;

        // A JSON body works as at the token endpoint; GET is not the endpoint.
        let response = server
            .http
            .post(server.url(INTROSPECT))
            .basic_auth(gateway, Some(&f.gateway.1))
            .json(&json!({"token": f.live.access}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.unwrap()["active"], true, "JSON body");
        let get = server.http.get(server.url(INTROSPECT)).send().await.unwrap();
        assert_eq!(get.status(), 405, "§2.1: POST only");

        // Introspecting the refresh token (above, five times) did not use it up: it still
        // refreshes, and the rotated one is inactive from then on.
        let (status, body) = refresh_status(&server, app, Some(&f.app.1), &f.live.refresh).await;
        assert_eq!(status, 200, "{body}");
        let rotated = body["refresh_token"].as_str().unwrap().to_owned();
        let answer = introspect(&server, f.gateway(), &f.live.refresh, None).await;
        check(&server, "§2.2: a used (rotated) refresh token", f.gateway(), &answer, Expect::Inactive);
        let answer = introspect(&server, f.gateway(), &rotated, None).await;
        check(&server, "§2.2: the new refresh token", f.gateway(), &answer, own_refresh);

        // §2.2: past their lifetimes (a year each), both kinds are inactive.
        server.advance(TimeDelta::days(366));
        let access = body["access_token"].as_str().unwrap();
        for (what, token) in [("§2.2: expired access token", access), ("§2.2: expired refresh token", &rotated)] {
            let answer = introspect(&server, f.gateway(), token, None).await;
            check(&server, what, f.gateway(), &answer, Expect::Inactive);
        }
    }
}

impl Recorder {
    /// The ids of the `AccessTokenRevoked` events since the last call.
    fn take_revoked(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .drain(..)
            .filter_map(|e| match e {
                Event::AccessTokenRevoked { token_id } => Some(token_id),
                _ => None,
            })
            .collect()
    }
}

/// Asserts the RFC 7009 §2.2 success: 200 and an empty body.
fn assert_revoked(what: &str, answer: &Answer) {
    assert_eq!((answer.status, answer.text.as_str()), (200, ""), "{what}");
}

backend_test! {
    /// Every revocation case (RFC 7009): refusals that revoke nothing, then each kind of token
    /// revoked and shown dead at `/api/user`, at the token endpoint and by introspection, with
    /// one `AccessTokenRevoked` event per revoked access token.
    async fn revocation_cases(db) {
        let events = Arc::new(Recorder::default());
        let listener = events.clone();
        let server = TestServer::start(db, move |b| b.listen(listener)).await;
        let f = Fixture::new(&server).await;
        let (app, app_secret) = (f.app.0.as_str(), Some(f.app.1.as_str()));
        // A rotated family (first → second), a separate grant, and a public client's pair.
        let first = password_pair(&server, app, app_secret, "read").await;
        let (status, body) = refresh_status(&server, app, app_secret, &first.refresh).await;
        assert_eq!(status, 200, "{body}");
        let second = Pair {
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        };
        let other_grant = password_pair(&server, app, app_secret, "read").await;
        let public = password_pair(&server, &f.public_app, None, "read").await;
        server.passport.flush_events().await;
        events.take_revoked();

        // Refusals: nothing is revoked by any of them.
        let refusals = [
            ("§2.1: another client's access token", f.service(), second.access.as_str(), 400, "unauthorized_client"),
            ("§2.1: another client's refresh token", f.service(), &second.refresh, 400, "unauthorized_client"),
            ("§2.1: another client's token, even to a resource server", f.gateway(), &second.access, 400, "unauthorized_client"),
            ("§2.1: a client-credentials token of another client", f.app(), &f.service_token, 400, "unauthorized_client"),
            ("§2.1: a public client's token, by another client", f.app(), &public.refresh, 400, "unauthorized_client"),
            ("§2.1: a confidential client must give its secret", Auth::Body(app, None), &second.refresh, 400, "invalid_request"),
            ("§2.1 / RFC 6749 §5.2: wrong secret by Basic", Auth::Basic(app, "wrong"), &second.refresh, 401, "invalid_client"),
            ("§2.1 / RFC 6749 §5.2: wrong secret in the body", Auth::Body(app, Some("wrong")), &second.refresh, 401, "invalid_client"),
            ("§2.1: unknown client", Auth::Body("no-such-client", None), &second.refresh, 401, "invalid_client"),
            ("§2.1: no client at all", Auth::Nobody, &second.refresh, 400, "invalid_request"),
            ("§2.1: token is REQUIRED", f.app(), "", 400, "invalid_request"),
        ];
        for (what, auth, token, status, code) in refusals {
            let answer = revoke(&server, auth, token, None).await;
            answer.assert_error(what, status, code, matches!(auth, Auth::Basic(..)));
        }
        assert_eq!(api_user(&server, &second.access).await.0, 200, "still live after the refusals");
        assert_eq!(api_user(&server, &f.service_token).await.0, 401, "a client token is no user, but…");
        let still = introspect(&server, f.gateway(), &f.service_token, None).await;
        assert_eq!(still.body["active"], true, "…it is live");
        let still = introspect(&server, f.gateway(), &second.refresh, None).await;
        assert_eq!(still.body["active"], true, "the refresh token too");
        server.passport.flush_events().await;
        assert_eq!(events.take_revoked(), Vec::<String>::new(), "nothing revoked");

        // §2.2: unknown and invalid tokens are no error.
        let unknown = "5".repeat(80);
        for (what, token) in [("unknown", unknown.as_str()), ("garbage", "garbage"), ("alg none", &unsigned(&second.access))] {
            assert_revoked(what, &revoke(&server, f.app(), token, None).await);
        }

        // §2.1: an access token (hint access_token); its refresh token goes too (the "MAY").
        assert_revoked("access token", &revoke(&server, f.app(), &other_grant.access, Some("access_token")).await);
        assert_eq!(api_user(&server, &other_grant.access).await.0, 401, "revoked access token");
        let (status, body) = refresh_status(&server, app, app_secret, &other_grant.refresh).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "its refresh token");
        check(&server, "revoked access token", f.gateway(), &introspect(&server, f.gateway(), &other_grant.access, None).await, Expect::Inactive);
        server.passport.flush_events().await;
        assert_eq!(events.take_revoked(), [other_grant.jti()]);

        // §2.1: a refresh token (credentials in the body, hint refresh_token): the access
        // tokens of its grant stop working at once.
        assert_revoked("refresh token", &revoke(&server, Auth::Body(app, app_secret), &second.refresh, Some("refresh_token")).await);
        assert_eq!(api_user(&server, &second.access).await.0, 401, "the access token of its grant");
        let (status, _) = refresh_status(&server, app, app_secret, &second.refresh).await;
        assert_eq!(status, 400, "the revoked refresh token");
        for token in [&second.access, &second.refresh] {
            let answer = introspect(&server, f.app(), token, None).await;
            check(&server, "§2.2: revoked, no longer active", f.app(), &answer, Expect::Inactive);
        }
        server.passport.flush_events().await;
        assert_eq!(events.take_revoked(), [second.jti()], "one event per revoked access token");

        // §2.2: revoking what is revoked or used already is no error and announces nothing.
        for (what, token) in [
            ("revoked refresh token", second.refresh.as_str()),
            ("revoked access token", &other_grant.access),
            ("used refresh token", &first.refresh),
        ] {
            assert_revoked(what, &revoke(&server, f.app(), token, None).await);
        }

        // §2.1: a public client identifies by client_id alone.
        assert_revoked("public client", &revoke(&server, Auth::Body(&f.public_app, None), &public.refresh, None).await);
        assert_eq!(api_user(&server, &public.access).await.0, 401, "the public client's access token");

        // §2.1: a wrong hint still finds the token.
        assert_revoked("wrong hint", &revoke(&server, f.service(), &f.service_token, Some("refresh_token")).await);
        check(&server, "revoked client token", f.gateway(), &introspect(&server, f.gateway(), &f.service_token, None).await, Expect::Inactive);

        server.passport.flush_events().await;
        assert_eq!(
            events.take_revoked(),
            [public.jti(), jwt_claims(&f.service_token)["jti"].as_str().unwrap().to_owned()]
        );
        // The live pair of the fixture was never touched.
        assert_eq!(api_user(&server, &f.live.access).await.0, 200);
    }
}

/// README (Security): both endpoints authenticate clients under the failure limits (per client
/// and address, shared with the token endpoint), and `token_rate_limit` gives each endpoint its
/// own budget per address.
#[tokio::test]
async fn failure_and_rate_limits_apply() {
    let limits = FailureLimitSettings {
        client_auth_failures_per_client: 2,
        ..FailureLimitSettings::OFF
    };
    let server = TestServer::start(passport_sqlx::testing::sqlite(), |b| {
        b.failure_limits(limits).token_rate_limit(6)
    })
    .await;
    let (id, secret) = server.service_client().await;
    for path in [INTROSPECT, REVOKE] {
        let answer = post(&server, path, Auth::Basic(&id, "wrong"), &[("token", "x")]).await;
        answer.assert_error(path, 401, "invalid_client", true);
    }
    // Two failures: now even the right secret is refused, at both endpoints and the token one.
    for path in [INTROSPECT, REVOKE, "/oauth/token"] {
        let params = [("token", "x"), ("grant_type", "client_credentials")];
        let answer = post(&server, path, Auth::Basic(&id, &secret), &params).await;
        answer.assert_error(path, 429, "temporarily_unavailable", true);
        assert!(answer.header("retry-after").is_some(), "{path}: Retry-After");
    }
    // Rate: six requests a minute on /oauth/introspect (two made above), the seventh refused;
    // /oauth/revoke has a budget of its own.
    let (other, other_secret) = server.service_client().await;
    for n in 3..=6 {
        let answer = introspect(&server, Auth::Basic(&other, &other_secret), "x", None).await;
        assert_eq!(answer.status, 200, "introspection {n}: {}", answer.text);
    }
    let answer = introspect(&server, Auth::Basic(&other, &other_secret), "x", None).await;
    answer.assert_error("the seventh introspection", 429, "temporarily_unavailable", true);
    assert_revoked(
        "revoke",
        &revoke(&server, Auth::Basic(&other, &other_secret), "x", None).await,
    );
}

/// README (For operators): `passport client --client --can-introspect --json` makes a resource
/// server, which introspects another client's token on the standalone server; the endpoints
/// follow the route prefix (`path`).
#[tokio::test]
async fn cli_resource_server_introspects_under_the_route_prefix() {
    let site = Deployment::sqlite();
    site.write_config("path = \"sso\"\n");
    site.keys();
    let out = site.json(&["client", "--client", "--can-introspect", "--name", "Gateway", "--json"]);
    assert_eq!(out["can_introspect"], true, "{out}");
    assert_eq!(out["grant_types"], json!(["client_credentials"]), "{out}");
    let gateway = (
        out["client_id"].as_str().unwrap(),
        out["client_secret"].as_str().unwrap(),
    );
    let (billing, billing_secret) = site.client(&["--client", "--name", "Billing"]);
    let billing_secret = billing_secret.unwrap();
    let (plain, plain_secret) = site.client(&["--client", "--name", "Plain"]);
    let plain_secret = plain_secret.unwrap();

    let server = site.serve();
    let http = reqwest::Client::new();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", billing.as_str()),
        ("client_secret", billing_secret.as_str()),
    ];
    let (status, body) = post_token(&http, &server.url("/sso/token"), &form).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let introspect = |id: &str, secret: &str| {
        http.post(server.url("/sso/introspect"))
            .basic_auth(id, Some(secret))
            .form(&[("token", token)])
            .send()
    };
    let answer: Value = introspect(gateway.0, gateway.1).await.unwrap().json().await.unwrap();
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["client_id"], billing.as_str());
    assert_eq!(answer["iss"], server.base.as_str(), "serve's derived issuer");
    let answer: Value = introspect(&plain, &plain_secret).await.unwrap().json().await.unwrap();
    assert_eq!(answer, json!({"active": false}), "RFC 7662 §4: not a resource server");
    let old_prefix = http.post(server.url("/oauth/introspect")).send().await.unwrap();
    assert_eq!(old_prefix.status(), 404, "mounted under the prefix only");

    let revoked = http
        .post(server.url("/sso/revoke"))
        .form(&[
            ("token", token),
            ("client_id", &billing),
            ("client_secret", &billing_secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let answer: Value = introspect(gateway.0, gateway.1).await.unwrap().json().await.unwrap();
    assert_eq!(answer, json!({"active": false}), "revoked");
}
