//! Storage traits. The core defines what it needs ([`Store`]); `passport-sqlx` implements it
//! for SQLite and PostgreSQL, and `passport::testing` keeps one in memory. Single-use
//! operations (codes, refresh rotation, device codes, consent requests) are atomic in the
//! store. Revocations return what they revoked, so callers can announce it (and caches drop
//! it). [`SessionStore`] is not part of [`Store`]: only the web adapter's pages use it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::authorize::AuthorizationExtensions;
use crate::client::{Client, ClientId};
use crate::error::StoreError;
use crate::keyring::KeyStore;
use crate::pkce::PkceMethod;
use crate::redirect::RedirectUri;
use crate::scope::ScopeSet;

/// One issued access token (the JWT itself is not stored; its `jti` is the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessTokenRecord {
    /// 80 hex characters; the JWT's `jti`.
    pub id: String,
    /// The user, or `None` for client-credentials tokens.
    pub user_id: Option<String>,
    /// The client it was issued to.
    pub client_id: ClientId,
    /// Name of a personal access token.
    pub name: Option<String>,
    /// Granted scopes.
    pub scopes: ScopeSet,
    /// The grant family (shared with its refresh tokens and their descendants); revoking the
    /// family revokes this token too. `None` for tokens that stand alone.
    pub family_id: Option<String>,
    /// Whether it has been revoked.
    pub revoked: bool,
    /// Issue time.
    pub created_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// One refresh token. The token value is never stored: `id` is its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    /// SHA-256 (hex) of the token value.
    pub id: String,
    /// The access token issued with it.
    pub access_token_id: String,
    /// The client it was issued to.
    pub client_id: ClientId,
    /// The user.
    pub user_id: Option<String>,
    /// The scopes of the grant it continues.
    pub scopes: ScopeSet,
    /// Every token descending from one original grant shares a family; reuse of a rotated token
    /// revokes the whole family (RFC 9700 §4.14.2).
    pub family_id: String,
    /// Whether it has been used or revoked.
    pub revoked: bool,
    /// When it was used for a new pair (`None` while unused); the reuse grace counts from it.
    pub rotated_at: Option<DateTime<Utc>>,
    /// The id of the refresh token it was rotated into.
    pub rotated_to: Option<String>,
    /// When the user authenticated for the grant it continues, for grants made by an OpenID
    /// Connect authentication request (`None` otherwise): a refresh then issues an id_token
    /// with this `auth_time` (Core §12.2).
    pub auth_time: Option<DateTime<Utc>>,
    /// The DPoP key thumbprint a public client's refresh token is bound to (RFC 9449 §5): a
    /// refresh must prove possession of that key.
    pub dpop_jkt: Option<String>,
    /// Issue time.
    pub created_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// What the guard needs to accept a token, read in one indexed query (token joined with client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenStatus {
    /// The token row is revoked.
    pub revoked: bool,
    /// The user on the row (`None` for client credentials).
    pub user_id: Option<String>,
    /// The client on the row.
    pub client_id: ClientId,
    /// The client is revoked or gone.
    pub client_revoked: bool,
    /// The client's user provider.
    pub client_provider: Option<String>,
}

/// Rows removed by a purge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PurgeCounts {
    /// Access tokens.
    pub access_tokens: u64,
    /// Refresh tokens.
    pub refresh_tokens: u64,
    /// Authorization codes.
    pub auth_codes: u64,
    /// Device codes.
    pub device_codes: u64,
    /// Expired browser sessions, consent requests and pushed authorization requests (always
    /// removed).
    pub sessions: u64,
}

/// Which rows a purge removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeFilter {
    /// Remove revoked rows.
    pub revoked: bool,
    /// Remove rows that expired before this instant.
    pub expired_before: Option<DateTime<Utc>>,
    /// The current time: expired sessions, consent requests and pushed authorization requests
    /// are always removed.
    pub now: DateTime<Utc>,
}

