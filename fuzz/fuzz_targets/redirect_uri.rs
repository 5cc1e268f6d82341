//! Redirect URIs: registration (both policies), the authorization endpoint's match (exact, or
//! the RFC 8252 §7.3 loopback port rule) and the token endpoint's check. Oracles: a registered
//! URI matches itself; a match only ever sends the user to the requested URI, on the registered
//! scheme, host, path and query (whatever the port); the default policy accepts nothing the
//! insecure one refuses; the token endpoint takes, for a code bound to no URI, only a registered
//! URI byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passport::{RedirectPolicy, RedirectUri, authorize_redirect_uri, check_exchange_redirect_uri};

#[derive(Debug, arbitrary::Arbitrary)]
enum Uri {
    Built {
        scheme: Scheme,
        host: Host,
        port: Option<Port>,
        path: String,
        query: Option<String>,
    },
    Raw(String),
}

#[derive(Debug, arbitrary::Arbitrary)]
enum Scheme {
    Http,
    Https,
    App,
    Other(String),
}

#[derive(Debug, arbitrary::Arbitrary)]
enum Host {
    V4Loopback,
    V6Loopback,
    Localhost,
    Example,
    Other(String),
}

#[derive(Debug, arbitrary::Arbitrary)]
enum Port {
    Number(u16),
    Raw(String),
}

#[derive(Debug, arbitrary::Arbitrary)]
enum Requested {
    Same,
    OtherPort(Option<u16>),
    Tampered(Vec<(u16, u8, u8)>),
    Uri(Uri),
}

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    registered: Uri,
    others: Vec<Uri>,
    requested: Requested,
    insecure: bool,
}

fn build(uri: &Uri) -> String {
    match uri {
        Uri::Raw(raw) => raw.clone(),
        Uri::Built {
            scheme,
            host,
            port,
            path,
            query,
        } => {
            let scheme = match scheme {
                Scheme::Http => "http://",
                Scheme::Https => "https://",
                Scheme::App => "com.example.app:",
                Scheme::Other(s) => s.as_str(),
            };
            let host = match host {
                Host::V4Loopback => "127.0.0.1",
                Host::V6Loopback => "[::1]",
                Host::Localhost => "localhost",
                Host::Example => "a.example",
                Host::Other(h) => h.as_str(),
            };
            let port = match port {
                None => String::new(),
                Some(Port::Number(n)) => format!(":{n}"),
                Some(Port::Raw(p)) => format!(":{p}"),
            };
            let query = query.as_ref().map(|q| format!("?{q}")).unwrap_or_default();
            format!("{scheme}{host}{port}/{path}{query}")
        }
    }
}

/// `uri` with the port of its authority replaced by `port` (removed for `None`).
fn with_port(uri: &str, port: Option<u16>) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => &authority[..i],
        _ => authority,
    };
    match port {
        Some(p) => format!("{scheme}://{host}:{p}{tail}"),
        None => format!("{scheme}://{host}{tail}"),
    }
}

/// Scheme, host, path and query: all but the port.
fn place(uri: &str) -> Option<(String, Option<String>, String, Option<String>)> {
    let u = url::Url::parse(uri).ok()?;
    Some((
        u.scheme().to_owned(),
        u.host_str().map(str::to_owned),
        u.path().to_owned(),
        u.query().map(str::to_owned),
    ))
}

fuzz_target!(|input: Input| {
    let policy = RedirectPolicy {
        insecure_http: input.insecure,
    };
    let registered = build(&input.registered);
    let requested = match &input.requested {
        Requested::Same => registered.clone(),
        Requested::OtherPort(port) => with_port(&registered, *port),
        Requested::Tampered(edits) => passport_fuzz::tamper(&registered, edits),
        Requested::Uri(uri) => build(uri),
    };

    let strict = RedirectUri::parse(&registered);
    let parsed = policy.parse(&registered);
    if strict.is_ok() {
        assert!(
            RedirectPolicy { insecure_http: true }.parse(&registered).is_ok(),
            "{registered}"
        );
    }
    // Stored URIs (validated long ago, or by other rules) are matched without a panic too.
    let stored = RedirectUri::from_storage(registered.clone());
    let matched = stored.matches(&requested);
    if let Some(destination) = &matched {
        assert_eq!(destination, &requested, "a match sends the user where they asked");
        if requested != registered {
            assert!(registered.starts_with("http://127.0.0.1") || registered.starts_with("http://[::1]"));
            if let Some(place_registered) = place(&registered) {
                assert_eq!(
                    place(destination).as_ref(),
                    Some(&place_registered),
                    "{registered} → {destination}"
                );
            }
        }
    }

    let Ok(uri) = parsed else { return };
    assert_eq!(uri.as_str(), registered);
    assert!(registered.bytes().all(|b| b.is_ascii_graphic()));
    let url = url::Url::parse(&registered).expect("a registered URI is absolute");
    assert!(url.fragment().is_none());
    assert_eq!(uri.matches(&registered).as_deref(), Some(registered.as_str()));

    let mut all = vec![uri.clone()];
    all.extend(input.others.iter().filter_map(|u| policy.parse(&build(u)).ok()));
    assert_eq!(
        authorize_redirect_uri(&all, Some(&registered)).ok().as_deref(),
        Some(registered.as_str())
    );
    if all.len() == 1 {
        assert_eq!(
            authorize_redirect_uri(&all, None).ok().as_deref(),
            Some(registered.as_str())
        );
    }
    match authorize_redirect_uri(&all, Some(&requested)) {
        Ok(destination) => {
            assert_eq!(destination, requested);
            assert!(
                all.iter()
                    .any(|r| r.matches(&requested).as_deref() == Some(destination.as_str()))
            );
        }
        Err(_) => assert!(all.iter().all(|r| r.matches(&requested).is_none())),
    }
    let exchange = check_exchange_redirect_uri(None, Some(&requested), &all);
    assert_eq!(exchange.is_ok(), all.iter().any(|r| r.as_str() == requested));
    let bound = check_exchange_redirect_uri(Some(&registered), Some(&requested), &all);
    assert_eq!(bound.is_ok(), requested == registered);
});
