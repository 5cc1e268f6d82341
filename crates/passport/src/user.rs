//! Users. The core never owns user accounts: a [`UserProvider`] finds them (by username for the
//! password grant, by id for the guard). Library users plug in their own; the standalone server
//! uses the SQL one from `passport-sqlx`. A client's `provider` names which provider serves it.

use std::fmt::Debug;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// The name of the provider used when a client names none.
pub const DEFAULT_PROVIDER: &str = "users";

/// A resource owner, as the guard hands it to handlers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Stable identifier (stored on tokens as text).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Email (the default username).
    pub email: String,
    /// Anything else the provider wants handlers to see.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Where users come from (Passport's user provider plus `findForPassport` /
/// `validateForPassportPasswordGrant`).
#[async_trait]
pub trait UserProvider: Send + Sync + Debug {
    /// The user a password-grant `username` names (Passport's `findForPassport`; by default the
    /// email).
    async fn find_for_passport(&self, username: &str) -> Result<Option<User>, StoreError>;

    /// Whether `password` is right for `user` (Passport's `validateForPassportPasswordGrant`).
    async fn validate_for_passport_password_grant(&self, user: &User, password: &str) -> Result<bool, StoreError>;

    /// The user with this id, if it (still) exists.
    async fn retrieve_by_id(&self, id: &str) -> Result<Option<User>, StoreError>;
}
