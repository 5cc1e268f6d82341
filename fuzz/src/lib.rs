//! Fixtures shared by the fuzz targets: one test server, its keys, and tokens and cookies it
//! issued, made once per process.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use passport::{AccessTokenClaims, KeySet, MockClock, Passport, PassportBuilder};

/// The fixed time every target runs at.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).unwrap_or_default()
}

/// A test server (in-memory store, the test key pair, a fixed server secret) with a few scopes,
/// an issuer and the clock stopped at [`now`].
pub fn passport() -> &'static Passport {
    static PASSPORT: OnceLock<Passport> = OnceLock::new();
    PASSPORT.get_or_init(|| {
        PassportBuilder::for_tests()
            .tokens_can([
                ("read", "Read"),
                ("write", "Write"),
                ("orders", "Orders"),
                ("orders:read", "Read orders"),
            ])
            .default_scopes(["read"])
            .issuer("http://127.0.0.1:8000")
            .clock(std::sync::Arc::new(MockClock::new(now())))
            .build()
            .expect("the fuzzing server builds")
    })
}

/// The test key pair as a key set (the one [`passport`] signs with).
pub fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        let pair = passport::testing::test_keys();
        KeySet::from_pem(&pair.private_pem, Some(&pair.public_pem)).expect("the test key pair loads")
    })
}

/// Claims of a token valid at [`now`].
pub fn claims(jti: &str) -> AccessTokenClaims {
    let now = now().timestamp();
    AccessTokenClaims {
        aud: "client-1".to_owned(),
        jti: jti.to_owned(),
        iat: now,
        nbf: now,
        exp: now + 3600,
        sub: "user-1".to_owned(),
        scopes: vec!["read".to_owned(), "orders:read".to_owned()],
        iss: None,
        client_id: None,
        custom: serde_json::Map::new(),
    }
}

/// An access token signed with [`keys`], valid at [`now`].
pub fn signed_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| passport::fuzzing::sign_access_token(keys(), &claims("token-1")).expect("the test key signs"))
}

/// An SPA cookie value [`passport`] issued.
pub fn transient_cookie() -> &'static str {
    static VALUE: OnceLock<String> = OnceLock::new();
    VALUE.get_or_init(|| passport().issue_transient_token("user-1", "csrf-token-of-the-session", "session-cookie"))
}

/// A guest session cookie value [`passport`] sealed.
pub fn guest_cookie() -> &'static str {
    static VALUE: OnceLock<String> = OnceLock::new();
    VALUE.get_or_init(|| {
        let mut data = serde_json::Map::new();
        data.insert("csrf".to_owned(), "csrf-token-of-the-guest".into());
        data.insert("intended".to_owned(), "/oauth/authorize?client_id=x".into());
        passport().seal_guest_session(&data, now() + chrono::TimeDelta::hours(2))
    })
}

/// `value` with `edits` applied: each `(position, byte)` overwrites the byte at
/// `position % len` (a `0xff`-flagged position inserts instead, `0xfe` deletes), keeping it a
/// `String` by replacing invalid UTF-8 lossily.
pub fn tamper(value: &str, edits: &[(u16, u8, u8)]) -> String {
    let mut bytes = value.as_bytes().to_vec();
    for &(position, byte, op) in edits {
        let at = if bytes.is_empty() {
            0
        } else {
            usize::from(position) % bytes.len()
        };
        match op {
            0xff => bytes.insert(at, byte),
            0xfe if !bytes.is_empty() => {
                bytes.remove(at);
            }
            _ if !bytes.is_empty() => bytes[at] = byte,
            _ => bytes.push(byte),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// base64url without padding, as JOSE and our cookies use.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}
