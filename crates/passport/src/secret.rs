//! Client secrets and user passwords.
//!
//! Client secrets are 40 random alphanumeric characters that we generate, so a fast hash is
//! enough: they are stored as `sha256:<hex>` and compared in constant time. bcrypt (`$2y$`, what
//! Laravel writes) and argon2 hashes are verified too, for secrets imported from Passport.
//! User passwords are argon2id, hashed and verified on the blocking pool with bounded
//! concurrency so a burst of logins cannot starve the async workers. For unknown users a dummy
//! verification spends the same time; [`PasswordHasher::verify_dummy_like`] derives that dummy
//! from a stored hash, so it has the stored hashes' algorithm and cost (bcrypt 12 from Laravel,
//! say) rather than ours.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::{OnceCell, Semaphore};

use crate::config::ConfigError;
use crate::error::OAuthError;
use crate::random::random_alphanumeric;

const SHA256_PREFIX: &str = "sha256:";

/// A plain client secret, shown once at creation. Prints as `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// Generates a new 40-character secret.
    pub fn generate() -> Result<Self, OAuthError> {
        random_alphanumeric(40).map(Self)
    }

    /// Wraps a known plain secret.
    pub fn new(plain: impl Into<String>) -> Self {
        Self(plain.into())
    }

    /// The plain value. The only way to read it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

/// SHA-256 of an opaque credential (refresh token, code, secret) as lowercase hex. The database
/// holds only this.
pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// The stored form of a client secret.
pub fn hash_client_secret(plain: &str) -> String {
    format!("{SHA256_PREFIX}{}", sha256_hex(plain))
}

/// Whether a stored secret is our own SHA-256 form (checked in nanoseconds; bcrypt and argon2
/// take hundreds of milliseconds).
pub(crate) fn is_fast_secret_hash(stored: &str) -> bool {
    stored.starts_with(SHA256_PREFIX)
}

/// Whether a stored secret is already a hash we can verify (not a legacy plaintext secret).
pub fn is_hashed_secret(stored: &str) -> bool {
    stored.starts_with(SHA256_PREFIX) || is_bcrypt(stored) || stored.starts_with("$argon2")
}

fn is_bcrypt(stored: &str) -> bool {
    ["$2y$", "$2a$", "$2b$"].iter().any(|p| stored.starts_with(p))
}

/// Verifies a presented client secret against the stored hash, in constant time for our own
/// hashes. Slow hashes (bcrypt, argon2) run on the blocking pool. A plaintext stored secret never
/// matches: run `passport hash` first.
pub async fn verify_client_secret(stored: &str, presented: &str) -> bool {
    if let Some(expected) = stored.strip_prefix(SHA256_PREFIX) {
        let actual = sha256_hex(presented);
        return actual.as_bytes().ct_eq(expected.as_bytes()).into();
    }
    if is_bcrypt(stored) || stored.starts_with("$argon2") {
        let stored = stored.to_owned();
        let presented = presented.to_owned();
        return tokio::task::spawn_blocking(move || verify_slow_hash(&stored, &presented))
            .await
            .unwrap_or(false);
    }
    tracing::warn!("a client has an unhashed secret; run `passport hash`");
    false
}

