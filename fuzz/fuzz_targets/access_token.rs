//! Access tokens (JWT): the JOSE header, the key choice, the signature and the claims. Oracles:
//! a token we signed verifies, and the same token changed in any byte does not; a token built
//! from any header and claims is refused unless it carries our signature (`alg: none`, HMAC
//! keyed with our public key, a `kid` of no key, a stolen signature on other claims).
#![no_main]

use aws_lc_rs::hmac;
use libfuzzer_sys::fuzz_target;
use passport::fuzzing::verify_access_token;
use passport_fuzz::{b64, keys, now, signed_token, tamper};

#[derive(Debug, arbitrary::Arbitrary)]
enum Input {
    Raw(String),
    Tampered(Vec<(u16, u8, u8)>),
    Forged {
        header: Header,
        claims: Claims,
        signature: Signature,
    },
}

#[derive(Debug, arbitrary::Arbitrary)]
enum Header {
    Ours,
    Alg { alg: u8, kid: Option<Kid>, typ: bool },
    Raw(String),
}

#[derive(Debug, arbitrary::Arbitrary)]
enum Kid {
    Ours,
    Other(String),
}

#[derive(Debug, arbitrary::Arbitrary)]
enum Claims {
    Ours,
    Edited {
        jti: String,
        aud: String,
        sub: String,
        exp: i64,
        extra: Option<(String, String)>,
    },
    Raw(Vec<u8>),
}

#[derive(Debug, arbitrary::Arbitrary)]
enum Signature {
    Ours,
    None,
    HmacWithPublicKey,
    Raw(Vec<u8>),
}

const ALGS: &[&str] = &[
    "RS256", "none", "None", "HS256", "RS384", "RS512", "PS256", "ES256", "EdDSA", "",
];

fuzz_target!(|input: Input| {
    let keys = keys();
    let ours = signed_token();
    let token = match input {
        Input::Raw(raw) => {
            let _ = verify_access_token(keys, &raw, now());
            let _ = keys.verify_for_bench(&raw);
            return;
        }
        Input::Tampered(edits) => tamper(ours, &edits),
        Input::Forged {
            header,
            claims,
            signature,
        } => {
            let mut parts = ours.split('.');
            let (our_header, our_claims, our_signature) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            let header = match header {
                Header::Ours => our_header.to_owned(),
                Header::Alg { alg, kid, typ } => {
                    let mut h = serde_json::json!({ "alg": ALGS[usize::from(alg) % ALGS.len()] });
                    match kid {
                        Some(Kid::Ours) => h["kid"] = keys.current().kid().into(),
                        Some(Kid::Other(k)) => h["kid"] = k.into(),
                        None => {}
                    }
                    if typ {
                        h["typ"] = "JWT".into();
                    }
                    b64(h.to_string().as_bytes())
                }
                Header::Raw(raw) => b64(raw.as_bytes()),
            };
            let claims = match claims {
                Claims::Ours => our_claims.to_owned(),
                Claims::Edited {
                    jti,
                    aud,
                    sub,
                    exp,
                    extra,
                } => {
                    let mut c = serde_json::to_value(passport_fuzz::claims(&jti)).unwrap_or_default();
                    c["aud"] = aud.into();
                    c["sub"] = sub.into();
                    c["exp"] = exp.into();
                    if let Some((k, v)) = extra {
                        c[k] = v.into();
                    }
                    b64(c.to_string().as_bytes())
                }
                Claims::Raw(raw) => b64(&raw),
            };
            let signing_input = format!("{header}.{claims}");
            let signature = match signature {
                Signature::Ours => our_signature.to_owned(),
                Signature::None => String::new(),
                Signature::HmacWithPublicKey => {
                    let key = hmac::Key::new(hmac::HMAC_SHA256, keys.current().public_pem().as_bytes());
                    b64(hmac::sign(&key, signing_input.as_bytes()).as_ref())
                }
                Signature::Raw(raw) => b64(&raw),
            };
            format!("{signing_input}.{signature}")
        }
    };
    let verified = verify_access_token(keys, &token, now());
    if token == ours {
        assert!(verified.is_ok(), "our own token verifies");
    } else {
        assert!(verified.is_err(), "a token we did not sign verified: {token}");
    }
});
