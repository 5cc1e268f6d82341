//! The key set kept in the store, so every instance of a deployment signs and verifies with the
//! same keys, and rotates them without downtime.
//!
//! Each stored key has a creation time, an activation time and, once retired, a retirement
//! time. At any instant its state follows from those and the clock alone:
//!
//! - **published**: activates later. It is in the JWKS already, so resource servers that cache
//!   the JWKS (for `key_publish_ahead`, by default the JWKS max-age) know it before any token
//!   signed with it reaches them;
//! - **current**: the key activated last; it signs;
//! - **verifying**: superseded, still checks the tokens it signed, until retired by hand
//!   (`passport keys retire KID`) or until the longest access-token lifetime has passed since
//!   it was superseded (no token it signed can still be live);
//! - **retired**: gone from the JWKS; its tokens are refused.
//!
//! Private keys are sealed with AES-256-GCM under a key derived from the server secret, so a
//! copy of the database alone does not give them away (when the server secret is kept
//! elsewhere: see the README). Every instance polls the table ([`Passport::watch_keys`]) and
//! swaps its key set when the states change, within seconds and without a restart.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_lc_rs::aead::{Aad, LessSafeKey, NONCE_LEN, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};

use crate::error::{OAuthError, StoreError};
use crate::keys::{Algorithm, KeySet, SigningKey, generate_key};
use crate::passport::Passport;

/// The JWKS `Cache-Control: max-age`, in seconds; also the default `key_publish_ahead`.
pub const JWKS_MAX_AGE: u64 = 300;

/// One key as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The RFC 7638 thumbprint.
    pub kid: String,
    /// The JOSE algorithm name.
    pub algorithm: String,
    /// The private key, sealed (see the module documentation).
    pub private_key: String,
    /// The public key, SPKI PEM.
    pub public_key: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it starts signing.
    pub activates_at: DateTime<Utc>,
    /// When it was retired.
    pub retired_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("activates_at", &self.activates_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// Where the key set lives. The defaults keep no keys (a store without key storage: the server
/// signs with the key it was built with, and rotation is unavailable).
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Every stored key, retired ones included.
    async fn list_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        Ok(Vec::new())
    }

    /// Stores a new key; `Conflict` when its `kid` is stored already.
    async fn insert_key(&self, _key: &StoredKey) -> Result<(), StoreError> {
        Err(StoreError::Unsupported("this store keeps no signing keys"))
    }

    /// Marks a key retired at `at`; false when there is no such live key.
    async fn retire_key(&self, _kid: &str, _at: DateTime<Utc>) -> Result<bool, StoreError> {
        Err(StoreError::Unsupported("this store keeps no signing keys"))
    }
}

/// A stored key's state now (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyState {
    /// In the JWKS; signs from its activation on.
    Published,
    /// Signs.
    Current,
    /// Only verifies.
    Verifying,
    /// Neither.
    Retired,
}

impl KeyState {
    /// The lower-case name (`passport keys list`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::Current => "current",
            Self::Verifying => "verifying",
            Self::Retired => "retired",
        }
    }
}

/// What `passport keys list` shows of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key id.
    pub kid: String,
    /// The algorithm's JOSE name.
    pub algorithm: String,
    /// Its state now.
    pub state: KeyState,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it starts (or started) signing.
    pub activates_at: DateTime<Utc>,
    /// When it was retired by hand.
    pub retired_at: Option<DateTime<Utc>>,
}

/// The state of every key of `keys` at `now`. Keys superseded longer than `longest_lifetime`
/// ago have nothing left to verify and count as retired.
pub fn key_states(keys: &[StoredKey], now: DateTime<Utc>, longest_lifetime: TimeDelta) -> Vec<KeyState> {
    let live = |k: &StoredKey| k.retired_at.is_none_or(|at| at > now);
    // Activated keys, newest activation first (ties by creation, then kid, so every instance
    // agrees).
    let mut activated: Vec<usize> = (0..keys.len())
        .filter(|&i| live(&keys[i]) && keys[i].activates_at <= now)
        .collect();
    activated.sort_by(|&a, &b| {
        let order = |k: &StoredKey| (k.activates_at, k.created_at, k.kid.clone());
        order(&keys[b]).cmp(&order(&keys[a]))
    });
    let mut states = vec![KeyState::Retired; keys.len()];
    for (i, key) in keys.iter().enumerate() {
        if live(key) && key.activates_at > now {
            states[i] = KeyState::Published;
        }
    }
    for (position, &i) in activated.iter().enumerate() {
        states[i] = if position == 0 {
            KeyState::Current
        } else {
            // Superseded when the key activated right after it did.
            let superseded_at = keys[activated[position - 1]].activates_at;
            if superseded_at + longest_lifetime <= now {
                KeyState::Retired
            } else {
                KeyState::Verifying
            }
        };
    }
    states
}

