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
use std::sync::Arc;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
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
    #[error("key generation failed")]
    Generation,
    /// An algorithm we do not sign with.
    #[error("unsupported algorithm {0:?}: use rs256, es256 or eddsa")]
    UnsupportedAlgorithm(String),
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
    write_key_files(dir, Algorithm::RS256, bits, force)
}

/// [`write_keys`] for any algorithm (`bits` is the RSA modulus length).
pub fn write_key_files(
    dir: &Path,
    algorithm: Algorithm,
    bits: u32,
    force: bool,
) -> Result<(PathBuf, PathBuf), KeyError> {
    let private_path = dir.join(PRIVATE_KEY_FILE);
    let public_path = dir.join(PUBLIC_KEY_FILE);
    if !force && (private_path.exists() || public_path.exists()) {
        return Err(KeyError::AlreadyExists);
    }
    let keys = generate_key(algorithm, bits)?;
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
    /// RSASSA-PKCS1-v1_5 with SHA-256 (Passport's algorithm; the default).
    RS256,
    /// ECDSA on P-256 with SHA-256 (RFC 7518 §3.4).
    ES256,
    /// Ed25519 (RFC 8037).
    EdDSA,
}

impl Algorithm {
    /// Every algorithm, in the order they are offered.
    pub const ALL: [Algorithm; 3] = [Self::RS256, Self::ES256, Self::EdDSA];

    /// The JOSE name (`alg`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }

    /// OpenID Connect's `at_hash` / `c_hash` of `value` (Core §3.1.3.6): the left half of the
    /// hash that goes with this algorithm (SHA-512 for Ed25519, as OpenID Connect's errata and
    /// certified providers use), base64url without padding.
    pub fn half_hash(self, value: &str) -> String {
        let digest = match self {
            Self::RS256 | Self::ES256 => Sha256::digest(value.as_bytes()).to_vec(),
            Self::EdDSA => sha2::Sha512::digest(value.as_bytes()).to_vec(),
        };
        URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
    }

    fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::RS256 => jsonwebtoken::Algorithm::RS256,
            Self::ES256 => jsonwebtoken::Algorithm::ES256,
            Self::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Algorithm {
    type Err = KeyError;

    /// `rs256`, `es256` or `eddsa` (any case; `ed25519` too).
    fn from_str(s: &str) -> Result<Self, KeyError> {
        match s.to_ascii_lowercase().as_str() {
            "rs256" => Ok(Self::RS256),
            "es256" => Ok(Self::ES256),
            "eddsa" | "ed25519" => Ok(Self::EdDSA),
            _ => Err(KeyError::UnsupportedAlgorithm(s.to_owned())),
        }
    }
}

/// Generates a key pair for `algorithm` (`rsa_bits` is the RSA modulus length; the others have
/// one size).
pub fn generate_key(algorithm: Algorithm, rsa_bits: u32) -> Result<GeneratedKeys, KeyError> {
    let (private_der, public_der): (Vec<u8>, Vec<u8>) = match algorithm {
        Algorithm::RS256 => return generate_keys(rsa_bits),
        Algorithm::ES256 => {
            let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| KeyError::Generation)?;
            let private = pair.to_pkcs8v1().map_err(|_| KeyError::Generation)?;
            let public: PublicKeyX509Der<'_> = pair.public_key().as_der().map_err(|_| KeyError::Generation)?;
            (private.as_ref().to_vec(), public.as_ref().to_vec())
        }
        Algorithm::EdDSA => {
            let pair = Ed25519KeyPair::generate().map_err(|_| KeyError::Generation)?;
            let private = pair.to_pkcs8v1().map_err(|_| KeyError::Generation)?;
            let public: PublicKeyX509Der<'_> = pair.public_key().as_der().map_err(|_| KeyError::Generation)?;
            (private.as_ref().to_vec(), public.as_ref().to_vec())
        }
    };
    Ok(GeneratedKeys {
        private_pem: pem_lf(&pem::Pem::new("PRIVATE KEY", private_der)),
        public_pem: pem_lf(&pem::Pem::new("PUBLIC KEY", public_der)),
    })
}

