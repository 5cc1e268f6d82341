//! Redirect URIs: validation at registration, and the one policy both endpoints use to match
//! them. The two endpoints ask different questions, and the difference is deliberate:
//!
//! * **Authorization endpoint** ([`authorize_redirect_uri`]): does the requested URI name one of
//!   the client's registered URIs? Exact string match, plus the RFC 8252 §7.3 loopback rule:
//!   for `http://127.0.0.1` and `http://[::1]` any port matches (native apps listen on an
//!   ephemeral port). Without a `redirect_uri` parameter the client's only URI is used
//!   (RFC 6749 §3.1.2.3).
//! * **Token endpoint** ([`check_exchange_redirect_uri`]): RFC 6749 §4.1.3 wants the
//!   `redirect_uri` of the token request *identical* to the one sent at authorization, so a
//!   code bound to a URI is compared byte for byte, with no port rule. A code issued without a
//!   `redirect_uri` accepts none, or one of the registered URIs exactly.

use serde::Serialize;

use crate::error::OAuthError;

/// A redirect URI that passed validation: absolute, no fragment, no dangerous scheme,
/// printable ASCII (it is sent back in `Location` as is).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
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

    /// A URI read back from storage, where it was validated when it was registered.
    pub fn from_storage(uri: String) -> Self {
        Self(uri)
    }

    /// The URI as registered.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The authorization endpoint's question: does `requested` name this URI? Exact, or equal
    /// but for the port on a loopback IP literal over plain http (RFC 8252 §7.3). `localhost`
    /// is not treated as loopback.
    pub fn matches(&self, requested: &str) -> bool {
        if self.0 == requested {
            return true;
        }
        match (strip_loopback_port(&self.0), strip_loopback_port(requested)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }
}

