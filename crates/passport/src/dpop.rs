//! DPoP (RFC 9449): proofs of possession of a client's key, checked at the token endpoint
//! (tokens are then bound to the key's thumbprint, `cnf.jkt`) and at protected routes (a bound
//! token is used only with a fresh proof of the same key).
//!
//! A proof is checked as §4.3 says: one compact JWS with `typ: dpop+jwt`, an asymmetric `alg`
//! we support ([`DPOP_ALGORITHMS`]), a public `jwk` (no private members) that verifies the
//! signature, `htm` and `htu` naming this request (the URI without query and fragment,
//! compared after RFC 3986 normalization of scheme, host and default port), `iat` within
//! [`DPOP_PROOF_MAX_AGE`] (and at most [`DPOP_CLOCK_SKEW`] ahead), `ath` for the access token
//! at resource servers (§7), the server's `nonce` when `use_dpop_nonce` is on (§8, §9), and a
//! `jti` never seen before within the proof's lifetime. Seen `jti`s are kept in the database
//! (by hash, with the key's thumbprint), and nonces are derived from the shared server secret,
//! so every instance of a fleet accepts and refuses the same proofs.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::error::{ErrorCode, OAuthError};
use crate::passport::Passport;
use crate::secret::sha256_hex;

/// The proof algorithms accepted (`dpop_signing_alg_values_supported`, the `algs` of a
/// `WWW-Authenticate: DPoP` challenge).
pub const DPOP_ALGORITHMS: [&str; 3] = ["ES256", "EdDSA", "RS256"];

/// How old a proof's `iat` may be, in seconds (§11.1: proofs are short-lived).
pub const DPOP_PROOF_MAX_AGE: i64 = 60;

/// How far a proof's `iat` may lie in the future (clock skew), in seconds.
pub const DPOP_CLOCK_SKEW: i64 = 5;

/// How long one server nonce is current, in seconds; the previous one is still accepted, so a
/// nonce lives between one and two periods.
pub const DPOP_NONCE_PERIOD: i64 = 300;

/// The longest proof read (a 4096-bit RSA key's proof is about 1.5 KiB).
const MAX_PROOF_LEN: usize = 8 * 1024;
/// The longest `jti` accepted.
const MAX_JTI_LEN: usize = 256;
/// JWK members that only a private key has (RFC 7517 §9.2, RFC 7518 §6): a proof carrying one
/// leaked its key.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A token's confirmation claim (RFC 7800 §3.1; RFC 9449 §6.1): the SHA-256 thumbprint of the
/// key it is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The JWK SHA-256 thumbprint (RFC 7638), base64url.
    pub jkt: String,
}

/// What a proof must match: the request it came with.
#[derive(Clone, Copy)]
pub struct DpopCheck<'a> {
    /// The `DPoP` header's value.
    pub proof: &'a str,
    /// The request's method (`htm`).
    pub method: &'a str,
    /// The request's absolute URI as the server is known (`htu`; query and fragment ignored).
    pub uri: &'a str,
    /// The access token the request presents (resource servers: then `ath` is required).
    pub access_token: Option<&'a str>,
}

impl std::fmt::Debug for DpopCheck<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopCheck")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

/// A proof that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The thumbprint of the proof's key (RFC 7638, SHA-256, base64url).
    pub jkt: String,
}

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// Malformed, badly signed, for another request, stale, or replayed (`invalid_dpop_proof`).
    #[error("invalid DPoP proof: {0}")]
    Invalid(&'static str),
    /// The proof lacks the server's current nonce (`use_dpop_nonce`); answer with
    /// [`Passport::dpop_nonce`] in a `DPoP-Nonce` header.
    #[error("the DPoP proof must carry the server's nonce")]
    UseNonce,
    /// The proof could not be checked (storage unavailable); it may be fine.
    #[error("the DPoP proof could not be checked right now")]
    Unavailable,
}

impl DpopError {
    /// The token endpoint's error: 400 `invalid_dpop_proof` or `use_dpop_nonce` (RFC 9449
    /// §5.2, §8), or 503 `temporarily_unavailable`.
    pub fn to_oauth(&self) -> OAuthError {
        match self {
            Self::Invalid(why) => OAuthError::invalid_dpop_proof(*why),
            Self::UseNonce => OAuthError::new(ErrorCode::UseDpopNonce)
                .with_hint("Resend the request with a new proof carrying the nonce of the DPoP-Nonce header"),
            Self::Unavailable => OAuthError::storage_unavailable(),
        }
    }
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    #[serde(deserialize_with = "whole_seconds")]
    iat: i64,
    #[serde(default)]
    ath: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

fn whole_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    n.as_i64()
        .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f.floor() as i64))
        .ok_or_else(|| serde::de::Error::custom("invalid NumericDate"))
}

