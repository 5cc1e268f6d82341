//! `POST /oauth/token`: reads the body (form or JSON, strictly), the Basic credentials, and
//! hands a [`TokenRequest`] to the core. Malformed input of any kind is `invalid_request` JSON.
//! The `DPoP` header (RFC 9449 §4) goes with the request; more than one is `invalid_dpop_proof`.
//! With `use_dpop_nonce`, every answer carries the current `DPoP-Nonce` (§8.1).

use std::collections::HashMap;
use std::fmt;

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use passport::{BasicCredentials, OAuthError, Passport, TokenRequest};
use percent_encoding::percent_decode;
use serde::de::{Deserializer, MapAccess, Visitor};

use crate::error::{OAuthJsonError, no_store};

/// Largest accepted request body.
pub(crate) const MAX_BODY: usize = 16 * 1024;
/// Largest accepted single parameter value.
pub(crate) const MAX_VALUE: usize = 4 * 1024;

/// The token endpoint handler.
pub async fn issue_token(State(passport): State<Passport>, request: Request) -> Response {
    let scheme = authorization_scheme(request.headers());
    let basic = basic_credentials(request.headers());
    // Errors of the core are counted by `issue_token`; those answered here are counted here.
    let peer = match limited_peer(&passport, request.extensions()) {
        Ok(peer) => peer,
        Err(refused) => {
            passport.metrics().token_error(refused.code());
            return with_dpop_nonce(&passport, crate::rate_limit::refusal(refused));
        }
    };
    let proof = match crate::guard::dpop_proof(request.headers()) {
        Ok(proof) => proof.map(str::to_owned),
        Err(()) => {
            let err = OAuthError::invalid_dpop_proof("Send exactly one DPoP header");
            passport.metrics().token_error(err.code());
            return with_dpop_nonce(&passport, OAuthJsonError::new(err, scheme).into_response());
        }
    };
    let params = match read_params(request).await {
        Ok(params) => params,
        Err(err) => {
            passport.metrics().token_error(err.code());
            return with_dpop_nonce(&passport, OAuthJsonError::new(err, scheme).into_response());
        }
    };
    let request = TokenRequest::new(params, basic)
        .from_address(peer)
        .with_dpop_proof(proof);
    let response = match passport.issue_token(&request).await {
        Ok(token) => {
            let mut response = (StatusCode::OK, Json(token)).into_response();
            no_store(&mut response);
            response
        }
        Err(err) => OAuthJsonError::new(err, scheme).into_response(),
    };
    with_dpop_nonce(&passport, response)
}

/// Adds the current `DPoP-Nonce` when the server requires nonces (RFC 9449 §8.1, §8.2).
fn with_dpop_nonce(passport: &Passport, mut response: Response) -> Response {
    if let Some(nonce) = passport.dpop_nonce()
        && let Ok(value) = axum::http::HeaderValue::from_str(&nonce)
    {
        response.headers_mut().insert(crate::guard::DPOP_NONCE, value);
    }
    response
}

/// The caller's address for the failure limits. When limits are on and the app was served
/// without connect info, the request is refused (logged with the fix) rather than all callers
/// sharing one counter.
pub(crate) fn limited_peer(
    passport: &Passport,
    extensions: &axum::http::Extensions,
) -> Result<Option<std::net::IpAddr>, crate::rate_limit::Refused> {
    let peer = crate::rate_limit::peer_address(extensions);
    if peer.is_none() && passport.settings().failure_limits != passport::FailureLimitSettings::OFF {
        return Err(crate::rate_limit::Refused::NoPeerAddress);
    }
    Ok(peer)
}

/// The scheme of the `Authorization` header, if it is one we recognise.
pub(crate) fn authorization_scheme(headers: &HeaderMap) -> Option<&'static str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    if value.is_empty() {
        return None;
    }
    if value.len() >= 7 && value[..7].eq_ignore_ascii_case("bearer ") {
        Some("Bearer")
    } else {
        Some("Basic")
    }
}

/// RFC 6749 §2.3.1 client credentials from `Authorization: Basic` (each part form-urlencoded
/// before base64). Anything malformed is ignored, as if the header were absent.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<BasicCredentials> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    if value.len() < 6 || !value[..6].eq_ignore_ascii_case("basic ") {
        return None;
    }
    let decoded = STANDARD.decode(value[6..].trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let id = form_decode(id.as_bytes()).ok()?;
    if id.is_empty() {
        return None;
    }
    Some(BasicCredentials {
        client_id: id,
        client_secret: form_decode(secret.as_bytes()).ok()?,
    })
}

/// Why a body could not be read.
#[derive(Debug)]
enum BodyError {
    TooLarge,
    NotUtf8,
    Repeated(String),
    NotScalar(String),
    TooLong(String),
    BadJson,
    ContentType,
}

