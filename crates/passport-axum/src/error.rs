//! How OAuth errors leave the server: RFC 6749 §5.2 JSON at the token endpoint, with
//! `Cache-Control: no-store`, and `WWW-Authenticate` on `invalid_client` when the client tried
//! HTTP authentication (§5.2: "MUST include the WWW-Authenticate response header").

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use passport::{ErrorCode, OAuthError};
use serde::Serialize;

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'a str>,
    /// Passport 11/12 (`compat_version = 12`) repeats the description here.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

/// Headers every token-endpoint response carries (RFC 6749 §5.1).
pub(crate) fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// `Retry-After` from the error, when it says when to try again.
pub(crate) fn retry_after(response: &mut Response, error: &OAuthError) {
    if let Some(wait) = error.retry_after()
        && let Ok(value) = HeaderValue::from_str(&wait.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
}

/// An OAuth error rendered as token-endpoint JSON.
#[derive(Debug)]
pub struct OAuthJsonError {
    error: OAuthError,
    authorization_scheme: Option<&'static str>,
}

impl OAuthJsonError {
    /// Wraps an error; `authorization_scheme` is the scheme of the request's `Authorization`
    /// header, if it had one (`Basic` or `Bearer`), echoed in `WWW-Authenticate` on
    /// `invalid_client`.
    pub fn new(error: OAuthError, authorization_scheme: Option<&'static str>) -> Self {
        Self {
            error,
            authorization_scheme,
        }
    }
}

impl From<OAuthError> for OAuthJsonError {
    fn from(error: OAuthError) -> Self {
        Self::new(error, None)
    }
}

impl IntoResponse for OAuthJsonError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.error.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        let body = ErrorBody {
            error: self.error.code().as_str(),
            error_description: self.error.description(),
            hint: self.error.hint(),
            message: self.error.legacy_message(),
        };
        let mut response = (status, Json(body)).into_response();
        no_store(&mut response);
        retry_after(&mut response, &self.error);
        if self.error.code() == ErrorCode::InvalidClient
            && let Some(scheme) = self.authorization_scheme
        {
            let value = format!("{scheme} realm=\"OAuth\"");
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}
