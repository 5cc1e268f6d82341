//! The MySQL / MariaDB store (the `mysql` feature; several instances share one database, InnoDB
//! tables). `?` parameters, bound in the order they appear.
//!
//! There is no `RETURNING` (MySQL has none; MariaDB has it for `INSERT` and `DELETE` only), so:
//! every single-use step is an `UPDATE … WHERE revoked = FALSE` whose affected-row count decides
//! (InnoDB locks the row, so concurrent redemptions queue and exactly one wins; the driver
//! counts matched rows); a revocation that reports what it changed reads those ids first with
//! `SELECT … FOR UPDATE` in its transaction; a single-use row that is taken whole (a consent
//! or pushed request) is locked with `SELECT … FOR UPDATE`, then deleted. Upserts are `INSERT …
//! ON DUPLICATE KEY UPDATE`; a replay check (DPoP proofs, client assertions) inserts and, on a
//! duplicate, takes over only an expired row. InnoDB may end one of two transactions that wait
//! for each other (a deadlock): the victim is rolled back whole and run again.
//!
//! Times are `DATETIME(6)` holding UTC (sqlx writes and reads `DateTime<Utc>` as UTC, whatever
//! the session's time zone). Ids and the other text keys are `VARBINARY`, so they compare byte
//! for byte as on SQLite and PostgreSQL (a text collation ignores trailing spaces, and the
//! default ones case); other text is `utf8mb4_bin`. sqlx types both as binary, so rows are
//! read through `Text`.
//! MySQL has no LISTEN/NOTIFY: instances poll the revocation feed (as on SQLite).
//!
//! Hot paths: issuing a token is one `INSERT` (two in one transaction when a refresh token comes
//! with it); checking a token is one primary-key read joined with its client.

use std::future::Future;
use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use passport::{
    AccessTokenRecord, AuthCodeRecord, AuthCodeStore, Client, ClientStore, ConsentStore, DeviceCodeRecord,
    DeviceCodeStore, PendingAuthorizationRecord, PurgeCounts, PurgeFilter, PushedRequestRecord, RedirectUri,
    RefreshTokenRecord, Revoked, SessionRecord, SessionStore, StoreError, TokenStatus, TokenStore,
};
use sqlx::mysql::{MySqlDatabaseError, MySqlRow};
use sqlx::{MySql, MySqlPool, QueryBuilder, Row as _};

use crate::migrate::{self, MigrateError, Schema};
use crate::purge;
use crate::rows::{
    self, ACCESS_COLUMNS, AUTH_CODE_COLUMNS, CLIENT_COLUMNS, Columns, KEY_COLUMNS, REFRESH_COLUMNS, SESSION_COLUMNS,
    USER_COLUMNS, backend, extensions_json, grant_names, to_json,
};
use crate::users::{UserAdmin, UserRow};
use crate::{Backend, PoolStats};

/// The device code columns, with `interval` quoted as MySQL quotes identifiers (a double-quoted
/// name is a string there).
static DEVICE_COLUMNS: LazyLock<String> = LazyLock::new(|| rows::DEVICE_COLUMNS.replace("\"interval\"", "`interval`"));

/// How many times a transaction runs at most when InnoDB keeps choosing it as a deadlock's
/// victim.
const ATTEMPTS: u32 = 3;

/// A row read for the shared mappers. sqlx refuses to decode a `VARBINARY` column or one of a
/// binary collation (`utf8mb4_bin`) as `String`, though ours hold UTF-8 text: text columns are
/// read without that type check (the bytes are still checked to be UTF-8), so a table of
/// another collation (an application's) reads the same; every other column is checked as
/// usual.
struct Text(MySqlRow);

impl Text {
    /// An integer column read as the decimal text our ids are: a Laravel table's ids are
    /// `BIGINT UNSIGNED` (`bigIncrements`, `unsignedBigInteger`). `None`: not an integer column.
    fn integer(&self, column: &str) -> Option<Result<Option<String>, sqlx::Error>> {
        use sqlx::{Column as _, TypeInfo as _};
        // sqlx spells MySQL's type names in capitals (`BIGINT UNSIGNED`, `VARBINARY`): no
        // allocation on the token check's path.
        let declared = self.0.try_column(column).ok()?.type_info().name();
        if !declared.contains("INT") {
            return None;
        }
        Some(if declared.contains("UNSIGNED") {
            self.0
                .try_get::<Option<u64>, _>(column)
                .map(|n| n.map(|n| n.to_string()))
        } else {
            self.0
                .try_get::<Option<i64>, _>(column)
                .map(|n| n.map(|n| n.to_string()))
        })
    }
}

