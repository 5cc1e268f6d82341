//! The token endpoint's form body (`application/x-www-form-urlencoded`) and the strict query
//! parser. Oracles: accepted names are unique; re-encoding the pairs and parsing them again
//! gives the same pairs; the byte parser and the query parser agree on UTF-8 input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passport_axum::fuzzing::{MAX_BODY, parse_form, parse_query};

fuzz_target!(|data: &[u8]| {
    let parsed = parse_form(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let query = parse_query(text);
        if data.len() <= MAX_BODY {
            assert_eq!(
                parsed.as_ref().ok(),
                query.as_ref().ok(),
                "form and query parsers disagree"
            );
        }
    }
    let Ok(pairs) = parsed else { return };
    let mut names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "a repeated name was accepted");
    let mut encoded = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in &pairs {
        encoded.append_pair(k, v);
    }
    let encoded = encoded.finish();
    if encoded.len() <= MAX_BODY {
        assert_eq!(
            parse_form(encoded.as_bytes()).ok().as_ref(),
            Some(&pairs),
            "encode → parse: {encoded:?}"
        );
    }
});
