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
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use serde::Serialize;

use crate::client::{Client, GrantType};
use crate::error::OAuthError;
use crate::events::Event;
use crate::passport::{Minted, Passport};
use crate::scope::ScopeSet;

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
    peer: Option<IpAddr>,
    dpop: Option<String>,
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
        Self {
            params,
            basic,
            peer: None,
            dpop: None,
        }
    }

    /// The value of the request's `DPoP` header (RFC 9449 §4), if it had one.
    pub fn with_dpop_proof(mut self, proof: Option<String>) -> Self {
        self.dpop = proof;
        self
    }

    /// The request's DPoP proof, if any.
    pub fn dpop_proof(&self) -> Option<&str> {
        self.dpop.as_deref()
    }

    /// The caller's address (IPv6 by its /64), which the failure limits key on. Without one,
    /// they do not apply.
    pub fn from_address(mut self, peer: Option<IpAddr>) -> Self {
        self.peer = peer;
        self
    }

    /// The caller's address, if known.
    pub fn peer(&self) -> Option<IpAddr> {
        self.peer
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
    /// `Bearer`, or `DPoP` for a token bound to the proof's key (RFC 9449 §5).
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
    /// The id_token, when `openid` was granted by an OpenID Connect authentication request
    /// (Core §3.1.3.3, §12.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
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
    /// The response for freshly minted tokens; `scope` is named when the granted scopes differ
    /// from `requested` (RFC 6749 §5.1). `expires_in` is the lifetime from the minting instant,
    /// not from the answer's (a commit that crosses a second boundary must not say 3599).
    pub(crate) fn from_minted(minted: &Minted, requested: &ScopeSet) -> Self {
        let granted = &minted.access.scopes;
        Self {
            token_type: if minted.jkt.is_some() { "DPoP" } else { "Bearer" },
            expires_in: (minted.access.expires_at - minted.access.created_at).num_seconds(),
            access_token: minted.jwt.clone(),
            refresh_token: minted.refresh.as_ref().map(|(value, _)| value.clone()),
            scope: (!granted.same_scopes(requested)).then(|| granted.to_param()),
            id_token: None,
        }
    }
}

/// Client credentials as a request presents them (RFC 6749 §2.3.1): the `client_id` and
/// `client_secret` body parameters, or HTTP Basic; or a signed assertion (RFC 7523 §2.2,
/// `private_key_jwt`), which may name the client by its `sub` alone.
#[derive(Clone)]
pub struct ClientCredentials<'a> {
    /// The claimed client id.
    pub client_id: std::borrow::Cow<'a, str>,
    /// The secret, if one was sent.
    pub client_secret: Option<&'a str>,
    /// The `client_assertion` (its type checked: `jwt-bearer`), if one was sent.
    pub client_assertion: Option<&'a str>,
}

impl fmt::Debug for ClientCredentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.map(|_| "[redacted]"))
            .field("client_assertion", &self.client_assertion.map(|_| "[redacted]"))
            .finish()
    }
}

impl TokenRequest {
    /// The client credentials of the request (body first, then Basic). `invalid_request` naming
    /// `client_id` when there is none.
    pub fn client_credentials(&self) -> Result<ClientCredentials<'_>, OAuthError> {
        let basic = self.basic.as_ref();
        let client_assertion = match (self.param("client_assertion_type"), self.param("client_assertion")) {
            (None, None) => None,
            (Some(crate::client_assertion::JWT_BEARER), Some(assertion)) if !assertion.is_empty() => Some(assertion),
            (Some(crate::client_assertion::JWT_BEARER), _) => {
                return Err(OAuthError::invalid_parameter("client_assertion"));
            }
            _ => return Err(OAuthError::invalid_parameter("client_assertion_type")),
        };
        let client_secret = self
            .param("client_secret")
            .or(basic.map(|b| b.client_secret.as_str()))
            .filter(|s| !s.is_empty());
        if client_assertion.is_some() && (client_secret.is_some() || basic.is_some()) {
            // RFC 6749 §2.3: one authentication method per request.
            return Err(OAuthError::invalid_request(
                "Use one client authentication method: a secret or an assertion",
            ));
        }
        let client_id = self
            .param("client_id")
            .or(basic.map(|b| b.client_id.as_str()))
            .filter(|id| !id.is_empty())
            .map(std::borrow::Cow::Borrowed)
            .or_else(|| {
                client_assertion
                    .and_then(crate::client_assertion::claimed_client)
                    .map(std::borrow::Cow::Owned)
            })
            .ok_or_else(|| OAuthError::invalid_parameter("client_id"))?;
        Ok(ClientCredentials {
            client_id,
            client_secret,
            client_assertion,
        })
    }
}

type GrantFuture<'a> = Pin<Box<dyn Future<Output = Result<TokenResponse, OAuthError>> + Send + 'a>>;

