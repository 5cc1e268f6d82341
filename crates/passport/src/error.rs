//! The OAuth 2.0 error vocabulary (RFC 6749 §4.1.2.1, §5.2; RFC 8628 §3.5; OpenID prompt errors)
//! and the infrastructure errors behind it.
//!
//! Every endpoint speaks [`OAuthError`]; the HTTP adapter decides how it is delivered (JSON at the
//! token endpoint, a redirect or an error page at the authorize endpoint). Infrastructure failures
//! ([`StoreError`]) are logged where they are converted and reach clients only as `server_error`.

use std::borrow::Cow;
use std::fmt;

/// The `error` codes this server emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Missing, repeated or malformed parameter.
    InvalidRequest,
    /// Client authentication failed.
    InvalidClient,
    /// Bad, expired or revoked grant (code, refresh token, credentials).
    InvalidGrant,
    /// The client may not use this grant type.
    UnauthorizedClient,
    /// The grant type is not supported here.
    UnsupportedGrantType,
    /// The authorize endpoint does not support this `response_type`.
    UnsupportedResponseType,
    /// The `request_uri` is unknown, expired, used or another client's (RFC 9126 §4; the code
    /// is RFC 9101 §7's).
    InvalidRequestUri,
    /// Unknown or disallowed scope.
    InvalidScope,
    /// The resource owner denied the request.
    AccessDenied,
    /// Unexpected failure inside the server.
    ServerError,
    /// The server cannot handle the request right now (overload, brute-force limit, storage
    /// unavailable); try again later.
    TemporarilyUnavailable,
    /// Device flow: the user has not decided yet.
    AuthorizationPending,
    /// Device flow: polling too fast.
    SlowDown,
    /// Device flow: the device code expired.
    ExpiredToken,
    /// `prompt=none` and nobody is logged in.
    LoginRequired,
    /// `prompt=none` and consent is needed.
    ConsentRequired,
    /// DPoP (RFC 9449 §5.2): the proof is missing where required, malformed, or does not match.
    InvalidDpopProof,
    /// DPoP (RFC 9449 §8): the proof must carry the nonce of the `DPoP-Nonce` header.
    UseDpopNonce,
    /// Revocation (RFC 7009 §2.2.1): the server cannot revoke this type of token. Never emitted
    /// here, so not in [`ErrorCode::ALL`]: both token types are revocable, and an unknown
    /// `token_type_hint` is ignored (§2.1).
    UnsupportedTokenType,
}

impl ErrorCode {
    /// Every code the server emits, in the order the README's error table lists them.
    pub const ALL: [ErrorCode; 18] = [
        Self::InvalidRequest,
        Self::InvalidClient,
        Self::UnauthorizedClient,
        Self::UnsupportedGrantType,
        Self::InvalidScope,
        Self::InvalidGrant,
        Self::AuthorizationPending,
        Self::SlowDown,
        Self::AccessDenied,
        Self::ExpiredToken,
        Self::UnsupportedResponseType,
        Self::InvalidRequestUri,
        Self::LoginRequired,
        Self::ConsentRequired,
        Self::InvalidDpopProof,
        Self::UseDpopNonce,
        Self::TemporarilyUnavailable,
        Self::ServerError,
    ];

