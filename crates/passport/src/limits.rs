//! Brute-force limits that count **failures**, not requests, so honest traffic is never
//! throttled: failed client authentication and wrong user credentials at the token endpoint
//! (per client and address, and per address), failed sign-ins (per account and address, and per
//! address; a success clears its account's counter for that address, as Laravel's login
//! throttling does). A key at its limit is locked until its one-minute window ends, and a
//! locked key is refused *before* the credentials are checked, so a right password during a
//! lockout tells an attacker nothing.
//!
//! The counters live in memory, bounded: when a table is full, expired windows go first, then
//! the keys with the fewest failures, so flooding new keys evicts the flood, never the locked
//! keys of others. Adapters pass the caller's address (IPv6 by its /64); without one, no limit
//! applies (the HTTP adapter refuses to serve limited endpoints without addresses).
//!
//! Several servers on one database share the counts: each failure is also counted in the
//! store ([`crate::TokenStore::count_failure`], keyed by a hash) and the server keeps the
//! greater of its own and the shared count. Checks stay in memory (honest traffic never waits
//! for the database), so a server that has not seen the latest failures of a key lets one
//! more guess through before it learns them: across `n` servers a key is locked after at most
//! `limit + n - 1` failures, never `n × limit`.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest as _, Sha256};

use crate::clock::Clock;
use crate::error::{ErrorCode, OAuthError};
use crate::store::Store;

/// The window failures are counted in.
const WINDOW: TimeDelta = TimeDelta::seconds(60);
/// Keys one table holds at most.
const CAPACITY: usize = 50_000;

/// Failures allowed per minute (0 = no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureLimitSettings {
    /// Failed client authentications and wrong user credentials, per client and address.
    pub client_auth_failures_per_client: u32,
    /// The same, per address.
    pub client_auth_failures_per_address: u32,
    /// Failed sign-ins per account and address.
    pub login_failures_per_account: u32,
    /// Failed sign-ins per address.
    pub login_failures_per_address: u32,
}

impl Default for FailureLimitSettings {
    /// Defaults sized for the threats: a few tries per client or account from one place, and a
    /// ceiling for one place (an office behind one NAT) far above honest mistakes.
    fn default() -> Self {
        Self {
            client_auth_failures_per_client: 10,
            client_auth_failures_per_address: 100,
            login_failures_per_account: 5,
            login_failures_per_address: 100,
        }
    }
}

impl FailureLimitSettings {
    /// No limits at all.
    pub const OFF: Self = Self {
        client_auth_failures_per_client: 0,
        client_auth_failures_per_address: 0,
        login_failures_per_account: 0,
        login_failures_per_address: 0,
    };
}

#[derive(Debug, Clone, Copy)]
struct Window {
    failures: u32,
    ends: DateTime<Utc>,
}

/// Failures per key in one-minute windows, bounded in memory.
#[derive(Debug)]
struct Counter<K> {
    /// Names the counter in the shared store's keys.
    name: &'static str,
    limit: u32,
    windows: Mutex<HashMap<K, Window>>,
}

