//! Group commit for issued tokens: concurrent requests queue their token rows, and one writer
//! stores everything queued in one transaction ([`crate::TokenStore::insert_token_batch`]),
//! so a burst of N issuances costs one commit (one fsync on SQLite) instead of N. Each
//! request waits for the commit that holds its rows: no token is returned before it is
//! durable.
//!
//! The writer is a spawned task, not the request that found the queue idle, so a client that
//! disconnects mid-write cannot strand the others. When a batch fails (a client deleted while
//! its token was queued breaks a foreign key), its rows are retried one by one, so only the
//! request whose row is refused sees the error.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::error::StoreError;
use crate::store::{AccessTokenRecord, RefreshTokenRecord, Store};

/// The most token pairs written in one transaction (well inside SQLite's and PostgreSQL's
/// bind-parameter limits).
pub(crate) const MAX_BATCH: usize = 256;

/// One access token row and its refresh token row, if any.
pub(crate) type TokenRows = (AccessTokenRecord, Option<RefreshTokenRecord>);

type Reply = oneshot::Sender<Result<TokenRows, StoreError>>;

#[derive(Default)]
struct Queue {
    pending: Vec<(TokenRows, Reply)>,
    writing: bool,
}

/// The queue of token rows waiting for the writer.
#[derive(Default)]
pub(crate) struct GroupCommit {
    queue: Mutex<Queue>,
}

impl GroupCommit {
    /// Stores `rows` in the next group transaction and hands them back once it is committed.
    /// Without a Tokio runtime to run the writer on, stores them directly.
    pub(crate) async fn insert(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        rows: TokenRows,
    ) -> Result<TokenRows, StoreError> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            store.insert_tokens(&rows.0, rows.1.as_ref()).await?;
            return Ok(rows);
        };
        let (reply, answer) = oneshot::channel();
        let lead = {
            let mut queue = self.lock();
            queue.pending.push((rows, reply));
            !std::mem::replace(&mut queue.writing, true)
        };
        if lead {
            runtime.spawn(Arc::clone(self).write(Arc::clone(store)));
        }
        answer
            .await
            .map_err(|_| StoreError::Backend("the token writer stopped".into()))?
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes batches until the queue is empty. Whatever happens to this task (even its
    /// runtime shutting down), the guard hands the writer role back, so the next request
    /// writes what is left.
    async fn write(self: Arc<Self>, store: Arc<dyn Store>) {
        struct Release<'a>(Option<&'a GroupCommit>);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                if let Some(group) = self.0 {
                    group.lock().writing = false;
                }
            }
        }
        let mut release = Release(Some(&self));
        loop {
            let batch: Vec<(TokenRows, Reply)> = {
                let mut queue = self.lock();
                if queue.pending.is_empty() {
                    queue.writing = false;
                    release.0 = None;
                    return;
                }
                let take = queue.pending.len().min(MAX_BATCH);
                queue.pending.drain(..take).collect()
            };
            let (rows, replies): (Vec<TokenRows>, Vec<Reply>) = batch.into_iter().unzip();
            tracing::trace!(rows = rows.len(), "group commit");
            match store.insert_token_batch(&rows).await {
                Ok(()) => {
                    for (rows, reply) in rows.into_iter().zip(replies) {
                        let _ = reply.send(Ok(rows));
                    }
                }
                Err(_) if rows.len() > 1 => {
                    for (rows, reply) in rows.into_iter().zip(replies) {
                        let stored = store.insert_tokens(&rows.0, rows.1.as_ref()).await;
                        let _ = reply.send(stored.map(|()| rows));
                    }
                }
                Err(err) => {
                    // A batch of one: its only request gets the error.
                    if let Some(reply) = replies.into_iter().next() {
                        let _ = reply.send(Err(err));
                    }
                }
            }
        }
    }
}