    /// The wire value of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidRequestUri => "invalid_request_uri",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
        }
    }

    /// The HTTP status this code carries when answered as JSON (RFC 6749 §5.2, RFC 8628 §3.5).
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidClient | Self::LoginRequired | Self::ConsentRequired => 401,
            Self::ServerError => 500,
            // What we answer it for today: a rate limit (RFC 6585 §4).
            Self::TemporarilyUnavailable => 429,
            _ => 400,
        }
    }

    fn default_description(self) -> &'static str {
        match self {
            Self::InvalidRequest => {
                "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed."
            }
            Self::InvalidClient => "Client authentication failed",
            Self::InvalidGrant => {
                "The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client."
            }
            Self::UnauthorizedClient => {
                "The authenticated client is not authorized to use this authorization grant type."
            }
            Self::UnsupportedGrantType => "The authorization grant type is not supported by the authorization server.",
            Self::UnsupportedResponseType => {
                "The authorization server does not support obtaining an authorization code or token using this method."
            }
            Self::InvalidRequestUri => {
                "The request_uri is unknown, expired, already used or was pushed by another client."
            }
            Self::InvalidScope => "The requested scope is invalid, unknown, or malformed",
            Self::AccessDenied => "The resource owner or authorization server denied the request.",
            Self::ServerError => {
                "The authorization server encountered an unexpected condition which prevented it from fulfilling the request."
            }
            Self::TemporarilyUnavailable => {
                "The authorization server is currently unable to handle the request. Try again later."
            }
            Self::AuthorizationPending => {
                "The authorization request is still pending as the end user hasn't yet completed the user interaction steps."
            }
            Self::SlowDown => {
                "The authorization request is still pending and polling should continue, but the interval MUST be increased by 5 seconds for this and all subsequent requests."
            }
            Self::ExpiredToken => "The `device_code` has expired and the device authorization session has concluded.",
            Self::LoginRequired => "The authorization server requires end-user authentication.",
            Self::ConsentRequired => "The authorization server requires end-user consent.",
            Self::InvalidDpopProof => "The DPoP proof is missing, malformed or does not match the request.",
            Self::UseDpopNonce => "The authorization server requires a nonce in the DPoP proof.",
            Self::UnsupportedTokenType => {
                "The authorization server does not support the revocation of the presented token type."
            }
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An OAuth error: a code, a human description and an optional hint, as Passport renders them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    code: ErrorCode,
    description: Cow<'static, str>,
    hint: Option<Cow<'static, str>>,
    retry_after: Option<u64>,
    /// 503 instead of the code's status: the storage is unreachable or busy.
    unavailable: bool,
    /// A refused refresh token (Passport 11/12 answer these `invalid_request` 401).
    refresh_token: bool,
    /// Passport 11/12's wire format: `message` repeats the description, and a refused refresh
    /// token is `invalid_request` with 401.
    passport12: bool,
}

impl OAuthError {
    /// An error with the code's standard description and no hint.
    pub fn new(code: ErrorCode) -> Self {
        Self {
            code,
            description: Cow::Borrowed(code.default_description()),
            hint: None,
            retry_after: None,
            unavailable: false,
            refresh_token: false,
            passport12: false,
        }
    }

    /// The same error in Passport 11/12's wire format (`compat_version = 12`): `message` in the
    /// JSON, `invalid_request` with 401 for a refused refresh token, and `invalid_client` for
    /// a grant the client may not use (`reference/passport-behaviour.md` §3.3, §15).
    pub fn in_passport12_format(mut self) -> Self {
        if self.refresh_token {
            self.code = ErrorCode::InvalidRequest;
        }
        if self.code == ErrorCode::UnauthorizedClient {
            self.code = ErrorCode::InvalidClient;
            self.description = Cow::Borrowed(ErrorCode::InvalidClient.default_description());
        }
        self.passport12 = true;
        self
    }

    /// The `message` member of Passport 11/12's error JSON (the description), when the error
    /// is in that format.
    pub fn legacy_message(&self) -> Option<&str> {
        self.passport12.then_some(&*self.description)
    }

    /// `temporarily_unavailable` answered with 503 and `Retry-After`: the database is
    /// unreachable or too busy to answer in time (RFC 9110 §15.6.4).
    pub fn storage_unavailable() -> Self {
        let mut error = Self::new(ErrorCode::TemporarilyUnavailable).with_retry_after(STORAGE_RETRY_AFTER);
        error.unavailable = true;
        error
    }