/// Seals a private key PEM: `v1.` and base64url of nonce, ciphertext and tag.
fn seal(key: &LessSafeKey, private_pem: &str) -> Result<String, OAuthError> {
    let failed = || OAuthError::server_error("sealing the signing key failed");
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| failed())?;
    let mut sealed = private_pem.as_bytes().to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(b"passport signing key"),
        &mut sealed,
    )
    .map_err(|_| failed())?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(format!("v1.{}", URL_SAFE_NO_PAD.encode(out)))
}

/// Opens what [`seal`] sealed; `None` when it was sealed under another server secret or
/// tampered with.
fn open(key: &LessSafeKey, sealed: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(sealed.strip_prefix("v1.")?).ok()?;
    if bytes.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buffer = ciphertext.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(b"passport signing key"), &mut buffer)
        .ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

/// What a server remembers between key reloads.
#[derive(Default)]
pub(crate) struct KeyCache {
    /// Parsed keys by kid: a reload parses (and unseals) only new ones.
    parsed: HashMap<String, Arc<SigningKey>>,
    /// The (kid, state) list the current set was built from.
    built_from: Vec<(String, KeyState)>,
}

impl fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyCache")
            .field("keys", &self.parsed.len())
            .finish_non_exhaustive()
    }
}

/// The key material a [`Passport`] needs for its stored key set.
pub(crate) struct Keyring {
    sealing: LessSafeKey,
    cache: Mutex<KeyCache>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring").finish_non_exhaustive()
    }
}

impl Keyring {
    pub(crate) fn new(sealing: LessSafeKey, cache: KeyCache) -> Self {
        Self {
            sealing,
            cache: Mutex::new(cache),
        }
    }
}

/// The key set the stored keys make at `now`, parsing (and unsealing) only keys `cache` does
/// not hold yet; `None` when the states are those the cache's last set was built from.
pub(crate) fn assemble(
    stored: &[StoredKey],
    now: DateTime<Utc>,
    longest_lifetime: TimeDelta,
    sealing: &LessSafeKey,
    cache: &mut KeyCache,
) -> Result<Option<KeySet>, OAuthError> {
    let states = key_states(stored, now, longest_lifetime);
    let mut order: Vec<usize> = (0..stored.len()).filter(|&i| states[i] != KeyState::Retired).collect();
    // Oldest activation first: a token without `kid` is checked against the oldest key.
    order.sort_by_key(|&i| (stored[i].activates_at, stored[i].created_at));
    let built_from: Vec<(String, KeyState)> = order.iter().map(|&i| (stored[i].kid.clone(), states[i])).collect();
    if cache.built_from == built_from {
        return Ok(None);
    }
    let mut keys = Vec::with_capacity(order.len());
    let mut current = None;
    for &i in &order {
        let record = &stored[i];
        let key = match cache.parsed.get(&record.kid) {
            Some(key) => key.clone(),
            None => {
                let Some(private) = open(sealing, &record.private_key) else {
                    tracing::error!(
                        kid = %record.kid,
                        "a stored signing key cannot be unsealed: it was sealed under another server secret"
                    );
                    continue;
                };
                let key = match SigningKey::from_pem(&private, Some(&record.public_key)) {
                    Ok(key) if key.kid() == record.kid => Arc::new(key),
                    _ => {
                        tracing::error!(kid = %record.kid, "a stored signing key is invalid");
                        continue;
                    }
                };
                cache.parsed.insert(record.kid.clone(), key.clone());
                key
            }
        };
        if states[i] == KeyState::Current {
            current = Some(record.kid.clone());
        }
        keys.push(key);
    }
    let set = current
        .and_then(|kid| KeySet::from_shared(keys, &kid))
        .ok_or_else(|| OAuthError::server_error("the stored key set has no usable current key"))?;
    cache.built_from = built_from;
    Ok(Some(set))
}

