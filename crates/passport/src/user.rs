//! Users. The core never owns user accounts: a [`UserProvider`] finds them (by username for the
//! password grant, by id for the guard). Library users plug in their own; the standalone server
//! uses the SQL one from `passport-sqlx`. A client's `provider` names which provider serves it.
//! For OpenID Connect a provider also tells a user's standard claims ([`UserClaims`]).

use std::fmt::Debug;
use std::net::IpAddr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::client::ClientId;
use crate::error::{OAuthError, StoreError};
use crate::events::Event;
use crate::passport::Passport;

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

/// What OpenID Connect learns about a user (Core §5.1 standard claims), from
/// [`UserProvider::openid_claims`]. Each claim is released with the scope that names it
/// (Core §5.4): `name`, `updated_at` and the other profile claims with `profile`, `email` and
/// `email_verified` with `email`, `address` with `address`, `phone_number` and
/// `phone_number_verified` with `phone`; any other claim in [`other`](Self::other) (custom
/// ones) goes with `openid`, into every id_token and userinfo answer. Absent values are left
/// out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserClaims {
    /// `name`: full name.
    pub name: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// `email_verified`: whether the provider checked that the user controls `email` (leave
    /// `None` when it does not know).
    pub email_verified: Option<bool>,
    /// `updated_at`: when the user's information last changed (sent as Unix seconds).
    pub updated_at: Option<DateTime<Utc>>,
    /// More claims: other standard ones (`given_name`, `family_name`, `picture`, `locale`,
    /// `phone_number`…) and custom ones. Names the protocol uses (`sub`, `iss`, `aud`, `nonce`,
    /// …, see [`crate::RESERVED_CLAIMS`]) fail the request with `server_error`.
    pub other: Map<String, Value>,
}

impl UserClaims {
    /// `name` and `email` from the [`User`] (when not empty); nothing else is known.
    pub fn from_user(user: &User) -> Self {
        let known = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Self {
            name: known(&user.name),
            email: known(&user.email),
            ..Self::default()
        }
    }
}

/// Where users come from (Passport's user provider plus `findForPassport` /
/// `validateForPassportPasswordGrant`). Implement it with `#[passport::async_trait]`:
///
/// ```
/// use passport::{StoreError, User, UserProvider, async_trait};
///
/// #[derive(Debug)]
/// struct Staff;
///
/// #[async_trait]
/// impl UserProvider for Staff {
///     async fn find_for_passport(&self, username: &str) -> Result<Option<User>, StoreError> {
///         Ok(None)
///     }
///     async fn validate_for_passport_password_grant(&self, user: &User, password: &str) -> Result<bool, StoreError> {
///         Ok(false)
///     }
///     async fn retrieve_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
///         Ok(None)
///     }
/// }
/// ```
#[async_trait]
pub trait UserProvider: Send + Sync + Debug {
    /// The user a password-grant `username` names (Passport's `findForPassport`; by default the
    /// email).
    async fn find_for_passport(&self, username: &str) -> Result<Option<User>, StoreError>;

    /// Whether `password` is right for `user` (Passport's `validateForPassportPasswordGrant`).
    async fn validate_for_passport_password_grant(&self, user: &User, password: &str) -> Result<bool, StoreError>;

    /// The user with this id, if it (still) exists.
    async fn retrieve_by_id(&self, id: &str) -> Result<Option<User>, StoreError>;

    /// Whether [`delete_user`](Self::delete_user) works.
    fn can_delete_users(&self) -> bool {
        false
    }

    /// Deletes the user (and whatever the provider keeps for them, such as browser sessions);
    /// false when there was no such user. [`crate::Passport::delete_user`] calls it after
    /// revoking the user's grants. Providers that cannot delete keep this default (and
    /// [`can_delete_users`](Self::can_delete_users) false).
    async fn delete_user(&self, _id: &str) -> Result<bool, StoreError> {
        Err(StoreError::Unsupported("this user provider cannot delete users"))
    }

    /// The user's OpenID Connect claims, for id_tokens and the userinfo endpoint. The default
    /// gives `name` and `email` from the [`User`] ([`UserClaims::from_user`]); override it to
    /// add `email_verified`, `updated_at` and more.
    async fn openid_claims(&self, user: &User) -> Result<UserClaims, StoreError> {
        Ok(UserClaims::from_user(user))
    }

    /// For a username that names nobody (or an implausible one), spends the time checking a
    /// password of one of this provider's users takes, so that timing does not tell which
    /// accounts exist; `true` when it did. The default does nothing and answers `false`: the
    /// core then verifies against its own argon2id dummy
    /// ([`PasswordHasher::verify_dummy`](crate::PasswordHasher::verify_dummy)), which fits
    /// users hashed by [`PasswordHasher::hash`](crate::PasswordHasher::hash). A provider whose
    /// users' hashes are something else (bcrypt 12 from Laravel, other argon2 costs) runs a
    /// dummy like them instead
    /// ([`PasswordHasher::verify_dummy_like`](crate::PasswordHasher::verify_dummy_like)).
    async fn verify_dummy_password(&self, _password: &str) -> bool {
        false
    }
}

impl Passport {
    /// The sign-in page's check, with the default provider: refused with
    /// `temporarily_unavailable` while this account (or `address`) has failed too often
    /// (checked before the password, so a right one tells nothing during a lockout); a failure
    /// counts, a success clears the account's count for this address.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
        address: Option<IpAddr>,
    ) -> Result<Option<User>, OAuthError> {
        let provider = self
            .user_provider(None)
            .ok_or_else(|| OAuthError::server_error("no user provider registered"))?;
        self.limits().check_login(username, address)?;
        let user = self
            .authenticate_user(provider.as_ref(), None, username, password)
            .await?;
        let store = self.store();
        match &user {
            Some(_) => self.limits().login_succeeded(store.as_ref(), username, address).await,
            None => self.limits().login_failed(store.as_ref(), username, address).await,
        }
        Ok(user)
    }
}

/// Longest username and password looked up at all; longer ones fail like wrong ones.
const MAX_USERNAME: usize = 255;
const MAX_PASSWORD: usize = 1024;

impl Passport {
    /// Checks a username and password with `provider` (Passport's `findForPassport` and
    /// `validateForPassportPasswordGrant`): the password grant and the sign-in page both come
    /// here. Unknown user and wrong password do the same hashing work and both answer `None`,
    /// and emit `UserAuthenticationFailed` (with the client for the password grant).
    pub async fn authenticate_user(
        &self,
        provider: &dyn UserProvider,
        client_id: Option<&ClientId>,
        username: &str,
        password: &str,
    ) -> Result<Option<User>, OAuthError> {
        let plausible = !username.is_empty()
            && !password.is_empty()
            && username.len() <= MAX_USERNAME
            && password.len() <= MAX_PASSWORD;
        let user = match plausible {
            true => provider.find_for_passport(username).await?,
            false => None,
        };
        let verified = match user {
            Some(user) => provider
                .validate_for_passport_password_grant(&user, password)
                .await?
                .then_some(user),
            None => {
                if !provider.verify_dummy_password(password).await {
                    self.hasher().verify_dummy(password).await;
                }
                None
            }
        };
        if verified.is_none() {
            tracing::info!(
                client_id = client_id.map(ClientId::as_str),
                "user authentication failed"
            );
            self.emit(Event::UserAuthenticationFailed {
                client_id: client_id.map(ToString::to_string),
            });
        }
        Ok(verified)
    }
}
