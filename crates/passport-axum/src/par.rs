//! `POST /oauth/par` (RFC 9126 §2): reads the body as the token endpoint does (form or JSON,
//! strictly), authenticates the client like it (body or HTTP Basic), and hands the
//! authorization request's parameters to the core. Success is `201 Created` with the
//! `request_uri`; errors are RFC 6749 §5.2 JSON. Both carry `Cache-Control: no-store`.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use passport::{AuthorizationRequest, Passport, TokenRequest};

use crate::error::{OAuthJsonError, no_store};
use crate::rate_limit::refusal;
use crate::token::{authorization_scheme, basic_credentials, limited_peer, read_params};

/// The PAR endpoint handler.
pub(crate) async fn push(State(passport): State<Passport>, request: Request) -> Response {
    let headers = request.headers().clone();
    let scheme = authorization_scheme(&headers);
    let fail = |e| OAuthJsonError::new(e, scheme).into_response();
    let peer = match limited_peer(&passport, request.extensions()) {
        Ok(peer) => peer,
        Err(refused) => return refusal(refused),
    };
    // RFC 9449 §10.1: a DPoP proof at the PAR endpoint binds the code to its key.
    let proof = match crate::guard::dpop_proof(&headers) {
        Ok(proof) => proof.map(str::to_owned),
        Err(()) => return fail(passport::OAuthError::invalid_dpop_proof("Send exactly one DPoP header")),
    };
    let params = match read_params(request).await {
        Ok(params) => params,
        Err(err) => return fail(err),
    };
    let authorization = match AuthorizationRequest::from_pairs(params.clone()) {
        Ok(authorization) => authorization,
        Err(err) => return fail(err),
    };
    let auth = TokenRequest::new(params, basic_credentials(&headers))
        .from_address(peer)
        .with_dpop_proof(proof);
    match passport.push_authorization(&auth, authorization).await {
        Ok(pushed) => {
            let mut response = (StatusCode::CREATED, Json(pushed)).into_response();
            no_store(&mut response);
            response
        }
        Err(err) => fail(err),
    }
}
