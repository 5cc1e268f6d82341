//! Property tests of the core's checks of outside input: scope strings, redirect URIs (the
//! registration rules and the RFC 8252 §7.3 loopback rule), access tokens (JWT), the signed
//! cookies (SPA token, guest session), PKCE, user codes and the authorization request's query.
//! None panics on any input; a token or cookie changed in any byte is refused.
//!
//! `cargo test` runs proptest's default 256 cases per property; `.ci/run` runs the same
//! properties again with many thousands (`PROPTEST_CASES=20000 cargo test -p passport --test
//! parsers`). The `cargo fuzz` targets in `fuzz/` go further.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use passport::fuzzing::{sign_access_token, valid_pkce_string, verify_access_token, verify_pkce};
use passport::{
    AccessTokenClaims, AuthorizationRequest, KeySet, MockClock, Passport, PassportBuilder, PkceMethod, RedirectPolicy,
    RedirectUri, ScopeSet, ServerSecret, TokenInvalid, USER_CODE_ALPHABET, WILDCARD, authorize_redirect_uri,
    check_exchange_redirect_uri, display_user_code, normalize_user_code, token_can,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use sha2::Digest as _;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).unwrap()
}

fn passport() -> &'static Passport {
    static PASSPORT: OnceLock<Passport> = OnceLock::new();
    PASSPORT.get_or_init(|| {
        PassportBuilder::for_tests()
            .clock(Arc::new(MockClock::new(now())))
            .build()
            .unwrap()
    })
}

fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        let pair = passport::testing::test_keys();
        KeySet::from_pem(&pair.private_pem, Some(&pair.public_pem)).unwrap()
    })
}

fn claims(jti: &str, scopes: Vec<String>) -> AccessTokenClaims {
    let t = now().timestamp();
    AccessTokenClaims {
        aud: "client-1".to_owned(),
        jti: jti.to_owned(),
        iat: t,
        nbf: t,
        exp: t + 3600,
        sub: "user-1".to_owned(),
        scopes,
        iss: None,
        client_id: None,
        cnf: None,
        custom: serde_json::Map::new(),
    }
}

fn signed_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| sign_access_token(keys(), &claims("token-1", vec!["read".to_owned()])).unwrap())
}

fn transient_cookie() -> &'static str {
    static VALUE: OnceLock<String> = OnceLock::new();
    VALUE.get_or_init(|| passport().issue_transient_token("user-1", "csrf-of-the-session", "session-cookie-value"))
}

fn guest_cookie() -> &'static str {
    static VALUE: OnceLock<String> = OnceLock::new();
    VALUE.get_or_init(|| {
        let mut data = serde_json::Map::new();
        data.insert("csrf".to_owned(), "csrf-of-the-guest".into());
        data.insert("intended".to_owned(), "/oauth/authorize?client_id=x".into());
        passport().seal_guest_session(&data, now() + TimeDelta::hours(2))
    })
}