/// The longest lifetime a signed token can have: past it a superseded key verifies nothing.
pub(crate) fn longest_token_lifetime(settings: &crate::passport::Settings) -> TimeDelta {
    settings.tokens_expire_in.max(settings.personal_access_tokens_expire_in)
}

impl Passport {
    fn longest_token_lifetime(&self) -> TimeDelta {
        longest_token_lifetime(self.settings())
    }

    /// Moves the key set into the store, or takes the store's: when the store holds no key
    /// yet, the key the server was built with (the single-key Passport layout,
    /// `oauth-private.key` or `PASSPORT_PRIVATE_KEY`) is stored as the first one, keeping its
    /// `kid`, so every live token still verifies. Then the set is loaded from the store.
    /// Returns false, changing nothing, when the store keeps no keys.
    pub async fn sync_key_store(&self) -> Result<bool, OAuthError> {
        if self.store().list_keys().await?.is_empty() {
            let keys = self.keys();
            if !self.store_signing_key(keys.current()).await? {
                return Ok(false);
            }
        }
        self.refresh_keys().await?;
        Ok(true)
    }

    /// Stores `key` as the current signing key unless the store has it (in any state, retired
    /// included): how a changed key file or `PASSPORT_PRIVATE_KEY` takes effect, as replacing
    /// Passport's keys does (at once; `rotate_key` publishes ahead instead). Returns whether
    /// it stored it.
    pub async fn import_signing_key(&self, key: &SigningKey) -> Result<bool, OAuthError> {
        if self.store().list_keys().await?.iter().any(|k| k.kid == key.kid()) {
            return Ok(false);
        }
        let stored = self.store_signing_key(key).await?;
        if stored {
            self.refresh_keys().await?;
        }
        Ok(stored)
    }