    /// Says when to try again, in seconds (`Retry-After`, for `temporarily_unavailable`).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The seconds to wait before trying again, when the error says.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// Adds a hint (shown to the client as `hint`).
    pub fn with_hint(mut self, hint: impl Into<Cow<'static, str>>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Replaces the description.
    pub fn with_description(mut self, description: impl Into<Cow<'static, str>>) -> Self {
        self.description = description.into();
        self
    }

    /// `invalid_request` naming the offending parameter: hint "Check the `param` parameter".
    pub fn invalid_parameter(param: &str) -> Self {
        Self::new(ErrorCode::InvalidRequest).with_hint(format!("Check the `{param}` parameter"))
    }

    /// `invalid_request` with a free hint.
    pub fn invalid_request(hint: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest).with_hint(hint)
    }

    /// `invalid_dpop_proof` (RFC 9449 §5.2, 400).
    pub fn invalid_dpop_proof(hint: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidDpopProof).with_hint(hint)
    }

    /// `invalid_client` (401).
    pub fn invalid_client() -> Self {
        Self::new(ErrorCode::InvalidClient)
    }

    /// `invalid_grant` with a hint.
    pub fn invalid_grant(hint: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant).with_hint(hint)
    }

    /// `invalid_grant` for wrong user credentials. Unknown user and wrong password look alike.
    pub fn invalid_credentials() -> Self {
        Self::new(ErrorCode::InvalidGrant).with_description("The user credentials were incorrect.")
    }

    /// `invalid_grant` for a refresh token that cannot be used.
    pub fn invalid_refresh_token(hint: &'static str) -> Self {
        let mut error = Self::new(ErrorCode::InvalidGrant)
            .with_description("The refresh token is invalid.")
            .with_hint(hint);
        error.refresh_token = true;
        error
    }

    /// `invalid_scope` naming the scope.
    pub fn invalid_scope(scope: &str) -> Self {
        Self::new(ErrorCode::InvalidScope).with_hint(format!("Check the `{scope}` scope"))
    }

    /// `unsupported_grant_type`.
    pub fn unsupported_grant_type() -> Self {
        Self::new(ErrorCode::UnsupportedGrantType).with_hint("Check that all required parameters have been provided")
    }

    /// `unauthorized_client`.
    pub fn unauthorized_client() -> Self {
        Self::new(ErrorCode::UnauthorizedClient)
    }

    /// `access_denied` with a hint.
    pub fn access_denied(hint: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::AccessDenied).with_hint(hint)
    }

    /// `server_error`. The `reason` is logged, never sent to the client.
    pub fn server_error(reason: &str) -> Self {
        tracing::error!(reason, "internal error answered as server_error");
        Self::new(ErrorCode::ServerError)
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The human description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The hint, if any.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// The HTTP status for a JSON rendering.
    pub fn http_status(&self) -> u16 {
        match (self.unavailable, self.passport12 && self.refresh_token) {
            (true, _) => 503,
            (false, true) => 401,
            (false, false) => self.code.http_status(),
        }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.description)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for OAuthError {}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique key already exists.
    #[error("duplicate key")]
    Conflict,
    /// The backend does not offer this operation (e.g. a user provider that cannot delete).
    #[error("not supported by this backend: {0}")]
    Unsupported(&'static str),
    /// The backend cannot answer now: unreachable, shutting down, out of connections, or
    /// locked for longer than its timeout. Worth retrying; answered as 503.
    #[error("storage unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Any other failure of the backend.
    #[error("storage backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Wraps a backend error.
    pub fn backend(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(err))
    }

    /// Wraps a failure that says the backend cannot answer now.
    pub fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Box::new(err))
    }
}

/// Seconds a client is asked to wait when the storage is unavailable.
const STORAGE_RETRY_AFTER: u64 = 2;

impl From<StoreError> for OAuthError {
    fn from(err: StoreError) -> Self {
        if let StoreError::Unavailable(_) = err {
            tracing::warn!(error = %err, "storage unavailable: answered 503 temporarily_unavailable");
            return Self::storage_unavailable();
        }
        tracing::error!(error = %err, "storage failure answered as server_error");
        Self::new(ErrorCode::ServerError)
    }
}
