//! The token endpoint's JSON body. Oracles: an accepted body is a JSON object whose non-null
//! members are exactly the pairs (strings as is, numbers and booleans as written by
//! serde_json), each name once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passport_axum::fuzzing::parse_json;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(pairs) = parse_json(data) else { return };
    if data.iter().all(u8::is_ascii_whitespace) {
        assert!(pairs.is_empty());
        return;
    }
    let object: serde_json::Map<String, Value> =
        serde_json::from_slice(data).expect("an accepted body is a JSON object");
    let members: Vec<(&String, &Value)> = object.iter().filter(|(_, v)| !v.is_null()).collect();
    assert_eq!(members.len(), pairs.len(), "pairs are the non-null members");
    for (name, value) in &pairs {
        let text = match &object[name] {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            other => panic!("{name} accepted as {other:?}"),
        };
        assert_eq!(&text, value);
    }
});
