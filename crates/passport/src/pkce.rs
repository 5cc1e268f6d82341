//! PKCE (RFC 7636): the challenge methods, the syntax of challenges and verifiers (§4.1–4.2),
//! and the check at the token endpoint (§4.6), in constant time.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

use crate::error::OAuthError;

/// `code_challenge_method` (RFC 7636 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PkceMethod {
    /// `BASE64URL(SHA256(verifier))`.
    #[serde(rename = "S256")]
    S256,
    /// The verifier itself (allowed, as Passport does; S256 is what clients should send).
    #[serde(rename = "plain")]
    Plain,
}

impl PkceMethod {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::S256 => "S256",
            Self::Plain => "plain",
        }
    }
}

impl FromStr for PkceMethod {
    type Err = ();
    /// Exact, case-sensitive names (RFC 7636 §4.3).
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "S256" => Ok(Self::S256),
            "plain" => Ok(Self::Plain),
            _ => Err(()),
        }
    }
}

impl fmt::Display for PkceMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// 43 to 128 characters of `[A-Za-z0-9-._~]` (RFC 7636 §4.1 for verifiers, §4.2 for
/// challenges).
pub(crate) fn valid_pkce_string(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Checks a `code_verifier` against the stored challenge (RFC 7636 §4.6), in constant time.
pub(crate) fn verify_pkce(challenge: &str, method: PkceMethod, verifier: &str) -> Result<(), OAuthError> {
    if !valid_pkce_string(verifier) {
        return Err(OAuthError::invalid_request(
            "Code Verifier must follow the specifications of RFC-7636.",
        ));
    }
    let expected = match method {
        PkceMethod::S256 => {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
        }
        PkceMethod::Plain => verifier.to_owned(),
    };
    if expected.as_bytes().ct_eq(challenge.as_bytes()).into() {
        Ok(())
    } else {
        Err(OAuthError::invalid_grant("Failed to verify `code_verifier`."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn s256_and_plain() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"; // RFC 7636 appendix B
        assert!(verify_pkce(challenge, PkceMethod::S256, verifier).is_ok());
        assert_eq!(
            verify_pkce(challenge, PkceMethod::S256, &verifier.replace('d', "e"))
                .unwrap_err()
                .code(),
            ErrorCode::InvalidGrant
        );
        assert!(verify_pkce(verifier, PkceMethod::Plain, verifier).is_ok());
        assert_eq!(
            verify_pkce(challenge, PkceMethod::S256, "short").unwrap_err().code(),
            ErrorCode::InvalidRequest
        );
        for method in [PkceMethod::S256, PkceMethod::Plain] {
            assert_eq!(method.as_str().parse(), Ok(method), "the stored name reads back");
            assert_eq!(method.to_string(), method.as_str());
        }
        assert_eq!(PkceMethod::S256.as_str(), "S256");
        assert_eq!(PkceMethod::Plain.as_str(), "plain");
        assert_eq!("s256".parse::<PkceMethod>(), Err(()), "case-sensitive (RFC 7636 §4.3)");
    }
}
