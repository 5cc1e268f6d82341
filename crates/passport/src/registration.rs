//! Dynamic client registration (RFC 7591) and its management protocol (RFC 7592), under the
//! operator's policy: off (the default), open to anyone, or only with an initial access token
//! issued by `passport client registration-token`.
//!
//! What a registration may ask for is narrower than what the CLI can make: the authorization
//! code grant (with refresh tokens and, optionally, the device flow), the device flow alone,
//! or client credentials alone. The password and implicit grants are never self-registered
//! (RFC 9700 §2.4 and §2.1.2). Authentication methods: `client_secret_basic` (the default,
//! RFC 7591 §2), `client_secret_post`, `private_key_jwt` with the public keys inline as `jwks`
//! or at a `jwks_uri`, and `none` (a public client); `client_secret_jwt` never
//! (it needs the plain secret, and only its hash is stored).
//!
//! Every registered client gets a registration access token (RFC 7592 §3); only its SHA-256 is
//! kept, so reading the registration back never returns it, nor the client secret.

use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::client::{Client, ClientKind, GrantType, NewClient, name_error};
use crate::config::ConfigError;
use crate::error::{OAuthError, StoreError};
use crate::passport::Passport;
use crate::scope::ScopeSet;
use crate::secret::ClientSecret;

/// Who may register clients at `POST /{path}/register`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RegistrationPolicy {
    /// Nobody (the default): the endpoint is not served.
    #[default]
    Off,
    /// Anyone.
    Open,
    /// Whoever presents an initial access token (RFC 7591 §3: `Authorization: Bearer …`).
    InitialAccessToken,
}

impl FromStr for RegistrationPolicy {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "off" | "" | "false" => Ok(Self::Off),
            "open" => Ok(Self::Open),
            "token" | "initial_access_token" => Ok(Self::InitialAccessToken),
            _ => Err(ConfigError(format!(
                "client_registration: expected off, open or token, got {text:?}"
            ))),
        }
    }
}

/// Client metadata of a registration request (RFC 7591 §2). Members we do not understand are
/// ignored, as §2 requires.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ClientMetadata {
    /// Redirect URIs, checked by the same rules as the CLI's.
    pub redirect_uris: Vec<String>,
    /// `client_secret_basic` (default), `client_secret_post` or `none`.
    pub token_endpoint_auth_method: Option<String>,
    /// Default `["authorization_code"]`.
    pub grant_types: Option<Vec<String>>,
    /// Default `["code"]` with the authorization code grant, else none.
    pub response_types: Option<Vec<String>>,
    /// Shown on the consent page.
    pub client_name: Option<String>,
    /// Space-separated scopes the client may hold (all by default).
    pub scope: Option<String>,
    /// OpenID Connect RP-Initiated Logout.
    pub post_logout_redirect_uris: Vec<String>,
    /// The public keys of a `private_key_jwt` client (a JWK Set).
    pub jwks: Option<serde_json::Value>,
    /// Where to fetch them instead (https; fetched within limits, cached).
    pub jwks_uri: Option<String>,
    /// RFC 9449 §5.2.
    pub dpop_bound_access_tokens: bool,
    /// RFC 9126 §6.
    pub require_pushed_authorization_requests: bool,
    /// RFC 7592 §2.2: a PUT names the client it updates.
    pub client_id: Option<String>,
}

/// Why a registration request was refused (RFC 7591 §3.2.2, RFC 7592 §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationError {
    /// Registration is off: the endpoint does not exist (404).
    Disabled,
    /// The initial or registration access token is missing, wrong or expired, or names no
    /// live client (401 `invalid_token`).
    InvalidToken,
    /// `invalid_redirect_uri` (400).
    InvalidRedirectUri(String),
    /// `invalid_client_metadata` (400).
    InvalidMetadata(String),
    /// Anything else (the OAuth error's own status: 503 when storage is down, 500).
    Server(OAuthError),
}

