//! The device flow's HTTP side (RFC 8628): `POST /oauth/device/code` for devices, and for the
//! person on another screen the user-code page (`GET /oauth/device`), the device consent page
//! (`GET /oauth/device/authorize?user_code=`) and its approve / deny forms. Consent uses the
//! same single-use `auth_token` + CSRF rules as the browser flow; wrong user codes are rate
//! limited per session and per address.

use axum::Json;
use axum::extract::{OriginalUri, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use passport::{OAuthError, PendingAuthorizationRecord, display_user_code, random_alphanumeric, sha256_hex};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{OAuthJsonError, no_store};
use crate::pages::{Pages, param, redirect};
use crate::rate_limit::peer_address;
use crate::session::{self};
use crate::token::{authorization_scheme, basic_credentials, parse_query, read_params};

/// What the device consent form completes, stored server-side with the `auth_token`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DevicePending {
    device_code_id: String,
    client_id: String,
}

/// The absolute URL of the user-code page: from the configured issuer, else from `Host`.
fn verification_uri(pages: &Pages, headers: &HeaderMap) -> String {
    let path = format!("/{}/device", pages.passport.settings().path);
    if let Some(issuer) = &pages.passport.settings().issuer {
        return format!("{}{path}", issuer.trim_end_matches('/'));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        })
        .unwrap_or("localhost");
    format!("http://{host}{path}")
}

/// `POST /oauth/device/code` (`client_id`, `scope`).
pub(crate) async fn device_code(State(pages): State<Pages>, request: Request) -> Response {
    let headers = request.headers().clone();
    let scheme = authorization_scheme(&headers);
    let params = match read_params(request).await {
        Ok(params) => params,
        Err(err) => return OAuthJsonError::new(err, scheme).into_response(),
    };
    let basic = basic_credentials(&headers);
    let client_id = param(&params, "client_id").or(basic.as_ref().map(|b| b.client_id.as_str()));
    let uri = verification_uri(&pages, &headers);
    match pages
        .passport
        .request_device_code(client_id.map(str::trim), param(&params, "scope"), &uri)
        .await
    {
        Ok(authorization) => {
            let mut response = (StatusCode::OK, Json(authorization)).into_response();
            no_store(&mut response);
            response
        }
        Err(err) => OAuthJsonError::new(err, scheme).into_response(),
    }
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
) -> Response {
    let typed = match user_code(query.as_deref()) {
        Ok(typed) => typed,
        Err(err) => return pages.error_page(&err),
    };
    if let Some(code) = typed {
        let location = crate::pages::with_query(&pages.device_authorize_url(), &[("user_code", code.trim())]);
        return redirect(&location);
    }
    // The entry form is a plain GET form: no session is needed (nor stored) to show it.
    let session = match session::load(&pages.passport, &headers).await {
        Ok(session) => session,
        Err(err) => return pages.error_page(&err),
    };
    let context = json!({"authorize_url": pages.device_authorize_url(), "user_code": "", "error": null});
    let response = pages.render(StatusCode::OK, "device_user_code.html", context, session.as_ref());
    match session {
        Some(session) => pages.finish(session, response).await,
        None => response,
    }
}

/// `GET /oauth/device/authorize?user_code=`: the device consent page.
pub(crate) async fn authorize_page(
    State(pages): State<Pages>,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    let typed = match user_code(query.as_deref()) {
        Ok(typed) => typed,
        Err(err) => return pages.error_page(&err),
    };
    let address = peer_address(request.extensions());
    let headers = request.headers();
    let passport = &pages.passport;
    let mut session = match session::load_or_start(passport, headers).await {
        Ok(session) => session,
        Err(err) => return pages.error_page(&err),
    };
    let user = match pages.current_user(&session).await {
        Ok(user) => user,
        Err(err) => return pages.error_page(&err),
    };
    let Some(user) = user else {
        session.insert("intended", serde_json::Value::from(crate::pages::intended(&uri)));
        let response = redirect(pages.login_url());
        return pages.finish(session, response).await;
    };
    let Some(typed) = typed else {
        return redirect(&pages.device_url());
    };
    if let Err(wait) = pages
        .device_address_limiter
        .check(address)
        .and_then(|()| pages.device_session_limiter.check(session.id()))
    {
        let mut response = retry_page(&pages, &session, &typed, wait);
        if let Ok(value) = wait.to_string().parse() {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return pages.finish(session, response).await;
    }
    let record = match passport.find_device_authorization(&typed).await {
        Ok(record) => record,
        Err(err) => return pages.error_page(&err),
    };
    let client = match &record {
        Some(record) => match passport.find_active_client(&record.client_id).await {
            Ok(client) => client,
            Err(err) => return pages.error_page(&err),
        },
        None => None,
    };
    let (Some(record), Some(client)) = (record, client) else {
        let response = pages.render(
            StatusCode::UNPROCESSABLE_ENTITY,
            "device_user_code.html",
            json!({"authorize_url": pages.device_authorize_url(), "user_code": typed,
                   "error": "That code is wrong or has expired. Check the code on your device and try again."}),
            Some(&session),
        );
        return pages.finish(session, response).await;
    };
    let auth_token = match random_alphanumeric(40) {
        Ok(token) => token,
        Err(err) => return pages.error_page(&err),
    };
    let payload = json!(DevicePending {
        device_code_id: record.id.clone(),
        client_id: client.id.clone(),
    });
    let pending = PendingAuthorizationRecord {
        id: sha256_hex(&auth_token),
        session_id: session.id().to_owned(),
        user_id: user.id.clone(),
        payload,
        expires_at: record.expires_at,
    };
    if let Err(err) = passport.store().insert_pending(&pending).await {
        return pages.error_page(&err.into());
    }
    let scopes = passport.scopes().scopes_for(record.scopes.iter().map(String::as_str));
    let response = pages.render(
        StatusCode::OK,
        "device_authorize.html",
        json!({
            "client": {"id": client.id, "name": client.name},
            "user": user,
            "scopes": scopes,
            "user_code": display_user_code(&record.user_code),
            "auth_token": auth_token,
            "authorize_url": pages.device_authorize_url(),
        }),
        Some(&session),
    );
    pages.finish(session, response).await
}

fn retry_page(pages: &Pages, session: &session::Session, typed: &str, wait: u64) -> Response {
    pages.render(
        StatusCode::TOO_MANY_REQUESTS,
        "device_user_code.html",
        json!({"authorize_url": pages.device_authorize_url(), "user_code": typed,
               "error": format!("Too many attempts. Wait {wait} seconds, then try again.")}),
        Some(session),
    )
}

/// `POST /oauth/device/authorize` (approve; deny with `_method=DELETE`) and `DELETE`.
pub(crate) async fn decide(State(pages): State<Pages>, request: Request) -> Response {
    let decision = match pages.take_decision(request).await {
        Ok(decision) => decision,
        Err(response) => return response,
    };
    let (deny, user_id, pending, session) = (decision.deny, decision.user_id, decision.pending, decision.session);
    let passport = &pages.passport;
    let Ok(device) = serde_json::from_value::<DevicePending>(pending.payload) else {
        return pages.invalid_auth_token();
    };
    match passport.decide_device(&device.device_code_id, &user_id, !deny).await {
        Ok(true) => {
            let response = pages.render(
                StatusCode::OK,
                "device_done.html",
                json!({"approved": !deny}),
                Some(&session),
            );
            pages.finish(session, response).await
        }
        Ok(false) => pages.error_page(
            &OAuthError::invalid_grant("This device request was already answered or has expired")
                .with_description("The device request can no longer be answered."),
        ),
        Err(err) => pages.error_page(&err),
    }
}
