//! PKCE (RFC 7636): verifier syntax and the check at the token endpoint. Oracles: a check passes
//! only for a well-formed verifier whose transform is the challenge, and always passes for one.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use passport::PkceMethod;
use passport::fuzzing::{valid_pkce_string, verify_pkce};
use sha2::Digest as _;

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    challenge: String,
    verifier: String,
    plain: bool,
    method: String,
}

fuzz_target!(|input: Input| {
    let _ = input.method.parse::<PkceMethod>();
    let method = if input.plain {
        PkceMethod::Plain
    } else {
        PkceMethod::S256
    };
    let s256 = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(input.verifier.as_bytes()));
    let expected = if input.plain {
        input.verifier.clone()
    } else {
        s256.clone()
    };
    let valid = valid_pkce_string(&input.verifier);
    assert_eq!(
        verify_pkce(&input.challenge, method, &input.verifier).is_ok(),
        valid && input.challenge == expected
    );
    assert_eq!(verify_pkce(&s256, PkceMethod::S256, &input.verifier).is_ok(), valid);
    assert_eq!(
        verify_pkce(&input.verifier, PkceMethod::Plain, &input.verifier).is_ok(),
        valid
    );
    if valid {
        assert!((43..=128).contains(&input.verifier.len()));
    }
});
