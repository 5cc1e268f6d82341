//! Counters and histograms of the core, rendered in the Prometheus text exposition format
//! (version 0.0.4) by [`Metrics::render`]. Reach them with [`crate::Passport::metrics`].
//!
//! The hot paths (token issue, bearer check) only bump relaxed atomics: every label set here is
//! a small fixed enum (grant × key algorithm, OAuth error code, bearer outcome, cache), so each
//! family is an array of `AtomicU64` indexed by its labels, with no lock, no map and no
//! allocation per request. Histograms have fixed buckets, one atomic each. Labels never carry
//! client ids, user ids or token material.
//!
//! The adapters add families of their own through [`Collect`] (the web adapter's request
//! latencies, the SQL crate's pool gauges), registered once per type with
//! [`Metrics::collector`]; a scrape renders them after the core's.
//!
//! A hand-rolled renderer keeps the core free of a metrics dependency: the format is a few
//! lines of text per sample, and the `metrics` or `prometheus-client` crates would bring a
//! registry with locks or string-keyed maps on the paths we keep lock-free.

use std::any::{Any, TypeId};
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::client::GrantType;
use crate::error::ErrorCode;
use crate::jwt::TokenInvalid;
use crate::keys::Algorithm;

/// Upper bounds of the histogram buckets, in seconds (100 µs to 10 s; `+Inf` is implied).
pub const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// [`BUCKETS`] in nanoseconds, for comparing without floating point.
const BUCKET_NANOS: [u64; 16] = {
    let mut nanos = [0u64; 16];
    let mut i = 0;
    while i < 16 {
        nanos[i] = (BUCKETS[i] * 1e9) as u64;
        i += 1;
    }
    nanos
};

/// A histogram with the fixed [`BUCKETS`]: one relaxed atomic per bucket and one for the sum.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    buckets: [AtomicU64; 17],
    /// The sum of the observations, in nanoseconds.
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKET_NANOS.partition_point(|&bound| bound < nanos);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// How many observations were recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }
}

/// How a check of [`crate::Passport::authenticate_bearer`] ended: the `outcome` label of
/// `passport_bearer_checks_total`, one per [`TokenInvalid`] reason and `valid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BearerOutcome {
    /// The token was accepted.
    Valid,
    /// Not a JWT, a bad signature, an unknown key.
    Malformed,
    /// `exp` has passed.
    Expired,
    /// `nbf` or `iat` lies in the future.
    NotYetValid,
    /// The token, its row or its client is revoked (or the row was purged).
    Revoked,
    /// The token belongs to another user provider.
    WrongProvider,
    /// The database could not be asked.
    Unavailable,
}

impl BearerOutcome {
    const ALL: [Self; 7] = [
        Self::Valid,
        Self::Malformed,
        Self::Expired,
        Self::NotYetValid,
        Self::Revoked,
        Self::WrongProvider,
        Self::Unavailable,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Malformed => "malformed",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Revoked => "revoked",
            Self::WrongProvider => "wrong_provider",
            Self::Unavailable => "unavailable",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl From<TokenInvalid> for BearerOutcome {
    fn from(reason: TokenInvalid) -> Self {
        match reason {
            TokenInvalid::Malformed => Self::Malformed,
            TokenInvalid::Expired => Self::Expired,
            TokenInvalid::NotYetValid => Self::NotYetValid,
            TokenInvalid::Revoked => Self::Revoked,
            TokenInvalid::WrongProvider => Self::WrongProvider,
            TokenInvalid::Unavailable => Self::Unavailable,
        }
    }
}

/// The caches whose lookups are counted (`cache` label of `passport_cache_lookups_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cache {
    /// The bearer check's tokens.
    Token,
    /// The token endpoint's client rows.
    Client,
    /// Users loaded for bearer tokens.
    User,
}

impl Cache {
    const ALL: [Self; 3] = [Self::Token, Self::Client, Self::User];

    fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Client => "client",
            Self::User => "user",
        }
    }
}

/// Families an adapter adds to a scrape (see [`Metrics::collector`]).
pub trait Collect: Send + Sync + fmt::Debug {
    /// Writes this collector's families.
    fn collect(&self, out: &mut Exposition);
}

/// What a collector registered: its type (one per type), the collector as [`Any`] to hand it
/// back, and as [`Collect`] to render it.
type Registered = (TypeId, Arc<dyn Any + Send + Sync>, Arc<dyn Collect>);

