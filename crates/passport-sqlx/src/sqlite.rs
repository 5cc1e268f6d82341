//! The SQLite store (the embedded default). Numbered `?N` parameters; `RETURNING` for the ids a
//! revocation changed. SQLite serializes writers, so every single-use step (`UPDATE … WHERE
//! revoked = FALSE`) decides its race on its own, and a family revocation needs one pass.
//!
//! Hot paths: issuing a token is one `INSERT` (two in one transaction when a refresh token comes
//! with it); checking a token is one primary-key read joined with its client.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use passport::{
    AccessTokenRecord, AuthCodeRecord, AuthCodeStore, Client, ClientStore, ConsentStore, DeviceCodeRecord,
    DeviceCodeStore, PendingAuthorizationRecord, PurgeCounts, PurgeFilter, PushedRequestRecord, RedirectUri,
    RefreshTokenRecord, Revoked, SessionRecord, SessionStore, StoreError, TokenStatus, TokenStore,
};
use sqlx::{Row as _, Sqlite, SqlitePool};

use crate::migrate::{self, MigrateError, SQLITE_DIALECT, Schema};
use crate::purge;
use crate::rows::{
    self, ACCESS_COLUMNS, AUTH_CODE_COLUMNS, CLIENT_COLUMNS, DEVICE_COLUMNS, KEY_COLUMNS, REFRESH_COLUMNS,
    SESSION_COLUMNS, USER_COLUMNS, backend, extensions_json, grant_names, to_json,
};
use crate::users::{UserAdmin, UserRow};
use crate::{Backend, PoolStats};

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// One connection of its own for group commit's token batches: SQLite discards a
    /// connection's page cache whenever another connection has written, so batches spread over
    /// the pool would re-read the token index on every commit; one writer keeps it warm.
    writer: SqlitePool,
    /// Whether `writer` is a pool of its own (not for an in-memory database).
    own_writer: bool,
}

impl SqliteStore {
    /// One batch of a purge (see `purge.rs`): select, then delete exactly those ids.
    async fn purge_batch(&self, batch: purge::Batch) -> Result<purge::Done, StoreError> {
        let purge::Batch {
            table,
            condition,
            cutoff,
            after,
        } = batch;
        let condition = condition.replace("{cutoff}", "?2");
        let select = format!(
            "SELECT id FROM {table} WHERE id > ?1 AND ({condition}) ORDER BY id LIMIT {}",
            purge::BATCH
        );
        let mut query = sqlx::query_scalar::<_, String>(&select).bind(after);
        if let Some(cutoff) = cutoff {
            query = query.bind(cutoff);
        }
        let ids = query.fetch_all(&self.pool).await.map_err(backend)?;
        let Some(last) = ids.last().cloned() else {
            return Ok(purge::Done {
                selected: 0,
                last: None,
                deleted: 0,
            });
        };
        let delete = format!("DELETE FROM {table} WHERE id IN (SELECT value FROM json_each(?1)) AND ({condition})");
        let mut query = sqlx::query(&delete).bind(to_json(&ids));
        if let Some(cutoff) = cutoff {
            query = query.bind(cutoff);
        }
        let deleted = query.execute(&self.pool).await.map_err(backend)?.rows_affected();
        Ok(purge::Done {
            selected: ids.len(),
            last: Some(last),
            deleted,
        })
    }

    /// Wraps an open pool (migrations are applied separately). Token batches get a connection
    /// of their own to the same file, opened on first use (an in-memory database, which a
    /// second connection cannot see, shares the pool instead).
    pub fn new(pool: SqlitePool) -> Self {
        let options = pool.connect_options();
        let file = options.get_filename().to_string_lossy();
        let in_memory = file.is_empty() || file.contains(":memory:") || file.contains("mode=memory");
        let writer = if in_memory {
            pool.clone()
        } else {
            let options = (*options).clone().pragma("cache_size", "-16384");
            sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_lazy_with(options)
        };
        Self {
            pool,
            writer,
            own_writer: !in_memory,
        }
    }

