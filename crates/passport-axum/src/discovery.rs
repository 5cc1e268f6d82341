//! What a client library or a resource server needs to find everything else: the provider
//! metadata (OpenID Connect Discovery 1.0 §3, RFC 8414 §2, with RFC 9126 §5's pushed
//! authorization request entries) and the JWK Set (RFC 7517 §5).
//!
//! Every URL comes from the configured `issuer` and the route prefix, never from a request's
//! `Host`. The metadata is served at `/.well-known/openid-configuration` and
//! `/.well-known/oauth-authorization-server`; with an issuer that has a path (`https://h/auth`),
//! also at `/auth/.well-known/openid-configuration` (Discovery §4) and
//! `/.well-known/oauth-authorization-server/auth` (RFC 8414 §3), so a proxy that mounts the
//! server under the path finds it whether or not it strips the path.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use passport::{Algorithm, GrantType, JWKS_MAX_AGE, OAuthError, Passport};
use serde_json::{Value, json};

use crate::error::OAuthJsonError;

/// The claims the ID token and the userinfo endpoint can carry.
const CLAIMS_SUPPORTED: &[&str] = &[
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "name",
    "email",
    "email_verified",
    "updated_at",
];

/// The metadata document.
pub(crate) fn metadata(passport: &Passport) -> Result<Value, OAuthError> {
    let settings = passport.settings();
    let issuer = settings
        .issuer
        .as_deref()
        .ok_or_else(|| OAuthError::server_error("no issuer is configured"))?;
    let base = format!("{}/{}", issuer.trim_end_matches('/'), settings.path);
    let mut response_types = vec!["code"];
    let mut grant_types = vec![
        GrantType::AuthorizationCode.as_str(),
        GrantType::RefreshToken.as_str(),
        GrantType::ClientCredentials.as_str(),
        GrantType::DeviceCode.as_str(),
    ];
    if settings.enable_password_grant {
        grant_types.push(GrantType::Password.as_str());
    }
    if settings.enable_implicit_grant {
        grant_types.push(GrantType::Implicit.as_str());
        response_types.extend(["token", "id_token", "id_token token"]);
    }
    // OpenID Connect Discovery §3: RS256 MUST be listed; the others as the key set holds them.
    let keys = passport.keys();
    let mut algorithms = vec![Algorithm::RS256.as_str()];
    for key in keys.keys() {
        let name = key.algorithm().as_str();
        if !algorithms.contains(&name) {
            algorithms.push(name);
        }
    }
    let client_auth = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"];
    let mut document = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "userinfo_endpoint": format!("{base}/userinfo"),
        "jwks_uri": format!("{base}/jwks"),
        "end_session_endpoint": format!("{base}/logout"),
        "introspection_endpoint": format!("{base}/introspect"),
        "revocation_endpoint": format!("{base}/revoke"),
        "device_authorization_endpoint": format!("{base}/device/code"),
        "pushed_authorization_request_endpoint": format!("{base}/par"),
        "require_pushed_authorization_requests": settings.require_pushed_authorization_requests || settings.fapi_profile,
        "scopes_supported": passport.scopes().scope_ids(),
        "response_types_supported": response_types,
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": grant_types,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algorithms,
        "token_endpoint_auth_methods_supported": client_auth,
        "token_endpoint_auth_signing_alg_values_supported": passport::ASSERTION_ALGORITHMS,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": passport::ASSERTION_ALGORITHMS,
        "revocation_endpoint_auth_signing_alg_values_supported": passport::ASSERTION_ALGORITHMS,
        "revocation_endpoint_auth_methods_supported": client_auth,
        "code_challenge_methods_supported": ["S256", "plain"],
        "dpop_signing_alg_values_supported": passport::DPOP_ALGORITHMS,
        "claims_supported": CLAIMS_SUPPORTED,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "authorization_response_iss_parameter_supported": true,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    });
    if settings.client_registration != passport::RegistrationPolicy::Off {
        document["registration_endpoint"] = Value::from(format!("{base}/register"));
    }
    Ok(document)
}

/// `GET /.well-known/openid-configuration` (and the other forms).
async fn configuration(State(passport): State<Passport>) -> Response {
    match metadata(&passport) {
        Ok(document) => cached(axum::Json(document).into_response(), JWKS_MAX_AGE),
        Err(err) => OAuthJsonError::new(err, None).into_response(),
    }
}

/// `GET /{path}/jwks`: every key that may have signed a live token, and one published ahead.
async fn jwks(State(passport): State<Passport>) -> Response {
    let set = passport.keys().jwks();
    let mut response = (StatusCode::OK, axum::Json(set)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    cached(response, JWKS_MAX_AGE)
}

/// Lets caches keep a public document for `seconds`.
fn cached(mut response: Response, seconds: u64) -> Response {
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={seconds}")) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}

/// The discovery and JWKS routes (see the module documentation).
pub(crate) fn routes(passport: &Passport) -> Router {
    let settings = passport.settings();
    let mut router = Router::new()
        .route("/.well-known/openid-configuration", get(configuration))
        .route("/.well-known/oauth-authorization-server", get(configuration))
        .route(&format!("/{}/jwks", settings.path), get(jwks));
    let issuer_path = settings
        .issuer
        .as_deref()
        .and_then(|issuer| url::Url::parse(issuer).ok())
        .map(|url| url.path().trim_end_matches('/').to_owned())
        .filter(|path| !path.is_empty());
    if let Some(path) = issuer_path {
        router = router
            .route(&format!("{path}/.well-known/openid-configuration"), get(configuration))
            .route(
                &format!("/.well-known/oauth-authorization-server{path}"),
                get(configuration),
            );
    }
    router.with_state(passport.clone())
}