impl<K: Hash + Eq + Clone> Counter<K> {
    fn new(name: &'static str, limit: u32) -> Self {
        Self {
            name,
            limit,
            windows: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone + SharedKey> Counter<K> {
    /// The key of `key` in the shared store: a hash, so no account or address is stored.
    fn shared_key(&self, key: &K) -> String {
        let mut hash = Sha256::new();
        hash.update(self.name.as_bytes());
        key.feed(&mut hash);
        hex::encode(hash.finalize())
    }

    /// Counts a failure here and, when the store shares counts, there; keeps the greater.
    async fn fail_shared(&self, store: &dyn Store, key: K, now: DateTime<Utc>) {
        if self.limit == 0 {
            return;
        }
        let shared_key = self.shared_key(&key);
        self.fail(key.clone(), now);
        match store.count_failure(&shared_key, now, now + WINDOW).await {
            Ok(Some((failures, ends))) => self.merge(key, failures, ends, now),
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "the shared failure count could not be updated"),
        }
    }

    /// Takes the shared count of `key` when it is greater than ours.
    fn merge(&self, key: K, failures: u32, ends: DateTime<Utc>, now: DateTime<Utc>) {
        if ends <= now {
            return;
        }
        let mut windows = self.windows();
        let window = windows.entry(key).or_insert(Window { failures: 0, ends });
        if window.ends <= now || window.failures < failures {
            *window = Window { failures, ends };
        }
    }

    /// Forgets `key` here and in the shared store.
    async fn clear_shared(&self, store: &dyn Store, key: &K) {
        if self.limit == 0 {
            return;
        }
        self.clear(key);
        if let Err(err) = store.clear_failures(&self.shared_key(key)).await {
            tracing::warn!(error = %err, "the shared failure count could not be cleared");
        }
    }
}

impl<K: Hash + Eq + Clone> Counter<K> {
    fn windows(&self) -> std::sync::MutexGuard<'_, HashMap<K, Window>> {
        self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Seconds until `key` may try again, when it is locked.
    fn locked(&self, key: &K, now: DateTime<Utc>) -> Option<u64> {
        if self.limit == 0 {
            return None;
        }
        let windows = self.windows();
        let window = windows.get(key)?;
        (window.ends > now && window.failures >= self.limit)
            .then(|| u64::try_from((window.ends - now).num_seconds()).unwrap_or(0).max(1))
    }

    fn fail(&self, key: K, now: DateTime<Utc>) {
        if self.limit == 0 {
            return;
        }
        let mut windows = self.windows();
        if windows.len() >= CAPACITY && !windows.contains_key(&key) {
            make_room(&mut windows, now);
        }
        let window = windows.entry(key).or_insert(Window {
            failures: 0,
            ends: now + WINDOW,
        });
        if window.ends <= now {
            *window = Window {
                failures: 0,
                ends: now + WINDOW,
            };
        }
        window.failures = window.failures.saturating_add(1);
    }

    fn clear(&self, key: &K) {
        if self.limit != 0 {
            self.windows().remove(key);
        }
    }
}

/// What a counter's key contributes to its shared hash.
trait SharedKey {
    fn feed(&self, hash: &mut Sha256);
}

impl SharedKey for IpAddr {
    fn feed(&self, hash: &mut Sha256) {
        hash.update([0]);
        hash.update(self.to_string().as_bytes());
    }
}

impl SharedKey for (String, IpAddr) {
    fn feed(&self, hash: &mut Sha256) {
        hash.update([0]);
        hash.update(self.0.as_bytes());
        self.1.feed(hash);
    }
}

/// Frees an eighth of a full table: expired windows first, then those with the fewest
/// failures (a flood of new keys has one each; a locked key has the most).
fn make_room<K: Hash + Eq + Clone>(windows: &mut HashMap<K, Window>, now: DateTime<Utc>) {
    windows.retain(|_, w| w.ends > now);
    let target = CAPACITY - CAPACITY / 8;
    if windows.len() > target {
        let mut counts: Vec<(u32, K)> = windows.iter().map(|(k, w)| (w.failures, k.clone())).collect();
        counts.sort_unstable_by_key(|(failures, _)| *failures);
        for (_, key) in counts.into_iter().take(windows.len() - target) {
            windows.remove(&key);
        }
    }
}

/// The failure limits of one server.
#[derive(Debug)]
pub(crate) struct FailureLimits {
    /// The server's clock (tests move it).
    clock: Arc<dyn Clock>,
    per_client: Counter<(String, IpAddr)>,
    clients_per_address: Counter<IpAddr>,
    per_account: Counter<(String, IpAddr)>,
    logins_per_address: Counter<IpAddr>,
}

/// The refusal of a locked key: `temporarily_unavailable` with the seconds to wait.
fn locked_out(wait: u64) -> OAuthError {
    OAuthError::new(ErrorCode::TemporarilyUnavailable)
        .with_description("Too many failed attempts. Try again later.")
        .with_retry_after(wait)
}

impl FailureLimits {
    pub(crate) fn new(settings: FailureLimitSettings, clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            per_client: Counter::new("client", settings.client_auth_failures_per_client),
            clients_per_address: Counter::new("client-address", settings.client_auth_failures_per_address),
            per_account: Counter::new("account", settings.login_failures_per_account),
            logins_per_address: Counter::new("login-address", settings.login_failures_per_address),
        }
    }

    /// Refuses a client that failed too often from this address (or this address).
    pub(crate) fn check_client(&self, client_id: &str, address: Option<IpAddr>) -> Result<(), OAuthError> {
        let Some(address) = address else { return Ok(()) };
        let now = self.clock.now();
        let wait = self
            .per_client
            .locked(&(client_id.to_owned(), address), now)
            .or_else(|| self.clients_per_address.locked(&address, now));
        wait.map_or(Ok(()), |wait| Err(locked_out(wait)))
    }

    /// Counts a failed client authentication or wrong user credentials, here and in `store`.
    pub(crate) async fn client_failed(&self, store: &dyn Store, client_id: &str, address: Option<IpAddr>) {
        if let Some(address) = address {
            let now = self.clock.now();
            self.per_client
                .fail_shared(store, (client_id.to_owned(), address), now)
                .await;
            self.clients_per_address.fail_shared(store, address, now).await;
        }
    }

    /// Refuses sign-ins to an account that failed too often from this address (or any from an
    /// address that failed too often).
    pub(crate) fn check_login(&self, account: &str, address: Option<IpAddr>) -> Result<(), OAuthError> {
        let Some(address) = address else { return Ok(()) };
        let now = self.clock.now();
        let wait = self
            .per_account
            .locked(&(account.to_lowercase(), address), now)
            .or_else(|| self.logins_per_address.locked(&address, now));
        wait.map_or(Ok(()), |wait| Err(locked_out(wait)))
    }

    /// Counts a failed sign-in, here and in `store`.
    pub(crate) async fn login_failed(&self, store: &dyn Store, account: &str, address: Option<IpAddr>) {
        if let Some(address) = address {
            let now = self.clock.now();
            self.per_account
                .fail_shared(store, (account.to_lowercase(), address), now)
                .await;
            self.logins_per_address.fail_shared(store, address, now).await;
        }
    }

    /// A successful sign-in clears its account's counter for this address, here and in `store`.
    pub(crate) async fn login_succeeded(&self, store: &dyn Store, account: &str, address: Option<IpAddr>) {
        if let Some(address) = address {
            self.per_account
                .clear_shared(store, &(account.to_lowercase(), address))
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)));
    const THERE: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)));

    #[tokio::test]
    async fn failures_lock_a_key_and_success_clears_an_account() {
        let store = crate::testing::MemoryStore::new();
        let limits = FailureLimits::new(
            FailureLimitSettings {
                client_auth_failures_per_client: 2,
                client_auth_failures_per_address: 3,
                login_failures_per_account: 2,
                login_failures_per_address: 10,
            },
            Arc::new(crate::clock::SystemClock),
        );
        limits.client_failed(&store, "c", HERE).await;
        assert!(limits.check_client("c", HERE).is_ok(), "under the limit");
        limits.client_failed(&store, "c", HERE).await;
        let locked = limits.check_client("c", HERE).unwrap_err();
        assert_eq!(locked.code(), ErrorCode::TemporarilyUnavailable);
        assert!(locked.retry_after().is_some_and(|s| (1..=60).contains(&s)));
        assert!(limits.check_client("c", THERE).is_ok(), "another address");
        assert!(limits.check_client("d", HERE).is_ok(), "another client");
        limits.client_failed(&store, "d", HERE).await;
        assert!(limits.check_client("e", HERE).is_err(), "the address's ceiling");
        assert!(limits.check_client("c", None).is_ok(), "no address, no limit");

        limits.login_failed(&store, "Ada@Example.com", HERE).await;
        limits.login_succeeded(&store, "ada@example.com", HERE).await;
        limits.login_failed(&store, "ada@example.com", HERE).await;
        assert!(
            limits.check_login("ada@example.com", HERE).is_ok(),
            "a success cleared the count"
        );
        limits.login_failed(&store, "ada@example.com", HERE).await;
        assert!(limits.check_login("ADA@example.com", HERE).is_err());
        assert!(limits.check_login("ada@example.com", THERE).is_ok());
    }

    #[test]
    fn a_flood_of_new_keys_evicts_the_flood_not_the_locked() {
        let counter = Counter::new("test", 3);
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        for _ in 0..3 {
            counter.fail(0u32, now);
        }
        for key in 1..(CAPACITY as u32 + 1000) {
            counter.fail(key, now);
        }
        assert!(counter.windows().len() <= CAPACITY);
        assert!(counter.locked(&0, now).is_some(), "still locked");
        assert!(counter.locked(&0, now + WINDOW).is_none(), "until the window ends");
    }
}
