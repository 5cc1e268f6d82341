//! The authorization endpoint's query: the strict parser, the request it builds, and the
//! redirect back (`redirect_with`). Oracles: `state` and `nonce` come back exactly as sent;
//! the parameters appended to a redirect URI read back as they were given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passport::{AuthorizationRequest, redirect_with};
use passport_axum::fuzzing::parse_query;

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    query: String,
    uri: String,
    fragment: bool,
    params: Vec<(String, String)>,
}

fuzz_target!(|input: Input| {
    if let Ok(pairs) = parse_query(&input.query) {
        let state = pairs.iter().find(|(k, _)| k == "state").map(|(_, v)| v.clone());
        if let Ok(request) = AuthorizationRequest::from_pairs(pairs) {
            assert_eq!(request.state, state.filter(|s| !s.is_empty()));
        }
    }
    let params: Vec<(&str, &str)> = input.params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let redirect = redirect_with(&input.uri, input.fragment, &params);
    assert!(redirect.starts_with(&input.uri));
    let appended = &redirect[input.uri.len() + 1..];
    let read: Vec<(String, String)> = url::form_urlencoded::parse(appended.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert_eq!(read, input.params);
});