impl RegistrationError {
    /// The HTTP status.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Disabled => 404,
            Self::InvalidToken => 401,
            Self::InvalidRedirectUri(_) | Self::InvalidMetadata(_) => 400,
            Self::Server(err) => err.http_status(),
        }
    }

    /// The `error` code.
    pub fn code(&self) -> &str {
        match self {
            Self::Disabled => "not_found",
            Self::InvalidToken => "invalid_token",
            Self::InvalidRedirectUri(_) => "invalid_redirect_uri",
            Self::InvalidMetadata(_) => "invalid_client_metadata",
            Self::Server(err) => err.code().as_str(),
        }
    }

    /// The `error_description`.
    pub fn description(&self) -> String {
        match self {
            Self::Disabled => "Client registration is not enabled.".to_owned(),
            Self::InvalidToken => "The access token is missing, invalid or expired.".to_owned(),
            Self::InvalidRedirectUri(text) | Self::InvalidMetadata(text) => text.clone(),
            Self::Server(err) => err.description().to_owned(),
        }
    }
}

impl From<OAuthError> for RegistrationError {
    fn from(err: OAuthError) -> Self {
        Self::Server(err)
    }
}

impl From<StoreError> for RegistrationError {
    fn from(err: StoreError) -> Self {
        Self::Server(err.into())
    }
}

fn invalid(text: impl Into<String>) -> RegistrationError {
    RegistrationError::InvalidMetadata(text.into())
}

/// A new registration: the client, its secret (shown once) and its registration access token
/// (shown once).
#[derive(Debug)]
pub struct Registered {
    /// The client.
    pub client: Client,
    /// Its secret, for a confidential client.
    pub secret: Option<ClientSecret>,
    /// The token that reads, updates and deletes the registration (RFC 7592).
    pub registration_access_token: String,
    /// `token_endpoint_auth_method` as registered.
    pub auth_method: String,
}

/// The stored form of an initial or registration access token.
fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// How the token endpoint authenticates a registered client. `client_secret_basic` and
/// `client_secret_post` are both accepted by the token endpoint for every confidential client.
fn auth_method(metadata: &ClientMetadata) -> Result<&str, RegistrationError> {
    let method = match metadata.token_endpoint_auth_method.as_deref() {
        None => "client_secret_basic",
        Some(m @ ("client_secret_basic" | "client_secret_post" | "none" | "private_key_jwt")) => m,
        Some(other) => {
            return Err(invalid(format!(
                "token_endpoint_auth_method {other:?} is not supported: use client_secret_basic, client_secret_post, private_key_jwt or none"
            )));
        }
    };
    match (method, metadata.jwks.is_some(), metadata.jwks_uri.is_some()) {
        ("private_key_jwt", true, true) => Err(invalid("give jwks or jwks_uri, not both (RFC 7591 §2)")),
        ("private_key_jwt", false, false) => Err(invalid(
            "private_key_jwt needs the client's public keys: jwks or jwks_uri",
        )),
        ("private_key_jwt", _, _) | (_, false, false) => Ok(method),
        _ => Err(invalid("jwks and jwks_uri are for private_key_jwt")),
    }
}

/// The client kind a registration's grant types and response types describe.
fn kind(metadata: &ClientMetadata) -> Result<ClientKind, RegistrationError> {
    let default = ["authorization_code".to_owned()];
    let grants = metadata.grant_types.as_deref().unwrap_or(&default);
    let mut parsed = Vec::new();
    for name in grants {
        let grant: GrantType = name
            .parse()
            .map_err(|()| invalid(format!("unknown grant type {name:?}")))?;
        match grant {
            GrantType::Password | GrantType::Implicit | GrantType::PersonalAccess => {
                return Err(invalid(format!("the {name} grant cannot be registered")));
            }
            _ => parsed.push(grant),
        }
    }
    let has = |g: GrantType| parsed.contains(&g);
    let kind = if has(GrantType::AuthorizationCode) {
        if has(GrantType::ClientCredentials) {
            return Err(invalid("client_credentials cannot be combined with other grants"));
        }
        ClientKind::AuthorizationCode {
            device_flow: has(GrantType::DeviceCode),
        }
    } else if has(GrantType::DeviceCode) {
        if has(GrantType::ClientCredentials) {
            return Err(invalid("client_credentials cannot be combined with other grants"));
        }
        ClientKind::Device
    } else if has(GrantType::ClientCredentials) {
        if parsed.len() > 1 {
            return Err(invalid("client_credentials cannot be combined with other grants"));
        }
        ClientKind::ClientCredentials
    } else {
        return Err(invalid(
            "grant_types must include authorization_code, urn:ietf:params:oauth:grant-type:device_code or client_credentials",
        ));
    };
    // RFC 7591 §2.1: response types and grant types must agree.
    let code = matches!(kind, ClientKind::AuthorizationCode { .. });
    match metadata.response_types.as_deref() {
        None => {}
        Some(types) if code && types.iter().all(|t| t == "code") && !types.is_empty() => {}
        Some([]) if !code => {}
        Some(types) => {
            return Err(invalid(format!(
                "response_types {types:?} do not match the grant types (only \"code\", with authorization_code)"
            )));
        }
    }
    Ok(kind)
}

