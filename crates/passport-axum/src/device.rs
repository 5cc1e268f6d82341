//! The device flow's HTTP side (RFC 8628): `POST /oauth/device/code` for devices, and for the
//! person on another screen the user-code page (`GET /oauth/device`), the device consent page
//! (`GET /oauth/device/authorize?user_code=`) and its approve / deny forms. Consent uses the
//! same single-use `auth_token` + CSRF rules as the browser flow; wrong user codes are rate
//! limited per session and per address.

use std::net::IpAddr;

use axum::Json;
use axum::extract::{FromRequestParts as _, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use passport::{DeviceCodeRecord, OAuthError, PendingConsent, TokenRequest, User, display_user_code};
use serde_json::json;

use crate::error::{OAuthJsonError, no_store};
use crate::extract::{ConsentDecision, SignedIn};
use crate::page::{PageError, redirect};
use crate::pages::{Pages, param};
use crate::rate_limit::{NO_PEER_ADDRESS, Refused, peer_address, refusal};
use crate::session::{self, Session};
use crate::token::{authorization_scheme, basic_credentials, limited_peer, parse_query, read_params};

/// The absolute URL of the user-code page, from the configured issuer only: never from the
/// request's `Host`, which the caller chooses.
fn verification_uri(pages: &Pages) -> Result<String, OAuthError> {
    let issuer = pages.passport.settings().issuer.as_deref().ok_or_else(|| {
        OAuthError::server_error("the device flow needs an issuer (the server's public URL) to build verification_uri")
    })?;
    Ok(format!(
        "{}/{}/device",
        issuer.trim_end_matches('/'),
        pages.passport.settings().path
    ))
}

/// `POST /oauth/device/code` (`client_id`, `scope`).
pub(crate) async fn device_code(State(pages): State<Pages>, request: Request) -> Result<Response, Response> {
    let headers = request.headers().clone();
    let scheme = authorization_scheme(&headers);
    let fail = |e| OAuthJsonError::new(e, scheme).into_response();
    let peer = limited_peer(&pages.passport, request.extensions()).map_err(refusal)?;
    let params = read_params(request).await.map_err(fail)?;
    let request = TokenRequest::new(params, basic_credentials(&headers)).from_address(peer);
    let uri = verification_uri(&pages).map_err(fail)?;
    let authorization = pages.passport.request_device_code(&request, &uri).await.map_err(fail)?;
    let mut response = (StatusCode::OK, Json(authorization)).into_response();
    no_store(&mut response);
    Ok(response)
}

/// The `user_code` of a query string; repeated or malformed parameters are an error.
fn user_code(query: Option<&str>) -> Result<Option<String>, OAuthError> {
    let params = parse_query(query.unwrap_or_default())?;
    Ok(param(&params, "user_code")
        .map(|c| c.trim().chars().take(32).collect::<String>())
        .filter(|c| !c.is_empty()))
}

/// `GET /oauth/device`: the page where a person types the code; with `?user_code=` it goes
/// straight to the next step.
pub(crate) async fn user_code_page(
    State(pages): State<Pages>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    if let Some(code) = user_code(query.as_deref())? {
        let location = crate::pages::with_query(&pages.device_authorize_url(), &[("user_code", code.trim())]);
        return Ok(redirect(&location));
    }
    // The entry form is a plain GET form: no session is needed (nor stored) to show it.
    let session = session::load(&pages, &headers).await?;
    let page = entry_page(&pages, StatusCode::OK, session.as_ref(), "", None);
    Ok(match session {
        Some(session) => session.attach(page),
        None => page,
    })
}

fn entry_page(
    pages: &Pages,
    status: StatusCode,
    session: Option<&Session>,
    typed: &str,
    error: Option<&str>,
) -> Response {
    let context = json!({"authorize_url": pages.device_authorize_url(), "user_code": typed, "error": error});
    pages.render(status, "device_user_code.html", context, session)
}

/// `GET /oauth/device/authorize?user_code=`: the device consent page. Guests sign in first;
/// wrong codes count against the address and the session.
pub(crate) async fn authorize_page(
    State(pages): State<Pages>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Result<Response, Response> {
    let typed = user_code(query.as_deref()).map_err(|e| PageError::from(e).into_response())?;
    let address = peer_address(request.extensions());
    let (mut parts, _) = request.into_parts();
    let SignedIn { session, user } = SignedIn::from_request_parts(&mut parts, &pages).await?;
    let Some(typed) = typed else {
        return Ok(redirect(&pages.device_url()));
    };
    let page = match too_many_attempts(&pages, address, &session, &typed) {
        Some(page) => page,
        None => device_consent_page(&pages, &session, &user, &typed)
            .await
            .map_err(IntoResponse::into_response)?,
    };
    Ok(session.attach(page))
}

/// The entry page with `Retry-After` when this address or session typed too many codes.
fn too_many_attempts(pages: &Pages, address: Option<IpAddr>, session: &Session, typed: &str) -> Option<Response> {
    let refused = pages
        .device_address_limiter
        .check(address)
        .and_then(|()| pages.device_session_limiter.check(session.id()))
        .err()?;
    let Refused::Wait(wait) = refused else {
        return Some(pages.error_page(&OAuthError::server_error(NO_PEER_ADDRESS)));
    };
    let error = format!("Too many attempts. Wait {wait} seconds, then try again.");
    let mut page = entry_page(pages, StatusCode::TOO_MANY_REQUESTS, Some(session), typed, Some(&error));
    if let Ok(value) = wait.to_string().parse() {
        page.headers_mut().insert(header::RETRY_AFTER, value);
    }
    Some(page)
}

/// The consent page for the live device authorization `typed` names, or the entry page again
/// with an error.
async fn device_consent_page(
    pages: &Pages,
    session: &Session,
    user: &User,
    typed: &str,
) -> Result<Response, PageError> {
    let passport = &pages.passport;
    let record = passport.find_device_authorization(typed).await?;
    let client = match &record {
        Some(record) => passport.find_active_client(record.client_id.as_str()).await?,
        None => None,
    };
    let (Some(record), Some(client)) = (record, client) else {
        let error = "That code is wrong or has expired. Check the code on your device and try again.";
        return Ok(entry_page(
            pages,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(session),
            typed,
            Some(error),
        ));
    };
    let auth_token = passport.begin_device_consent(session.id(), &user.id, &record).await?;
    Ok(pages.render(
        StatusCode::OK,
        "device_authorize.html",
        device_context(pages, &record, &client, user, &auth_token),
        Some(session),
    ))
}

fn device_context(
    pages: &Pages,
    record: &DeviceCodeRecord,
    client: &passport::Client,
    user: &User,
    auth_token: &str,
) -> serde_json::Value {
    let scopes = pages
        .passport
        .scopes()
        .scopes_for(record.scopes.iter().map(String::as_str));
    json!({
        "client": {"id": client.id, "name": client.name},
        "user": user,
        "scopes": scopes,
        "user_code": display_user_code(&record.user_code),
        "auth_token": auth_token,
        "authorize_url": pages.device_authorize_url(),
    })
}

fn answered_already() -> OAuthError {
    OAuthError::invalid_grant("This device request was already answered or has expired")
        .with_description("The device request can no longer be answered.")
}

/// `POST /oauth/device/authorize` (approve; deny with `_method=DELETE`) and `DELETE`.
pub(crate) async fn decide(State(pages): State<Pages>, decision: ConsentDecision) -> Result<Response, PageError> {
    let passport = &pages.passport;
    let consent = passport
        .take_consent(&decision.auth_token, decision.session.id(), &decision.user_id)
        .await?;
    let Some(PendingConsent::Device(device)) = consent else {
        return Err(PageError::InvalidAuthToken);
    };
    let approve = !decision.deny;
    if !passport
        .decide_device(&device.device_code_id, &decision.user_id, approve)
        .await?
    {
        return Err(answered_already().into());
    }
    let page = pages.render(
        StatusCode::OK,
        "device_done.html",
        json!({"approved": approve}),
        Some(&decision.session),
    );
    Ok(decision.session.attach(page))
}