impl From<BodyError> for OAuthError {
    fn from(err: BodyError) -> Self {
        match err {
            BodyError::TooLarge => {
                OAuthError::invalid_request(format!("The request body must be at most {MAX_BODY} bytes"))
            }
            BodyError::NotUtf8 => OAuthError::invalid_request("The request body is not valid UTF-8"),
            BodyError::Repeated(p) => {
                OAuthError::invalid_request(format!("Parameter `{p}` is included more than once"))
            }
            BodyError::NotScalar(p) | BodyError::TooLong(p) => OAuthError::invalid_parameter(&p),
            BodyError::BadJson => OAuthError::invalid_request("The request body is not a JSON object"),
            BodyError::ContentType => OAuthError::invalid_request(
                "Unsupported content type: send application/x-www-form-urlencoded or application/json",
            ),
        }
    }
}

/// Reads the body parameters of a POST, form-urlencoded (also when no content type is given) or
/// JSON. Repeated parameters, invalid UTF-8, non-scalar JSON values and oversized values are
/// refused.
pub(crate) async fn read_params(request: Request<Body>) -> Result<Vec<(String, String)>, OAuthError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| {
            v.to_str()
                .map(|s| s.to_ascii_lowercase())
                .map_err(|_| BodyError::ContentType)
        })
        .transpose()?;
    let bytes = to_bytes(request.into_body(), MAX_BODY)
        .await
        .map_err(|_| BodyError::TooLarge)?;
    let mime = content_type
        .as_deref()
        .map(|c| c.split(';').next().unwrap_or_default().trim().to_owned());
    let params = match mime.as_deref() {
        None | Some("application/x-www-form-urlencoded") => parse_form(&bytes)?,
        Some(m) if m == "application/json" || m.ends_with("+json") => parse_json(&bytes)?,
        Some(_) => return Err(BodyError::ContentType.into()),
    };
    if let Some((name, _)) = params.iter().find(|(_, v)| v.len() > MAX_VALUE) {
        return Err(BodyError::TooLong(name.clone()).into());
    }
    Ok(params)
}

fn form_decode(raw: &[u8]) -> Result<String, BodyError> {
    let plus_as_space: Vec<u8> = raw.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
    percent_decode(&plus_as_space)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| BodyError::NotUtf8)
}

/// Parses an `application/x-www-form-urlencoded` string (a body or a query) strictly: a
/// repeated name or invalid UTF-8 is `invalid_request`.
pub(crate) fn parse_query(query: &str) -> Result<Vec<(String, String)>, OAuthError> {
    let params = parse_form(query.as_bytes())?;
    if let Some((name, _)) = params.iter().find(|(_, v)| v.len() > MAX_VALUE) {
        return Err(BodyError::TooLong(name.clone()).into());
    }
    Ok(params)
}

fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, BodyError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let name = form_decode(name)?;
        let value = form_decode(value)?;
        if !seen.insert(name.clone()) {
            return Err(BodyError::Repeated(name));
        }
        out.push((name, value));
    }
    Ok(out)
}

fn parse_json(body: &[u8]) -> Result<Vec<(String, String)>, BodyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    std::str::from_utf8(body).map_err(|_| BodyError::NotUtf8)?;
    let mut de = serde_json::Deserializer::from_slice(body);
    let result = de.deserialize_map(ParamsVisitor);
    match result {
        Ok(Ok(params)) => de.end().map(|()| params).map_err(|_| BodyError::BadJson),
        Ok(Err(err)) => Err(err),
        Err(_) => Err(BodyError::BadJson),
    }
}

/// Collects a JSON object's members as strings, noting the first repeated or non-scalar one.
struct ParamsVisitor;

impl<'de> Visitor<'de> for ParamsVisitor {
    type Value = Result<Vec<(String, String)>, BodyError>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen: HashMap<String, ()> = HashMap::new();
        let mut out = Vec::new();
        let mut problem = None;
        while let Some((name, value)) = map.next_entry::<String, serde_json::Value>()? {
            if problem.is_some() {
                continue;
            }
            if seen.insert(name.clone(), ()).is_some() {
                problem = Some(BodyError::Repeated(name));
                continue;
            }
            let text = match value {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) => s,
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                    problem = Some(BodyError::NotScalar(name));
                    continue;
                }
            };
            out.push((name, text));
        }
        Ok(match problem {
            Some(p) => Err(p),
            None => Ok(out),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_parsing() {
        let p = parse_form(b"a=1&b=x+y%21&c").unwrap();
        assert_eq!(
            p,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y!".into()),
                ("c".into(), String::new())
            ]
        );
        assert!(matches!(parse_form(b"a=1&a=2"), Err(BodyError::Repeated(_))));
        assert!(matches!(parse_form(b"a=%FF"), Err(BodyError::NotUtf8)));
    }

    #[test]
    fn json_parsing() {
        let p = parse_json(br#"{"a":"1","n":5,"t":true,"z":null}"#).unwrap();
        assert_eq!(p.len(), 3);
        assert!(matches!(
            parse_json(br#"{"a":"1","a":"2"}"#),
            Err(BodyError::Repeated(_))
        ));
        assert!(matches!(parse_json(br#"{"a":["x"]}"#), Err(BodyError::NotScalar(_))));
        assert!(matches!(parse_json(b"[1]"), Err(BodyError::BadJson)));
        assert!(matches!(parse_json(b"{} x"), Err(BodyError::BadJson)));
    }
}
