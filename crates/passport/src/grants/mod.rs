//! The token endpoint's grants (RFC 6749 §4–6), one file each, dispatched by a table on
//! `grant_type`. A grant reads: authenticate the client → validate → finalize scopes → issue.

mod authorization_code;
mod client_credentials;
mod device_code;
mod password;
mod personal_access;
mod refresh_token;

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use crate::client::{Client, GrantType};
use crate::error::OAuthError;
use crate::events::Event;
use crate::passport::{Minted, Passport};
use crate::secret::verify_client_secret;

pub use personal_access::PersonalAccessToken;

/// Client credentials from an `Authorization: Basic` header (RFC 6749 §2.3.1).
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .finish()
    }
}

/// A token request, already parsed by the HTTP adapter: body parameters (trimmed; empty values
/// dropped; each at most once) and the Basic credentials, if any.
#[derive(Default, Clone)]
pub struct TokenRequest {
    params: HashMap<String, String>,
    basic: Option<BasicCredentials>,
}

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRequest")
            .field("grant_type", &self.param("grant_type"))
            .field("client_id", &self.param("client_id"))
            .finish_non_exhaustive()
    }
}

impl TokenRequest {
    /// A request from parameters and optional Basic credentials. Values are trimmed and empty
    /// ones dropped, as Passport 13 does.
    pub fn new(params: impl IntoIterator<Item = (String, String)>, basic: Option<BasicCredentials>) -> Self {
        let params = params
            .into_iter()
            .filter_map(|(k, v)| {
                let trimmed = v.trim();
                if trimmed.is_empty() {
                    None
                } else if trimmed.len() == v.len() {
                    Some((k, v))
                } else {
                    Some((k, trimmed.to_owned()))
                }
            })
            .collect();
        Self { params, basic }
    }

    /// A body parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// A required body parameter: `invalid_request` naming it when absent.
    pub fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.param(name).ok_or_else(|| OAuthError::invalid_parameter(name))
    }

    /// Whether the client sent an `Authorization: Basic` header.
    pub fn used_basic_auth(&self) -> bool {
        self.basic.is_some()
    }
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct TokenResponse {
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The JWT.
    pub access_token: String,
    /// The refresh token, when the grant and client allow one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The granted scopes, when they differ from the requested ones (RFC 6749 §5.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TokenResponse {
    pub(crate) fn from_minted(
        minted: &Minted,
        requested: Option<&[String]>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        let granted = &minted.access.scopes;
        let same = requested.is_some_and(|r| r.len() == granted.len() && r.iter().all(|s| granted.contains(s)));
        Self {
            token_type: "Bearer",
            expires_in: (minted.access.expires_at - now).num_seconds(),
            access_token: minted.jwt.clone(),
            refresh_token: minted.refresh.as_ref().map(|(value, _)| value.clone()),
            scope: (!same).then(|| granted.join(" ")),
        }
    }
}

/// The grants reachable over HTTP, by `grant_type`. A missing entry is
/// `unsupported_grant_type`; `personal_access` is deliberately absent.
const GRANTS: &[(&str, GrantType)] = &[
    ("authorization_code", GrantType::AuthorizationCode),
    ("client_credentials", GrantType::ClientCredentials),
    ("urn:ietf:params:oauth:grant-type:device_code", GrantType::DeviceCode),
    ("password", GrantType::Password),
    ("refresh_token", GrantType::RefreshToken),
];

impl Passport {
    /// Handles a token endpoint request. Errors are the RFC 6749 §5.2 set: `invalid_request`,
    /// `invalid_client`, `invalid_grant`, `unauthorized_client`, `unsupported_grant_type`,
    /// `invalid_scope`, and `server_error` for infrastructure failures.
    pub async fn issue_token(&self, request: &TokenRequest) -> Result<TokenResponse, OAuthError> {
        let grant_type = request.required("grant_type")?;
        let grant = GRANTS
            .iter()
            .find(|(name, _)| *name == grant_type)
            .map(|(_, g)| *g)
            .filter(|g| self.grant_enabled(*g))
            .ok_or_else(OAuthError::unsupported_grant_type)?;
        match grant {
            GrantType::AuthorizationCode => authorization_code::handle(self, request).await,
            GrantType::ClientCredentials => client_credentials::handle(self, request).await,
            GrantType::DeviceCode => device_code::handle(self, request).await,
            GrantType::Password => password::handle(self, request).await,
            GrantType::RefreshToken => refresh_token::handle(self, request).await,
            _ => Err(OAuthError::unsupported_grant_type()),
        }
    }

    /// Authenticates the client of a token request for `grant` (Passport 13 order): find the
    /// live client, check it may use the grant, then check the secret of confidential clients.
    /// Public clients' secrets are ignored.
    pub(crate) async fn authenticate_client(
        &self,
        request: &TokenRequest,
        grant: GrantType,
    ) -> Result<Client, OAuthError> {
        let basic = request.basic.as_ref();
        let client_id = request
            .param("client_id")
            .or(basic.map(|b| b.client_id.as_str()))
            .filter(|id| !id.is_empty())
            .ok_or_else(|| OAuthError::invalid_parameter("client_id"))?;
        let Some(client) = self.find_active_client(client_id).await? else {
            tracing::info!(client_id, "client authentication failed: unknown or revoked client");
            self.emit(Event::ClientAuthenticationFailed {
                client_id: client_id.to_owned(),
            });
            return Err(OAuthError::invalid_client());
        };
        if !client.supports_grant(grant) {
            return Err(OAuthError::unauthorized_client());
        }
        if let Some(stored) = client.secret_hash.as_deref().filter(|s| !s.is_empty()) {
            let secret = request
                .param("client_secret")
                .or(basic.map(|b| b.client_secret.as_str()))
                .filter(|s| !s.is_empty())
                .ok_or_else(|| OAuthError::invalid_parameter("client_secret"))?;
            if !verify_client_secret(stored, secret).await {
                tracing::info!(client_id, "client authentication failed: wrong secret");
                self.emit(Event::ClientAuthenticationFailed {
                    client_id: client_id.to_owned(),
                });
                return Err(OAuthError::invalid_client());
            }
        }
        Ok(client)
    }
}
