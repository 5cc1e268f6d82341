//! Signing keys: generation (`passport keys`), loading from PEM (PKCS#8 `PRIVATE KEY` as
//! Passport writes it, or PKCS#1 `RSA PRIVATE KEY` from older Passport), and the [`KeySet`] the
//! server signs and verifies with.
//!
//! A key set holds keys by `kid` (the RFC 7638 thumbprint of the public key), each with its
//! algorithm, its cached signer (never re-parsed on the hot path), its verifier and its public
//! JWK; one of them is the current signing key. Verification picks the key by the token's
//! `kid` (a token without one, as Passport issues them, is checked against the only key) and
//! refuses a token whose `alg` is not the key's (no algorithm confusion).

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair as _, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use sha2::{Digest, Sha256};

/// File name of the private key in the data directory.
pub const PRIVATE_KEY_FILE: &str = "oauth-private.key";
/// File name of the public key in the data directory.
pub const PUBLIC_KEY_FILE: &str = "oauth-public.key";

/// Why keys could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key files already exist and `--force` was not given.
    #[error("encryption keys already exist; use --force to overwrite them")]
    AlreadyExists,
    /// Unsupported RSA modulus length.
    #[error("unsupported key length {0}: use 2048, 3072, 4096 or 8192")]
    UnsupportedLength(u32),
    /// The PEM text could not be parsed as an RSA key.
    #[error("invalid {0} key: {1}")]
    Invalid(&'static str, String),
    /// The public key does not belong to the private key.
    #[error("the public key does not match the private key")]
    Mismatch,
    /// No key was found.
    #[error("no private key: set PASSPORT_PRIVATE_KEY or put {PRIVATE_KEY_FILE} in {0} (run `passport keys`)")]
    Missing(PathBuf),
    /// Reading or writing a key file failed.
    #[error("{0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
    /// Key generation failed.
    #[error("RSA key generation failed")]
    Generation,
}

/// A freshly generated key pair, PEM encoded.
#[derive(Clone)]
pub struct GeneratedKeys {
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub private_pem: String,
    /// SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
    pub public_pem: String,
}

impl fmt::Debug for GeneratedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKeys")
            .field("private_pem", &"[redacted]")
            .finish()
    }
}

/// PEM with `\n` line endings (the `pem` crate defaults to CRLF).
fn pem_lf(block: &pem::Pem) -> String {
    pem::encode_config(block, pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF))
}

/// Generates an RSA key pair of `bits` bits.
pub fn generate_keys(bits: u32) -> Result<GeneratedKeys, KeyError> {
    let size = match bits {
        2048 => KeySize::Rsa2048,
        3072 => KeySize::Rsa3072,
        4096 => KeySize::Rsa4096,
        8192 => KeySize::Rsa8192,
        other => return Err(KeyError::UnsupportedLength(other)),
    };
    let pair = RsaKeyPair::generate(size).map_err(|_| KeyError::Generation)?;
    let private_der: Pkcs8V1Der<'_> = pair.as_der().map_err(|_| KeyError::Generation)?;
    let public_der: PublicKeyX509Der<'_> = pair.public_key().as_der().map_err(|_| KeyError::Generation)?;
    Ok(GeneratedKeys {
        private_pem: pem_lf(&pem::Pem::new("PRIVATE KEY", private_der.as_ref().to_vec())),
        public_pem: pem_lf(&pem::Pem::new("PUBLIC KEY", public_der.as_ref().to_vec())),
    })
}

/// Writes `oauth-private.key` (mode 0600) and `oauth-public.key` (0644) into `dir`, refusing to
/// overwrite existing files unless `force`. Returns the two paths.
pub fn write_keys(dir: &Path, bits: u32, force: bool) -> Result<(PathBuf, PathBuf), KeyError> {
    let private_path = dir.join(PRIVATE_KEY_FILE);
    let public_path = dir.join(PUBLIC_KEY_FILE);
    if !force && (private_path.exists() || public_path.exists()) {
        return Err(KeyError::AlreadyExists);
    }
    let keys = generate_keys(bits)?;
    fs::create_dir_all(dir).map_err(|e| KeyError::Io(dir.to_owned(), e))?;
    write_file(&private_path, &keys.private_pem, 0o600)?;
    write_file(&public_path, &keys.public_pem, 0o644)?;
    Ok((private_path, public_path))
}

fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), KeyError> {
    let io = |e| KeyError::Io(path.to_owned(), e);
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(mode);
        let mut file = options.open(path).map_err(io)?;
        // The mode given to open() only applies to new files: set it on existing ones too.
        file.set_permissions(fs::Permissions::from_mode(mode)).map_err(io)?;
        file.write_all(contents.as_bytes()).map_err(io)?;
    }
    #[cfg(not(unix))]
    {
        let _ = mode;
        let mut file = options.open(path).map_err(io)?;
        file.write_all(contents.as_bytes()).map_err(io)?;
    }
    Ok(())
}

