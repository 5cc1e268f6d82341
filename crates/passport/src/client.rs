//! OAuth clients: the grant types each may use (Passport 13 rules), confidential vs public,
//! first-party vs third-party, redirect URIs, and how new clients are made.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::OAuthError;
use crate::names::check_name;
use crate::redirect::{RedirectPolicy, RedirectUri};
use crate::scope::ScopeSet;

/// A grant type a client may be allowed to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum GrantType {
    /// RFC 6749 §4.1.
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    /// RFC 6749 §6.
    #[serde(rename = "refresh_token")]
    RefreshToken,
    /// RFC 6749 §4.3 (off unless enabled).
    #[serde(rename = "password")]
    Password,
    /// RFC 6749 §4.4.
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    /// RFC 6749 §4.2 (off unless enabled).
    #[serde(rename = "implicit")]
    Implicit,
    /// RFC 8628.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
    /// Passport's in-process personal access tokens; never reachable over HTTP.
    #[serde(rename = "personal_access")]
    PersonalAccess,
}

impl GrantType {
    /// Every grant type.
    pub const ALL: [GrantType; 7] = [
        Self::AuthorizationCode,
        Self::RefreshToken,
        Self::Password,
        Self::ClientCredentials,
        Self::Implicit,
        Self::DeviceCode,
        Self::PersonalAccess,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::Password => "password",
            Self::ClientCredentials => "client_credentials",
            Self::Implicit => "implicit",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
            Self::PersonalAccess => "personal_access",
        }
    }
}

impl FromStr for GrantType {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|g| g.as_str() == s).ok_or(())
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A client identifier: an opaque string (UUIDs here; Passport 11/12 databases hold integers).
/// Never parsed, only compared.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    /// Wraps an id.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a `String`.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::borrow::Borrow<str> for ClientId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ClientId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<String> for ClientId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for ClientId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl From<ClientId> for String {
    fn from(id: ClientId) -> Self {
        id.0
    }
}

impl PartialEq<str> for ClientId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ClientId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for ClientId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<ClientId> for String {
    fn eq(&self, other: &ClientId) -> bool {
        *self == other.0
    }
}

impl PartialEq<ClientId> for &str {
    fn eq(&self, other: &ClientId) -> bool {
        *self == other.0
    }
}