enum Signer {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// One key: private part (cached for signing), public part (verifier and JWK), `kid`, `alg`.
pub struct SigningKey {
    kid: String,
    algorithm: Algorithm,
    signer: Signer,
    /// The private key as PKCS#8 DER (sealed into the database; the fallback server secret).
    private_pkcs8: Vec<u8>,
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

/// RFC 7638 §3: the thumbprint of the required members, in lexicographic order, no whitespace.
fn thumbprint(members: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(members.as_bytes()))
}

/// What each kind of key contributes: its signer, algorithm, public JWK members and verifier.
struct Parsed {
    signer: Signer,
    algorithm: Algorithm,
    pkcs8: Vec<u8>,
    public_der: Vec<u8>,
    /// The RFC 7638 input and the JWK (without `use`, `alg`, `kid`).
    thumbprint_input: String,
    jwk: serde_json::Map<String, serde_json::Value>,
    decoding: DecodingKey,
}

fn parse_private(pem_block: &pem::Pem) -> Result<Parsed, KeyError> {
    let invalid = |e: &dyn fmt::Display| KeyError::Invalid("private", e.to_string());
    let der = pem_block.contents();
    if pem_block.tag() == "RSA PRIVATE KEY" {
        return rsa_parsed(RsaKeyPair::from_der(der).map_err(|e| invalid(&e))?);
    }
    if pem_block.tag() != "PRIVATE KEY" {
        return Err(KeyError::Invalid(
            "private",
            format!("unexpected PEM label {:?}", pem_block.tag()),
        ));
    }
    if let Ok(pair) = RsaKeyPair::from_pkcs8(der) {
        return rsa_parsed(pair);
    }
    if let Ok(pair) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der) {
        let point = pair.public_key().as_ref();
        // An uncompressed P-256 point: 0x04, then x and y of 32 bytes each.
        if point.len() != 65 {
            return Err(invalid(&"not a P-256 key"));
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..]);
        let decoding = DecodingKey::from_ec_components(&x, &y).map_err(|e| invalid(&e))?;
        let public: PublicKeyX509Der<'_> = pair.public_key().as_der().map_err(|e| invalid(&e))?;
        let mut jwk = serde_json::Map::new();
        jwk.insert("kty".into(), "EC".into());
        jwk.insert("crv".into(), "P-256".into());
        jwk.insert("x".into(), x.clone().into());
        jwk.insert("y".into(), y.clone().into());
        return Ok(Parsed {
            pkcs8: pair.to_pkcs8v1().map_err(|e| invalid(&e))?.as_ref().to_vec(),
            public_der: public.as_ref().to_vec(),
            signer: Signer::Ecdsa(pair),
            algorithm: Algorithm::ES256,
            thumbprint_input: format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#),
            jwk,
            decoding,
        });
    }
    let pair =
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|_| invalid(&"not an RSA, P-256 or Ed25519 key"))?;
    let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    let decoding = DecodingKey::from_ed_components(&x).map_err(|e| invalid(&e))?;
    let public: PublicKeyX509Der<'_> = pair.public_key().as_der().map_err(|e| invalid(&e))?;
    let mut jwk = serde_json::Map::new();
    jwk.insert("kty".into(), "OKP".into());
    jwk.insert("crv".into(), "Ed25519".into());
    jwk.insert("x".into(), x.clone().into());
    Ok(Parsed {
        pkcs8: pair.to_pkcs8v1().map_err(|e| invalid(&e))?.as_ref().to_vec(),
        public_der: public.as_ref().to_vec(),
        signer: Signer::Ed25519(pair),
        algorithm: Algorithm::EdDSA,
        thumbprint_input: format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
        jwk,
        decoding,
    })
}