/// Where keys come from.
#[derive(Clone, Default)]
pub enum KeySource {
    /// No keys configured: [`crate::PassportBuilder::build`] fails.
    #[default]
    None,
    /// PEM text (environment variables); a literal `\n` is read as a newline.
    Pem {
        /// The private key.
        private: String,
        /// The public key; derived from the private key when absent.
        public: Option<String>,
    },
    /// `oauth-private.key` / `oauth-public.key` in a directory.
    Directory(PathBuf),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Pem { .. } => f.write_str("Pem([redacted])"),
            Self::Directory(dir) => f.debug_tuple("Directory").field(dir).finish(),
        }
    }
}

/// A JWS signing algorithm a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (Passport's algorithm).
    RS256,
}

impl Algorithm {
    /// The JOSE name (`alg`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
        }
    }

    /// OpenID Connect's `at_hash` / `c_hash` of `value` (Core §3.1.3.6): the left half of the
    /// hash that goes with this algorithm, base64url without padding.
    pub fn half_hash(self, value: &str) -> String {
        let digest = match self {
            Self::RS256 => Sha256::digest(value.as_bytes()).to_vec(),
        };
        URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
    }

    fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::RS256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

enum Signer {
    Rsa(RsaKeyPair),
}

/// One key: private part (cached for signing), public part (verifier and JWK), `kid`, `alg`.
pub struct SigningKey {
    kid: String,
    algorithm: Algorithm,
    signer: Signer,
    decoding: DecodingKey,
    validation: jsonwebtoken::Validation,
    header_b64: String,
    public_pem: String,
    jwk: serde_json::Value,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Parses a private key PEM (RSA: PKCS#8 or PKCS#1) and, optionally, the matching public
    /// key PEM (derived from the private key when absent). A pair that does not match fails.
    pub fn from_pem(private_pem: &str, public_pem: Option<&str>) -> Result<Self, KeyError> {
        let parsed = pem::parse(private_pem.trim()).map_err(|e| KeyError::Invalid("private", e.to_string()))?;
        let pair = match parsed.tag() {
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(parsed.contents()),
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(parsed.contents()),
            other => return Err(KeyError::Invalid("private", format!("unexpected PEM label {other:?}"))),
        }
        .map_err(|e| KeyError::Invalid("private", e.to_string()))?;

        let derived_public: PublicKeyX509Der<'_> = pair
            .public_key()
            .as_der()
            .map_err(|_| KeyError::Invalid("private", "cannot derive the public key".into()))?;
        let derived_public_pem = pem_lf(&pem::Pem::new("PUBLIC KEY", derived_public.as_ref().to_vec()));
        let public_pem = public_pem
            .map(str::trim)
            .unwrap_or(derived_public_pem.trim())
            .to_owned();
        let decoding =
            DecodingKey::from_rsa_pem(public_pem.as_bytes()).map_err(|e| KeyError::Invalid("public", e.to_string()))?;

        let public = pair.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        // RFC 7638 §3: the required members in lexicographic order, no whitespace.
        let thumbprint_input = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint_input.as_bytes()));
        let algorithm = Algorithm::RS256;
        let jwk = serde_json::json!({
            "kty": "RSA", "use": "sig", "alg": algorithm.as_str(), "kid": kid, "n": n, "e": e,
        });
        let header = format!(r#"{{"typ":"JWT","alg":"{}","kid":"{kid}"}}"#, algorithm.as_str());
        let mut validation = jsonwebtoken::Validation::new(algorithm.jwt());
        // Time claims are checked against the injected clock, not the library's.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let key = Self {
            kid,
            algorithm,
            signer: Signer::Rsa(pair),
            decoding,
            validation,
            header_b64: URL_SAFE_NO_PAD.encode(header.as_bytes()),
            public_pem,
            jwk,
        };
        key.check_pair()?;
        Ok(key)
    }

    /// Signs a probe and verifies it with the public key, so a mismatched pair fails at start-up.
    fn check_pair(&self) -> Result<(), KeyError> {
        let probe = self.sign(br#"{"probe":true}"#).map_err(|_| KeyError::Generation)?;
        self.decode::<serde_json::Value>(&probe)
            .map(|_| ())
            .map_err(|_| KeyError::Mismatch)
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The public key as PEM.
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// The public key as a JWK (RFC 7517), with `kid`, `use` and `alg`.
    pub fn public_jwk(&self) -> &serde_json::Value {
        &self.jwk
    }

    /// Signs `claims_json` as a compact JWS (RFC 7515 §7.1) whose header names this key.
    pub(crate) fn sign(&self, claims_json: &[u8]) -> Result<String, crate::error::OAuthError> {
        let failed = || crate::error::OAuthError::server_error("signing the access token failed");
        match &self.signer {
            Signer::Rsa(pair) => {
                let header = &self.header_b64;
                let mut out = String::with_capacity(
                    header.len() + claims_json.len() * 4 / 3 + pair.public_modulus_len() * 4 / 3 + 8,
                );
                out.push_str(header);
                out.push('.');
                URL_SAFE_NO_PAD.encode_string(claims_json, &mut out);
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(
                    &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                    &aws_lc_rs::rand::SystemRandom::new(),
                    out.as_bytes(),
                    &mut signature,
                )
                .map_err(|_| failed())?;
                out.push('.');
                URL_SAFE_NO_PAD.encode_string(&signature, &mut out);
                Ok(out)
            }
        }
    }

    /// A server secret derived from the private key, for deployments that configure none (the
    /// SPA cookie key of earlier releases was derived the same way).
    pub(crate) fn fallback_secret(&self) -> crate::secret::ServerSecret {
        let der = match &self.signer {
            Signer::Rsa(pair) => {
                let der: Result<Pkcs8V1Der<'_>, _> = pair.as_der();
                der.map(|d| d.as_ref().to_vec()).unwrap_or_default()
            }
        };
        let mut derivation = Sha256::new();
        derivation.update(b"passport server secret from the signing key v1");
        derivation.update(&der);
        crate::secret::ServerSecret::from_digest(derivation.finalize().into())
    }

    /// Verifies the signature of `token` with this key (its algorithm only) and decodes the
    /// claims. Time claims are the caller's to check.
    pub(crate) fn decode<T: serde::de::DeserializeOwned>(&self, token: &str) -> Result<T, jsonwebtoken::errors::Error> {
        jsonwebtoken::decode::<T>(token, &self.decoding, &self.validation).map(|data| data.claims)
    }
}

/// The keys a server signs and verifies with.
#[derive(Debug)]
pub struct KeySet {
    keys: Vec<SigningKey>,
    current: usize,
}

impl KeySet {
    /// A set of one key, which signs.
    pub fn single(key: SigningKey) -> Self {
        Self {
            keys: vec![key],
            current: 0,
        }
    }

    /// A set of several keys; `current` (a `kid`) signs, the others only verify. `None` when
    /// no key has that `kid`.
    pub fn new(keys: Vec<SigningKey>, current: &str) -> Option<Self> {
        let current = keys.iter().position(|k| k.kid == current)?;
        Some(Self { keys, current })
    }

    /// Loads the single-key layout from `source` (a directory or PEM text).
    pub fn load(source: &KeySource) -> Result<Self, KeyError> {
        match source {
            KeySource::None => Err(KeyError::Missing(PathBuf::from("."))),
            KeySource::Pem { private, public } => {
                let private = private.replace("\\n", "\n");
                let public = public.as_ref().map(|p| p.replace("\\n", "\n"));
                Self::from_pem(&private, public.as_deref())
            }
            KeySource::Directory(dir) => {
                let private_path = dir.join(PRIVATE_KEY_FILE);
                if !private_path.exists() {
                    return Err(KeyError::Missing(dir.clone()));
                }
                let private = fs::read_to_string(&private_path).map_err(|e| KeyError::Io(private_path, e))?;
                let public_path = dir.join(PUBLIC_KEY_FILE);
                let public = if public_path.exists() {
                    Some(fs::read_to_string(&public_path).map_err(|e| KeyError::Io(public_path, e))?)
                } else {
                    None
                };
                Self::from_pem(&private, public.as_deref())
            }
        }
    }

    /// A set of one key from PEM text (see [`SigningKey::from_pem`]).
    pub fn from_pem(private_pem: &str, public_pem: Option<&str>) -> Result<Self, KeyError> {
        SigningKey::from_pem(private_pem, public_pem).map(Self::single)
    }

    /// The key new tokens are signed with.
    pub fn current(&self) -> &SigningKey {
        &self.keys[self.current]
    }

    /// The key with this `kid`.
    pub fn find(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// Every key, signing or verifying only.
    pub fn keys(&self) -> impl Iterator<Item = &SigningKey> {
        self.keys.iter()
    }

    /// The key that may have signed a token with this JOSE header: by `kid`, or the only key
    /// when the header names none; `None` when there is no such key or its algorithm is not
    /// the header's.
    pub(crate) fn verifier_for(&self, header: &jsonwebtoken::Header) -> Option<&SigningKey> {
        let key = match &header.kid {
            Some(kid) => self.find(kid)?,
            None if self.keys.len() == 1 => &self.keys[0],
            None => return None,
        };
        (key.algorithm.jwt() == header.alg).then_some(key)
    }

    /// Signs `claims_json` with the current key (for benchmarks; tokens are minted by the grants).
    #[doc(hidden)]
    pub fn sign_for_bench(&self, claims_json: &[u8]) -> String {
        self.current().sign(claims_json).unwrap_or_default()
    }

    /// Verifies a token's signature (for benchmarks).
    #[doc(hidden)]
    pub fn verify_for_bench(&self, token: &str) -> bool {
        jsonwebtoken::decode_header(token)
            .ok()
            .and_then(|h| {
                self.verifier_for(&h)
                    .map(|k| k.decode::<serde_json::Value>(token).is_ok())
            })
            .unwrap_or(false)
    }
}
