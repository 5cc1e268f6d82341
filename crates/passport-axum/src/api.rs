//! The JSON management API (Passport's JSON API, for first-party pages such as the account
//! dashboard): scopes, the user's own clients, the apps they authorized, and their personal
//! access tokens. Authenticated by the browser session; every state-changing request needs the
//! CSRF token in `X-CSRF-TOKEN` / `X-XSRF-TOKEN` (or `_token` in the body). A user only ever
//! sees and changes their own clients and tokens (404 otherwise).

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use passport::{AccessTokenRecord, Client, RedirectUri, User};
use serde_json::{Map, Value, json};

use crate::error::no_store;
use crate::pages::{Pages, refresh_transient_cookie};
use crate::session::{self, Session, csrf_header};
use crate::token::MAX_BODY;

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "message": text }))).into_response()
}

fn unprocessable(errors: FieldErrors) -> Response {
    let mut map = Map::new();
    for (field, text) in &errors {
        map.insert((*field).to_owned(), json!([text]));
    }
    let first = errors.first().map(|(_, t)| t.clone()).unwrap_or_default();
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({ "message": first, "errors": map })),
    )
        .into_response()
}

fn server_error(err: &passport::OAuthError) -> Response {
    tracing::error!(error = %err, "JSON API request failed");
    message(StatusCode::INTERNAL_SERVER_ERROR, "Server error.")
}

/// The signed-in user of a JSON API request; 401 without a session, 419 when a state-changing
/// request lacks the CSRF token.
async fn authenticate(
    pages: &Pages,
    method: &Method,
    headers: &HeaderMap,
    body_token: Option<&str>,
) -> Result<(Session, User), Response> {
    let session = match session::load(&pages.passport, headers).await {
        Ok(Some(session)) => session,
        Ok(None) => return Err(message(StatusCode::UNAUTHORIZED, "Unauthenticated.")),
        Err(err) => return Err(server_error(&err)),
    };
    let user = match pages.current_user(&session).await {
        Ok(Some(user)) => user,
        Ok(None) => return Err(message(StatusCode::UNAUTHORIZED, "Unauthenticated.")),
        Err(err) => return Err(server_error(&err)),
    };
    if !matches!(*method, Method::GET | Method::HEAD) && !session.csrf_matches(csrf_header(headers).or(body_token)) {
        let status = StatusCode::from_u16(419).unwrap_or(StatusCode::FORBIDDEN);
        return Err(message(status, "CSRF token mismatch."));
    }
    Ok((session, user))
}

