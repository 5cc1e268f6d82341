//! The real `passport` binary as an OpenID Provider for a strict relying-party library (the
//! `openidconnect` crate, which follows the specifications to the letter): discovery, the
//! JWKS, the authorization code flow with PKCE and a nonce and full ID token verification
//! (signature, `iss`, `aud`, `exp`, `nonce`, `at_hash`), RFC 9207's `iss`, userinfo, a refresh
//! with a new ID token, and RP-initiated logout. A cookie-holding HTTP client plays the browser.

// Helpers outside #[test] functions panic on failure too: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreUserInfoClaims};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, LogoutRequest, Nonce,
    OAuth2TokenResponse as _, PkceCodeChallenge, PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl, Scope,
    TokenResponse as _,
};
use reqwest::StatusCode;

use crate::cli::Deployment;
use crate::support_web::Browser;

const CALLBACK: &str = "http://127.0.0.1:9/callback";
const SIGNED_OUT: &str = "http://127.0.0.1:9/signed-out";

/// The query parameters of a URL.
fn query(url: &str) -> Vec<(String, String)> {
    url::Url::parse(url).unwrap().query_pairs().into_owned().collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

backend_test! {
    async fn a_strict_relying_party_library_signs_in_refreshes_and_signs_out(db) {
        let site = Deployment::new(db);
        site.keys();
        let email = "ola@example.com";
        let password = "ola's password";
        let user_id = site.user(email, password);
        let (client_id, secret) = site.client(&[
            "--name",
            "Relying Party",
            "--redirect-uri",
            CALLBACK,
            "--post-logout-redirect-uri",
            SIGNED_OUT,
        ]);
        let server = site.serve();
        let http = reqwest::ClientBuilder::new()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();

        // Discovery (with the logout metadata) and the client built from it.
        let issuer = IssuerUrl::new(server.base.clone()).unwrap();
        let metadata = ProviderMetadataWithLogout::discover_async(issuer.clone(), &http)
            .await
            .unwrap_or_else(|e| panic!("discovery: {e:?}; log:\n{}", server.log()));
        let end_session = metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()
            .expect("end_session_endpoint");
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(client_id.clone()),
            secret.map(ClientSecret::new),
        )
        .set_redirect_uri(RedirectUrl::new(CALLBACK.to_owned()).unwrap());

        // The authorization request, through sign-in and consent in the browser.
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (authorize_url, state, nonce) = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scope(Scope::new("profile".to_owned()))
            .add_scope(Scope::new("email".to_owned()))
            .set_pkce_challenge(challenge)
            .url();
        let browser = Browser::new(&server.base);
        let to_login = browser.get(authorize_url.as_str()).await;
        assert_eq!(to_login.status, StatusCode::FOUND, "{}", to_login.body);
        let back = browser.login(email, password).await;
        let back_to = back.location().expect("back to the authorization request").to_owned();
        let consent = browser.get(&back_to).await;
        assert_eq!(consent.status, StatusCode::OK, "the consent page\n{}", consent.body);
        let answer = browser.submit(&consent.approve_form("consent")).await;
        let redirect = answer.location().expect("redirect to the client").to_owned();
        assert!(redirect.starts_with(CALLBACK), "{redirect}");
        let pairs = query(&redirect);
        assert_eq!(param(&pairs, "state"), Some(state.secret().as_str()));
        assert_eq!(param(&pairs, "iss"), Some(issuer.as_str()), "RFC 9207 §2");
        let code = param(&pairs, "code").expect("code").to_owned();

        // The code exchange, and the ID token verified as the library verifies it.
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .unwrap()
            .set_pkce_verifier(verifier)
            .request_async(&http)
            .await
            .unwrap_or_else(|e| panic!("code exchange: {e:?}"));
        let id_token = tokens.id_token().expect("an id_token for the openid scope");
        let id_verifier = client.id_token_verifier();
        let claims = id_token
            .claims(&id_verifier, &nonce)
            .unwrap_or_else(|e| panic!("ID token verification: {e:?}"));
        assert_eq!(claims.subject().as_str(), user_id);
        assert_eq!(claims.email().map(|e| e.as_str()), Some(email));
        assert!(claims.auth_time().is_some(), "auth_time");
        let expected = claims.access_token_hash().expect("at_hash");
        let actual = AccessTokenHash::from_token(
            tokens.access_token(),
            id_token.signing_alg().unwrap(),
            id_token.signing_key(&id_verifier).unwrap(),
        )
        .unwrap();
        assert_eq!(&actual, expected, "at_hash matches the access token");

        // Userinfo with the access token: the same subject, the claims of the granted scopes.
        let info: CoreUserInfoClaims = client
            .user_info(tokens.access_token().to_owned(), None)
            .unwrap()
            .request_async(&http)
            .await
            .unwrap_or_else(|e| panic!("userinfo: {e:?}"));
        assert_eq!(info.subject().as_str(), user_id);
        assert_eq!(info.email().map(|e| e.as_str()), Some(email));

        // A refresh brings a new ID token for the same subject (OpenID Connect Core §12.2).
        let refreshed = client
            .exchange_refresh_token(tokens.refresh_token().expect("a refresh token"))
            .unwrap()
            .request_async(&http)
            .await
            .unwrap_or_else(|e| panic!("refresh: {e:?}"));
        let new_id_token = refreshed.id_token().expect("an id_token on refresh");
        let new_claims = new_id_token
            .claims(&id_verifier, |_: Option<&Nonce>| Ok(()))
            .unwrap_or_else(|e| panic!("refreshed ID token: {e:?}"));
        assert_eq!(new_claims.subject(), claims.subject());
        assert_eq!(new_claims.auth_time(), claims.auth_time(), "the original authentication");

        // RP-initiated logout with the ID token of the signed-in user: straight back, with state.
        let logout = LogoutRequest::from(end_session)
            .set_id_token_hint(new_id_token)
            .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(SIGNED_OUT.to_owned()).unwrap())
            .set_state(CsrfToken::new("bye".to_owned()))
            .http_get_url();
        let signed_out = browser.get(logout.as_str()).await;
        let location = signed_out.location().unwrap_or_else(|| panic!("a redirect\n{}", signed_out.body));
        assert!(location.starts_with(SIGNED_OUT), "{location}");
        assert_eq!(param(&query(location), "state"), Some("bye"));
        // The session is over: a silent authorization request now needs a login.
        let (silent, _, _) = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_prompt(openidconnect::core::CoreAuthPrompt::None)
            .url();
        let silent = browser.get(silent.as_str()).await;
        let location = silent.location().expect("an error redirect");
        assert_eq!(param(&query(location), "error"), Some("login_required"), "{location}");
    }
}
