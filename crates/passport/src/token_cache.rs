//! The bearer check's cache: a token seen and found live is remembered, so the next check of the
//! very same token (keyed by the SHA-256 of the whole string: one bit different is a miss)
//! skips both the signature verification and the database.
//!
//! Revocation stays immediate. On this instance, every revocation evicts what it revoked before
//! it returns. Revocations made elsewhere (another instance, the CLI, an application writing
//! the rows itself) reach the cache through the database's revocation feed: triggers append
//! every revoked token, revoked or deleted client, deleted user and retired key to
//! `passport_revocations`, in order, and every instance applies what follows the last entry it
//! applied, at least once a second (PostgreSQL's `LISTEN/NOTIFY` only wakes it sooner; see
//! [`crate::Passport::watch_revocations`]). Until that watcher runs, while the feed cannot be
//! read, or when it has not been read for longer than [`FEED_STALE_AFTER`], the cache is not
//! trusted: checks go to the database. A store without a feed (the in-memory one) serves one
//! instance, whose own evictions are all there is to know.
//!
//! A check that read the database before a revocation and stores its answer after it would
//! bring a revoked token back: every eviction advances an epoch, and an answer is stored only
//! if the epoch it started under is still current.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::client_cache::ClientCache;
use crate::passport::AccessToken;

/// Tokens remembered at most (about 1 KB each).
pub const TOKEN_CACHE_CAPACITY: usize = 50_000;

/// How long the feed may go unread before the cache stops being trusted.
pub const FEED_STALE_AFTER: Duration = Duration::from_secs(3);

/// What a revocation takes out of the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Forget {
    /// Tokens by id (`jti`).
    Tokens(Vec<String>),
    /// Every token of a client.
    Client(String),
    /// Every token of a user.
    User(String),
    /// Everything (a key was retired).
    All,
}

