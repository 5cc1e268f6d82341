//! Pushed authorization requests (RFC 9126): a client posts the parameters of an authorization
//! request straight to the server (`POST /oauth/par`, authenticated as at the token endpoint)
//! and sends the browser to the authorize endpoint with only `client_id` and the `request_uri`
//! it got back, so nothing in the browser can read or change the request.
//!
//! * A push (§2.1) is validated as the authorize endpoint would validate the request; the
//!   answer (§2.2) names a single-use `request_uri` bound to the client, alive
//!   [`PUSHED_REQUEST_TTL`]. The store keeps the SHA-256 of its random part only, in the
//!   database every instance shares.
//! * At the authorize endpoint (§4) the pushed parameters are taken (and so consumed) at the
//!   first request that names them, validated again (the client's policy may have changed,
//!   §7.4), and any front-channel parameter that differs from them is refused. A browser that
//!   must sign in first comes back with a fresh single-use reference to the same parameters
//!   ([`Passport::defer_pushed_authorization`], alive [`PUSHED_LOGIN_TTL`]) that its session
//!   holds meanwhile, so the used one stays used; the consent page keeps the validated request
//!   as for any other request.
//! * An unknown, expired, used or other client's `request_uri` is `invalid_request_uri`, shown
//!   as a page (the redirect URI is not known yet); once the pushed request is valid, errors go
//!   to its redirect URI as usual.
//! * PAR can be required globally (`require_pushed_authorization_requests`) or per client
//!   (§5, §6): then a request without `request_uri` is `invalid_request`.

use chrono::TimeDelta;
use serde::Serialize;

use crate::authorize::{AuthorizationRequest, AuthorizeError, ValidatedAuthorization, error_redirect};
use crate::client::{Client, ClientId};
use crate::error::{ErrorCode, OAuthError};
use crate::grants::TokenRequest;
use crate::passport::Passport;
use crate::random::random_alphanumeric;
use crate::secret::sha256_hex;
use crate::store::PushedRequestRecord;

/// How long a pushed request's `request_uri` lives (RFC 9126 §2.2: "typically … between 5 and
/// 600 seconds").
pub const PUSHED_REQUEST_TTL: TimeDelta = TimeDelta::seconds(60);

/// How long the reference a browser carries through its sign-in lives.
pub const PUSHED_LOGIN_TTL: TimeDelta = TimeDelta::minutes(10);

/// The prefix of our `request_uri`s (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// Characters of the random part of a `request_uri` (62^43 ≈ 2^256).
const REFERENCE_LENGTH: usize = 43;

/// The answer of the PAR endpoint (RFC 9126 §2.2).
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct PushedAuthorization {
    /// The single-use reference to the pushed request.
    pub request_uri: String,
    /// Seconds it lives.
    pub expires_in: i64,
}

impl std::fmt::Debug for PushedAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushedAuthorization")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// An authorization request of the front channel, validated, with its pushed parameters (if
/// it named a `request_uri`) resolved.
#[derive(Debug, Clone)]
pub struct ResolvedAuthorization {
    /// The validated request.
    pub validated: ValidatedAuthorization,
    /// Its client.
    pub client: Client,
    /// The pushed parameters it used, taken from the store: to carry through a sign-in, pass
    /// them to [`Passport::defer_pushed_authorization`].
    pub pushed: Option<AuthorizationRequest>,
}

