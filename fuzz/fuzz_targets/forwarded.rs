//! `Forwarded` (RFC 7239) and `X-Forwarded-For` behind trusted proxies. Oracles: an untrusted
//! peer is never overridden; once the walk finds a client (an untrusted hop), what a client
//! could have written further left changes nothing.
#![no_main]

use std::net::IpAddr;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use passport_axum::fuzzing::{client_address, header_map};

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    peer: Peer,
    headers: Vec<(bool, Hops)>,
    spoof: Hops,
}

#[derive(Debug, arbitrary::Arbitrary)]
enum Peer {
    Proxy(u8),
    Client([u8; 4]),
    V6([u16; 8]),
}

#[derive(Debug, arbitrary::Arbitrary)]
enum Hops {
    Raw(Vec<u8>),
    Built(Vec<Hop>),
}

#[derive(Debug, arbitrary::Arbitrary)]
enum Hop {
    Proxy(u8),
    Client([u8; 4]),
    V6([u16; 8], Option<u16>),
    WithPort([u8; 4], u16),
    Unknown,
    Hidden,
    Raw(String),
}

fn text(hops: &Hops, forwarded: bool) -> Vec<u8> {
    match hops {
        Hops::Raw(raw) => raw.clone(),
        Hops::Built(hops) => hops
            .iter()
            .map(|hop| {
                let node = match hop {
                    Hop::Proxy(n) => format!("10.0.0.{n}"),
                    Hop::Client([a, b, c, d]) => format!("{a}.{b}.{c}.{d}"),
                    Hop::V6(segments, None) => IpAddr::from(*segments).to_string(),
                    Hop::V6(segments, Some(port)) => format!("[{}]:{port}", IpAddr::from(*segments)),
                    Hop::WithPort([a, b, c, d], port) => format!("{a}.{b}.{c}.{d}:{port}"),
                    Hop::Unknown => "unknown".to_owned(),
                    Hop::Hidden => "_hidden".to_owned(),
                    Hop::Raw(raw) => raw.clone(),
                };
                if forwarded {
                    format!("for=\"{node}\";proto=https")
                } else {
                    node
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
            .into_bytes(),
    }
}

fuzz_target!(|input: Input| {
    static TRUSTED: OnceLock<Vec<ipnet::IpNet>> = OnceLock::new();
    let trusted = TRUSTED
        .get_or_init(|| passport_axum::parse_trusted_proxies(&["10.0.0.0/24", "::1", "fd00::/8"]).expect("valid"));
    let peer = match input.peer {
        Peer::Proxy(n) => IpAddr::from([10, 0, 0, n]),
        Peer::Client(octets) => IpAddr::from(octets),
        Peer::V6(segments) => IpAddr::from(segments),
    };
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let values: Vec<(&'static [u8], Vec<u8>)> = input
        .headers
        .iter()
        .map(|(forwarded, hops)| {
            let name: &'static [u8] = if *forwarded { b"forwarded" } else { b"x-forwarded-for" };
            (name, text(hops, *forwarded))
        })
        .collect();
    let headers = header_map(values.iter().map(|(n, v)| (*n, v.as_slice())));
    let client = client_address(peer, &headers, trusted);
    if !is_trusted(&peer) {
        assert_eq!(client, peer, "an untrusted peer was overridden");
        return;
    }
    if is_trusted(&client) {
        return;
    }
    // A client-written prefix on the first header of the kind that was read changes nothing.
    let read = if headers.contains_key("forwarded") {
        b"forwarded".as_slice()
    } else {
        b"x-forwarded-for".as_slice()
    };
    let Some(first) = values.iter().position(|(n, _)| *n == read) else {
        return;
    };
    if axum::http::HeaderValue::from_bytes(&values[first].1).is_err() {
        return;
    }
    let spoof = text(&input.spoof, read == b"forwarded");
    let mut spoofed = values.clone();
    let mut value = spoof;
    value.extend_from_slice(b", ");
    value.extend_from_slice(&values[first].1);
    spoofed[first].1 = value;
    let spoofed = header_map(spoofed.iter().map(|(n, v)| (*n, v.as_slice())));
    if spoofed.len() == headers.len() {
        assert_eq!(
            client_address(peer, &spoofed, trusted),
            client,
            "a client-written prefix moved the address"
        );
    }
});
