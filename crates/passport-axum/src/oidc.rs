//! OpenID Connect over HTTP: the userinfo endpoint (Core §5.3), RP-initiated logout (the
//! `end_session_endpoint`, RP-Initiated Logout 1.0) and `form_post` answers of the
//! authorization endpoint (OAuth 2.0 Form Post Response Mode).
//!
//! * `GET` / `POST /{path}/userinfo`: a bearer token in the `Authorization` header or, on
//!   `POST`, the `access_token` form field (RFC 6750 §2.1, §2.2); refusals as the guard's
//!   (RFC 6750 §3: 401 `invalid_token`, 403 `insufficient_scope`, with `WWW-Authenticate`).
//!   A DPoP-bound token only as `Authorization: DPoP` with a proof, as at the guard (RFC 9449
//!   §7); never in the body.
//! * `GET` / `POST /{path}/logout`: a `GET` ends the session only when its `id_token_hint`
//!   names the signed-in user; otherwise a confirmation page posts back here with the
//!   session's CSRF token. A `POST` from a relying party (no `_token`) is sent on to the `GET`
//!   form (303), which carries the session cookie that a cross-site `POST` does not.

use axum::Json;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use passport::{AuthorizationResponse, LogoutRequest, Passport, UserinfoRefusal, ValidatedLogout, random_alphanumeric};
use serde_json::json;

use crate::guard::{GuardRejection, Presented, check_presented, presented};
use crate::page::{PageError, redirect};
use crate::pages::{Pages, param};
use crate::session::{self, Session};
use crate::token::{parse_query, read_params};

/// Sends an answer of the authorization endpoint to the client: a redirect (query or
/// fragment), or for `form_post` a page whose form posts the parameters to the redirect URI
/// as soon as it loads (its inline script allowed by a per-response CSP nonce).
pub(crate) fn respond(pages: &Pages, answer: &AuthorizationResponse) -> Response {
    if let Some(location) = answer.location() {
        return redirect(&location);
    }
    let nonce = random_alphanumeric(22).unwrap_or_default();
    let fields: Vec<_> = answer
        .params
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    let context = json!({"action": answer.redirect_uri, "fields": fields, "csp_nonce": nonce});
    let mut page = pages.render(StatusCode::OK, "form_post.html", context, None);
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"
    );
    let headers = page.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    page
}

/// `GET` and `POST /{path}/userinfo`.
pub(crate) async fn userinfo(State(passport): State<Passport>, request: Request) -> Response {
    let headers = request.headers().clone();
    let method = request.method().clone();
    let path = request
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or(request.uri().path(), |original| original.0.path())
        .to_owned();
    let in_header = presented(&headers);
    let in_body = match body_token(request).await {
        Ok(token) => token,
        Err(response) => return response,
    };
    let presented = match (in_header, &in_body) {
        (Some(_), Some(_)) => return invalid_request("Send the access token in one place only"),
        (Some(presented), None) => presented,
        (None, Some(token)) => Presented { token, dpop: false },
        (None, None) => return GuardRejection::Missing.into_response(),
    };
    let token = match check_presented(&passport, &headers, &method, &path, presented).await {
        Ok(token) => token,
        Err(rejection) => return rejection.into_response(),
    };
    match passport.userinfo(&token).await {
        Ok(claims) => {
            let mut response = (StatusCode::OK, Json(claims)).into_response();
            crate::error::no_store(&mut response);
            response
        }
        Err(UserinfoRefusal::NoOpenidScope) => {
            GuardRejection::InsufficientScope(vec!["openid".to_owned()]).into_response()
        }
        Err(UserinfoRefusal::Failed(err)) => crate::error::OAuthJsonError::from(err).into_response(),
        Err(_) => GuardRejection::Invalid.into_response(),
    }
}

/// The `access_token` of a form-encoded `POST` body (RFC 6750 §2.2); other bodies are not
/// read for it.
async fn body_token(request: Request) -> Result<Option<String>, Response> {
    let form = request.method() == Method::POST
        && request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if !form {
        return Ok(None);
    }
    let params = read_params(request)
        .await
        .map_err(|err| invalid_request(err.hint().unwrap_or("The request body is malformed")))?;
    Ok(param(&params, "access_token").map(str::to_owned))
}

/// RFC 6750 §3.1 `invalid_request`: 400 with its challenge.
fn invalid_request(description: &str) -> Response {
    let mut response = (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "invalid_request", "error_description": description})),
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"passport\", error=\"invalid_request\""),
    );
    response
}

/// `GET /{path}/logout` (RP-Initiated Logout 1.0 §2).
pub(crate) async fn logout(
    State(pages): State<Pages>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let request = LogoutRequest::from_pairs(parse_query(query.as_deref().unwrap_or_default())?)?;
    let logout = pages.passport.validate_logout(&request).await?;
    let Some(mut session) = session::load(&pages, &headers).await? else {
        return Ok(signed_out(&pages, &logout));
    };
    let Some(user_id) = session.user_id().map(str::to_owned) else {
        // Nobody to sign out.
        return Ok(session.attach(signed_out(&pages, &logout)));
    };
    if logout.hints_user(&user_id) {
        session.sign_out();
        return Ok(session.attach(signed_out(&pages, &logout)));
    }
    let page = confirmation_page(&pages, &session, &logout);
    Ok(session.attach(page))
}

/// `POST /{path}/logout`: our confirmation form (with `_token`: CSRF checked, 419 otherwise),
/// or a relying party's request (sent on to the `GET` form).
pub(crate) async fn logout_post(State(pages): State<Pages>, request: Request) -> Result<Response, PageError> {
    let headers = request.headers().clone();
    let fields = read_params(request).await?;
    let Some(token) = param(&fields, "_token") else {
        let logout_fields: Vec<(&str, &str)> = fields
            .iter()
            .filter(|(k, _)| k != "_token")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let location = passport::redirect_with(&pages.logout_url(), false, &logout_fields);
        let mut response = redirect(&location);
        *response.status_mut() = StatusCode::SEE_OTHER;
        return Ok(response);
    };
    let mut session = session::load(&pages, &headers).await?.ok_or(PageError::PageExpired)?;
    if !session.csrf_matches(Some(token)) {
        return Err(PageError::PageExpired);
    }
    let request = LogoutRequest::from_pairs(fields.iter().filter(|(k, _)| k != "_token").cloned())?;
    let logout = pages.passport.validate_logout(&request).await?;
    session.sign_out();
    Ok(session.attach(signed_out(&pages, &logout)))
}

/// After signing out: to the registered post-logout redirect URI (with `state`), else a page.
fn signed_out(pages: &Pages, logout: &ValidatedLogout) -> Response {
    match logout.redirect_location() {
        Some(location) => redirect(&location),
        None => pages.render(
            StatusCode::OK,
            "signed_out.html",
            json!({"client": logout.client.as_ref().map(|c| json!({"name": c.name}))}),
            None,
        ),
    }
}

/// "Sign out?" with a form posting the request back with the session's CSRF token.
fn confirmation_page(pages: &Pages, session: &Session, logout: &ValidatedLogout) -> Response {
    let context = json!({
        "logout_url": pages.logout_url(),
        "client": logout.client.as_ref().map(|c| json!({"id": c.id, "name": c.name})),
        "post_logout_redirect_uri": logout.post_logout_redirect_uri,
        "state": logout.state,
    });
    pages.render(StatusCode::OK, "logout.html", context, Some(session))
}