    /// The underlying pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// In one transaction: runs `use_sql` (an `UPDATE … WHERE id = ?1 AND <still unused>`) and,
    /// when it changed a row, stores the tokens issued for it. False, changing nothing, when the
    /// row was already used: of concurrent redemptions exactly one wins.
    async fn use_once_and_store(
        &self,
        use_sql: &str,
        id: &str,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let used = sqlx::query(use_sql).bind(id).execute(&mut *tx).await.map_err(backend)?;
        if used.rows_affected() == 0 {
            tx.rollback().await.map_err(backend)?;
            return Ok(false);
        }
        insert_access(&mut *tx, access).await?;
        if let Some(refresh) = refresh {
            insert_refresh(&mut *tx, refresh).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }
}

async fn insert_access<'c>(
    executor: impl sqlx::Executor<'c, Database = Sqlite>,
    access: &AccessTokenRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO oauth_access_tokens \
         (id, user_id, client_id, name, scopes, family_id, revoked, created_at, updated_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, FALSE, ?7, ?7, ?8)",
    )
    .bind(&access.id)
    .bind(&access.user_id)
    .bind(access.client_id.as_str())
    .bind(&access.name)
    .bind(to_json(&access.scopes))
    .bind(&access.family_id)
    .bind(access.created_at)
    .bind(access.expires_at)
    .execute(executor)
    .await
    .map(|_| ())
    .map_err(backend)
}

async fn insert_refresh<'c>(
    executor: impl sqlx::Executor<'c, Database = Sqlite>,
    refresh: &RefreshTokenRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO oauth_refresh_tokens \
         (id, access_token_id, client_id, user_id, scopes, family_id, revoked, created_at, expires_at, auth_time, \
         dpop_jkt) VALUES (?1, ?2, ?3, ?4, ?5, ?6, FALSE, ?7, ?8, ?9, ?10)",
    )
    .bind(&refresh.id)
    .bind(&refresh.access_token_id)
    .bind(refresh.client_id.as_str())
    .bind(&refresh.user_id)
    .bind(to_json(&refresh.scopes))
    .bind(&refresh.family_id)
    .bind(refresh.created_at)
    .bind(refresh.expires_at)
    .bind(refresh.auth_time)
    .bind(&refresh.dpop_jkt)
    .execute(executor)
    .await
    .map(|_| ())
    .map_err(backend)
}

