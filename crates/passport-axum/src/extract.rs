//! Extractors of the pages and the JSON API: who is at the browser, and the checks every form
//! needs (session, CSRF, signed-in user), so handlers start from checked values.
//!
//! * [`Visitor`]: the session (loaded, or a new guest one, stored only if the handler attaches
//!   it) and its signed-in user, if any.
//! * [`SignedIn`]: a visitor who must be signed in; a guest is sent to the sign-in page and
//!   brought back to this URL afterwards.
//! * [`PageForm`]: a form posted from one of our pages: its fields, its session, and a valid
//!   CSRF token (419 otherwise).
//! * [`ConsentDecision`]: an approve / deny form of a consent page.
//! * [`ApiUser`] / [`ApiForm`]: the JSON API's signed-in user (401), and for state-changing
//!   requests the body and the CSRF check (419).

use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Request};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::response::IntoResponse as _;
use passport::{OAuthError, User};
use serde_json::{Map, Value};

use crate::api::ApiError;
use crate::page::{PageError, redirect};
use crate::pages::{Pages, intended, param};
use crate::session::{self, Session, csrf_header};
use crate::token::{MAX_BODY, parse_query, read_params};

/// The browser's session (loaded, or a new guest session) and its signed-in user.
#[derive(Debug)]
pub(crate) struct Visitor {
    /// The session; attach it to the response to keep changes.
    pub(crate) session: Session,
    /// The signed-in user, if any (and if they still exist).
    pub(crate) user: Option<User>,
}

impl Visitor {
    /// The visitor of a request with these headers.
    pub(crate) async fn load(pages: &Pages, headers: &axum::http::HeaderMap) -> Result<Self, PageError> {
        let session = session::load_or_start(pages, headers).await?;
        let user = pages.current_user(&session).await?;
        Ok(Self { session, user })
    }
}

impl FromRequestParts<Pages> for Visitor {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, pages: &Pages) -> Result<Self, PageError> {
        Self::load(pages, &parts.headers).await
    }
}

/// A signed-in visitor. A guest is redirected to the sign-in page, which brings them back here.
#[derive(Debug)]
pub(crate) struct SignedIn {
    /// The session.
    pub(crate) session: Session,
    /// The user.
    pub(crate) user: User,
}

impl FromRequestParts<Pages> for SignedIn {
    type Rejection = axum::response::Response;

    async fn from_request_parts(parts: &mut Parts, pages: &Pages) -> Result<Self, Self::Rejection> {
        let Visitor { mut session, user } = Visitor::from_request_parts(parts, pages)
            .await
            .map_err(|e| e.into_response())?;
        match user {
            Some(user) => Ok(Self { session, user }),
            None => {
                let uri = parts
                    .extensions
                    .get::<OriginalUri>()
                    .map_or_else(|| parts.uri.clone(), |u| u.0.clone());
                session.insert("intended", Value::from(intended(&uri)));
                Err(session.attach(redirect(pages.login_url())))
            }
        }
    }
}

/// The caller's address (IPv6 by its /64) when the app is served with connect info.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) Option<std::net::IpAddr>);

impl FromRequestParts<Pages> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &Pages) -> Result<Self, Self::Rejection> {
        Ok(Self(crate::rate_limit::peer_address(&parts.extensions)))
    }
}

/// A form posted from one of our pages, with its session and a valid CSRF token (`_token`, or
/// the `X-CSRF-TOKEN` / `X-XSRF-TOKEN` header).
// No `Debug`: it holds what the user typed (passwords, tokens).
pub(crate) struct PageForm {
    /// The form fields (each name at most once).
    pub(crate) fields: Vec<(String, String)>,
    /// The session the form was sent from.
    pub(crate) session: Session,
    /// `POST` or `DELETE`.
    pub(crate) method: Method,
}

impl PageForm {
    /// A field's value, when present and not empty.
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        param(&self.fields, name)
    }
}

impl FromRequest<Pages> for PageForm {
    type Rejection = PageError;