impl std::fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for RedirectUri {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for RedirectUri {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for RedirectUri {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

/// Whether `requested` matches `registered` at the authorization endpoint (see
/// [`RedirectUri::matches`]).
pub fn redirect_uri_matches(registered: &str, requested: &str) -> bool {
    RedirectUri::from_storage(registered.to_owned()).matches(requested)
}

/// The authorization endpoint's choice of redirect URI (RFC 6749 §3.1.2.3): the requested one
/// when it matches a registered URI, else the client's only URI. Errors are about the client's
/// registration, so they are shown to the user, never redirected.
pub fn authorize_redirect_uri(registered: &[RedirectUri], requested: Option<&str>) -> Result<String, OAuthError> {
    match requested {
        Some(given) if registered.iter().any(|r| r.matches(given)) => Ok(given.to_owned()),
        Some(_) => Err(OAuthError::invalid_client().with_hint("The redirect URI is not registered for this client")),
        None => match registered {
            [only] => Ok(only.as_str().to_owned()),
            [] => Err(OAuthError::invalid_client().with_hint("The client has no redirect URI")),
            _ => Err(OAuthError::invalid_parameter("redirect_uri")),
        },
    }
}

/// The token endpoint's check of `redirect_uri` (RFC 6749 §4.1.3). `bound` is the URI the code
/// was issued for when the authorization request named one; `given` is the token request's.
pub fn check_exchange_redirect_uri(
    bound: Option<&str>,
    given: Option<&str>,
    registered: &[RedirectUri],
) -> Result<(), OAuthError> {
    match (bound, given) {
        (Some(_), None) => Err(OAuthError::invalid_parameter("redirect_uri")),
        (Some(bound), Some(given)) if bound != given => Err(OAuthError::invalid_grant("Invalid redirect URI")),
        (None, Some(given)) if !registered.iter().any(|r| r == given) => {
            Err(OAuthError::invalid_grant("Invalid redirect URI"))
        }
        _ => Ok(()),
    }
}

fn strip_loopback_port(uri: &str) -> Option<String> {
    // The parser silently drops tabs, newlines and trailing controls: refuse them outright.
    if !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let parsed = url::Url::parse(uri).ok()?;
    if parsed.scheme() != "http" {
        return None;
    }
    match parsed.host_str()? {
        "127.0.0.1" | "[::1]" => {}
        _ => return None,
    }
    let mut without = parsed;
    without.set_port(None).ok()?;
    Some(without.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

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
        assert!(
            RedirectUri::parse("urn:ietf:wg:oauth:2.0:oob").is_ok(),
            "opaque urn: URIs"
        );
        assert!(
            RedirectUri::parse("mailto:someone@example.com").is_err(),
            "other opaque URIs"
        );
        assert!(RedirectUri::parse("https://a.example/cb#frag").is_err());
        assert!(RedirectUri::parse("javascript:alert(1)").is_err());
        assert!(RedirectUri::parse("/relative").is_err());
        assert!(RedirectUri::parse("not a url").is_err());
        assert!(RedirectUri::parse("https://exämple.com/cb").is_err());
        assert!(RedirectUri::parse("https://a.example/cb\u{0}").is_err());
        let uri = RedirectUri::parse("https://a.example/cb").unwrap();
        assert_eq!(uri.as_str(), "https://a.example/cb");
        assert_eq!(uri.to_string(), "https://a.example/cb");
        assert!(uri == "https://a.example/cb" && uri != "https://a.example/cb/");
        let (same, other) = (
            String::from("https://a.example/cb"),
            String::from("https://b.example/cb"),
        );
        assert!(uri == same && uri != other);
        assert_eq!(serde_json::to_string(&uri).unwrap(), r#""https://a.example/cb""#);
    }

    fn uris(list: &[&str]) -> Vec<RedirectUri> {
        list.iter().map(|u| RedirectUri::parse(u).unwrap()).collect()
    }

    #[test]
    fn the_authorization_endpoint_picks_the_requested_or_the_only_uri() {
        let one = uris(&["http://127.0.0.1/cb"]);
        assert_eq!(
            authorize_redirect_uri(&one, Some("http://127.0.0.1:7000/cb")).unwrap(),
            "http://127.0.0.1:7000/cb"
        );
        assert_eq!(authorize_redirect_uri(&one, None).unwrap(), "http://127.0.0.1/cb");
        let err = authorize_redirect_uri(&one, Some("https://evil.example/cb")).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidClient);
        let two = uris(&["https://a.example/cb", "https://b.example/cb"]);
        assert_eq!(
            authorize_redirect_uri(&two, None).unwrap_err().code(),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            authorize_redirect_uri(&[], None).unwrap_err().code(),
            ErrorCode::InvalidClient
        );
    }

    #[test]
    fn the_token_endpoint_wants_the_identical_uri() {
        let registered = uris(&["http://127.0.0.1/cb", "https://a.example/cb"]);
        let bound = Some("http://127.0.0.1:7000/cb");
        assert!(check_exchange_redirect_uri(bound, Some("http://127.0.0.1:7000/cb"), &registered).is_ok());
        // RFC 6749 §4.1.3: identical, so no loopback port rule here.
        let other_port = check_exchange_redirect_uri(bound, Some("http://127.0.0.1:7001/cb"), &registered);
        assert_eq!(other_port.unwrap_err().code(), ErrorCode::InvalidGrant);
        let missing = check_exchange_redirect_uri(bound, None, &registered);
        assert_eq!(missing.unwrap_err().code(), ErrorCode::InvalidRequest);
        // A code issued without a redirect_uri: none, or a registered one exactly.
        assert!(check_exchange_redirect_uri(None, None, &registered).is_ok());
        assert!(check_exchange_redirect_uri(None, Some("https://a.example/cb"), &registered).is_ok());
        let unregistered = check_exchange_redirect_uri(None, Some("https://evil.example/cb"), &registered);
        assert_eq!(unregistered.unwrap_err().code(), ErrorCode::InvalidGrant);
        let loopback_port = check_exchange_redirect_uri(None, Some("http://127.0.0.1:9/cb"), &registered);
        assert_eq!(loopback_port.unwrap_err().code(), ErrorCode::InvalidGrant);
    }
}
