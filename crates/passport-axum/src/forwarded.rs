//! The client's address behind reverse proxies: when a connection comes from a trusted proxy,
//! the address it forwards for (`Forwarded: for=`, RFC 7239, or else `X-Forwarded-For`) is the
//! client's, read from the right: the first hop that is not itself a trusted proxy. Anything
//! left of it was written by the client and is ignored; an entry that is not an address
//! (`unknown`, an obfuscated name, garbage) ends the walk at the last hop we could trust.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use axum::http::header::{FORWARDED, HeaderName};
use ipnet::IpNet;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The address the failure and rate limits see for a request from `peer`.
pub(crate) fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // Split before decoding: a proxy appends its hop to whatever bytes the client sent, so one
    // unreadable hop must not hide the readable ones after it.
    let hops_of = |name| {
        headers
            .get_all(name)
            .iter()
            .flat_map(|value| value.as_bytes().split(|b| *b == b','))
            .map(|hop| std::str::from_utf8(hop).ok())
            .collect::<Vec<_>>()
    };
    let forwarded = hops_of(FORWARDED);
    let hops: Vec<Option<IpAddr>> = if forwarded.is_empty() {
        hops_of(X_FORWARDED_FOR)
            .into_iter()
            .map(|hop| hop.and_then(|hop| parse_node(hop.trim())))
            .collect()
    } else {
        forwarded.into_iter().map(|hop| hop.and_then(forwarded_for)).collect()
    };
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        let Some(hop) = hop else {
            break;
        };
        client = hop;
        if !is_trusted(&hop) {
            break;
        }
    }
    client
}

/// The `for=` address of one `Forwarded` element (`for=192.0.2.1;proto=https`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("for") {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        parse_node(value)
    })
}

/// An address, with or without a port: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]`, `[2001:db8::1]:4711`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = node.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    node.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// Parses the `trusted_proxies` setting: addresses or networks (`10.0.0.0/8`, `::1`).
pub fn parse_trusted_proxies<S: AsRef<str>>(entries: &[S]) -> Result<Vec<IpNet>, String> {
    entries
        .iter()
        .map(|entry| {
            let entry = entry.as_ref().trim();
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("trusted_proxies: {entry:?} is neither an address nor a network like 10.0.0.0/8"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn only_a_trusted_peer_is_believed_and_only_up_to_the_first_untrusted_hop() {
        let trusted = parse_trusted_proxies(&["10.0.0.0/8", "::1"]).unwrap();
        let spoofed = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            client_address(ip("198.51.100.7"), &spoofed, &trusted),
            ip("198.51.100.7")
        );

        let chain = headers(&[("x-forwarded-for", "1.2.3.4, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &chain, &trusted),
            ip("198.51.100.7"),
            "what the client wrote itself (1.2.3.4) is ignored"
        );
        let split = headers(&[("x-forwarded-for", "1.2.3.4"), ("x-forwarded-for", "198.51.100.7:5555")]);
        assert_eq!(client_address(ip("::1"), &split, &trusted), ip("198.51.100.7"));

        assert_eq!(
            client_address(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
        let all_proxies = headers(&[("x-forwarded-for", "10.1.1.1, 10.2.2.2")]);
        assert_eq!(client_address(ip("10.0.0.1"), &all_proxies, &trusted), ip("10.1.1.1"));
        let garbage = headers(&[("x-forwarded-for", "1.2.3.4, nonsense, 10.2.2.2")]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &garbage, &trusted),
            ip("10.2.2.2"),
            "the walk stops at what it cannot read"
        );
    }

    #[test]
    fn the_forwarded_header_wins_over_x_forwarded_for() {
        let trusted = parse_trusted_proxies(&["127.0.0.1"]).unwrap();
        let both = headers(&[
            ("x-forwarded-for", "203.0.113.1"),
            (
                "forwarded",
                "for=192.0.2.43, for=\"[2001:db8:cafe::17]:4711\";proto=https;by=127.0.0.1",
            ),
        ]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &both, &trusted),
            ip("2001:db8:cafe::17")
        );
        let hidden = headers(&[("forwarded", "for=_hidden")]);
        assert_eq!(client_address(ip("127.0.0.1"), &hidden, &trusted), ip("127.0.0.1"));
    }

    #[test]
    fn trusted_proxies_take_addresses_and_networks() {
        assert_eq!(parse_trusted_proxies(&["10.0.0.1", "fd00::/8"]).unwrap().len(), 2);
        let err = parse_trusted_proxies(&["proxy.internal"]).unwrap_err();
        assert!(err.contains("proxy.internal"), "{err}");
    }
}
