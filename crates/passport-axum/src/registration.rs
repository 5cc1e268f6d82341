//! Dynamic client registration over HTTP: `POST /{path}/register` (RFC 7591 §3) and the
//! registration's own URI, `GET|PUT|DELETE /{path}/register/{client_id}` (RFC 7592), both
//! answering JSON that no cache keeps. The policy, the metadata rules and the tokens are the
//! core's ([`passport::RegistrationPolicy`]).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use passport::{Client, ClientMetadata, GrantType, Passport, RegistrationError};
use serde_json::{Map, Value, json};

use crate::error::no_store;
use crate::guard::bearer;

/// Registration requests per minute and address when `token_rate_limit` is off.
pub(crate) const RATE_LIMIT: u32 = 20;

/// The largest registration request read.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;

/// A refusal as RFC 7591 §3.2.2 JSON; `invalid_token` with the RFC 6750 challenge.
struct Refusal(RegistrationError);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        let body = json!({"error": self.0.code(), "error_description": self.0.description()});
        let mut response = (status, Json(body)).into_response();
        no_store(&mut response);
        if matches!(self.0, RegistrationError::InvalidToken) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        if let RegistrationError::Server(err) = &self.0 {
            crate::error::retry_after(&mut response, err);
        }
        response
    }
}

/// The metadata of a JSON body (RFC 7591 §3.1: `application/json`).
fn metadata(headers: &HeaderMap, body: &Bytes) -> Result<ClientMetadata, Refusal> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return Err(Refusal(RegistrationError::InvalidMetadata(
            "The request body must be application/json".to_owned(),
        )));
    }
    serde_json::from_slice(body).map_err(|e| {
        Refusal(RegistrationError::InvalidMetadata(format!(
            "The request body is not valid client metadata: {e}"
        )))
    })
}

/// The client's metadata as registered (RFC 7591 §3.2.1).
fn client_json(passport: &Passport, client: &Client, auth_method: &str) -> Map<String, Value> {
    let settings = passport.settings();
    let grant_types: Vec<&str> = client.grant_types.iter().map(|g| g.as_str()).collect();
    let response_types: Vec<&str> = if client.grant_types.contains(&GrantType::AuthorizationCode) {
        vec!["code"]
    } else {
        Vec::new()
    };
    let issuer = settings.issuer.as_deref().unwrap_or_default().trim_end_matches('/');
    let mut map = Map::new();
    map.insert("client_id".into(), json!(client.id));
    map.insert("client_id_issued_at".into(), json!(client.created_at.timestamp()));
    map.insert("client_name".into(), json!(client.name));
    map.insert("redirect_uris".into(), json!(client.redirect_uris));
    map.insert(
        "post_logout_redirect_uris".into(),
        json!(client.post_logout_redirect_uris),
    );
    map.insert("grant_types".into(), json!(grant_types));
    map.insert("response_types".into(), json!(response_types));
    map.insert("token_endpoint_auth_method".into(), json!(auth_method));
    if let Some(scopes) = &client.scopes {
        map.insert("scope".into(), json!(scopes.to_param()));
    }
    map.insert(
        "dpop_bound_access_tokens".into(),
        json!(client.dpop_bound_access_tokens),
    );
    map.insert(
        "require_pushed_authorization_requests".into(),
        json!(client.require_pushed_authorization_requests),
    );
    map.insert(
        "registration_client_uri".into(),
        json!(format!("{issuer}/{}/register/{}", settings.path, client.id)),
    );
    map
}

fn answer(status: StatusCode, body: Map<String, Value>) -> Response {
    let mut response = (status, Json(Value::Object(body))).into_response();
    no_store(&mut response);
    response
}

/// `POST /{path}/register`: 201 with the client, its secret and its registration access token.
pub(crate) async fn register(State(passport): State<Passport>, headers: HeaderMap, body: Bytes) -> Response {
    let metadata = match metadata(&headers, &body) {
        Ok(metadata) => metadata,
        Err(refusal) => return refusal.into_response(),
    };
    match passport.register_client(bearer(&headers), metadata).await {
        Ok(registered) => {
            let mut body = client_json(&passport, &registered.client, &registered.auth_method);
            if let Some(secret) = &registered.secret {
                body.insert("client_secret".into(), json!(secret.expose_secret()));
                body.insert("client_secret_expires_at".into(), json!(0));
            }
            body.insert(
                "registration_access_token".into(),
                json!(registered.registration_access_token),
            );
            answer(StatusCode::CREATED, body)
        }
        Err(err) => Refusal(err).into_response(),
    }
}

/// The method a stored client authenticates with, as read back.
fn stored_auth_method(client: &Client) -> &'static str {
    client.token_endpoint_auth_method()
}

/// `GET /{path}/register/{client_id}` (RFC 7592 §2.1).
pub(crate) async fn read(State(passport): State<Passport>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    match passport.read_registration(&id, bearer(&headers)).await {
        Ok(client) => answer(
            StatusCode::OK,
            client_json(&passport, &client, stored_auth_method(&client)),
        ),
        Err(err) => Refusal(err).into_response(),
    }
}

/// `PUT /{path}/register/{client_id}` (RFC 7592 §2.2).
pub(crate) async fn update(
    State(passport): State<Passport>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let metadata = match metadata(&headers, &body) {
        Ok(metadata) => metadata,
        Err(refusal) => return refusal.into_response(),
    };
    match passport.update_registration(&id, bearer(&headers), metadata).await {
        Ok(client) => answer(
            StatusCode::OK,
            client_json(&passport, &client, stored_auth_method(&client)),
        ),
        Err(err) => Refusal(err).into_response(),
    }
}

/// `DELETE /{path}/register/{client_id}` (RFC 7592 §2.3): 204, the client and its tokens
/// revoked.
pub(crate) async fn delete(State(passport): State<Passport>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    match passport.delete_registration(&id, bearer(&headers)).await {
        Ok(()) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            no_store(&mut response);
            response
        }
        Err(err) => Refusal(err).into_response(),
    }
}
