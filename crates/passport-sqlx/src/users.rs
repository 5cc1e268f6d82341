//! The standalone server's own user accounts (`users` table), their administration
//! (`passport user …`), and [`SqlUserProvider`], which serves them to the core.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use passport::{PasswordHasher, StoreError, User, UserProvider};
use serde::Serialize;
use sqlx::Row as _;
use sqlx::migrate::{Migrate as _, MigrateError, Migrator};

use crate::store::{PgStore, SqliteStore};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// A row of the `users` table. `Debug` hides the password hash.
#[derive(Clone, Serialize)]
pub struct UserRow {
    /// Numeric id, as text (tokens store user ids as text).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Email, lower case; the login name.
    pub email: String,
    /// argon2id PHC string.
    #[serde(skip)]
    pub password_hash: String,
    /// When the account was made.
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

impl UserRow {
    fn into_user(self) -> User {
        User {
            id: self.id,
            name: self.name,
            email: self.email,
            extra: serde_json::Map::new(),
        }
    }
}

/// Administration of the `users` table, and schema migration.
#[async_trait]
pub trait UserAdmin: Send + Sync + Debug {
    /// Adds a user; `StoreError::Conflict` when the email is taken. Returns the new id.
    async fn create_user(
        &self,
        name: &str,
        email: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError>;
    /// Every user, by id.
    async fn list_users(&self) -> Result<Vec<UserRow>, StoreError>;
    /// Deletes a user and revokes their tokens; false when there was no such user.
    async fn delete_user(&self, id: &str) -> Result<bool, StoreError>;
    /// A user by email (case-insensitive).
    async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRow>, StoreError>;
    /// A user by id.
    async fn find_user_by_id(&self, id: &str) -> Result<Option<UserRow>, StoreError>;
    /// Applies pending migrations; returns how many ran.
    async fn migrate(&self) -> Result<usize, MigrateError>;
    /// Closes the pool.
    async fn close(&self);
}

fn backend(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::backend(err),
    }
}

macro_rules! user_admin {
    ($store:ident, $row:ty, $migrator:ident) => {
        impl $store {
            fn user_from_row(row: &$row) -> Result<UserRow, sqlx::Error> {
                let id: i64 = row.try_get("id")?;
                Ok(UserRow {
                    id: id.to_string(),
                    name: row.try_get("name")?,
                    email: row.try_get("email")?,
                    password_hash: row.try_get("password")?,
                    created_at: row.try_get("created_at")?,
                })
            }
        }

        #[async_trait]
        impl UserAdmin for $store {
            async fn create_user(
                &self,
                name: &str,
                email: &str,
                password_hash: &str,
                now: DateTime<Utc>,
            ) -> Result<String, StoreError> {
                let row = sqlx::query(
                    "INSERT INTO users (name, email, password, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $4) RETURNING id",
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
                let rows = sqlx::query("SELECT id, name, email, password, created_at FROM users ORDER BY id")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(backend)?;
                rows.iter()
                    .map(Self::user_from_row)
                    .collect::<Result<_, _>>()
                    .map_err(backend)
            }

            async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
                let Ok(numeric) = id.parse::<i64>() else {
                    return Ok(false);
                };
                let mut tx = self.pool.begin().await.map_err(backend)?;
                let done = sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(numeric)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                // Their browser sessions end and the apps they own stop working.
                sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                sqlx::query("UPDATE oauth_clients SET revoked = TRUE WHERE owner_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                for table in [
                    "oauth_access_tokens",
                    "oauth_refresh_tokens",
                    "oauth_auth_codes",
                    "oauth_device_codes",
                ] {
                    sqlx::query(&format!("UPDATE {table} SET revoked = TRUE WHERE user_id = $1"))
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?;
                }
                tx.commit().await.map_err(backend)?;
                Ok(done.rows_affected() > 0)
            }

            async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRow>, StoreError> {
                // As for client ids: a NUL finds nobody rather than failing on PostgreSQL.
                if email.contains('\0') {
                    return Ok(None);
                }
                let row = sqlx::query("SELECT id, name, email, password, created_at FROM users WHERE email = $1")
                    .bind(email.trim().to_lowercase())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend)?;
                row.as_ref().map(Self::user_from_row).transpose().map_err(backend)
            }

            async fn find_user_by_id(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
                // Ids are compared as numbers of the exact same text: "01" or "1.0" find nobody.
                let Some(numeric) = id.parse::<i64>().ok().filter(|n| n.to_string() == id) else {
                    return Ok(None);
                };
                let row = sqlx::query("SELECT id, name, email, password, created_at FROM users WHERE id = $1")
                    .bind(numeric)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend)?;
                row.as_ref().map(Self::user_from_row).transpose().map_err(backend)
            }

            async fn migrate(&self) -> Result<usize, MigrateError> {
                let mut conn = self.pool.acquire().await?;
                conn.ensure_migrations_table().await?;
                let applied = conn.list_applied_migrations().await?;
                drop(conn);
                let pending = $migrator
                    .iter()
                    .filter(|m| m.migration_type.is_up_migration() && !applied.iter().any(|a| a.version == m.version))
                    .count();
                $migrator.run(&self.pool).await?;
                Ok(pending)
            }

            async fn close(&self) {
                self.pool.close().await;
            }
        }
    };
}

user_admin!(SqliteStore, sqlx::sqlite::SqliteRow, SQLITE_MIGRATIONS);
user_admin!(PgStore, sqlx::postgres::PgRow, POSTGRES_MIGRATIONS);

/// Serves the `users` table to the core: username = email, argon2id passwords checked on the
/// blocking pool.
#[derive(Debug, Clone)]
pub struct SqlUserProvider {
    users: Arc<dyn UserAdmin>,
    hasher: PasswordHasher,
}

impl SqlUserProvider {
    /// A provider over `users`, verifying passwords with `hasher`.
    pub fn new(users: Arc<dyn UserAdmin>, hasher: PasswordHasher) -> Self {
        Self { users, hasher }
    }
}

#[async_trait]
impl UserProvider for SqlUserProvider {
    async fn find_for_passport(&self, username: &str) -> Result<Option<User>, StoreError> {
        Ok(self.users.find_user_by_email(username).await?.map(UserRow::into_user))
    }

    async fn validate_for_passport_password_grant(&self, user: &User, password: &str) -> Result<bool, StoreError> {
        let Some(row) = self.users.find_user_by_id(&user.id).await? else {
            return Ok(false);
        };
        Ok(self.hasher.verify(&row.password_hash, password).await)
    }

    async fn retrieve_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        Ok(self.users.find_user_by_id(id).await?.map(UserRow::into_user))
    }
}
