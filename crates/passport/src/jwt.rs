//! Access tokens as RS256 JWTs (RFC 7519 / RFC 7515 compact form) with Passport's claims.
//!
//! Signing is done here with the cached key pair (the header is encoded once at start-up);
//! verification goes through jsonwebtoken. Time claims are checked against the injected clock,
//! not the library's, and are read leniently: PHP Passport writes them as floats.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::OAuthError;
use crate::keys::Keys;

/// How far `iat`/`nbf` may lie in the future (clock skew between instances), in seconds.
const NOT_BEFORE_LEEWAY: i64 = 30;

/// The claims of an access token, in Passport's order.
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
}

/// Why a bearer token was refused. Logged at debug level only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
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

/// RS256 only; time claims are checked by [`verify`] against the injected clock.
pub(crate) fn validation() -> jsonwebtoken::Validation {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation
}

/// Signs `claims_json` as a compact JWS with the cached key.
pub(crate) fn sign_compact(keys: &Keys, claims_json: &[u8]) -> Result<String, OAuthError> {
    let pair = keys.signing();
    let header = keys.header_b64();
    let mut out =
        String::with_capacity(header.len() + claims_json.len() * 4 / 3 + pair.public_modulus_len() * 4 / 3 + 8);
    out.push_str(header);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(claims_json, &mut out);
    let mut signature = vec![0u8; pair.public_modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), out.as_bytes(), &mut signature)
        .map_err(|_| OAuthError::server_error("signing the access token failed"))?;
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(&signature, &mut out);
    Ok(out)
}

/// Signs access token claims.
pub(crate) fn sign_claims(keys: &Keys, claims: &AccessTokenClaims) -> Result<String, OAuthError> {
    let json = serde_json::to_vec(claims).map_err(|_| OAuthError::server_error("claims serialization failed"))?;
    sign_compact(keys, &json)
}

/// Verifies the signature and time claims of `token` at `now`.
pub(crate) fn verify(keys: &Keys, token: &str, now: DateTime<Utc>) -> Result<AccessTokenClaims, TokenInvalid> {
    let data = jsonwebtoken::decode::<AccessTokenClaims>(token, keys.decoding(), keys.validation())
        .map_err(|_| TokenInvalid::Malformed)?;
    let claims = data.claims;
    let now = now.timestamp();
    if claims.exp <= now {
        return Err(TokenInvalid::Expired);
    }
    if claims.nbf > now + NOT_BEFORE_LEEWAY || claims.iat > now + NOT_BEFORE_LEEWAY {
        return Err(TokenInvalid::NotYetValid);
    }
    Ok(claims)
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
