//! OpenID Connect end to end over HTTP (Core 1.0, RP-Initiated Logout 1.0, RFC 9207, Form Post
//! Response Mode): id_tokens from the code flow, the implicit flow and refreshes, verified with
//! `jsonwebtoken` against the server's public key; `prompt`, `max_age`, `login_hint` and
//! `id_token_hint`; the userinfo endpoint; logout; `iss` on authorization responses;
//! `response_mode`. Each table row names the rule it checks.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::TimeDelta;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode};
use passport::{
    AuthorizationRequest, AuthorizeError, ClaimsHook, ClaimsTarget, ClientKind, ErrorCode, NewClient, PassportBuilder,
    PassportConfig, StoreError, TokenContext, UserClaimsContext, async_trait,
};
use reqwest::{StatusCode, Url};
use serde_json::{Map, Value, json};

use crate::common::{TestServer, create_client, test_keys};
use crate::support_web::{Browser, Page};

const CALLBACK: &str = "https://client.example/callback";
const SIGNED_OUT: &str = "https://client.example/signed-out";
const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery staple";
const NONCE: &str = "n-0S6_WzA2Mj";
const CODE_CLIENT: ClientKind = ClientKind::AuthorizationCode { device_flow: false };

/// Request parameters of a table row.
type Query<'a> = Vec<(&'a str, &'a str)>;

/// A server with the implicit grant on, a user whose email is verified, a confidential code
/// client that skips consent (with a post-logout redirect URI) and an implicit client.
struct Op {
    server: TestServer,
    user_id: String,
    client_id: String,
    secret: String,
    implicit_id: String,
}

async fn op(configure: impl FnOnce(PassportBuilder) -> PassportBuilder) -> Op {
    let server = TestServer::start(passport_sqlx::testing::sqlite(), |b| {
        configure(b.enable_implicit_grant(true))
    })
    .await;
    let user_id = server.user(EMAIL, PASSWORD).await;
    let now = server.passport.now();
    assert!(
        server
            .db
            .users()
            .set_email_verified(&user_id, Some(now), now)
            .await
            .unwrap()
    );
    let (client_id, secret) = create_client(
        &server,
        NewClient::new("Acme", CODE_CLIENT)
            .redirect_uris([CALLBACK])
            .post_logout_redirect_uris([SIGNED_OUT])
            .skips_authorization(true),
    )
    .await;
    let (implicit_id, _) = create_client(
        &server,
        NewClient::new("Acme SPA", ClientKind::Implicit)
            .redirect_uris([CALLBACK])
            .skips_authorization(true),
    )
    .await;
    Op {
        server,
        user_id,
        client_id,
        secret: secret.unwrap(),
        implicit_id,
    }
}