fn rsa_parsed(pair: RsaKeyPair) -> Result<Parsed, KeyError> {
    let invalid = |why: &str| KeyError::Invalid("private", why.to_owned());
    let public = pair.public_key();
    let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
    let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
    let public_der: PublicKeyX509Der<'_> = public.as_der().map_err(|_| invalid("cannot derive the public key"))?;
    let public_pem = pem_lf(&pem::Pem::new("PUBLIC KEY", public_der.as_ref().to_vec()));
    let decoding =
        DecodingKey::from_rsa_pem(public_pem.as_bytes()).map_err(|e| KeyError::Invalid("public", e.to_string()))?;
    let pkcs8: Pkcs8V1Der<'_> = pair.as_der().map_err(|_| invalid("cannot encode the key"))?;
    let mut jwk = serde_json::Map::new();
    jwk.insert("kty".into(), "RSA".into());
    jwk.insert("n".into(), n.clone().into());
    jwk.insert("e".into(), e.clone().into());
    Ok(Parsed {
        pkcs8: pkcs8.as_ref().to_vec(),
        public_der: public_der.as_ref().to_vec(),
        signer: Signer::Rsa(pair),
        algorithm: Algorithm::RS256,
        thumbprint_input: format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
        jwk,
        decoding,
    })
}

impl SigningKey {
    /// Parses a private key PEM (RSA as PKCS#8 or PKCS#1, P-256 or Ed25519 as PKCS#8; the
    /// algorithm follows from the key) and, optionally, the matching public key PEM (derived
    /// from the private key when absent). A pair that does not match fails.
    pub fn from_pem(private_pem: &str, public_pem: Option<&str>) -> Result<Self, KeyError> {
        let block = pem::parse(private_pem.trim()).map_err(|e| KeyError::Invalid("private", e.to_string()))?;
        let parsed = parse_private(&block)?;
        // A public key given beside it (SPKI, or PKCS#1 for RSA) must verify what it signs.
        let given = public_pem
            .map(|pem| {
                let pem = pem.trim().as_bytes();
                match parsed.algorithm {
                    Algorithm::RS256 => DecodingKey::from_rsa_pem(pem),
                    Algorithm::ES256 => DecodingKey::from_ec_pem(pem),
                    Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
                }
                .map_err(|e| KeyError::Invalid("public", e.to_string()))
            })
            .transpose()?;
        let public_pem = pem_lf(&pem::Pem::new("PUBLIC KEY", parsed.public_der.clone()))
            .trim()
            .to_owned();
        let kid = thumbprint(&parsed.thumbprint_input);
        let algorithm = parsed.algorithm;
        let mut jwk = parsed.jwk;
        jwk.insert("use".into(), "sig".into());
        jwk.insert("alg".into(), algorithm.as_str().into());
        jwk.insert("kid".into(), kid.clone().into());
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
            signer: parsed.signer,
            private_pkcs8: parsed.pkcs8,
            decoding: parsed.decoding,
            validation,
            header_b64: URL_SAFE_NO_PAD.encode(header.as_bytes()),
            public_pem,
            jwk: serde_json::Value::Object(jwk),
        };
        key.check_pair(given.as_ref())?;
        Ok(key)
    }

    /// Signs a probe and verifies it with the public key (and the one given beside the private
    /// key), so a mismatched pair fails at start-up.
    fn check_pair(&self, given: Option<&DecodingKey>) -> Result<(), KeyError> {
        let probe = self.sign(br#"{"probe":true}"#).map_err(|_| KeyError::Generation)?;
        for decoding in std::iter::once(&self.decoding).chain(given) {
            jsonwebtoken::decode::<serde_json::Value>(&probe, decoding, &self.validation)
                .map_err(|_| KeyError::Mismatch)?;
        }
        Ok(())
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The public key as PEM (SPKI).
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// The private key as PKCS#8 PEM (for sealing it into the database; never log it).
    pub(crate) fn private_pem(&self) -> String {
        pem_lf(&pem::Pem::new("PRIVATE KEY", self.private_pkcs8.clone()))
    }

    /// The public key as a JWK (RFC 7517), with `kid`, `use` and `alg`.
    pub fn public_jwk(&self) -> &serde_json::Value {
        &self.jwk
    }

    /// Whether a signature takes well under a millisecond: EdDSA, ES256, RSA up to 2048 bits.
    pub(crate) fn signs_quickly(&self) -> bool {
        match &self.signer {
            Signer::Rsa(pair) => pair.public_modulus_len() <= 256,
            Signer::Ecdsa(_) | Signer::Ed25519(_) => true,
        }
    }

    /// Signs `claims_json` as a compact JWS (RFC 7515 §7.1) whose header names this key.
    pub(crate) fn sign(&self, claims_json: &[u8]) -> Result<String, crate::error::OAuthError> {
        let failed = || crate::error::OAuthError::server_error("signing the token failed");
        let header = &self.header_b64;
        let mut out = String::with_capacity(header.len() + claims_json.len() * 4 / 3 + 700);
        out.push_str(header);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(claims_json, &mut out);
        match &self.signer {
            Signer::Rsa(pair) => {
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
            }
            Signer::Ecdsa(pair) => {
                // The FIXED encoding is JWS's: r and s, 32 bytes each (RFC 7518 §3.4).
                let signature = pair
                    .sign(&aws_lc_rs::rand::SystemRandom::new(), out.as_bytes())
                    .map_err(|_| failed())?;
                out.push('.');
                URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut out);
            }
            Signer::Ed25519(pair) => {
                let signature = pair.sign(out.as_bytes());
                out.push('.');
                URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut out);
            }
        }
        Ok(out)
    }

    /// A server secret derived from the private key, for deployments that configure none (the
    /// SPA cookie key of earlier releases was derived the same way).
    pub(crate) fn fallback_secret(&self) -> crate::secret::ServerSecret {
        let mut derivation = Sha256::new();
        derivation.update(b"passport server secret from the signing key v1");
        derivation.update(&self.private_pkcs8);
        crate::secret::ServerSecret::from_digest(derivation.finalize().into())
    }

    /// Verifies the signature of `token` with this key (its algorithm only) and decodes the
    /// claims. Time claims are the caller's to check.
    pub(crate) fn decode<T: serde::de::DeserializeOwned>(&self, token: &str) -> Result<T, jsonwebtoken::errors::Error> {
        jsonwebtoken::decode::<T>(token, &self.decoding, &self.validation).map(|data| data.claims)
    }
}

