//! The JSON management API (Passport's JSON API, for first-party pages such as the account
//! dashboard): scopes, the user's own clients, the apps they authorized, and their personal
//! access tokens. Authenticated by the browser session ([`ApiUser`]); every state-changing
//! request needs the CSRF token in `X-CSRF-TOKEN` / `X-XSRF-TOKEN` (or `_token` in the body)
//! ([`ApiForm`]). A user only ever sees and changes their own clients and tokens (404
//! otherwise). Validation errors are 422 `{"message", "errors": {field: [text]}}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use passport::{AccessTokenRecord, Client, ErrorCode, NameError, OAuthError, RedirectUri, check_name};
use serde_json::{Map, Value, json};

use crate::error::no_store;
use crate::extract::{ApiForm, ApiUser};
use crate::pages::{Pages, refresh_transient_cookie};

/// Validation errors: field → message.
type FieldErrors = Vec<(&'static str, String)>;

/// Why a JSON API request failed.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum ApiError {
    /// No session or no signed-in user (401).
    Unauthenticated,
    /// A state-changing request without the session's CSRF token (419).
    CsrfMismatch,
    /// Not the user's, or not there (404).
    NotFound,
    /// Field validation failed (422).
    Invalid(FieldErrors),
    /// The body is malformed (400).
    BadRequest(String),
    /// The body is too large (413).
    TooLarge,
    /// The server cannot do it right now (503).
    Unavailable(String),
    /// Infrastructure failure (500; logged).
    Server(OAuthError),
}

impl From<OAuthError> for ApiError {
    fn from(err: OAuthError) -> Self {
        Self::Server(err)
    }
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "message": text }))).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Unauthenticated => message(StatusCode::UNAUTHORIZED, "Unauthenticated."),
            Self::CsrfMismatch => message(
                StatusCode::from_u16(419).unwrap_or(StatusCode::FORBIDDEN),
                "CSRF token mismatch.",
            ),
            Self::NotFound => message(StatusCode::NOT_FOUND, "Not found."),
            Self::Invalid(errors) => {
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
            Self::BadRequest(text) => message(StatusCode::BAD_REQUEST, &text),
            Self::TooLarge => message(StatusCode::PAYLOAD_TOO_LARGE, "The request body is too large."),
            Self::Unavailable(text) => message(StatusCode::SERVICE_UNAVAILABLE, &text),
            Self::Server(err) if err.http_status() == 503 => {
                let mut response = message(StatusCode::SERVICE_UNAVAILABLE, "Try again later.");
                crate::error::retry_after(&mut response, &err);
                response
            }
            Self::Server(err) => {
                tracing::error!(error = %err, "JSON API request failed");
                message(StatusCode::INTERNAL_SERVER_ERROR, "Server error.")
            }
        }
    }
}

/// A JSON body that no cache keeps (it carries a secret or a token).
fn secret_json(status: StatusCode, value: Value) -> Response {
    let mut response = (status, Json(value)).into_response();
    no_store(&mut response);
    response
}