impl Op {
    /// `/oauth/authorize?…` for `client_id`: a code request for `openid profile email` with a
    /// nonce and a state, `extra` replacing or adding parameters (an empty value removes one).
    fn url(&self, client_id: &str, extra: &[(&str, &str)]) -> String {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", CALLBACK),
            ("scope", "openid profile email"),
            ("state", "st"),
            ("nonce", NONCE),
        ];
        for (k, v) in extra {
            params.retain(|(n, _)| n != k);
            if !v.is_empty() {
                params.push((k, v));
            }
        }
        let mut url = Url::parse(&self.server.url("/oauth/authorize")).unwrap();
        url.query_pairs_mut().extend_pairs(params);
        url.to_string()
    }

    /// A code for the code client, from a browser that gets it without a page.
    async fn code(&self, browser: &Browser, extra: &[(&str, &str)]) -> String {
        let page = browser.get(&self.url(&self.client_id, extra)).await;
        answer(&page, false, "code request").require("code").to_owned()
    }

    /// The token endpoint's answer to `form` (client authentication added).
    async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut form = form.to_vec();
        form.extend([
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.secret.as_str()),
        ]);
        let response = self.server.token(&form).await;
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    /// Exchanges a code; the tokens (200 checked).
    async fn exchange(&self, code: &str) -> Value {
        let (status, body) = self
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", CALLBACK),
            ])
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Verifies an id_token's signature (with the public key its `kid` names, from the JWK),
    /// `iss`, `aud` and `exp` with `jsonwebtoken`; its claims.
    fn verify(&self, id_token: &str, audience: &str) -> Value {
        let header = decode_header(id_token).unwrap();
        let kid = header.kid.as_deref().expect("the header names the key");
        let keys = self.server.passport.keys();
        let key = keys.find(kid).expect("a key of the server");
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.public_jwk().clone()).unwrap();
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[&self.server.base]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        decode::<Value>(id_token, &DecodingKey::from_jwk(&jwk).unwrap(), &validation)
            .expect("an id_token signed by the server, for this client")
            .claims
    }

    /// An id_token signed with the server's key, as the server would make one (for hints).
    fn forge(&self, sub: &str, aud: &str, exp_in: TimeDelta) -> String {
        let now = self.server.passport.now();
        let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(self.server.passport.kid());
        let claims = json!({
            "iss": self.server.base, "sub": sub, "aud": aud,
            "iat": now.timestamp(), "exp": (now + exp_in).timestamp(), "auth_time": now.timestamp(),
        });
        encode(
            &header,
            &claims,
            &EncodingKey::from_rsa_pem(test_keys().private_pem.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    async fn signed_in(&self) -> Browser {
        Browser::signed_in(&self.server, EMAIL, PASSWORD).await
    }

    /// Whether `browser` is still signed in (the home page says who).
    async fn is_signed_in(&self, browser: &Browser) -> bool {
        browser.get("/").await.body.contains("You are signed in")
    }
}

/// `at_hash` computed here (OpenID Connect Core §3.1.3.6): base64url of the left half of the
/// SHA-256 of the access token.
fn at_hash(access_token: &str) -> String {
    let hex = passport::sha256_hex(access_token);
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    URL_SAFE_NO_PAD.encode(&bytes[..16])
}

/// The parameters of an answer to the client.
#[derive(Debug)]
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    #[track_caller]
    fn require(&self, name: &str) -> &str {
        self.get(name).unwrap_or_else(|| panic!("no {name} in {:?}", self.0))
    }
}

/// The parameters of a 302 to [`CALLBACK`], from the query or the fragment.
#[track_caller]
fn answer(page: &Page, fragment: bool, what: &str) -> Params {
    assert_eq!(
        page.status,
        StatusCode::FOUND,
        "{what}: a redirect to the client\n{}",
        page.body
    );
    let location = Url::parse(page.location().unwrap()).unwrap();
    assert!(location.as_str().starts_with(CALLBACK), "{what}: {location}");
    let encoded = match fragment {
        true => location
            .fragment()
            .unwrap_or_else(|| panic!("{what}: no fragment in {location}")),
        false => location
            .query()
            .unwrap_or_else(|| panic!("{what}: no query in {location}")),
    };
    let (other, part) = match fragment {
        true => (location.query(), "query"),
        false => (location.fragment(), "fragment"),
    };
    assert_eq!(other, None, "{what}: nothing in the {part}");
    Params(url::form_urlencoded::parse(encoded.as_bytes()).into_owned().collect())
}

/// The parameters of a `form_post` page (OAuth 2.0 Form Post Response Mode §2): an HTML page
/// whose only form posts them to [`CALLBACK`] from a script the CSP allows by its nonce.
#[track_caller]
fn form_post(page: &Page, what: &str) -> Params {
    assert_eq!(page.status, StatusCode::OK, "{what}: a page\n{}", page.body);
    assert_eq!(page.location(), None, "{what}: not a redirect");
    page.assert_html_page(what);
    let forms = page.forms();
    assert_eq!(forms.len(), 1, "{what}: one form\n{}", page.body);
    assert_eq!(
        (forms[0].method.as_str(), forms[0].action.as_str()),
        ("POST", CALLBACK),
        "{what}"
    );
    let csp = page.header("content-security-policy").unwrap();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|n| n.split('\'').next())
        .unwrap_or_else(|| panic!("{what}: a script nonce in {csp}"));
    assert!(
        page.body.contains(&format!("<script nonce=\"{nonce}\">")),
        "{what}: the submitting script carries the nonce"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    Params(forms[0].fields.clone())
}

// ---------------------------------------------------------------------------------------------
// 1. id_tokens.
// ---------------------------------------------------------------------------------------------

/// Core §3.1.3.3, §3.1.3.6, §2 and §5.4: the code flow's token response carries an id_token
/// (only when `openid` is granted) with `iss`, `sub`, `aud`, `exp`, `iat`, `auth_time`, the
/// request's `nonce`, `at_hash`, and the claims of the granted scopes; no `azp` (one audience).
#[tokio::test]
async fn the_code_flow_returns_an_id_token_with_the_claims_of_the_scopes() {
    let op = op(|b| b).await;
    // The user was made (and their email verified) then, and signs in then.
    let signed_in_at = op.server.passport.now().timestamp();
    let browser = op.signed_in().await;
    op.server.advance(TimeDelta::seconds(30));

    let tokens = op.exchange(&op.code(&browser, &[]).await).await;
    let id_token = tokens["id_token"].as_str().expect("an id_token");
    let claims = op.verify(id_token, &op.client_id);
    let now = op.server.passport.now().timestamp();
    assert_eq!(
        claims,
        json!({
            "iss": op.server.base, "sub": op.user_id, "aud": op.client_id,
            "iat": now, "exp": now + 3600, "auth_time": signed_in_at, "nonce": NONCE,
            "at_hash": at_hash(tokens["access_token"].as_str().unwrap()),
            "name": "Test User", "email": EMAIL, "email_verified": true, "updated_at": signed_in_at,
        }),
        "§2 claims, §5.4 profile and email"
    );
    let header = decode_header(id_token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(op.server.passport.kid().as_str()));

    // §5.4: each scope releases its own claims; without `openid` there is no id_token at all
    // (a plain OAuth request, as Passport answers it).
    let cases: [(&str, &[&str], &[&str]); 4] = [
        ("openid", &[], &["name", "email", "email_verified", "updated_at"]),
        ("openid email", &["email", "email_verified"], &["name", "updated_at"]),
        ("openid profile", &["name", "updated_at"], &["email", "email_verified"]),
        ("openid profile email", &["name", "email"], &[]),
    ];
    for (scope, present, absent) in cases {
        let tokens = op
            .exchange(&op.code(&browser, &[("scope", scope), ("nonce", "")]).await)
            .await;
        let claims = op.verify(tokens["id_token"].as_str().unwrap(), &op.client_id);
        for claim in present {
            assert!(claims.get(claim).is_some(), "{scope}: {claim} in {claims}");
        }
        for claim in absent {
            assert!(claims.get(claim).is_none(), "{scope}: no {claim} in {claims}");
        }
        assert!(claims.get("nonce").is_none(), "§2: no nonce when the request had none");
        assert!(claims.get("azp").is_none(), "§2: aud is the only audience");
    }
    for scope in ["profile email", ""] {
        let tokens = op.exchange(&op.code(&browser, &[("scope", scope)]).await).await;
        assert!(tokens.get("id_token").is_none(), "scope {scope:?}: not OpenID Connect");
    }
}

/// Core §12.2: a refresh of an OpenID Connect grant gets a new id_token with the same `iss`,
/// `sub` and `aud`, a new `iat`, the original `auth_time`, no `nonce`, and the `at_hash` of the
/// new access token; a refresh narrowed to drop `openid`, or of a grant without it, gets none.
#[tokio::test]
async fn a_refresh_returns_an_id_token_with_the_original_auth_time() {
    let op = op(|b| b).await;
    let signed_in_at = op.server.passport.now().timestamp();
    let browser = op.signed_in().await;
    let first = op.exchange(&op.code(&browser, &[]).await).await;
    let original = op.verify(first["id_token"].as_str().unwrap(), &op.client_id);

    op.server.advance(TimeDelta::minutes(10));
    let (status, refreshed) = op
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let claims = op.verify(refreshed["id_token"].as_str().expect("an id_token"), &op.client_id);
    for same in ["iss", "sub", "aud"] {
        assert_eq!(claims[same], original[same], "§12.2: the same {same}");
    }
    assert_eq!(claims["auth_time"], signed_in_at, "§12.2: the original authentication");
    assert_eq!(claims["iat"], op.server.passport.now().timestamp(), "§12.2: a new iat");
    assert!(claims.get("nonce").is_none(), "§12.2: no nonce");
    assert_eq!(claims["at_hash"], at_hash(refreshed["access_token"].as_str().unwrap()));
    assert_eq!(claims["email"], EMAIL, "the claims of the scopes, again");

    // Narrowed to `email`: no openid, no id_token (RFC 6749 §6 narrowing; Core §12.2 "might not
    // contain an id_token").
    let (status, narrowed) = op
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refreshed["refresh_token"].as_str().unwrap()),
            ("scope", "email"),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{narrowed}");
    assert!(narrowed.get("id_token").is_none(), "{narrowed}");

    // A grant made without `openid` never gets one on refresh.
    let plain = op.exchange(&op.code(&browser, &[("scope", "read")]).await).await;
    let (_, refreshed) = op
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", plain["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert!(refreshed.get("id_token").is_none(), "{refreshed}");
}