impl Columns for Text {
    fn text(&self, column: &str) -> Result<String, sqlx::Error> {
        match self.integer(column) {
            Some(read) => read?.ok_or_else(|| sqlx::Error::Decode(format!("{column} is NULL").into())),
            None => self.0.try_get_unchecked(column),
        }
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        match self.integer(column) {
            Some(read) => read,
            None => self.0.try_get_unchecked(column),
        }
    }
    fn flag(&self, column: &str) -> Result<bool, sqlx::Error> {
        self.0.try_get(column)
    }
    fn time(&self, column: &str) -> Result<DateTime<Utc>, sqlx::Error> {
        self.0.try_get(column)
    }
    fn opt_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        self.0.try_get(column)
    }
    fn int32(&self, column: &str) -> Result<i32, sqlx::Error> {
        self.0.try_get(column)
    }
    fn int64(&self, column: &str) -> Result<i64, sqlx::Error> {
        self.0.try_get(column)
    }
}

/// One text column of each row (the ids a revocation changes).
fn texts(rows: Vec<MySqlRow>, column: &str) -> Result<Vec<String>, sqlx::Error> {
    rows.into_iter().map(|row| Text(row).text(column)).collect()
}

/// Maps one row, if there is one.
fn map_one<T>(
    row: Option<MySqlRow>,
    map: impl FnOnce(&Text) -> Result<T, sqlx::Error>,
) -> Result<Option<T>, StoreError> {
    row.map(|row| map(&Text(row))).transpose().map_err(backend)
}

/// Maps every row.
fn map_all<T>(rows: Vec<MySqlRow>, map: impl Fn(&Text) -> Result<T, sqlx::Error>) -> Result<Vec<T>, StoreError> {
    rows.into_iter()
        .map(|row| map(&Text(row)))
        .collect::<Result<_, _>>()
        .map_err(backend)
}

fn is_deadlock(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db)
        if db.try_downcast_ref::<MySqlDatabaseError>().is_some_and(|e| e.number() == 1213))
}

/// Runs `transaction` (a whole transaction, begun and committed inside), and again when InnoDB
/// rolled it back as a deadlock's victim (error 1213), up to [`ATTEMPTS`] times: the rollback
/// undid all of it, so running it again decides afresh (a redemption that lost its race then
/// finds the row used).
async fn retrying<T, F, Fut>(mut transaction: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut attempt = 1;
    loop {
        match transaction().await {
            Err(err) if attempt < ATTEMPTS && is_deadlock(&err) => {
                tracing::debug!(error = %err, attempt, "a MySQL transaction was a deadlock's victim: running it again");
                attempt += 1;
            }
            result => return result.map_err(backend),
        }
    }
}

/// Binds `cutoff` wherever `{cutoff}` stands in a purge condition.
fn push_condition(query: &mut QueryBuilder<'_, MySql>, condition: &str, cutoff: Option<DateTime<Utc>>) {
    let mut parts = condition.split("{cutoff}");
    if let Some(first) = parts.next() {
        query.push(first);
    }
    for part in parts {
        query.push_bind(cutoff);
        query.push(part);
    }
}

/// The MySQL / MariaDB store.
#[derive(Debug, Clone)]
pub struct MySqlStore {
    pool: MySqlPool,
}

impl MySqlStore {
    /// Wraps an open pool (migrations are applied separately).
    pub fn new(pool: MySqlPool) -> Self {
        Self { pool }
    }

    /// The underlying pool.
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// One batch of a purge (see `purge.rs`): select, then delete exactly those ids.
    async fn purge_batch(&self, batch: purge::Batch) -> Result<purge::Done, StoreError> {
        let purge::Batch {
            table,
            condition,
            cutoff,
            after,
        } = batch;
        let mut select = QueryBuilder::<MySql>::new(format!("SELECT id FROM {table} WHERE id > "));
        select.push_bind(after).push(" AND (");
        push_condition(&mut select, condition, cutoff);
        select.push(format!(") ORDER BY id LIMIT {}", purge::BATCH));
        let found = select.build().fetch_all(&self.pool).await.map_err(backend)?;
        let ids = texts(found, "id").map_err(backend)?;
        let Some(last) = ids.last().cloned() else {
            return Ok(purge::Done {
                selected: 0,
                last: None,
                deleted: 0,
            });
        };
        let mut delete = QueryBuilder::<MySql>::new(format!("DELETE FROM {table} WHERE id IN ("));
        let mut list = delete.separated(", ");
        for id in &ids {
            list.push_bind(id.as_str());
        }
        delete.push(") AND (");
        push_condition(&mut delete, condition, cutoff);
        delete.push(")");
        let deleted = delete
            .build()
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected();
        Ok(purge::Done {
            selected: ids.len(),
            last: Some(last),
            deleted,
        })
    }

