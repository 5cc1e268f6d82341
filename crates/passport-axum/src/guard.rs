//! Protecting routes (Passport's `auth:api` guard and its scope middleware).
//!
//! * [`AuthUser`] — the authenticated user behind a bearer token (`auth:api`). A token issued
//!   by client credentials never resolves to a user. `AuthUser<G>` binds the guard to the user
//!   provider `G` names, so tokens of one provider never authenticate users of another.
//! * [`BearerToken`] — the validated token itself (id, client, user, scopes, `token_can`).
//! * [`CheckToken`] layers — all scopes ([`CheckToken::all`]), any scope
//!   ([`CheckToken::any`]), or a client-credentials token with all scopes
//!   ([`CheckToken::client`], Passport's `EnsureClientIsResourceOwner`).
//!
//! Failures answer per RFC 6750 §3: 401 with `WWW-Authenticate: Bearer …` for a missing or
//! invalid token, 403 with `error="insufficient_scope"` for a missing scope; both with a JSON
//! body. Invalid tokens are logged at debug level only.
//!
//! DPoP-bound tokens (RFC 9449 §7) are accepted only as `Authorization: DPoP <token>` with a
//! valid proof of their key (`ath` included) in the `DPoP` header; sent as `Bearer` they are
//! invalid. Those refusals challenge with `WWW-Authenticate: DPoP error=…, algs=…` (§7.1), and
//! `use_dpop_nonce` carries a `DPoP-Nonce` header (§9). The proof's `htu` is checked against
//! the configured issuer's origin and the request's path, never the `Host` header. A plain
//! bearer token is checked as before: no proof is looked at.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Json;
use axum::extract::{FromRef, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use passport::{AccessToken, Passport, TokenInvalid, User};
use serde_json::json;
use tower::{Layer, Service};

use crate::testing::ActingUser;

/// Names the user provider a guard serves. [`Api`] is the default provider.
pub trait Guard: Send + Sync + 'static {
    /// The provider name, or `None` for the server's default provider.
    const PROVIDER: Option<&'static str>;
}

/// The default guard (Passport's `api`): the default user provider.
#[derive(Debug, Clone, Copy)]
pub struct Api;

impl Guard for Api {
    const PROVIDER: Option<&'static str> = None;
}

/// Why a protected request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardRejection {
    /// No bearer token was sent.
    Missing,
    /// The token is invalid, expired or revoked, or does not resolve to a user of this guard.
    Invalid,
    /// The token lacks scopes; lists the missing ones.
    InsufficientScope(Vec<String>),
    /// The token could not be checked (storage unavailable): 503, so clients keep it.
    Unavailable,
    /// A DPoP refusal (RFC 9449 §7.1), answered with a `DPoP` challenge.
    Dpop(DpopRejection),
}

/// Why a request was refused under DPoP's rules (RFC 9449 §7).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DpopRejection {
    /// A DPoP-bound token sent as `Bearer`, or an unbound one sent as `DPoP`
    /// (`invalid_token`).
    InvalidToken,
    /// The `DPoP` proof is missing, invalid, replayed or of another key
    /// (`invalid_dpop_proof`).
    InvalidProof,
    /// The proof lacks the server's nonce (`use_dpop_nonce`); the nonce to use.
    UseNonce(String),
}

/// The `algs` of a `DPoP` challenge (RFC 9449 §7.1).
fn dpop_algs() -> String {
    passport::DPOP_ALGORITHMS.join(" ")
}

impl IntoResponse for GuardRejection {
    fn into_response(self) -> Response {
        let mut response = self.default_response();
        response.extensions_mut().insert(self);
        response
    }
}

