//! Property tests of the parsers of what a request carries (through `passport_axum::fuzzing`):
//! token request bodies (form and JSON), `Authorization` (Basic and Bearer), cookies, the CSRF
//! headers and the forwarded-for headers. None panics on any input; each round-trips what a
//! well-behaved client sends.
//!
//! `cargo test` runs proptest's default 256 cases per property; `.ci/run` runs the same
//! properties again with many thousands (`PROPTEST_CASES=20000 cargo test -p passport-axum
//! --test parsers`). The `cargo fuzz` targets in `fuzz/` go further.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use passport_axum::fuzzing::{
    MAX_BODY, MAX_VALUE, authorization, authorization_scheme, basic_credentials, bearer, client_address, cookie_value,
    csrf_header, header_map, parse_form, parse_json, parse_query, read_params,
};
use proptest::collection::vec;
use proptest::prelude::*;

/// Parameter names and values: any text, weighted towards the characters forms escape.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        3 => "[a-z_]{0,12}",
        2 => "[ &=+%;:#?/\\\\\"'a-z0-9\u{e9}\u{1f600}]{0,16}",
    ]
}

/// Pairs with distinct names.
fn unique_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    vec((text(), text()), 0..8).prop_map(|pairs| {
        let mut seen = std::collections::HashSet::new();
        pairs.into_iter().filter(|(k, _)| seen.insert(k.clone())).collect()
    })
}