/// One grant of the token endpoint: its `grant_type` name, its type, and its handler.
struct Grant {
    name: &'static str,
    grant: GrantType,
    handle: for<'a> fn(&'a Passport, &'a TokenRequest) -> GrantFuture<'a>,
}

/// The grants reachable over HTTP, by `grant_type`. A missing entry is
/// `unsupported_grant_type`; `personal_access` is deliberately absent.
const GRANTS: &[Grant] = &[
    Grant {
        name: "authorization_code",
        grant: GrantType::AuthorizationCode,
        handle: |p, r| Box::pin(authorization_code::handle(p, r)),
    },
    Grant {
        name: "client_credentials",
        grant: GrantType::ClientCredentials,
        handle: |p, r| Box::pin(client_credentials::handle(p, r)),
    },
    Grant {
        name: "urn:ietf:params:oauth:grant-type:device_code",
        grant: GrantType::DeviceCode,
        handle: |p, r| Box::pin(device_code::handle(p, r)),
    },
    Grant {
        name: "password",
        grant: GrantType::Password,
        handle: |p, r| Box::pin(password::handle(p, r)),
    },
    Grant {
        name: "refresh_token",
        grant: GrantType::RefreshToken,
        handle: |p, r| Box::pin(refresh_token::handle(p, r)),
    },
];

impl Passport {
    /// Handles a token endpoint request. Errors are the RFC 6749 §5.2 set: `invalid_request`,
    /// `invalid_client`, `invalid_grant`, `unauthorized_client`, `unsupported_grant_type`,
    /// `invalid_scope`, and `server_error` for infrastructure failures.
    pub async fn issue_token(&self, request: &TokenRequest) -> Result<TokenResponse, OAuthError> {
        let issued = self.dispatch(request).await;
        if let Err(err) = &issued {
            self.metrics().token_error(err.code());
        }
        match &self.settings().laravel {
            Some(compat) if compat.version() == crate::laravel::PassportVersion::V12 => {
                issued.map_err(OAuthError::in_passport12_format)
            }
            _ => issued,
        }
    }

    async fn dispatch(&self, request: &TokenRequest) -> Result<TokenResponse, OAuthError> {
        let grant_type = request.required("grant_type")?;
        let grant = GRANTS
            .iter()
            .find(|g| g.name == grant_type && self.grant_enabled(g.grant))
            .ok_or_else(OAuthError::unsupported_grant_type)?;
        (grant.handle)(self, request).await
    }

    /// Authenticates a client (RFC 6749 §2.3): it must exist and be live, and a confidential
    /// client must present its secret. A public client's secret is ignored. Errors:
    /// `temporarily_unavailable` when this client (or `address`) failed too often
    /// ([`crate::FailureLimitSettings`]; checked first, so nothing else is learned),
    /// `invalid_request` (no `client_id`; a confidential client without a secret) and
    /// `invalid_client` (unknown or revoked client, wrong secret), which counts as a failure
    /// and emits `ClientAuthenticationFailed`.
    pub async fn authenticate_client(
        &self,
        credentials: &ClientCredentials<'_>,
        address: Option<IpAddr>,
    ) -> Result<Client, OAuthError> {
        let client_id: &str = &credentials.client_id;
        self.limits().check_client(client_id, address)?;
        let failed = async || {
            self.limits()
                .client_failed(self.store().as_ref(), client_id, address)
                .await;
            self.emit(Event::ClientAuthenticationFailed {
                client_id: client_id.to_owned(),
            });
            OAuthError::invalid_client()
        };
        let cache = self.token_cache().clients();
        let mut cached = cache.and_then(|c| c.get(client_id));
        if cache.is_some() {
            self.metrics()
                .cache_lookup(crate::metrics::Cache::Client, cached.is_some());
        }
        let mut refused: Option<String> = None;
        loop {
            let from_cache = cached.is_some();
            let client = match cached.take() {
                Some(client) => client,
                None => {
                    let epoch = cache.map(|c| c.epoch());
                    let Some(client) = self.find_active_client(client_id).await? else {
                        tracing::info!(client_id, "client authentication failed: unknown or revoked client");
                        return Err(failed().await);
                    };
                    if let (Some(cache), Some(epoch)) = (cache, epoch) {
                        cache.insert(&client, epoch);
                    }
                    client
                }
            };
            if client.uses_private_key_jwt() {
                // A private_key_jwt client proves itself with an assertion, nothing else.
                let Some(assertion) = credentials.client_assertion else {
                    tracing::info!(
                        client_id,
                        "client authentication failed: private_key_jwt client without an assertion"
                    );
                    return Err(failed().await);
                };
                return match self.verify_assertion_of(&client, assertion).await {
                    Ok(()) => Ok(client),
                    Err(err) => {
                        tracing::info!(client_id, reason = %err, "client authentication failed: assertion refused");
                        Err(failed().await)
                    }
                };
            }
            if credentials.client_assertion.is_some() {
                tracing::info!(
                    client_id,
                    "client authentication failed: an assertion for a client without keys"
                );
                return Err(failed().await);
            }
            if self.fapi_applies(&client) {
                // FAPI 2.0 §5.3.2.1: private_key_jwt (or mTLS, which we do not offer) only.
                tracing::info!(
                    client_id,
                    "client authentication failed: the FAPI 2.0 profile takes private_key_jwt only"
                );
                return Err(failed().await);
            }
            let Some(stored) = client.secret_hash.as_deref().filter(|s| !s.is_empty()) else {
                return Ok(client);
            };
            let secret = credentials
                .client_secret
                .ok_or_else(|| OAuthError::invalid_parameter("client_secret"))?;
            // bcrypt and argon2 take the hasher's permits, and a success is remembered briefly;
            // plaintext secrets match only when the settings accept them. The row read again
            // below with the very secret just refused is not checked twice.
            let checked_before = refused.as_deref() == Some(stored);
            if !checked_before && self.client_secrets().verify(client_id, stored, secret).await {
                return Ok(client);
            }
            if from_cache {
                // The secret may have changed since the row was cached (another instance or
                // the CLI rotated or rehashed it): check once more against the stored row.
                if let Some(cache) = cache {
                    cache.forget(client_id);
                }
                refused = Some(stored.to_owned());
                continue;
            }
            tracing::info!(client_id, "client authentication failed: wrong secret");
            return Err(failed().await);
        }
    }

