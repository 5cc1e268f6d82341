//! Redirect URIs: what may be registered, and the one policy both endpoints use to match
//! them. The two endpoints ask different questions, and the difference is deliberate:
//!
//! * **Authorization endpoint** ([`authorize_redirect_uri`]): does the requested URI name one of
//!   the client's registered URIs? Exact string match, plus the RFC 8252 §7.3 loopback rule:
//!   for a URI registered on `http://127.0.0.1` or `http://[::1]` (those literals: not
//!   `localhost`, RFC 8252 §8.3, nor other spellings of the address) any port matches, the rest
//!   of the URI byte for byte, and the user is sent to the URI *as registered* with the
//!   requested port. Without a `redirect_uri` parameter the client's only URI is used
//!   (RFC 6749 §3.1.2.3).
//! * **Token endpoint** ([`check_exchange_redirect_uri`]): RFC 6749 §4.1.3 wants the
//!   `redirect_uri` of the token request *identical* to the one sent at authorization, so a
//!   code bound to a URI is compared byte for byte, with no port rule. A code issued without a
//!   `redirect_uri` accepts none, or one of the registered URIs exactly.
//!
//! Registration ([`RedirectPolicy`]) accepts `https` URIs with a host, plain `http` to a
//! loopback host (`127.0.0.1`, `[::1]`, `localhost`), other plain `http` only with
//! `insecure_http_redirect_uris`, and private-use schemes in reverse-domain form for native
//! apps (`com.example.app:/callback`, RFC 8252 §7.1). Every other scheme (`javascript:`,
//! `data:`, `file:`, `ws:`, `mailto:`, `urn:`…) is refused: no browser redirects there, or it
//! would run in the page.

use serde::Serialize;

use crate::error::OAuthError;

/// What may be registered as a redirect URI.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RedirectPolicy {
    /// Allow plain `http` to hosts other than loopback (`insecure_http_redirect_uris`): codes
    /// and tokens then cross the network unencrypted. Off by default.
    pub insecure_http: bool,
}

impl RedirectPolicy {
    /// Validates every URI of a list (see [`Self::parse`]).
    pub fn parse_all(&self, uris: &[String]) -> Result<Vec<RedirectUri>, OAuthError> {
        uris.iter().map(|uri| self.parse(uri)).collect()
    }

    /// Validates `uri` for registration (RFC 6749 §3.1.2, RFC 8252 §7, RFC 9700 §4.1).
    pub fn parse(&self, uri: &str) -> Result<RedirectUri, OAuthError> {
        let bad = |why: &str| OAuthError::invalid_request(format!("Invalid redirect URI: {why}"));
        // Stored and sent back in `Location` as is: printable ASCII only (IDNs in punycode,
        // other characters percent-encoded).
        if uri.is_empty() || !uri.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad("use an absolute ASCII URI"));
        }
        let parsed = url::Url::parse(uri).map_err(|_| bad("use an absolute ASCII URI"))?;
        if parsed.fragment().is_some() {
            return Err(bad("a fragment is not allowed"));
        }
        let scheme = parsed.scheme();
        let after_scheme = &uri[scheme.len() + 1..];
        match scheme {
            "https" | "http" => {
                // `http:/x` parses as `http://x/`: the authority must really be there.
                let authority = after_scheme.strip_prefix("//").unwrap_or_default();
                if authority.is_empty()
                    || authority.starts_with(['/', '?'])
                    || parsed.host_str().is_none_or(str::is_empty)
                {
                    return Err(bad("http and https URIs need a host"));
                }
                let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
                if scheme == "http" && !loopback && !self.insecure_http {
                    return Err(bad(
                        "plain http is allowed to loopback hosts only (set insecure_http_redirect_uris to allow it)",
                    ));
                }
            }
            // A private-use scheme in reverse-domain form (RFC 8252 §7.1).
            private if private.contains('.') => {}
            _ => {
                return Err(bad(
                    "use https, http to a loopback host, or a reverse-domain app scheme",
                ));
            }
        }
        Ok(RedirectUri(uri.to_owned()))
    }
}

/// A redirect URI that passed validation, printable ASCII (it is sent back in `Location` as
/// is).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

impl RedirectUri {
    /// Validates `uri` with the default policy (see [`RedirectPolicy`]).
    pub fn parse(uri: &str) -> Result<Self, OAuthError> {
        RedirectPolicy::default().parse(uri)
    }

    /// A URI read back from storage, where it was validated when it was registered.
    pub fn from_storage(uri: String) -> Self {
        Self(uri)
    }

    /// The URI as registered.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The authorization endpoint's question: does `requested` name this URI? Exactly, or by
    /// the RFC 8252 §7.3 loopback rule. Answers where to send the user: the registered URI,
    /// with the requested port under the loopback rule.
    pub fn matches(&self, requested: &str) -> Option<String> {
        if self.0 == requested {
            return Some(requested.to_owned());
        }
        let registered = Loopback::split(&self.0)?;
        let asked = Loopback::split(requested)?;
        (registered.host == asked.host && registered.rest == asked.rest).then(|| registered.with_port(asked.port))
    }
}

/// An `http` URI on a loopback IP literal, in its parts, read from the raw string (no
/// normalization: `127.1`, `2130706433` or `/x/../cb` are not the registered URI).
struct Loopback<'a> {
    host: &'a str,
    port: Option<&'a str>,
    rest: &'a str,
}

