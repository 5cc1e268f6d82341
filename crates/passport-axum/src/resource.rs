//! Protected resource metadata (RFC 9728): the document a resource server publishes so that a
//! client holding only the API's URL finds which authorization server issues its tokens, how
//! to send them and which scopes exist.
//!
//! [`ProtectedResource`] describes one resource. [`ProtectedResource::router`] serves its
//! document at the well-known URL derived from the resource identifier (§3.1:
//! `https://api.example/v1` → `https://api.example/.well-known/oauth-protected-resource/v1`),
//! and [`ProtectedResource::challenge`] adds `resource_metadata="…"` to the `WWW-Authenticate`
//! challenges of the routes it wraps (§5.1), so a client refused with 401 learns where to look.
//!
//! ```no_run
//! # fn demo(passport: passport::Passport, api: axum::Router) -> Result<axum::Router, passport::ConfigError> {
//! let resource = passport_axum::ProtectedResource::for_passport(&passport, "/api")?;
//! let app = resource.challenge(api).merge(resource.router());
//! # Ok(app)
//! # }
//! ```

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use passport::{ConfigError, Passport};
use serde_json::{Value, json};

/// The well-known URI suffix (RFC 9728 §3).
const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// One protected resource and its metadata (RFC 9728 §2). Every URL is configured, never taken
/// from a request's `Host`.
#[derive(Debug, Clone)]
pub struct ProtectedResource {
    resource: String,
    origin: String,
    path: String,
    authorization_servers: Vec<String>,
    scopes_supported: Vec<String>,
    resource_name: Option<String>,
    resource_documentation: Option<String>,
    also_at_root: bool,
}

impl ProtectedResource {
    /// The resource identified by `resource`: an absolute `https` (or `http`) URL with no
    /// query or fragment (§1.2), for example `https://api.example/v1`. It names no
    /// authorization server and no scopes until told.
    pub fn new(resource: impl Into<String>) -> Result<Self, ConfigError> {
        let resource = resource.into();
        let bad = |why: &str| ConfigError(format!("protected resource {resource:?}: {why}"));
        let url = url::Url::parse(&resource).map_err(|_| bad("not an absolute URL"))?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err(bad("must be an https URL"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("must have no query or fragment"));
        }
        let origin = url.origin().ascii_serialization();
        let path = url.path().trim_end_matches('/').to_owned();
        Ok(Self {
            resource,
            origin,
            path,
            authorization_servers: Vec::new(),
            scopes_supported: Vec::new(),
            resource_name: None,
            resource_documentation: None,
            also_at_root: false,
        })
    }

    /// The resource at `path` (e.g. `/api`) under `passport`'s issuer, whose tokens that
    /// server issues: `authorization_servers` is the issuer and `scopes_supported` its scopes
    /// (but OpenID Connect's).
    /// Fails without an issuer.
    pub fn for_passport(passport: &Passport, path: &str) -> Result<Self, ConfigError> {
        let issuer = passport
            .settings()
            .issuer
            .as_deref()
            .ok_or_else(|| ConfigError("protected resource metadata needs an issuer".to_owned()))?;
        let resource = format!("{}/{}", issuer.trim_end_matches('/'), path.trim_start_matches('/'));
        // OpenID Connect's scopes are about the sign-in and userinfo, not this resource.
        let ids = passport.scopes().scope_ids();
        let scopes = ids
            .into_iter()
            .filter(|id| !passport::OPENID_SCOPES.iter().any(|(openid, _)| openid == id))
            .map(str::to_owned);
        Ok(Self::new(resource.trim_end_matches('/'))?
            .authorization_server(issuer)
            .scopes_supported(scopes))
    }

