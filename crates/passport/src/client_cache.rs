//! The token endpoint's client cache: a live client row is kept for at most [`CLIENT_TTL`], so
//! a burst of token requests from one client reads its row once, not once per request. A
//! revocation on this instance, or one arriving through the revocation feed, takes the client
//! out at once; any other change made elsewhere (a renamed client, new redirect URIs) shows
//! within [`CLIENT_TTL`].
//!
//! It also remembers successful verifications of slow secret hashes (bcrypt and argon2, as
//! imported from Laravel: hundreds of milliseconds each) for [`VERIFIED_TTL`], keyed by the
//! SHA-256 of the stored hash and the presented secret together, so a changed secret or a
//! different presented one never matches. Our own SHA-256 secrets are checked every time (it
//! costs nanoseconds).

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::client::Client;

/// How long a client row is trusted without reading it again.
pub const CLIENT_TTL: Duration = Duration::from_secs(1);

/// How long a successful slow-hash verification is remembered.
pub const VERIFIED_TTL: Duration = Duration::from_secs(300);

/// Entries kept at most, in each of the two maps.
const CAPACITY: usize = 10_000;

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct ClientCache {
    clients: RwLock<HashMap<String, (Client, Instant)>>,
    verified: RwLock<HashMap<[u8; 32], Instant>>,
    /// Advanced by every eviction: a row read before one is not stored after it.
    epoch: AtomicU64,
}

impl ClientCache {
    /// The cached live client, if read less than [`CLIENT_TTL`] ago.
    pub(crate) fn get(&self, id: &str) -> Option<Client> {
        let clients = self.clients.read().unwrap_or_else(|p| p.into_inner());
        let (client, read_at) = clients.get(id)?;
        (read_at.elapsed() < CLIENT_TTL).then(|| client.clone())
    }

    /// The epoch to pass to [`Self::insert`], read before the database is.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Remembers a live client read at `epoch`, unless something was evicted since.
    pub(crate) fn insert(&self, client: &Client, epoch: u64) {
        let mut clients = self.clients.write().unwrap_or_else(|p| p.into_inner());
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        if clients.len() >= CAPACITY {
            clients.retain(|_, (_, at)| at.elapsed() < CLIENT_TTL);
            if clients.len() >= CAPACITY {
                clients.clear();
            }
        }
        clients.insert(client.id.to_string(), (client.clone(), Instant::now()));
    }

    /// Takes one client out (it changed, or was revoked or deleted).
    pub(crate) fn forget(&self, id: &str) {
        let mut clients = self.clients.write().unwrap_or_else(|p| p.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        clients.remove(id);
    }

    /// Takes every client out.
    pub(crate) fn clear(&self) {
        let mut clients = self.clients.write().unwrap_or_else(|p| p.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        clients.clear();
    }

    /// Whether `presented` was verified against `stored` less than [`VERIFIED_TTL`] ago.
    pub(crate) fn verified(&self, stored: &str, presented: &str) -> bool {
        let key = verification_key(stored, presented);
        let verified = self.verified.read().unwrap_or_else(|p| p.into_inner());
        verified.get(&key).is_some_and(|at| at.elapsed() < VERIFIED_TTL)
    }

    /// Remembers that `presented` matches `stored`.
    pub(crate) fn remember_verified(&self, stored: &str, presented: &str) {
        let key = verification_key(stored, presented);
        let mut verified = self.verified.write().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= CAPACITY {
            verified.retain(|_, at| at.elapsed() < VERIFIED_TTL);
            if verified.len() >= CAPACITY {
                verified.clear();
            }
        }
        verified.insert(key, Instant::now());
    }
}

fn verification_key(stored: &str, presented: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update((stored.len() as u64).to_be_bytes());
    hash.update(stored.as_bytes());
    hash.update(presented.as_bytes());
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verification_matches_only_the_same_hash_and_secret() {
        let cache = ClientCache::default();
        cache.remember_verified("$2y$10$stored", "right");
        assert!(cache.verified("$2y$10$stored", "right"));
        assert!(!cache.verified("$2y$10$stored", "wrong"));
        assert!(!cache.verified("$2y$10$other", "right"));
        // The boundary between hash and secret is part of the key.
        assert!(!cache.verified("$2y$10$storedr", "ight"));
    }
}
