//! Signing and verification throughput of access tokens, on 1 and on all cores:
//! `cargo bench -p passport --bench tokens`. Plain timing loops (no harness): each line prints
//! operations per second.

use std::time::{Duration, Instant};

use passport::{Algorithm, KeySet, generate_key};

fn per_second(threads: usize, run: impl Fn() + Sync) -> f64 {
    let window = Duration::from_secs(2);
    let counts: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let start = Instant::now();
                    let mut n = 0u64;
                    while start.elapsed() < window {
                        run();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    });
    counts.iter().sum::<u64>() as f64 / window.as_secs_f64()
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let kinds = [
        ("RS256-2048", Algorithm::RS256, 2048),
        ("RS256-4096", Algorithm::RS256, 4096),
        ("ES256", Algorithm::ES256, 0),
        ("EdDSA", Algorithm::EdDSA, 0),
    ];
    for (name, algorithm, bits) in kinds {
        let pem = generate_key(algorithm, bits).unwrap_or_else(|e| panic!("{e}"));
        let keys = KeySet::from_pem(&pem.private_pem, Some(&pem.public_pem)).unwrap_or_else(|e| panic!("{e}"));
        let claims = br#"{"aud":"0196a8c2-6d8e-7b3c-9f51-4e2a7d1c0b93","jti":"3c6f0a9d","iat":1,"nbf":1,"exp":2,"sub":"42","scopes":["read"]}"#;
        let token = keys.sign_for_bench(claims);
        for threads in [1, cores] {
            let signs = per_second(threads, || {
                std::hint::black_box(keys.sign_for_bench(claims));
            });
            let verifies = per_second(threads, || {
                std::hint::black_box(keys.verify_for_bench(&token));
            });
            println!("{name} {threads} thread(s): sign {signs:>8.0}/s  verify {verifies:>8.0}/s");
        }
    }
}
