//! DPoP (RFC 9449) over HTTP: proofs at the token endpoint (§4.3, §5), bound tokens at the
//! guard and userinfo (§7), server nonces (§8, §9), bound refresh tokens (§5), `dpop_jkt` (§10)
//! and introspection (§6.2). Proofs are built here with jsonwebtoken from ES256 and EdDSA keys
//! generated for the test; their thumbprints come from jsonwebtoken's RFC 7638 code, not ours.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::TimeDelta;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm as Jwa, EncodingKey, Header};
use passport::{Algorithm, ClientKind, NewClient};
use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};

use crate::cli::jwt_claims;
use crate::common::{TestServer, create_client};
use crate::support_web::Browser;

const CALLBACK: &str = "https://client.example/callback";

/// A client's proof key.
pub(crate) struct ProofKey {
    key: EncodingKey,
    jwk: Jwk,
    alg: Jwa,
}

impl ProofKey {
    pub(crate) fn new(algorithm: Algorithm) -> Self {
        let pem = passport::generate_key(algorithm, 2048).expect("key").private_pem;
        let (key, alg) = match algorithm {
            Algorithm::ES256 => (EncodingKey::from_ec_pem(pem.as_bytes()).expect("EC key"), Jwa::ES256),
            Algorithm::EdDSA => (EncodingKey::from_ed_pem(pem.as_bytes()).expect("Ed key"), Jwa::EdDSA),
            _ => (EncodingKey::from_rsa_pem(pem.as_bytes()).expect("RSA key"), Jwa::RS256),
        };
        let jwk = Jwk::from_encoding_key(&key, alg).expect("public JWK");
        Self { key, jwk, alg }
    }

    /// RFC 7638 thumbprint, by jsonwebtoken.
    pub(crate) fn jkt(&self) -> String {
        self.jwk.thumbprint(ThumbprintHash::SHA256).expect("thumbprint")
    }

    /// A proof with these claims (and `typ`, `alg`, `jwk` in the header).
    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.typ = Some("dpop+jwt".to_owned());
        header.jwk = Some(self.jwk.clone());
        jsonwebtoken::encode(&header, claims, &self.key).expect("proof")
    }

    /// A fresh proof for `htm` `htu` at the server's time, with `ath` for `token`.
    pub(crate) fn proof(&self, server: &TestServer, htm: &str, htu: &str, token: Option<&str>) -> String {
        self.sign(&claims(server, htm, htu, token))
    }
}

/// Fresh proof claims: a new `jti`, `iat` now (the server's clock).
fn claims(server: &TestServer, htm: &str, htu: &str, token: Option<&str>) -> Value {
    let mut claims = json!({
        "jti": uuid::Uuid::new_v4().to_string(),
        "htm": htm,
        "htu": htu,
        "iat": server.passport.now().timestamp(),
    });
    if let Some(token) = token {
        claims["ath"] = passport::access_token_hash(token).into();
    }
    claims
}

/// A compact JWS with this header, signed by `key` (for headers jsonwebtoken would not write).
fn sign_raw(header: &Value, claims: &Value, key: &ProofKey) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &key.key, key.alg).expect("sign");
    format!("{input}.{signature}")
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        Self { status, headers, body }
    }

    #[track_caller]
    fn assert_error(&self, status: u16, error: &str, what: &str) {
        assert_eq!(self.status.as_u16(), status, "{what}: {}", self.body);
        assert_eq!(self.body["error"], error, "{what}: {}", self.body);
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    fn token(&self) -> String {
        self.body["access_token"].as_str().expect("access_token").to_owned()
    }
}

/// No `DPoP` header.
const NO_PROOF: [&str; 0] = [];

/// POSTs a form to the token endpoint with these `DPoP` headers.
async fn token<P: AsRef<str>>(server: &TestServer, form: &[(&str, &str)], proofs: &[P]) -> Answer {
    let mut request = server.http.post(server.url("/oauth/token")).form(form);
    for proof in proofs {
        request = request.header("DPoP", proof.as_ref());
    }
    Answer::read(request.send().await.expect("token request")).await
}