impl Passport {
    /// Issues an initial access token for `client_registration = "token"`, valid for `ttl`;
    /// only its hash is stored. Returns the token and when it expires.
    pub async fn issue_initial_access_token(&self, ttl: TimeDelta) -> Result<(String, DateTime<Utc>), OAuthError> {
        let token = crate::random::random_hex(32)?;
        let now = self.now();
        let expires = now + ttl;
        self.store()
            .insert_initial_access_token(&token_hash(&token), now, expires)
            .await?;
        Ok((token, expires))
    }

    /// Registers a client (RFC 7591 §3.1) under the configured policy; `initial` is the
    /// bearer token of the request, if any.
    pub async fn register_client(
        &self,
        initial: Option<&str>,
        metadata: ClientMetadata,
    ) -> Result<Registered, RegistrationError> {
        match self.settings().client_registration {
            RegistrationPolicy::Off => return Err(RegistrationError::Disabled),
            RegistrationPolicy::Open => {}
            RegistrationPolicy::InitialAccessToken => {
                let token = initial.ok_or(RegistrationError::InvalidToken)?;
                if !self
                    .store()
                    .initial_access_token_valid(&token_hash(token), self.now())
                    .await?
                {
                    return Err(RegistrationError::InvalidToken);
                }
            }
        }
        let method = auth_method(&metadata)?.to_owned();
        let kind = kind(&metadata)?;
        let fapi = self.settings().fapi_profile;
        if fapi && (method != "private_key_jwt" || kind != (ClientKind::AuthorizationCode { device_flow: false })) {
            return Err(invalid(
                "the FAPI 2.0 profile admits authorization code clients with private_key_jwt only",
            ));
        }
        let public = method == "none";
        if public && kind == ClientKind::ClientCredentials {
            return Err(invalid("a client_credentials client must authenticate"));
        }
        // Open registration is for clients people sign in to, whose tokens need their
        // consent; a machine client there would hold every scope nobody granted.
        if self.settings().client_registration == RegistrationPolicy::Open && kind == ClientKind::ClientCredentials {
            return Err(invalid(
                "client_credentials clients are registered with an initial access token only",
            ));
        }
        // A registered client always has a scope list: the one it asks for, else every
        // defined scope; never the wildcard, which only the operator's clients may hold.
        let scopes = match metadata.scope.as_deref() {
            None => self.scopes().scope_ids().into_iter().collect::<ScopeSet>(),
            Some(text) => {
                let set = ScopeSet::parse(Some(text));
                if let Some(unknown) = set
                    .to_param()
                    .split(' ')
                    .find(|s| *s == crate::scope::WILDCARD || !self.scopes().has_scope(s))
                {
                    return Err(invalid(format!("scope {unknown:?} cannot be registered")));
                }
                set
            }
        };
        let mut new = NewClient::new(
            metadata
                .client_name
                .clone()
                .unwrap_or_else(|| "Registered client".to_owned()),
            kind,
        )
        .redirect_uris(metadata.redirect_uris.clone())
        .post_logout_redirect_uris(metadata.post_logout_redirect_uris.clone())
        .public(public)
        .jwks(metadata.jwks.as_ref().map(serde_json::Value::to_string))
        .jwks_uri(metadata.jwks_uri.clone())
        .dpop_bound_access_tokens(metadata.dpop_bound_access_tokens)
        .require_pushed_authorization_requests(metadata.require_pushed_authorization_requests);
        new.scopes = Some(scopes);
        let (client, secret) = self.create_client(new).await.map_err(|err| {
            let hint = err.hint().unwrap_or(err.description()).to_owned();
            if hint.to_ascii_lowercase().contains("redirect") {
                RegistrationError::InvalidRedirectUri(hint)
            } else if err.code() == crate::ErrorCode::InvalidRequest {
                RegistrationError::InvalidMetadata(hint)
            } else {
                RegistrationError::Server(err)
            }
        })?;
        let registration_access_token = crate::random::random_hex(32)?;
        if let Err(err) = self
            .store()
            .set_client_registration(client.id.as_str(), &token_hash(&registration_access_token))
            .await
        {
            // A client nobody can manage must not stay behind.
            self.revoke_client(client.id.as_str()).await?;
            return Err(err.into());
        }
        Ok(Registered {
            client,
            secret,
            registration_access_token,
            auth_method: method,
        })
    }

