//! The key set: tokens are checked with the key their `kid` names, with the only key when they
//! name none (as Passport's tokens do), and never with an algorithm the key is not for
//! (RFC 8725 §3.1, §3.10).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use passport::{KeySet, SigningKey, generate_key, generate_keys};

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

    // Without a kid: checked against the oldest key of its algorithm (here a), as Laravel
    // Passport's tokens carry none.
    let no_kid = encode(
        &Header::new(Algorithm::RS256),
        &claims(),
        &EncodingKey::from_rsa_pem(b_pem.private_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(only_b.verify_for_bench(&no_kid), "Passport's tokens carry no kid");
    assert!(!set.verify_for_bench(&no_kid), "b's kid-less token is not a's");
    let a_no_kid = encode(
        &Header::new(Algorithm::RS256),
        &claims(),
        &EncodingKey::from_rsa_pem(a_pem.private_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(
        set.verify_for_bench(&a_no_kid),
        "the oldest RS256 key checks kid-less tokens"
    );

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

/// A token of each algorithm verifies with a third-party verifier (jsonwebtoken) fed from our
/// JWKS, and each `kid` is the RFC 7638 thumbprint as that library computes it.
#[test]
fn every_algorithm_verifies_with_a_third_party_verifier_from_the_jwks() {
    for algorithm in passport::Algorithm::ALL {
        let pem = generate_key(algorithm, 2048).unwrap();
        let key = SigningKey::from_pem(&pem.private_pem, Some(&pem.public_pem)).unwrap();
        assert_eq!(key.algorithm(), algorithm);
        let set = KeySet::single(key);
        let token = set.sign_for_bench(CLAIMS);
        let header = decode_header(&token).unwrap();
        assert_eq!(format!("{:?}", header.alg), algorithm.as_str(), "alg in the header");
        let jwks = set.jwks();
        let jwk: Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
        assert_eq!(header.kid.as_deref(), jwk.common.key_id.as_deref());
        assert_eq!(
            jwk.thumbprint(ThumbprintHash::SHA256).unwrap(),
            set.current().kid(),
            "{algorithm}: kid is the RFC 7638 thumbprint"
        );
        let mut validation = Validation::new(header.alg);
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        validation.validate_aud = false;
        let decoded = decode::<serde_json::Value>(&token, &DecodingKey::from_jwk(&jwk).unwrap(), &validation);
        assert_eq!(decoded.unwrap().claims, claims(), "{algorithm}");
        assert!(set.verify_for_bench(&token));
        // A key of one algorithm never checks a token that names another.
        let mut forged: Vec<&str> = token.split('.').collect();
        let other = if algorithm == passport::Algorithm::RS256 {
            "ES256"
        } else {
            "RS256"
        };
        let header_json = format!(r#"{{"typ":"JWT","alg":"{other}","kid":"{}"}}"#, set.current().kid());
        let header_b64 = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header_json);
        forged[0] = &header_b64;
        assert!(!set.verify_for_bench(&forged.join(".")), "{algorithm}: alg swapped");
    }
}

/// RFC 8037 Appendix A: the Ed25519 key of its examples has the thumbprint it gives.
#[test]
fn the_rfc_8037_key_has_the_rfc_8037_thumbprint() {
    let seed = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
    )
    .unwrap();
    // PKCS#8 v1 for Ed25519 (RFC 8410 §7): a fixed prefix, then the 32-byte seed.
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    ];
    der.extend_from_slice(&seed);
    let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der));
    let key = SigningKey::from_pem(&pem, None).unwrap();
    assert_eq!(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    assert_eq!(key.public_jwk()["x"], "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
    assert_eq!(key.public_jwk()["crv"], "Ed25519");
}

/// A public key given beside the private key must be its own.
#[test]
fn a_mismatched_public_key_is_refused() {
    for algorithm in passport::Algorithm::ALL {
        let a = generate_key(algorithm, 2048).unwrap();
        let b = generate_key(algorithm, 2048).unwrap();
        let err = SigningKey::from_pem(&a.private_pem, Some(&b.public_pem)).unwrap_err();
        assert!(matches!(err, passport::KeyError::Mismatch), "{algorithm}: {err}");
    }
}