/// Core §3.2.2.1, §3.2.2.5, §3.2.2.10; Multiple Response Types §5: with the implicit grant on,
/// `id_token` and `id_token token` answer in the fragment, need `openid` and a `nonce`; `at_hash`
/// comes with an access token only; the id_token alone carries the scopes' claims; tokens are
/// never put in the query; hybrid types are not supported.
#[tokio::test]
async fn the_implicit_flow_returns_id_tokens_in_the_fragment() {
    let op = op(|b| b).await;
    let browser = op.signed_in().await;
    let implicit = |extra: &[(&str, &str)]| {
        let mut params = vec![("redirect_uri", CALLBACK)];
        params.extend_from_slice(extra);
        op.url(&op.implicit_id, &params)
    };

    let page = browser.get(&implicit(&[("response_type", "id_token")])).await;
    let params = answer(&page, true, "id_token");
    assert_eq!(
        (params.get("state"), params.get("iss")),
        (Some("st"), Some(op.server.base.as_str()))
    );
    assert_eq!(
        params.get("access_token"),
        None,
        "§3.2.2.5: no access token for id_token"
    );
    let claims = op.verify(params.require("id_token"), &op.implicit_id);
    assert_eq!(claims["nonce"], NONCE, "§3.2.2.10: the nonce");
    assert!(claims.get("at_hash").is_none(), "no access token, no at_hash");
    assert_eq!(
        (claims["name"].as_str(), claims["email"].as_str()),
        (Some("Test User"), Some(EMAIL))
    );

    let page = browser.get(&implicit(&[("response_type", "id_token token")])).await;
    let params = answer(&page, true, "id_token token");
    let claims = op.verify(params.require("id_token"), &op.implicit_id);
    assert_eq!(
        claims["at_hash"],
        at_hash(params.require("access_token")),
        "§3.2.2.10: at_hash"
    );
    assert_eq!(params.get("token_type"), Some("Bearer"));

    let errors: [(&str, Query<'_>, bool, &str); 5] = [
        (
            "§3.2.2.1: nonce is required",
            vec![("response_type", "id_token"), ("nonce", "")],
            true,
            "invalid_request",
        ),
        (
            "§3.2.2.1: scope must contain openid",
            vec![("response_type", "id_token token"), ("scope", "profile")],
            true,
            "invalid_request",
        ),
        (
            "Multiple Response Types §5: no tokens in the query",
            vec![("response_type", "id_token token"), ("response_mode", "query")],
            true,
            "invalid_request",
        ),
        (
            "hybrid flows are not supported",
            vec![("response_type", "code id_token")],
            false,
            "unsupported_response_type",
        ),
        (
            "Form Post §2: an unknown response_mode",
            vec![("response_type", "id_token"), ("response_mode", "post")],
            true,
            "invalid_request",
        ),
    ];
    for (what, extra, fragment, code) in errors {
        let page = browser.get(&implicit(&extra)).await;
        let params = answer(&page, fragment, what);
        assert_eq!(params.get("error"), Some(code), "{what}: {params:?}");
        assert_eq!(params.get("iss"), Some(op.server.base.as_str()), "{what}: RFC 9207 iss");
        assert_eq!(params.get("id_token"), None, "{what}");
    }

    // With the implicit grant off, id_token is just another unknown response type.
    let off = TestServer::start_default(passport_sqlx::testing::sqlite()).await;
    let (client_id, _) = off.client(ClientKind::Implicit, true).await;
    let url = format!(
        "{}?response_type=id_token&client_id={client_id}&scope=openid&nonce=n&redirect_uri={CALLBACK}",
        off.url("/oauth/authorize")
    );
    let page = Browser::new(&off.base).get(&url).await;
    assert_eq!(
        answer(&page, false, "implicit off").get("error"),
        Some("unsupported_response_type")
    );
}

/// Claims from the library: the claims hook's `user_claims` adds to id_tokens and userinfo
/// (told which), and a reserved name there fails with `server_error`, as for access tokens.
#[tokio::test]
async fn the_claims_hook_adds_user_claims_and_cannot_set_reserved_ones() {
    #[derive(Debug)]
    struct Tenant(&'static str);

    #[async_trait]
    impl ClaimsHook for Tenant {
        async fn access_token_claims(&self, _: TokenContext<'_>) -> Result<Map<String, Value>, StoreError> {
            Ok(Map::new())
        }

        async fn user_claims(&self, user: UserClaimsContext<'_>) -> Result<Map<String, Value>, StoreError> {
            let target = match user.target {
                ClaimsTarget::IdToken => "id_token",
                _ => "userinfo",
            };
            let mut claims = Map::new();
            claims.insert(self.0.to_owned(), json!({"target": target, "client": user.client.name}));
            Ok(claims)
        }
    }

    let op = op(|b| b.custom_claims(Arc::new(Tenant("tenant")))).await;
    let browser = op.signed_in().await;
    let tokens = op.exchange(&op.code(&browser, &[("scope", "openid")]).await).await;
    let claims = op.verify(tokens["id_token"].as_str().unwrap(), &op.client_id);
    assert_eq!(claims["tenant"], json!({"target": "id_token", "client": "Acme"}));
    let info = userinfo_get(&op.server, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(info.json()["tenant"], json!({"target": "userinfo", "client": "Acme"}));

    let bad = self::op(|b| b.custom_claims(Arc::new(Tenant("nonce")))).await;
    let browser = bad.signed_in().await;
    let code = bad.code(&browser, &[("scope", "openid")]).await;
    let (status, body) = bad
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("server_error"))
    );
}

/// Core §2 `iss`: OpenID Connect needs an issuer; a library server without one refuses
/// authentication requests with `server_error` (sent to the client) and plain OAuth still works.
#[tokio::test]
async fn openid_requests_need_an_issuer() {
    let server = TestServer::start_default(passport_sqlx::testing::sqlite()).await;
    let (client_id, _) = server.client(CODE_CLIENT, false).await;
    let keys = test_keys();
    let no_issuer = passport_server::app::passport_builder(&PassportConfig::default(), &server.db)
        .keys_from_pem(keys.private_pem.clone(), Some(keys.public_pem.clone()))
        .build()
        .unwrap();
    let request = |scope: &str| {
        let pairs = [
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("scope", scope),
        ];
        AuthorizationRequest::from_pairs(pairs.map(|(k, v)| (k.to_owned(), v.to_owned()))).unwrap()
    };
    match no_issuer.validate_authorization(&request("openid")).await {
        Err(AuthorizeError::Redirect(r)) => {
            assert_eq!(r.error.code(), ErrorCode::ServerError);
            assert_eq!(r.response.param("iss"), None, "no issuer, no iss");
        }
        other => panic!("server_error, got {other:?}"),
    }
    assert!(no_issuer.validate_authorization(&request("")).await.is_ok());
}

/// The standalone server's users give their claims: `passport user create --email-verified`
/// records the verification (`email_verified`, Core §5.1), and `updated_at` is the row's.
#[tokio::test]
async fn the_cli_records_a_verified_email() {
    let site = crate::cli::Deployment::sqlite();
    let create = |email: &str, verified: bool| {
        let mut args = vec!["user", "create", "--email", email, "--password", PASSWORD, "--json"];
        if verified {
            args.push("--email-verified");
        }
        site.json(&args)["user_id"].as_str().unwrap().to_owned()
    };
    let (verified, unverified) = (create("v@example.com", true), create("u@example.com", false));
    let db = passport_sqlx::Database::connect(&site.database_url()).await.unwrap();
    let users = passport_sqlx::SqlUserProvider::new(db.users());
    for (id, expected) in [(verified, true), (unverified, false)] {
        let user = passport::UserProvider::retrieve_by_id(&users, &id)
            .await
            .unwrap()
            .unwrap();
        let claims = passport::UserProvider::openid_claims(&users, &user).await.unwrap();
        assert_eq!(claims.email_verified, Some(expected), "user {id}");
        assert!(claims.updated_at.is_some(), "user {id}: updated_at");
    }
    db.close().await;
}

/// The consent page lists the OpenID Connect scopes like any other, with the built-in
/// descriptions or the operator's.
#[tokio::test]
async fn the_consent_page_lists_the_openid_scopes() {
    let op = op(|b| b.tokens_can([("read", "Read your data"), ("email", "See your work email address")])).await;
    let (client_id, _) = op.server.client(CODE_CLIENT, false).await;
    let browser = op.signed_in().await;
    let page = browser.get(&op.url(&client_id, &[])).await;
    assert_eq!(page.status, StatusCode::OK, "a consent page\n{}", page.body);
    for text in [
        "Sign you in with your account",
        "See your name and profile details",
        "See your work email address",
    ] {
        assert!(page.body.contains(text), "{text}\n{}", page.body);
    }
    let approved = browser.submit(&page.approve_form("consent")).await;
    assert!(answer(&approved, false, "approved").get("code").is_some());
}

// ---------------------------------------------------------------------------------------------
// 2. prompt, max_age, login_hint, id_token_hint.
// ---------------------------------------------------------------------------------------------

/// What an authorization request leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// A code, straight back.
    Code,
    /// An error sent to the client.
    Error(&'static str),
    /// The sign-in page.
    Login,
    /// The consent page.
    Consent,
}

async fn outcome(browser: &Browser, url: &str) -> Outcome {
    let page = browser.get(url).await;
    match (page.status, page.location()) {
        (StatusCode::OK, None) => Outcome::Consent,
        (StatusCode::FOUND, Some("/login")) => Outcome::Login,
        (StatusCode::FOUND, Some(_)) => {
            let params = answer(&page, false, url);
            match params.get("error") {
                Some(error) => Outcome::Error(match error {
                    "login_required" => "login_required",
                    "consent_required" => "consent_required",
                    "invalid_request" => "invalid_request",
                    other => panic!("unexpected {other}"),
                }),
                None => Outcome::Code,
            }
        }
        other => panic!("{url}: unexpected {other:?}\n{}", page.body),
    }
}

/// Core §3.1.2.1 (`prompt`, `max_age`, `id_token_hint`), §3.1.2.3 and §3.1.2.6: each case, with
/// the state of the browser it runs in.
#[tokio::test]
async fn prompt_max_age_and_id_token_hint() {
    let op = op(|b| b).await;
    let (consenting_id, _) = op.server.client(CODE_CLIENT, false).await;
    let guest = Browser::new(&op.server.base);
    let signed_in = op.signed_in().await;
    op.server.advance(TimeDelta::minutes(10));
    let mine = op.forge(&op.user_id, &op.client_id, TimeDelta::hours(1));
    let expired = op.forge(&op.user_id, &op.client_id, -TimeDelta::hours(1));
    let someone_else = op.forge("999", &op.client_id, TimeDelta::hours(1));
    let other_client = op.forge(&op.user_id, &consenting_id, TimeDelta::hours(1));
    let mut tampered = mine.clone();
    tampered.pop();
    tampered.push(if mine.ends_with('A') { 'B' } else { 'A' });
    let (mine, expired, someone_else, other_client, tampered) = (
        mine.as_str(),
        expired.as_str(),
        someone_else.as_str(),
        other_client.as_str(),
        tampered.as_str(),
    );
    let (client, consenting) = (op.client_id.as_str(), consenting_id.as_str());

    let cases: Vec<(&str, &Browser, &str, Query<'_>, Outcome)> = vec![
        (
            "§3.1.2.6: a guest with prompt=none",
            &guest,
            client,
            vec![("prompt", "none")],
            Outcome::Error("login_required"),
        ),
        ("a guest signs in first", &guest, client, vec![], Outcome::Login),
        (
            "§3.1.2.6: consent needed with prompt=none",
            &signed_in,
            consenting,
            vec![("prompt", "none")],
            Outcome::Error("consent_required"),
        ),
        (
            "prompt=none when nothing is needed",
            &signed_in,
            client,
            vec![("prompt", "none")],
            Outcome::Code,
        ),
        (
            "§3.1.2.1: none with another value",
            &signed_in,
            client,
            vec![("prompt", "none login")],
            Outcome::Error("invalid_request"),
        ),
        (
            "§3.1.2.1: prompt=login signs in again",
            &signed_in,
            client,
            vec![("prompt", "login")],
            Outcome::Login,
        ),
        (
            "§3.1.2.1: prompt=consent asks again",
            &signed_in,
            consenting,
            vec![("prompt", "consent")],
            Outcome::Consent,
        ),
        (
            "§3.1.2.1: select_account is accepted",
            &signed_in,
            client,
            vec![("prompt", "select_account")],
            Outcome::Code,
        ),
        (
            "§3.1.2.1: max_age not yet passed",
            &signed_in,
            client,
            vec![("max_age", "3600")],
            Outcome::Code,
        ),
        (
            "§3.1.2.1: max_age passed",
            &signed_in,
            client,
            vec![("max_age", "60")],
            Outcome::Login,
        ),
        (
            "§3.1.2.1: max_age=0",
            &signed_in,
            client,
            vec![("max_age", "0")],
            Outcome::Login,
        ),
        (
            "§3.1.2.6: max_age passed with prompt=none",
            &signed_in,
            client,
            vec![("max_age", "60"), ("prompt", "none")],
            Outcome::Error("login_required"),
        ),
        (
            "max_age that is not a number",
            &signed_in,
            client,
            vec![("max_age", "soon")],
            Outcome::Error("invalid_request"),
        ),
        (
            "§3.1.2.1: a hint naming the user",
            &signed_in,
            client,
            vec![("id_token_hint", mine), ("prompt", "none")],
            Outcome::Code,
        ),
        (
            "§3.1.2.1: an expired hint is still a hint",
            &signed_in,
            client,
            vec![("id_token_hint", expired), ("prompt", "none")],
            Outcome::Code,
        ),
        (
            "§3.1.2.1: a hint naming someone else, prompt=none",
            &signed_in,
            client,
            vec![("id_token_hint", someone_else), ("prompt", "none")],
            Outcome::Error("login_required"),
        ),
        (
            "§3.1.2.1: a hint naming someone else",
            &signed_in,
            client,
            vec![("id_token_hint", someone_else)],
            Outcome::Login,
        ),
        (
            "§3.1.2.1: a hint with a bad signature",
            &signed_in,
            client,
            vec![("id_token_hint", tampered)],
            Outcome::Error("invalid_request"),
        ),
        (
            "a hint issued to another client",
            &signed_in,
            client,
            vec![("id_token_hint", other_client)],
            Outcome::Error("invalid_request"),
        ),
        (
            "§3.1.2.6: a guest with a hint and prompt=none",
            &guest,
            client,
            vec![("id_token_hint", mine), ("prompt", "none")],
            Outcome::Error("login_required"),
        ),
    ];
    for (what, browser, client_id, extra, expected) in &cases {
        assert_eq!(outcome(browser, &op.url(client_id, extra)).await, *expected, "{what}");
    }
    assert!(op.is_signed_in(&signed_in).await, "none of it signed anyone out");

    // After the sign-in max_age asks for, the request goes on and auth_time is the new sign-in.
    let url = op.url(&op.client_id, &[("max_age", "60")]);
    assert_eq!(outcome(&signed_in, &url).await, Outcome::Login);
    let again_at = op.server.passport.now().timestamp();
    let page = signed_in.login(EMAIL, PASSWORD).await;
    assert_eq!(
        page.location().map(|l| url.ends_with(l)),
        Some(true),
        "back to the request"
    );
    let page = signed_in.get(&url).await;
    let tokens = op.exchange(answer(&page, false, "after max_age").require("code")).await;
    let claims = op.verify(tokens["id_token"].as_str().unwrap(), &op.client_id);
    assert_eq!(claims["auth_time"], again_at, "§2 auth_time: the new authentication");

    // Someone else signs in after a hint for another user: still not them (§3.1.2.1).
    let url = op.url(&op.client_id, &[("id_token_hint", someone_else)]);
    assert_eq!(outcome(&signed_in, &url).await, Outcome::Login);
    signed_in.login(EMAIL, PASSWORD).await;
    assert_eq!(outcome(&signed_in, &url).await, Outcome::Error("login_required"));
}

/// Core §3.1.2.1 `login_hint`: the sign-in page the request leads to has the hint typed in.
#[tokio::test]
async fn login_hint_fills_in_the_sign_in_form() {
    let op = op(|b| b).await;
    let guest = Browser::new(&op.server.base);
    let url = op.url(&op.client_id, &[("login_hint", EMAIL)]);
    assert_eq!(outcome(&guest, &url).await, Outcome::Login);
    let (_, form) = guest.login_form().await;
    assert_eq!(form.get("email"), Some(EMAIL));
    let page = guest.login(EMAIL, PASSWORD).await;
    assert!(page.location().is_some_and(|l| url.ends_with(l)), "back to the request");
    assert_eq!(outcome(&guest, &url).await, Outcome::Code);
    let (_, form) = Browser::new(&op.server.base).login_form().await;
    assert_eq!(form.get("email"), Some(""), "another visitor sees no hint");
}

// ---------------------------------------------------------------------------------------------
// 3. RFC 9207 and response modes.
// ---------------------------------------------------------------------------------------------

/// RFC 9207 §2 (`iss` in every authorization response, success and error, in every response
/// mode) and OAuth 2.0 Form Post Response Mode §2 (an auto-submitting form, never cached or
/// framed), Multiple Response Types §2.1 (`response_mode=fragment` for codes).
#[tokio::test]
async fn iss_and_response_modes() {
    let op = op(|b| b).await;
    let (consenting_id, _) = op.server.client(CODE_CLIENT, false).await;
    let browser = op.signed_in().await;
    let iss = op.server.base.as_str();

    let cases: [(&str, Query<'_>, &str, Option<&str>); 6] = [
        ("a code in the query", vec![], "query", None),
        (
            "a code in the fragment",
            vec![("response_mode", "fragment")],
            "fragment",
            None,
        ),
        ("a code posted", vec![("response_mode", "form_post")], "form_post", None),
        (
            "an error in the query",
            vec![("scope", "openid nope")],
            "query",
            Some("invalid_scope"),
        ),
        (
            "an error posted",
            vec![("scope", "nope"), ("response_mode", "form_post")],
            "form_post",
            Some("invalid_scope"),
        ),
        (
            "login_required",
            vec![("prompt", "none"), ("max_age", "0")],
            "query",
            Some("login_required"),
        ),
    ];
    for (what, extra, mode, error) in cases {
        let page = browser.get(&op.url(&op.client_id, &extra)).await;
        let params = match mode {
            "form_post" => form_post(&page, what),
            _ => answer(&page, mode == "fragment", what),
        };
        assert_eq!(params.get("iss"), Some(iss), "{what}: RFC 9207 iss");
        assert_eq!(params.get("state"), Some("st"), "{what}: state");
        assert_eq!(params.get("error"), error, "{what}");
        assert_eq!(params.get("code").is_some(), error.is_none(), "{what}");
    }

    // The consent page's approval and denial answer the same way.
    let page = browser
        .get(&op.url(&consenting_id, &[("response_mode", "form_post")]))
        .await;
    let params = form_post(&browser.submit(&page.approve_form("consent")).await, "approved, posted");
    assert_eq!((params.get("iss"), params.get("code").is_some()), (Some(iss), true));
    let page = browser.get(&op.url(&consenting_id, &[("prompt", "consent")])).await;
    let denied = browser.submit(&page.deny_form("consent")).await;
    let params = answer(&denied, false, "denied");
    assert_eq!(
        (params.get("error"), params.get("iss")),
        (Some("access_denied"), Some(iss))
    );

    // The posted code works like any other.
    let page = browser
        .get(&op.url(&op.client_id, &[("response_mode", "form_post")]))
        .await;
    let code = form_post(&page, "posted").require("code").to_owned();
    assert!(op.exchange(&code).await["id_token"].is_string());
}

// ---------------------------------------------------------------------------------------------
// 4. userinfo.
// ---------------------------------------------------------------------------------------------

async fn userinfo_get(server: &TestServer, token: &str) -> Page {
    Page::read(
        server
            .http
            .get(server.url("/oauth/userinfo"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Core §5.3 (userinfo: `sub` and the claims of the granted scopes, by `GET` or `POST`), RFC 6750
/// §2.1/§2.2 (the token in the header or a form body, never both) and §3.1 (401
/// `invalid_token`, 403 `insufficient_scope` with `WWW-Authenticate`). A client-credentials token
/// never gets user claims: it is `invalid_token` (no scope would make it a user), as at
/// `GET /api/user`.
#[tokio::test]
async fn userinfo_cases() {
    let op = op(|b| b).await;
    let browser = op.signed_in().await;
    let full = op.exchange(&op.code(&browser, &[]).await).await;
    let full = full["access_token"].as_str().unwrap().to_owned();
    let bare = op.exchange(&op.code(&browser, &[("scope", "openid")]).await).await;
    let bare = bare["access_token"].as_str().unwrap().to_owned();
    let plain = op.exchange(&op.code(&browser, &[("scope", "read")]).await).await;
    let plain = plain["access_token"].as_str().unwrap().to_owned();
    let (service_id, service_secret) = op.server.service_client().await;
    let service = op
        .server
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &service_id),
            ("client_secret", &service_secret),
            ("scope", "openid profile"),
        ])
        .await
        .json::<Value>()
        .await
        .unwrap();
    let service = service["access_token"].as_str().unwrap().to_owned();
    let (password_id, password_secret) = op.server.password_client().await;
    let wildcard = op
        .server
        .token(&[
            ("grant_type", "password"),
            ("client_id", &password_id),
            ("client_secret", &password_secret),
            ("username", EMAIL),
            ("password", PASSWORD),
            ("scope", "*"),
        ])
        .await
        .json::<Value>()
        .await
        .unwrap();
    let wildcard = wildcard["access_token"].as_str().unwrap().to_owned();
    let revoked = op.exchange(&op.code(&browser, &[("scope", "openid")]).await).await;
    let revoked = revoked["access_token"].as_str().unwrap().to_owned();
    let jti = revoked.split('.').nth(1).unwrap();
    let jti: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jti).unwrap()).unwrap();
    assert!(
        op.server
            .passport
            .revoke_token(jti["jti"].as_str().unwrap())
            .await
            .unwrap()
    );

    let url = op.server.url("/oauth/userinfo");
    let http = &op.server.http;
    let form = |token: &str| vec![("access_token".to_owned(), token.to_owned())];
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, Option<&str>)> = vec![
        (
            "§5.3.1: GET with the header",
            http.get(&url).bearer_auth(&full),
            200,
            None,
        ),
        (
            "RFC 6750 §2.2: POST with a form body",
            http.post(&url).form(&form(&full)),
            200,
            None,
        ),
        (
            "§5.3.1: POST with the header",
            http.post(&url).bearer_auth(&bare),
            200,
            None,
        ),
        (
            "RFC 6750 §2: the token twice",
            http.post(&url).bearer_auth(&full).form(&form(&full)),
            400,
            Some("invalid_request"),
        ),
        ("RFC 6750 §3.1: no token", http.get(&url), 401, None),
        (
            "RFC 6750 §3.1: a malformed token",
            http.get(&url).bearer_auth("nope"),
            401,
            Some("invalid_token"),
        ),
        (
            "RFC 6750 §3.1: a revoked token",
            http.get(&url).bearer_auth(&revoked),
            401,
            Some("invalid_token"),
        ),
        (
            "a client-credentials token",
            http.get(&url).bearer_auth(&service),
            401,
            Some("invalid_token"),
        ),
        (
            "RFC 6750 §3.1: no openid scope",
            http.get(&url).bearer_auth(&plain),
            403,
            Some("insufficient_scope"),
        ),
        (
            "a `*` token is no OpenID Connect grant",
            http.get(&url).bearer_auth(&wildcard),
            403,
            Some("insufficient_scope"),
        ),
    ];
    for (what, request, status, error) in cases {
        let page = Page::read(request.send().await.unwrap()).await;
        assert_eq!(page.status.as_u16(), status, "{what}: {}", page.body);
        let challenge = page.header("www-authenticate");
        match error {
            Some(error) => {
                assert!(
                    challenge.is_some_and(|c| c.starts_with("Bearer") && c.contains(&format!("error=\"{error}\""))),
                    "{what}: {challenge:?}"
                );
                assert_eq!(page.json()["error"], error, "{what}");
            }
            None if status == 401 => assert_eq!(challenge, Some("Bearer realm=\"passport\""), "{what}"),
            None => {
                assert_eq!(page.header("cache-control"), Some("no-store"), "{what}");
                assert_eq!(page.json()["sub"], op.user_id.as_str(), "{what}");
            }
        }
        if error == Some("insufficient_scope") {
            assert!(challenge.unwrap().contains("scope=\"openid\""), "{what}");
        }
    }
    assert_eq!(
        userinfo_get(&op.server, &full).await.json(),
        json!({
            "sub": op.user_id, "name": "Test User", "email": EMAIL, "email_verified": true,
            "updated_at": op.server.passport.now().timestamp(),
        }),
        "§5.3.2: the claims of openid profile email"
    );
    assert_eq!(
        userinfo_get(&op.server, &bare).await.json(),
        json!({"sub": op.user_id}),
        "openid alone"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. RP-initiated logout.
// ---------------------------------------------------------------------------------------------

/// `/oauth/logout?…` with these parameters.
fn logout_url(op: &Op, params: &[(&str, &str)]) -> String {
    let mut url = Url::parse(&op.server.url("/oauth/logout")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

/// RP-Initiated Logout 1.0 §2 and §3: a GET ends the session only when `id_token_hint` names its
/// user (then back to the registered `post_logout_redirect_uri` with `state`, or a signed-out
/// page); otherwise a confirmation page posts back with the CSRF token; a URI that is not
/// registered exactly, or a request that contradicts itself, gets an error page, never a
/// redirect.
#[tokio::test]
async fn logout_cases() {
    let op = op(|b| b).await;
    let browser = op.signed_in().await;
    let tokens = op.exchange(&op.code(&browser, &[]).await).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let someone_else = op.forge("999", &op.client_id, TimeDelta::hours(1));
    let mut tampered = id_token.to_owned();
    tampered.pop();
    tampered.push(if id_token.ends_with('A') { 'B' } else { 'A' });
    let (client, implicit, tampered) = (op.client_id.as_str(), op.implicit_id.as_str(), tampered.as_str());

    // Error pages: nothing is redirected, nobody signed out.
    let errors: [(&str, Query<'_>, u16); 6] = [
        (
            "§3: an unregistered URI",
            vec![
                ("client_id", client),
                ("post_logout_redirect_uri", "https://evil.example/"),
            ],
            400,
        ),
        (
            "§3: a URI that only starts like a registered one",
            vec![
                ("client_id", client),
                ("post_logout_redirect_uri", "https://client.example/signed-out/x"),
            ],
            400,
        ),
        (
            "§2: a URI without client_id or id_token_hint",
            vec![("post_logout_redirect_uri", SIGNED_OUT)],
            400,
        ),
        (
            "§2: a client_id the hint contradicts",
            vec![("id_token_hint", id_token), ("client_id", implicit)],
            400,
        ),
        ("§2: a hint we did not sign", vec![("id_token_hint", tampered)], 400),
        (
            "an unknown client",
            vec![("client_id", "0196f5c2-0000-7000-8000-000000000000")],
            401,
        ),
    ];
    for (what, params, status) in errors {
        let page = browser.get(&logout_url(&op, &params)).await;
        assert_eq!(page.status.as_u16(), status, "{what}: {}", page.body);
        assert_eq!(page.location(), None, "{what}: never a redirect");
        assert!(!page.body.contains("evil.example"), "{what}: the URI is not linked");
        page.assert_html_page(what);
    }
    assert!(op.is_signed_in(&browser).await, "no error signed anyone out");

    // §2: without a hint of this user a GET only asks.
    let asks = [
        vec![
            ("client_id", client),
            ("post_logout_redirect_uri", SIGNED_OUT),
            ("state", "s1"),
        ],
        vec![
            ("id_token_hint", someone_else.as_str()),
            ("post_logout_redirect_uri", SIGNED_OUT),
        ],
        vec![],
    ];
    for params in &asks {
        let page = browser.get(&logout_url(&op, params)).await;
        assert_eq!(
            page.status,
            StatusCode::OK,
            "{params:?}: a confirmation page\n{}",
            page.body
        );
        page.assert_html_page("confirmation");
        let forms = page.forms();
        assert_eq!((forms.len(), forms[0].method.as_str()), (1, "POST"), "{}", page.body);
        assert!(forms[0].get("_token").is_some_and(|t| !t.is_empty()), "CSRF token");
    }
    assert!(op.is_signed_in(&browser).await, "a GET alone signs nobody out");

    // The confirmation posts back: without the right CSRF token nothing happens (419).
    let page = browser.get(&logout_url(&op, &asks[0])).await;
    let form = page.forms().remove(0);
    assert_eq!(form.get("client_id"), Some(client));
    let forged = browser.post(&form.action, &form.with("_token", "forged")).await;
    assert_eq!(forged.status.as_u16(), 419, "{}", forged.body);
    assert!(
        op.is_signed_in(&browser).await,
        "a forged confirmation signs nobody out"
    );
    // A relying party's POST (no _token) is sent on to the GET form, which only asks.
    let rp_post = browser.post(&form.action, &form.without("_token")).await;
    assert_eq!(rp_post.status, StatusCode::SEE_OTHER, "{}", rp_post.body);
    let location = rp_post.location().unwrap().to_owned();
    assert!(
        location.starts_with("/oauth/logout?") && location.contains("state=s1"),
        "{location}"
    );
    assert_eq!(
        browser.get(&location).await.status,
        StatusCode::OK,
        "the confirmation page"
    );
    // The real confirmation: signed out, back to the registered URI with state.
    let done = browser.submit(&form).await;
    assert_eq!(
        (done.status, done.location()),
        (StatusCode::FOUND, Some(format!("{SIGNED_OUT}?state=s1").as_str())),
        "{}",
        done.body
    );
    assert!(!op.is_signed_in(&browser).await, "signed out");

    // §2: a hint naming the session's user ends it at once, the hint's aud being the client.
    let browser = op.signed_in().await;
    let page = browser
        .get(&logout_url(
            &op,
            &[
                ("id_token_hint", id_token),
                ("post_logout_redirect_uri", SIGNED_OUT),
                ("state", "a b"),
            ],
        ))
        .await;
    assert_eq!(
        page.location(),
        Some(format!("{SIGNED_OUT}?state=a+b").as_str()),
        "{}",
        page.body
    );
    assert!(!op.is_signed_in(&browser).await);
    // An expired hint still names the user; without a URI the answer is a signed-out page.
    let browser = op.signed_in().await;
    op.server.advance(TimeDelta::minutes(90));
    assert!(op.is_signed_in(&browser).await, "the session lives on (two hours)");
    let page = browser.get(&logout_url(&op, &[("id_token_hint", id_token)])).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("You are signed out") && page.body.contains("Acme"),
        "{}",
        page.body
    );
    assert!(!op.is_signed_in(&browser).await);

    // Nobody signed in: nothing to end, straight back.
    let guest = Browser::new(&op.server.base);
    let page = guest
        .get(&logout_url(
            &op,
            &[("client_id", client), ("post_logout_redirect_uri", SIGNED_OUT)],
        ))
        .await;
    assert_eq!(page.location(), Some(SIGNED_OUT));
}