impl GuardRejection {
    /// Our answer: the RFC 6750 status and challenge, with our JSON body.
    fn default_response(&self) -> Response {
        let (status, challenge, body) = match self {
            Self::Unavailable => {
                let mut response = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"message": "The token could not be checked right now. Try again later."})),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
                return response;
            }
            Self::Dpop(rejection) => {
                let (error, description) = match rejection {
                    DpopRejection::InvalidToken => ("invalid_token", "The access token is invalid for this scheme"),
                    DpopRejection::InvalidProof => ("invalid_dpop_proof", "The DPoP proof is invalid"),
                    DpopRejection::UseNonce(_) => ("use_dpop_nonce", "Resend with a DPoP proof carrying the nonce"),
                };
                let mut response = (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"error": error, "error_description": description, "message": "Unauthenticated."})),
                )
                    .into_response();
                let challenge = format!(
                    "DPoP error=\"{error}\", error_description=\"{description}\", algs=\"{}\"",
                    dpop_algs()
                );
                let headers = response.headers_mut();
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    headers.insert(header::WWW_AUTHENTICATE, value);
                }
                if let DpopRejection::UseNonce(nonce) = rejection
                    && let Ok(value) = HeaderValue::from_str(nonce)
                {
                    headers.insert(DPOP_NONCE, value);
                }
                return response;
            }
            Self::Missing => (
                StatusCode::UNAUTHORIZED,
                "Bearer realm=\"passport\"".to_owned(),
                json!({"message": "Unauthenticated."}),
            ),
            Self::Invalid => (
                StatusCode::UNAUTHORIZED,
                "Bearer realm=\"passport\", error=\"invalid_token\", error_description=\"The access token is invalid\""
                    .to_owned(),
                json!({
                    "error": "invalid_token",
                    "error_description": "The access token is invalid, expired or revoked.",
                    "message": "Unauthenticated.",
                }),
            ),
            Self::InsufficientScope(missing) => (
                StatusCode::FORBIDDEN,
                format!(
                    "Bearer realm=\"passport\", error=\"insufficient_scope\", scope=\"{}\"",
                    missing.join(" ")
                ),
                json!({
                    "error": "insufficient_scope",
                    "error_description": "The access token does not grant the required scope(s).",
                    "message": "Invalid scope(s) provided.",
                    "scopes": missing,
                }),
            ),
        };
        let mut response = (status, Json(body)).into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// The `DPoP-Nonce` response header (RFC 9449 §8.1).
pub(crate) const DPOP_NONCE: &str = "dpop-nonce";

/// The request's one `DPoP` header: `Err` when there are several or it is not text (RFC 9449
/// §4.3: "not more than one").
pub(crate) fn dpop_proof(headers: &HeaderMap) -> Result<Option<&str>, ()> {
    let mut values = headers.get_all("dpop").iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(());
    }
    first.map(|v| v.to_str().map(str::trim).map_err(|_| ())).transpose()
}

/// An access token as the `Authorization` header presents it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Presented<'a> {
    pub(crate) token: &'a str,
    /// Sent with the `DPoP` scheme (RFC 9449 §7.1) rather than `Bearer`.
    pub(crate) dpop: bool,
}

/// The token of `Authorization: Bearer …` or `Authorization: DPoP …` (schemes
/// case-insensitive).
pub(crate) fn presented(headers: &HeaderMap) -> Option<Presented<'_>> {
    if let Some(token) = bearer(headers) {
        return Some(Presented { token, dpop: false });
    }
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    if value.len() > 5 && value[..5].eq_ignore_ascii_case("dpop ") {
        let token = value[5..].trim();
        return (!token.is_empty()).then_some(Presented { token, dpop: true });
    }
    None
}