fn client_json(client: &Client) -> Value {
    let redirect: Vec<&str> = client.redirect_uris.iter().map(RedirectUri::as_str).collect();
    json!({
        "id": client.id,
        "user_id": client.owner_id,
        "name": client.name,
        "redirect": redirect.join(","),
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "grant_types": client.grant_types,
        "token_endpoint_auth_method": client.token_endpoint_auth_method(),
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

/// The required `name` field, by the core's name rule ([`check_name`]).
fn name_field(body: &Map<String, Value>, errors: &mut FieldErrors) -> String {
    let name = body.get("name").and_then(Value::as_str).unwrap_or_default();
    match check_name(name) {
        Ok(name) => name.to_owned(),
        Err(err) => {
            let text = match err {
                NameError::Empty => "The name field is required.",
                NameError::TooLong => "The name may not be greater than 255 characters.",
                _ => "The name may not contain control characters.",
            };
            errors.push(("name", text.to_owned()));
            name.trim().to_owned()
        }
    }
}

/// The fields of a client form.
struct ClientFields {
    name: String,
    redirect: Vec<String>,
    /// `None` when the form does not name them.
    post_logout_redirect_uris: Option<Vec<String>>,
}

/// A list of URIs: comma-separated text, or a list of strings.
fn uri_list(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect(),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().unwrap_or("\u{0}").trim().to_owned())
            .collect(),
        _ => vec!["\u{0}".to_owned()],
    }
}

/// Validates `name`, `redirect` (comma-separated URIs, or a list) and the optional
/// `post_logout_redirect_uris` of a client form.
fn client_fields(pages: &Pages, body: &Map<String, Value>) -> Result<ClientFields, ApiError> {
    let mut errors = Vec::new();
    let name = name_field(body, &mut errors);
    let policy = pages.passport.settings().redirect_policy;
    let redirect = body.get("redirect").map(uri_list).unwrap_or_default();
    if redirect.is_empty() {
        errors.push(("redirect", "The redirect field is required.".to_owned()));
    } else if redirect.iter().any(|u| policy.parse(u).is_err()) {
        errors.push((
            "redirect",
            "One or more redirects have an invalid URI format.".to_owned(),
        ));
    }
    let post_logout_redirect_uris = body
        .get("post_logout_redirect_uris")
        .filter(|v| !v.is_null())
        .map(uri_list);
    if post_logout_redirect_uris
        .iter()
        .flatten()
        .any(|u| policy.parse(u).is_err())
    {
        errors.push((
            "post_logout_redirect_uris",
            "One or more post-logout redirect URIs have an invalid URI format.".to_owned(),
        ));
    }
    if errors.is_empty() {
        Ok(ClientFields {
            name,
            redirect,
            post_logout_redirect_uris,
        })
    } else {
        Err(ApiError::Invalid(errors))
    }
}

/// The `scopes` field of a personal access token form: a list or a space/comma separated text.
fn scopes_field(pages: &Pages, body: &Map<String, Value>, errors: &mut FieldErrors) -> Vec<String> {
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
    if let Some(bad) = scopes.iter().find(|s| !pages.passport.scopes().has_scope(s)) {
        errors.push(("scopes", format!("The scope {bad:?} is not defined.")));
    }
    scopes
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
pub(crate) async fn scopes(State(pages): State<Pages>, _: ApiUser) -> Response {
    Json(pages.passport.scopes().scopes()).into_response()
}

/// `GET /oauth/clients`.
pub(crate) async fn list_clients(State(pages): State<Pages>, api: ApiUser) -> Result<Response, ApiError> {
    let clients = pages.passport.clients_owned_by(&api.user.id).await?;
    Ok(Json(clients.iter().map(client_json).collect::<Vec<_>>()).into_response())
}

/// `POST /oauth/clients` (`name`, `redirect`, optional `confidential`): 201 with the plain
/// secret, shown this once.
pub(crate) async fn create_client(State(pages): State<Pages>, form: ApiForm) -> Result<Response, ApiError> {
    let fields = client_fields(&pages, &form.body)?;
    let confidential = truthy(form.body.get("confidential")).unwrap_or(true);
    let (client, secret) = pages
        .passport
        .create_owned_client(
            &form.user.id,
            &fields.name,
            fields.redirect,
            fields.post_logout_redirect_uris.unwrap_or_default(),
            confidential,
        )
        .await?;
    let mut value = client_json(&client);
    let plain = secret.as_ref().map(|s| s.expose_secret().to_owned());
    value["secret"] = json!(plain);
    value["plainSecret"] = json!(plain);
    Ok(secret_json(StatusCode::CREATED, value))
}

/// `PUT /oauth/clients/{id}` (`name`, `redirect`).
pub(crate) async fn update_client(
    State(pages): State<Pages>,
    Path(id): Path<String>,
    form: ApiForm,
) -> Result<Response, ApiError> {
    let passport = &pages.passport;
    // Someone else's client is "not found", whatever the body says.
    passport
        .owned_client(&form.user.id, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let fields = client_fields(&pages, &form.body)?;
    let client = passport
        .update_owned_client(
            &form.user.id,
            &id,
            &fields.name,
            &fields.redirect,
            fields.post_logout_redirect_uris.as_deref(),
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(client_json(&client)).into_response())
}

/// `DELETE /oauth/clients/{id}`: revokes the client and its tokens.
pub(crate) async fn delete_client(
    State(pages): State<Pages>,
    Path(id): Path<String>,
    form: ApiForm,
) -> Result<Response, ApiError> {
    pages
        .passport
        .delete_owned_client(&form.user.id, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /oauth/tokens`: the user's live tokens for the apps they authorized, with the client.
pub(crate) async fn list_tokens(State(pages): State<Pages>, api: ApiUser) -> Result<Response, ApiError> {
    let connections = pages.passport.connections(&api.user.id).await?;
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
    Ok(Json(list).into_response())
}

/// `DELETE /oauth/tokens/{id}` and `DELETE /oauth/personal-access-tokens/{id}`: revokes the
/// token (and its refresh tokens) if it is the user's.
pub(crate) async fn revoke_token(
    State(pages): State<Pages>,
    Path(id): Path<String>,
    form: ApiForm,
) -> Result<Response, ApiError> {
    match pages.passport.revoke_user_token(&form.user.id, &id).await? {
        true => Ok(StatusCode::NO_CONTENT.into_response()),
        false => Err(ApiError::NotFound),
    }
}

/// `GET /oauth/personal-access-tokens`.
pub(crate) async fn list_personal_tokens(State(pages): State<Pages>, api: ApiUser) -> Result<Response, ApiError> {
    let tokens = pages.passport.personal_access_tokens(&api.user.id).await?;
    Ok(Json(tokens.iter().map(token_json).collect::<Vec<_>>()).into_response())
}

/// `POST /oauth/personal-access-tokens` (`name`, `scopes`): `{accessToken, token}`.
pub(crate) async fn create_personal_token(State(pages): State<Pages>, form: ApiForm) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let name = name_field(&form.body, &mut errors);
    let scopes = scopes_field(&pages, &form.body, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let issued = match pages.passport.create_token(&form.user.id, None, &name, &scopes).await {
        Ok(issued) => issued,
        // No personal access client for the provider: the operator has to make one.
        Err(err) if err.code() == ErrorCode::InvalidRequest => {
            return Err(ApiError::Unavailable(
                err.hint().unwrap_or("No personal access client.").to_owned(),
            ));
        }
        Err(err) => return Err(err.into()),
    };
    let value = json!({"accessToken": issued.access_token, "token": token_json(&issued.token)});
    Ok(secret_json(StatusCode::OK, value))
}

/// `POST /oauth/token/refresh`: a fresh SPA token cookie for the signed-in user, and the
/// session renewed for as long (the cookie lives only while its session does).
pub(crate) async fn refresh_cookie(State(pages): State<Pages>, form: ApiForm) -> Response {
    let mut session = form.session;
    session.renew(&pages.passport);
    let mut response = (StatusCode::OK, "Refreshed.").into_response();
    refresh_transient_cookie(&pages, &session, &mut response);
    no_store(&mut response);
    session.attach(response)
}