fn verify_slow_hash(stored: &str, presented: &str) -> bool {
    if is_bcrypt(stored) {
        return bcrypt::verify(presented, stored).unwrap_or(false);
    }
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default().verify_password(presented.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// The one secret every instance of a deployment shares. Each HMAC key the server uses (the
/// SPA cookie's, and those later purposes need) is derived from it per purpose with HKDF-SHA256
/// (RFC 5869), so keys of different purposes never coincide, and rotating the signing keys
/// signs no one out. Prints as `[redacted]`.
#[derive(Clone)]
pub struct ServerSecret(Vec<u8>);

impl PartialEq for ServerSecret {
    /// In constant time.
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for ServerSecret {}

/// Purposes keys are derived for (HKDF `info`). Changing one invalidates what it protects.
pub(crate) mod purpose {
    /// The SPA token cookie's HMAC (v2: it names its session).
    pub(crate) const TRANSIENT_COOKIE: &[u8] = b"passport/transient-token-cookie/v2";
    /// Guest sessions kept in a signed cookie.
    pub(crate) const GUEST_SESSION: &[u8] = b"passport/guest-session/v1";
    /// Private signing keys sealed into the database (AES-256-GCM).
    pub(crate) const KEY_SEALING: &[u8] = b"passport/signing-key-sealing/v1";
    /// DPoP server nonces (RFC 9449 §8), one per time bucket.
    pub(crate) const DPOP_NONCE: &[u8] = b"passport/dpop-nonce/v1";
}

impl ServerSecret {
    /// The least entropy accepted, in bytes.
    pub const MIN_BYTES: usize = 32;

    /// 32 fresh random bytes.
    pub fn generate() -> Result<Self, OAuthError> {
        let mut bytes = vec![0u8; Self::MIN_BYTES];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| OAuthError::server_error("random number generator failed"))?;
        Ok(Self(bytes))
    }

    /// A secret from raw bytes (at least [`Self::MIN_BYTES`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfigError> {
        if bytes.len() < Self::MIN_BYTES {
            return Err(ConfigError(format!(
                "the server secret must hold at least {} bytes",
                Self::MIN_BYTES
            )));
        }
        Ok(Self(bytes.to_vec()))
    }

    /// Parses the text form: base64 (standard or URL-safe, padded or not, an optional
    /// `base64:` prefix as Laravel writes its keys) or hex.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
        let text = text.trim();
        let body = text.strip_prefix("base64:").unwrap_or(text);
        let is_hex = body.len().is_multiple_of(2) && body.bytes().all(|b| b.is_ascii_hexdigit());
        let bytes = if is_hex && !text.starts_with("base64:") {
            hex::decode(body).ok()
        } else {
            [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|engine| engine.decode(body).ok())
        };
        let bytes = bytes.ok_or_else(|| ConfigError("the server secret must be base64 or hex".to_owned()))?;
        Self::from_bytes(&bytes)
    }

    pub(crate) fn from_digest(digest: [u8; 32]) -> Self {
        Self(digest.to_vec())
    }

    /// The text form (URL-safe base64 without padding), for storing it.
    pub fn to_text(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.0)
    }

    /// The HMAC-SHA256 key for `purpose`.
    pub(crate) fn hmac_key(&self, purpose: &[u8]) -> aws_lc_rs::hmac::Key {
        use aws_lc_rs::{hkdf, hmac};
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"passport-server-secret").extract(&self.0);
        match prk.expand(&[purpose], hmac::HMAC_SHA256) {
            Ok(okm) => hmac::Key::from(okm),
            // Unreachable: the output is one hash long, far below HKDF's limit of 255.
            Err(_) => hmac::Key::new(hmac::HMAC_SHA256, &Sha256::digest([&self.0[..], purpose].concat())),
        }
    }
}

impl ServerSecret {
    /// The AES-256-GCM key for `purpose`.
    pub(crate) fn aead_key(&self, purpose: &[u8]) -> Result<aws_lc_rs::aead::LessSafeKey, ConfigError> {
        use aws_lc_rs::{aead, hkdf};
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"passport-server-secret").extract(&self.0);
        // Cannot fail: 32 bytes are far below HKDF's output limit.
        let info = [purpose];
        let okm = prk
            .expand(&info, &aead::AES_256_GCM)
            .map_err(|_| ConfigError("deriving a key from the server secret failed".to_owned()))?;
        Ok(aead::LessSafeKey::new(aead::UnboundKey::from(okm)))
    }
}

impl fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerSecret([redacted])")
    }
}

/// Why a password could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The random number generator failed.
    #[error("the random number generator failed")]
    Random,
    /// Hashing itself failed (or its task was cancelled).
    #[error("password hashing failed")]
    Hashing,
}

impl From<HashError> for OAuthError {
    fn from(err: HashError) -> Self {
        OAuthError::server_error(&err.to_string())
    }
}

/// The algorithm and cost parameters of a password hash, read from its PHC or modular-crypt
/// prefix (`$2y$12$…`, `$argon2id$v=19$m=65536,t=4,p=1$…`); the salt and digest are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashParams {
    /// bcrypt (`$2y$`, `$2a$`, `$2b$`) at `cost` (log2 of the rounds; Laravel's default 12).
    Bcrypt {
        /// 4 to 31.
        cost: u32,
    },
    /// argon2 (`argon2id`, `argon2i` or `argon2d`).
    Argon2 {
        /// `"argon2id"`, `"argon2i"` or `"argon2d"`.
        algorithm: String,
        /// `v=` (19 for the current version 1.3).
        version: u32,
        /// `m=`: memory in KiB.
        m_cost: u32,
        /// `t=`: iterations.
        t_cost: u32,
        /// `p=`: lanes.
        p_cost: u32,
        /// Digest length in bytes (32 when the hash has none).
        output_len: usize,
    },
}