/// A registered client, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The client id (a UUID for clients made here).
    pub id: ClientId,
    /// The user who owns the client (third-party clients made through the JSON API); `None` for
    /// first-party clients made by an operator.
    pub owner_id: Option<String>,
    /// Display name, shown on consent pages.
    pub name: String,
    /// Hash of the secret (`sha256:…`, bcrypt `$2y$…` or argon2 `$argon2…`); `None` for public
    /// clients.
    pub secret_hash: Option<String>,
    /// The user provider whose users this client serves; `None` means the default provider.
    pub provider: Option<String>,
    /// Registered redirect URIs (matched by [`RedirectUri::matches`] and
    /// [`crate::check_exchange_redirect_uri`]).
    pub redirect_uris: Vec<RedirectUri>,
    /// Grants this client may use.
    pub grant_types: Vec<GrantType>,
    /// Scopes this client may hold; `None` means any defined scope.
    pub scopes: Option<ScopeSet>,
    /// Skip the consent page for this client (Passport's `skipsAuthorization`).
    pub skips_authorization: bool,
    /// Where RP-initiated logout may send the browser back to (OpenID Connect RP-Initiated
    /// Logout 1.0 `post_logout_redirect_uris`), matched exactly.
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// A resource server: may introspect tokens issued to other clients (RFC 7662 §4).
    pub can_introspect: bool,
    /// Authorization requests must be pushed first (RFC 9126 §6,
    /// `require_pushed_authorization_requests`).
    pub require_pushed_authorization_requests: bool,
    /// Access tokens are always DPoP-bound (RFC 9449 §5.2, `dpop_bound_access_tokens`).
    pub dpop_bound_access_tokens: bool,
    /// The JWK Set (JSON) a `private_key_jwt` client signs its assertions with (RFC 7523
    /// §2.2); such a client has no secret.
    pub jwks: Option<String>,
    /// The FAPI 2.0 Security Profile applies to this client (README: FAPI 2.0).
    pub fapi_profile: bool,
    /// Where a `private_key_jwt` client publishes its JWK Set (https), instead of `jwks`.
    pub jwks_uri: Option<String>,
    /// Revoked clients behave as if they did not exist.
    pub revoked: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Client {
    /// A confidential client has a secret.
    pub fn is_confidential(&self) -> bool {
        self.secret_hash.as_deref().is_some_and(|s| !s.is_empty()) || self.uses_private_key_jwt()
    }

    /// A first-party client has no owner (it was made by the operator).
    pub fn is_first_party(&self) -> bool {
        self.owner_id.as_deref().is_none_or(str::is_empty)
    }

    /// Whether the client may use `grant`.
    pub fn supports_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// The scopes this client is limited to, if any.
    pub fn allowed_scopes(&self) -> Option<&[String]> {
        self.scopes.as_deref()
    }

    /// How the client authenticates at the token endpoint, by its RFC 7591 name:
    /// `client_secret_basic` for confidential clients (which may also use
    /// `client_secret_post`), `none` for public ones.
    pub fn token_endpoint_auth_method(&self) -> &'static str {
        if self.uses_private_key_jwt() {
            "private_key_jwt"
        } else if self.is_confidential() {
            "client_secret_basic"
        } else {
            "none"
        }
    }

    /// Whether it authenticates with `private_key_jwt` (it has keys, inline or at a URI).
    pub fn uses_private_key_jwt(&self) -> bool {
        self.jwks.is_some() || self.jwks_uri.is_some()
    }

    /// Whether `uri` is one of the client's post-logout redirect URIs (exact match).
    pub fn allows_post_logout_redirect(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|r| r.as_str() == uri)
    }

    /// Whether this client's tokens belong to `provider` (a client without a provider belongs to
    /// the default one).
    pub fn belongs_to_provider(&self, provider: &str, default_provider: &str) -> bool {
        self.provider.as_deref().unwrap_or(default_provider) == provider
    }
}

/// The kinds of client `passport client` makes, each with its Passport 13 grant types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// Authorization code (+ refresh token), optionally with the device flow enabled.
    AuthorizationCode {
        /// Also allow the device authorization grant (Passport's `enableDeviceFlow`).
        device_flow: bool,
    },
    /// Password grant (+ refresh token).
    Password,
    /// Client credentials; always confidential.
    ClientCredentials,
    /// Implicit; always public.
    Implicit,
    /// Device authorization grant (+ refresh token).
    Device,
    /// Personal access tokens; always confidential.
    PersonalAccess,
}

impl ClientKind {
    /// The grant types a client of this kind gets.
    pub fn grant_types(self) -> Vec<GrantType> {
        match self {
            Self::AuthorizationCode { device_flow } => {
                let mut g = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
                if device_flow {
                    g.push(GrantType::DeviceCode);
                }
                g
            }
            Self::Password => vec![GrantType::Password, GrantType::RefreshToken],
            Self::ClientCredentials => vec![GrantType::ClientCredentials],
            Self::Implicit => vec![GrantType::Implicit],
            Self::Device => vec![GrantType::DeviceCode, GrantType::RefreshToken],
            Self::PersonalAccess => vec![GrantType::PersonalAccess],
        }
    }

    fn needs_redirect_uri(self) -> bool {
        matches!(self, Self::AuthorizationCode { .. } | Self::Implicit)
    }
}

