//! `Authorization` headers: Basic client credentials (RFC 6749 §2.3.1), the token endpoint's
//! scheme detection and the guard's bearer token. Oracles: credentials encoded as the RFC says
//! (form-urlencoded, then base64) decode to what was encoded, whatever the scheme's case and
//! the surrounding spaces; the three readers agree on the scheme.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use passport_axum::fuzzing::{authorization, authorization_scheme, basic_credentials, bearer};

#[derive(Debug, arbitrary::Arbitrary)]
enum Input {
    Raw(Vec<u8>),
    Basic {
        id: String,
        secret: String,
        scheme: u8,
        spaces: u8,
    },
    Bearer {
        token: String,
        scheme: u8,
    },
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn cased(word: &str, mask: u8) -> String {
    word.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask & (1 << (i % 8)) != 0 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

fn check(value: &[u8]) {
    let headers = authorization(value);
    let scheme = authorization_scheme(&headers);
    let basic = basic_credentials(&headers);
    let token = bearer(&headers);
    if let Some(basic) = &basic {
        assert_eq!(scheme, Some("Basic"));
        assert!(!basic.client_id.is_empty());
    }
    if let Some(token) = token {
        assert_eq!(scheme, Some("Bearer"));
        assert!(!token.is_empty() && token.trim() == token);
    }
}

fuzz_target!(|input: Input| match input {
    Input::Raw(raw) => check(&raw),
    Input::Basic {
        id,
        secret,
        scheme,
        spaces,
    } => {
        let pad = " ".repeat(usize::from(spaces % 4));
        let encoded = STANDARD.encode(format!("{}:{}", form_encode(&id), form_encode(&secret)));
        let value = format!("{pad}{} {pad}{encoded}{pad}", cased("basic", scheme));
        check(value.as_bytes());
        let decoded = basic_credentials(&authorization(value.as_bytes()));
        if id.is_empty() {
            assert!(decoded.is_none(), "an empty client id is no credentials");
        } else {
            let decoded = decoded.expect("well-formed Basic credentials decode");
            assert_eq!(
                (decoded.client_id.as_str(), decoded.client_secret.as_str()),
                (id.as_str(), secret.as_str())
            );
        }
    }
    Input::Bearer { token, scheme } => {
        let value = format!("{} {token}", cased("bearer", scheme));
        check(value.as_bytes());
        let headers = authorization(value.as_bytes());
        let expected = token.trim_matches([' ', '\t']);
        let readable = value.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
        if !readable || expected.is_empty() {
            assert_eq!(bearer(&headers), None);
        } else {
            assert_eq!(bearer(&headers), Some(expected));
        }
    }
});