/// One change to a string: a byte replaced, inserted or removed, or the string cut short.
#[derive(Debug, Clone)]
enum Edit {
    Replace(Index, u8),
    Insert(Index, u8),
    Remove(Index),
    Truncate(Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop_oneof![
        4 => any::<u8>(),
        4 => select(b"ABCXYZabcxyz0123456789-_=.+/".to_vec()),
    ];
    prop_oneof![
        4 => (any::<Index>(), byte.clone()).prop_map(|(i, b)| Edit::Replace(i, b)),
        2 => (any::<Index>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        1 => any::<Index>().prop_map(Edit::Remove),
        1 => any::<Index>().prop_map(Edit::Truncate),
    ]
}

/// `value` with `edits` applied; `None` when it is no longer UTF-8 (no header carries that).
fn apply(value: &str, edits: &[Edit]) -> Option<String> {
    let mut bytes = value.as_bytes().to_vec();
    for edit in edits {
        let len = bytes.len().max(1);
        match *edit {
            Edit::Replace(i, b) if !bytes.is_empty() => bytes[i.index(len)] = b,
            Edit::Insert(i, b) => bytes.insert(i.index(len + 1).min(bytes.len()), b),
            Edit::Remove(i) if !bytes.is_empty() => {
                bytes.remove(i.index(len));
            }
            Edit::Truncate(i) => bytes.truncate(i.index(len)),
            _ => {}
        }
    }
    String::from_utf8(bytes).ok()
}

/// Redirect URIs as clients register them, and the near misses attackers try.
fn uri() -> impl Strategy<Value = String> {
    let scheme = prop_oneof![
        Just("http://"),
        Just("https://"),
        Just("com.example.app:"),
        Just("HTTP://"),
        Just("javascript:"),
        Just("")
    ];
    let host = prop_oneof![
        Just("127.0.0.1".to_owned()),
        Just("[::1]".to_owned()),
        Just("localhost".to_owned()),
        Just("a.example".to_owned()),
        Just("127.0.0.1.evil.example".to_owned()),
        Just("127.0.0.1@evil.example".to_owned()),
        Just("2130706433".to_owned()),
        "[a-z0-9.\\-]{0,12}",
        "[!-~]{0,8}",
    ];
    let port = proptest::option::of(prop_oneof![any::<u16>().prop_map(|p| p.to_string()), "[0-9a-z@]{0,6}"]);
    let path = prop_oneof!["[a-z/]{0,10}", "[!-~]{0,10}", Just("cb/../cb".to_owned())];
    let query = proptest::option::of("[a-z=&%0-9]{0,8}");
    (scheme, host, port, path, query).prop_map(|(scheme, host, port, path, query)| {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let query = query.map(|q| format!("?{q}")).unwrap_or_default();
        format!("{scheme}{host}{port}/{path}{query}")
    })
}

/// Scheme, host, path and query of a URI: everything the loopback rule must keep.
fn place(uri: &str) -> Option<(String, Option<String>, String, Option<String>)> {
    let u = url::Url::parse(uri).ok()?;
    Some((
        u.scheme().to_owned(),
        u.host_str().map(str::to_owned),
        u.path().to_owned(),
        u.query().map(str::to_owned),
    ))
}

/// `uri` with the port of its authority replaced.
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

fn scope_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z:* \t\n\r]{0,40}",
        any::<String>(),
        vec(
            select(vec!["read", "write", "a:b", "a", "*", " ", "\t", "\u{a0}"]),
            0..10
        )
        .prop_map(|v| v.concat())
    ]
}

