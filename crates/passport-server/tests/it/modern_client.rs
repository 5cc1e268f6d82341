//! The real `passport` binary with a real OAuth client library (the `oauth2` crate): the
//! library builds the authorization request, which is pushed (RFC 9126) instead of sent through
//! the browser, and its token requests carry DPoP proofs (RFC 9449) added by the HTTP client it
//! is given, so the code exchange and the refresh bind the tokens to the client's key; the
//! bound token then opens the API only with a proof of that key.

use oauth2::basic::{BasicClient, BasicTokenType};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, HttpRequest, HttpResponse, PkceCodeChallenge, RedirectUrl,
    RefreshToken, Scope, TokenResponse as _, TokenUrl,
};
use passport::Algorithm;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cli::{Deployment, ServerProcess};
use crate::support_web::Browser;

const CALLBACK: &str = "http://127.0.0.1:9/callback";

/// A DPoP key of the client's, with proofs timed by the server's `Date` header (a client
/// without a trusted clock of its own).
struct Dpop {
    key: jsonwebtoken::EncodingKey,
    jwk: jsonwebtoken::jwk::Jwk,
    clock: reqwest::Client,
    base: String,
}

impl Dpop {
    fn new(server: &ServerProcess) -> Self {
        let pem = passport::generate_key(Algorithm::ES256, 2048).unwrap().private_pem;
        let key = jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, jsonwebtoken::Algorithm::ES256).unwrap();
        Self {
            key,
            jwk,
            clock: reqwest::Client::new(),
            base: server.base.clone(),
        }
    }

    /// The server's time, from its `Date` header.
    async fn now(&self) -> i64 {
        let response = self.clock.get(format!("{}/health", self.base)).send().await.unwrap();
        let date = response.headers()["date"].to_str().unwrap().to_owned();
        chrono::DateTime::parse_from_rfc2822(&date).unwrap().timestamp()
    }

    /// A proof for `method` `uri` (RFC 9449 §4.2), with `ath` for `access_token`.
    async fn proof(&self, method: &str, uri: &str, access_token: Option<&str>) -> String {
        let mut claims = json!({
            "jti": passport::random_hex(16).unwrap(),
            "htm": method,
            "htu": uri,
            "iat": self.now().await,
        });
        if let Some(token) = access_token {
            claims["ath"] = passport::access_token_hash(token).into();
        }
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.typ = Some("dpop+jwt".to_owned());
        header.jwk = Some(self.jwk.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }

    /// What the library calls to send its token requests: the request, with a fresh proof.
    async fn send(&self, http: &reqwest::Client, mut request: HttpRequest) -> Result<HttpResponse, std::io::Error> {
        let proof = self
            .proof(request.method().as_str(), &request.uri().to_string(), None)
            .await;
        request.headers_mut().insert("dpop", proof.parse().unwrap());
        let response = http
            .execute(request.try_into().unwrap())
            .await
            .map_err(std::io::Error::other)?;
        let mut answer = oauth2::http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            answer = answer.header(name, value);
        }
        Ok(answer.body(response.bytes().await.unwrap().to_vec()).unwrap())
    }
}