#[derive(Debug)]
struct Entry {
    token: Arc<AccessToken>,
    /// The signing key's id (a retired key takes its tokens with it).
    kid: Option<String>,
    /// Not before, in Unix seconds.
    nbf: i64,
    /// Remembered until (bounded by the token's expiry).
    until: DateTime<Utc>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct TokenCache {
    entries: RwLock<HashMap<[u8; 32], Entry>>,
    /// Advanced by every eviction.
    epoch: AtomicU64,
    /// The revocation feed: the last entry applied, and when it was last read.
    feed: Feed,
    /// How long an answer is kept at most (one second in Laravel compatibility mode, where rows
    /// change under us without the feed knowing).
    max_age: chrono::TimeDelta,
    enabled: bool,
    /// The token endpoint's client rows, evicted with the tokens.
    clients: ClientCache,
    /// Users loaded for bearer tokens, by (provider, id), for at most [`USER_TTL`].
    users: RwLock<HashMap<String, UsersOf>>,
}

/// One provider's cached users, by id, with when each was loaded.
type UsersOf = HashMap<String, (Arc<crate::user::User>, Instant)>;

/// How long a user loaded for a bearer token is reused (a deletion anywhere evicts it at once
/// through the feed; other changes show within this).
pub const USER_TTL: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Feed {
    /// Whether the feed has been read at least once.
    present: AtomicBool,
    /// The store has no feed: one instance, local evictions only.
    local_only: AtomicBool,
    last_seq: AtomicI64,
    read_at: RwLock<Option<Instant>>,
}

impl TokenCache {
    /// A cache; `enabled: false` makes every check go to the database.
    pub(crate) fn new(enabled: bool, max_age: chrono::TimeDelta) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            feed: Feed {
                present: AtomicBool::new(false),
                local_only: AtomicBool::new(false),
                last_seq: AtomicI64::new(0),
                read_at: RwLock::new(None),
            },
            max_age,
            enabled,
            clients: ClientCache::default(),
            users: RwLock::new(HashMap::new()),
        }
    }

    /// Whether cached answers may be used: on, and the feed (where there is one) fresh.
    fn trusted(&self) -> bool {
        if !self.enabled {
            return false;
        }
        if self.feed.local_only.load(Ordering::Acquire) {
            return true;
        }
        self.feed_fresh()
    }

    /// The token remembered for this hash, if live at `now` and the cache is trusted.
    pub(crate) fn get(&self, key: &[u8; 32], now: DateTime<Utc>) -> Option<Arc<AccessToken>> {
        if !self.trusted() {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get(key)?;
        (entry.until > now && entry.nbf <= now.timestamp() + crate::jwt::NOT_BEFORE_LEEWAY).then(|| entry.token.clone())
    }

    /// The epoch to pass to [`Self::insert`] (read before the database is).
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Remembers a live token, unless something was evicted since `epoch`.
    pub(crate) fn insert(
        &self,
        key: [u8; 32],
        token: Arc<AccessToken>,
        kid: Option<String>,
        nbf: i64,
        now: DateTime<Utc>,
        epoch: u64,
    ) {
        if !self.enabled {
            return;
        }
        let until = token.expires_at.min(now + self.max_age);
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        if entries.len() >= TOKEN_CACHE_CAPACITY {
            // Expired ones first, then an eighth of the rest (whichever the map yields).
            entries.retain(|_, e| e.until > now);
            let excess = entries
                .len()
                .saturating_sub(TOKEN_CACHE_CAPACITY - TOKEN_CACHE_CAPACITY / 8);
            let doomed: Vec<[u8; 32]> = entries.keys().take(excess).copied().collect();
            for key in doomed {
                entries.remove(&key);
            }
        }
        entries.insert(key, Entry { token, kid, nbf, until });
    }

    /// Takes out what `forget` names (all of one batch of revocations in one pass).
    pub fn forget(&self, forget: &[Forget]) {
        if forget.is_empty() {
            return;
        }
        let mut tokens = HashSet::new();
        let mut clients = HashSet::new();
        let mut users = HashSet::new();
        let mut all = false;
        for f in forget {
            match f {
                Forget::Tokens(ids) => tokens.extend(ids.iter().map(String::as_str)),
                Forget::Client(id) => {
                    clients.insert(id.as_str());
                }
                Forget::User(id) => {
                    users.insert(id.as_str());
                }
                Forget::All => all = true,
            }
        }
        if all {
            self.clients.clear();
        } else {
            for id in &clients {
                self.clients.forget(id);
            }
        }
        if all || !users.is_empty() {
            let mut cached = self.users.write().unwrap_or_else(|p| p.into_inner());
            self.epoch.fetch_add(1, Ordering::AcqRel);
            for of_provider in cached.values_mut() {
                of_provider.retain(|id, _| !all && !users.contains(id.as_str()));
            }
        }
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if all {
            entries.clear();
            return;
        }
        entries.retain(|_, e| {
            !(tokens.contains(e.token.id.as_str())
                || clients.contains(e.token.client_id.as_str())
                || e.token.user_id.as_deref().is_some_and(|u| users.contains(u)))
        });
    }

    /// Takes out the tokens signed by keys no longer in the set.
    pub(crate) fn forget_keys_not_in(&self, kids: &[&str]) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.retain(|_, e| e.kid.as_deref().is_none_or(|kid| kids.contains(&kid)));
    }

    /// The client cache, when caching is on.
    pub(crate) fn clients(&self) -> Option<&ClientCache> {
        self.enabled.then_some(&self.clients)
    }

    /// The user `id` of `provider`, if loaded less than [`USER_TTL`] ago and the cache is
    /// trusted.
    pub(crate) fn user(&self, provider: &str, id: &str) -> Option<Arc<crate::user::User>> {
        if !self.trusted() {
            return None;
        }
        let users = self.users.read().unwrap_or_else(|p| p.into_inner());
        let (user, at) = users.get(provider)?.get(id)?;
        (at.elapsed() < USER_TTL).then(|| user.clone())
    }

    /// Remembers a user loaded at `epoch`, unless something was evicted since.
    pub(crate) fn insert_user(&self, provider: &str, user: Arc<crate::user::User>, epoch: u64) {
        if !self.enabled {
            return;
        }
        let mut users = self.users.write().unwrap_or_else(|p| p.into_inner());
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        let of_provider = users.entry(provider.to_owned()).or_default();
        if of_provider.len() >= TOKEN_CACHE_CAPACITY / 5 {
            of_provider.retain(|_, (_, at)| at.elapsed() < USER_TTL);
            if of_provider.len() >= TOKEN_CACHE_CAPACITY / 5 {
                of_provider.clear();
            }
        }
        of_provider.insert(user.id.clone(), (user, Instant::now()));
    }

    /// How many tokens are remembered.
    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The feed position this instance has applied.
    pub(crate) fn feed_position(&self) -> Option<i64> {
        self.feed
            .present
            .load(Ordering::Acquire)
            .then(|| self.feed.last_seq.load(Ordering::Acquire))
    }

    /// Records that the feed was read up to `seq` just now (the first read starts it).
    pub(crate) fn feed_read(&self, seq: i64) {
        self.feed.last_seq.store(seq, Ordering::Release);
        *self.feed.read_at.write().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        self.feed.present.store(true, Ordering::Release);
    }

    /// Whether the feed was read recently enough to trust what it left out.
    pub(crate) fn feed_fresh(&self) -> bool {
        let read_at = *self.feed.read_at.read().unwrap_or_else(|p| p.into_inner());
        read_at.is_some_and(|at| at.elapsed() < FEED_STALE_AFTER)
    }

    /// The store keeps no feed: trust local evictions alone.
    pub(crate) fn feed_absent(&self) {
        self.feed.local_only.store(true, Ordering::Release);
    }

    /// The feed could not be read: stop trusting the cache until it can.
    pub(crate) fn feed_failed(&self) {
        *self.feed.read_at.write().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

impl crate::passport::Passport {
    /// Applies the revocation feed to the token cache until the end of time (a loop; spawn it,
    /// as `passport serve` does): revocations made elsewhere reach this instance within about
    /// half a second (at once on PostgreSQL, woken by `NOTIFY`). Until it has read the feed
    /// once, and whenever it cannot, the cache is not trusted and checks go to the database.
    /// With a store that keeps no feed (one instance) it returns at once.
    pub async fn watch_revocations(self) {
        const POLL: Duration = Duration::from_millis(500);
        const BATCH: usize = 1000;
        let cache = self.token_cache();
        let store = self.store().clone();
        // Start from the newest entry: the cache starts empty, so nothing older matters.
        loop {
            match store.revocation_head().await {
                Ok(seq) => {
                    cache.feed_read(seq);
                    break;
                }
                Err(crate::error::StoreError::Unsupported(_)) => {
                    cache.feed_absent();
                    return;
                }
                Err(err) => {
                    cache.feed_failed();
                    tracing::warn!(error = %err, "the revocation feed cannot be read: bearer checks go to the database");
                    tokio::time::sleep(POLL).await;
                }
            }
        }
        loop {
            store.wait_for_revocation(POLL).await;
            if !cache.feed_fresh() {
                // Unread for too long (a failure, a suspended process): entries it missed may
                // have been purged from the feed. Forget everything and start from its head.
                match store.revocation_head().await {
                    Ok(seq) => {
                        cache.forget(&[Forget::All]);
                        cache.feed_read(seq);
                    }
                    Err(err) => {
                        cache.feed_failed();
                        tracing::warn!(error = %err, "the revocation feed cannot be read: bearer checks go to the database");
                    }
                }
                continue;
            }
            let Some(mut last) = cache.feed_position() else {
                continue;
            };
            loop {
                match store.revocations_after(last, BATCH).await {
                    Ok(events) => {
                        let full = events.len() == BATCH;
                        if let Some(newest) = events.last() {
                            last = newest.seq;
                        }
                        let keys_changed = events.iter().any(|e| e.kind == crate::store::RevocationKind::Key);
                        let forget: Vec<Forget> = events.into_iter().map(forget_for).collect();
                        if keys_changed {
                            // A key retired elsewhere: load the key set before the cache forgets,
                            // so no check in between verifies with the retired key and caches it.
                            if let Err(err) = self.refresh_keys().await {
                                tracing::warn!(error = %err, "reloading the signing keys failed");
                            }
                        }
                        cache.forget(&forget);
                        cache.feed_read(last);
                        if !full {
                            break;
                        }
                    }
                    Err(err) => {
                        cache.feed_failed();
                        tracing::warn!(error = %err, "the revocation feed cannot be read: bearer checks go to the database");
                        break;
                    }
                }
            }
        }
    }
}

fn forget_for(event: crate::store::RevocationEvent) -> Forget {
    use crate::store::RevocationKind;
    match event.kind {
        RevocationKind::Token => Forget::Tokens(vec![event.subject]),
        RevocationKind::Client => Forget::Client(event.subject),
        RevocationKind::User => Forget::User(event.subject),
        RevocationKind::Key => Forget::All,
    }
}
