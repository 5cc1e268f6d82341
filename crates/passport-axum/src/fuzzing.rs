//! Fuzzing entry points. **Not part of the API**: hidden from the documentation, with no
//! stability promise, and free to change or go away in any release.
//!
//! Thin wrappers over the crate-private parsers of what a request carries, so that the
//! `cargo fuzz` targets in `fuzz/` and the property tests in `tests/` can drive them directly.
//! Each does nothing but call the parser it names (and build the header map or request the
//! parser reads); none of them is used by the crate itself.

use std::future::Future as _;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use passport::{BasicCredentials, OAuthError};

/// Largest accepted request body of the token endpoint and the forms.
pub const MAX_BODY: usize = crate::token::MAX_BODY;
/// Largest accepted single parameter value.
pub const MAX_VALUE: usize = crate::token::MAX_VALUE;

/// A header map of `headers`, skipping names or values `http` refuses (as hyper would refuse
/// the request). Repeated names are appended, in order.
pub fn header_map<'a>(headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            map.append(name, value);
        }
    }
    map
}

/// A header map with one `Authorization` header (empty when `value` is not a header value).
pub fn authorization(value: &[u8]) -> HeaderMap {
    header_map([(header::AUTHORIZATION.as_str().as_bytes(), value)])
}

/// The token endpoint's form body parser (`application/x-www-form-urlencoded`), through
/// [`read_params`] (the parser itself is private to its module).
pub fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    read_params(Some(b"application/x-www-form-urlencoded"), body)
}

/// The token endpoint's JSON body parser, through [`read_params`].
pub fn parse_json(body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    read_params(Some(b"application/json"), body)
}

/// The strict query-string parser (the authorization and device pages, form bodies of the JSON
/// API).
pub fn parse_query(query: &str) -> Result<Vec<(String, String)>, OAuthError> {
    crate::token::parse_query(query)
}

/// The whole body reader of the token endpoint and the page forms: content type dispatch, the
/// size limit, then the form or JSON parser. `content_type` is the raw header value, if any
/// (a value `http` refuses is left out, as hyper would refuse the request).
pub fn read_params(content_type: Option<&[u8]>, body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    let mut request = Request::new(Body::from(body.to_vec()));
    if let Some(value) = content_type.and_then(|v| HeaderValue::from_bytes(v).ok()) {
        request.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    // The body is in memory: the reader completes on its first poll.
    let mut future = pin!(crate::token::read_params(request));
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result,
        Poll::Pending => Err(OAuthError::server_error("an in-memory body was not ready")),
    }
}

/// RFC 6749 §2.3.1 client credentials from `Authorization: Basic`.
pub fn basic_credentials(headers: &HeaderMap) -> Option<BasicCredentials> {
    crate::token::basic_credentials(headers)
}

/// The scheme of the `Authorization` header the token endpoint recognises (for its
/// `WWW-Authenticate` answer).
pub fn authorization_scheme(headers: &HeaderMap) -> Option<&'static str> {
    crate::token::authorization_scheme(headers)
}

/// The guard's `Authorization: Bearer` token.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    crate::guard::bearer(headers)
}

/// The raw value of cookie `name` among the request's `Cookie` headers.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    crate::session::cookie_value(headers, name)
}

/// The CSRF token of `X-CSRF-TOKEN` / `X-XSRF-TOKEN`.
pub fn csrf_header(headers: &HeaderMap) -> Option<&str> {
    crate::session::csrf_header(headers)
}

/// The address the limits see for a request from `peer`: `peer`, or when it is one of the
/// `trusted` proxies, the address it forwards for (`Forwarded`, else `X-Forwarded-For`).
/// `trusted` comes from [`crate::parse_trusted_proxies`].
pub fn client_address(peer: std::net::IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> std::net::IpAddr {
    crate::forwarded::client_address(peer, headers, trusted)
}