/// GETs `path` with `Authorization: <scheme> <token>` and an optional proof.
async fn get(server: &TestServer, path: &str, scheme: &str, access_token: &str, proof: Option<&str>) -> Answer {
    let mut request = server
        .http
        .get(server.url(path))
        .header("Authorization", format!("{scheme} {access_token}"));
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    Answer::read(request.send().await.expect("resource request")).await
}

/// A user and a confidential password client; returns (client id, secret).
async fn password_setup(server: &TestServer) -> (String, String) {
    server.user("ada@example.com", "correct horse").await;
    server.password_client().await
}

fn password_form(client: &(String, String)) -> Vec<(&'static str, &str)> {
    vec![
        ("grant_type", "password"),
        ("client_id", &client.0),
        ("client_secret", &client.1),
        ("username", "ada@example.com"),
        ("password", "correct horse"),
        ("scope", "read"),
    ]
}

backend_test! {
    /// §5: a valid proof gets `token_type: DPoP` and a JWT with `cnf.jkt`; §7.1: the guard takes
    /// it as `Authorization: DPoP` with a proof carrying `ath` (also once the token is cached);
    /// §7.2 / §7.1: without `ath`, with another key's proof, without a proof, or sent as
    /// `Bearer` it is refused with a `DPoP` challenge; §6.2: introspection shows `cnf.jkt`;
    /// discovery lists the algorithms (§5.1).
    async fn a_bound_token_is_issued_and_used_only_with_a_proof_of_its_key(db) {
        let server = TestServer::start_default(db).await;
        let client = password_setup(&server).await;
        let key = ProofKey::new(Algorithm::ES256);
        let other = ProofKey::new(Algorithm::EdDSA);
        let token_url = server.url("/oauth/token");

        let issued = token(&server, &password_form(&client), &[&key.proof(&server, "POST", &token_url, None)]).await;
        assert_eq!(issued.status, StatusCode::OK, "{}", issued.body);
        assert_eq!(issued.body["token_type"], "DPoP", "§5: token_type");
        assert_eq!(issued.header("cache-control"), "no-store");
        let access = issued.token();
        assert_eq!(jwt_claims(&access)["cnf"]["jkt"], key.jkt(), "§6.1: cnf.jkt is the key's thumbprint");

        let api = server.url("/api/user");
        for round in ["checked", "cached"] {
            let ok = get(&server, "/api/user", "DPoP", &access, Some(&*key.proof(&server, "GET", &api, Some(access.as_str())))).await;
            assert_eq!(ok.status, StatusCode::OK, "§7.1 ({round}): {}", ok.body);
            assert_eq!(ok.body["email"], "ada@example.com");
        }

        let as_bearer = get(&server, "/api/user", "Bearer", &access, None).await;
        as_bearer.assert_error(401, "invalid_token", "§7.2: a bound token sent as Bearer");
        assert!(as_bearer.header("www-authenticate").starts_with("DPoP "), "§7.1: DPoP challenge");
        assert!(as_bearer.header("www-authenticate").contains(r#"algs="ES256 EdDSA RS256""#));

        let no_ath = key.proof(&server, "GET", &api, None);
        get(&server, "/api/user", "DPoP", &access, Some(&*no_ath)).await
            .assert_error(401, "invalid_dpop_proof", "§4.3 / §7.1: ath is required with a token");
        let wrong_ath = key.proof(&server, "GET", &api, Some("another token"));
        get(&server, "/api/user", "DPoP", &access, Some(&*wrong_ath)).await
            .assert_error(401, "invalid_dpop_proof", "§4.3: ath of another token");
        let other_key = other.proof(&server, "GET", &api, Some(access.as_str()));
        get(&server, "/api/user", "DPoP", &access, Some(&*other_key)).await
            .assert_error(401, "invalid_dpop_proof", "§7.1: the proof's key must be the token's");
        let missing = get(&server, "/api/user", "DPoP", &access, None).await;
        missing.assert_error(401, "invalid_dpop_proof", "§7.1: no proof");
        assert!(missing.header("www-authenticate").contains(r#"error="invalid_dpop_proof""#));
        let post_proof = key.proof(&server, "POST", &api, Some(access.as_str()));
        get(&server, "/api/user", "DPoP", &access, Some(&*post_proof)).await
            .assert_error(401, "invalid_dpop_proof", "§4.3: htm at the resource");

        let userinfo = get(&server, "/oauth/userinfo", "Bearer", &access, None).await;
        userinfo.assert_error(401, "invalid_token", "§7.2 at userinfo: bound token as Bearer");

        let plain = token(&server, &password_form(&client), &NO_PROOF).await;
        assert_eq!(plain.body["token_type"], "Bearer", "no proof, no binding");
        assert!(jwt_claims(&plain.token()).get("cnf").is_none());
        let bearer = get(&server, "/api/user", "Bearer", &plain.token(), None).await;
        assert_eq!(bearer.status, StatusCode::OK, "plain bearer tokens work as before");
        let plain_as_dpop = key.proof(&server, "GET", &api, Some(plain.token().as_str()));
        get(&server, "/api/user", "DPoP", &plain.token(), Some(&*plain_as_dpop)).await
            .assert_error(401, "invalid_token", "§7.1: the DPoP scheme is for bound tokens");

        let introspected = server
            .http
            .post(server.url("/oauth/introspect"))
            .basic_auth(&client.0, Some(&client.1))
            .form(&[("token", access.as_str())])
            .send()
            .await
            .expect("introspect");
        let introspected = Answer::read(introspected).await;
        assert_eq!(introspected.body["active"], true, "{}", introspected.body);
        assert_eq!(introspected.body["token_type"], "DPoP", "§6.2: token_type");
        assert_eq!(introspected.body["cnf"]["jkt"], key.jkt(), "§6.2: cnf.jkt");

        let meta: Value = server
            .http
            .get(server.url("/.well-known/oauth-authorization-server"))
            .send()
            .await
            .expect("metadata")
            .json()
            .await
            .expect("JSON");
        assert_eq!(meta["dpop_signing_alg_values_supported"], json!(["ES256", "EdDSA", "RS256"]), "§5.1");
    }
}

backend_test! {
    /// §4.3 at the token endpoint: one proof per request, `typ`, an asymmetric `alg` and a public
    /// `jwk`, `htm`, `htu` (query ignored), `iat` window, `jti` used once — on every instance of
    /// the database (§11.1); §5.2: a client with `dpop_bound_access_tokens` must send a proof.
    async fn proofs_are_checked_as_section_4_3_says(db) {
        let server = TestServer::start_default(db).await;
        let (id, secret) = server.service_client().await;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ];
        let key = ProofKey::new(Algorithm::EdDSA);
        let url = server.url("/oauth/token");

        let proof = key.proof(&server, "POST", &url, None);
        let first = token(&server, &form, &[&proof]).await;
        assert_eq!(first.status, StatusCode::OK, "EdDSA proof: {}", first.body);
        assert_eq!(first.body["token_type"], "DPoP");
        token(&server, &form, &[&proof]).await.assert_error(400, "invalid_dpop_proof", "§11.1: replayed jti");
        // Another instance of the same deployment: one issuer, one database.
        let issuer = server.base.clone();
        let other = server.beside(|b| b.issuer(issuer)).await;
        let replay = other
            .http
            .post(other.url("/oauth/token"))
            .header("DPoP", &proof)
            .form(&form)
            .send()
            .await
            .expect("token");
        Answer::read(replay).await.assert_error(400, "invalid_dpop_proof", "§11.1: replayed on another instance");

        let with_query = key.proof(&server, "POST", &format!("{url}?x=1#frag"), None);
        assert_eq!(token(&server, &form, &[&with_query]).await.status, StatusCode::OK, "§4.3: htu without query and fragment");

        let now = server.passport.now().timestamp();
        let mut stale = claims(&server, "POST", &url, None);
        stale["iat"] = (now - 120).into();
        let mut ahead = claims(&server, "POST", &url, None);
        ahead["iat"] = (now + 120).into();
        let mut header = serde_json::to_value(Header::new(Jwa::EdDSA)).expect("header");
        header["typ"] = "dpop+jwt".into();
        header["jwk"] = serde_json::to_value(&key.jwk).expect("jwk");
        let mut private = header.clone();
        private["jwk"]["d"] = "AAAA".into();
        let mut untyped = header.clone();
        untyped["typ"] = "JWT".into();
        let hmac = {
            let header = json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}});
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims(&server, "POST", &url, None).to_string())
            );
            let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &EncodingKey::from_secret(b"secret"), Jwa::HS256).expect("HS256");
            format!("{input}.{signature}")
        };
        let unsigned = {
            let proof = key.proof(&server, "POST", &url, None);
            let (rest, _) = proof.rsplit_once('.').expect("JWS");
            format!("{rest}.")
        };
        let cases: Vec<(&str, String)> = vec![
            ("§4.3 ¶4: htm", key.proof(&server, "GET", &url, None)),
            ("§4.3 ¶9: htu of another endpoint", key.proof(&server, "POST", &server.url("/oauth/introspect"), None)),
            ("§4.3 ¶9: htu of another host", key.proof(&server, "POST", "https://elsewhere.example/oauth/token", None)),
            ("§4.3 ¶11: stale iat", key.sign(&stale)),
            ("§4.3 ¶11: iat ahead", key.sign(&ahead)),
            ("§4.3 ¶4: typ", sign_raw(&untyped, &claims(&server, "POST", &url, None), &key)),
            ("§4.3 ¶7: jwk with a private part", sign_raw(&private, &claims(&server, "POST", &url, None), &key)),
            ("§4.3 ¶5: a symmetric alg", hmac),
            ("§4.3 ¶6: no signature", unsigned),
            ("§4.3 ¶2: not a JWT", "not-a-jwt".to_owned()),
        ];
        for (what, proof) in &cases {
            token(&server, &form, &[proof]).await.assert_error(400, "invalid_dpop_proof", what);
        }
        let (a, b) = (key.proof(&server, "POST", &url, None), key.proof(&server, "POST", &url, None));
        token(&server, &form, &[&a, &b]).await.assert_error(400, "invalid_dpop_proof", "§4.3 ¶1: two DPoP headers");

        let bound = NewClient::new("Bound service", ClientKind::ClientCredentials).dpop_bound_access_tokens(true);
        let (bound_id, bound_secret) = create_client(&server, bound).await;
        let bound_secret = bound_secret.expect("confidential");
        let bound_form = [
            ("grant_type", "client_credentials"),
            ("client_id", bound_id.as_str()),
            ("client_secret", bound_secret.as_str()),
        ];
        token(&server, &bound_form, &NO_PROOF).await.assert_error(400, "invalid_dpop_proof", "§5.2: dpop_bound_access_tokens without a proof");
        let ok = token(&server, &bound_form, &[&key.proof(&server, "POST", &url, None)]).await;
        assert_eq!(ok.body["token_type"], "DPoP", "§5.2 with a proof: {}", ok.body);
    }
}