/// The parameters of a request, by name (those a front channel may repeat from a push).
fn parameters(request: &AuthorizationRequest) -> [(&'static str, Option<&str>); 13] {
    [
        ("response_type", request.response_type.as_deref()),
        ("redirect_uri", request.redirect_uri.as_deref()),
        ("scope", request.scope.as_deref()),
        ("state", request.state.as_deref()),
        ("code_challenge", request.code_challenge.as_deref()),
        ("code_challenge_method", request.code_challenge_method.as_deref()),
        ("prompt", request.prompt.as_deref()),
        ("nonce", request.nonce.as_deref()),
        ("max_age", request.max_age.as_deref()),
        ("response_mode", request.response_mode.as_deref()),
        ("login_hint", request.login_hint.as_deref()),
        ("id_token_hint", request.id_token_hint.as_deref()),
        ("client_id", request.client_id.as_deref()),
    ]
}

fn invalid_request_uri() -> AuthorizeError {
    AuthorizeError::Show(OAuthError::new(ErrorCode::InvalidRequestUri))
}

impl Passport {
    /// Handles a pushed authorization request (RFC 9126 §2.1): authenticates the client from
    /// `auth` as the token endpoint does (a public client by its `client_id`), refuses a
    /// `request_uri` in the push, validates `request` as the authorize endpoint would, and
    /// stores it. Errors: those of [`Passport::authenticate_client`]; `invalid_request` (a
    /// `request_uri` pushed, a redirect URI that is not registered, any other malformed
    /// parameter, §2.3), `unsupported_response_type`,
    /// `unauthorized_client`, `invalid_scope`, `server_error`.
    pub async fn push_authorization(
        &self,
        auth: &TokenRequest,
        mut request: AuthorizationRequest,
    ) -> Result<PushedAuthorization, OAuthError> {
        let client = self
            .authenticate_client(&auth.client_credentials()?, auth.peer())
            .await?;
        if request.request_uri.is_some() {
            return Err(OAuthError::invalid_request(
                "A pushed authorization request must not contain request_uri (RFC 9126 §2.1)",
            ));
        }
        // §2.1: `client_id` is required; with HTTP Basic it may be in the header alone.
        request.client_id = Some(client.id.as_str().to_owned());
        // RFC 9449 §10.1: a DPoP proof here binds the code to its key, as `dpop_jkt` does;
        // both at once must name the same key.
        if let Some(proof) = auth.dpop_proof() {
            let settings = self.settings();
            let issuer = settings.issuer.as_deref().ok_or_else(|| {
                OAuthError::invalid_dpop_proof("DPoP proofs need the server's issuer to be configured")
            })?;
            let uri = format!("{}/{}/par", issuer.trim_end_matches('/'), settings.path);
            let check = crate::dpop::DpopCheck {
                proof,
                method: "POST",
                uri: &uri,
                access_token: None,
            };
            let verified = self.check_dpop_proof(check).await.map_err(|e| e.to_oauth())?;
            match &request.dpop_jkt {
                Some(jkt) if *jkt != verified.jkt => {
                    return Err(OAuthError::invalid_dpop_proof(
                        "dpop_jkt does not name the DPoP proof's key (RFC 9449 §10.1)",
                    ));
                }
                _ => request.dpop_jkt = Some(verified.jkt),
            }
        }
        match self.validate_authorization(&request).await {
            Ok(_) => {}
            // §2.3: where the authorize endpoint would show a page (a redirect URI that is not
            // registered), the push answers `invalid_request`.
            Err(AuthorizeError::Show(err)) if err.code() == ErrorCode::InvalidClient => {
                let hint = err.hint().unwrap_or("The redirect URI is not valid for this client");
                return Err(OAuthError::invalid_request(hint.to_owned()));
            }
            Err(AuthorizeError::Show(err)) => return Err(err),
            Err(AuthorizeError::Redirect(redirect)) => return Err(redirect.error),
        }
        let request_uri = self.store_pushed(&client.id, &request, PUSHED_REQUEST_TTL).await?;
        Ok(PushedAuthorization {
            request_uri,
            expires_in: PUSHED_REQUEST_TTL.num_seconds(),
        })
    }

    /// Stores `request` for `client_id`, alive `ttl`; returns its `request_uri`.
    async fn store_pushed(
        &self,
        client_id: &ClientId,
        request: &AuthorizationRequest,
        ttl: TimeDelta,
    ) -> Result<String, OAuthError> {
        let reference = random_alphanumeric(REFERENCE_LENGTH)?;
        let payload =
            serde_json::to_value(request).map_err(|_| OAuthError::server_error("cannot encode a pushed request"))?;
        let record = PushedRequestRecord {
            id: sha256_hex(&reference),
            client_id: client_id.clone(),
            payload,
            expires_at: self.now() + ttl,
        };
        self.store().insert_pushed_request(&record).await?;
        Ok(format!("{REQUEST_URI_PREFIX}{reference}"))
    }

    /// Stores `pushed` (the parameters of a resolved request) again under a fresh single-use
    /// `request_uri` alive [`PUSHED_LOGIN_TTL`], for a browser that must sign in before the
    /// request goes on: its session holds the new reference, and it comes back with it.
    /// Errors: `server_error` when it cannot be stored.
    pub async fn defer_pushed_authorization(
        &self,
        client_id: &ClientId,
        pushed: &AuthorizationRequest,
    ) -> Result<String, OAuthError> {
        self.store_pushed(client_id, pushed, PUSHED_LOGIN_TTL).await
    }

    /// Validates an authorization request of the front channel (`GET /oauth/authorize`).
    /// With a `request_uri` (RFC 9126 §4) the pushed parameters are taken, single use, and
    /// validated as [`Passport::validate_authorization`] does; the front channel may repeat
    /// them, but a parameter of its own that differs is `invalid_request` (redirected). Without
    /// one, the request is validated as is, and refused (`invalid_request`, redirected) when
    /// pushed requests are required, globally or for the client. Errors: those of
    /// [`Passport::validate_authorization`]; `invalid_request_uri` for an unknown, expired, used
    /// or other client's `request_uri`, and `invalid_request` without `client_id`, both shown.
    pub async fn resolve_authorization(
        &self,
        front: &AuthorizationRequest,
    ) -> Result<ResolvedAuthorization, AuthorizeError> {
        let Some(request_uri) = front.request_uri.as_deref() else {
            let (validated, client) = self.validate_authorization(front).await?;
            // FAPI 2.0 §5.3.2.2: FAPI clients push too.
            if self.settings().require_pushed_authorization_requests
                || client.require_pushed_authorization_requests
                || self.fapi_applies(&client)
            {
                let error =
                    OAuthError::invalid_request("This client must push its authorization requests first (RFC 9126 §4)");
                return Err(AuthorizeError::Redirect(error_redirect(&validated, error)));
            }
            return Ok(ResolvedAuthorization {
                validated,
                client,
                pushed: None,
            });
        };
        let client_id = front
            .client_id
            .as_deref()
            .ok_or_else(|| OAuthError::invalid_parameter("client_id"))?;
        let reference = request_uri
            .strip_prefix(REQUEST_URI_PREFIX)
            .filter(|r| !r.is_empty())
            .ok_or_else(invalid_request_uri)?;
        let record = self
            .store()
            .take_pushed_request(&sha256_hex(reference), client_id, self.now())
            .await
            .map_err(|e| AuthorizeError::Show(e.into()))?
            .ok_or_else(invalid_request_uri)?;
        let pushed: AuthorizationRequest = serde_json::from_value(record.payload).map_err(|_| invalid_request_uri())?;
        let (validated, client) = self.validate_authorization(&pushed).await?;
        let pushed_params = parameters(&pushed);
        for (name, value) in parameters(front) {
            let Some(value) = value else { continue };
            let same = pushed_params.iter().any(|(n, v)| *n == name && *v == Some(value));
            if !same {
                let error = OAuthError::invalid_request(format!("Parameter `{name}` differs from the pushed request"));
                return Err(AuthorizeError::Redirect(error_redirect(&validated, error)));
            }
        }
        Ok(ResolvedAuthorization {
            validated,
            client,
            pushed: Some(pushed),
        })
    }
}