    /// The registered client `client_id`, when `token` is its registration access token
    /// (RFC 7592 §2.1); `InvalidToken` otherwise, whatever the reason.
    pub async fn read_registration(&self, client_id: &str, token: Option<&str>) -> Result<Client, RegistrationError> {
        if self.settings().client_registration == RegistrationPolicy::Off {
            return Err(RegistrationError::Disabled);
        }
        let token = token.ok_or(RegistrationError::InvalidToken)?;
        let stored = self.store().client_registration(client_id).await?;
        let presented = token_hash(token);
        let matches = stored.is_some_and(|s| bool::from(s.as_bytes().ct_eq(presented.as_bytes())));
        if !matches {
            return Err(RegistrationError::InvalidToken);
        }
        self.find_active_client(client_id)
            .await?
            .ok_or(RegistrationError::InvalidToken)
    }

    /// Updates a registration (RFC 7592 §2.2): the name, the redirect URIs and the
    /// post-logout redirect URIs may change; every other member must be absent or unchanged.
    pub async fn update_registration(
        &self,
        client_id: &str,
        token: Option<&str>,
        metadata: ClientMetadata,
    ) -> Result<Client, RegistrationError> {
        let client = self.read_registration(client_id, token).await?;
        if metadata.client_id.as_deref() != Some(client_id) {
            return Err(invalid("client_id must name the client being updated (RFC 7592 §2.2)"));
        }
        let method = auth_method(&metadata)?;
        let current_method = if client.is_confidential() {
            // Both secret methods are accepted by the token endpoint: either may be named.
            if method == "none" { "none" } else { method }
        } else {
            "none"
        };
        if metadata.token_endpoint_auth_method.is_some() && method != current_method {
            return Err(invalid("token_endpoint_auth_method cannot change"));
        }
        if metadata.grant_types.is_some() {
            let kind = kind(&metadata)?;
            if kind.grant_types() != client.grant_types {
                return Err(invalid("grant_types cannot change"));
            }
        }
        let keys_changed = match (&metadata.jwks, &client.jwks) {
            (None, _) => false,
            (Some(new), Some(old)) => serde_json::from_str::<serde_json::Value>(old).ok().as_ref() != Some(new),
            (Some(_), None) => true,
        } || metadata
            .jwks_uri
            .as_ref()
            .is_some_and(|uri| client.jwks_uri.as_ref() != Some(uri));
        let scope_changed = metadata.scope.as_deref().is_some_and(|s| {
            let asked = ScopeSet::parse(Some(s));
            !client.scopes.as_ref().is_some_and(|held| held.same_scopes(&asked))
        });
        if keys_changed || scope_changed {
            return Err(invalid(
                "jwks, jwks_uri and scope cannot change: register a new client (and delete this one)",
            ));
        }
        if metadata.dpop_bound_access_tokens != client.dpop_bound_access_tokens
            || metadata.require_pushed_authorization_requests != client.require_pushed_authorization_requests
        {
            return Err(invalid(
                "dpop_bound_access_tokens and require_pushed_authorization_requests cannot change",
            ));
        }
        let name = metadata.client_name.as_deref().unwrap_or(&client.name);
        let policy = self.settings().redirect_policy;
        let uris = policy
            .parse_all(&metadata.redirect_uris)
            .map_err(|e| RegistrationError::InvalidRedirectUri(e.hint().unwrap_or(e.description()).to_owned()))?;
        if uris.is_empty() && !client.redirect_uris.is_empty() {
            return Err(RegistrationError::InvalidRedirectUri(
                "redirect_uris cannot become empty".to_owned(),
            ));
        }
        let post_logout = policy
            .parse_all(&metadata.post_logout_redirect_uris)
            .map_err(|e| RegistrationError::InvalidRedirectUri(e.hint().unwrap_or(e.description()).to_owned()))?;
        let name =
            crate::names::check_name(name).map_err(|e| invalid(name_error(e).hint().unwrap_or_default().to_owned()))?;
        self.store()
            .update_client(client_id, name, &uris, &post_logout, self.now())
            .await?;
        self.forget_client_row(client_id);
        self.find_active_client(client_id)
            .await?
            .ok_or(RegistrationError::InvalidToken)
    }