backend_test! {
    /// §8: with `use_dpop_nonce`, a proof without the nonce is answered 400 `use_dpop_nonce`
    /// with `DPoP-Nonce`; the retry with it succeeds, also on another instance (the nonce comes
    /// from the shared server secret); an old nonce is refused. §9: the same at a resource, as a
    /// 401 `DPoP error="use_dpop_nonce"` challenge.
    async fn a_server_nonce_is_asked_for_and_accepted_by_every_instance(db) {
        let server = TestServer::start(db, |b| b.use_dpop_nonce(true)).await;
        let client = password_setup(&server).await;
        let key = ProofKey::new(Algorithm::ES256);
        let url = server.url("/oauth/token");
        let with_nonce = |server: &TestServer, htm: &str, htu: &str, token: Option<&str>, nonce: &str| {
            let mut claims = claims(server, htm, htu, token);
            claims["nonce"] = nonce.into();
            key.sign(&claims)
        };

        let challenged = token(&server, &password_form(&client), &[&key.proof(&server, "POST", &url, None)]).await;
        challenged.assert_error(400, "use_dpop_nonce", "§8: no nonce");
        let nonce = challenged.header("dpop-nonce").to_owned();
        assert!(!nonce.is_empty(), "§8: DPoP-Nonce header");
        token(&server, &password_form(&client), &[&with_nonce(&server, "POST", &url, None, "wrong")]).await
            .assert_error(400, "use_dpop_nonce", "§8: a wrong nonce");
        let issued = token(&server, &password_form(&client), &[&with_nonce(&server, "POST", &url, None, nonce.as_str())]).await;
        assert_eq!(issued.status, StatusCode::OK, "§8: retry with the nonce: {}", issued.body);
        assert_eq!(issued.body["token_type"], "DPoP");
        let access = issued.token();

        let api = server.url("/api/user");
        let at_resource = get(&server, "/api/user", "DPoP", &access, Some(&*key.proof(&server, "GET", &api, Some(access.as_str())))).await;
        at_resource.assert_error(401, "use_dpop_nonce", "§9: no nonce at the resource");
        assert!(at_resource.header("www-authenticate").starts_with(r#"DPoP error="use_dpop_nonce""#));
        assert_eq!(at_resource.header("dpop-nonce"), nonce, "§9: DPoP-Nonce");
        let ok = get(&server, "/api/user", "DPoP", &access, Some(&*with_nonce(&server, "GET", &api, Some(access.as_str()), nonce.as_str()))).await;
        assert_eq!(ok.status, StatusCode::OK, "§9: retry with the nonce: {}", ok.body);

        let other = server.beside(|b| b.use_dpop_nonce(true)).await;
        let other_url = other.url("/oauth/token");
        let elsewhere = token(&other, &password_form(&client), &[&with_nonce(&other, "POST", &other_url, None, nonce.as_str())]).await;
        assert_eq!(elsewhere.status, StatusCode::OK, "another instance accepts the nonce: {}", elsewhere.body);

        server.advance(TimeDelta::minutes(11));
        token(&server, &password_form(&client), &[&with_nonce(&server, "POST", &url, None, nonce.as_str())]).await
            .assert_error(400, "use_dpop_nonce", "§8: an old nonce");
    }
}

backend_test! {
    /// §5: a public client's refresh token is bound to the proof's key: refreshing without a
    /// proof or with another key fails, with the key succeeds. §10: a code requested with
    /// `dpop_jkt` is exchanged only with a proof of that key.
    async fn public_clients_keep_their_key_for_refreshes_and_codes(db) {
        let server = TestServer::start_default(db).await;
        server.user("ada@example.com", "correct horse").await;
        let key = ProofKey::new(Algorithm::ES256);
        let other = ProofKey::new(Algorithm::EdDSA);
        let url = server.url("/oauth/token");

        let (public, _) = server.client(ClientKind::Password, true).await;
        let login = [
            ("grant_type", "password"),
            ("client_id", public.as_str()),
            ("username", "ada@example.com"),
            ("password", "correct horse"),
            ("scope", "read"),
        ];
        let issued = token(&server, &login, &[&key.proof(&server, "POST", &url, None)]).await;
        assert_eq!(issued.body["token_type"], "DPoP", "{}", issued.body);
        let refresh = issued.body["refresh_token"].as_str().expect("refresh_token").to_owned();
        let form = [("grant_type", "refresh_token"), ("client_id", public.as_str()), ("refresh_token", refresh.as_str())];
        token(&server, &form, &NO_PROOF).await.assert_error(400, "invalid_dpop_proof", "§5: no proof");
        token(&server, &form, &[&other.proof(&server, "POST", &url, None)]).await
            .assert_error(400, "invalid_grant", "§5: another key");
        let refreshed = token(&server, &form, &[&key.proof(&server, "POST", &url, None)]).await;
        assert_eq!(refreshed.status, StatusCode::OK, "§5: the same key: {}", refreshed.body);
        assert_eq!(refreshed.body["token_type"], "DPoP");
        assert_eq!(jwt_claims(&refreshed.token())["cnf"]["jkt"], key.jkt());

        let spa = NewClient::new("SPA", ClientKind::AuthorizationCode { device_flow: false })
            .public(true)
            .redirect_uris([CALLBACK])
            .skips_authorization(true);
        let (spa, _) = create_client(&server, spa).await;
        let browser = Browser::signed_in(&server, "ada@example.com", "correct horse").await;
        let verifier = "dpop-test-verifier-0123456789-0123456789-0123456789";
        let challenge = passport::access_token_hash(verifier);
        let jkt = key.jkt();
        let code = async || {
            let mut authorize = Url::parse(&server.url("/oauth/authorize")).expect("url");
            authorize.query_pairs_mut().extend_pairs([
                ("response_type", "code"),
                ("client_id", spa.as_str()),
                ("redirect_uri", CALLBACK),
                ("scope", "read"),
                ("state", "s"),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
                ("dpop_jkt", jkt.as_str()),
            ]);
            let page = browser.get(authorize.as_str()).await;
            let location = Url::parse(page.location().expect("redirect with the code")).expect("location");
            location.query_pairs().find(|(k, _)| k == "code").expect("code").1.into_owned()
        };
        let exchange = |code: &str| {
            [
                ("grant_type", "authorization_code".to_owned()),
                ("client_id", spa.clone()),
                ("code", code.to_owned()),
                ("redirect_uri", CALLBACK.to_owned()),
                ("code_verifier", verifier.to_owned()),
            ]
        };
        let first = code().await;
        let form = exchange(&first);
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        token(&server, &form, &NO_PROOF).await.assert_error(400, "invalid_dpop_proof", "§10: no proof for a dpop_jkt code");
        token(&server, &form, &[&other.proof(&server, "POST", &url, None)]).await
            .assert_error(400, "invalid_grant", "§10: a proof of another key");
        let ok = token(&server, &form, &[&key.proof(&server, "POST", &url, None)]).await;
        assert_eq!(ok.status, StatusCode::OK, "§10: the named key: {}", ok.body);
        assert_eq!(ok.body["token_type"], "DPoP");
    }
}

/// RFC 9449 §5.2: a client whose access tokens must be DPoP-bound gets none in the front
/// channel (the implicit grant's `token` response types), where no proof can bind them.
#[tokio::test]
async fn a_dpop_bound_client_gets_no_front_channel_token() {
    let server = TestServer::start(passport_sqlx::testing::sqlite(), |b| b.enable_implicit_grant(true)).await;
    server.user("implicit@example.com", "implicit password").await;
    let (client, _) = create_client(
        &server,
        NewClient::new("Legacy SPA", ClientKind::Implicit)
            .redirect_uris([CALLBACK])
            .dpop_bound_access_tokens(true),
    )
    .await;
    let browser = Browser::signed_in(&server, "implicit@example.com", "implicit password").await;
    let mut url = Url::parse(&server.url("/oauth/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &client)
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("response_type", "token")
        .append_pair("state", "st");
    let page = browser.get(url.as_str()).await;
    let location = page.location().unwrap_or_else(|| panic!("a redirect\n{}", page.body));
    assert!(location.starts_with(CALLBACK), "{location}");
    assert!(location.contains("error=unsupported_response_type"), "{location}");
    assert!(!location.contains("access_token"), "{location}");
}