    /// In one transaction: runs `use_sql` (an `UPDATE … WHERE id = ? AND <still unused>`) and,
    /// when it changed a row, stores the tokens issued for it. False, changing nothing, when the
    /// row was already used: of concurrent redemptions exactly one wins (the others wait for
    /// its row lock, then find the row used).
    async fn use_once_and_store(
        &self,
        use_sql: &str,
        id: &str,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let used = sqlx::query(use_sql).bind(id).execute(&mut *tx).await?;
        if used.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_access(&mut *tx, access).await?;
        if let Some(refresh) = refresh {
            insert_refresh(&mut *tx, refresh).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records a one-time id until `expires_at` in `table` (`id`, `expires_at`): true when it
    /// is new, or when its earlier record had expired (`expired` is the condition on the stored
    /// `expires_at`, with `?` for `now`), and is taken over. The insert decides between two new
    /// records; the conditional update between two takeovers (the second waits for the row,
    /// then finds it live).
    async fn record_once(
        &self,
        table: &str,
        expired: &str,
        id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(&format!("INSERT INTO {table} (id, expires_at) VALUES (?, ?)"))
            .bind(id)
            .bind(expires_at)
            .execute(&self.pool)
            .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                let taken = sqlx::query(&format!("UPDATE {table} SET expires_at = ? WHERE id = ? AND {expired}"))
                    .bind(expires_at)
                    .bind(id)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?;
                Ok(taken.rows_affected() == 1)
            }
            Err(err) => Err(backend(err)),
        }
    }

    async fn insert_tokens_once(
        &self,
        access: &AccessTokenRecord,
        refresh: &RefreshTokenRecord,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        insert_access(&mut *tx, access).await?;
        insert_refresh(&mut *tx, refresh).await?;
        tx.commit().await
    }

    async fn insert_token_batch_once(
        &self,
        batch: &[(AccessTokenRecord, Option<RefreshTokenRecord>)],
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        crate::batch::access_tokens(batch).build().execute(&mut *tx).await?;
        if let Some(mut refresh) = crate::batch::refresh_tokens(batch) {
            refresh.build().execute(&mut *tx).await?;
        }
        tx.commit().await
    }

    async fn revoke_access_token_once(&self, id: &str) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE oauth_access_tokens SET revoked = TRUE WHERE id = ? AND revoked = FALSE")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE oauth_refresh_tokens SET revoked = TRUE WHERE access_token_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn rotate_refresh_token_once(
        &self,
        old_id: &str,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // The write comes first and locks the row: a concurrent rotation waits for it, then
        // finds the token used.
        let used = sqlx::query(
            "UPDATE oauth_refresh_tokens SET revoked = TRUE, rotated_at = ?, rotated_to = ? \
             WHERE id = ? AND revoked = FALSE",
        )
        .bind(access.created_at)
        .bind(refresh.map(|r| r.id.as_str()))
        .bind(old_id)
        .execute(&mut *tx)
        .await?;
        if used.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        // Our own write, still locked: what `RETURNING access_token_id` gives elsewhere.
        let row = sqlx::query("SELECT access_token_id FROM oauth_refresh_tokens WHERE id = ?")
            .bind(old_id)
            .fetch_one(&mut *tx)
            .await?;
        let old_access = Text(row).text("access_token_id")?;
        sqlx::query("UPDATE oauth_access_tokens SET revoked = TRUE WHERE id = ?")
            .bind(&old_access)
            .execute(&mut *tx)
            .await?;
        insert_access(&mut *tx, access).await?;
        if let Some(refresh) = refresh {
            insert_refresh(&mut *tx, refresh).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn regrant_refresh_token_once(
        &self,
        old_id: &str,
        child_id: &str,
        access: &AccessTokenRecord,
        refresh: &RefreshTokenRecord,
    ) -> Result<Option<String>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // Re-pointing the parent comes first and locks it: a concurrent retry waits, then finds
        // it pointing elsewhere.
        let repointed = sqlx::query("UPDATE oauth_refresh_tokens SET rotated_to = ? WHERE id = ? AND rotated_to = ?")
            .bind(&refresh.id)
            .bind(old_id)
            .bind(child_id)
            .execute(&mut *tx)
            .await?;
        let child_used = repointed.rows_affected() == 1
            && sqlx::query("UPDATE oauth_refresh_tokens SET revoked = TRUE WHERE id = ? AND revoked = FALSE")
                .bind(child_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        if !child_used {
            tx.rollback().await?;
            return Ok(None);
        }
        let child = sqlx::query("SELECT access_token_id FROM oauth_refresh_tokens WHERE id = ?")
            .bind(child_id)
            .fetch_one(&mut *tx)
            .await?;
        let child_access = Text(child).text("access_token_id")?;
        sqlx::query("UPDATE oauth_access_tokens SET revoked = TRUE WHERE id = ?")
            .bind(&child_access)
            .execute(&mut *tx)
            .await?;
        insert_access(&mut *tx, access).await?;
        insert_refresh(&mut *tx, refresh).await?;
        tx.commit().await?;
        Ok(Some(child_access))
    }

    async fn revoke_client_tokens_once(&self, client_id: &str) -> Result<Vec<String>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // The locking read takes the index range too (InnoDB's next-key locks under its default
        // REPEATABLE READ), so the update changes exactly the rows it returned. Under READ
        // COMMITTED a token issued meanwhile may be revoked without being listed; the feed's
        // trigger still records it.
        let live = sqlx::query("SELECT id FROM oauth_access_tokens WHERE client_id = ? AND revoked = FALSE FOR UPDATE")
            .bind(client_id)
            .fetch_all(&mut *tx)
            .await?;
        sqlx::query("UPDATE oauth_access_tokens SET revoked = TRUE WHERE client_id = ? AND revoked = FALSE")
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE oauth_refresh_tokens SET revoked = TRUE WHERE client_id = ?")
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        texts(live, "id")
    }