    /// Seals and stores `key`, active from now; false when the store keeps no keys or has it.
    async fn store_signing_key(&self, key: &SigningKey) -> Result<bool, OAuthError> {
        let now = self.now();
        let record = StoredKey {
            kid: key.kid().to_owned(),
            algorithm: key.algorithm().as_str().to_owned(),
            private_key: seal(&self.keyring().sealing, &key.private_pem())?,
            public_key: key.public_pem().to_owned(),
            created_at: now,
            activates_at: now,
            retired_at: None,
        };
        match self.store().insert_key(&record).await {
            Ok(()) => Ok(true),
            // Another instance stored it first.
            Err(StoreError::Conflict) | Err(StoreError::Unsupported(_)) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// Reloads the key set from the store and swaps it in when a key's state changed (a
    /// rotation, an activation, a retirement); returns whether it did.
    pub async fn refresh_keys(&self) -> Result<bool, OAuthError> {
        let stored = self.store().list_keys().await?;
        if stored.is_empty() {
            return Ok(false);
        }
        let keyring = self.keyring();
        let set = {
            let mut cache = keyring.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            assemble(
                &stored,
                self.now(),
                self.longest_token_lifetime(),
                &keyring.sealing,
                &mut cache,
            )?
        };
        match set {
            Some(set) => {
                self.replace_keys(set);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Reloads the key set every `every` (a loop; spawn it): rotations and retirements made by
    /// another instance or the CLI take effect here within that time.
    pub async fn watch_keys(self, every: Duration) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match self.refresh_keys().await {
                Ok(true) => tracing::info!(kid = %self.kid(), "signing key set reloaded"),
                Ok(false) => {}
                Err(err) => tracing::warn!(error = %err, "reloading the signing keys failed"),
            }
        }
    }

    /// Makes a new key and stores it: published at once, signing after `publish_ahead`.
    /// `rsa_bits` is the RSA modulus length (ignored for the other algorithms).
    pub async fn rotate_key(
        &self,
        algorithm: Algorithm,
        rsa_bits: u32,
        publish_ahead: TimeDelta,
    ) -> Result<KeyInfo, OAuthError> {
        // Generating RSA keys takes up to seconds of CPU.
        let generated = tokio::task::spawn_blocking(move || generate_key(algorithm, rsa_bits))
            .await
            .map_err(|_| OAuthError::server_error("key generation failed"))?
            .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
        let key = SigningKey::from_pem(&generated.private_pem, None)
            .map_err(|_| OAuthError::server_error("the new key is invalid"))?;
        let now = self.now();
        let record = StoredKey {
            kid: key.kid().to_owned(),
            algorithm: algorithm.as_str().to_owned(),
            private_key: seal(&self.keyring().sealing, &generated.private_pem)?,
            public_key: key.public_pem().to_owned(),
            created_at: now,
            activates_at: now + publish_ahead.max(TimeDelta::zero()),
            retired_at: None,
        };
        self.store().insert_key(&record).await?;
        self.refresh_keys().await?;
        let states = key_states(std::slice::from_ref(&record), now, self.longest_token_lifetime());
        Ok(KeyInfo {
            kid: record.kid,
            algorithm: record.algorithm,
            state: states[0],
            created_at: record.created_at,
            activates_at: record.activates_at,
            retired_at: None,
        })
    }

    /// Retires a key: it leaves the JWKS and its tokens are refused (on every instance within
    /// the reload interval). The current key cannot be retired: rotate first. `None` when there
    /// is no such live key.
    pub async fn retire_key(&self, kid: &str) -> Result<Option<KeyInfo>, OAuthError> {
        let infos = self.key_infos().await?;
        let Some(info) = infos.iter().find(|k| k.kid == kid && k.state != KeyState::Retired) else {
            return Ok(None);
        };
        if info.state == KeyState::Current {
            return Err(OAuthError::invalid_request(
                "this key signs: rotate to a new key first, then retire this one",
            ));
        }
        let now = self.now();
        if !self.store().retire_key(kid, now).await? {
            return Ok(None);
        }
        self.token_cache().forget(&[crate::token_cache::Forget::All]);
        self.refresh_keys().await?;
        Ok(Some(KeyInfo {
            state: KeyState::Retired,
            retired_at: Some(now),
            ..info.clone()
        }))
    }

    /// Every stored key with its state now, oldest first.
    pub async fn key_infos(&self) -> Result<Vec<KeyInfo>, OAuthError> {
        let mut stored = self.store().list_keys().await?;
        stored.sort_by_key(|k| (k.created_at, k.activates_at));
        let states = key_states(&stored, self.now(), self.longest_token_lifetime());
        Ok(stored
            .into_iter()
            .zip(states)
            .map(|(k, state)| KeyInfo {
                kid: k.kid,
                algorithm: k.algorithm,
                state,
                created_at: k.created_at,
                activates_at: k.activates_at,
                retired_at: k.retired_at,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, created: i64, activates: i64, retired: Option<i64>) -> StoredKey {
        let at = |s: i64| DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap_or_default();
        StoredKey {
            kid: kid.to_owned(),
            algorithm: "RS256".to_owned(),
            private_key: String::new(),
            public_key: String::new(),
            created_at: at(created),
            activates_at: at(activates),
            retired_at: retired.map(at),
        }
    }

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap_or_default()
    }

    #[test]
    fn states_follow_activation_supersession_and_retirement() {
        use KeyState::*;
        let year = TimeDelta::days(365);
        let keys = [
            key("a", 0, 0, None),
            key("b", 100, 400, None),
            key("c", 50, 60, Some(90)),
        ];
        assert_eq!(key_states(&keys, at(10), year), [Current, Published, Published]);
        assert_eq!(key_states(&keys, at(70), year), [Verifying, Published, Current]);
        assert_eq!(
            key_states(&keys, at(200), year),
            [Current, Published, Retired],
            "c retired"
        );
        assert_eq!(
            key_states(&keys, at(400), year),
            [Verifying, Current, Retired],
            "b activates"
        );
        let later = 400 + year.num_seconds();
        assert_eq!(
            key_states(&keys, at(later), year),
            [Retired, Current, Retired],
            "a lifetime after it was superseded, a verifies nothing"
        );
    }

    #[test]
    fn sealed_keys_open_only_under_their_secret() {
        let secret = crate::secret::ServerSecret::generate().unwrap_or_else(|_| unreachable!());
        let other = crate::secret::ServerSecret::generate().unwrap_or_else(|_| unreachable!());
        let purpose = crate::secret::purpose::KEY_SEALING;
        let (key, wrong) = (secret.aead_key(purpose).ok(), other.aead_key(purpose).ok());
        let (Some(key), Some(wrong)) = (key, wrong) else {
            unreachable!("key derivation cannot fail")
        };
        let sealed = seal(&key, "-----BEGIN PRIVATE KEY-----").unwrap_or_default();
        assert_eq!(open(&key, &sealed).as_deref(), Some("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(open(&wrong, &sealed), None);
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(open(&key, &String::from_utf8(tampered).unwrap_or_default()), None);
        assert_eq!(open(&key, "v2.abc"), None);
    }
}
