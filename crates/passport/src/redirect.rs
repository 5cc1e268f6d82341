//! Redirect URIs: validation on registration, and the matching policy at the authorize endpoint
//! (exact string match, plus the RFC 8252 §7.3 loopback rule: for `http://127.0.0.1` and
//! `http://[::1]` any port matches).

use crate::error::OAuthError;

/// A redirect URI that passed validation: absolute, no fragment, no dangerous scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri(String);

impl RedirectUri {
    /// Validates `uri` (RFC 6749 §3.1.2: absolute, no fragment).
    pub fn parse(uri: &str) -> Result<Self, OAuthError> {
        let bad = || OAuthError::invalid_request("Invalid redirect URI: use an absolute ASCII URI without a fragment");
        // Stored and sent back in `Location` as is: printable ASCII only (IDNs in punycode,
        // other characters percent-encoded).
        if uri.is_empty() || !uri.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad());
        }
        let parsed = url::Url::parse(uri).map_err(|_| bad())?;
        if parsed.fragment().is_some() || parsed.cannot_be_a_base() && parsed.scheme() != "urn" {
            return Err(bad());
        }
        if matches!(parsed.scheme(), "javascript" | "data" | "vbscript" | "file") {
            return Err(bad());
        }
        if matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_none_or(str::is_empty) {
            return Err(bad());
        }
        Ok(Self(uri.to_owned()))
    }

    /// The URI as registered.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `requested` matches `registered`: exact, or equal but for the port on a loopback IP
/// literal over plain http (RFC 8252 §7.3). `localhost` is not treated as loopback.
pub fn redirect_uri_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    match (strip_loopback_port(registered), strip_loopback_port(requested)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn strip_loopback_port(uri: &str) -> Option<String> {
    let parsed = url::Url::parse(uri).ok()?;
    // The parser silently drops tabs, newlines and trailing controls: refuse them outright.
    if !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    if parsed.scheme() != "http" {
        return None;
    }
    match parsed.host_str()? {
        "127.0.0.1" | "[::1]" => {}
        _ => return None,
    }
    let mut without = parsed.clone();
    without.set_port(None).ok()?;
    Some(without.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_loopback_matching() {
        assert!(redirect_uri_matches("https://a.example/cb", "https://a.example/cb"));
        assert!(!redirect_uri_matches("https://a.example/cb", "https://a.example/cb/"));
        assert!(!redirect_uri_matches(
            "https://a.example/cb",
            "https://a.example/cb?x=1"
        ));
        assert!(redirect_uri_matches("http://127.0.0.1/cb", "http://127.0.0.1:5123/cb"));
        assert!(redirect_uri_matches("http://[::1]:80/cb", "http://[::1]:9999/cb"));
        assert!(!redirect_uri_matches("http://localhost/cb", "http://localhost:5123/cb"));
        assert!(!redirect_uri_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5123/other"
        ));
    }

    #[test]
    fn registration_rules() {
        assert!(RedirectUri::parse("https://a.example/cb").is_ok());
        assert!(RedirectUri::parse("com.example.app:/oauth").is_ok());
        assert!(RedirectUri::parse("https://a.example/cb#frag").is_err());
        assert!(RedirectUri::parse("javascript:alert(1)").is_err());
        assert!(RedirectUri::parse("/relative").is_err());
        assert!(RedirectUri::parse("not a url").is_err());
        assert!(RedirectUri::parse("https://exämple.com/cb").is_err());
        assert!(RedirectUri::parse("https://a.example/cb\u{0}").is_err());
    }
}