    async fn from_request(request: Request, pages: &Pages) -> Result<Self, PageError> {
        let method = request.method().clone();
        let headers = request.headers().clone();
        let fields = read_params(request).await?;
        let session = session::load(pages, &headers).await?.ok_or(PageError::PageExpired)?;
        let token = param(&fields, "_token").or_else(|| csrf_header(&headers));
        if !session.csrf_matches(token) {
            return Err(PageError::PageExpired);
        }
        Ok(Self {
            fields,
            session,
            method,
        })
    }
}

/// A consent decision (`POST`, `DELETE`, or `POST` with `_method=DELETE`): CSRF checked (419),
/// the user signed in (401), and the form's `auth_token`.
// No `Debug`: it holds what the user typed (passwords, tokens).
pub(crate) struct ConsentDecision {
    /// True to deny.
    pub(crate) deny: bool,
    /// The signed-in user.
    pub(crate) user_id: String,
    /// The consent page's single-use token.
    pub(crate) auth_token: String,
    /// The session.
    pub(crate) session: Session,
}

impl FromRequest<Pages> for ConsentDecision {
    type Rejection = PageError;

    async fn from_request(request: Request, pages: &Pages) -> Result<Self, PageError> {
        let form = PageForm::from_request(request, pages).await?;
        let deny = match form.field("_method") {
            None => form.method == Method::DELETE,
            Some(m) if m.eq_ignore_ascii_case("DELETE") => true,
            Some(m) if m.eq_ignore_ascii_case("POST") => form.method == Method::DELETE,
            Some(_) => return Err(OAuthError::invalid_parameter("_method").into()),
        };
        let user_id = form.session.user_id().ok_or(PageError::SignInRequired)?.to_owned();
        let auth_token = form
            .field("auth_token")
            .ok_or_else(|| OAuthError::invalid_parameter("auth_token"))?
            .to_owned();
        Ok(Self {
            deny,
            user_id,
            auth_token,
            session: form.session,
        })
    }
}

/// The JSON API's signed-in user (401 without a session or user).
#[derive(Debug)]
pub(crate) struct ApiUser {
    /// The session.
    pub(crate) session: Session,
    /// The user.
    pub(crate) user: User,
}

impl ApiUser {
    async fn load(pages: &Pages, headers: &axum::http::HeaderMap) -> Result<Self, ApiError> {
        let session = session::load(pages, headers).await?.ok_or(ApiError::Unauthenticated)?;
        let user = pages.current_user(&session).await?.ok_or(ApiError::Unauthenticated)?;
        Ok(Self { session, user })
    }
}

impl FromRequestParts<Pages> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, pages: &Pages) -> Result<Self, ApiError> {
        Self::load(pages, &parts.headers).await
    }
}

/// A state-changing JSON API request: the body (a JSON object or a form), the signed-in user
/// (401) and the CSRF token, from a header or the body's `_token` (419).
// No `Debug`: it holds what the user typed (passwords, tokens).
pub(crate) struct ApiForm {
    /// The session.
    pub(crate) session: Session,
    /// The user.
    pub(crate) user: User,
    /// The body's members.
    pub(crate) body: Map<String, Value>,
}

impl FromRequest<Pages> for ApiForm {
    type Rejection = ApiError;

    async fn from_request(request: Request, pages: &Pages) -> Result<Self, ApiError> {
        let headers = request.headers().clone();
        let body = read_body(request).await?;
        let ApiUser { session, user } = ApiUser::load(pages, &headers).await?;
        let token = csrf_header(&headers).or_else(|| body.get("_token").and_then(Value::as_str));
        if !session.csrf_matches(token) {
            return Err(ApiError::CsrfMismatch);
        }
        Ok(Self { session, user, body })
    }
}

/// Reads a JSON object (or a form) body.
async fn read_body(request: Request) -> Result<Map<String, Value>, ApiError> {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
    let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY)
        .await
        .map_err(|_| ApiError::TooLarge)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    if is_json {
        return match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(ApiError::BadRequest(
                "The request body must be a JSON object.".to_owned(),
            )),
        };
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::BadRequest("The request body is not valid UTF-8.".to_owned()))?;
    let pairs =
        parse_query(text).map_err(|e| ApiError::BadRequest(e.hint().unwrap_or("Malformed body.").to_owned()))?;
    Ok(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}
