//! Scope strings. Oracles: parsing gives no empty, repeated or whitespace-holding scope;
//! parse → join → parse is stable; `token_can` never panics, holds for a granted scope and `*`,
//! and inheritance only ever adds permissions.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passport::{ScopeSet, WILDCARD, parse_scope_param, token_can};

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    param: String,
    granted: Vec<String>,
    scope: String,
}

fuzz_target!(|input: Input| {
    let set = ScopeSet::parse(Some(&input.param));
    assert_eq!(parse_scope_param(Some(&input.param)), set);
    let scopes = set.as_slice();
    for (i, s) in scopes.iter().enumerate() {
        assert!(!s.is_empty());
        assert!(!s.contains([' ', '\t', '\n', '\r']));
        assert!(!scopes[..i].contains(s), "{s} repeated");
    }
    let param = set.to_param();
    let again = ScopeSet::parse(Some(&param));
    assert_eq!(again, set, "parse → join → parse");
    assert_eq!(again.to_param(), param);
    assert!(set.same_scopes(&again) && set.is_subset_of(&again));

    // Through the registry (unknown scopes are invalid_scope, never a panic).
    let registry = passport_fuzz::passport().scopes();
    if let Ok(requested) = registry.requested(Some(&input.param)) {
        assert!(requested.as_slice().iter().all(|s| registry.has_scope(s)));
    }

    let strict = token_can(&input.granted, &input.scope, false);
    let inherited = token_can(&input.granted, &input.scope, true);
    assert!(!strict || inherited, "inheritance removed a permission");
    let held = input.granted.iter().any(|g| g == &input.scope || g == WILDCARD);
    assert_eq!(strict, held);
    for s in scopes {
        assert!(token_can(scopes, s, false));
    }
});