    async fn revoke_refresh_family_once(&self, family_id: &str) -> Result<Vec<String>, sqlx::Error> {
        // One pass: InnoDB's UPDATE and locking reads see the newest committed rows, not the
        // transaction's snapshot, and wait for the rows a rotation in this family holds; a
        // rotation starting later finds its token already revoked and stores nothing. (The
        // PostgreSQL store needs a second pass for what its snapshot cannot see.)
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE oauth_refresh_tokens SET revoked = TRUE WHERE family_id = ? AND revoked = FALSE")
            .bind(family_id)
            .execute(&mut *tx)
            .await?;
        let live = sqlx::query("SELECT id FROM oauth_access_tokens WHERE family_id = ? AND revoked = FALSE FOR UPDATE")
            .bind(family_id)
            .fetch_all(&mut *tx)
            .await?;
        sqlx::query("UPDATE oauth_access_tokens SET revoked = TRUE WHERE family_id = ? AND revoked = FALSE")
            .bind(family_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        texts(live, "id")
    }

    async fn revoke_user_grants_once(&self, user_id: &str) -> Result<(Vec<String>, Vec<String>), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let clients = sqlx::query("SELECT id FROM oauth_clients WHERE owner_id = ? AND revoked = FALSE FOR UPDATE")
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await?;
        sqlx::query("UPDATE oauth_clients SET revoked = TRUE WHERE owner_id = ? AND revoked = FALSE")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        // Every client they own, revoked before or just now: their tokens go too.
        let owned = sqlx::query("SELECT id FROM oauth_clients WHERE owner_id = ?")
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await?;
        let owned = texts(owned, "id")?;
        // The user's own tokens, then each owned client's, by index (one `OR` over both would
        // scan, and lock, the whole table); a token both theirs and an owned client's is
        // revoked, and listed, by the first.
        let mut access = Vec::new();
        for (column, value) in
            std::iter::once(("user_id", user_id)).chain(owned.iter().map(|id| ("client_id", id.as_str())))
        {
            let live = sqlx::query(&format!(
                "SELECT id FROM oauth_access_tokens WHERE {column} = ? AND revoked = FALSE FOR UPDATE"
            ))
            .bind(value)
            .fetch_all(&mut *tx)
            .await?;
            sqlx::query(&format!(
                "UPDATE oauth_access_tokens SET revoked = TRUE WHERE {column} = ? AND revoked = FALSE"
            ))
            .bind(value)
            .execute(&mut *tx)
            .await?;
            access.extend(texts(live, "id")?);
            sqlx::query(&format!(
                "UPDATE oauth_refresh_tokens SET revoked = TRUE WHERE {column} = ?"
            ))
            .bind(value)
            .execute(&mut *tx)
            .await?;
        }
        for sql in [
            "UPDATE oauth_auth_codes SET revoked = TRUE WHERE user_id = ?",
            "UPDATE oauth_device_codes SET revoked = TRUE WHERE user_id = ?",
        ] {
            sqlx::query(sql).bind(user_id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok((access, texts(clients, "id")?))
    }

    async fn count_failure_once(
        &self,
        key: &str,
        now: DateTime<Utc>,
        ends: DateTime<Utc>,
    ) -> Result<(i32, DateTime<Utc>), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // A window that ended starts again at one. MySQL assigns left to right, each assignment
        // seeing those before it: `failures` comes first, so both read the window as it was.
        sqlx::query(
            "INSERT INTO passport_failures (`key`, failures, window_ends) VALUES (?, 1, ?) \
             ON DUPLICATE KEY UPDATE \
             failures = IF(window_ends <= ?, 1, failures + 1), \
             window_ends = IF(window_ends <= ?, ?, window_ends)",
        )
        .bind(key)
        .bind(ends)
        .bind(now)
        .bind(now)
        .bind(ends)
        .execute(&mut *tx)
        .await?;
        // Our own write, still locked: what `RETURNING` gives elsewhere.
        let row = sqlx::query("SELECT failures, window_ends FROM passport_failures WHERE `key` = ?")
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((row.try_get("failures")?, row.try_get("window_ends")?))
    }

    /// Takes a single-use row whole: a locking read, then the delete (a concurrent take waits
    /// for the lock, then finds nothing). `select` reads it by `?` (id) and `?` (its owner).
    async fn take_once(
        &self,
        select: &str,
        delete: &str,
        id: &str,
        owner: &str,
    ) -> Result<Option<MySqlRow>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(select)
            .bind(id)
            .bind(owner)
            .fetch_optional(&mut *tx)
            .await?;
        if row.is_none() {
            tx.rollback().await?;
            return Ok(None);
        }
        sqlx::query(delete).bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn delete_session_once(&self, id: &str) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for sql in [
            "DELETE FROM passport_sessions WHERE id = ?",
            "DELETE FROM oauth_pending_authorizations WHERE session_id = ?",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await
    }

    async fn delete_user_row_once(&self, id: &str, numeric: i64) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM passport_users WHERE id = ?")
            .bind(numeric)
            .execute(&mut *tx)
            .await?;
        // Their browser sessions end with them.
        sqlx::query("DELETE FROM passport_sessions WHERE user_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }
}

async fn insert_access<'c>(
    executor: impl sqlx::Executor<'c, Database = MySql>,
    access: &AccessTokenRecord,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO oauth_access_tokens \
         (id, user_id, client_id, name, scopes, family_id, revoked, created_at, updated_at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?, FALSE, ?, ?, ?)",
    )
    .bind(&access.id)
    .bind(&access.user_id)
    .bind(access.client_id.as_str())
    .bind(&access.name)
    .bind(to_json(&access.scopes))
    .bind(&access.family_id)
    .bind(access.created_at)
    .bind(access.created_at)
    .bind(access.expires_at)
    .execute(executor)
    .await
    .map(|_| ())
}

