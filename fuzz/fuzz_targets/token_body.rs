//! The body reader of the token endpoint and the page forms with any `Content-Type`: never
//! panics; what it accepts is within the size limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passport_axum::fuzzing::{MAX_BODY, MAX_VALUE, read_params};

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    content_type: Option<ContentType>,
    body: Vec<u8>,
}

#[derive(Debug, arbitrary::Arbitrary)]
enum ContentType {
    Form,
    Json,
    Known(u8),
    Raw(Vec<u8>),
}

const KNOWN: &[&str] = &[
    "application/x-www-form-urlencoded; charset=UTF-8",
    "APPLICATION/JSON",
    "application/json;charset=utf-8",
    "application/vnd.api+json",
    "text/plain",
    "multipart/form-data; boundary=x",
    "",
    ";",
];

fuzz_target!(|input: Input| {
    let content_type: Option<Vec<u8>> = input.content_type.map(|c| match c {
        ContentType::Form => b"application/x-www-form-urlencoded".to_vec(),
        ContentType::Json => b"application/json".to_vec(),
        ContentType::Known(i) => KNOWN[usize::from(i) % KNOWN.len()].as_bytes().to_vec(),
        ContentType::Raw(raw) => raw,
    });
    if let Ok(pairs) = read_params(content_type.as_deref(), &input.body) {
        assert!(input.body.len() <= MAX_BODY);
        assert!(pairs.iter().all(|(_, v)| v.len() <= MAX_VALUE));
    }
});
