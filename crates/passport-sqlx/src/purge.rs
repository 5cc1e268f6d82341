//! `passport purge` and the server's background purge, in bounded batches: each batch selects
//! at most [`BATCH`] ids in primary-key order (a read, which never blocks writers), then deletes
//! exactly those in one short statement that re-checks the condition, then pauses as long as
//! the batch took. So a purge of millions of rows never holds a write lock for long, and the
//! server keeps at least half of the database's write time while it runs. The SQL is the
//! dialect's (`sqlite.rs`, `postgres.rs`); the plan and the loop are here, once.

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use passport::{PurgeCounts, PurgeFilter, StoreError};

/// Rows one batch deletes at most.
pub(crate) const BATCH: usize = 1000;

/// The longest pause between two batches.
const MAX_PAUSE: Duration = Duration::from_millis(200);

/// One batch for a dialect to run: delete the rows of `table` matching `condition` (where
/// `{cutoff}` stands for the cutoff parameter) whose ids sort after `after`, at most [`BATCH`].
pub(crate) struct Batch {
    pub(crate) table: &'static str,
    pub(crate) condition: &'static str,
    pub(crate) cutoff: Option<DateTime<Utc>>,
    pub(crate) after: String,
}

/// What one batch did.
pub(crate) struct Done {
    /// Ids the batch selected (it is the last one when fewer than [`BATCH`]).
    pub(crate) selected: usize,
    /// The greatest id selected: the next batch starts after it.
    pub(crate) last: Option<String>,
    /// Rows deleted.
    pub(crate) deleted: u64,
}

/// Runs the purge `filter` asks for with the dialect's `batch`.
pub(crate) async fn run<F, Fut>(filter: PurgeFilter, mut batch: F) -> Result<PurgeCounts, StoreError>
where
    F: FnMut(Batch) -> Fut,
    Fut: Future<Output = Result<Done, StoreError>>,
{
    let tokens = match (filter.revoked, filter.expired_before.is_some()) {
        (true, true) => Some("revoked = TRUE OR expires_at < {cutoff}"),
        (true, false) => Some("revoked = TRUE"),
        (false, true) => Some("expires_at < {cutoff}"),
        (false, false) => None,
    };
    let mut counts = PurgeCounts::default();
    if let Some(condition) = tokens {
        let cutoff = filter.expired_before;
        counts.access_tokens = table(&mut batch, "oauth_access_tokens", condition, cutoff).await?;
        counts.refresh_tokens = table(&mut batch, "oauth_refresh_tokens", condition, cutoff).await?;
        counts.auth_codes = table(&mut batch, "oauth_auth_codes", condition, cutoff).await?;
        counts.device_codes = table(&mut batch, "oauth_device_codes", condition, cutoff).await?;
    }
    for sessions in [
        "passport_sessions",
        "oauth_pending_authorizations",
        "oauth_pushed_requests",
    ] {
        counts.sessions += table(&mut batch, sessions, "expires_at < {cutoff}", Some(filter.now)).await?;
    }
    Ok(counts)
}

async fn table<F, Fut>(
    batch: &mut F,
    table: &'static str,
    condition: &'static str,
    cutoff: Option<DateTime<Utc>>,
) -> Result<u64, StoreError>
where
    F: FnMut(Batch) -> Fut,
    Fut: Future<Output = Result<Done, StoreError>>,
{
    let mut after = String::new();
    let mut deleted = 0;
    loop {
        let started = Instant::now();
        let done = batch(Batch {
            table,
            condition,
            cutoff,
            after,
        })
        .await?;
        deleted += done.deleted;
        match done.last {
            Some(last) if done.selected >= BATCH => after = last,
            _ => return Ok(deleted),
        }
        tokio::time::sleep(started.elapsed().min(MAX_PAUSE)).await;
    }
}