async fn insert_refresh<'c>(
    executor: impl sqlx::Executor<'c, Database = MySql>,
    refresh: &RefreshTokenRecord,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO oauth_refresh_tokens \
         (id, access_token_id, client_id, user_id, scopes, family_id, revoked, created_at, expires_at, auth_time, \
         dpop_jkt) VALUES (?, ?, ?, ?, ?, ?, FALSE, ?, ?, ?, ?)",
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
}

#[async_trait]
impl ClientStore for MySqlStore {
    async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_clients (id, owner_type, owner_id, name, secret, provider, redirect_uris, \
             grant_types, scopes, skips_authorization, revoked, created_at, updated_at, \
             post_logout_redirect_uris, can_introspect, require_pushed_authorization_requests, \
             dpop_bound_access_tokens, jwks, fapi_profile, jwks_uri) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        map_one(row, rows::client)
    }

    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM oauth_clients ORDER BY created_at, id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await.map_err(backend)?;
        map_all(rows, rows::client)
    }

    async fn revoke_client(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE oauth_clients SET revoked = TRUE WHERE id = ? AND revoked = FALSE")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn update_client_secret(&self, id: &str, secret_hash: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE oauth_clients SET secret = ? WHERE id = ?")
            .bind(secret_hash)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn clients_owned_by(&self, owner_id: &str) -> Result<Vec<Client>, StoreError> {
        let sql = format!(
            "SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE owner_id = ? AND revoked = FALSE ORDER BY name, id"
        );
        let rows = sqlx::query(&sql)
            .bind(owner_id)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        map_all(rows, rows::client)
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
            "UPDATE oauth_clients SET name = ?, redirect_uris = ?, post_logout_redirect_uris = ?, \
             updated_at = ? WHERE id = ?",
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
        sqlx::query("INSERT INTO oauth_registration_tokens (id, created_at, expires_at) VALUES (?, ?, ?)")
            .bind(id)
            .bind(created_at)
            .bind(expires_at)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn initial_access_token_valid(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let found = sqlx::query("SELECT 1 FROM oauth_registration_tokens WHERE id = ? AND expires_at > ?")
            .bind(id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(found.is_some())
    }

    async fn set_client_registration(&self, client_id: &str, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_client_registrations (client_id, token_hash) VALUES (?, ?) \
             ON DUPLICATE KEY UPDATE token_hash = ?",
        )
        .bind(client_id)
        .bind(token_hash)
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
        self.record_once("oauth_client_assertions", "expires_at < ?", id, expires_at, now)
            .await
    }

    async fn client_registration(&self, client_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT token_hash FROM oauth_client_registrations WHERE client_id = ?")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        map_one(row, |row| row.text("token_hash"))
    }
}

