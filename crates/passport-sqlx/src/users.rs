//! The standalone server's own user accounts (the `passport_users` table), their
//! administration (`passport user …`), and [`SqlUserProvider`], which serves them to the core
//! (their OpenID Connect claims too: `name`, `email`, `email_verified`, `updated_at`).
//! Each dialect's store implements [`UserAdmin`] (`sqlite.rs`, `postgres.rs`).

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use passport::{PasswordHasher, StoreError, User, UserClaims, UserProvider};
use serde::Serialize;

/// A row of the `passport_users` table. `Debug` hides the password hash.
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
    /// When the account last changed (OpenID Connect `updated_at`).
    pub updated_at: DateTime<Utc>,
    /// When the email address was verified (`None`: it was not; OpenID Connect
    /// `email_verified`).
    pub email_verified_at: Option<DateTime<Utc>>,
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

/// Administration of the `passport_users` table.
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
    /// Deletes a user's row and their browser sessions, and nothing else; false when there was
    /// no such user. Delete users with [`passport::Passport::delete_user`], which revokes their
    /// tokens and clients first and then calls this.
    async fn delete_user_row(&self, id: &str) -> Result<bool, StoreError>;
    /// A user by email (case-insensitive).
    async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRow>, StoreError>;
    /// A user by id.
    async fn find_user_by_id(&self, id: &str) -> Result<Option<UserRow>, StoreError>;
    /// Records when the user's email address was verified (`None`: not verified), which
    /// changes `updated_at` to `now`; false when there is no such user.
    async fn set_email_verified(
        &self,
        id: &str,
        verified_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

/// A user id as the table stores it: the exact decimal text of an integer ("01" or "1.0" name
/// nobody).
pub(crate) fn numeric_id(id: &str) -> Option<i64> {
    id.parse::<i64>().ok().filter(|n| n.to_string() == id)
}

/// Serves the `passport_users` table to the core: username = email, argon2id passwords checked on the
/// blocking pool.
#[derive(Debug, Clone)]
pub struct SqlUserProvider {
    users: Arc<dyn UserAdmin>,
    hasher: PasswordHasher,
}

impl SqlUserProvider {
    /// A provider over `users`, verifying passwords with the process's shared hasher
    /// ([`PasswordHasher::default`]).
    pub fn new(users: Arc<dyn UserAdmin>) -> Self {
        Self {
            users,
            hasher: PasswordHasher::default(),
        }
    }

    /// Verifies passwords with `hasher` instead.
    pub fn with_hasher(mut self, hasher: PasswordHasher) -> Self {
        self.hasher = hasher;
        self
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

    fn can_delete_users(&self) -> bool {
        true
    }

    async fn openid_claims(&self, user: &User) -> Result<UserClaims, StoreError> {
        let mut claims = UserClaims::from_user(user);
        if let Some(row) = self.users.find_user_by_id(&user.id).await? {
            claims.email_verified = Some(row.email_verified_at.is_some());
            claims.updated_at = Some(row.updated_at);
        }
        Ok(claims)
    }

    async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
        self.users.delete_user_row(id).await
    }
}