/// A base64url string (no padding), as JWK members are.
fn base64url(value: &Value) -> Option<&str> {
    value
        .as_str()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// The key of a proof's header: the verifying key, its algorithm and its thumbprint.
fn proof_key(
    header: &Map<String, Value>,
) -> Result<(jsonwebtoken::DecodingKey, jsonwebtoken::Algorithm, String), DpopError> {
    use jsonwebtoken::Algorithm as Alg;
    use jsonwebtoken::DecodingKey;
    let invalid = DpopError::Invalid;
    let typ = header.get("typ").and_then(Value::as_str).unwrap_or_default();
    if !typ.eq_ignore_ascii_case("dpop+jwt") {
        return Err(invalid("typ must be dpop+jwt"));
    }
    let alg = match header.get("alg").and_then(Value::as_str) {
        Some("ES256") => Alg::ES256,
        Some("EdDSA") => Alg::EdDSA,
        Some("RS256") => Alg::RS256,
        _ => return Err(invalid("alg must be one of ES256, EdDSA, RS256")),
    };
    let jwk = header
        .get("jwk")
        .and_then(Value::as_object)
        .ok_or(invalid("the header must carry the public key as jwk"))?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(invalid("jwk must be a public key"));
    }
    let member = |name: &str| jwk.get(name).and_then(base64url).ok_or(invalid("jwk is malformed"));
    let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or_default();
    let crv = jwk.get("crv").and_then(Value::as_str).unwrap_or_default();
    // RFC 7638 §3.2: the required members only, in lexicographic order, no whitespace. The
    // values are base64url, so they need no escaping.
    let (key, thumbprint_input) = match (alg, kty, crv) {
        (Alg::ES256, "EC", "P-256") => {
            let (x, y) = (member("x")?, member("y")?);
            let key = DecodingKey::from_ec_components(x, y).map_err(|_| invalid("jwk is malformed"))?;
            (key, format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#))
        }
        (Alg::EdDSA, "OKP", "Ed25519") => {
            let x = member("x")?;
            let key = DecodingKey::from_ed_components(x).map_err(|_| invalid("jwk is malformed"))?;
            (key, format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#))
        }
        (Alg::RS256, "RSA", _) => {
            let (n, e) = (member("n")?, member("e")?);
            // At least 2048 bits (RFC 7518 §3.3).
            if n.len() < 342 {
                return Err(invalid("RSA keys must have at least 2048 bits"));
            }
            let key = DecodingKey::from_rsa_components(n, e).map_err(|_| invalid("jwk is malformed"))?;
            (key, format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#))
        }
        _ => return Err(invalid("jwk does not match alg")),
    };
    let jkt = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint_input.as_bytes()));
    Ok((key, alg, jkt))
}

/// The signature and claims of a proof, before they are compared with the request.
fn verify_signature(proof: &str) -> Result<(ProofClaims, String), DpopError> {
    let invalid = DpopError::Invalid;
    if proof.len() > MAX_PROOF_LEN {
        return Err(invalid("the proof is too large"));
    }
    let encoded_header = proof.split('.').next().unwrap_or_default();
    let header: Map<String, Value> = URL_SAFE_NO_PAD
        .decode(encoded_header)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(invalid("the proof is not a JWT"))?;
    let (key, alg, jkt) = proof_key(&header)?;
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<ProofClaims>(proof, &key, &validation)
        .map_err(|_| invalid("the proof's signature or claims are invalid"))?
        .claims;
    Ok((claims, jkt))
}

/// The signature check of a proof (header, key, signature, claims parsed), answering its key's
/// thumbprint: what `benches/dpop.rs` measures. Not part of the API.
#[doc(hidden)]
pub fn verify_proof_signature_for_bench(proof: &str) -> Option<String> {
    verify_signature(proof).ok().map(|(_, jkt)| jkt)
}

/// An absolute http(s) URI without query and fragment, normalized (RFC 3986 §6.2.2–6.2.3:
/// scheme and host lowercased, the default port dropped, an empty path as `/`).
pub(crate) fn normalize_htu(uri: &str) -> Option<String> {
    let mut url = url::Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    Some(url.into())
}

/// The `ath` of an access token (§4.2): base64url SHA-256 of its ASCII value.
pub fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// The nonce of time bucket `bucket` under `key`.
fn nonce_for(key: &hmac::Key, bucket: i64) -> String {
    URL_SAFE_NO_PAD.encode(hmac::sign(key, &bucket.to_be_bytes()).as_ref())
}

fn equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

impl Passport {
    /// The nonce a proof must carry now, when `use_dpop_nonce` is on (send it as `DPoP-Nonce`,
    /// RFC 9449 §8.1). Every instance sharing the server secret derives the same one.
    pub fn dpop_nonce(&self) -> Option<String> {
        let key = self.dpop_nonce_key()?;
        Some(nonce_for(key, self.now().timestamp().div_euclid(DPOP_NONCE_PERIOD)))
    }

    /// The token endpoint's URI as proofs name it (`htu`): the issuer, the route prefix,
    /// `/token`. `None` without a configured issuer (then proofs cannot be checked).
    pub fn token_endpoint_uri(&self) -> Option<String> {
        let settings = self.settings();
        let issuer = settings.issuer.as_deref()?;
        Some(format!("{}/{}/token", issuer.trim_end_matches('/'), settings.path))
    }

    /// A request's absolute URI for `htu` at a protected route: the configured issuer and the
    /// request's path (never the `Host` header), as the token endpoint's is built, so an issuer
    /// with a path (`https://h/auth`, behind a proxy that strips `/auth`) gives
    /// `https://h/auth/api/user` for `/api/user`. `None` without an issuer.
    pub fn request_uri(&self, path: &str) -> Option<String> {
        let issuer = self.settings().issuer.as_deref()?;
        url::Url::parse(issuer).ok()?;
        Some(format!("{}{}", issuer.trim_end_matches('/'), path))
    }

    /// Checks a DPoP proof against its request (RFC 9449 §4.3, and §7.1 `ath` when an access
    /// token is presented) and records its `jti`, so it is accepted once on every instance
    /// sharing the database. Errors: [`DpopError`].
    pub async fn check_dpop_proof(&self, check: DpopCheck<'_>) -> Result<VerifiedProof, DpopError> {
        let invalid = DpopError::Invalid;
        let (claims, jkt) = verify_signature(check.proof)?;
        if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_LEN {
            return Err(invalid("jti is missing or too long"));
        }
        if claims.htm != check.method {
            return Err(invalid("htm does not match the request's method"));
        }
        match (normalize_htu(&claims.htu), normalize_htu(check.uri)) {
            (Some(presented), Some(expected)) if presented == expected => {}
            _ => return Err(invalid("htu does not match the request's URI")),
        }
        let now = self.now().timestamp();
        if claims.iat < now - DPOP_PROOF_MAX_AGE || claims.iat > now + DPOP_CLOCK_SKEW {
            return Err(invalid("iat is outside the accepted window"));
        }
        if let Some(token) = check.access_token {
            let ath = claims
                .ath
                .as_deref()
                .ok_or(invalid("ath is required with an access token"))?;
            if !equal(ath, &access_token_hash(token)) {
                return Err(invalid("ath does not match the access token"));
            }
        }
        if let Some(key) = self.dpop_nonce_key() {
            let bucket = now.div_euclid(DPOP_NONCE_PERIOD);
            let presented = claims.nonce.as_deref().unwrap_or_default();
            let fresh = [bucket, bucket - 1]
                .iter()
                .any(|b| equal(presented, &nonce_for(key, *b)));
            if !fresh {
                return Err(DpopError::UseNonce);
            }
        }
        // The proof is single use for as long as its iat is accepted.
        let id = sha256_hex(&format!("{jkt}\u{0}{}", claims.jti));
        let expires_at = DateTime::<Utc>::from_timestamp(claims.iat + DPOP_PROOF_MAX_AGE + DPOP_CLOCK_SKEW, 0)
            .ok_or(invalid("iat is outside the accepted window"))?;
        match self.store().record_dpop_proof(&id, expires_at, self.now()).await {
            Ok(true) => Ok(VerifiedProof { jkt }),
            Ok(false) => Err(invalid("the proof was used before")),
            Err(err) => {
                tracing::error!(error = %err, "DPoP proof record failed");
                Err(DpopError::Unavailable)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_is_compared_without_query_fragment_case_or_default_port() {
        let n = |u| normalize_htu(u);
        assert_eq!(
            n("HTTPS://Auth.Example.COM:443/oauth/token?x=1#f"),
            n("https://auth.example.com/oauth/token")
        );
        assert_eq!(n("http://h:80/a"), n("http://h/a"));
        assert_ne!(n("http://h:8080/a"), n("http://h/a"));
        assert_ne!(n("https://h/a"), n("https://h/b"));
        assert_eq!(n("ftp://h/a"), None);
        assert_eq!(n("/relative"), None);
    }

    #[test]
    fn malformed_proofs_are_invalid_not_panics() {
        let long = "x".repeat(MAX_PROOF_LEN + 1);
        for proof in ["", ".", "..", "a.b.c", "eyJ9.e30.", long.as_str()] {
            assert!(
                matches!(verify_signature(proof), Err(DpopError::Invalid(_))),
                "{proof:.20}"
            );
        }
    }

    #[test]
    fn private_or_symmetric_keys_and_weak_algorithms_are_refused() {
        let header = |v: Value| v.as_object().cloned().unwrap_or_default();
        let cases = [
            serde_json::json!({"typ": "dpop+jwt", "alg": "none", "jwk": {"kty": "EC"}}),
            serde_json::json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": "AAAA"}}),
            serde_json::json!({"typ": "JWT", "alg": "ES256", "jwk": {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}}),
            serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": "AA"}}),
            serde_json::json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}}),
            serde_json::json!({"typ": "dpop+jwt", "alg": "RS256", "jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}),
        ];
        for case in cases {
            assert!(proof_key(&header(case.clone())).is_err(), "{case}");
        }
    }
}
