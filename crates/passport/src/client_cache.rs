//! The token endpoint's client cache: a live client row is kept for at most [`CLIENT_TTL`], so
//! a burst of token requests from one client reads its row once, not once per request. A
//! revocation on this instance, or one arriving through the revocation feed, takes the client
//! out at once; any other change made elsewhere (a renamed client, new redirect URIs) shows
//! within [`CLIENT_TTL`].
//!
//! Successful checks of slow secret hashes (bcrypt, argon2) are remembered elsewhere, whether
//! this cache is on or not: see [`crate::VERIFIED_TTL`].

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::client::Client;

/// How long a client row is trusted without reading it again.
pub const CLIENT_TTL: Duration = Duration::from_secs(1);

/// Client rows kept at most.
const CAPACITY: usize = 10_000;

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct ClientCache {
    clients: RwLock<HashMap<String, (Client, Instant)>>,
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
}