impl HashParams {
    /// The parameters of `hash`, or `None` when it is neither bcrypt nor argon2 (or its
    /// parameters are out of range). A prefix is enough: `"$2y$12$"`.
    pub fn of(hash: &str) -> Option<Self> {
        if is_bcrypt(hash) {
            let rest = hash.get(4..)?;
            let cost: u32 = rest.get(..2)?.parse().ok()?;
            let delimited = rest.get(2..).is_some_and(|r| r.is_empty() || r.starts_with('$'));
            return (delimited && (4..=31).contains(&cost)).then_some(Self::Bcrypt { cost });
        }
        let parsed = PasswordHash::new(hash).ok()?;
        let algorithm = argon2::Algorithm::try_from(parsed.algorithm).ok()?;
        let version = parsed.version.unwrap_or(argon2::Version::V0x13 as u32);
        argon2::Version::try_from(version).ok()?;
        let params = argon2::Params::try_from(&parsed).ok()?;
        Some(Self::Argon2 {
            algorithm: algorithm.as_str().to_owned(),
            version,
            m_cost: params.m_cost(),
            t_cost: params.t_cost(),
            p_cost: params.p_cost(),
            output_len: params.output_len().unwrap_or(argon2::Params::DEFAULT_OUTPUT_LEN),
        })
    }

    /// A fresh hash of `password` with these parameters.
    fn hash(&self, password: &str) -> Result<String, HashError> {
        let mut salt = [0u8; 16];
        aws_lc_rs::rand::fill(&mut salt).map_err(|_| HashError::Random)?;
        match self {
            Self::Bcrypt { cost } => bcrypt::hash_with_salt(password, *cost, salt)
                .map(|parts| parts.format_for_version(bcrypt::Version::TwoY))
                .map_err(|_| HashError::Hashing),
            Self::Argon2 {
                algorithm,
                version,
                m_cost,
                t_cost,
                p_cost,
                output_len,
            } => {
                let algorithm = argon2::Algorithm::new(algorithm).map_err(|_| HashError::Hashing)?;
                let version = argon2::Version::try_from(*version).map_err(|_| HashError::Hashing)?;
                let params = argon2::Params::new(*m_cost, *t_cost, *p_cost, Some(*output_len))
                    .map_err(|_| HashError::Hashing)?;
                let salt = SaltString::encode_b64(&salt).map_err(|_| HashError::Hashing)?;
                Argon2::new(algorithm, version, params)
                    .hash_password(password.as_bytes(), &salt)
                    .map(|h| h.to_string())
                    .map_err(|_| HashError::Hashing)
            }
        }
    }
}

/// The password every dummy hash is made of.
const DUMMY_PASSWORD: &str = "passport-dummy-password-for-timing";

/// Dummy hashes kept at most, one per parameter set (a deployment has one or two).
const DUMMY_CAPACITY: usize = 16;

/// Hashes and verifies user passwords (argon2id; bcrypt accepted for imported Laravel users) off
/// the async threads, at most `concurrency` at a time. Clones share one limit;
/// [`PasswordHasher::default`] hands out clones of one hasher per process (as many at once as
/// there are cores), so the SQL user provider and the core do not each get a limit of their own.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    dummy: Arc<OnceCell<String>>,
    /// Dummy hashes made like stored ones ([`Self::verify_dummy_like`]), per parameter set.
    dummies: Arc<Mutex<HashMap<HashParams, Arc<OnceCell<String>>>>>,
}