#[async_trait]
impl ClientStore for SqliteStore {
    async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_clients (id, owner_type, owner_id, name, secret, provider, redirect_uris, \
             grant_types, scopes, skips_authorization, revoked, created_at, updated_at, \
             post_logout_redirect_uris, can_introspect, require_pushed_authorization_requests, \
             dpop_bound_access_tokens, jwks, fapi_profile, jwks_uri) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
             ?19, ?20)",
        )
        .bind(client.id.as_str())
        .bind(client.owner_id.as_ref().map(|_| "users"))
        .bind(&client.owner_id)
        .bind(&client.name)
        .bind(&client.secret_hash)
        .bind(&client.provider)
        .bind(to_json(&client.redirect_uris))
        .bind(to_json(&grant_names(&client.grant_types)))
        .bind(client.scopes.as_ref().map(to_json))
        .bind(client.skips_authorization)
        .bind(client.revoked)
        .bind(client.created_at)
        .bind(client.updated_at)
        .bind(to_json(&client.post_logout_redirect_uris))
        .bind(client.can_introspect)
        .bind(client.require_pushed_authorization_requests)
        .bind(client.dpop_bound_access_tokens)
        .bind(&client.jwks)
        .bind(client.fapi_profile)
        .bind(&client.jwks_uri)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn find_client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE id = ?1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(rows::client).transpose().map_err(backend)
    }

    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM oauth_clients ORDER BY created_at, id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await.map_err(backend)?;
        rows.iter().map(rows::client).collect::<Result<_, _>>().map_err(backend)
    }

    async fn revoke_client(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE oauth_clients SET revoked = TRUE WHERE id = ?1 AND revoked = FALSE")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn update_client_secret(&self, id: &str, secret_hash: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE oauth_clients SET secret = ?1 WHERE id = ?2")
            .bind(secret_hash)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn clients_owned_by(&self, owner_id: &str) -> Result<Vec<Client>, StoreError> {
        let sql = format!(
            "SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE owner_id = ?1 AND revoked = FALSE ORDER BY name, id"
        );
        let rows = sqlx::query(&sql)
            .bind(owner_id)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(rows::client).collect::<Result<_, _>>().map_err(backend)
    }

    async fn update_client(
        &self,
        id: &str,
        name: &str,
        redirect_uris: &[RedirectUri],
        post_logout_redirect_uris: &[RedirectUri],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE oauth_clients SET name = ?1, redirect_uris = ?2, post_logout_redirect_uris = ?3, \
             updated_at = ?4 WHERE id = ?5",
        )
        .bind(name)
        .bind(to_json(redirect_uris))
        .bind(to_json(post_logout_redirect_uris))
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn insert_initial_access_token(
        &self,
        id: &str,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO oauth_registration_tokens (id, created_at, expires_at) VALUES (?1, ?2, ?3)")
            .bind(id)
            .bind(created_at)
            .bind(expires_at)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn initial_access_token_valid(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let found = sqlx::query("SELECT 1 FROM oauth_registration_tokens WHERE id = ?1 AND expires_at > ?2")
            .bind(id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(found.is_some())
    }

    async fn set_client_registration(&self, client_id: &str, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_client_registrations (client_id, token_hash) VALUES (?1, ?2) \
             ON CONFLICT (client_id) DO UPDATE SET token_hash = EXCLUDED.token_hash",
        )
        .bind(client_id)
        .bind(token_hash)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn record_client_assertion(
        &self,
        id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // A jti seen before counts only while its assertion could still be valid.
        let done = sqlx::query(
            "INSERT INTO oauth_client_assertions (id, expires_at) VALUES (?1, ?2) \
             ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at \
             WHERE oauth_client_assertions.expires_at < ?3",
        )
        .bind(id)
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn client_registration(&self, client_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT token_hash FROM oauth_client_registrations WHERE client_id = ?1")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| r.try_get("token_hash")).transpose().map_err(backend)
    }
}

#[async_trait]
impl passport::RevocationFeed for SqliteStore {
    async fn revocation_head(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS head FROM passport_revocations")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        row.try_get::<i64, _>("head").map_err(backend)
    }

    async fn revocations_after(&self, seq: i64, limit: usize) -> Result<Vec<passport::RevocationEvent>, StoreError> {
        let rows =
            sqlx::query("SELECT seq, kind, subject FROM passport_revocations WHERE seq > ?1 ORDER BY seq LIMIT ?2")
                .bind(seq)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        rows.iter()
            .map(rows::revocation)
            .collect::<Result<_, _>>()
            .map_err(backend)
    }
}

#[async_trait]
impl passport::KeyStore for SqliteStore {
    async fn list_keys(&self) -> Result<Vec<passport::StoredKey>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM passport_keys");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await.map_err(backend)?;
        rows.iter()
            .map(rows::stored_key)
            .collect::<Result<_, _>>()
            .map_err(backend)
    }

    async fn insert_key(&self, key: &passport::StoredKey) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO passport_keys (kid, algorithm, private_key, public_key, created_at, activates_at, retired_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(&key.private_key)
        .bind(&key.public_key)
        .bind(key.created_at)
        .bind(key.activates_at)
        .bind(key.retired_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn retire_key(&self, kid: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE passport_keys SET retired_at = ?2 WHERE kid = ?1 AND retired_at IS NULL")
            .bind(kid)
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert_tokens(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<(), StoreError> {
        match refresh {
            None => insert_access(&self.pool, access).await,
            Some(refresh) => {
                let mut tx = self.pool.begin().await.map_err(backend)?;
                insert_access(&mut *tx, access).await?;
                insert_refresh(&mut *tx, refresh).await?;
                tx.commit().await.map_err(backend)
            }
        }
    }

    async fn insert_token_batch(
        &self,
        batch: &[(AccessTokenRecord, Option<RefreshTokenRecord>)],
    ) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin().await.map_err(backend)?;
        crate::batch::access_tokens(batch)
            .build()
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if let Some(mut refresh) = crate::batch::refresh_tokens(batch) {
            refresh.build().execute(&mut *tx).await.map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn token_status(&self, access_token_id: &str) -> Result<Option<TokenStatus>, StoreError> {
        let row = sqlx::query(
            "SELECT t.revoked, t.user_id, t.client_id, c.revoked AS client_revoked, c.provider \
             FROM oauth_access_tokens t JOIN oauth_clients c ON c.id = t.client_id WHERE t.id = ?1",
        )
        .bind(access_token_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(rows::token_status).transpose().map_err(backend)
    }

    async fn find_access_token(&self, id: &str) -> Result<Option<AccessTokenRecord>, StoreError> {
        let sql = format!("SELECT {ACCESS_COLUMNS} FROM oauth_access_tokens WHERE id = ?1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(rows::access).transpose().map_err(backend)
    }

    async fn revoke_access_token(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let done = sqlx::query("UPDATE oauth_access_tokens SET revoked = TRUE WHERE id = ?1 AND revoked = FALSE")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query("UPDATE oauth_refresh_tokens SET revoked = TRUE WHERE access_token_id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn find_refresh_token(&self, id: &str) -> Result<Option<RefreshTokenRecord>, StoreError> {
        let sql = format!("SELECT {REFRESH_COLUMNS} FROM oauth_refresh_tokens WHERE id = ?1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(rows::refresh).transpose().map_err(backend)
    }

    async fn rotate_refresh_token(
        &self,
        old_id: &str,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // The write comes first, so the transaction takes SQLite's write lock at once: a
        // concurrent rotation waits for it, then finds the token used.
        let used = sqlx::query(
            "UPDATE oauth_refresh_tokens SET revoked = TRUE, rotated_at = ?2, rotated_to = ?3 \
             WHERE id = ?1 AND revoked = FALSE RETURNING access_token_id",
        )
        .bind(old_id)
        .bind(access.created_at)
        .bind(refresh.map(|r| r.id.as_str()))
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(used) = used else {
            tx.rollback().await.map_err(backend)?;
            return Ok(false);
        };
        let old_access: String = used.try_get("access_token_id").map_err(backend)?;
        sqlx::query("UPDATE oauth_access_tokens SET revoked = TRUE WHERE id = ?1")
            .bind(&old_access)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        insert_access(&mut *tx, access).await?;
        if let Some(refresh) = refresh {
            insert_refresh(&mut *tx, refresh).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn regrant_refresh_token(
        &self,
        old_id: &str,
        child_id: &str,
        access: &AccessTokenRecord,
        refresh: &RefreshTokenRecord,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // Re-pointing the parent comes first and locks it: a concurrent retry waits, then finds
        // it pointing elsewhere.
        let repointed =
            sqlx::query("UPDATE oauth_refresh_tokens SET rotated_to = ?3 WHERE id = ?1 AND rotated_to = ?2")
                .bind(old_id)
                .bind(child_id)
                .bind(&refresh.id)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        let child = if repointed.rows_affected() == 1 {
            sqlx::query(
                "UPDATE oauth_refresh_tokens SET revoked = TRUE WHERE id = ?1 AND revoked = FALSE \
                 RETURNING access_token_id",
            )
            .bind(child_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?
        } else {
            None
        };
        let Some(child) = child else {
            tx.rollback().await.map_err(backend)?;
            return Ok(None);
        };
        let child_access: String = child.try_get("access_token_id").map_err(backend)?;
        sqlx::query("UPDATE oauth_access_tokens SET revoked = TRUE WHERE id = ?1")
            .bind(&child_access)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        insert_access(&mut *tx, access).await?;
        insert_refresh(&mut *tx, refresh).await?;
        tx.commit().await.map_err(backend)?;
        Ok(Some(child_access))
    }

    async fn tokens_of_user(&self, user_id: &str, now: DateTime<Utc>) -> Result<Vec<AccessTokenRecord>, StoreError> {
        let sql = format!(
            "SELECT {ACCESS_COLUMNS} FROM oauth_access_tokens WHERE user_id = ?1 AND revoked = FALSE \
             AND julianday(expires_at) > julianday(?2) ORDER BY created_at DESC, id"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(rows::access).collect::<Result<_, _>>().map_err(backend)
    }

    async fn revoke_client_tokens(&self, client_id: &str) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let revoked = sqlx::query(
            "UPDATE oauth_access_tokens SET revoked = TRUE WHERE client_id = ?1 AND revoked = FALSE RETURNING id",
        )
        .bind(client_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        sqlx::query("UPDATE oauth_refresh_tokens SET revoked = TRUE WHERE client_id = ?1")
            .bind(client_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        rows::ids(&revoked)
    }

    async fn revoke_refresh_family(&self, family_id: &str) -> Result<Vec<String>, StoreError> {
        // One pass: SQLite has one writer at a time, so no rotation of this family can commit
        // between the two statements.
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query("UPDATE oauth_refresh_tokens SET revoked = TRUE WHERE family_id = ?1 AND revoked = FALSE")
            .bind(family_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let revoked = sqlx::query(
            "UPDATE oauth_access_tokens SET revoked = TRUE WHERE family_id = ?1 AND revoked = FALSE RETURNING id",
        )
        .bind(family_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        rows::ids(&revoked)
    }

    async fn revoke_user_grants(&self, user_id: &str) -> Result<Revoked, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let clients =
            sqlx::query("UPDATE oauth_clients SET revoked = TRUE WHERE owner_id = ?1 AND revoked = FALSE RETURNING id")
                .bind(user_id)
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
        // The user's own tokens, and every token of the clients they own.
        let owned = "SELECT id FROM oauth_clients WHERE owner_id = ?1";
        let access = sqlx::query(&format!(
            "UPDATE oauth_access_tokens SET revoked = TRUE WHERE revoked = FALSE \
             AND (user_id = ?1 OR client_id IN ({owned})) RETURNING id"
        ))
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        let statements = [
            format!("UPDATE oauth_refresh_tokens SET revoked = TRUE WHERE user_id = ?1 OR client_id IN ({owned})"),
            "UPDATE oauth_auth_codes SET revoked = TRUE WHERE user_id = ?1".to_owned(),
            "UPDATE oauth_device_codes SET revoked = TRUE WHERE user_id = ?1".to_owned(),
        ];
        for sql in &statements {
            sqlx::query(sql)
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(Revoked {
            access_tokens: rows::ids(&access)?,
            clients: rows::ids(&clients)?.into_iter().map(Into::into).collect(),
        })
    }

    async fn purge(&self, filter: PurgeFilter) -> Result<PurgeCounts, StoreError> {
        let counts = purge::run(filter, |batch| self.purge_batch(batch)).await?;
        // The revocation feed keeps an hour (an instance further behind starts afresh).
        let feed_cutoff = (filter.now - chrono::TimeDelta::hours(1))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        sqlx::query("DELETE FROM passport_revocations WHERE created_at < ?1")
            .bind(feed_cutoff)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        sqlx::query("DELETE FROM oauth_client_assertions WHERE expires_at < ?1")
            .bind(filter.now)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        sqlx::query("DELETE FROM oauth_registration_tokens WHERE expires_at < ?1")
            .bind(filter.now)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        sqlx::query("DELETE FROM passport_failures WHERE window_ends < ?1")
            .bind(filter.now)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        sqlx::query("DELETE FROM passport_dpop_proofs WHERE expires_at < ?1")
            .bind(filter.now)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(counts)
    }

    async fn record_dpop_proof(
        &self,
        id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // A conflict with a live record is a replay; an expired one is taken over.
        let done = sqlx::query(
            "INSERT INTO passport_dpop_proofs (id, expires_at) VALUES (?1, ?2) \
             ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE passport_dpop_proofs.expires_at <= ?3",
        )
        .bind(id)
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn count_failure(
        &self,
        key: &str,
        now: DateTime<Utc>,
        ends: DateTime<Utc>,
    ) -> Result<Option<(u32, DateTime<Utc>)>, StoreError> {
        // A window that ended starts again at one; every SET reads the row as it was.
        let row = sqlx::query(
            "INSERT INTO passport_failures (key, failures, window_ends) VALUES (?1, 1, ?3) \
             ON CONFLICT (key) DO UPDATE SET \
             failures = CASE WHEN passport_failures.window_ends <= ?2 THEN 1 ELSE passport_failures.failures + 1 END, \
             window_ends = CASE WHEN passport_failures.window_ends <= ?2 THEN ?3 ELSE passport_failures.window_ends END \
             RETURNING failures, window_ends",
        )
        .bind(key)
        .bind(now)
        .bind(ends)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        let failures: i32 = row.try_get("failures").map_err(backend)?;
        let ends: DateTime<Utc> = row.try_get("window_ends").map_err(backend)?;
        Ok(Some((u32::try_from(failures).unwrap_or(0), ends)))
    }

    async fn clear_failures(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM passport_failures WHERE key = ?1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl AuthCodeStore for SqliteStore {
    async fn insert_auth_code(&self, code: &AuthCodeRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_auth_codes (id, user_id, client_id, scopes, redirect_uri, code_challenge, \
             code_challenge_method, extensions, revoked, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, FALSE, ?9, ?10)",
        )
        .bind(&code.id)
        .bind(&code.user_id)
        .bind(code.client_id.as_str())
        .bind(to_json(&code.scopes))
        .bind(&code.redirect_uri)
        .bind(&code.code_challenge)
        .bind(code.code_challenge_method.map(|m| m.as_str()))
        .bind(extensions_json(&code.extensions))
        .bind(code.created_at)
        .bind(code.expires_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn find_auth_code(&self, id: &str) -> Result<Option<AuthCodeRecord>, StoreError> {
        let sql = format!("SELECT {AUTH_CODE_COLUMNS} FROM oauth_auth_codes WHERE id = ?1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(rows::auth_code).transpose().map_err(backend)
    }

    async fn redeem_auth_code(
        &self,
        id: &str,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, StoreError> {
        self.use_once_and_store(
            "UPDATE oauth_auth_codes SET revoked = TRUE WHERE id = ?1 AND revoked = FALSE",
            id,
            access,
            refresh,
        )
        .await
    }

    async fn granted_scopes(
        &self,
        user_id: &str,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Vec<String>>, StoreError> {
        let rows = sqlx::query(
            // julianday(): a Laravel row's `2026-05-01 23:00:00` and our RFC 3339 text do not
            // compare as text (a space sorts before `T`).
            "SELECT scopes FROM oauth_access_tokens WHERE user_id = ?1 AND client_id = ?2 \
             AND revoked = FALSE AND julianday(expires_at) > julianday(?3)",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(rows::scopes).collect::<Result<_, _>>().map_err(backend)
    }
}

#[async_trait]
impl DeviceCodeStore for SqliteStore {
    async fn insert_device_code(&self, code: &DeviceCodeRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_device_codes (id, user_code, client_id, scopes, user_id, user_approved_at, \
             last_polled_at, \"interval\", revoked, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, NULL, NULL, NULL, ?5, FALSE, ?6, ?7)",
        )
        .bind(&code.id)
        .bind(&code.user_code)
        .bind(code.client_id.as_str())
        .bind(to_json(&code.scopes))
        .bind(i32::try_from(code.interval).unwrap_or(5))
        .bind(code.created_at)
        .bind(code.expires_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn find_device_code(&self, id: &str) -> Result<Option<DeviceCodeRecord>, StoreError> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM oauth_device_codes WHERE id = ?1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(rows::device).transpose().map_err(backend)
    }

    async fn find_pending_user_code(
        &self,
        user_code: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DeviceCodeRecord>, StoreError> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM oauth_device_codes WHERE user_code = ?1 AND revoked = FALSE \
             AND user_id IS NULL AND expires_at > ?2"
        );
        let row = sqlx::query(&sql)
            .bind(user_code)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(rows::device).transpose().map_err(backend)
    }

    async fn decide_device_code(
        &self,
        id: &str,
        user_id: &str,
        approved_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE oauth_device_codes SET user_id = ?1, user_approved_at = ?2 \
             WHERE id = ?3 AND user_id IS NULL AND revoked = FALSE",
        )
        .bind(user_id)
        .bind(approved_at)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn record_device_poll(&self, id: &str, polled_at: DateTime<Utc>, interval: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE oauth_device_codes SET last_polled_at = ?1, \"interval\" = ?2 WHERE id = ?3")
            .bind(polled_at)
            .bind(i32::try_from(interval).unwrap_or(i32::MAX))
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn redeem_device_code(
        &self,
        id: &str,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, StoreError> {
        self.use_once_and_store(
            "UPDATE oauth_device_codes SET revoked = TRUE \
             WHERE id = ?1 AND revoked = FALSE AND user_approved_at IS NOT NULL",
            id,
            access,
            refresh,
        )
        .await
    }
}

#[async_trait]
impl ConsentStore for SqliteStore {
    async fn insert_pending(&self, pending: &PendingAuthorizationRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_pending_authorizations (id, session_id, user_id, payload, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(&pending.id)
        .bind(&pending.session_id)
        .bind(&pending.user_id)
        .bind(pending.payload.to_string())
        .bind(pending.expires_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn take_pending(
        &self,
        id: &str,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingAuthorizationRecord>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM oauth_pending_authorizations WHERE id = ?1 AND session_id = ?2 \
             RETURNING id, session_id, user_id, payload, expires_at",
        )
        .bind(id)
        .bind(session_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        let Some(row) = row else { return Ok(None) };
        let record = PendingAuthorizationRecord {
            id: row.try_get("id").map_err(backend)?,
            session_id: row.try_get("session_id").map_err(backend)?,
            user_id: row.try_get("user_id").map_err(backend)?,
            payload: rows::payload(&row.try_get::<String, _>("payload").map_err(backend)?),
            expires_at: row.try_get("expires_at").map_err(backend)?,
        };
        Ok((record.expires_at > now).then_some(record))
    }

    async fn insert_pushed_request(&self, request: &PushedRequestRecord) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO oauth_pushed_requests (id, client_id, payload, expires_at) VALUES (?1, ?2, ?3, ?4)")
            .bind(&request.id)
            .bind(request.client_id.as_str())
            .bind(request.payload.to_string())
            .bind(request.expires_at)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn take_pushed_request(
        &self,
        id: &str,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<PushedRequestRecord>, StoreError> {
        // Deleting is the single use: of two concurrent takes exactly one gets the row.
        let row = sqlx::query(
            "DELETE FROM oauth_pushed_requests WHERE id = ?1 AND client_id = ?2 \
             RETURNING id, client_id, payload, expires_at",
        )
        .bind(id)
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        let Some(row) = row else { return Ok(None) };
        let record = PushedRequestRecord {
            id: row.try_get("id").map_err(backend)?,
            client_id: row.try_get::<String, _>("client_id").map_err(backend)?.into(),
            payload: rows::payload(&row.try_get::<String, _>("payload").map_err(backend)?),
            expires_at: row.try_get("expires_at").map_err(backend)?,
        };
        Ok((record.expires_at > now).then_some(record))
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO passport_sessions (id, user_id, data, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(&session.id)
        .bind(&session.user_id)
        .bind(to_json(&session.data))
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn find_session(&self, id: &str, now: DateTime<Utc>) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM passport_sessions WHERE id = ?1 AND expires_at > ?2");
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(rows::session).transpose().map_err(backend)
    }

    async fn update_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query("UPDATE passport_sessions SET user_id = ?1, data = ?2, expires_at = ?3 WHERE id = ?4")
            .bind(&session.user_id)
            .bind(to_json(&session.data))
            .bind(session.expires_at)
            .bind(&session.id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn delete_session(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        for sql in [
            "DELETE FROM passport_sessions WHERE id = ?1",
            "DELETE FROM oauth_pending_authorizations WHERE session_id = ?1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await.map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }
}

#[async_trait]
impl UserAdmin for SqliteStore {
    async fn create_user(
        &self,
        name: &str,
        email: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let row = sqlx::query(
            "INSERT INTO passport_users (name, email, password, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?4) RETURNING id",
        )
        .bind(name)
        .bind(email.trim().to_lowercase())
        .bind(password_hash)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        let id: i64 = row.try_get("id").map_err(backend)?;
        Ok(id.to_string())
    }

    async fn list_users(&self) -> Result<Vec<UserRow>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM passport_users ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await.map_err(backend)?;
        rows.iter().map(rows::user).collect::<Result<_, _>>().map_err(backend)
    }

    async fn delete_user_row(&self, id: &str) -> Result<bool, StoreError> {
        let Some(numeric) = crate::users::numeric_id(id) else {
            return Ok(false);
        };
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let done = sqlx::query("DELETE FROM passport_users WHERE id = ?1")
            .bind(numeric)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        // Their browser sessions end with them.
        sqlx::query("DELETE FROM passport_sessions WHERE user_id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRow>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM passport_users WHERE email = ?1");
        let row = sqlx::query(&sql)
            .bind(email.trim().to_lowercase())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(rows::user).transpose().map_err(backend)
    }

    async fn find_user_by_id(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        let Some(numeric) = crate::users::numeric_id(id) else {
            return Ok(None);
        };
        let sql = format!("SELECT {USER_COLUMNS} FROM passport_users WHERE id = ?1");
        let row = sqlx::query(&sql)
            .bind(numeric)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(rows::user).transpose().map_err(backend)
    }

    async fn set_email_verified(
        &self,
        id: &str,
        verified_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let Some(numeric) = crate::users::numeric_id(id) else {
            return Ok(false);
        };
        let done = sqlx::query("UPDATE passport_users SET email_verified_at = ?2, updated_at = ?3 WHERE id = ?1")
            .bind(numeric)
            .bind(verified_at)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl Backend for SqliteStore {
    async fn migrate(&self, wanted: &[Schema]) -> Result<usize, MigrateError> {
        let conn = migrate::Conn::Sqlite(self.pool.acquire().await?);
        migrate::run(conn, &SQLITE_DIALECT, wanted).await
    }

    async fn plan(&self, wanted: &[Schema]) -> Result<Vec<crate::PlannedStep>, MigrateError> {
        let conn = migrate::Conn::Sqlite(self.pool.acquire().await?);
        migrate::plan(conn, &SQLITE_DIALECT, wanted).await
    }

    async fn server_secret(&self, candidate: &str) -> Result<String, StoreError> {
        sqlx::query("INSERT INTO passport_secrets (name, value) VALUES ('server', ?1) ON CONFLICT (name) DO NOTHING")
            .bind(candidate)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        let row = sqlx::query("SELECT value FROM passport_secrets WHERE name = 'server'")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        row.try_get("value").map_err(backend)
    }

    async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        let mut stats = vec![PoolStats::of("main", &self.pool)];
        if self.own_writer {
            stats.push(PoolStats::of("writer", &self.writer));
        }
        stats
    }
}
