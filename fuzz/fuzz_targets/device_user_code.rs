//! Device-flow user codes as people type them (and as the page's query carries them). Oracles:
//! a normalized code is eight letters of the alphabet and survives display → normalize.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passport::{USER_CODE_ALPHABET, display_user_code, normalize_user_code};
use passport_axum::fuzzing::parse_query;

fuzz_target!(|input: &str| {
    let shown = display_user_code(input);
    if input.len() != 8 || input.get(..4).is_none() {
        assert_eq!(shown, input, "what is not a user code is shown as is");
    }
    if let Some(code) = normalize_user_code(input) {
        assert_eq!(code.len(), 8);
        assert!(code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
        let shown = display_user_code(&code);
        assert_eq!(normalize_user_code(&shown).as_deref(), Some(code.as_str()));
        assert_eq!(
            normalize_user_code(&shown.to_lowercase()).as_deref(),
            Some(code.as_str())
        );
    }
    if let Ok(params) = parse_query(input)
        && let Some((_, code)) = params.iter().find(|(k, _)| k == "user_code")
    {
        let typed: String = code.trim().chars().take(32).collect();
        let _ = normalize_user_code(&typed);
    }
});