    /// Adds an authorization server (its issuer identifier, RFC 8414) that issues tokens for
    /// this resource.
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        self.authorization_servers.push(issuer.into());
        self
    }

    /// The scopes the resource understands (`scopes_supported`, §2: RECOMMENDED).
    pub fn scopes_supported(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// A name for people (`resource_name`).
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// Where its documentation for developers is (`resource_documentation`).
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.resource_documentation = Some(url.into());
        self
    }

    /// Also serves the document at `/.well-known/oauth-protected-resource` itself, for clients
    /// that look there whatever the resource's path (off by default: §3.3 has a client compare
    /// `resource` with the URL it derived the location from).
    pub fn also_at_root(mut self, on: bool) -> Self {
        self.also_at_root = on;
        self
    }

    /// The resource identifier.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The path of the metadata document (§3.1): the well-known suffix, then the resource's
    /// path.
    pub fn metadata_path(&self) -> String {
        format!("{WELL_KNOWN}{}", self.path)
    }

    /// The absolute URL of the metadata document (§3.1), named by the challenges (§5.1).
    pub fn metadata_url(&self) -> String {
        format!("{}{}", self.origin, self.metadata_path())
    }

    /// The metadata document (§2). Tokens are accepted in the `Authorization` header only
    /// (`bearer_methods_supported`, RFC 6750 §2.1).
    pub fn metadata(&self) -> Value {
        let mut document = json!({
            "resource": self.resource,
            "bearer_methods_supported": ["header"],
        });
        if let Value::Object(map) = &mut document {
            if !self.authorization_servers.is_empty() {
                map.insert("authorization_servers".to_owned(), json!(self.authorization_servers));
            }
            if !self.scopes_supported.is_empty() {
                map.insert("scopes_supported".to_owned(), json!(self.scopes_supported));
            }
            if let Some(name) = &self.resource_name {
                map.insert("resource_name".to_owned(), json!(name));
            }
            if let Some(url) = &self.resource_documentation {
                map.insert("resource_documentation".to_owned(), json!(url));
            }
        }
        document
    }

    /// `GET` of the metadata document at [`metadata_path`](Self::metadata_path) (and at the
    /// root with [`also_at_root`](Self::also_at_root)), as `application/json`, cacheable for
    /// five minutes.
    pub fn router(&self) -> Router {
        let document: Arc<Value> = Arc::new(self.metadata());
        let mut router = Router::new().route(&self.metadata_path(), get(serve));
        if self.also_at_root && !self.path.is_empty() {
            router = router.route(WELL_KNOWN, get(serve));
        }
        router.with_state(document)
    }

    /// `router` with `resource_metadata="…"` (§5.1) added to every `Bearer` or `DPoP`
    /// challenge in the `WWW-Authenticate` headers its responses carry.
    pub fn challenge<S>(&self, router: Router<S>) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let url: Arc<str> = Arc::from(self.metadata_url());
        router.layer(axum::middleware::map_response_with_state(url, add_resource_metadata))
    }
}

async fn serve(State(document): State<Arc<Value>>) -> Response {
    let mut response = axum::Json(document.as_ref().clone()).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}

/// Appends `resource_metadata` to each challenge of the response that lacks it.
async fn add_resource_metadata(State(url): State<Arc<str>>, mut response: Response) -> Response {
    let headers = response.headers_mut();
    let challenges: Vec<HeaderValue> = headers.get_all(header::WWW_AUTHENTICATE).iter().cloned().collect();
    if challenges.is_empty() {
        return response;
    }
    headers.remove(header::WWW_AUTHENTICATE);
    for challenge in challenges {
        let value = challenge
            .to_str()
            .ok()
            .and_then(|text| with_resource_metadata(text, &url))
            .and_then(|text| HeaderValue::from_str(&text).ok())
            .unwrap_or(challenge);
        headers.append(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// `challenge` with `resource_metadata="url"` as its last parameter, when it is a `Bearer` or
/// `DPoP` challenge without one.
fn with_resource_metadata(challenge: &str, url: &str) -> Option<String> {
    let challenge = challenge.trim();
    let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
    let ours = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("dpop");
    if !ours || params.contains("resource_metadata=") || url.contains(['"', '\\']) {
        return None;
    }
    let params = params.trim();
    Some(match params.is_empty() {
        true => format!("{scheme} resource_metadata=\"{url}\""),
        false => format!("{scheme} {params}, resource_metadata=\"{url}\""),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_well_known_location_goes_between_host_and_path() {
        let api = ProtectedResource::new("https://id.example/api").unwrap();
        assert_eq!(
            api.metadata_url(),
            "https://id.example/.well-known/oauth-protected-resource/api"
        );
        let root = ProtectedResource::new("https://api.example:8443/").unwrap();
        assert_eq!(
            root.metadata_url(),
            "https://api.example:8443/.well-known/oauth-protected-resource"
        );
        assert!(ProtectedResource::new("https://api.example/?x=1").is_err());
        assert!(ProtectedResource::new("api.example").is_err());
    }

    #[test]
    fn challenges_name_the_metadata() {
        let url = "https://id.example/.well-known/oauth-protected-resource/api";
        assert_eq!(
            with_resource_metadata("Bearer realm=\"passport\"", url).unwrap(),
            format!("Bearer realm=\"passport\", resource_metadata=\"{url}\"")
        );
        assert_eq!(
            with_resource_metadata("DPoP", url).unwrap(),
            format!("DPoP resource_metadata=\"{url}\"")
        );
        assert_eq!(with_resource_metadata("Basic realm=\"OAuth\"", url), None);
    }
}
