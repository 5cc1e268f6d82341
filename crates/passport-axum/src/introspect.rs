//! `POST /{path}/introspect` (RFC 7662) and `POST /{path}/revoke` (RFC 7009): the request is
//! read as at the token endpoint (body, Basic credentials, the caller's address for the
//! failure limits), the core decides, and errors are the token endpoint's JSON.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use passport::{Passport, TokenRequest};

use crate::error::{OAuthJsonError, no_store};
use crate::token::{authorization_scheme, basic_credentials, limited_peer, read_params};

/// The introspection endpoint handler: `{"active": …}` JSON, never cached.
pub async fn introspect_token(State(passport): State<Passport>, request: Request) -> Response {
    let (request, scheme) = match token_request(&passport, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    match passport.introspect(&request).await {
        Ok(answer) => {
            let mut response = (StatusCode::OK, Json(answer)).into_response();
            no_store(&mut response);
            response
        }
        Err(err) => OAuthJsonError::new(err, scheme).into_response(),
    }
}

/// The revocation endpoint handler: 200 with an empty body whether or not the token was known
/// (RFC 7009 §2.2).
pub async fn revoke_token(State(passport): State<Passport>, request: Request) -> Response {
    let (request, scheme) = match token_request(&passport, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    match passport.revoke(&request).await {
        Ok(_) => {
            let mut response = StatusCode::OK.into_response();
            no_store(&mut response);
            response
        }
        Err(err) => OAuthJsonError::new(err, scheme).into_response(),
    }
}

/// The request's parameters, Basic credentials and address, with the scheme of its
/// `Authorization` header; or the answer refusing it (no peer address, unreadable body).
async fn token_request(
    passport: &Passport,
    request: Request,
) -> Result<(TokenRequest, Option<&'static str>), Response> {
    let scheme = authorization_scheme(request.headers());
    let basic = basic_credentials(request.headers());
    let peer = limited_peer(passport, request.extensions()).map_err(crate::rate_limit::refusal)?;
    let params = read_params(request)
        .await
        .map_err(|err| OAuthJsonError::new(err, scheme).into_response())?;
    Ok((TokenRequest::new(params, basic).from_address(peer), scheme))
}