impl<'a> Loopback<'a> {
    fn split(uri: &'a str) -> Option<Self> {
        let after = uri.strip_prefix("http://")?;
        let host = ["127.0.0.1", "[::1]"].into_iter().find(|h| after.starts_with(h))?;
        let after = &after[host.len()..];
        let (port, rest) = match after.strip_prefix(':') {
            Some(tail) => {
                let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
                let port = &tail[..digits];
                if port.is_empty() || port.parse::<u16>().is_err() {
                    return None;
                }
                (Some(port), &tail[digits..])
            }
            None => (None, after),
        };
        // The host must end here: `127.0.0.1.evil.example` or `127.0.0.1@evil` are other hosts.
        if !(rest.is_empty() || rest.starts_with(['/', '?'])) {
            return None;
        }
        Some(Self { host, port, rest })
    }

    fn with_port(&self, port: Option<&str>) -> String {
        match port {
            Some(port) => format!("http://{}:{port}{}", self.host, self.rest),
            None => format!("http://{}{}", self.host, self.rest),
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
    RedirectUri::from_storage(registered.to_owned())
        .matches(requested)
        .is_some()
}

/// The authorization endpoint's choice of redirect URI (RFC 6749 §3.1.2.3): the requested one
/// when it matches a registered URI, else the client's only URI. Errors are about the client's
/// registration, so they are shown to the user, never redirected.
pub fn authorize_redirect_uri(registered: &[RedirectUri], requested: Option<&str>) -> Result<String, OAuthError> {
    match requested {
        Some(given) => registered.iter().find_map(|r| r.matches(given)).ok_or_else(|| {
            OAuthError::invalid_client().with_hint("The redirect URI is not registered for this client")
        }),
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
        let strict = RedirectPolicy::default();
        let insecure = RedirectPolicy { insecure_http: true };
        // (uri, allowed by default, allowed with insecure_http_redirect_uris)
        let cases = [
            ("https://a.example/cb", true, true),
            ("https://a.example:8443/cb?x=1", true, true),
            ("com.example.app:/oauth", true, true), // RFC 8252 §7.1
            ("com.example.app://callback", true, true),
            ("http://127.0.0.1/cb", true, true), // RFC 8252 §7.3
            ("http://[::1]:8080/cb", true, true),
            ("http://localhost:3000/cb", true, true),  // development
            ("http://client.example/cb", false, true), // plain http off loopback
            ("http:/x", false, false),                 // no authority
            ("https:/x", false, false),
            ("http:///cb", false, false),
            ("ws://a.example/socket", false, false), // no browser redirects there
            ("wss://a.example/socket", false, false),
            ("ftp://a.example/file", false, false),
            ("urn:ietf:wg:oauth:2.0:oob", false, false),
            ("mailto:someone@example.com", false, false),
            ("myapp:/callback", false, false), // private use, not reverse-domain
            ("https://a.example/cb#frag", false, false), // RFC 6749 §3.1.2
            ("javascript:alert(1)", false, false),
            ("data:text/html,hi", false, false),
            ("file:///etc/passwd", false, false),
            ("/relative", false, false),
            ("not a url", false, false),
            ("https://exämple.com/cb", false, false),
            ("https://a.example/cb\u{0}", false, false),
        ];
        for (uri, by_default, with_insecure) in cases {
            assert_eq!(strict.parse(uri).is_ok(), by_default, "{uri}");
            assert_eq!(
                insecure.parse(uri).is_ok(),
                with_insecure,
                "{uri} (insecure_http_redirect_uris)"
            );
        }
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

    /// RFC 8252 §7.3 literally: the two loopback literals, any port, the rest byte for byte,
    /// and the user goes to the registered URI with the requested port.
    #[test]
    fn the_loopback_rule_matches_literal_hosts_and_exact_paths() {
        let registered = RedirectUri::from_storage("http://127.0.0.1/cb".to_owned());
        assert_eq!(
            registered.matches("http://127.0.0.1:5123/cb").as_deref(),
            Some("http://127.0.0.1:5123/cb")
        );
        assert_eq!(
            registered.matches("http://127.0.0.1/cb").as_deref(),
            Some("http://127.0.0.1/cb")
        );
        for attack in [
            "http://2130706433:99/cb",     // 127.0.0.1 as one number
            "http://127.1:99/cb",          // short form
            "http://127.0.0.1.:99/cb",     // trailing dot
            "http://127.0.0.1:99/x/../cb", // dot segments
            "http://127.0.0.1:99/cb/",
            "http://127.0.0.1:99/cb?x=1",
            "http://127.0.0.1.evil.example:99/cb",
            "http://127.0.0.1:99@evil.example/cb",
            "http://127.0.0.1:99999/cb", // not a port
            "http://127.0.0.1:/cb",
            "http://localhost:99/cb", // RFC 8252 §8.3
            "https://127.0.0.1:99/cb",
            "http://[::1]:99/cb",
        ] {
            assert_eq!(registered.matches(attack), None, "{attack}");
        }
        let v6 = RedirectUri::from_storage("http://[::1]:80/cb?app=1".to_owned());
        assert_eq!(
            v6.matches("http://[::1]:9999/cb?app=1").as_deref(),
            Some("http://[::1]:9999/cb?app=1")
        );
        // A `localhost` registration (made before this rule, or for development) matches exactly.
        let localhost = RedirectUri::from_storage("http://localhost:3000/cb".to_owned());
        assert!(localhost.matches("http://localhost:3000/cb").is_some());
        assert!(localhost.matches("http://localhost:3001/cb").is_none());
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