/// What is needed to make a client.
#[derive(Debug, Clone)]
pub struct NewClient {
    /// Display name.
    pub name: String,
    /// Which grants it gets.
    pub kind: ClientKind,
    /// Redirect URIs (required for authorization code and implicit clients).
    pub redirect_uris: Vec<String>,
    /// User provider, for password and personal access clients.
    pub provider: Option<String>,
    /// Make a public client (no secret). Client-credentials and personal access clients cannot
    /// be public; implicit clients always are.
    pub public: bool,
    /// The owning user, for third-party clients.
    pub owner_id: Option<String>,
    /// Limit the scopes the client may hold.
    pub scopes: Option<ScopeSet>,
    /// Skip the consent screen.
    pub skips_authorization: bool,
    /// Post-logout redirect URIs (OpenID Connect RP-Initiated Logout).
    pub post_logout_redirect_uris: Vec<String>,
    /// Make it a resource server that may introspect other clients' tokens.
    pub can_introspect: bool,
    /// Require pushed authorization requests (RFC 9126 §6).
    pub require_pushed_authorization_requests: bool,
    /// Require DPoP-bound access tokens (RFC 9449 §5.2).
    pub dpop_bound_access_tokens: bool,
    /// Authenticate with `private_key_jwt` signed by a key of this JWK Set (JSON) instead of a
    /// secret (RFC 7523 §2.2).
    pub jwks: Option<String>,
    /// Apply the FAPI 2.0 Security Profile to this client.
    pub fapi_profile: bool,
    /// Authenticate with `private_key_jwt` signed by a key of the JWK Set published here
    /// (https) instead of a secret.
    pub jwks_uri: Option<String>,
}

/// A [`NewClient`] checked: what the client row gets.
pub(crate) struct ValidClient {
    pub(crate) name: String,
    pub(crate) redirect_uris: Vec<RedirectUri>,
    pub(crate) post_logout_redirect_uris: Vec<RedirectUri>,
    pub(crate) confidential: bool,
}

impl NewClient {
    /// A new client of `kind` named `name`, confidential unless the kind says otherwise.
    pub fn new(name: impl Into<String>, kind: ClientKind) -> Self {
        Self {
            name: name.into(),
            kind,
            redirect_uris: Vec::new(),
            provider: None,
            public: false,
            owner_id: None,
            scopes: None,
            skips_authorization: false,
            post_logout_redirect_uris: Vec::new(),
            can_introspect: false,
            require_pushed_authorization_requests: false,
            dpop_bound_access_tokens: false,
            jwks: None,
            fapi_profile: false,
            jwks_uri: None,
        }
    }

    /// Makes it a `private_key_jwt` client whose JWK Set is fetched from `uri` (https; fetched
    /// with the limits of [`crate::JwksFetcher`], cached five minutes).
    pub fn jwks_uri(mut self, uri: Option<String>) -> Self {
        self.jwks_uri = uri;
        self
    }

    /// Applies the FAPI 2.0 Security Profile to this client: it must be a `private_key_jwt`
    /// client of the authorization code grant.
    pub fn fapi_profile(mut self, on: bool) -> Self {
        self.fapi_profile = on;
        self
    }

    /// Makes it a `private_key_jwt` client with this JWK Set (JSON; public keys only): it gets
    /// no secret and authenticates with signed assertions (RFC 7523 §2.2).
    pub fn jwks(mut self, jwks: Option<String>) -> Self {
        self.jwks = jwks;
        self
    }

    /// Sets the post-logout redirect URIs.
    pub fn post_logout_redirect_uris(mut self, uris: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.post_logout_redirect_uris = uris.into_iter().map(Into::into).collect();
        self
    }

    /// Lets the client introspect other clients' tokens (a resource server).
    pub fn can_introspect(mut self, on: bool) -> Self {
        self.can_introspect = on;
        self
    }

    /// Requires pushed authorization requests (RFC 9126 §6).
    pub fn require_pushed_authorization_requests(mut self, on: bool) -> Self {
        self.require_pushed_authorization_requests = on;
        self
    }

    /// Requires DPoP-bound access tokens (RFC 9449 §5.2).
    pub fn dpop_bound_access_tokens(mut self, on: bool) -> Self {
        self.dpop_bound_access_tokens = on;
        self
    }

    /// Sets the redirect URIs.
    pub fn redirect_uris(mut self, uris: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.redirect_uris = uris.into_iter().map(Into::into).collect();
        self
    }

    /// Makes the client public.
    pub fn public(mut self, public: bool) -> Self {
        self.public = public;
        self
    }