/// Clients.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Stores a new client.
    async fn insert_client(&self, client: &Client) -> Result<(), StoreError>;
    /// A client by id, revoked or not.
    async fn find_client(&self, id: &str) -> Result<Option<Client>, StoreError>;
    /// Every client, oldest first.
    async fn list_clients(&self) -> Result<Vec<Client>, StoreError>;
    /// Marks a client revoked; false when there is no such live client.
    async fn revoke_client(&self, id: &str) -> Result<bool, StoreError>;
    /// Replaces a client's stored secret hash.
    async fn update_client_secret(&self, id: &str, secret_hash: &str) -> Result<(), StoreError>;
    /// The live clients a user owns, by name.
    async fn clients_owned_by(&self, owner_id: &str) -> Result<Vec<Client>, StoreError>;
    /// Renames a client and replaces its redirect URIs and post-logout redirect URIs.
    async fn update_client(
        &self,
        id: &str,
        name: &str,
        redirect_uris: &[RedirectUri],
        post_logout_redirect_uris: &[RedirectUri],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Stores an initial access token for client registration (`id`: its SHA-256, hex).
    /// Stores without registration keep the default: unsupported.
    async fn insert_initial_access_token(
        &self,
        id: &str,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let _ = (id, created_at, expires_at);
        Err(StoreError::Unsupported("client registration"))
    }

    /// Whether an initial access token (by its SHA-256) exists and has not expired at `now`.
    async fn initial_access_token_valid(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let _ = (id, now);
        Ok(false)
    }

    /// Records the SHA-256 of a registered client's registration access token (RFC 7592).
    async fn set_client_registration(&self, client_id: &str, token_hash: &str) -> Result<(), StoreError> {
        let _ = (client_id, token_hash);
        Err(StoreError::Unsupported("client registration"))
    }

    /// Records the use of a client assertion (`id`: a hash of the client and the assertion's
    /// `jti`) until `expires_at`; false when it was recorded already and has not expired at
    /// `now` (a replay). Stores without `private_key_jwt` keep the default: unsupported.
    async fn record_client_assertion(
        &self,
        id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let _ = (id, expires_at, now);
        Err(StoreError::Unsupported("private_key_jwt"))
    }

    /// The SHA-256 of a registered client's registration access token, if it has one.
    async fn client_registration(&self, client_id: &str) -> Result<Option<String>, StoreError> {
        let _ = client_id;
        Ok(None)
    }
}