/// Reads a JSON object (or a form) body.
async fn read_body(request: Request<Body>) -> Result<Map<String, Value>, Response> {
    let is_json = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
    let bytes = to_bytes(request.into_body(), MAX_BODY)
        .await
        .map_err(|_| message(StatusCode::PAYLOAD_TOO_LARGE, "The request body is too large."))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    if is_json {
        return match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(message(
                StatusCode::BAD_REQUEST,
                "The request body must be a JSON object.",
            )),
        };
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| message(StatusCode::BAD_REQUEST, "The request body is not valid UTF-8."))?;
    let pairs = crate::token::parse_query(text)
        .map_err(|e| message(StatusCode::BAD_REQUEST, e.hint().unwrap_or("Malformed body.")))?;
    Ok(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

async fn authenticated_body(pages: &Pages, request: Request) -> Result<(Session, User, Map<String, Value>), Response> {
    let method = request.method().clone();
    let headers = request.headers().clone();
    let body = read_body(request).await?;
    let token = body.get("_token").and_then(Value::as_str).map(str::to_owned);
    let (session, user) = authenticate(pages, &method, &headers, token.as_deref()).await?;
    Ok((session, user, body))
}

fn client_json(client: &Client) -> Value {
    json!({
        "id": client.id,
        "user_id": client.owner_id,
        "name": client.name,
        "redirect": client.redirect_uris.join(","),
        "redirect_uris": client.redirect_uris,
        "grant_types": client.grant_types,
        "confidential": client.is_confidential(),
        "revoked": client.revoked,
        "created_at": client.created_at,
        "updated_at": client.updated_at,
    })
}

fn token_json(token: &AccessTokenRecord) -> Value {
    json!({
        "id": token.id,
        "user_id": token.user_id,
        "client_id": token.client_id,
        "name": token.name,
        "scopes": token.scopes,
        "revoked": token.revoked,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
    })
}

/// Validates `name` and `redirect` (comma-separated URIs) of a client form.
/// Validation errors: field → message.
type FieldErrors = Vec<(&'static str, String)>;

/// The required `name` field: 1 to 255 characters, no control characters.
fn name_field(body: &Map<String, Value>, errors: &mut FieldErrors) -> String {
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_owned();
    if name.is_empty() {
        errors.push(("name", "The name field is required.".to_owned()));
    } else if name.chars().count() > 255 {
        errors.push(("name", "The name may not be greater than 255 characters.".to_owned()));
    } else if name.chars().any(char::is_control) {
        errors.push(("name", "The name may not contain control characters.".to_owned()));
    }
    name
}

fn client_fields(body: &Map<String, Value>) -> Result<(String, Vec<String>), FieldErrors> {
    let mut errors = Vec::new();
    let name = name_field(body, &mut errors);
    let redirect: Vec<String> = match body.get("redirect") {
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::trim)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    if redirect.is_empty() {
        errors.push(("redirect", "The redirect field is required.".to_owned()));
    } else if redirect.iter().any(|u| RedirectUri::parse(u).is_err()) {
        errors.push((
            "redirect",
            "One or more redirects have an invalid URI format.".to_owned(),
        ));
    }
    if errors.is_empty() {
        Ok((name, redirect))
    } else {
        Err(errors)
    }
}

fn truthy(value: Option<&Value>) -> Option<bool> {
    match value? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => Some(n.as_i64() != Some(0)),
        Value::String(s) => Some(!matches!(
            s.to_ascii_lowercase().as_str(),
            "0" | "false" | "off" | "no" | ""
        )),
        _ => None,
    }
}

/// `GET /oauth/scopes`.
pub(crate) async fn scopes(State(pages): State<Pages>, headers: HeaderMap) -> Response {
    if let Err(response) = authenticate(&pages, &Method::GET, &headers, None).await {
        return response;
    }
    Json(pages.passport.scopes().scopes()).into_response()
}

/// `GET /oauth/clients`.
pub(crate) async fn list_clients(State(pages): State<Pages>, headers: HeaderMap) -> Response {
    let (_, user) = match authenticate(&pages, &Method::GET, &headers, None).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    match pages.passport.store().clients_owned_by(&user.id).await {
        Ok(clients) => Json(clients.iter().map(client_json).collect::<Vec<_>>()).into_response(),
        Err(err) => server_error(&err.into()),
    }
}

/// `POST /oauth/clients` (`name`, `redirect`, optional `confidential`): 201 with the plain
/// secret, shown this once.
pub(crate) async fn create_client(State(pages): State<Pages>, request: Request) -> Response {
    let (_, user, body) = match authenticated_body(&pages, request).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    let (name, redirect) = match client_fields(&body) {
        Ok(fields) => fields,
        Err(errors) => return unprocessable(errors),
    };
    let confidential = truthy(body.get("confidential")).unwrap_or(true);
    match pages
        .passport
        .create_owned_client(&user.id, &name, redirect, confidential)
        .await
    {
        Ok((client, secret)) => {
            let mut value = client_json(&client);
            let plain = secret.as_ref().map(|s| s.expose_secret().to_owned());
            value["secret"] = json!(plain);
            value["plainSecret"] = json!(plain);
            let mut response = (StatusCode::CREATED, Json(value)).into_response();
            no_store(&mut response);
            response
        }
        Err(err) => server_error(&err),
    }
}

/// `PUT /oauth/clients/{id}` (`name`, `redirect`).
pub(crate) async fn update_client(State(pages): State<Pages>, Path(id): Path<String>, request: Request) -> Response {
    let (_, user, body) = match authenticated_body(&pages, request).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    let passport = &pages.passport;
    match passport.owned_client(&user.id, &id).await {
        Ok(Some(_)) => {}
        Ok(None) => return message(StatusCode::NOT_FOUND, "Not found."),
        Err(err) => return server_error(&err),
    }
    let (name, redirect) = match client_fields(&body) {
        Ok(fields) => fields,
        Err(errors) => return unprocessable(errors),
    };
    if let Err(err) = passport
        .store()
        .update_client(&id, &name, &redirect, passport.now())
        .await
    {
        return server_error(&err.into());
    }
    match passport.owned_client(&user.id, &id).await {
        Ok(Some(client)) => Json(client_json(&client)).into_response(),
        Ok(None) => message(StatusCode::NOT_FOUND, "Not found."),
        Err(err) => server_error(&err),
    }
}

/// `DELETE /oauth/clients/{id}`: revokes the client and its tokens.
pub(crate) async fn delete_client(State(pages): State<Pages>, Path(id): Path<String>, request: Request) -> Response {
    let (_, user, _) = match authenticated_body(&pages, request).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    let passport = &pages.passport;
    match passport.owned_client(&user.id, &id).await {
        Ok(Some(_)) => match passport.revoke_client_and_tokens(&id).await {
            Ok(_) => StatusCode::NO_CONTENT.into_response(),
            Err(err) => server_error(&err),
        },
        Ok(None) => message(StatusCode::NOT_FOUND, "Not found."),
        Err(err) => server_error(&err),
    }
}

/// `GET /oauth/tokens`: the user's live tokens for the apps they authorized, with the client.
pub(crate) async fn list_tokens(State(pages): State<Pages>, headers: HeaderMap) -> Response {
    let (_, user) = match authenticate(&pages, &Method::GET, &headers, None).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    match pages.passport.connections(&user.id).await {
        Ok(connections) => {
            let list: Vec<Value> = connections
                .iter()
                .flat_map(|c| {
                    c.tokens.iter().map(|t| {
                        let mut value = token_json(t);
                        value["client"] = json!({"id": c.client.id, "name": c.client.name});
                        value
                    })
                })
                .collect();
            Json(list).into_response()
        }
        Err(err) => server_error(&err),
    }
}

/// `DELETE /oauth/tokens/{id}` and `DELETE /oauth/personal-access-tokens/{id}`: revokes the
/// token (and its refresh tokens) if it is the user's.
pub(crate) async fn revoke_token(State(pages): State<Pages>, Path(id): Path<String>, request: Request) -> Response {
    let (_, user, _) = match authenticated_body(&pages, request).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    match pages.passport.revoke_user_token(&user.id, &id).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => message(StatusCode::NOT_FOUND, "Not found."),
        Err(err) => server_error(&err),
    }
}

