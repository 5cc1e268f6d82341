//! Access tokens as JWTs (RFC 7519 / RFC 7515 compact form) with Passport's claims, signed by
//! the key set's current key (see [`crate::keys`]).
//!
//! Verification picks the key by `kid` and goes through jsonwebtoken. Time claims are checked
//! against the injected clock, not the library's, and are read leniently: PHP Passport writes
//! them as floats.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::OAuthError;
use crate::keys::KeySet;

/// How far `iat`/`nbf` may lie in the future (clock skew between instances), in seconds.
pub(crate) const NOT_BEFORE_LEEWAY: i64 = 30;

/// The claims of an access token, in Passport's order, then those RFC 9068 adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// The client id.
    #[serde(deserialize_with = "string_or_first")]
    pub aud: String,
    /// The token id (the database key).
    pub jti: String,
    /// Issued at (Unix seconds).
    #[serde(deserialize_with = "lenient_seconds")]
    pub iat: i64,
    /// Not before (Unix seconds).
    #[serde(deserialize_with = "lenient_seconds")]
    pub nbf: i64,
    /// Expiry (Unix seconds).
    #[serde(deserialize_with = "lenient_seconds")]
    pub exp: i64,
    /// The user id, or the client id for client-credentials tokens.
    pub sub: String,
    /// Granted scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The issuer (RFC 9068 §2.2), when one is configured. Tokens minted by Laravel Passport
    /// carry none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The client id (RFC 9068 §2.2), the same as `aud`. Tokens minted by Laravel Passport carry
    /// none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The key the token is bound to (RFC 9449 §6.1: `cnf.jkt`), for DPoP-bound tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<crate::dpop::Confirmation>,
    /// Claims added by a [`crate::ClaimsHook`] (and any other claim a token carries).
    #[serde(flatten)]
    pub custom: serde_json::Map<String, serde_json::Value>,
}

/// Why a bearer token was refused. Logged at debug level only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenInvalid {
    /// Not a JWT, bad signature, wrong algorithm or malformed claims.
    #[error("the token is malformed or its signature is invalid")]
    Malformed,
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// `nbf` or `iat` lies in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The token row is revoked or missing, or its client is revoked.
    #[error("the token has been revoked")]
    Revoked,
    /// The token does not belong to this guard's user provider.
    #[error("the token belongs to another user provider")]
    WrongProvider,
    /// The token could not be checked (storage unavailable); it may be fine.
    #[error("the token could not be checked right now")]
    Unavailable,
}

/// Signs access token claims with the current key.
pub(crate) fn sign_claims(keys: &KeySet, claims: &AccessTokenClaims) -> Result<String, OAuthError> {
    let json = serde_json::to_vec(claims).map_err(|_| OAuthError::server_error("claims serialization failed"))?;
    keys.current().sign(&json)
}

/// Verifies the signature (with the key the header names, for its algorithm only) and the time
/// claims of `token` at `now`.
pub(crate) fn verify(keys: &KeySet, token: &str, now: DateTime<Utc>) -> Result<AccessTokenClaims, TokenInvalid> {
    verify_with_kid(keys, token, now).map(|(claims, _)| claims)
}

/// [`verify`], also answering the id of the key that checked the token.
pub(crate) fn verify_with_kid(
    keys: &KeySet,
    token: &str,
    now: DateTime<Utc>,
) -> Result<(AccessTokenClaims, String), TokenInvalid> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenInvalid::Malformed)?;
    let key = keys.verifier_for(&header).ok_or(TokenInvalid::Malformed)?;
    let claims: AccessTokenClaims = key.decode(token).map_err(|_| TokenInvalid::Malformed)?;
    let now = now.timestamp();
    if claims.exp <= now {
        return Err(TokenInvalid::Expired);
    }
    if claims.nbf > now + NOT_BEFORE_LEEWAY || claims.iat > now + NOT_BEFORE_LEEWAY {
        return Err(TokenInvalid::NotYetValid);
    }
    Ok((claims, key.kid().to_owned()))
}

fn lenient_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    n.as_f64()
        .filter(|f| f.is_finite())
        .map(|f| f.floor() as i64)
        .ok_or_else(|| serde::de::Error::custom("invalid NumericDate"))
}

fn string_or_first<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Aud {
        One(String),
        Many(Vec<String>),
    }
    match Aud::deserialize(d)? {
        Aud::One(s) => Ok(s),
        Aud::Many(v) => v
            .into_iter()
            .next()
            .ok_or_else(|| serde::de::Error::custom("empty aud")),
    }
}