#[async_trait]
impl passport::RevocationFeed for MySqlStore {
    async fn revocation_head(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT CAST(COALESCE(MAX(seq), 0) AS SIGNED) AS head FROM passport_revocations")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        row.try_get::<i64, _>("head").map_err(backend)
    }

    async fn revocations_after(&self, seq: i64, limit: usize) -> Result<Vec<passport::RevocationEvent>, StoreError> {
        let rows =
            sqlx::query("SELECT seq, kind, subject FROM passport_revocations WHERE seq > ? ORDER BY seq LIMIT ?")
                .bind(seq)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        map_all(rows, rows::revocation)
    }

    // No LISTEN/NOTIFY: `wait_for_revocation` keeps its default (a sleep), so instances poll.
}

#[async_trait]
impl passport::KeyStore for MySqlStore {
    async fn list_keys(&self) -> Result<Vec<passport::StoredKey>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM passport_keys");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await.map_err(backend)?;
        map_all(rows, rows::stored_key)
    }

    async fn insert_key(&self, key: &passport::StoredKey) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO passport_keys (kid, algorithm, private_key, public_key, created_at, activates_at, retired_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
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
        let done = sqlx::query("UPDATE passport_keys SET retired_at = ? WHERE kid = ? AND retired_at IS NULL")
            .bind(at)
            .bind(kid)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl TokenStore for MySqlStore {
    async fn insert_tokens(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<(), StoreError> {
        match refresh {
            None => insert_access(&self.pool, access).await.map_err(backend),
            Some(refresh) => retrying(|| self.insert_tokens_once(access, refresh)).await,
        }
    }

    async fn insert_token_batch(
        &self,
        batch: &[(AccessTokenRecord, Option<RefreshTokenRecord>)],
    ) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        retrying(|| self.insert_token_batch_once(batch)).await
    }

    async fn token_status(&self, access_token_id: &str) -> Result<Option<TokenStatus>, StoreError> {
        let row = sqlx::query(
            "SELECT t.revoked, t.user_id, t.client_id, c.revoked AS client_revoked, c.provider \
             FROM oauth_access_tokens t JOIN oauth_clients c ON c.id = t.client_id WHERE t.id = ?",
        )
        .bind(access_token_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        map_one(row, rows::token_status)
    }

    async fn find_access_token(&self, id: &str) -> Result<Option<AccessTokenRecord>, StoreError> {
        let sql = format!("SELECT {ACCESS_COLUMNS} FROM oauth_access_tokens WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        map_one(row, rows::access)
    }

    async fn revoke_access_token(&self, id: &str) -> Result<bool, StoreError> {
        retrying(|| self.revoke_access_token_once(id)).await
    }

    async fn find_refresh_token(&self, id: &str) -> Result<Option<RefreshTokenRecord>, StoreError> {
        let sql = format!("SELECT {REFRESH_COLUMNS} FROM oauth_refresh_tokens WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        map_one(row, rows::refresh)
    }

    async fn rotate_refresh_token(
        &self,
        old_id: &str,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, StoreError> {
        retrying(|| self.rotate_refresh_token_once(old_id, access, refresh)).await
    }

    async fn regrant_refresh_token(
        &self,
        old_id: &str,
        child_id: &str,
        access: &AccessTokenRecord,
        refresh: &RefreshTokenRecord,
    ) -> Result<Option<String>, StoreError> {
        retrying(|| self.regrant_refresh_token_once(old_id, child_id, access, refresh)).await
    }

    async fn tokens_of_user(&self, user_id: &str, now: DateTime<Utc>) -> Result<Vec<AccessTokenRecord>, StoreError> {
        let sql = format!(
            "SELECT {ACCESS_COLUMNS} FROM oauth_access_tokens WHERE user_id = ? AND revoked = FALSE \
             AND expires_at > ? ORDER BY created_at DESC, id"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        map_all(rows, rows::access)
    }

    async fn revoke_client_tokens(&self, client_id: &str) -> Result<Vec<String>, StoreError> {
        retrying(|| self.revoke_client_tokens_once(client_id)).await
    }

    async fn revoke_refresh_family(&self, family_id: &str) -> Result<Vec<String>, StoreError> {
        retrying(|| self.revoke_refresh_family_once(family_id)).await
    }

    async fn revoke_user_grants(&self, user_id: &str) -> Result<Revoked, StoreError> {
        let (access_tokens, clients) = retrying(|| self.revoke_user_grants_once(user_id)).await?;
        Ok(Revoked {
            access_tokens,
            clients: clients.into_iter().map(Into::into).collect(),
        })
    }

    async fn purge(&self, filter: PurgeFilter) -> Result<PurgeCounts, StoreError> {
        let counts = purge::run(filter, |batch| self.purge_batch(batch)).await?;
        // The revocation feed keeps an hour (an instance further behind starts afresh).
        sqlx::query("DELETE FROM passport_revocations WHERE created_at < ?")
            .bind(filter.now - chrono::TimeDelta::hours(1))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        sqlx::query("DELETE FROM oauth_client_assertions WHERE expires_at < ?")
            .bind(filter.now)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        sqlx::query("DELETE FROM oauth_registration_tokens WHERE expires_at < ?")
            .bind(filter.now)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        sqlx::query("DELETE FROM passport_failures WHERE window_ends < ?")
            .bind(filter.now)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        sqlx::query("DELETE FROM passport_dpop_proofs WHERE expires_at < ?")
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
        self.record_once("passport_dpop_proofs", "expires_at <= ?", id, expires_at, now)
            .await
    }

    async fn count_failure(
        &self,
        key: &str,
        now: DateTime<Utc>,
        ends: DateTime<Utc>,
    ) -> Result<Option<(u32, DateTime<Utc>)>, StoreError> {
        let (failures, ends) = retrying(|| self.count_failure_once(key, now, ends)).await?;
        Ok(Some((u32::try_from(failures).unwrap_or(0), ends)))
    }

    async fn clear_failures(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM passport_failures WHERE `key` = ?")
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
impl AuthCodeStore for MySqlStore {
    async fn insert_auth_code(&self, code: &AuthCodeRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_auth_codes (id, user_id, client_id, scopes, redirect_uri, code_challenge, \
             code_challenge_method, extensions, revoked, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, FALSE, ?, ?)",
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
        let sql = format!("SELECT {AUTH_CODE_COLUMNS} FROM oauth_auth_codes WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        map_one(row, rows::auth_code)
    }

    async fn redeem_auth_code(
        &self,
        id: &str,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, StoreError> {
        retrying(|| {
            self.use_once_and_store(
                "UPDATE oauth_auth_codes SET revoked = TRUE WHERE id = ? AND revoked = FALSE",
                id,
                access,
                refresh,
            )
        })
        .await
    }

    async fn granted_scopes(
        &self,
        user_id: &str,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Vec<String>>, StoreError> {
        let rows = sqlx::query(
            "SELECT scopes FROM oauth_access_tokens WHERE user_id = ? AND client_id = ? \
             AND revoked = FALSE AND expires_at > ?",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        map_all(rows, rows::scopes)
    }
}

#[async_trait]
impl DeviceCodeStore for MySqlStore {
    async fn insert_device_code(&self, code: &DeviceCodeRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_device_codes (id, user_code, client_id, scopes, user_id, user_approved_at, \
             last_polled_at, `interval`, revoked, created_at, expires_at) \
             VALUES (?, ?, ?, ?, NULL, NULL, NULL, ?, FALSE, ?, ?)",
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
        let sql = format!("SELECT {} FROM oauth_device_codes WHERE id = ?", *DEVICE_COLUMNS);
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        map_one(row, rows::device)
    }

    async fn find_pending_user_code(
        &self,
        user_code: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DeviceCodeRecord>, StoreError> {
        let sql = format!(
            "SELECT {} FROM oauth_device_codes WHERE user_code = ? AND revoked = FALSE \
             AND user_id IS NULL AND expires_at > ?",
            *DEVICE_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(user_code)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        map_one(row, rows::device)
    }

    async fn decide_device_code(
        &self,
        id: &str,
        user_id: &str,
        approved_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE oauth_device_codes SET user_id = ?, user_approved_at = ? \
             WHERE id = ? AND user_id IS NULL AND revoked = FALSE",
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
        sqlx::query("UPDATE oauth_device_codes SET last_polled_at = ?, `interval` = ? WHERE id = ?")
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
        retrying(|| {
            self.use_once_and_store(
                "UPDATE oauth_device_codes SET revoked = TRUE \
                 WHERE id = ? AND revoked = FALSE AND user_approved_at IS NOT NULL",
                id,
                access,
                refresh,
            )
        })
        .await
    }
}

#[async_trait]
impl ConsentStore for MySqlStore {
    async fn insert_pending(&self, pending: &PendingAuthorizationRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_pending_authorizations (id, session_id, user_id, payload, expires_at) \
             VALUES (?, ?, ?, ?, ?)",
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
        let row = retrying(|| {
            self.take_once(
                "SELECT id, session_id, user_id, payload, expires_at FROM oauth_pending_authorizations \
                 WHERE id = ? AND session_id = ? FOR UPDATE",
                "DELETE FROM oauth_pending_authorizations WHERE id = ?",
                id,
                session_id,
            )
        })
        .await?;
        let record = map_one(row, |row| {
            Ok(PendingAuthorizationRecord {
                id: row.text("id")?,
                session_id: row.text("session_id")?,
                user_id: row.text("user_id")?,
                payload: rows::payload(&row.text("payload")?),
                expires_at: row.time("expires_at")?,
            })
        })?;
        Ok(record.filter(|record| record.expires_at > now))
    }

    async fn insert_pushed_request(&self, request: &PushedRequestRecord) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO oauth_pushed_requests (id, client_id, payload, expires_at) VALUES (?, ?, ?, ?)")
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
        let row = retrying(|| {
            self.take_once(
                "SELECT id, client_id, payload, expires_at FROM oauth_pushed_requests \
                 WHERE id = ? AND client_id = ? FOR UPDATE",
                "DELETE FROM oauth_pushed_requests WHERE id = ?",
                id,
                client_id,
            )
        })
        .await?;
        let record = map_one(row, |row| {
            Ok(PushedRequestRecord {
                id: row.text("id")?,
                client_id: row.text("client_id")?.into(),
                payload: rows::payload(&row.text("payload")?),
                expires_at: row.time("expires_at")?,
            })
        })?;
        Ok(record.filter(|record| record.expires_at > now))
    }
}

#[async_trait]
impl SessionStore for MySqlStore {
    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO passport_sessions (id, user_id, data, created_at, expires_at) VALUES (?, ?, ?, ?, ?)")
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
        let sql = format!("SELECT {SESSION_COLUMNS} FROM passport_sessions WHERE id = ? AND expires_at > ?");
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        map_one(row, rows::session)
    }

    async fn update_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query("UPDATE passport_sessions SET user_id = ?, data = ?, expires_at = ? WHERE id = ?")
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
        retrying(|| self.delete_session_once(id)).await
    }
}

#[async_trait]
impl UserAdmin for MySqlStore {
    async fn create_user(
        &self,
        name: &str,
        email: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let done = sqlx::query(
            "INSERT INTO passport_users (name, email, password, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(name)
        .bind(email.trim().to_lowercase())
        .bind(password_hash)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.last_insert_id().to_string())
    }

    async fn list_users(&self) -> Result<Vec<UserRow>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM passport_users ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await.map_err(backend)?;
        map_all(rows, rows::user)
    }

    async fn delete_user_row(&self, id: &str) -> Result<bool, StoreError> {
        let Some(numeric) = crate::users::numeric_id(id) else {
            return Ok(false);
        };
        retrying(|| self.delete_user_row_once(id, numeric)).await
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRow>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM passport_users WHERE email = ?");
        let row = sqlx::query(&sql)
            .bind(email.trim().to_lowercase())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        map_one(row, rows::user)
    }

    async fn find_user_by_id(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        let Some(numeric) = crate::users::numeric_id(id) else {
            return Ok(None);
        };
        let sql = format!("SELECT {USER_COLUMNS} FROM passport_users WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(numeric)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        map_one(row, rows::user)
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
        // The driver counts matched rows, so an unchanged row still counts as found.
        let done = sqlx::query("UPDATE passport_users SET email_verified_at = ?, updated_at = ? WHERE id = ?")
            .bind(verified_at)
            .bind(now)
            .bind(numeric)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl Backend for MySqlStore {
    async fn migrate(&self, wanted: &[Schema]) -> Result<usize, MigrateError> {
        let conn = migrate::Conn::MySql(self.pool.acquire().await?);
        migrate::run_mysql(conn, wanted).await
    }

    async fn plan(&self, wanted: &[Schema]) -> Result<Vec<crate::PlannedStep>, MigrateError> {
        let conn = migrate::Conn::MySql(self.pool.acquire().await?);
        migrate::plan(conn, &migrate::MYSQL_DIALECT, wanted).await
    }

    async fn server_secret(&self, candidate: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO passport_secrets (name, value) VALUES ('server', ?) ON DUPLICATE KEY UPDATE name = name",
        )
        .bind(candidate)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        let row = sqlx::query("SELECT value FROM passport_secrets WHERE name = 'server'")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Text(row).text("value").map_err(backend)
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        vec![PoolStats::of("main", &self.pool)]
    }
}
