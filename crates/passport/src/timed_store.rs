//! Store query latency in one place: [`TimedStore`] wraps the configured [`Store`], delegates
//! every call and records how long it took in `passport_store_query_duration_seconds`, labelled
//! by the operation's name (a fixed list, so the label set stays bounded). The builder wraps
//! every store, so any backend (SQL, in-memory, a library user's own) is measured alike.
//!
//! The cost per call is two monotonic clock reads, two relaxed atomic additions and the boxed
//! future of one more `async_trait` call: tens of nanoseconds, against the tens of microseconds
//! or more of the query itself. Waiting for the revocation feed is a wait, not a query, and is
//! not timed.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::client::Client;
use crate::error::StoreError;
use crate::keyring::{KeyStore, StoredKey};
use crate::metrics::Metrics;
use crate::redirect::RedirectUri;
use crate::store::{
    AccessTokenRecord, AuthCodeRecord, AuthCodeStore, ClientStore, ConsentStore, DeviceCodeRecord, DeviceCodeStore,
    PendingAuthorizationRecord, PurgeCounts, PurgeFilter, PushedRequestRecord, RefreshTokenRecord, RevocationEvent,
    RevocationFeed, Revoked, Store, TokenStatus, TokenStore,
};

/// The operations, named as the store methods are (the `op` label).
macro_rules! ops {
    ($($op:ident),* $(,)?) => {
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy)]
        enum Op { $($op),* }

        /// The `op` label of each operation, in [`Op`]'s order.
        pub(crate) const OP_NAMES: &[&str] = &[$(stringify!($op)),*];
    };
}

ops![
    insert_client,
    find_client,
    list_clients,
    revoke_client,
    update_client_secret,
    insert_initial_access_token,
    initial_access_token_valid,
    set_client_registration,
    client_registration,
    record_client_assertion,
    clients_owned_by,
    update_client,
    insert_tokens,
    insert_token_batch,
    token_status,
    find_access_token,
    revoke_access_token,
    find_refresh_token,
    rotate_refresh_token,
    regrant_refresh_token,
    tokens_of_user,
    revoke_client_tokens,
    revoke_refresh_family,
    revoke_user_grants,
    purge,
    count_failure,
    record_dpop_proof,
    clear_failures,
    ping,
    insert_auth_code,
    find_auth_code,
    redeem_auth_code,
    granted_scopes,
    insert_device_code,
    find_device_code,
    find_pending_user_code,
    decide_device_code,
    record_device_poll,
    redeem_device_code,
    insert_pending,
    take_pending,
    insert_pushed_request,
    take_pushed_request,
    list_keys,
    insert_key,
    retire_key,
    revocation_head,
    revocations_after,
];

/// How many operations are timed.
pub(crate) const OPS: usize = OP_NAMES.len();

/// See the module documentation.
pub(crate) struct TimedStore {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl fmt::Debug for TimedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl TimedStore {
    pub(crate) fn new(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    async fn timed<T>(&self, op: Op, call: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let result = call.await;
        self.metrics.store_query(op as usize, started.elapsed());
        result
    }
}

#[async_trait]
impl ClientStore for TimedStore {
    async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        self.timed(Op::insert_client, self.inner.insert_client(client)).await
    }

    async fn find_client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        self.timed(Op::find_client, self.inner.find_client(id)).await
    }

    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        self.timed(Op::list_clients, self.inner.list_clients()).await
    }

    async fn revoke_client(&self, id: &str) -> Result<bool, StoreError> {
        self.timed(Op::revoke_client, self.inner.revoke_client(id)).await
    }

    async fn update_client_secret(&self, id: &str, secret_hash: &str) -> Result<(), StoreError> {
        self.timed(
            Op::update_client_secret,
            self.inner.update_client_secret(id, secret_hash),
        )
        .await
    }

    async fn clients_owned_by(&self, owner_id: &str) -> Result<Vec<Client>, StoreError> {
        self.timed(Op::clients_owned_by, self.inner.clients_owned_by(owner_id))
            .await
    }

    async fn update_client(
        &self,
        id: &str,
        name: &str,
        redirect_uris: &[RedirectUri],
        post_logout_redirect_uris: &[RedirectUri],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let call = self
            .inner
            .update_client(id, name, redirect_uris, post_logout_redirect_uris, now);
        self.timed(Op::update_client, call).await
    }

    async fn insert_initial_access_token(
        &self,
        id: &str,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let call = self.inner.insert_initial_access_token(id, created_at, expires_at);
        self.timed(Op::insert_initial_access_token, call).await
    }

    async fn initial_access_token_valid(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let call = self.inner.initial_access_token_valid(id, now);
        self.timed(Op::initial_access_token_valid, call).await
    }

    async fn set_client_registration(&self, client_id: &str, token_hash: &str) -> Result<(), StoreError> {
        let call = self.inner.set_client_registration(client_id, token_hash);
        self.timed(Op::set_client_registration, call).await
    }

    async fn record_client_assertion(
        &self,
        id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let call = self.inner.record_client_assertion(id, expires_at, now);
        self.timed(Op::record_client_assertion, call).await
    }

    async fn client_registration(&self, client_id: &str) -> Result<Option<String>, StoreError> {
        self.timed(Op::client_registration, self.inner.client_registration(client_id))
            .await
    }
}