const GRANTS: usize = GrantType::ALL.len();
const ALGORITHMS: usize = Algorithm::ALL.len();
const CODES: usize = ErrorCode::ALL.len();

/// The core's metrics (see the module documentation).
#[derive(Debug)]
pub struct Metrics {
    tokens_issued: [AtomicU64; GRANTS * ALGORITHMS],
    token_errors: [AtomicU64; CODES],
    bearer_checks: [AtomicU64; BearerOutcome::ALL.len()],
    /// Hit, miss per cache.
    cache_lookups: [[AtomicU64; 2]; Cache::ALL.len()],
    events_delivered: AtomicU64,
    events_dropped: AtomicU64,
    store_queries: [Histogram; crate::timed_store::OPS],
    collectors: RwLock<Vec<Registered>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            tokens_issued: std::array::from_fn(|_| AtomicU64::new(0)),
            token_errors: std::array::from_fn(|_| AtomicU64::new(0)),
            bearer_checks: std::array::from_fn(|_| AtomicU64::new(0)),
            cache_lookups: std::array::from_fn(|_| [AtomicU64::new(0), AtomicU64::new(0)]),
            events_delivered: AtomicU64::new(0),
            events_dropped: AtomicU64::new(0),
            store_queries: std::array::from_fn(|_| Histogram::default()),
            collectors: RwLock::new(Vec::new()),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn grant_index(grant: GrantType) -> usize {
    GrantType::ALL.iter().position(|g| *g == grant).unwrap_or(0)
}

fn algorithm_index(alg: Algorithm) -> usize {
    Algorithm::ALL.iter().position(|a| *a == alg).unwrap_or(0)
}

impl Metrics {
    /// An access token was issued and stored.
    pub(crate) fn token_issued(&self, grant: GrantType, alg: Algorithm) {
        bump(&self.tokens_issued[grant_index(grant) * ALGORITHMS + algorithm_index(alg)]);
    }

    /// The token endpoint answered an error. The core counts the errors of
    /// [`crate::Passport::issue_token`]; an adapter counts those it answers itself (a malformed
    /// body, a rate limit).
    pub fn token_error(&self, code: ErrorCode) {
        if let Some(i) = ErrorCode::ALL.iter().position(|c| *c == code) {
            bump(&self.token_errors[i]);
        }
    }

    /// A check of [`crate::Passport::authenticate_bearer`] ended with `outcome`.
    pub(crate) fn bearer_check(&self, outcome: BearerOutcome) {
        bump(&self.bearer_checks[outcome.index()]);
    }

    /// A cache was asked; `hit` says whether it knew the answer.
    pub(crate) fn cache_lookup(&self, cache: Cache, hit: bool) {
        bump(&self.cache_lookups[cache as usize][usize::from(!hit)]);
    }

    /// An event reached the listeners.
    pub(crate) fn event_delivered(&self) {
        bump(&self.events_delivered);
    }

    /// An event was dropped (the queue was full).
    pub(crate) fn event_dropped(&self) {
        bump(&self.events_dropped);
    }

    /// A store call took `elapsed`.
    pub(crate) fn store_query(&self, op: usize, elapsed: Duration) {
        if let Some(histogram) = self.store_queries.get(op) {
            histogram.observe(elapsed);
        }
    }

    /// The collector of type `T`, made by `make` and registered on first use; later calls
    /// (for the same [`crate::Passport`]) return the same one, so its families are rendered
    /// once.
    pub fn collector<T: Collect + 'static>(&self, make: impl FnOnce() -> T) -> Arc<T> {
        let wanted = TypeId::of::<T>();
        let mut collectors = self.collectors.write().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = collectors
            .iter()
            .find(|(id, _, _)| *id == wanted)
            .and_then(|(_, any, _)| any.clone().downcast::<T>().ok())
        {
            return found;
        }
        let made = Arc::new(make());
        collectors.push((wanted, made.clone(), made.clone()));
        made
    }