proptest! {
    #[test]
    fn scopes_parse_join_parse_is_stable(param in scope_text()) {
        let set = ScopeSet::parse(Some(&param));
        // The model: split on the four separators, drop empty ids, keep the first of repeats.
        let mut model: Vec<String> = Vec::new();
        for s in param.split([' ', '\t', '\n', '\r']).filter(|s| !s.is_empty()) {
            if !model.iter().any(|m| m == s) {
                model.push(s.to_owned());
            }
        }
        prop_assert_eq!(set.as_slice(), model.as_slice());
        let joined = set.to_param();
        let again = ScopeSet::parse(Some(&joined));
        prop_assert_eq!(&again, &set);
        prop_assert_eq!(again.to_param(), joined);
        prop_assert!(set.same_scopes(&again));
        prop_assert!(passport().scopes().requested(Some(&param)).is_ok() || !set.is_empty());
    }

    #[test]
    fn token_can_holds_for_held_scopes_and_inheritance_only_adds(granted in vec("[a-c:*]{0,6}", 0..5), scope in "[a-c:*]{0,8}") {
        let strict = token_can(&granted, &scope, false);
        let inherited = token_can(&granted, &scope, true);
        prop_assert_eq!(strict, granted.iter().any(|g| g == &scope || g == WILDCARD));
        prop_assert!(!strict || inherited);
        // With inheritance, `a` (or `a:b`) satisfies `a:b:c`: some granted scope is a
        // `:`-prefix of the scope.
        let prefix = granted.iter().any(|g| scope.len() > g.len() && scope.starts_with(g.as_str()) && scope.as_bytes()[g.len()] == b':');
        prop_assert_eq!(inherited, strict || prefix, "{:?} {}", granted, scope);
    }

    #[test]
    fn registered_redirect_uris_match_themselves(registered in uri(), insecure in any::<bool>()) {
        let policy = RedirectPolicy { insecure_http: insecure };
        if RedirectUri::parse(&registered).is_ok() {
            let insecure_policy = RedirectPolicy { insecure_http: true };
            prop_assert!(insecure_policy.parse(&registered).is_ok(), "{}", registered);
        }
        if let Ok(uri) = policy.parse(&registered) {
            prop_assert_eq!(uri.as_str(), registered.as_str());
            prop_assert!(registered.bytes().all(|b| b.is_ascii_graphic()));
            let url = url::Url::parse(&registered).unwrap();
            prop_assert!(url.fragment().is_none());
            prop_assert!(matches!(url.scheme(), "http" | "https") || url.scheme().contains('.'));
            if url.scheme() == "http" && !insecure {
                prop_assert!(matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost")));
            }
            prop_assert_eq!(uri.matches(&registered), Some(registered.clone()));
            let only = [uri];
            prop_assert_eq!(authorize_redirect_uri(&only, None).ok(), Some(registered.clone()));
            prop_assert_eq!(authorize_redirect_uri(&only, Some(&registered)).ok(), Some(registered.clone()));
            prop_assert!(check_exchange_redirect_uri(None, Some(&registered), &only).is_ok());
        }
    }

    /// The loopback rule: a match sends the user to the URI they asked for, which is the
    /// registered one on another port; never to another scheme, host, path or query.
    #[test]
    fn the_loopback_rule_never_changes_the_host(
        registered in uri(),
        requested in prop_oneof![uri(), any::<String>()],
        port in any::<Option<u16>>(),
        edits in vec(edit(), 0..3),
    ) {
        let stored = RedirectUri::from_storage(registered.clone());
        let candidates = [
            requested,
            with_port(&registered, port),
            apply(&with_port(&registered, port), &edits).unwrap_or_default(),
        ];
        for requested in candidates {
            let Some(destination) = stored.matches(&requested) else { continue };
            prop_assert_eq!(&destination, &requested);
            if requested != registered {
                prop_assert!(registered.starts_with("http://127.0.0.1") || registered.starts_with("http://[::1]"), "{}", registered);
                if let Some(expected) = place(&registered) {
                    prop_assert_eq!(place(&destination), Some(expected), "{} → {}", registered, destination);
                }
            }
            // The token endpoint is stricter: byte for byte.
            let only = [stored.clone()];
            prop_assert_eq!(check_exchange_redirect_uri(None, Some(&requested), &only).is_ok(), requested == registered);
        }
    }

    #[test]
    fn our_access_token_changed_in_any_byte_is_refused(edits in vec(edit(), 1..4)) {
        let ours = signed_token();
        prop_assert!(verify_access_token(keys(), ours, now()).is_ok());
        if let Some(token) = apply(ours, &edits) {
            let verified = verify_access_token(keys(), &token, now());
            prop_assert_eq!(verified.is_ok(), token == ours, "{}", token);
        }
    }

    #[test]
    fn access_tokens_round_trip_and_expire(jti in "[!-~]{1,40}", scopes in vec("[a-z:*]{1,10}", 0..4), ttl in -100_000i64..100_000) {
        let mut claims = claims(&jti, scopes);
        claims.exp = now().timestamp() + ttl;
        let token = sign_access_token(keys(), &claims).unwrap();
        match verify_access_token(keys(), &token, now()) {
            Ok(back) => {
                prop_assert!(ttl > 0);
                prop_assert_eq!(back, claims);
            }
            Err(reason) => {
                prop_assert!(ttl <= 0);
                prop_assert_eq!(reason, TokenInvalid::Expired);
            }
        }
    }

    /// Forged tokens: any header (`alg: none`, HMAC keyed with our public key, a `kid` of no
    /// key), any claims, our own signature moved onto them.
    #[test]
    fn forged_access_tokens_are_refused(
        alg in select(vec!["RS256", "none", "HS256", "RS512", "PS256", "ES256", ""]),
        kid in proptest::option::of(prop_oneof![Just(None), "[!-~]{0,20}".prop_map(Some)]),
        jti in "[a-z0-9]{1,12}",
        signature in select(vec!["ours", "none", "hmac-public-key", "random"]),
        random in vec(any::<u8>(), 0..300),
    ) {
        let ours = signed_token();
        let mut header = serde_json::json!({ "alg": alg, "typ": "JWT" });
        match kid {
            Some(None) => header["kid"] = keys().current().kid().into(),
            Some(Some(k)) => header["kid"] = k.into(),
            None => {}
        }
        let body = serde_json::to_vec(&claims(&jti, vec!["*".to_owned()])).unwrap();
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(body));
        let signature = match signature {
            "ours" => ours.rsplit('.').next().unwrap_or_default().to_owned(),
            "none" => String::new(),
            "hmac-public-key" => {
                let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, keys().current().public_pem().as_bytes());
                URL_SAFE_NO_PAD.encode(aws_lc_rs::hmac::sign(&key, input.as_bytes()))
            }
            _ => URL_SAFE_NO_PAD.encode(&random),
        };
        let token = format!("{input}.{signature}");
        prop_assert!(verify_access_token(keys(), &token, now()).is_err(), "{}", token);
        let _ = verify_access_token(keys(), &String::from_utf8_lossy(&random), now());
    }

    #[test]
    fn our_cookies_changed_in_any_byte_are_refused(edits in vec(edit(), 1..4)) {
        let passport = passport();
        let spa = transient_cookie();
        let guest = guest_cookie();
        prop_assert!(passport.verify_transient_token(spa).is_some());
        prop_assert!(passport.open_guest_session(guest).is_some());
        prop_assert!(passport.open_guest_session(spa).is_none(), "an SPA cookie is no guest session");
        prop_assert!(passport.verify_transient_token(guest).is_none(), "a guest session is no SPA cookie");
        if let Some(value) = apply(spa, &edits) {
            prop_assert_eq!(passport.verify_transient_token(&value).is_some(), value == spa, "{}", value);
            prop_assert!(passport.open_guest_session(&value).is_none());
        }
        if let Some(value) = apply(guest, &edits) {
            prop_assert_eq!(passport.open_guest_session(&value).is_some(), value == guest, "{}", value);
            prop_assert!(passport.verify_transient_token(&value).is_none());
        }
    }

    #[test]
    fn cookies_of_another_secret_or_any_text_are_refused(secret in any::<[u8; 32]>(), text in any::<String>(), user in "[a-z0-9]{1,10}") {
        let passport = passport();
        prop_assert!(passport.verify_transient_token(&text).is_none());
        prop_assert!(passport.open_guest_session(&text).is_none());
        if secret != [7u8; 32] {
            let other = PassportBuilder::for_tests()
                .server_secret(ServerSecret::from_bytes(&secret).unwrap())
                .clock(Arc::new(MockClock::new(now())))
                .build()
                .unwrap();
            let theirs = other.issue_transient_token(&user, "csrf", "session");
            prop_assert!(other.verify_transient_token(&theirs).is_some());
            prop_assert!(passport.verify_transient_token(&theirs).is_none());
            let guest = other.seal_guest_session(&serde_json::Map::new(), now() + TimeDelta::hours(1));
            prop_assert!(passport.open_guest_session(&guest).is_none());
        }
    }

    #[test]
    fn pkce_checks_pass_exactly_for_the_verifier(
        verifier in prop_oneof!["[A-Za-z0-9._~\\-]{43,128}", "[A-Za-z0-9._~\\-]{0,140}", any::<String>()],
        challenge in any::<String>(),
    ) {
        let valid = valid_pkce_string(&verifier);
        prop_assert_eq!(valid, (43..=128).contains(&verifier.len()) && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)));
        let s256 = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
        prop_assert_eq!(verify_pkce(&s256, PkceMethod::S256, &verifier).is_ok(), valid);
        prop_assert_eq!(verify_pkce(&verifier, PkceMethod::Plain, &verifier).is_ok(), valid);
        prop_assert_eq!(verify_pkce(&challenge, PkceMethod::S256, &verifier).is_ok(), valid && challenge == s256);
        prop_assert_eq!(verify_pkce(&challenge, PkceMethod::Plain, &verifier).is_ok(), valid && challenge == verifier);
    }

    #[test]
    fn user_codes_survive_display_and_typing(code in vec(select(USER_CODE_ALPHABET.to_vec()), 8), typed in any::<String>(), lower in any::<bool>()) {
        let code = String::from_utf8(code).unwrap();
        let shown = display_user_code(&code);
        let shown = if lower { shown.to_lowercase() } else { shown };
        prop_assert_eq!(normalize_user_code(&shown), Some(code.clone()));
        prop_assert_eq!(normalize_user_code(&format!(" {} ", shown.replace('-', " - "))), Some(code));
        if let Some(normalized) = normalize_user_code(&typed) {
            prop_assert_eq!(normalized.len(), 8);
            prop_assert!(normalized.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
        }
        let shown = display_user_code(&typed);
        if typed.len() != 8 || typed.get(..4).is_none() {
            prop_assert_eq!(shown, typed, "what is not a user code is shown as is");
        }
    }

    #[test]
    fn authorization_requests_keep_state_exactly(pairs in vec((select(vec!["state", "nonce", "scope", "client_id", "redirect_uri", "x"]), any::<String>()), 0..6)) {
        let pairs: Vec<(String, String)> = pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        // Empty values are absent (after trimming, but for the opaque `state` and `nonce`), so
        // only a repeat of a parameter given a value before is refused.
        let present = |k: &str, v: &str| if k == "state" || k == "nonce" { !v.is_empty() } else { !v.trim().is_empty() };
        let repeated = pairs
            .iter()
            .enumerate()
            .any(|(i, (k, _))| k != "x" && pairs[..i].iter().any(|(j, v)| j == k && present(j, v)));
        match AuthorizationRequest::from_pairs(pairs.clone()) {
            Ok(request) => {
                prop_assert!(!repeated);
                let state = pairs.iter().filter(|(k, _)| k == "state").map(|(_, v)| v.clone()).find(|v| !v.is_empty());
                prop_assert_eq!(request.state, state);
            }
            Err(_) => prop_assert!(repeated),
        }
    }
}
