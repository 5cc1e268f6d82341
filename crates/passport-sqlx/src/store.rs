//! The SQL stores. One macro body serves both dialects: every statement below is valid on
//! SQLite and PostgreSQL, and each dialect gets its own concrete type (no `Any` driver, no
//! runtime dispatch on the hot path).
//!
//! Hot paths: issuing a token is one `INSERT` (two in one transaction when a refresh token comes
//! with it); checking a token is one primary-key read joined with its client.

use chrono::{DateTime, Utc};
use passport::{
    AccessTokenRecord, AuthCodeRecord, AuthCodeStore, Client, ClientStore, DeviceCodeRecord, DeviceCodeStore,
    GrantType, PendingAuthorizationRecord, PurgeCounts, PurgeFilter, RefreshTokenRecord, SessionRecord, SessionStore,
    StoreError, TokenStatus, TokenStore,
};
use sqlx::Row as _;

fn backend(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::backend(err),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}

fn from_json<T: serde::de::DeserializeOwned + Default>(text: Option<String>) -> T {
    text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

fn grant_types_from_json(text: Option<String>) -> Vec<GrantType> {
    let names: Vec<String> = from_json(text);
    names.iter().filter_map(|n| n.parse().ok()).collect()
}

const CLIENT_COLUMNS: &str = "id, owner_id, name, secret, provider, redirect_uris, grant_types, scopes, \
     skips_authorization, revoked, created_at, updated_at";

const REFRESH_COLUMNS: &str =
    "id, access_token_id, client_id, user_id, scopes, family_id, revoked, created_at, expires_at";

const AUTH_CODE_COLUMNS: &str = "id, user_id, client_id, scopes, redirect_uri, code_challenge, code_challenge_method, revoked, created_at, expires_at";

const DEVICE_COLUMNS: &str = "id, user_code, client_id, scopes, user_id, user_approved_at, last_polled_at, \"interval\", \
     revoked, created_at, expires_at";

const ACCESS_COLUMNS: &str = "id, user_id, client_id, name, scopes, family_id, revoked, created_at, expires_at";

macro_rules! sql_store {
    ($store:ident, $db:ty, $row:ty, $name:literal) => {
        #[doc = concat!("The ", $name, " store.")]
        #[derive(Debug, Clone)]
        pub struct $store {
            pub(crate) pool: sqlx::Pool<$db>,
        }

        impl $store {
            /// Wraps an open pool (migrations are applied separately).
            pub fn new(pool: sqlx::Pool<$db>) -> Self {
                Self { pool }
            }

            /// The underlying pool.
            pub fn pool(&self) -> &sqlx::Pool<$db> {
                &self.pool
            }

            fn client_from_row(row: &$row) -> Result<Client, sqlx::Error> {
                let scopes: Option<String> = row.try_get("scopes")?;
                Ok(Client {
                    id: row.try_get("id")?,
                    owner_id: row.try_get("owner_id")?,
                    name: row.try_get("name")?,
                    secret_hash: row.try_get("secret")?,
                    provider: row.try_get("provider")?,
                    redirect_uris: from_json(row.try_get("redirect_uris")?),
                    grant_types: grant_types_from_json(row.try_get("grant_types")?),
                    scopes: scopes.and_then(|s| serde_json::from_str(&s).ok()),
                    skips_authorization: row.try_get("skips_authorization")?,
                    revoked: row.try_get("revoked")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }

            fn refresh_from_row(row: &$row) -> Result<RefreshTokenRecord, sqlx::Error> {
                let expires_at: Option<DateTime<Utc>> = row.try_get("expires_at")?;
                Ok(RefreshTokenRecord {
                    id: row.try_get("id")?,
                    access_token_id: row.try_get("access_token_id")?,
                    client_id: row.try_get("client_id")?,
                    user_id: row.try_get("user_id")?,
                    scopes: from_json(row.try_get("scopes")?),
                    family_id: row.try_get("family_id")?,
                    revoked: row.try_get("revoked")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: expires_at.unwrap_or(DateTime::<Utc>::MAX_UTC),
                })
            }

            fn access_from_row(row: &$row) -> Result<AccessTokenRecord, sqlx::Error> {
                let expires_at: Option<DateTime<Utc>> = row.try_get("expires_at")?;
                Ok(AccessTokenRecord {
                    id: row.try_get("id")?,
                    user_id: row.try_get("user_id")?,
                    client_id: row.try_get("client_id")?,
                    name: row.try_get("name")?,
                    scopes: from_json(row.try_get("scopes")?),
                    family_id: row.try_get("family_id")?,
                    revoked: row.try_get("revoked")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: expires_at.unwrap_or(DateTime::<Utc>::MAX_UTC),
                })
            }

            /// In one transaction: runs `use_sql` (an `UPDATE … WHERE id = $1 AND <still unused>`)
            /// and, when it changed a row, stores the tokens issued for it. False, changing nothing,
            /// when the row was already used: of concurrent redemptions exactly one wins.
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
                Self::insert_access(&mut *tx, access).await.map_err(backend)?;
                if let Some(refresh) = refresh {
                    Self::insert_refresh(&mut *tx, refresh).await.map_err(backend)?;
                }
                tx.commit().await.map_err(backend)?;
                Ok(true)
            }

            async fn insert_access<'c, E>(executor: E, access: &AccessTokenRecord) -> Result<(), sqlx::Error>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                sqlx::query(
                    "INSERT INTO oauth_access_tokens \
                     (id, user_id, client_id, name, scopes, family_id, revoked, created_at, updated_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, FALSE, $7, $7, $8)",
                )
                .bind(&access.id)
                .bind(&access.user_id)
                .bind(&access.client_id)
                .bind(&access.name)
                .bind(to_json(&access.scopes))
                .bind(&access.family_id)
                .bind(access.created_at)
                .bind(access.expires_at)
                .execute(executor)
                .await
                .map(|_| ())
            }

            async fn insert_refresh<'c, E>(executor: E, refresh: &RefreshTokenRecord) -> Result<(), sqlx::Error>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                sqlx::query(
                    "INSERT INTO oauth_refresh_tokens \
                     (id, access_token_id, client_id, user_id, scopes, family_id, revoked, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, FALSE, $7, $8)",
                )
                .bind(&refresh.id)
                .bind(&refresh.access_token_id)
                .bind(&refresh.client_id)
                .bind(&refresh.user_id)
                .bind(to_json(&refresh.scopes))
                .bind(&refresh.family_id)
                .bind(refresh.created_at)
                .bind(refresh.expires_at)
                .execute(executor)
                .await
                .map(|_| ())
            }
        }

        #[async_trait::async_trait]
        impl ClientStore for $store {
            async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
                let grant_types: Vec<&str> = client.grant_types.iter().map(|g| g.as_str()).collect();
                sqlx::query(
                    "INSERT INTO oauth_clients (id, owner_type, owner_id, name, secret, provider, redirect_uris, \
                     grant_types, scopes, skips_authorization, revoked, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(&client.id)
                .bind(client.owner_id.as_ref().map(|_| "users"))
                .bind(&client.owner_id)
                .bind(&client.name)
                .bind(&client.secret_hash)
                .bind(&client.provider)
                .bind(to_json(&client.redirect_uris))
                .bind(to_json(&grant_types))
                .bind(client.scopes.as_ref().map(to_json))
                .bind(client.skips_authorization)
                .bind(client.revoked)
                .bind(client.created_at)
                .bind(client.updated_at)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
                Ok(())
            }

            async fn find_client(&self, id: &str) -> Result<Option<Client>, StoreError> {
                // No stored id holds a NUL, and PostgreSQL rejects NUL in text: the request's
                // client id must be "unknown", not a database error.
                if id.contains('\0') {
                    return Ok(None);
                }
                let sql = format!("SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE id = $1");
                let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await.map_err(backend)?;
                row.as_ref().map(Self::client_from_row).transpose().map_err(backend)
            }

            async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
                let sql = format!("SELECT {CLIENT_COLUMNS} FROM oauth_clients ORDER BY created_at, id");
                let rows = sqlx::query(&sql).fetch_all(&self.pool).await.map_err(backend)?;
                rows.iter().map(Self::client_from_row).collect::<Result<_, _>>().map_err(backend)
            }

            async fn revoke_client(&self, id: &str) -> Result<bool, StoreError> {
                let done = sqlx::query("UPDATE oauth_clients SET revoked = TRUE WHERE id = $1 AND revoked = FALSE")
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?;
                Ok(done.rows_affected() > 0)
            }

            async fn clients_owned_by(&self, owner_id: &str) -> Result<Vec<Client>, StoreError> {
                let sql = format!(
                    "SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE owner_id = $1 AND revoked = FALSE ORDER BY name, id"
                );
                let rows = sqlx::query(&sql).bind(owner_id).fetch_all(&self.pool).await.map_err(backend)?;
                rows.iter().map(Self::client_from_row).collect::<Result<_, _>>().map_err(backend)
            }

            async fn update_client(
                &self,
                id: &str,
                name: &str,
                redirect_uris: &[String],
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query("UPDATE oauth_clients SET name = $1, redirect_uris = $2, updated_at = $3 WHERE id = $4")
                    .bind(name)
                    .bind(to_json(&redirect_uris))
                    .bind(now)
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?;
                Ok(())
            }

            async fn update_client_secret(&self, id: &str, secret_hash: &str) -> Result<(), StoreError> {
                sqlx::query("UPDATE oauth_clients SET secret = $1 WHERE id = $2")
                    .bind(secret_hash)
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl TokenStore for $store {
            async fn tokens_of_user(
                &self,
                user_id: &str,
                now: DateTime<Utc>,
            ) -> Result<Vec<AccessTokenRecord>, StoreError> {
                let sql = format!(
                    "SELECT {ACCESS_COLUMNS} FROM oauth_access_tokens WHERE user_id = $1 AND revoked = FALSE \
                     AND expires_at > $2 ORDER BY created_at DESC, id"
                );
                let rows = sqlx::query(&sql)
                    .bind(user_id)
                    .bind(now)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(backend)?;
                rows.iter().map(Self::access_from_row).collect::<Result<_, _>>().map_err(backend)
            }

            async fn revoke_client_tokens(&self, client_id: &str) -> Result<Vec<String>, StoreError> {
                let mut tx = self.pool.begin().await.map_err(backend)?;
                let rows = sqlx::query(
                    "UPDATE oauth_access_tokens SET revoked = TRUE WHERE client_id = $1 AND revoked = FALSE RETURNING id",
                )
                .bind(client_id)
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
                sqlx::query("UPDATE oauth_refresh_tokens SET revoked = TRUE WHERE client_id = $1")
                    .bind(client_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                tx.commit().await.map_err(backend)?;
                rows.iter()
                    .map(|row| row.try_get::<String, _>("id"))
                    .collect::<Result<_, _>>()
                    .map_err(backend)
            }

            async fn insert_tokens(
                &self,
                access: &AccessTokenRecord,
                refresh: Option<&RefreshTokenRecord>,
            ) -> Result<(), StoreError> {
                match refresh {
                    None => Self::insert_access(&self.pool, access).await.map_err(backend),
                    Some(refresh) => {
                        let mut tx = self.pool.begin().await.map_err(backend)?;
                        Self::insert_access(&mut *tx, access).await.map_err(backend)?;
                        Self::insert_refresh(&mut *tx, refresh).await.map_err(backend)?;
                        tx.commit().await.map_err(backend)
                    }
                }
            }

            async fn token_status(&self, access_token_id: &str) -> Result<Option<TokenStatus>, StoreError> {
                let row = sqlx::query(
                    "SELECT t.revoked, t.user_id, t.client_id, c.revoked AS client_revoked, c.provider \
                     FROM oauth_access_tokens t JOIN oauth_clients c ON c.id = t.client_id WHERE t.id = $1",
                )
                .bind(access_token_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
                row.map(|row| -> Result<TokenStatus, sqlx::Error> {
                    Ok(TokenStatus {
                        revoked: row.try_get("revoked")?,
                        user_id: row.try_get("user_id")?,
                        client_id: row.try_get("client_id")?,
                        client_revoked: row.try_get("client_revoked")?,
                        client_provider: row.try_get("provider")?,
                    })
                })
                .transpose()
                .map_err(backend)
            }

            async fn find_access_token(&self, id: &str) -> Result<Option<AccessTokenRecord>, StoreError> {
                // As for client ids: a NUL (from a URL path) finds nothing.
                if id.contains('\0') {
                    return Ok(None);
                }
                let sql = format!("SELECT {ACCESS_COLUMNS} FROM oauth_access_tokens WHERE id = $1");
                let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await.map_err(backend)?;
                row.as_ref().map(Self::access_from_row).transpose().map_err(backend)
            }

            async fn revoke_access_token(&self, id: &str) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin().await.map_err(backend)?;
                let done = sqlx::query("UPDATE oauth_access_tokens SET revoked = TRUE WHERE id = $1 AND revoked = FALSE")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                sqlx::query("UPDATE oauth_refresh_tokens SET revoked = TRUE WHERE access_token_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                tx.commit().await.map_err(backend)?;
                Ok(done.rows_affected() > 0)
            }

            async fn find_refresh_token(&self, id: &str) -> Result<Option<RefreshTokenRecord>, StoreError> {
                let sql = format!("SELECT {REFRESH_COLUMNS} FROM oauth_refresh_tokens WHERE id = $1");
                let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await.map_err(backend)?;
                row.as_ref().map(Self::refresh_from_row).transpose().map_err(backend)
            }

            async fn rotate_refresh_token(
                &self,
                old_id: &str,
                access: &AccessTokenRecord,
                refresh: Option<&RefreshTokenRecord>,
            ) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin().await.map_err(backend)?;
                // The write comes first, so SQLite takes the write lock at once and PostgreSQL
                // locks the row: a concurrent rotation waits, then finds it used.
                let used = sqlx::query(
                    "UPDATE oauth_refresh_tokens SET revoked = TRUE WHERE id = $1 AND revoked = FALSE \
                     RETURNING access_token_id",
                )
                .bind(old_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
                let Some(used) = used else {
                    tx.rollback().await.map_err(backend)?;
                    return Ok(false);
                };
                let old_access: String = used.try_get("access_token_id").map_err(backend)?;
                sqlx::query("UPDATE oauth_access_tokens SET revoked = TRUE WHERE id = $1")
                    .bind(&old_access)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                Self::insert_access(&mut *tx, access).await.map_err(backend)?;
                if let Some(refresh) = refresh {
                    Self::insert_refresh(&mut *tx, refresh).await.map_err(backend)?;
                }
                tx.commit().await.map_err(backend)?;
                Ok(true)
            }

            async fn revoke_refresh_family(&self, family_id: &str) -> Result<u64, StoreError> {
                let mut tx = self.pool.begin().await.map_err(backend)?;
                let mut revoked = 0;
                // Two passes: on PostgreSQL a rotation in this family that committed while the
                // first pass waited for its row lock inserted tokens the first pass's snapshot
                // cannot see; the second statement sees them. A rotation starting later finds
                // its token already revoked by the first pass and stores nothing.
                for _ in 0..2 {
                    let refresh = sqlx::query(
                        "UPDATE oauth_refresh_tokens SET revoked = TRUE WHERE family_id = $1 AND revoked = FALSE",
                    )
                    .bind(family_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                    let access = sqlx::query(
                        "UPDATE oauth_access_tokens SET revoked = TRUE WHERE family_id = $1 AND revoked = FALSE",
                    )
                    .bind(family_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                    revoked += refresh.rows_affected() + access.rows_affected();
                }
                tx.commit().await.map_err(backend)?;
                Ok(revoked)
            }

            async fn purge(&self, filter: PurgeFilter) -> Result<PurgeCounts, StoreError> {
                let condition = match (filter.revoked, filter.expired_before.is_some()) {
                    (true, true) => "revoked = TRUE OR expires_at < $1",
                    (true, false) => "revoked = TRUE",
                    (false, true) => "expires_at < $1",
                    (false, false) => "FALSE",
                };
                let mut tx = self.pool.begin().await.map_err(backend)?;
                let mut counts = [0u64; 4];
                for (i, table) in ["oauth_access_tokens", "oauth_refresh_tokens", "oauth_auth_codes", "oauth_device_codes"]
                    .iter()
                    .enumerate()
                {
                    let sql = format!("DELETE FROM {table} WHERE {condition}");
                    let mut query = sqlx::query(&sql);
                    if let Some(cutoff) = filter.expired_before {
                        query = query.bind(cutoff);
                    }
                    counts[i] = query.execute(&mut *tx).await.map_err(backend)?.rows_affected();
                }
                let now = filter.now;
                let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?
                    .rows_affected();
                let pending = sqlx::query("DELETE FROM oauth_pending_authorizations WHERE expires_at < $1")
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?
                    .rows_affected();
                tx.commit().await.map_err(backend)?;
                Ok(PurgeCounts {
                    access_tokens: counts[0],
                    refresh_tokens: counts[1],
                    auth_codes: counts[2],
                    device_codes: counts[3],
                    sessions: sessions + pending,
                })
            }
        }

        #[async_trait::async_trait]
        impl AuthCodeStore for $store {
            async fn insert_auth_code(&self, code: &AuthCodeRecord) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO oauth_auth_codes (id, user_id, client_id, scopes, redirect_uri, code_challenge, \
                     code_challenge_method, revoked, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, FALSE, $8, $9)",
                )
                .bind(&code.id)
                .bind(&code.user_id)
                .bind(&code.client_id)
                .bind(to_json(&code.scopes))
                .bind(&code.redirect_uri)
                .bind(&code.code_challenge)
                .bind(&code.code_challenge_method)
                .bind(code.created_at)
                .bind(code.expires_at)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
                Ok(())
            }

            async fn find_auth_code(&self, id: &str) -> Result<Option<AuthCodeRecord>, StoreError> {
                let sql = format!("SELECT {AUTH_CODE_COLUMNS} FROM oauth_auth_codes WHERE id = $1");
                let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await.map_err(backend)?;
                row.map(|row| -> Result<AuthCodeRecord, sqlx::Error> {
                    let expires_at: Option<DateTime<Utc>> = row.try_get("expires_at")?;
                    Ok(AuthCodeRecord {
                        id: row.try_get("id")?,
                        user_id: row.try_get("user_id")?,
                        client_id: row.try_get("client_id")?,
                        scopes: from_json(row.try_get("scopes")?),
                        redirect_uri: row.try_get("redirect_uri")?,
                        code_challenge: row.try_get("code_challenge")?,
                        code_challenge_method: row.try_get("code_challenge_method")?,
                        revoked: row.try_get("revoked")?,
                        created_at: row.try_get("created_at")?,
                        expires_at: expires_at.unwrap_or(DateTime::<Utc>::MIN_UTC),
                    })
                })
                .transpose()
                .map_err(backend)
            }

            async fn redeem_auth_code(
                &self,
                id: &str,
                access: &AccessTokenRecord,
                refresh: Option<&RefreshTokenRecord>,
            ) -> Result<bool, StoreError> {
                self.use_once_and_store(
                    "UPDATE oauth_auth_codes SET revoked = TRUE WHERE id = $1 AND revoked = FALSE",
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
                    "SELECT scopes FROM oauth_access_tokens WHERE user_id = $1 AND client_id = $2 \
                     AND revoked = FALSE AND expires_at > $3",
                )
                .bind(user_id)
                .bind(client_id)
                .bind(now)
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
                rows.iter()
                    .map(|row| row.try_get::<Option<String>, _>("scopes").map(from_json))
                    .collect::<Result<_, _>>()
                    .map_err(backend)
            }
        }

        impl $store {
            fn device_from_row(row: &$row) -> Result<DeviceCodeRecord, sqlx::Error> {
                let expires_at: Option<DateTime<Utc>> = row.try_get("expires_at")?;
                let interval: i32 = row.try_get("interval")?;
                Ok(DeviceCodeRecord {
                    id: row.try_get("id")?,
                    user_code: row.try_get("user_code")?,
                    client_id: row.try_get("client_id")?,
                    scopes: from_json(row.try_get("scopes")?),
                    user_id: row.try_get("user_id")?,
                    user_approved_at: row.try_get("user_approved_at")?,
                    last_polled_at: row.try_get("last_polled_at")?,
                    interval: i64::from(interval),
                    revoked: row.try_get("revoked")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: expires_at.unwrap_or(DateTime::<Utc>::MIN_UTC),
                })
            }
        }

        #[async_trait::async_trait]
        impl DeviceCodeStore for $store {
            async fn insert_device_code(&self, code: &DeviceCodeRecord) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO oauth_device_codes (id, user_code, client_id, scopes, user_id, user_approved_at, \
                     last_polled_at, \"interval\", revoked, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, NULL, NULL, NULL, $5, FALSE, $6, $7)",
                )
                .bind(&code.id)
                .bind(&code.user_code)
                .bind(&code.client_id)
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
                let sql = format!("SELECT {DEVICE_COLUMNS} FROM oauth_device_codes WHERE id = $1");
                let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await.map_err(backend)?;
                row.as_ref().map(Self::device_from_row).transpose().map_err(backend)
            }

            async fn find_pending_user_code(
                &self,
                user_code: &str,
                now: DateTime<Utc>,
            ) -> Result<Option<DeviceCodeRecord>, StoreError> {
                let sql = format!(
                    "SELECT {DEVICE_COLUMNS} FROM oauth_device_codes WHERE user_code = $1 AND revoked = FALSE \
                     AND user_id IS NULL AND expires_at > $2"
                );
                let row = sqlx::query(&sql)
                    .bind(user_code)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend)?;
                row.as_ref().map(Self::device_from_row).transpose().map_err(backend)
            }

            async fn decide_device_code(
                &self,
                id: &str,
                user_id: &str,
                approved_at: Option<DateTime<Utc>>,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE oauth_device_codes SET user_id = $1, user_approved_at = $2 \
                     WHERE id = $3 AND user_id IS NULL AND revoked = FALSE",
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
                sqlx::query("UPDATE oauth_device_codes SET last_polled_at = $1, \"interval\" = $2 WHERE id = $3")
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
                     WHERE id = $1 AND revoked = FALSE AND user_approved_at IS NOT NULL",
                    id,
                    access,
                    refresh,
                )
                .await
            }
        }

        #[async_trait::async_trait]
        impl SessionStore for $store {
            async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO sessions (id, user_id, data, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
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
                let row = sqlx::query(
                    "SELECT id, user_id, data, created_at, expires_at FROM sessions WHERE id = $1 AND expires_at > $2",
                )
                .bind(id)
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
                row.map(|row| -> Result<SessionRecord, sqlx::Error> {
                    Ok(SessionRecord {
                        id: row.try_get("id")?,
                        user_id: row.try_get("user_id")?,
                        data: from_json(row.try_get("data")?),
                        created_at: row.try_get("created_at")?,
                        expires_at: row.try_get("expires_at")?,
                    })
                })
                .transpose()
                .map_err(backend)
            }

            async fn update_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
                sqlx::query("UPDATE sessions SET user_id = $1, data = $2, expires_at = $3 WHERE id = $4")
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
                sqlx::query("DELETE FROM sessions WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                sqlx::query("DELETE FROM oauth_pending_authorizations WHERE session_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                tx.commit().await.map_err(backend)
            }

            async fn insert_pending(&self, pending: &PendingAuthorizationRecord) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO oauth_pending_authorizations (id, session_id, user_id, payload, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
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
                    "DELETE FROM oauth_pending_authorizations WHERE id = $1 AND session_id = $2 \
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
                    payload: serde_json::from_str(&row.try_get::<String, _>("payload").map_err(backend)?)
                        .unwrap_or_default(),
                    expires_at: row.try_get("expires_at").map_err(backend)?,
                };
                Ok((record.expires_at > now).then_some(record))
            }
        }
    };
}

sql_store!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow, "SQLite");
sql_store!(PgStore, sqlx::Postgres, sqlx::postgres::PgRow, "PostgreSQL");