/// Checks a presented token: as a bearer token, and for DPoP-bound ones (or the `DPoP`
/// scheme) the proof of its key for this request (`method`, `path`) too.
pub(crate) async fn check_presented(
    passport: &Passport,
    headers: &HeaderMap,
    method: &axum::http::Method,
    path: &str,
    presented: Presented<'_>,
) -> Result<AccessToken, GuardRejection> {
    let token = match passport.authenticate_bearer(presented.token).await {
        Ok(token) => token,
        Err(TokenInvalid::Unavailable) => return Err(GuardRejection::Unavailable),
        Err(reason) => {
            tracing::debug!(%reason, "bearer token refused");
            return Err(if presented.dpop {
                GuardRejection::Dpop(DpopRejection::InvalidToken)
            } else {
                GuardRejection::Invalid
            });
        }
    };
    let jkt = match (token.jkt.as_deref(), presented.dpop) {
        (None, false) => return Ok(token),
        (Some(jkt), true) => jkt,
        (Some(_), false) => {
            tracing::debug!("DPoP-bound token sent as a bearer token");
            return Err(GuardRejection::Dpop(DpopRejection::InvalidToken));
        }
        (None, true) => {
            tracing::debug!("token sent with the DPoP scheme is not DPoP-bound");
            return Err(GuardRejection::Dpop(DpopRejection::InvalidToken));
        }
    };
    let invalid = GuardRejection::Dpop(DpopRejection::InvalidProof);
    let Ok(Some(proof)) = dpop_proof(headers) else {
        tracing::debug!("DPoP-bound token without exactly one DPoP proof");
        return Err(invalid);
    };
    let Some(uri) = passport.request_uri(path) else {
        tracing::debug!("DPoP proofs need a configured issuer");
        return Err(invalid);
    };
    let check = passport::DpopCheck {
        proof,
        method: method.as_str(),
        uri: &uri,
        access_token: Some(presented.token),
    };
    match passport.check_dpop_proof(check).await {
        Ok(verified) if verified.jkt == jkt => Ok(token),
        Ok(_) => {
            tracing::debug!("DPoP proof of another key than the token's");
            Err(invalid)
        }
        Err(passport::DpopError::UseNonce) => Err(GuardRejection::Dpop(DpopRejection::UseNonce(
            passport.dpop_nonce().unwrap_or_default(),
        ))),
        Err(passport::DpopError::Unavailable) => Err(GuardRejection::Unavailable),
        Err(reason) => {
            tracing::debug!(%reason, "DPoP proof refused");
            Err(invalid)
        }
    }
}

/// The request's path as it arrived (before any `nest` stripped a prefix).
fn original_path(parts: &Parts) -> &str {
    parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or(parts.uri.path(), |original| original.0.path())
}

/// The bearer token of `Authorization: Bearer …` (scheme case-insensitive).
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    if value.len() > 7 && value[..7].eq_ignore_ascii_case("bearer ") {
        let token = value[7..].trim();
        (!token.is_empty()).then_some(token)
    } else {
        None
    }
}

/// Validates the request's bearer token, reusing the result of an earlier layer.
async fn authenticate(parts: &mut Parts, passport: &Passport) -> Result<AccessToken, GuardRejection> {
    if let Some(token) = parts.extensions.get::<AccessToken>() {
        return Ok(token.clone());
    }
    let Some(presented) = presented(&parts.headers) else {
        return transient(parts, passport).await;
    };
    let token = check_presented(passport, &parts.headers, &parts.method, original_path(parts), presented).await?;
    parts.extensions.insert(token.clone());
    Ok(token)
}

/// The session store of the pages, put on each request by [`crate::create_fresh_api_token`]
/// (the middleware that issues SPA cookies), so the guard can check that a cookie's session
/// still lives.
#[derive(Clone)]
pub(crate) struct SpaSessions(pub(crate) Arc<dyn passport::SessionStore>);

/// The SPA cookie path (Passport's `laravel_token`): accepted only with a matching CSRF header
/// and while its session lives (signing out ends it), and then the token may do everything
/// (`*`), like Passport's `TransientToken`.
async fn transient(parts: &mut Parts, passport: &Passport) -> Result<AccessToken, GuardRejection> {
    let cookie =
        crate::session::cookie_value(&parts.headers, &passport.settings().cookie).ok_or(GuardRejection::Missing)?;
    let Some(transient) = passport.verify_transient_token(cookie) else {
        tracing::debug!("SPA token cookie refused");
        return Err(GuardRejection::Invalid);
    };
    let presented = crate::session::csrf_header(&parts.headers).unwrap_or_default();
    if !transient.csrf_matches(presented) {
        tracing::debug!("SPA token cookie without a matching CSRF header");
        return Err(GuardRejection::Invalid);
    }
    let Some(SpaSessions(sessions)) = parts.extensions.get::<SpaSessions>().cloned() else {
        tracing::debug!("SPA token cookie on a route without create_fresh_api_token: its session cannot be checked");
        return Err(GuardRejection::Invalid);
    };
    match sessions
        .find_session(&passport::sha256_hex(&transient.session), passport.now())
        .await
    {
        Ok(Some(session)) if session.user_id.as_deref() == Some(transient.user_id.as_str()) => {}
        Ok(_) => {
            tracing::debug!("SPA token cookie of an ended session");
            return Err(GuardRejection::Invalid);
        }
        Err(err) => {
            tracing::error!(error = %err, "session lookup failed");
            return Err(GuardRejection::Unavailable);
        }
    }
    let token = AccessToken {
        id: "transient".to_owned(),
        client_id: passport::ClientId::new(""),
        user_id: Some(transient.user_id),
        scopes: [passport::WILDCARD].into_iter().collect(),
        client_provider: None,
        expires_at: chrono::DateTime::<chrono::Utc>::MAX_UTC,
        custom_claims: serde_json::Map::new(),
        jkt: None,
    };
    parts.extensions.insert(token.clone());
    Ok(token)
}

