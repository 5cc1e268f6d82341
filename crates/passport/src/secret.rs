//! Client secrets and user passwords.
//!
//! Client secrets are 40 random alphanumeric characters that we generate, so a fast hash is
//! enough: they are stored as `sha256:<hex>` and compared in constant time. bcrypt (`$2y$`, what
//! Laravel writes) and argon2 hashes are verified too, for secrets imported from Passport, and
//! so are plaintext secrets (Passport 11 without `hashClientSecrets`) when
//! [`crate::PassportBuilder::accept_plaintext_client_secrets`] allows it. The token endpoint's
//! checks go through [`ClientSecretVerifier`]: slow hashes share the [`PasswordHasher`]'s
//! bounded permits (one CPU budget for everything slow), and a successful slow check is
//! remembered for [`VERIFIED_TTL`], so a client presenting its right bcrypt secret over and
//! over costs one bcrypt a minute, while a wrong one is checked (and counted) every time.
//!
//! User passwords are argon2id, hashed and verified on the blocking pool with bounded
//! concurrency so a burst of logins cannot starve the async workers. For unknown users a dummy
//! verification spends the same time; [`PasswordHasher::verify_dummy_like`] derives that dummy
//! from a stored hash, so it has the stored hashes' algorithm and cost (bcrypt 12 from Laravel,
//! say) rather than ours.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::{OnceCell, Semaphore};

use crate::clock::Clock;
use crate::config::ConfigError;
use crate::error::OAuthError;
use crate::random::random_alphanumeric;

const SHA256_PREFIX: &str = "sha256:";

/// How long a successful slow-hash (bcrypt, argon2) client-secret check is remembered, on the
/// Passport clock.
pub const VERIFIED_TTL: Duration = Duration::from_secs(60);

/// Successful slow-hash checks remembered at most.
const VERIFIED_CAPACITY: usize = 10_000;

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

/// Whether a stored secret is already a hash we can verify (not a legacy plaintext secret).
pub fn is_hashed_secret(stored: &str) -> bool {
    stored.starts_with(SHA256_PREFIX) || is_slow_hash(stored)
}

fn is_bcrypt(stored: &str) -> bool {
    ["$2y$", "$2a$", "$2b$"].iter().any(|p| stored.starts_with(p))
}

/// bcrypt or argon2: hundreds of milliseconds of a core each.
fn is_slow_hash(stored: &str) -> bool {
    is_bcrypt(stored) || stored.starts_with("$argon2")
}

/// Verifies a presented client secret against the stored hash, in constant time for our own
/// hashes. Slow hashes (bcrypt, argon2) run under the permits of the process's shared
/// [`PasswordHasher::default`]. A plaintext stored secret never matches here: run
/// `passport hash` first. (The token endpoint checks through its [`Passport`](crate::Passport)
/// instead, which may accept plaintext secrets and remembers successful slow checks.)
pub async fn verify_client_secret(stored: &str, presented: &str) -> bool {
    if is_slow_hash(stored) {
        return PasswordHasher::default().verify(stored, presented).await;
    }
    verify_fast_secret(stored, presented, false)
}