impl PasswordHasher {
    /// A hasher running at most `concurrency` hashes at once.
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: Arc::new(OnceCell::new()),
            dummies: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Runs `work` on the blocking pool under one of the permits.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self.permits.acquire().await.map_err(|_| HashError::Hashing)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| HashError::Hashing)?
    }

    /// Hashes `password` with argon2id (PHC string, compatible with PHP's `password_hash`).
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let password = password.to_owned();
        self.run(move || {
            let mut salt = [0u8; 16];
            aws_lc_rs::rand::fill(&mut salt).map_err(|_| HashError::Random)?;
            let salt = SaltString::encode_b64(&salt).map_err(|_| HashError::Hashing)?;
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|_| HashError::Hashing)
        })
        .await
    }

    /// Verifies `password` against `hash` (argon2 or bcrypt, `$2y$` included).
    pub async fn verify(&self, hash: &str, password: &str) -> bool {
        let hash = hash.to_owned();
        let password = password.to_owned();
        self.run(move || Ok(verify_slow_hash(&hash, &password)))
            .await
            .unwrap_or(false)
    }

    /// Spends the time of one verification without a user, so that "no such user" and "wrong
    /// password" take as long as each other.
    // Only timing shows this work: the answer is the same either way, and tests assert no
    // timings (a shared, noisy machine), so no test can tell a mutant that skips it.
    #[cfg_attr(test, mutants::skip)]
    pub async fn verify_dummy(&self, password: &str) {
        let dummy = self
            .dummy
            .get_or_try_init(|| async { self.hash(DUMMY_PASSWORD).await })
            .await;
        if let Ok(dummy) = dummy {
            let _ = self.verify(dummy, password).await;
        }
    }

    /// [`verify_dummy`](Self::verify_dummy) against a dummy hash with the algorithm and cost
    /// of `sample_hash` (one of the stored hashes; only its parameters are read, so `"$2y$12$"`
    /// is enough), so an unknown user costs what a known one with such a hash does: bcrypt 12
    /// when the users' hashes are bcrypt 12, not our argon2id. The dummy is made once per
    /// parameter set. A sample that is neither bcrypt nor argon2 falls back to
    /// [`verify_dummy`](Self::verify_dummy).
    #[cfg_attr(test, mutants::skip)]
    pub async fn verify_dummy_like(&self, sample_hash: &str, password: &str) {
        match self.dummy_hash_like(sample_hash).await {
            Some(dummy) => {
                let _ = self.verify(&dummy, password).await;
            }
            None => self.verify_dummy(password).await,
        }
    }

    /// The dummy hash [`verify_dummy_like`](Self::verify_dummy_like) checks for `sample_hash`
    /// (made on first use); `None` when the sample has no parameters we know or hashing
    /// failed.
    pub async fn dummy_hash_like(&self, sample_hash: &str) -> Option<String> {
        let params = HashParams::of(sample_hash)?;
        let cell = {
            let mut dummies = self.dummies.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match dummies.get(&params) {
                Some(cell) => cell.clone(),
                None if dummies.len() >= DUMMY_CAPACITY => Arc::new(OnceCell::new()),
                None => dummies.entry(params.clone()).or_default().clone(),
            }
        };
        let dummy = cell
            .get_or_try_init(|| async move { self.run(move || params.hash(DUMMY_PASSWORD)).await })
            .await;
        dummy.ok().cloned()
    }
}