/// `GET /oauth/personal-access-tokens`.
pub(crate) async fn list_personal_tokens(State(pages): State<Pages>, headers: HeaderMap) -> Response {
    let (_, user) = match authenticate(&pages, &Method::GET, &headers, None).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    match pages.passport.personal_access_tokens(&user.id).await {
        Ok(tokens) => Json(tokens.iter().map(token_json).collect::<Vec<_>>()).into_response(),
        Err(err) => server_error(&err),
    }
}

/// `POST /oauth/personal-access-tokens` (`name`, `scopes`): `{accessToken, token}`.
pub(crate) async fn create_personal_token(State(pages): State<Pages>, request: Request) -> Response {
    let (_, user, body) = match authenticated_body(&pages, request).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    let passport = &pages.passport;
    let mut errors = Vec::new();
    let name = name_field(&body, &mut errors);
    let scopes: Vec<String> = match body.get("scopes") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().map(|v| v.as_str().unwrap_or("\u{0}").to_owned()).collect(),
        Some(Value::String(s)) => s
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(_) => vec!["\u{0}".to_owned()],
    };
    if let Some(bad) = scopes.iter().find(|s| !passport.scopes().has_scope(s)) {
        errors.push(("scopes", format!("The scope {bad:?} is not defined.")));
    }
    if !errors.is_empty() {
        return unprocessable(errors);
    }
    match passport.create_token(&user.id, None, &name, &scopes).await {
        Ok(issued) => {
            let mut response =
                Json(json!({"accessToken": issued.access_token, "token": token_json(&issued.token)})).into_response();
            no_store(&mut response);
            response
        }
        Err(err) if err.code() == passport::ErrorCode::InvalidRequest => message(
            StatusCode::SERVICE_UNAVAILABLE,
            err.hint().unwrap_or("No personal access client."),
        ),
        Err(err) => server_error(&err),
    }
}

/// `POST /oauth/token/refresh`: a fresh SPA token cookie for the signed-in user.
pub(crate) async fn refresh_cookie(State(pages): State<Pages>, request: Request) -> Response {
    let (session, user, _) = match authenticated_body(&pages, request).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    let mut response = (StatusCode::OK, "Refreshed.").into_response();
    refresh_transient_cookie(&pages, &session, &user.id, &mut response);
    no_store(&mut response);
    response
}