/// Access and refresh tokens.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores an access token and, optionally, its refresh token, in one transaction.
    async fn insert_tokens(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<(), StoreError>;

    /// Stores many token pairs in one transaction, all or none (group commit: one commit for a
    /// burst of concurrent issuances). The default stores them one by one; SQL stores override
    /// it with multi-row `INSERT`s.
    async fn insert_token_batch(
        &self,
        batch: &[(AccessTokenRecord, Option<RefreshTokenRecord>)],
    ) -> Result<(), StoreError> {
        for (access, refresh) in batch {
            self.insert_tokens(access, refresh.as_ref()).await?;
        }
        Ok(())
    }

    /// The guard's lookup: token row joined with its client.
    async fn token_status(&self, access_token_id: &str) -> Result<Option<TokenStatus>, StoreError>;

    /// An access token row.
    async fn find_access_token(&self, id: &str) -> Result<Option<AccessTokenRecord>, StoreError>;

    /// Revokes an access token and its refresh tokens; false when it was not live.
    async fn revoke_access_token(&self, id: &str) -> Result<bool, StoreError>;

    /// A refresh token row by the hash of its value.
    async fn find_refresh_token(&self, id: &str) -> Result<Option<RefreshTokenRecord>, StoreError>;

    /// Atomically: marks refresh token `old_id` used (only if it is still live) at
    /// `access.created_at`, pointing it at `refresh`, revokes the access token issued with it,
    /// and stores the new pair. Returns false, changing nothing, when `old_id` was already used
    /// or revoked: of concurrent rotations exactly one wins.
    async fn rotate_refresh_token(
        &self,
        old_id: &str,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, StoreError>;

    /// The reuse grace: atomically, when `old_id` still points at `child_id` and that child is
    /// live and unused, revokes the child and its access token, points `old_id` at `refresh`
    /// (its rotation time stays), and stores the new pair. Returns the revoked child's access
    /// token id, or `None`, changing nothing, when the child was used or revoked meanwhile (or
    /// another retry won).
    async fn regrant_refresh_token(
        &self,
        old_id: &str,
        child_id: &str,
        access: &AccessTokenRecord,
        refresh: &RefreshTokenRecord,
    ) -> Result<Option<String>, StoreError>;

    /// A user's live (not revoked, not expired) access tokens, newest first.
    async fn tokens_of_user(&self, user_id: &str, now: DateTime<Utc>) -> Result<Vec<AccessTokenRecord>, StoreError>;

    /// Revokes every access and refresh token of a client; returns the revoked access token ids.
    async fn revoke_client_tokens(&self, client_id: &str) -> Result<Vec<String>, StoreError>;

    /// Revokes every access and refresh token of a family; returns the revoked access token ids.
    async fn revoke_refresh_family(&self, family_id: &str) -> Result<Vec<String>, StoreError>;

    /// Revokes everything a user holds or made: their access and refresh tokens, codes and
    /// device codes, the clients they own and every token of those clients. Returns the access
    /// tokens and clients it revoked.
    async fn revoke_user_grants(&self, user_id: &str) -> Result<Revoked, StoreError>;

    /// Deletes dead rows.
    async fn purge(&self, filter: PurgeFilter) -> Result<PurgeCounts, StoreError>;

    /// Records a DPoP proof (`id`: a hash of its `jti` and key thumbprint) until `expires_at`;
    /// false when it is already recorded and not expired at `now` (a replay). Every instance
    /// on this store sees the same proofs.
    async fn record_dpop_proof(
        &self,
        id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Counts one failure of a brute-force limit under `key` (an opaque hash) in the window
    /// open at `now`, or in a new one ending at `ends`; returns the window's count and end.
    /// Stores that several servers share implement it, so the limits hold across them; the
    /// default (`None`) leaves counting to each server's memory.
    async fn count_failure(
        &self,
        key: &str,
        now: DateTime<Utc>,
        ends: DateTime<Utc>,
    ) -> Result<Option<(u32, DateTime<Utc>)>, StoreError> {
        let _ = (key, now, ends);
        Ok(None)
    }

    /// Forgets the failures counted under `key` (a successful sign-in).
    async fn clear_failures(&self, key: &str) -> Result<(), StoreError> {
        let _ = key;
        Ok(())
    }

    /// Succeeds when the backend answers a trivial query now (readiness probes). The default,
    /// for stores that cannot be unreachable, always succeeds.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// An authorization code. The code value is never stored: `id` is its SHA-256. Tokens issued
/// from it join the family named by `id`, so a replayed code revokes them (RFC 6749 §4.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCodeRecord {
    /// SHA-256 (hex) of the code.
    pub id: String,
    /// The user who approved.
    pub user_id: String,
    /// The client it was issued to.
    pub client_id: ClientId,
    /// Approved scopes (not yet finalized).
    pub scopes: ScopeSet,
    /// The `redirect_uri` parameter of the authorization request, if it had one.
    pub redirect_uri: Option<String>,
    /// PKCE challenge (RFC 7636).
    pub code_challenge: Option<String>,
    /// The PKCE method.
    pub code_challenge_method: Option<PkceMethod>,
    /// Extension parameters of the authorization request (`nonce`, `max_age`, …).
    pub extensions: AuthorizationExtensions,
    /// Whether it has been redeemed or revoked.
    pub revoked: bool,
    /// Issue time.
    pub created_at: DateTime<Utc>,
    /// Expiry (ten minutes after issue).
    pub expires_at: DateTime<Utc>,
}

/// A device authorization (RFC 8628). The device code is never stored: `id` is its SHA-256.
/// The user code is short and typed by a person, so it is stored as is (unique).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCodeRecord {
    /// SHA-256 (hex) of the device code.
    pub id: String,
    /// The code the person types (8 consonants, no separators).
    pub user_code: String,
    /// The client that asked.
    pub client_id: ClientId,
    /// Requested scopes.
    pub scopes: ScopeSet,
    /// The person who decided; `None` while pending.
    pub user_id: Option<String>,
    /// When the person approved; `None` while pending or when denied.
    pub user_approved_at: Option<DateTime<Utc>>,
    /// The last poll.
    pub last_polled_at: Option<DateTime<Utc>>,
    /// Minimum seconds between polls (grows by 5 on each `slow_down`).
    pub interval: i64,
    /// Exchanged for tokens (or revoked).
    pub revoked: bool,
    /// Issue time.
    pub created_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// A browser session of the login and consent pages. `Debug` hides the data (CSRF token).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 (hex) of the session cookie's value.
    pub id: String,
    /// The signed-in user, if any.
    pub user_id: Option<String>,
    /// Everything else (CSRF token, intended URL, flags), as JSON.
    pub data: serde_json::Map<String, serde_json::Value>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// An authorization request waiting for the user's decision on the consent page, stored
/// server-side and bound to one session and one single-use `auth_token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAuthorizationRecord {
    /// SHA-256 (hex) of the `auth_token`.
    pub id: String,
    /// The session (hash) it belongs to.
    pub session_id: String,
    /// The user who was asked.
    pub user_id: String,
    /// The validated request, as JSON.
    pub payload: serde_json::Value,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// A pushed authorization request (RFC 9126 §2): the parameters a client posted to the PAR
/// endpoint, waiting for the browser to bring their `request_uri` to the authorize endpoint.
/// The `request_uri` is never stored: `id` is the SHA-256 of its random part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedRequestRecord {
    /// SHA-256 (hex) of the random part of the `request_uri`.
    pub id: String,
    /// The client that pushed it (RFC 9126 §2.2: the `request_uri` is bound to it).
    pub client_id: ClientId,
    /// The authorization request's parameters, as JSON.
    pub payload: serde_json::Value,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// Authorization codes.
#[async_trait]
pub trait AuthCodeStore: Send + Sync {
    /// Stores a new code.
    async fn insert_auth_code(&self, code: &AuthCodeRecord) -> Result<(), StoreError>;
    /// A code by the hash of its value.
    async fn find_auth_code(&self, id: &str) -> Result<Option<AuthCodeRecord>, StoreError>;
    /// Atomically: marks code `id` used (only if it is still unused) and stores the tokens issued
    /// for it. Returns false, changing nothing, when it was already used: of concurrent
    /// exchanges exactly one wins.
    async fn redeem_auth_code(
        &self,
        id: &str,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, StoreError>;
    /// The scope lists of a user's live tokens for a client (for skipping consent).
    async fn granted_scopes(
        &self,
        user_id: &str,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Vec<String>>, StoreError>;
}

/// Device authorizations.
#[async_trait]
pub trait DeviceCodeStore: Send + Sync {
    /// Stores a new device authorization; `StoreError::Conflict` when the user code is taken.
    async fn insert_device_code(&self, code: &DeviceCodeRecord) -> Result<(), StoreError>;
    /// A device authorization by the hash of its device code.
    async fn find_device_code(&self, id: &str) -> Result<Option<DeviceCodeRecord>, StoreError>;
    /// The live, undecided device authorization with this user code.
    async fn find_pending_user_code(
        &self,
        user_code: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DeviceCodeRecord>, StoreError>;
    /// Records the person's decision, only if still undecided; false otherwise.
    async fn decide_device_code(
        &self,
        id: &str,
        user_id: &str,
        approved_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError>;
    /// Records a poll and the (possibly raised) interval.
    async fn record_device_poll(&self, id: &str, polled_at: DateTime<Utc>, interval: i64) -> Result<(), StoreError>;
    /// Atomically: marks an approved device authorization used (only once) and stores the
    /// tokens issued for it. False, changing nothing, when it was already used.
    async fn redeem_device_code(
        &self,
        id: &str,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, StoreError>;
}

/// Consent requests waiting for the user's decision (single-use `auth_token`s).
#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// Stores a pending authorization.
    async fn insert_pending(&self, pending: &PendingAuthorizationRecord) -> Result<(), StoreError>;
    /// Atomically removes and returns the live pending authorization `id` of session
    /// `session_id` (single use).
    async fn take_pending(
        &self,
        id: &str,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingAuthorizationRecord>, StoreError>;

    /// Stores a pushed authorization request (RFC 9126). Stores that several servers share
    /// must keep them there, so that any instance can take them. The default refuses: a store
    /// without it cannot serve the PAR endpoint (it answers `server_error`).
    async fn insert_pushed_request(&self, request: &PushedRequestRecord) -> Result<(), StoreError> {
        let _ = request;
        Err(StoreError::Unsupported(
            "this store keeps no pushed authorization requests",
        ))
    }

    /// Atomically removes and returns the live pushed request `id` of client `client_id`
    /// (single use, RFC 9126 §4). Another client's request is neither returned nor removed.
    async fn take_pushed_request(
        &self,
        id: &str,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<PushedRequestRecord>, StoreError> {
        let _ = (id, client_id, now);
        Ok(None)
    }
}

/// Browser sessions of the sign-in and consent pages. Not part of [`Store`]: the web adapter
/// keeps them; the core never reads them.
#[async_trait]
pub trait SessionStore: Send + Sync + std::fmt::Debug {
    /// Stores a new session.
    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
    /// A live session by id hash (expired ones are not returned).
    async fn find_session(&self, id: &str, now: DateTime<Utc>) -> Result<Option<SessionRecord>, StoreError>;
    /// Saves a session's user, data and expiry.
    async fn update_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
    /// Deletes a session (and the consent requests bound to it).
    async fn delete_session(&self, id: &str) -> Result<(), StoreError>;
}

/// What a revocation revoked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revoked {
    /// Access tokens (`jti`s) that were live and are now revoked.
    pub access_tokens: Vec<String>,
    /// Clients that were live and are now revoked.
    pub clients: Vec<ClientId>,
}

/// Everything the core needs from storage.
pub trait Store:
    ClientStore + TokenStore + AuthCodeStore + DeviceCodeStore + ConsentStore + KeyStore + RevocationFeed + std::fmt::Debug
{
}

impl<T> Store for T where
    T: ClientStore
        + TokenStore
        + AuthCodeStore
        + DeviceCodeStore
        + ConsentStore
        + KeyStore
        + RevocationFeed
        + std::fmt::Debug
{
}

/// What a revocation in the feed names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevocationKind {
    /// An access token (by id).
    Token,
    /// A client, revoked or deleted.
    Client,
    /// A user, deleted.
    User,
    /// A signing key, retired.
    Key,
}

impl RevocationKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Client => "client",
            Self::User => "user",
            Self::Key => "key",
        }
    }

    /// The kind a stored name names.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Token, Self::Client, Self::User, Self::Key]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// One entry of the revocation feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationEvent {
    /// Its position: entries are applied in this order.
    pub seq: i64,
    /// What was revoked.
    pub kind: RevocationKind,
    /// Its id.
    pub subject: String,
}

/// Every revocation in order, as the database recorded it (SQL stores record them with
/// triggers, so revocations by the CLI, another instance, or an application writing the rows
/// itself are in it too). The defaults keep no feed: one instance, whose own evictions are all
/// there is (the in-memory store).
#[async_trait]
pub trait RevocationFeed: Send + Sync {
    /// The position of the newest entry (0 for none).
    async fn revocation_head(&self) -> Result<i64, StoreError> {
        Err(StoreError::Unsupported("this store keeps no revocation feed"))
    }

    /// Up to `limit` entries after `seq`, oldest first.
    async fn revocations_after(&self, _seq: i64, _limit: usize) -> Result<Vec<RevocationEvent>, StoreError> {
        Err(StoreError::Unsupported("this store keeps no revocation feed"))
    }

    /// Waits up to `timeout` for a new entry (PostgreSQL: a notification); returns early when
    /// one may have arrived. The default just waits.
    async fn wait_for_revocation(&self, timeout: std::time::Duration) {
        tokio::time::sleep(timeout).await;
    }
}