/// Our `sha256:` form, or a plaintext stored secret (matched only when `accept_plaintext`);
/// both in constant time.
fn verify_fast_secret(stored: &str, presented: &str, accept_plaintext: bool) -> bool {
    if let Some(expected) = stored.strip_prefix(SHA256_PREFIX) {
        let actual = sha256_hex(presented);
        return actual.as_bytes().ct_eq(expected.as_bytes()).into();
    }
    if !accept_plaintext {
        tracing::warn!("a client has an unhashed secret; run `passport hash`");
        return false;
    }
    // Digests of both, so neither the length nor the content of the stored secret shows in
    // the time taken.
    Sha256::digest(stored.as_bytes())
        .ct_eq(&Sha256::digest(presented.as_bytes()))
        .into()
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

/// The token endpoint's client-secret check (see the module documentation): fast forms at
/// once, slow ones under the hasher's permits with successful checks remembered for
/// [`VERIFIED_TTL`], keyed by the SHA-256 of client id, stored hash and presented secret (the
/// secret itself is never kept). A failed check is never remembered, so it is made, and counted
/// by the failure limits, every time.
#[derive(Debug)]
pub(crate) struct ClientSecretVerifier {
    hasher: PasswordHasher,
    accept_plaintext: bool,
    clock: Arc<dyn Clock>,
    /// Key → when the remembered success expires.
    verified: Mutex<HashMap<[u8; 32], DateTime<Utc>>>,
    /// Slow checks actually made (cache misses), for tests.
    slow_checks: AtomicU64,
}

impl ClientSecretVerifier {
    pub(crate) fn new(hasher: PasswordHasher, accept_plaintext: bool, clock: Arc<dyn Clock>) -> Self {
        Self {
            hasher,
            accept_plaintext,
            clock,
            verified: Mutex::new(HashMap::new()),
            slow_checks: AtomicU64::new(0),
        }
    }

    /// Whether `presented` is the secret of `client_id`, whose stored form is `stored`.
    pub(crate) async fn verify(&self, client_id: &str, stored: &str, presented: &str) -> bool {
        if !is_slow_hash(stored) {
            return verify_fast_secret(stored, presented, self.accept_plaintext);
        }
        let key = verification_key(client_id, stored, presented);
        if self.remembered(&key) {
            return true;
        }
        self.slow_checks.fetch_add(1, Ordering::Relaxed);
        let verified = self.hasher.verify(stored, presented).await;
        if verified {
            self.remember(key);
        }
        verified
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], DateTime<Utc>>> {
        self.verified.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn remembered(&self, key: &[u8; 32]) -> bool {
        let now = self.clock.now();
        self.entries().get(key).is_some_and(|expires| *expires > now)
    }

    fn remember(&self, key: [u8; 32]) {
        let now = self.clock.now();
        let ttl = TimeDelta::seconds(i64::try_from(VERIFIED_TTL.as_secs()).unwrap_or(60));
        let mut entries = self.entries();
        if entries.len() >= VERIFIED_CAPACITY && !entries.contains_key(&key) {
            entries.retain(|_, expires| *expires > now);
            if entries.len() >= VERIFIED_CAPACITY {
                // Still full of live entries: the one expiring first goes.
                let oldest = entries.iter().min_by_key(|(_, expires)| **expires).map(|(k, _)| *k);
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(key, now + ttl);
    }

    /// Slow checks made so far (cache hits excluded).
    #[cfg(test)]
    pub(crate) fn slow_checks(&self) -> u64 {
        self.slow_checks.load(Ordering::Relaxed)
    }

    /// Remembered successes, expired ones included.
    #[cfg(test)]
    fn remembered_count(&self) -> usize {
        self.entries().len()
    }
}

/// SHA-256 over the length-prefixed client id and stored hash and the presented secret: the
/// boundaries are part of the key, and the secret is never stored.
fn verification_key(client_id: &str, stored: &str, presented: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in [client_id, stored] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.update(presented.as_bytes());
    hash.finalize().into()
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
/// Slow client-secret checks take the same permits.
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

    /// Runs `work` on the blocking pool under one of the permits. The permit goes with the
    /// work, so a caller that gives up (a cancelled request) frees it only when the work is
    /// done: cancelling cannot start more slow checks at once than there are permits.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HashError::Hashing)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
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

    fn verifier(accept_plaintext: bool) -> (ClientSecretVerifier, Arc<crate::MockClock>) {
        let clock = Arc::new(crate::MockClock::starting_now());
        (
            ClientSecretVerifier::new(PasswordHasher::new(2), accept_plaintext, clock.clone()),
            clock,
        )
    }

    /// Laravel writes `$2y$`; the bcrypt crate writes `$2b$` (the same algorithm).
    fn laravel_bcrypt(secret: &str) -> String {
        bcrypt::hash(secret, 4).unwrap().replacen("$2b$", "$2y$", 1)
    }

    #[tokio::test]
    async fn plaintext_secrets_verify_only_when_allowed() {
        let (refusing, _) = verifier(false);
        assert!(
            !refusing.verify("1", "plain-secret", "plain-secret").await,
            "run `passport hash`"
        );
        let (accepting, _) = verifier(true);
        assert!(accepting.verify("1", "plain-secret", "plain-secret").await);
        assert!(!accepting.verify("1", "plain-secret", "plain-secreT").await);
        assert!(!accepting.verify("1", "plain-secret", "plain-secret ").await);
        assert!(!accepting.verify("1", "plain-secret", "").await);
        // Our own form is still a hash, not a plaintext secret equal to its text.
        let stored = hash_client_secret("s3cret");
        assert!(accepting.verify("1", &stored, "s3cret").await);
        assert!(!accepting.verify("1", &stored, &stored).await);
        assert_eq!(accepting.slow_checks(), 0, "none of these is slow");
    }

    #[tokio::test]
    async fn a_successful_slow_check_is_remembered_a_failed_one_never() {
        let (verifier, clock) = verifier(false);
        let stored = laravel_bcrypt("s3cret");
        assert!(stored.starts_with("$2y$04$"));
        assert!(verifier.verify("1", &stored, "s3cret").await);
        assert!(verifier.verify("1", &stored, "s3cret").await, "from the cache");
        assert_eq!(verifier.slow_checks(), 1, "one bcrypt for both");

        for _ in 0..3 {
            assert!(!verifier.verify("1", &stored, "wrong").await);
        }
        assert_eq!(verifier.slow_checks(), 4, "a wrong secret is checked every time");
        assert_eq!(verifier.remembered_count(), 1, "and never remembered");

        assert!(
            verifier.verify("2", &stored, "s3cret").await,
            "another client: its own key"
        );
        assert_eq!(verifier.slow_checks(), 5);
        let rotated = laravel_bcrypt("s3cret");
        assert!(
            verifier.verify("1", &rotated, "s3cret").await,
            "a new stored hash: its own key"
        );
        assert_eq!(verifier.slow_checks(), 6);

        clock.advance(TimeDelta::seconds(59));
        assert!(verifier.verify("1", &stored, "s3cret").await);
        assert_eq!(verifier.slow_checks(), 6, "still remembered");
        clock.advance(TimeDelta::seconds(1));
        assert!(verifier.verify("1", &stored, "s3cret").await);
        assert_eq!(verifier.slow_checks(), 7, "checked again after VERIFIED_TTL");
    }

    #[test]
    fn verification_keys_hold_no_secret_and_keep_boundaries() {
        let key = verification_key("1", "$2y$10$stored", "right");
        assert_ne!(key, verification_key("1", "$2y$10$stored", "wrong"));
        assert_ne!(key, verification_key("2", "$2y$10$stored", "right"));
        assert_ne!(key, verification_key("1", "$2y$10$other", "right"));
        assert_ne!(key, verification_key("1", "$2y$10$storedr", "ight"));
        assert_ne!(key, verification_key("1$", "2y$10$stored", "right"));
        assert!(!key.windows(5).any(|w| w == b"right"));
    }

    #[test]
    fn the_cache_is_bounded() {
        let (verifier, clock) = verifier(false);
        for n in 0..VERIFIED_CAPACITY as u32 {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&n.to_be_bytes());
            verifier.remember(key);
            if n == 0 {
                clock.advance(TimeDelta::seconds(1));
            }
        }
        assert_eq!(verifier.remembered_count(), VERIFIED_CAPACITY);
        verifier.remember([0xff; 32]);
        assert_eq!(verifier.remembered_count(), VERIFIED_CAPACITY, "one went");
        assert!(verifier.remembered(&[0xff; 32]), "the new one is kept");
        assert!(!verifier.remembered(&[0; 32]), "the one expiring first went");
        clock.advance(TimeDelta::seconds(120));
        verifier.remember([0xfe; 32]);
        assert_eq!(verifier.remembered_count(), 1, "expired entries go first");
    }

    #[tokio::test]
    async fn slow_checks_wait_for_the_shared_permits() {
        let clock = Arc::new(crate::MockClock::starting_now());
        let hasher = PasswordHasher::new(1);
        let verifier = ClientSecretVerifier::new(hasher.clone(), false, clock);
        let stored = laravel_bcrypt("s3cret");
        let held = hasher.permits.clone().acquire_owned().await.unwrap();
        let mut check = std::pin::pin!(verifier.verify("1", &stored, "s3cret"));
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(
            check.as_mut().poll(&mut context).is_pending(),
            "no permit: the check waits"
        );
        assert_eq!(hasher.permits.available_permits(), 0);
        drop(held);
        assert!(check.await, "then runs");
        assert_eq!(hasher.permits.available_permits(), 1, "and gives its permit back");
        let fast = hash_client_secret("a");
        let mut free = std::pin::pin!(verify_client_secret(&fast, "a"));
        assert!(
            free.as_mut().poll(&mut context).is_ready(),
            "fast checks take no permit"
        );
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
