//! How page handlers fail and finish. A handler returns `Result<Response, PageError>` and uses
//! `?` on core calls; [`finish`], the middleware every page router carries, renders deferred
//! error pages (a [`PageError`] has no access to the renderer) and stores the sessions handlers
//! attached to their responses, setting the cookies.
//!
//! Errors about the client or its redirect URI are shown as a page and never redirected
//! (RFC 6749 §4.1.2.1); [`PageError::Respond`] is only built from the core's
//! [`AuthorizeError::Redirect`], whose URI was validated (a redirect, or a `form_post` page).

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use passport::{AuthorizationResponse, AuthorizeError, OAuthError};

use crate::pages::Pages;
use crate::session::{self, Attached, Session};

/// Why a page request failed, and how it is shown.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum PageError {
    /// An OAuth error, shown as an error page with the code's status.
    OAuth(OAuthError),
    /// The request needs a signed-in user (401).
    SignInRequired,
    /// The consent form's `auth_token` is not this session's pending request (403).
    InvalidAuthToken,
    /// The form's CSRF token is missing or wrong, or the session expired (419).
    PageExpired,
    /// Send an error to the client (the URI was validated).
    Respond(AuthorizationResponse),
}

/// A [`PageError`] waiting for [`finish`] to render it.
#[derive(Debug, Clone)]
struct Deferred(PageErrorPage);

#[derive(Debug, Clone)]
enum PageErrorPage {
    OAuth(OAuthError),
    Plain {
        status: StatusCode,
        title: &'static str,
        message: &'static str,
    },
    /// An answer to the client in `response_mode=form_post`.
    FormPost(AuthorizationResponse),
}

impl From<OAuthError> for PageError {
    fn from(err: OAuthError) -> Self {
        Self::OAuth(err)
    }
}

impl From<AuthorizeError> for PageError {
    fn from(err: AuthorizeError) -> Self {
        match err {
            AuthorizeError::Show(err) => Self::OAuth(err),
            AuthorizeError::Redirect(r) => Self::Respond(r.response),
        }
    }
}

impl PageError {
    /// Fails with this error but still stores `session` (e.g. a change made before failing).
    pub(crate) fn keeping(self, session: Session) -> Response {
        session.attach(self)
    }

    /// The page for every error but a redirect (whose `Location` is the error).
    fn page(self) -> Result<PageErrorPage, String> {
        let page_expired = StatusCode::from_u16(419).unwrap_or(StatusCode::FORBIDDEN);
        Ok(match self {
            Self::OAuth(err) => PageErrorPage::OAuth(err),
            Self::SignInRequired => PageErrorPage::Plain {
                status: StatusCode::UNAUTHORIZED,
                title: "Sign in required",
                message: "Sign in, then start again from the application.",
            },
            Self::InvalidAuthToken => PageErrorPage::Plain {
                status: StatusCode::FORBIDDEN,
                title: "This request is no longer valid",
                message: "The provided auth token for the request is different from the session auth token. Start again from the application.",
            },
            // 419: Laravel's "page expired" for a missing or wrong CSRF token.
            Self::PageExpired => PageErrorPage::Plain {
                status: page_expired,
                title: "Page expired",
                message: "Your session expired or the form was not sent from this site. Go back, reload the page and try again.",
            },
            Self::Respond(response) => match response.location() {
                Some(location) => return Err(location),
                None => PageErrorPage::FormPost(response),
            },
        })
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = match self.page() {
            Ok(page) => page,
            Err(location) => return redirect(&location),
        };
        let status = match &page {
            PageErrorPage::OAuth(err) => StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::BAD_REQUEST),
            PageErrorPage::Plain { status, .. } => *status,
            PageErrorPage::FormPost(_) => StatusCode::OK,
        };
        // Plain text until `finish` renders the page.
        let mut response = (status, "This request cannot be completed.").into_response();
        response.extensions_mut().insert(Deferred(page));
        response
    }
}

/// A 302 that no cache keeps (the location may carry a code or token).
pub(crate) fn redirect(location: &str) -> Response {
    let Ok(value) = HeaderValue::from_str(location) else {
        // Registered redirect URIs are ASCII without control characters, so this is not
        // reachable through them; never answer a bare 302 all the same.
        tracing::error!("a redirect location was not a valid header value");
        return (StatusCode::BAD_REQUEST, "The redirect address is invalid.").into_response();
    };
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, value);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Middleware of the page routers: renders deferred error pages, then stores the attached
/// sessions and sets their cookies (an error page instead when storing fails).
pub(crate) async fn finish(State(pages): State<Pages>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let attached = response.extensions_mut().remove::<Attached>();
    if let Some(Deferred(page)) = response.extensions_mut().remove::<Deferred>() {
        response = match page {
            PageErrorPage::OAuth(err) => pages.error_page(&err),
            PageErrorPage::Plain { status, title, message } => pages.plain_error(status, title, message),
            PageErrorPage::FormPost(answer) => crate::oidc::respond(&pages, &answer),
        };
    }
    for session in attached.map(|a| a.0).unwrap_or_default() {
        if let Err(err) = session::save(&pages, session, &mut response).await {
            return pages.error_page(&err);
        }
    }
    response
}