#[async_trait]
impl TokenStore for TimedStore {
    async fn insert_tokens(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<(), StoreError> {
        self.timed(Op::insert_tokens, self.inner.insert_tokens(access, refresh))
            .await
    }

    async fn insert_token_batch(
        &self,
        batch: &[(AccessTokenRecord, Option<RefreshTokenRecord>)],
    ) -> Result<(), StoreError> {
        self.timed(Op::insert_token_batch, self.inner.insert_token_batch(batch))
            .await
    }

    async fn token_status(&self, access_token_id: &str) -> Result<Option<TokenStatus>, StoreError> {
        self.timed(Op::token_status, self.inner.token_status(access_token_id))
            .await
    }

    async fn find_access_token(&self, id: &str) -> Result<Option<AccessTokenRecord>, StoreError> {
        self.timed(Op::find_access_token, self.inner.find_access_token(id))
            .await
    }

    async fn revoke_access_token(&self, id: &str) -> Result<bool, StoreError> {
        self.timed(Op::revoke_access_token, self.inner.revoke_access_token(id))
            .await
    }

    async fn find_refresh_token(&self, id: &str) -> Result<Option<RefreshTokenRecord>, StoreError> {
        self.timed(Op::find_refresh_token, self.inner.find_refresh_token(id))
            .await
    }

    async fn rotate_refresh_token(
        &self,
        old_id: &str,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, StoreError> {
        let call = self.inner.rotate_refresh_token(old_id, access, refresh);
        self.timed(Op::rotate_refresh_token, call).await
    }

    async fn regrant_refresh_token(
        &self,
        old_id: &str,
        child_id: &str,
        access: &AccessTokenRecord,
        refresh: &RefreshTokenRecord,
    ) -> Result<Option<String>, StoreError> {
        let call = self.inner.regrant_refresh_token(old_id, child_id, access, refresh);
        self.timed(Op::regrant_refresh_token, call).await
    }

    async fn tokens_of_user(&self, user_id: &str, now: DateTime<Utc>) -> Result<Vec<AccessTokenRecord>, StoreError> {
        self.timed(Op::tokens_of_user, self.inner.tokens_of_user(user_id, now))
            .await
    }

    async fn revoke_client_tokens(&self, client_id: &str) -> Result<Vec<String>, StoreError> {
        self.timed(Op::revoke_client_tokens, self.inner.revoke_client_tokens(client_id))
            .await
    }

    async fn revoke_refresh_family(&self, family_id: &str) -> Result<Vec<String>, StoreError> {
        self.timed(Op::revoke_refresh_family, self.inner.revoke_refresh_family(family_id))
            .await
    }

    async fn revoke_user_grants(&self, user_id: &str) -> Result<Revoked, StoreError> {
        self.timed(Op::revoke_user_grants, self.inner.revoke_user_grants(user_id))
            .await
    }

    async fn purge(&self, filter: PurgeFilter) -> Result<PurgeCounts, StoreError> {
        self.timed(Op::purge, self.inner.purge(filter)).await
    }

    async fn record_dpop_proof(
        &self,
        id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.timed(Op::record_dpop_proof, self.inner.record_dpop_proof(id, expires_at, now))
            .await
    }

    async fn count_failure(
        &self,
        key: &str,
        now: DateTime<Utc>,
        ends: DateTime<Utc>,
    ) -> Result<Option<(u32, DateTime<Utc>)>, StoreError> {
        self.timed(Op::count_failure, self.inner.count_failure(key, now, ends))
            .await
    }

    async fn clear_failures(&self, key: &str) -> Result<(), StoreError> {
        self.timed(Op::clear_failures, self.inner.clear_failures(key)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.timed(Op::ping, self.inner.ping()).await
    }
}

#[async_trait]
impl AuthCodeStore for TimedStore {
    async fn insert_auth_code(&self, code: &AuthCodeRecord) -> Result<(), StoreError> {
        self.timed(Op::insert_auth_code, self.inner.insert_auth_code(code))
            .await
    }

    async fn find_auth_code(&self, id: &str) -> Result<Option<AuthCodeRecord>, StoreError> {
        self.timed(Op::find_auth_code, self.inner.find_auth_code(id)).await
    }

    async fn redeem_auth_code(
        &self,
        id: &str,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, StoreError> {
        self.timed(Op::redeem_auth_code, self.inner.redeem_auth_code(id, access, refresh))
            .await
    }

    async fn granted_scopes(
        &self,
        user_id: &str,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Vec<String>>, StoreError> {
        self.timed(Op::granted_scopes, self.inner.granted_scopes(user_id, client_id, now))
            .await
    }
}

#[async_trait]
impl DeviceCodeStore for TimedStore {
    async fn insert_device_code(&self, code: &DeviceCodeRecord) -> Result<(), StoreError> {
        self.timed(Op::insert_device_code, self.inner.insert_device_code(code))
            .await
    }

    async fn find_device_code(&self, id: &str) -> Result<Option<DeviceCodeRecord>, StoreError> {
        self.timed(Op::find_device_code, self.inner.find_device_code(id)).await
    }

    async fn find_pending_user_code(
        &self,
        user_code: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DeviceCodeRecord>, StoreError> {
        self.timed(
            Op::find_pending_user_code,
            self.inner.find_pending_user_code(user_code, now),
        )
        .await
    }

    async fn decide_device_code(
        &self,
        id: &str,
        user_id: &str,
        approved_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let call = self.inner.decide_device_code(id, user_id, approved_at);
        self.timed(Op::decide_device_code, call).await
    }

    async fn record_device_poll(&self, id: &str, polled_at: DateTime<Utc>, interval: i64) -> Result<(), StoreError> {
        let call = self.inner.record_device_poll(id, polled_at, interval);
        self.timed(Op::record_device_poll, call).await
    }

    async fn redeem_device_code(
        &self,
        id: &str,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, StoreError> {
        let call = self.inner.redeem_device_code(id, access, refresh);
        self.timed(Op::redeem_device_code, call).await
    }
}

#[async_trait]
impl ConsentStore for TimedStore {
    async fn insert_pending(&self, pending: &PendingAuthorizationRecord) -> Result<(), StoreError> {
        self.timed(Op::insert_pending, self.inner.insert_pending(pending)).await
    }

    async fn take_pending(
        &self,
        id: &str,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingAuthorizationRecord>, StoreError> {
        self.timed(Op::take_pending, self.inner.take_pending(id, session_id, now))
            .await
    }

    async fn insert_pushed_request(&self, request: &PushedRequestRecord) -> Result<(), StoreError> {
        self.timed(Op::insert_pushed_request, self.inner.insert_pushed_request(request))
            .await
    }

    async fn take_pushed_request(
        &self,
        id: &str,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<PushedRequestRecord>, StoreError> {
        self.timed(
            Op::take_pushed_request,
            self.inner.take_pushed_request(id, client_id, now),
        )
        .await
    }
}

#[async_trait]
impl KeyStore for TimedStore {
    async fn list_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        self.timed(Op::list_keys, self.inner.list_keys()).await
    }

    async fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        self.timed(Op::insert_key, self.inner.insert_key(key)).await
    }

    async fn retire_key(&self, kid: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.timed(Op::retire_key, self.inner.retire_key(kid, at)).await
    }
}

#[async_trait]
impl RevocationFeed for TimedStore {
    async fn revocation_head(&self) -> Result<i64, StoreError> {
        self.timed(Op::revocation_head, self.inner.revocation_head()).await
    }

    async fn revocations_after(&self, seq: i64, limit: usize) -> Result<Vec<RevocationEvent>, StoreError> {
        self.timed(Op::revocations_after, self.inner.revocations_after(seq, limit))
            .await
    }

    async fn wait_for_revocation(&self, timeout: std::time::Duration) {
        self.inner.wait_for_revocation(timeout).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_call_is_timed_under_its_own_name() {
        let metrics = Arc::new(Metrics::default());
        let store = TimedStore::new(Arc::new(crate::testing::MemoryStore::new()), metrics.clone());
        assert!(store.find_client("nobody").await.unwrap().is_none());
        assert!(store.token_status("none").await.unwrap().is_none());
        let text = metrics.render();
        assert!(
            text.contains("passport_store_query_duration_seconds_count{op=\"find_client\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("passport_store_query_duration_seconds_count{op=\"token_status\"} 1\n"));
        assert!(!text.contains("op=\"purge\""), "unused operations are left out");
        assert_eq!(OP_NAMES[Op::revocations_after as usize], "revocations_after");
    }
}