    /// The payload of a Laravel Passport refresh token or code (`value`), decrypted with the
    /// `APP_KEY`; `None` when it does not decrypt, which counts as a failed authentication of
    /// `client_id` (each attempt costs a PBKDF2). Runs as a task of its own: a cancelled
    /// request neither frees the CPU budget early nor skips the count.
    pub(crate) async fn laravel_payload<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        compat: &crate::laravel::LaravelCompat,
        value: &str,
        client_id: &str,
        peer: Option<IpAddr>,
    ) -> Option<T> {
        let (passport, compat) = (self.clone(), compat.clone());
        let (value, client_id) = (value.to_owned(), client_id.to_owned());
        tokio::spawn(async move {
            let payload = compat.decrypt::<T>(passport.hasher(), &value).await;
            if payload.is_none() {
                passport
                    .limits()
                    .client_failed(passport.store().as_ref(), &client_id, peer)
                    .await;
            }
            payload
        })
        .await
        .ok()
        .flatten()
    }

    /// The DPoP key the tokens of this request are bound to (RFC 9449 §5): the thumbprint of
    /// the request's valid proof, `None` without one. Errors: `invalid_dpop_proof` when the
    /// proof is invalid, or missing for a client with `dpop_bound_access_tokens` (§5.2);
    /// `use_dpop_nonce` (§8); `temporarily_unavailable` when the proof cannot be recorded.
    pub(crate) async fn dpop_binding(
        &self,
        request: &TokenRequest,
        client: &Client,
    ) -> Result<Option<String>, OAuthError> {
        let Some(proof) = request.dpop_proof() else {
            // FAPI 2.0 §5.3.2.1: sender-constrained tokens; DPoP is the method offered here.
            if client.dpop_bound_access_tokens || self.fapi_applies(client) {
                return Err(OAuthError::invalid_dpop_proof(
                    "This client must present a DPoP proof (RFC 9449 §5.2)",
                ));
            }
            return Ok(None);
        };
        let uri = self
            .token_endpoint_uri()
            .ok_or_else(|| OAuthError::invalid_dpop_proof("DPoP proofs need the server's issuer to be configured"))?;
        let check = crate::dpop::DpopCheck {
            proof,
            method: "POST",
            uri: &uri,
            access_token: None,
        };
        match self.check_dpop_proof(check).await {
            Ok(verified) => Ok(Some(verified.jkt)),
            Err(refused) => {
                tracing::debug!(reason = %refused, "DPoP proof refused at the token endpoint");
                Err(refused.to_oauth())
            }
        }
    }

    /// The token request's client, authenticated, and allowed `grant` (`unauthorized_client`
    /// otherwise).
    pub(crate) async fn client_for_grant(
        &self,
        request: &TokenRequest,
        grant: GrantType,
    ) -> Result<Client, OAuthError> {
        let client = self
            .authenticate_client(&request.client_credentials()?, request.peer)
            .await?;
        if !client.supports_grant(grant) {
            return Err(OAuthError::unauthorized_client());
        }
        // FAPI 2.0: the code flow (and client credentials); no password, implicit or device
        // grant, which would skip PAR and PKCE.
        if self.fapi_applies(&client)
            && matches!(grant, GrantType::Password | GrantType::Implicit | GrantType::DeviceCode)
        {
            return Err(OAuthError::unauthorized_client());
        }
        Ok(client)
    }
}
