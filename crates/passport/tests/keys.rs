//! The key set: tokens are checked with the key their `kid` names, with the only key when they
//! name none (as Passport's tokens do), and never with an algorithm the key is not for
//! (RFC 8725 §3.1, §3.10).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use passport::{KeySet, SigningKey, generate_keys};

const CLAIMS: &[u8] = br#"{"aud":"c","jti":"j","iat":1,"nbf":1,"exp":2,"sub":"7","scopes":[]}"#;

fn claims() -> serde_json::Value {
    serde_json::from_slice(CLAIMS).unwrap()
}

#[test]
fn verification_picks_the_key_by_kid_and_refuses_other_algorithms() {
    let a_pem = generate_keys(2048).unwrap();
    let b_pem = generate_keys(2048).unwrap();
    let a = SigningKey::from_pem(&a_pem.private_pem, None).unwrap();
    let b = SigningKey::from_pem(&b_pem.private_pem, None).unwrap();
    let (a_kid, b_kid) = (a.kid().to_owned(), b.kid().to_owned());
    assert_ne!(a_kid, b_kid);
    let only_b = KeySet::single(SigningKey::from_pem(&b_pem.private_pem, None).unwrap());
    let by_b = only_b.sign_for_bench(CLAIMS);
    let set = KeySet::new(vec![a, b], &a_kid).expect("a is in the set");
    assert_eq!(set.current().kid(), a_kid, "the named key signs");
    assert!(KeySet::new(Vec::new(), "nope").is_none());

    let by_a = set.sign_for_bench(CLAIMS);
    assert!(set.verify_for_bench(&by_a));
    assert!(set.verify_for_bench(&by_b), "a token of a verifying key still checks");
    assert_eq!(set.find(&b_kid).map(SigningKey::kid), Some(b_kid.as_str()));

    // Without a kid: the only key of a one-key set; refused when several could have signed.
    let no_kid = encode(
        &Header::new(Algorithm::RS256),
        &claims(),
        &EncodingKey::from_rsa_pem(b_pem.private_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(only_b.verify_for_bench(&no_kid), "Passport's tokens carry no kid");
    assert!(!set.verify_for_bench(&no_kid), "ambiguous without a kid");

    // A kid of no key, and another algorithm under a real kid (HS256 keyed with the public key).
    let mut unknown = Header::new(Algorithm::RS256);
    unknown.kid = Some("not-a-key".to_owned());
    let unknown = encode(
        &unknown,
        &claims(),
        &EncodingKey::from_rsa_pem(a_pem.private_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(!set.verify_for_bench(&unknown));
    let mut confused = Header::new(Algorithm::HS256);
    confused.kid = Some(a_kid.clone());
    let confused = encode(
        &confused,
        &claims(),
        &EncodingKey::from_secret(a_pem.public_pem.as_bytes()),
    )
    .unwrap();
    assert!(!set.verify_for_bench(&confused), "alg confusion");
    let jwk = set.current().public_jwk();
    assert_eq!(jwk["kid"], a_kid.as_str());
    assert_eq!(jwk["alg"], "RS256");
    assert_eq!(jwk["use"], "sig");
}