/// `application/x-www-form-urlencoded` as `url` writes it (space as `+`).
fn form_encode(pairs: &[(String, String)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    out.finish()
}

/// Every byte percent-encoded (`%20` for space): what some clients send.
fn percent_everything(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

fn form_urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

proptest! {
    #[test]
    fn body_parsers_never_panic(body in vec(any::<u8>(), 0..512), content_type in proptest::option::of(vec(any::<u8>(), 0..48))) {
        let _ = parse_form(&body);
        let _ = parse_json(&body);
        if let Ok(pairs) = read_params(content_type.as_deref(), &body) {
            prop_assert!(pairs.iter().all(|(_, v)| v.len() <= MAX_VALUE));
        }
        if let Ok(text) = std::str::from_utf8(&body) {
            let _ = parse_query(text);
        }
    }

    #[test]
    fn form_bodies_round_trip(pairs in unique_pairs()) {
        let body = form_encode(&pairs);
        prop_assert_eq!(parse_form(body.as_bytes()).ok(), Some(pairs.clone()), "{}", body);
        prop_assert_eq!(parse_query(&body).ok(), Some(pairs.clone()));
        let escaped: Vec<String> =
            pairs.iter().map(|(k, v)| format!("{}={}", percent_everything(k), percent_everything(v))).collect();
        let escaped = escaped.join("&");
        prop_assert_eq!(parse_form(escaped.as_bytes()).ok(), Some(pairs.clone()), "{}", escaped);
        // Through the endpoint's reader: the form content type, or none.
        prop_assert_eq!(read_params(None, body.as_bytes()).ok(), Some(pairs.clone()));
    }

    #[test]
    fn a_repeated_form_parameter_is_refused(mut pairs in unique_pairs(), name in text(), a in text(), b in text(), at in any::<prop::sample::Index>()) {
        pairs.retain(|(k, _)| k != &name);
        let i = at.index(pairs.len() + 1);
        pairs.insert(i, (name.clone(), a));
        pairs.push((name, b));
        let err = parse_form(form_encode(&pairs).as_bytes()).unwrap_err();
        prop_assert!(err.hint().unwrap_or_default().contains("more than once"), "{:?}", err);
    }

    #[test]
    fn json_bodies_round_trip(members in vec((text(), 0u8..5, text(), any::<i64>(), any::<bool>()), 0..8)) {
        let mut seen = std::collections::HashSet::new();
        let members: Vec<_> = members.into_iter().filter(|(k, ..)| seen.insert(k.clone())).collect();
        let mut json = String::from("{");
        let mut expected = Vec::new();
        for (i, (name, kind, s, n, b)) in members.iter().enumerate() {
            let (value, text) = match kind {
                0 => (serde_json::to_string(s).unwrap(), Some(s.clone())),
                1 => (n.to_string(), Some(n.to_string())),
                2 => (b.to_string(), Some(b.to_string())),
                3 => ("null".to_owned(), None),
                _ => (format!("{}.5", n % 100_000), Some(format!("{}.5", n % 100_000))),
            };
            if i > 0 {
                json.push_str(" ,\n");
            }
            json.push_str(&format!("{}:{value}", serde_json::to_string(name).unwrap()));
            if let Some(text) = text {
                expected.push((name.clone(), text));
            }
        }
        json.push('}');
        let parsed = parse_json(json.as_bytes());
        if json.len() <= MAX_BODY && expected.iter().all(|(_, v)| v.len() <= MAX_VALUE) {
            prop_assert_eq!(parsed.ok(), Some(expected), "{}", json);
        }
    }

    #[test]
    fn json_members_that_are_not_scalars_or_repeat_are_refused(name in text(), nested in prop_oneof![Just("[]"), Just("{}"), Just("[\"x\"]"), Just("{\"a\":1}")]) {
        let key = serde_json::to_string(&name).unwrap();
        let bodies = [
            format!("{{{key}:{nested}}}"),
            format!("{{{key}:\"a\",{key}:\"b\"}}"),
            format!("[{key}]"),
            format!("{{{key}:1}} x"),
        ];
        for body in bodies {
            prop_assert!(parse_json(body.as_bytes()).is_err(), "{}", body);
        }
    }

    /// RFC 6749 §2.3.1: each part form-urlencoded, then `id:secret` in base64.
    #[test]
    fn basic_credentials_round_trip(id in text(), secret in text(), upper in any::<u8>(), pad in "[ \t]{0,3}") {
        let scheme: String = "basic".chars().enumerate()
            .map(|(i, c)| if upper & (1 << i) != 0 { c.to_ascii_uppercase() } else { c })
            .collect();
        let encoded = STANDARD.encode(format!("{}:{}", form_urlencode(&id), form_urlencode(&secret)));
        let value = format!("{pad}{scheme} {pad}{encoded}{pad}");
        let headers = authorization(value.as_bytes());
        prop_assert_eq!(authorization_scheme(&headers), Some("Basic"));
        prop_assert_eq!(bearer(&headers), None);
        let decoded = basic_credentials(&headers);
        if id.is_empty() {
            prop_assert!(decoded.is_none());
        } else {
            let decoded = decoded.expect("credentials decode");
            prop_assert_eq!(&decoded.client_id, &id);
            prop_assert_eq!(&decoded.client_secret, &secret);
        }
        // Percent-encoded by hand (`%20`, not `+`) they decode the same.
        let by_hand = STANDARD.encode(format!("{}:{}", percent_everything(&id), percent_everything(&secret)));
        let decoded = basic_credentials(&authorization(format!("Basic {by_hand}").as_bytes()));
        prop_assert_eq!(decoded.map(|c| (c.client_id, c.client_secret)), (!id.is_empty()).then_some((id, secret)));
    }

    #[test]
    fn authorization_headers_never_panic(value in vec(any::<u8>(), 0..256), prefix in prop_oneof![Just(""), Just("Basic "), Just("bearer "), Just("BASIC"), Just("Bearer\t")]) {
        let mut raw = prefix.as_bytes().to_vec();
        raw.extend_from_slice(&value);
        let headers = authorization(&raw);
        let scheme = authorization_scheme(&headers);
        if let Some(basic) = basic_credentials(&headers) {
            prop_assert_eq!(scheme, Some("Basic"));
            prop_assert!(!basic.client_id.is_empty());
        }
        if let Some(token) = bearer(&headers) {
            prop_assert_eq!(scheme, Some("Bearer"));
            prop_assert!(!token.is_empty());
            prop_assert_eq!(token.trim(), token);
        }
    }

    #[test]
    fn bearer_tokens_are_read_as_sent(token in "[!-~]{1,64}", pad in "[ \t]{0,3}", upper in any::<bool>()) {
        let scheme = if upper { "BEARER" } else { "Bearer" };
        let headers = authorization(format!("{scheme} {pad}{token}{pad}").as_bytes());
        prop_assert_eq!(bearer(&headers), Some(token.as_str()));
        prop_assert_eq!(authorization_scheme(&headers), Some("Bearer"));
        prop_assert!(basic_credentials(&headers).is_none());
    }

    /// RFC 6265 cookie-octets, among other cookies, in one or several `Cookie` headers.
    #[test]
    fn cookies_are_found_by_name(
        others in vec(("[a-zA-Z0-9_]{1,10}", "[!#-+\\x2D-:<-\\[\\]-~]{0,20}"), 0..5),
        value in "[!#-+\\x2D-:<-\\[\\]-~]{1,64}",
        at in any::<prop::sample::Index>(),
        split in any::<bool>(),
    ) {
        let name = "passport_guest";
        let mut cookies: Vec<String> =
            others.iter().filter(|(n, _)| n != name).map(|(n, v)| format!("{n}={v}")).collect();
        let i = at.index(cookies.len() + 1);
        cookies.insert(i, format!("{name}={value}"));
        let lines: Vec<String> = if split { cookies.clone() } else { vec![cookies.join("; ")] };
        let headers = header_map(lines.iter().map(|l| (b"cookie".as_slice(), l.as_bytes())));
        prop_assert_eq!(cookie_value(&headers, name), Some(value.as_str()));
        prop_assert_eq!(cookie_value(&headers, "passport_session"), None);
    }

    #[test]
    fn cookie_and_csrf_headers_never_panic(values in vec((0u8..4, vec(any::<u8>(), 0..128)), 0..4)) {
        const NAMES: [&[u8]; 4] = [b"cookie", b"x-csrf-token", b"x-xsrf-token", b"Cookie"];
        let headers = header_map(values.iter().map(|(n, v)| (NAMES[usize::from(*n)], v.as_slice())));
        for name in ["passport_session", "passport_guest", "passport_token", "XSRF-TOKEN", ""] {
            if let Some(value) = cookie_value(&headers, name) {
                prop_assert!(!value.contains(';'));
            }
        }
        let _ = csrf_header(&headers);
    }

    #[test]
    fn the_csrf_header_is_read_as_sent(token in "[!-~]{1,60}", xsrf in any::<bool>()) {
        let name: &[u8] = if xsrf { b"x-xsrf-token" } else { b"X-CSRF-TOKEN" };
        let headers = header_map([(name, token.as_bytes())]);
        prop_assert_eq!(csrf_header(&headers), Some(token.as_str()));
    }

    /// Behind trusted proxies: an untrusted peer is never overridden, and what a client writes
    /// left of the hops the proxies added changes nothing.
    #[test]
    fn forwarded_for_believes_only_trusted_proxies(
        peer_is_proxy in any::<bool>(),
        peer in any::<[u8; 4]>(),
        client in any::<[u8; 4]>(),
        proxies in vec(any::<u8>(), 0..3),
        spoof in vec(prop_oneof![any::<[u8; 4]>().prop_map(|o| IpAddr::from(o).to_string()), "[ -~]{0,12}"], 0..4),
        forwarded in any::<bool>(),
        junk in vec(any::<u8>(), 0..64),
    ) {
        let trusted = passport_axum::parse_trusted_proxies(&["10.9.0.0/16", "::1"]).unwrap();
        let peer = if peer_is_proxy { IpAddr::from([10, 9, 0, 1]) } else { IpAddr::from(peer) };
        // A random peer may fall inside the trusted range itself; then it is a proxy.
        let peer_is_proxy = trusted.iter().any(|net| net.contains(&peer));
        let client = IpAddr::from(client);
        let client_is_proxy = trusted.iter().any(|net| net.contains(&client));
        let hops: Vec<String> = std::iter::once(client.to_string())
            .chain(proxies.iter().map(|p| format!("10.9.1.{p}")))
            .collect();
        let write = |hops: &[String]| -> String {
            if forwarded {
                hops.iter().map(|h| format!("for=\"{h}\"")).collect::<Vec<_>>().join(", ")
            } else {
                hops.join(", ")
            }
        };
        let name: &[u8] = if forwarded { b"forwarded" } else { b"x-forwarded-for" };
        let honest = write(&hops);
        let headers = header_map([(name, honest.as_bytes())]);
        let seen = client_address(peer, &headers, &trusted);
        if !peer_is_proxy {
            prop_assert_eq!(seen, peer);
            let junk = header_map([(b"x-forwarded-for".as_slice(), junk.as_slice()), (b"forwarded".as_slice(), junk.as_slice())]);
            prop_assert_eq!(client_address(peer, &junk, &trusted), peer);
        } else if !client_is_proxy {
            prop_assert_eq!(seen, client);
            let mut all = spoof.clone();
            all.extend(hops.iter().cloned());
            let spoofed = write(&all);
            let headers = header_map([(name, spoofed.as_bytes())]);
            if !headers.is_empty() {
                prop_assert_eq!(client_address(peer, &headers, &trusted), client, "{}", spoofed);
            }
        }
    }
}

#[test]
fn body_limits_hold() {
    let long = format!("a={}", "x".repeat(MAX_VALUE + 1));
    assert!(parse_form(long.as_bytes()).is_err());
    let huge = vec![b'a'; MAX_BODY + 1];
    assert!(parse_form(&huge).is_err());
    assert!(read_params(Some(b"text/plain"), b"a=1").is_err());
    assert_eq!(
        read_params(Some(b"application/vnd.api+json; charset=utf-8"), br#"{"a":"1"}"#).unwrap(),
        vec![("a".to_owned(), "1".to_owned())]
    );
}

/// Found by `cargo fuzz run forwarded` (fuzz/): a client sends `X-Forwarded-For: \xff` (or
/// `Forwarded: \xff`), the proxy appends the client's address to that same header, and the whole
/// value, no longer visible ASCII, is read as one unreadable hop: the walk stops at the proxy,
/// so every such client counts as the proxy's address (evading its own limits, or locking out
/// everyone behind the proxy). Only the client-written part should be unreadable.
#[test]
fn a_client_written_non_ascii_prefix_does_not_hide_the_hops_the_proxy_appended() {
    let trusted = passport_axum::parse_trusted_proxies(&["10.0.0.0/24"]).unwrap();
    let proxy = IpAddr::from([10, 0, 0, 9]);
    let client = IpAddr::from([72, 72, 72, 72]);
    for (name, value) in [
        (b"x-forwarded-for".as_slice(), b"\xff, 72.72.72.72".as_slice()),
        (
            b"forwarded".as_slice(),
            b"for=\xff, for=\"72.72.72.72\";proto=https".as_slice(),
        ),
    ] {
        let headers = header_map([(name, value)]);
        assert_eq!(headers.len(), 1, "hyper accepts obs-text in header values");
        assert_eq!(
            client_address(proxy, &headers, &trusted),
            client,
            "{}",
            String::from_utf8_lossy(value)
        );
    }
}
