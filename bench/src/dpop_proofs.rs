//! DPoP proofs for bench/run.sh (RFC 9449 §4): every request of the DPoP-bound protected-route
//! row needs a proof with a fresh `jti`, which wrk's Lua cannot sign, so they are made here
//! ahead of the run.
//!
//!   dpop-proofs keygen FILE                      an ES256 key (PKCS#8 PEM) into FILE
//!   dpop-proofs proof FILE METHOD URI            one proof, printed
//!   dpop-proofs many FILE METHOD URI TOKEN N     N proofs bound to TOKEN (ath), one per line

use std::io::Write as _;
use std::process::ExitCode;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

fn proof(
    key: &EncodingKey,
    jwk: &jsonwebtoken::jwk::Jwk,
    method: &str,
    uri: &str,
    token: Option<&str>,
    iat: i64,
) -> String {
    let mut claims = json!({
        "jti": passport::random_hex(16).unwrap_or_default(),
        "htm": method,
        "htu": uri,
        "iat": iat,
    });
    if let Some(token) = token {
        claims["ath"] = passport::access_token_hash(token).into();
    }
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("dpop+jwt".to_owned());
    header.jwk = Some(jwk.clone());
    jsonwebtoken::encode(&header, &claims, key).unwrap_or_default()
}

fn run(args: &[String]) -> Result<(), String> {
    let load = |file: &str| -> Result<(EncodingKey, jsonwebtoken::jwk::Jwk), String> {
        let pem = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
        let key = EncodingKey::from_ec_pem(&pem).map_err(|e| e.to_string())?;
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::ES256).map_err(|e| e.to_string())?;
        Ok((key, jwk))
    };
    // Proofs are used within seconds of being made; the bench machine's clock is the server's.
    #[allow(clippy::disallowed_methods)]
    let now = chrono::Utc::now().timestamp();
    match args {
        [cmd, file] if cmd == "keygen" => {
            let pem = passport::generate_key(passport::Algorithm::ES256, 2048)
                .map_err(|e| e.to_string())?
                .private_pem;
            std::fs::write(file, pem).map_err(|e| format!("{file}: {e}"))
        }
        [cmd, file, method, uri] if cmd == "proof" => {
            let (key, jwk) = load(file)?;
            println!("{}", proof(&key, &jwk, method, uri, None, now));
            Ok(())
        }
        [cmd, file, method, uri, token, n] if cmd == "many" => {
            let (key, jwk) = load(file)?;
            let n: usize = n.parse().map_err(|_| "N must be a number".to_owned())?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for _ in 0..n {
                writeln!(out, "{}", proof(&key, &jwk, method, uri, Some(token), now)).map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        _ => Err("usage: dpop-proofs keygen FILE | proof FILE METHOD URI | many FILE METHOD URI TOKEN N".to_owned()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