    /// Binds the client to a user provider.
    pub fn provider(mut self, provider: Option<String>) -> Self {
        self.provider = provider;
        self
    }

    /// Skips the consent screen for this client (trusted first-party applications).
    pub fn skips_authorization(mut self, skip: bool) -> Self {
        self.skips_authorization = skip;
        self
    }

    /// Sets the owning user.
    pub fn owner(mut self, owner_id: Option<String>) -> Self {
        self.owner_id = owner_id;
        self
    }

    /// Checks the request: the trimmed name, the validated redirect URIs, and whether the
    /// client is confidential.
    pub(crate) fn validate(&self, policy: RedirectPolicy) -> Result<ValidClient, OAuthError> {
        let name = check_name(&self.name).map_err(name_error)?.to_owned();
        let redirect_uris = policy.parse_all(&self.redirect_uris)?;
        let post_logout_redirect_uris = policy.parse_all(&self.post_logout_redirect_uris)?;
        if let Some(uri) = &self.jwks_uri {
            let parsed =
                url::Url::parse(uri).map_err(|_| OAuthError::invalid_request("jwks_uri must be an absolute URL"))?;
            // Plain http only to a loopback address, for development (the HTTPS fetcher refuses
            // it unless told otherwise).
            let loopback = parsed.scheme() == "http"
                && parsed.host_str().is_some_and(|h| {
                    h.trim_matches(['[', ']'])
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
                });
            if !(parsed.scheme() == "https" || loopback) || parsed.host_str().is_none() || !parsed.username().is_empty()
            {
                return Err(OAuthError::invalid_request("jwks_uri must be an https URL"));
            }
            if self.jwks.is_some() {
                return Err(OAuthError::invalid_request("Give jwks or jwks_uri, not both"));
            }
        }
        if self.jwks_uri.is_some()
            && (self.public || matches!(self.kind, ClientKind::Implicit | ClientKind::PersonalAccess))
        {
            return Err(OAuthError::invalid_request(
                "A private_key_jwt client is confidential, and cannot be an implicit or personal access client",
            ));
        }
        if let Some(jwks) = &self.jwks {
            crate::client_assertion::parse_jwks(jwks).map_err(OAuthError::invalid_request)?;
            if self.public || matches!(self.kind, ClientKind::Implicit | ClientKind::PersonalAccess) {
                return Err(OAuthError::invalid_request(
                    "A private_key_jwt client is confidential, and cannot be an implicit or personal access client",
                ));
            }
        }
        if self.fapi_profile
            && ((self.jwks.is_none() && self.jwks_uri.is_none())
                || !matches!(self.kind, ClientKind::AuthorizationCode { device_flow: false }))
        {
            return Err(OAuthError::invalid_request(
                "A FAPI 2.0 client is an authorization code client (without the device flow) that authenticates with private_key_jwt (give it a JWK Set)",
            ));
        }
        if self.can_introspect && (self.public || self.kind == ClientKind::Implicit) {
            return Err(OAuthError::invalid_request(
                "Only confidential clients may introspect tokens",
            ));
        }
        if self.kind.needs_redirect_uri() && redirect_uris.is_empty() {
            return Err(OAuthError::invalid_request(
                "This kind of client needs at least one redirect URI",
            ));
        }
        let confidential = match self.kind {
            ClientKind::ClientCredentials | ClientKind::PersonalAccess if self.public => {
                return Err(OAuthError::invalid_request(
                    "Client credentials and personal access clients must be confidential",
                ));
            }
            ClientKind::Implicit => false,
            _ => !self.public,
        };
        Ok(ValidClient {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            confidential,
        })
    }
}

/// A client name error as the core reports it.
pub(crate) fn name_error(err: crate::names::NameError) -> OAuthError {
    use crate::names::NameError;
    OAuthError::invalid_request(match err {
        NameError::Empty => "The client name must not be empty",
        NameError::TooLong => "The client name must be at most 255 characters",
        _ => "The client name must not contain control characters",
    })
}