/// The keys a server signs and verifies with: the current signing key, and the others that
/// still verify (older keys after a rotation, a newer one published ahead of signing).
#[derive(Debug, Clone)]
pub struct KeySet {
    keys: Vec<Arc<SigningKey>>,
    current: usize,
}

impl KeySet {
    /// A set of one key, which signs.
    pub fn single(key: SigningKey) -> Self {
        Self {
            keys: vec![Arc::new(key)],
            current: 0,
        }
    }

    /// A set of several keys; `current` (a `kid`) signs, the others only verify. `None` when
    /// no key has that `kid`.
    pub fn new(keys: Vec<SigningKey>, current: &str) -> Option<Self> {
        Self::from_shared(keys.into_iter().map(Arc::new).collect(), current)
    }

    /// As [`Self::new`], with keys shared between sets (a reload keeps the parsed keys).
    pub(crate) fn from_shared(keys: Vec<Arc<SigningKey>>, current: &str) -> Option<Self> {
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
        self.keys.iter().find(|k| k.kid == kid).map(|k| &**k)
    }

    /// Every key, signing or verifying only.
    pub fn keys(&self) -> impl Iterator<Item = &SigningKey> {
        self.keys.iter().map(|k| &**k)
    }

    /// The JWK Set (RFC 7517 §5) of every key in the set: what `jwks_uri` serves.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": self.keys().map(SigningKey::public_jwk).collect::<Vec<_>>() })
    }

    /// The key that may have signed a token with this JOSE header: by `kid`; a token without
    /// one (as Laravel Passport issues them) is checked against the oldest key of its algorithm
    /// (the imported Passport key). `None` when there is no such key or its algorithm is not
    /// the header's.
    pub(crate) fn verifier_for(&self, header: &jsonwebtoken::Header) -> Option<&SigningKey> {
        let key = match &header.kid {
            Some(kid) => self.find(kid)?,
            None => self.keys().find(|k| k.algorithm.jwt() == header.alg)?,
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