    /// Every family, in the Prometheus text format (`Content-Type: text/plain; version=0.0.4`).
    pub fn render(&self) -> String {
        let mut out = Exposition::default();
        self.collect_core(&mut out);
        let collectors: Vec<Arc<dyn Collect>> = self
            .collectors
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(_, _, c)| c.clone())
            .collect();
        for collector in collectors {
            collector.collect(&mut out);
        }
        out.finish()
    }

    fn collect_core(&self, out: &mut Exposition) {
        out.family(
            "passport_build_info",
            "gauge",
            "The running version of passport (always 1).",
        );
        out.sample("passport_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1);

        out.family(
            "passport_tokens_issued_total",
            "counter",
            "Access tokens issued, by grant and signing algorithm.",
        );
        for (g, grant) in GrantType::ALL.iter().enumerate() {
            for (a, alg) in Algorithm::ALL.iter().enumerate() {
                let value = load(&self.tokens_issued[g * ALGORITHMS + a]);
                out.sample(
                    "passport_tokens_issued_total",
                    &[("grant", grant.as_str()), ("alg", alg.as_str())],
                    value,
                );
            }
        }

        out.family(
            "passport_token_errors_total",
            "counter",
            "Token endpoint errors, by OAuth error code.",
        );
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            out.sample(
                "passport_token_errors_total",
                &[("error", code.as_str())],
                load(&self.token_errors[i]),
            );
        }

        out.family(
            "passport_bearer_checks_total",
            "counter",
            "Bearer token checks, by outcome.",
        );
        for outcome in BearerOutcome::ALL {
            out.sample(
                "passport_bearer_checks_total",
                &[("outcome", outcome.as_str())],
                load(&self.bearer_checks[outcome.index()]),
            );
        }

        out.family(
            "passport_cache_lookups_total",
            "counter",
            "Cache lookups, by cache and result (hit ratio: hit / (hit + miss)).",
        );
        for cache in Cache::ALL {
            for (r, result) in ["hit", "miss"].into_iter().enumerate() {
                out.sample(
                    "passport_cache_lookups_total",
                    &[("cache", cache.as_str()), ("result", result)],
                    load(&self.cache_lookups[cache as usize][r]),
                );
            }
        }

        out.family(
            "passport_events_delivered_total",
            "counter",
            "Events handed to the event listeners.",
        );
        out.sample("passport_events_delivered_total", &[], load(&self.events_delivered));
        out.family(
            "passport_events_dropped_total",
            "counter",
            "Events dropped because the listeners' queue was full.",
        );
        out.sample("passport_events_dropped_total", &[], load(&self.events_dropped));

        out.family(
            "passport_store_query_duration_seconds",
            "histogram",
            "Store calls (database queries and transactions), by operation.",
        );
        for (op, histogram) in crate::timed_store::OP_NAMES.iter().zip(&self.store_queries) {
            // Only the operations this process has used: about 40 exist.
            if histogram.count() > 0 {
                out.histogram("passport_store_query_duration_seconds", &[("op", op)], histogram);
            }
        }
    }
}

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// A scrape being written: families in the Prometheus text format. [`Collect`] implementations
/// write theirs with [`family`](Self::family) followed by its samples.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// Starts a family: its `# HELP` and `# TYPE` lines (`kind`: `counter`, `gauge` or
    /// `histogram`).
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One sample of a counter or gauge. Label values are escaped.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl fmt::Display) {
        self.text.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.text, " {value}");
    }

    /// The `_bucket`, `_sum` and `_count` samples of one histogram of a `histogram` family.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], histogram: &Histogram) {
        // One pass over the buckets, so `+Inf` and `_count` agree even during observations.
        let mut cumulative = 0;
        for (i, bucket) in histogram.buckets.iter().enumerate() {
            cumulative += load(bucket);
            let le = BUCKETS.get(i).map_or_else(|| "+Inf".to_owned(), f64::to_string);
            let _ = write!(self.text, "{name}_bucket");
            self.labels(labels, Some(&le));
            let _ = writeln!(self.text, " {cumulative}");
        }
        let sum = load(&histogram.sum_nanos) as f64 / 1e9;
        let _ = write!(self.text, "{name}_sum");
        self.labels(labels, None);
        let _ = writeln!(self.text, " {sum}");
        let _ = write!(self.text, "{name}_count");
        self.labels(labels, None);
        let _ = writeln!(self.text, " {cumulative}");
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.text.push('{');
        let le = le.map(|le| ("le", le));
        for (i, (name, value)) in labels.iter().copied().chain(le).enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            self.text.push_str(name);
            self.text.push_str("=\"");
            for c in value.chars() {
                match c {
                    '\\' => self.text.push_str("\\\\"),
                    '"' => self.text.push_str("\\\""),
                    '\n' => self.text.push_str("\\n"),
                    c => self.text.push(c),
                }
            }
            self.text.push('"');
        }
        self.text.push('}');
    }

    /// The text written so far.
    pub fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_agree_with_their_count() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_micros(100));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let mut out = Exposition::default();
        out.histogram("x", &[("op", "a\"b")], &h);
        let text = out.finish();
        assert!(text.contains("x_bucket{op=\"a\\\"b\",le=\"0.0001\"} 2\n"), "{text}");
        assert!(text.contains("x_bucket{op=\"a\\\"b\",le=\"0.005\"} 3\n"), "{text}");
        assert!(text.contains("x_bucket{op=\"a\\\"b\",le=\"10\"} 3\n"), "{text}");
        assert!(text.contains("x_bucket{op=\"a\\\"b\",le=\"+Inf\"} 4\n"), "{text}");
        assert!(text.contains("x_count{op=\"a\\\"b\"} 4\n"), "{text}");
        assert_eq!(h.count(), 4);
    }

    #[test]
    fn counters_render_every_label_set() {
        let m = Metrics::default();
        m.token_issued(GrantType::ClientCredentials, Algorithm::ES256);
        m.token_error(ErrorCode::InvalidClient);
        m.bearer_check(BearerOutcome::Revoked);
        m.cache_lookup(Cache::Token, false);
        let text = m.render();
        assert!(text.contains("passport_tokens_issued_total{grant=\"client_credentials\",alg=\"ES256\"} 1\n"));
        assert!(text.contains("passport_tokens_issued_total{grant=\"password\",alg=\"RS256\"} 0\n"));
        assert!(text.contains("passport_token_errors_total{error=\"invalid_client\"} 1\n"));
        assert!(text.contains("passport_bearer_checks_total{outcome=\"revoked\"} 1\n"));
        assert!(text.contains("passport_cache_lookups_total{cache=\"token\",result=\"miss\"} 1\n"));
        assert!(text.contains("passport_build_info{version=\""));
        assert!(
            !text.contains("passport_store_query_duration_seconds_bucket"),
            "no store call yet"
        );
    }

    #[tokio::test]
    async fn the_core_counts_issues_errors_checks_and_cache_lookups() {
        use crate::{ClientKind, NewClient, Passport, TokenRequest};
        let passport = Passport::for_tests();
        let (client, secret) = passport
            .create_client(NewClient::new("Service", ClientKind::ClientCredentials))
            .await
            .unwrap();
        let request = |secret: &str| {
            TokenRequest::new(
                [
                    ("grant_type".to_owned(), "client_credentials".to_owned()),
                    ("client_id".to_owned(), client.id.to_string()),
                    ("client_secret".to_owned(), secret.to_owned()),
                ],
                None,
            )
        };
        let token = passport
            .issue_token(&request(secret.unwrap().expose_secret()))
            .await
            .unwrap();
        assert!(passport.issue_token(&request("wrong")).await.is_err());
        passport.authenticate_bearer(&token.access_token).await.unwrap();
        passport.authenticate_bearer(&token.access_token).await.unwrap();
        assert!(passport.authenticate_bearer("junk").await.is_err());

        let m = passport.metrics();
        let issued = GrantType::ALL
            .iter()
            .position(|g| *g == GrantType::ClientCredentials)
            .unwrap()
            * ALGORITHMS;
        assert_eq!(load(&m.tokens_issued[issued]), 1, "RS256 is the test key");
        let invalid_client = ErrorCode::ALL
            .iter()
            .position(|c| *c == ErrorCode::InvalidClient)
            .unwrap();
        assert_eq!(load(&m.token_errors[invalid_client]), 1);
        assert_eq!(load(&m.bearer_checks[BearerOutcome::Valid.index()]), 2);
        assert_eq!(load(&m.bearer_checks[BearerOutcome::Malformed.index()]), 1);
        // Until the revocation watcher runs the cache is not trusted: every lookup misses.
        let [hit, miss] = &m.cache_lookups[Cache::Token as usize];
        assert_eq!((load(hit), load(miss)), (0, 3));
        let text = m.render();
        assert!(text.contains("passport_store_query_duration_seconds_count{op=\"insert_client\"} 1\n"));
    }

    #[derive(Debug, Default)]
    struct Extra;

    impl Collect for Extra {
        fn collect(&self, out: &mut Exposition) {
            out.family("extra", "gauge", "An adapter's family.");
            out.sample("extra", &[], 7);
        }
    }

    #[test]
    fn a_collector_is_registered_once_per_type() {
        let m = Metrics::default();
        let first = m.collector(|| Extra);
        let second = m.collector(|| Extra);
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(m.render().matches("# TYPE extra gauge").count(), 1);
    }
}