/// A validated bearer token, any kind (user or client credentials).
#[derive(Debug, Clone)]
pub struct BearerToken {
    /// The token.
    pub token: AccessToken,
    passport: Passport,
}

impl BearerToken {
    /// Whether the token grants `scope` (Passport's `tokenCan`).
    pub fn can(&self, scope: &str) -> bool {
        self.passport.token_can(&self.token, scope)
    }

    /// Whether the token lacks `scope` (Passport's `tokenCant`).
    pub fn cant(&self, scope: &str) -> bool {
        !self.can(scope)
    }

    /// True for client-credentials tokens (no user).
    pub fn is_client_token(&self) -> bool {
        self.token.user_id.is_none()
    }
}

impl<S> FromRequestParts<S> for BearerToken
where
    Passport: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = GuardRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let passport = Passport::from_ref(state);
        let token = authenticate(parts, &passport).await?;
        Ok(Self { token, passport })
    }
}

/// The user authenticated by a bearer token (Passport's `auth:api`), with the token.
#[derive(Debug, Clone)]
pub struct AuthUser<G: Guard = Api> {
    /// The user, from the guard's provider.
    pub user: User,
    /// The token that authenticated them.
    pub token: BearerToken,
    _guard: PhantomData<G>,
}

impl<G: Guard> AuthUser<G> {
    /// Whether the token grants `scope`.
    pub fn token_can(&self, scope: &str) -> bool {
        self.token.can(scope)
    }
}

impl<S, G> FromRequestParts<S> for AuthUser<G>
where
    Passport: FromRef<S>,
    S: Send + Sync,
    G: Guard,
{
    type Rejection = GuardRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let passport = Passport::from_ref(state);
        let token = authenticate(parts, &passport).await?;
        let provider_name = G::PROVIDER.unwrap_or(passport.default_provider());
        let client_provider = token.client_provider.as_deref().unwrap_or(passport.default_provider());
        if client_provider != provider_name {
            tracing::debug!("bearer token belongs to another user provider");
            return Err(GuardRejection::Invalid);
        }
        // Client-credentials tokens have no user on their row: never a user, whatever `sub` says.
        let user_id = token.user_id.as_deref().ok_or(GuardRejection::Invalid)?;
        if let Some(ActingUser(user)) = parts.extensions.get::<ActingUser>()
            && user.id == user_id
        {
            let user = user.clone();
            return Ok(Self {
                user,
                token: BearerToken { token, passport },
                _guard: PhantomData,
            });
        }
        let user = match passport.token_user(provider_name, user_id).await {
            Ok(Some(user)) => Arc::unwrap_or_clone(user),
            Ok(None) => return Err(GuardRejection::Invalid),
            Err(err) => {
                tracing::error!(error = %err, "user lookup failed");
                return Err(GuardRejection::Unavailable);
            }
        };
        Ok(Self {
            user,
            token: BearerToken { token, passport },
            _guard: PhantomData,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    All,
    Any,
    Client,
}

/// A layer requiring a valid bearer token with scopes (Passport's `CheckToken`,
/// `CheckTokenForAnyScope`, `EnsureClientIsResourceOwner`). The validated token is put in the
/// request's extensions, so extractors behind it do not check it again.
#[derive(Debug, Clone)]
pub struct CheckToken {
    passport: Passport,
    scopes: Arc<[String]>,
    mode: Mode,
}

impl CheckToken {
    fn new(passport: &Passport, scopes: impl IntoIterator<Item = impl Into<String>>, mode: Mode) -> Self {
        Self {
            passport: passport.clone(),
            scopes: scopes.into_iter().map(Into::into).collect(),
            mode,
        }
    }

    /// Requires every scope (`CheckToken:a,b`).
    pub fn all(passport: &Passport, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self::new(passport, scopes, Mode::All)
    }

    /// Requires at least one scope (`CheckTokenForAnyScope:a,b`).
    pub fn any(passport: &Passport, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self::new(passport, scopes, Mode::Any)
    }

    /// Requires a client-credentials token with every scope (`EnsureClientIsResourceOwner:a,b`).
    pub fn client(passport: &Passport, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self::new(passport, scopes, Mode::Client)
    }

    fn check(&self, token: &AccessToken) -> Result<(), GuardRejection> {
        if self.mode == Mode::Client && token.user_id.is_some() {
            return Err(GuardRejection::Invalid);
        }
        let missing: Vec<String> = self
            .scopes
            .iter()
            .filter(|s| !self.passport.token_can(token, s))
            .cloned()
            .collect();
        let ok = match self.mode {
            Mode::All | Mode::Client => missing.is_empty(),
            Mode::Any => self.scopes.is_empty() || missing.len() < self.scopes.len(),
        };
        if ok {
            Ok(())
        } else if self.mode == Mode::Any {
            Err(GuardRejection::InsufficientScope(self.scopes.to_vec()))
        } else {
            Err(GuardRejection::InsufficientScope(missing))
        }
    }
}

impl<S> Layer<S> for CheckToken {
    type Service = CheckTokenService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CheckTokenService {
            check: self.clone(),
            inner,
        }
    }
}

/// The service of [`CheckToken`].
#[derive(Debug, Clone)]
pub struct CheckTokenService<S> {
    check: CheckToken,
    inner: S,
}

impl<S> Service<Request> for CheckTokenService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let check = self.check.clone();
        // Take the service that was driven to readiness; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let verdict = match authenticate(&mut parts, &check.passport).await {
                Ok(token) => check.check(&token),
                Err(rejection) => Err(rejection),
            };
            match verdict {
                Ok(()) => inner.call(Request::from_parts(parts, body)).await,
                Err(rejection) => Ok(rejection.into_response()),
            }
        })
    }
}

