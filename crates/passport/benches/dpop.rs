//! DPoP proof verification per key type, one thread: `cargo bench -p passport --bench dpop`.
//! What a protected route adds for a DPoP-bound token, besides the bearer check: parsing the
//! proof's header and JWK, the signature check and the RFC 7638 thumbprint (the `jti` record is
//! one database insert on top). Plain timing loops (no harness): each line prints proofs per
//! second.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm as Jwa, EncodingKey, Header};
use passport::{Algorithm, generate_key, verify_proof_signature_for_bench};

fn per_second(run: impl Fn()) -> f64 {
    let window = Duration::from_secs(2);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < window {
        run();
        n += 1;
    }
    n as f64 / window.as_secs_f64()
}

fn main() {
    let kinds = [
        ("ES256", Algorithm::ES256, Jwa::ES256),
        ("EdDSA", Algorithm::EdDSA, Jwa::EdDSA),
        ("RS256-2048", Algorithm::RS256, Jwa::RS256),
    ];
    for (name, algorithm, alg) in kinds {
        let pem = generate_key(algorithm, 2048).unwrap_or_else(|e| panic!("{e}"));
        let key = match algorithm {
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem.private_pem.as_bytes()),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.private_pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(pem.private_pem.as_bytes()),
        }
        .unwrap_or_else(|e| panic!("{e}"));
        let mut header = Header::new(alg);
        header.typ = Some("dpop+jwt".to_owned());
        header.jwk = Some(Jwk::from_encoding_key(&key, alg).unwrap_or_else(|e| panic!("{e}")));
        let claims = serde_json::json!({
            "jti": "e1j3V_bKic8-LAEB", "htm": "GET", "htu": "https://auth.example.com/api/user",
            "iat": 1_800_000_000, "ath": "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo",
        });
        let proof = jsonwebtoken::encode(&header, &claims, &key).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            verify_proof_signature_for_bench(&proof).is_some(),
            "{name}: the proof verifies"
        );
        let rate = per_second(|| {
            std::hint::black_box(verify_proof_signature_for_bench(&proof));
        });
        println!("{name}: verify proof {rate:>8.0}/s");
    }
}