impl Default for PasswordHasher {
    /// The process's shared hasher (one concurrency limit for everything that uses it).
    fn default() -> Self {
        static SHARED: std::sync::OnceLock<PasswordHasher> = std::sync::OnceLock::new();
        SHARED
            .get_or_init(|| Self::new(std::thread::available_parallelism().map_or(2, |n| n.get())))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sha256_secrets_verify_in_constant_time() {
        let secret = ClientSecret::generate().unwrap();
        assert_eq!(secret.expose_secret().len(), 40);
        assert_eq!(format!("{secret:?}"), "ClientSecret([redacted])");
        let stored = hash_client_secret(secret.expose_secret());
        assert!(is_hashed_secret(&stored));
        assert!(is_hashed_secret("$2y$10$abcdefghijklmnopqrstuv"));
        assert!(is_hashed_secret("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"));
        assert!(
            !is_hashed_secret(secret.expose_secret()),
            "a plaintext secret (Passport 11)"
        );
        assert!(verify_client_secret(&stored, secret.expose_secret()).await);
        assert!(!verify_client_secret(&stored, "wrong").await);
        assert!(!verify_client_secret(secret.expose_secret(), secret.expose_secret()).await);
    }

    #[test]
    fn server_secrets_parse_and_derive_distinct_keys() {
        let secret = ServerSecret::generate().unwrap();
        assert_eq!(ServerSecret::parse(&secret.to_text()).unwrap(), secret);
        assert_ne!(ServerSecret::generate().unwrap(), secret, "compared, not assumed equal");
        assert_eq!(format!("{secret:?}"), "ServerSecret([redacted])");
        let hex_text = "00".repeat(32);
        assert_eq!(ServerSecret::parse(&hex_text).unwrap().0, vec![0u8; 32]);
        assert!(ServerSecret::parse("c2hvcnQ=").is_err(), "too short");
        // 33 bytes in standard base64: an even length that is not hex.
        let padded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 33]);
        assert_eq!(ServerSecret::parse(&padded).unwrap().0, vec![7u8; 33]);
        assert!(ServerSecret::parse("not base64 at all!").is_err());
        let tag =
            |s: &ServerSecret, purpose: &[u8]| aws_lc_rs::hmac::sign(&s.hmac_key(purpose), b"m").as_ref().to_vec();
        assert_ne!(tag(&secret, b"a"), tag(&secret, b"b"), "one key per purpose");
        assert_eq!(
            tag(&secret, b"a"),
            tag(&ServerSecret::parse(&secret.to_text()).unwrap(), b"a")
        );
    }

    #[tokio::test]
    async fn laravel_bcrypt_and_argon2_hashes_verify() {
        let bcrypt_hash = bcrypt::hash("s3cret", 4).unwrap().replacen("$2b$", "$2y$", 1);
        assert!(verify_client_secret(&bcrypt_hash, "s3cret").await);
        assert!(!verify_client_secret(&bcrypt_hash, "nope").await);
        let hasher = PasswordHasher::new(2);
        let argon = hasher.hash("s3cret").await.unwrap();
        assert!(argon.starts_with("$argon2id$"));
        assert!(verify_client_secret(&argon, "s3cret").await);
        assert!(hasher.verify(&argon, "s3cret").await);
        assert!(!hasher.verify(&argon, "other").await);
    }

    /// Laravel writes `$2y$`; the bcrypt crate writes `$2b$` (the same algorithm).
    fn laravel_bcrypt(secret: &str) -> String {
        bcrypt::hash(secret, 4).unwrap().replacen("$2b$", "$2y$", 1)
    }

    #[test]
    fn hash_parameters_are_read_from_the_prefix() {
        assert_eq!(HashParams::of("$2y$12$"), Some(HashParams::Bcrypt { cost: 12 }));
        assert_eq!(
            HashParams::of("$2b$04$abcdefghijklmnopqrstuvabcdefghijklmnopqrstuvwxyz01234"),
            Some(HashParams::Bcrypt { cost: 4 })
        );
        for bad in [
            "$2y$99$",
            "$2y$1$",
            "$2y$123",
            "plain",
            "sha256:abcd",
            "$argon2x$v=19$m=8,t=1,p=1$c2FsdHNhbHQ",
        ] {
            assert_eq!(HashParams::of(bad), None, "{bad}");
        }
        assert_eq!(
            HashParams::of(
                "$argon2id$v=19$m=65536,t=4,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
            ),
            Some(HashParams::Argon2 {
                algorithm: "argon2id".to_owned(),
                version: 19,
                m_cost: 65536,
                t_cost: 4,
                p_cost: 1,
                output_len: 32,
            })
        );
    }

    #[tokio::test]
    async fn the_dummy_has_the_algorithm_and_cost_of_the_sample() {
        let hasher = PasswordHasher::new(2);
        let bcrypt_sample = laravel_bcrypt("a user's password");
        let dummy = hasher.dummy_hash_like(&bcrypt_sample).await.unwrap();
        assert!(dummy.starts_with("$2y$04$"), "{dummy}");
        assert_eq!(HashParams::of(&dummy), HashParams::of(&bcrypt_sample));
        assert!(hasher.verify(&dummy, DUMMY_PASSWORD).await, "a real hash");
        assert_eq!(hasher.dummy_hash_like("$2y$04$").await.unwrap(), dummy, "made once");

        let params = argon2::Params::new(1024, 2, 1, None).unwrap();
        let argon2i = Argon2::new(argon2::Algorithm::Argon2i, argon2::Version::V0x13, params)
            .hash_password(b"pw", &SaltString::encode_b64(b"0123456789abcdef").unwrap())
            .unwrap()
            .to_string();
        assert!(argon2i.starts_with("$argon2i$v=19$m=1024,t=2,p=1$"), "{argon2i}");
        let dummy = hasher.dummy_hash_like(&argon2i).await.unwrap();
        assert!(dummy.starts_with("$argon2i$v=19$m=1024,t=2,p=1$"), "{dummy}");
        assert!(hasher.verify(&dummy, DUMMY_PASSWORD).await);
        assert_eq!(hasher.dummies.lock().unwrap().len(), 2, "one per parameter set");

        assert_eq!(hasher.dummy_hash_like("plain").await, None);
        hasher.verify_dummy_like("plain", "pw").await;
        hasher.verify_dummy_like(&argon2i, "pw").await;
    }
}