    /// Deletes a registration (RFC 7592 §2.3): the client is revoked with all its tokens.
    pub async fn delete_registration(&self, client_id: &str, token: Option<&str>) -> Result<(), RegistrationError> {
        self.read_registration(client_id, token).await?;
        self.revoke_client(client_id).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(grants: &[&str], responses: Option<&[&str]>) -> ClientMetadata {
        ClientMetadata {
            grant_types: Some(grants.iter().map(|g| (*g).to_owned()).collect()),
            response_types: responses.map(|r| r.iter().map(|t| (*t).to_owned()).collect()),
            ..ClientMetadata::default()
        }
    }

    #[test]
    fn grant_and_response_types_must_describe_one_kind() {
        assert_eq!(
            kind(&ClientMetadata::default()).unwrap(),
            ClientKind::AuthorizationCode { device_flow: false }
        );
        assert_eq!(
            kind(&metadata(&["client_credentials"], None)).unwrap(),
            ClientKind::ClientCredentials
        );
        assert_eq!(
            kind(&metadata(
                &[
                    "authorization_code",
                    "refresh_token",
                    "urn:ietf:params:oauth:grant-type:device_code"
                ],
                Some(&["code"])
            ))
            .unwrap(),
            ClientKind::AuthorizationCode { device_flow: true }
        );
        for refused in [
            metadata(&["password"], None),
            metadata(&["implicit"], None),
            metadata(&["client_credentials", "authorization_code"], None),
            metadata(&["refresh_token"], None),
            metadata(&["authorization_code"], Some(&["token"])),
            metadata(&["client_credentials"], Some(&["code"])),
            metadata(&["nonsense"], None),
        ] {
            assert!(
                matches!(kind(&refused), Err(RegistrationError::InvalidMetadata(_))),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn private_key_jwt_needs_keys_inline_or_at_a_uri() {
        let refused = |metadata: ClientMetadata| {
            assert!(
                matches!(auth_method(&metadata), Err(RegistrationError::InvalidMetadata(_))),
                "{metadata:?}"
            );
        };
        refused(ClientMetadata {
            jwks_uri: Some("https://client.example/jwks".to_owned()),
            ..ClientMetadata::default()
        });
        refused(ClientMetadata {
            jwks_uri: Some("https://client.example/jwks".to_owned()),
            jwks: Some(serde_json::json!({"keys": []})),
            token_endpoint_auth_method: Some("private_key_jwt".to_owned()),
            ..ClientMetadata::default()
        });
        refused(ClientMetadata {
            token_endpoint_auth_method: Some("private_key_jwt".to_owned()),
            ..ClientMetadata::default()
        });
        refused(ClientMetadata {
            jwks: Some(serde_json::json!({"keys": []})),
            ..ClientMetadata::default()
        });
        refused(ClientMetadata {
            token_endpoint_auth_method: Some("client_secret_jwt".to_owned()),
            ..ClientMetadata::default()
        });
        assert_eq!(auth_method(&ClientMetadata::default()).unwrap(), "client_secret_basic");
        let with_keys = ClientMetadata {
            token_endpoint_auth_method: Some("private_key_jwt".to_owned()),
            jwks: Some(serde_json::json!({"keys": []})),
            ..ClientMetadata::default()
        };
        assert_eq!(auth_method(&with_keys).unwrap(), "private_key_jwt");
    }

    #[test]
    fn policies_parse() {
        assert_eq!("open".parse::<RegistrationPolicy>().unwrap(), RegistrationPolicy::Open);
        assert_eq!(
            "token".parse::<RegistrationPolicy>().unwrap(),
            RegistrationPolicy::InitialAccessToken
        );
        assert_eq!("off".parse::<RegistrationPolicy>().unwrap(), RegistrationPolicy::Off);
        assert!("maybe".parse::<RegistrationPolicy>().is_err());
    }
}
