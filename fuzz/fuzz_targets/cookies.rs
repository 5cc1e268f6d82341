//! Cookies: the `Cookie` header reader, the CSRF headers, the SPA token cookie and the guest
//! session cookie. Oracles: cookies we sealed open, and the same values changed in any byte do
//! not; neither kind of cookie opens as the other; nothing in any header panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passport_axum::fuzzing::{cookie_value, csrf_header, header_map};
use passport_axum::session::{GUEST_COOKIE, SESSION_COOKIE, XSRF_COOKIE};
use passport_fuzz::{guest_cookie, passport, tamper, transient_cookie};

#[derive(Debug, arbitrary::Arbitrary)]
enum Input {
    Headers(Vec<(u8, Vec<u8>)>),
    TamperedSpa(Vec<(u16, u8, u8)>),
    TamperedGuest(Vec<(u16, u8, u8)>),
}

const NAMES: &[&str] = &["cookie", "x-csrf-token", "x-xsrf-token", "authorization", "Cookie"];

fn open_all(value: &str) -> (bool, bool) {
    let passport = passport();
    (
        passport.verify_transient_token(value).is_some(),
        passport.open_guest_session(value).is_some(),
    )
}

/// The value as a browser would send it, among other cookies, read back by the session code.
fn through_header(name: &str, value: &str) -> Option<String> {
    let header = format!("a=1; {name}={value}; b=2");
    let headers = header_map([(b"cookie".as_slice(), header.as_bytes())]);
    cookie_value(&headers, name).map(str::to_owned)
}

fuzz_target!(|input: Input| {
    let passport = passport();
    let spa_name = passport.settings().cookie.clone();
    match input {
        Input::Headers(headers) => {
            let headers = header_map(
                headers
                    .iter()
                    .map(|(n, v)| (NAMES[usize::from(*n) % NAMES.len()].as_bytes(), v.as_slice())),
            );
            let _ = csrf_header(&headers);
            for name in [SESSION_COOKIE, GUEST_COOKIE, XSRF_COOKIE, spa_name.as_str()] {
                if let Some(value) = cookie_value(&headers, name) {
                    let (spa, guest) = open_all(value);
                    assert!(!spa && !guest, "a cookie we never sealed opened: {value}");
                }
            }
        }
        Input::TamperedSpa(edits) => {
            let ours = transient_cookie();
            let value = tamper(ours, &edits);
            let (spa, guest) = open_all(&value);
            assert!(!guest, "an SPA cookie opened as a guest session");
            assert_eq!(spa, value == ours, "SPA cookie {value}");
            if let Some(read) = through_header(&spa_name, &value) {
                assert_eq!(passport.verify_transient_token(&read).is_some(), read == ours);
            }
        }
        Input::TamperedGuest(edits) => {
            let ours = guest_cookie();
            let value = tamper(ours, &edits);
            let (spa, guest) = open_all(&value);
            assert!(!spa, "a guest cookie opened as an SPA cookie");
            assert_eq!(guest, value == ours, "guest cookie {value}");
            if let Some(read) = through_header(GUEST_COOKIE, &value) {
                assert_eq!(passport.open_guest_session(&read).is_some(), read == ours);
            }
        }
    }
});