/// Renders the body of the guard's and the scope layers' rejections your way, keeping the
/// status and the `WWW-Authenticate` and `Retry-After` headers ours (RFC 6750 §3). Add it
/// outside the routes it should cover (with `Router::layer`).
///
/// ```
/// use axum::{Json, Router, response::IntoResponse};
/// use passport_axum::{GuardRejection, RenderRejections};
///
/// fn app(routes: Router) -> Router {
///     routes.layer(RenderRejections::new(|rejection: &GuardRejection| {
///         Json(serde_json::json!({"ok": false, "reason": format!("{rejection:?}")})).into_response()
///     }))
/// }
/// ```
#[derive(Clone)]
pub struct RenderRejections {
    render: Arc<dyn Fn(&GuardRejection) -> Response + Send + Sync>,
}

impl std::fmt::Debug for RenderRejections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RenderRejections")
    }
}

impl RenderRejections {
    /// Renders rejection bodies with `render` (its status and headers other than
    /// `Content-Type` are ignored).
    pub fn new(render: impl Fn(&GuardRejection) -> Response + Send + Sync + 'static) -> Self {
        Self {
            render: Arc::new(render),
        }
    }

    fn apply(&self, mut response: Response) -> Response {
        let Some(rejection) = response.extensions_mut().remove::<GuardRejection>() else {
            return response;
        };
        let (parts, _) = response.into_parts();
        let mut rendered = (self.render)(&rejection);
        let content_type = rendered.headers_mut().remove(header::CONTENT_TYPE);
        let mut out = Response::from_parts(parts, rendered.into_body());
        let headers = out.headers_mut();
        headers.remove(header::CONTENT_LENGTH);
        match content_type {
            Some(value) => headers.insert(header::CONTENT_TYPE, value),
            None => headers.remove(header::CONTENT_TYPE),
        };
        out
    }
}

impl<S> Layer<S> for RenderRejections {
    type Service = RenderRejectionsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RenderRejectionsService {
            render: self.clone(),
            inner,
        }
    }
}

/// The service of [`RenderRejections`].
#[derive(Debug, Clone)]
pub struct RenderRejectionsService<S> {
    render: RenderRejections,
    inner: S,
}

impl<S> Service<Request> for RenderRejectionsService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let render = self.render.clone();
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = inner.call(request).await?;
            Ok(render.apply(response))
        })
    }
}
