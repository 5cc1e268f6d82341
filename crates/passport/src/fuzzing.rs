//! Fuzzing entry points. **Not part of the API**: hidden from the documentation, with no
//! stability promise, and free to change or go away in any release.
//!
//! Thin wrappers over crate-private checks of what requests carry, so that the `cargo fuzz`
//! targets in `fuzz/` and the property tests in `tests/` can drive them directly. Each does
//! nothing but call the function it names; none of them is used by the crate itself.

use chrono::{DateTime, Utc};

use crate::error::OAuthError;
use crate::jwt::{AccessTokenClaims, TokenInvalid};
use crate::keys::KeySet;
use crate::pkce::PkceMethod;

/// Access-token verification as [`crate::Passport::authenticate_bearer`] does it before the
/// store lookup: the JOSE header, the key it names, the signature and the time claims at `now`.
pub fn verify_access_token(keys: &KeySet, token: &str, now: DateTime<Utc>) -> Result<AccessTokenClaims, TokenInvalid> {
    crate::jwt::verify(keys, token, now)
}

/// Signs `claims` with the current key, as the grants do.
pub fn sign_access_token(keys: &KeySet, claims: &AccessTokenClaims) -> Result<String, OAuthError> {
    crate::jwt::sign_claims(keys, claims)
}

/// The RFC 7636 §4.1–4.2 syntax of a `code_verifier` / `code_challenge`.
pub fn valid_pkce_string(s: &str) -> bool {
    crate::pkce::valid_pkce_string(s)
}

/// The token endpoint's PKCE check (RFC 7636 §4.6).
pub fn verify_pkce(challenge: &str, method: PkceMethod, verifier: &str) -> Result<(), OAuthError> {
    crate::pkce::verify_pkce(challenge, method, verifier)
}