/// `GET /api/user` with the token under `scheme`, and a proof when given.
async fn api_user(server: &ServerProcess, scheme: &str, token: &str, proof: Option<String>) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .get(server.url("/api/user"))
        .header("authorization", format!("{scheme} {token}"));
    if let Some(proof) = proof {
        request = request.header("dpop", proof);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_client_library_pushes_its_request_and_binds_its_tokens_with_dpop() {
    let site = Deployment::sqlite();
    site.keys();
    let email = "par@example.com";
    let password = "par password";
    site.user(email, password);
    let (client_id, _) = site.client(&[
        "--name",
        "Native app",
        "--public",
        "--redirect-uri",
        CALLBACK,
        "--require-pushed-authorization-requests",
        "--dpop-bound-access-tokens",
    ]);
    let server = site.serve();
    let client = BasicClient::new(ClientId::new(client_id.clone()))
        .set_auth_uri(AuthUrl::new(server.url("/oauth/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(server.url("/oauth/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(CALLBACK.to_owned()).unwrap());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let dpop = Dpop::new(&server);
    let with_dpop = |request: HttpRequest| dpop.send(&http, request);

    // The library's authorization request, pushed rather than put in the address bar.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (library_url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("openid".to_owned()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = Browser::new(&server.base);
    let refused = browser.get(library_url.as_str()).await;
    let location = refused.location().unwrap_or_default().to_owned();
    assert!(
        location.contains("error=invalid_request"),
        "a front-channel request is refused: {location}"
    );
    let pushed: Vec<(String, String)> = library_url.query_pairs().into_owned().collect();
    // RFC 9449 §10.1: a proof at the PAR endpoint binds the code to the client's key.
    let par_proof = dpop.proof("POST", &server.url("/oauth/par"), None).await;
    let response = http
        .post(server.url("/oauth/par"))
        .header("dpop", par_proof)
        .form(&pushed)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let pushed: Value = response.json().await.unwrap();
    let request_uri = pushed["request_uri"].as_str().expect("request_uri");

    // The browser carries only the reference: sign-in, consent, back with a code.
    let mut authorize = url::Url::parse(&server.url("/oauth/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", &client_id)
        .append_pair("request_uri", request_uri);
    let page = browser.get(authorize.as_str()).await;
    assert_eq!(page.location(), Some("/login"), "a guest signs in first");
    let page = browser.login(email, password).await;
    let back = page.location().expect("back to the request").to_owned();
    let consent = browser.get(&back).await;
    assert_eq!(consent.status, StatusCode::OK, "consent\n{}", consent.body);
    let page = browser.submit(&consent.approve_form("par consent")).await;
    let callback = url::Url::parse(page.location().expect("the callback")).unwrap();
    let params: Vec<(String, String)> = callback.query_pairs().into_owned().collect();
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(get("state").as_deref(), Some(state.secret().as_str()));
    let code = get("code").expect("a code");

    // The code is bound to the key the push proved: another key cannot redeem it.
    let thief = Dpop::new(&server);
    let stolen = |request: HttpRequest| thief.send(&http, request);
    let refused = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .set_pkce_verifier(oauth2::PkceCodeVerifier::new(verifier.secret().clone()))
        .request_async(&stolen)
        .await;
    assert!(refused.is_err(), "a code exchange with another key");

    // The library's code exchange, through the DPoP-adding client: a bound token.
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&with_dpop)
        .await
        .unwrap_or_else(|e| panic!("code exchange: {e:?}; log:\n{}", server.log()));
    // The library lowercases token types it does not know.
    assert_eq!(*tokens.token_type(), BasicTokenType::Extension("dpop".to_owned()));
    let access = tokens.access_token().secret().clone();
    let proof = dpop.proof("GET", &server.url("/api/user"), Some(&access)).await;
    let (status, user) = api_user(&server, "DPoP", &access, Some(proof)).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["email"], email);
    let (status, _) = api_user(&server, "Bearer", &access, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a bound token is no bearer token");

    // The public client's refresh token is bound too: the library's refresh works with the
    // key, and fails with another.
    let refresh = tokens.refresh_token().expect("a refresh token").secret().clone();
    let refused = client
        .exchange_refresh_token(&RefreshToken::new(refresh.clone()))
        .request_async(&stolen)
        .await;
    assert!(refused.is_err(), "a refresh with another key");
    let renewed = client
        .exchange_refresh_token(&RefreshToken::new(refresh))
        .request_async(&with_dpop)
        .await
        .unwrap_or_else(|e| panic!("refresh: {e:?}"));
    let access = renewed.access_token().secret().clone();
    let proof = dpop.proof("GET", &server.url("/api/user"), Some(&access)).await;
    assert_eq!(api_user(&server, "DPoP", &access, Some(proof)).await.0, StatusCode::OK);
}
