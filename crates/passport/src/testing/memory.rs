//! An in-memory [`Store`] and [`SessionStore`]: the same semantics as the SQL stores (it runs
//! the same conformance suite), one mutex, nothing on disk. For unit tests of the grants with a
//! [`crate::MockClock`], and for application tests that need no database.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::client::{Client, ClientId};
use crate::error::StoreError;
use crate::keyring::{KeyStore, StoredKey};
use crate::redirect::RedirectUri;
use crate::scope::ScopeSet;
use crate::store::{
    AccessTokenRecord, AuthCodeRecord, AuthCodeStore, ClientStore, ConsentStore, DeviceCodeRecord, DeviceCodeStore,
    PendingAuthorizationRecord, PurgeCounts, PurgeFilter, PushedRequestRecord, RefreshTokenRecord, Revoked,
    SessionRecord, SessionStore, TokenStatus, TokenStore,
};

#[derive(Debug, Default)]
struct State {
    clients: Vec<Client>,
    access: HashMap<String, AccessTokenRecord>,
    refresh: HashMap<String, RefreshTokenRecord>,
    codes: HashMap<String, AuthCodeRecord>,
    devices: HashMap<String, DeviceCodeRecord>,
    pending: HashMap<String, PendingAuthorizationRecord>,
    pushed: HashMap<String, PushedRequestRecord>,
    sessions: HashMap<String, SessionRecord>,
    keys: Vec<StoredKey>,
    /// DPoP proof ids and when they expire.
    dpop_proofs: HashMap<String, DateTime<Utc>>,
}

impl State {
    fn client_mut(&mut self, id: &str) -> Option<&mut Client> {
        self.clients.iter_mut().find(|c| c.id == id)
    }

    /// `Conflict` when either token's id is taken (checked before anything changes, as a SQL
    /// transaction rolls back).
    fn check_free(&self, access: &AccessTokenRecord, refresh: Option<&RefreshTokenRecord>) -> Result<(), StoreError> {
        if self.access.contains_key(&access.id) || refresh.is_some_and(|r| self.refresh.contains_key(&r.id)) {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    fn insert_tokens(
        &mut self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<(), StoreError> {
        self.check_free(access, refresh)?;
        self.access.insert(access.id.clone(), access.clone());
        if let Some(refresh) = refresh {
            self.refresh.insert(refresh.id.clone(), refresh.clone());
        }
        Ok(())
    }

    /// Revokes the live access tokens matching `select` (and every refresh token matching
    /// `select_refresh`); returns the access token ids.
    fn revoke_where(
        &mut self,
        select: impl Fn(&AccessTokenRecord) -> bool,
        select_refresh: impl Fn(&RefreshTokenRecord) -> bool,
    ) -> Vec<String> {
        let mut ids = Vec::new();
        for token in self.access.values_mut().filter(|t| !t.revoked && select(t)) {
            token.revoked = true;
            ids.push(token.id.clone());
        }
        for token in self.refresh.values_mut().filter(|t| select_refresh(t)) {
            token.revoked = true;
        }
        ids.sort();
        ids
    }
}

/// The in-memory store. Cheap to create; share it with `Arc`.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl ClientStore for MemoryStore {
    async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.clients.iter().any(|c| c.id == client.id) {
            return Err(StoreError::Conflict);
        }
        state.clients.push(client.clone());
        Ok(())
    }

    async fn find_client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        Ok(self.state().clients.iter().find(|c| c.id == id).cloned())
    }

    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        let mut clients = self.state().clients.clone();
        clients.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(clients)
    }

    async fn revoke_client(&self, id: &str) -> Result<bool, StoreError> {
        Ok(match self.state().client_mut(id) {
            Some(client) if !client.revoked => {
                client.revoked = true;
                true
            }
            _ => false,
        })
    }

    async fn update_client_secret(&self, id: &str, secret_hash: &str) -> Result<(), StoreError> {
        if let Some(client) = self.state().client_mut(id) {
            client.secret_hash = Some(secret_hash.to_owned());
        }
        Ok(())
    }

    async fn clients_owned_by(&self, owner_id: &str) -> Result<Vec<Client>, StoreError> {
        let mut clients: Vec<Client> = self
            .state()
            .clients
            .iter()
            .filter(|c| c.owner_id.as_deref() == Some(owner_id) && !c.revoked)
            .cloned()
            .collect();
        clients.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        Ok(clients)
    }

    async fn update_client(
        &self,
        id: &str,
        name: &str,
        redirect_uris: &[RedirectUri],
        post_logout_redirect_uris: &[RedirectUri],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if let Some(client) = self.state().client_mut(id) {
            client.name = name.to_owned();
            client.redirect_uris = redirect_uris.to_vec();
            client.post_logout_redirect_uris = post_logout_redirect_uris.to_vec();
            client.updated_at = now;
        }
        Ok(())
    }
}

impl crate::store::RevocationFeed for MemoryStore {}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn list_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        Ok(self.state().keys.clone())
    }

    async fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.keys.iter().any(|k| k.kid == key.kid) {
            return Err(StoreError::Conflict);
        }
        state.keys.push(key.clone());
        Ok(())
    }

    async fn retire_key(&self, kid: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.keys.iter_mut().find(|k| k.kid == kid && k.retired_at.is_none()) {
            Some(key) => {
                key.retired_at = Some(at);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn insert_tokens(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<(), StoreError> {
        self.state().insert_tokens(access, refresh)
    }

    async fn insert_token_batch(
        &self,
        batch: &[(AccessTokenRecord, Option<RefreshTokenRecord>)],
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        for (access, refresh) in batch {
            state.check_free(access, refresh.as_ref())?;
        }
        for (access, refresh) in batch {
            state.insert_tokens(access, refresh.as_ref())?;
        }
        Ok(())
    }

    async fn token_status(&self, access_token_id: &str) -> Result<Option<TokenStatus>, StoreError> {
        let state = self.state();
        let Some(token) = state.access.get(access_token_id) else {
            return Ok(None);
        };
        // As the SQL stores' join: a token whose client row is gone is not found.
        let Some(client) = state.clients.iter().find(|c| c.id == token.client_id) else {
            return Ok(None);
        };
        Ok(Some(TokenStatus {
            revoked: token.revoked,
            user_id: token.user_id.clone(),
            client_id: token.client_id.clone(),
            client_revoked: client.revoked,
            client_provider: client.provider.clone(),
        }))
    }

    async fn find_access_token(&self, id: &str) -> Result<Option<AccessTokenRecord>, StoreError> {
        Ok(self.state().access.get(id).cloned())
    }

    async fn revoke_access_token(&self, id: &str) -> Result<bool, StoreError> {
        let mut state = self.state();
        let revoked = state.revoke_where(|t| t.id == id, |r| r.access_token_id == id);
        Ok(!revoked.is_empty())
    }

    async fn find_refresh_token(&self, id: &str) -> Result<Option<RefreshTokenRecord>, StoreError> {
        Ok(self.state().refresh.get(id).cloned())
    }

    async fn rotate_refresh_token(
        &self,
        old_id: &str,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        state.check_free(access, refresh)?;
        let old_access = match state.refresh.get_mut(old_id) {
            Some(old) if !old.revoked => {
                old.revoked = true;
                old.rotated_at = Some(access.created_at);
                old.rotated_to = refresh.map(|r| r.id.clone());
                old.access_token_id.clone()
            }
            _ => return Ok(false),
        };
        if let Some(token) = state.access.get_mut(&old_access) {
            token.revoked = true;
        }
        state.insert_tokens(access, refresh)?;
        Ok(true)
    }

    async fn regrant_refresh_token(
        &self,
        old_id: &str,
        child_id: &str,
        access: &AccessTokenRecord,
        refresh: &RefreshTokenRecord,
    ) -> Result<Option<String>, StoreError> {
        let mut state = self.state();
        state.check_free(access, Some(refresh))?;
        let points_at_child = state
            .refresh
            .get(old_id)
            .is_some_and(|old| old.rotated_to.as_deref() == Some(child_id));
        let child_access = match state.refresh.get_mut(child_id) {
            Some(child) if points_at_child && !child.revoked => {
                child.revoked = true;
                child.access_token_id.clone()
            }
            _ => return Ok(None),
        };
        if let Some(token) = state.access.get_mut(&child_access) {
            token.revoked = true;
        }
        if let Some(old) = state.refresh.get_mut(old_id) {
            old.rotated_to = Some(refresh.id.clone());
        }
        state.insert_tokens(access, Some(refresh))?;
        Ok(Some(child_access))
    }

    async fn tokens_of_user(&self, user_id: &str, now: DateTime<Utc>) -> Result<Vec<AccessTokenRecord>, StoreError> {
        let mut tokens: Vec<AccessTokenRecord> = self
            .state()
            .access
            .values()
            .filter(|t| t.user_id.as_deref() == Some(user_id) && !t.revoked && t.expires_at > now)
            .cloned()
            .collect();
        tokens.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(tokens)
    }

    async fn revoke_client_tokens(&self, client_id: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .state()
            .revoke_where(|t| t.client_id == client_id, |r| r.client_id == client_id))
    }

    async fn revoke_refresh_family(&self, family_id: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.state().revoke_where(
            |t| t.family_id.as_deref() == Some(family_id),
            |r| r.family_id == family_id,
        ))
    }

    async fn revoke_user_grants(&self, user_id: &str) -> Result<Revoked, StoreError> {
        let mut state = self.state();
        let mine = |u: &Option<String>| u.as_deref() == Some(user_id);
        let mut clients: Vec<ClientId> = Vec::new();
        for client in state
            .clients
            .iter_mut()
            .filter(|c| c.owner_id.as_deref() == Some(user_id) && !c.revoked)
        {
            client.revoked = true;
            clients.push(client.id.clone());
        }
        // Every client they own, also those revoked before, whose tokens may still be live.
        let owned: Vec<ClientId> = state
            .clients
            .iter()
            .filter(|c| c.owner_id.as_deref() == Some(user_id))
            .map(|c| c.id.clone())
            .collect();
        let mut access_tokens = state.revoke_where(
            |t| mine(&t.user_id) || owned.contains(&t.client_id),
            |r| mine(&r.user_id) || owned.contains(&r.client_id),
        );
        access_tokens.sort();
        for code in state.codes.values_mut().filter(|c| c.user_id == user_id) {
            code.revoked = true;
        }
        for device in state.devices.values_mut().filter(|d| mine(&d.user_id)) {
            device.revoked = true;
        }
        Ok(Revoked { access_tokens, clients })
    }

    async fn record_dpop_proof(
        &self,
        id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        state.dpop_proofs.retain(|_, expires| *expires > now);
        Ok(state.dpop_proofs.insert(id.to_owned(), expires_at).is_none())
    }

    async fn purge(&self, filter: PurgeFilter) -> Result<PurgeCounts, StoreError> {
        let dead = |revoked: bool, expires_at: DateTime<Utc>| {
            (filter.revoked && revoked) || filter.expired_before.is_some_and(|cutoff| expires_at < cutoff)
        };
        let mut state = self.state();
        let mut counts = PurgeCounts::default();
        let before = state.access.len();
        state.access.retain(|_, t| !dead(t.revoked, t.expires_at));
        counts.access_tokens = (before - state.access.len()) as u64;
        let before = state.refresh.len();
        state.refresh.retain(|_, t| !dead(t.revoked, t.expires_at));
        counts.refresh_tokens = (before - state.refresh.len()) as u64;
        let before = state.codes.len();
        state.codes.retain(|_, c| !dead(c.revoked, c.expires_at));
        counts.auth_codes = (before - state.codes.len()) as u64;
        let before = state.devices.len();
        state.devices.retain(|_, d| !dead(d.revoked, d.expires_at));
        counts.device_codes = (before - state.devices.len()) as u64;
        let before = state.sessions.len() + state.pending.len() + state.pushed.len();
        state.sessions.retain(|_, s| s.expires_at >= filter.now);
        state.pending.retain(|_, p| p.expires_at >= filter.now);
        state.pushed.retain(|_, p| p.expires_at >= filter.now);
        counts.sessions = (before - state.sessions.len() - state.pending.len() - state.pushed.len()) as u64;
        Ok(counts)
    }
}

#[async_trait]
impl AuthCodeStore for MemoryStore {
    async fn insert_auth_code(&self, code: &AuthCodeRecord) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.codes.contains_key(&code.id) {
            return Err(StoreError::Conflict);
        }
        state.codes.insert(code.id.clone(), code.clone());
        Ok(())
    }

    async fn find_auth_code(&self, id: &str) -> Result<Option<AuthCodeRecord>, StoreError> {
        Ok(self.state().codes.get(id).cloned())
    }

    async fn redeem_auth_code(
        &self,
        id: &str,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        state.check_free(access, refresh)?;
        match state.codes.get_mut(id) {
            Some(code) if !code.revoked => code.revoked = true,
            _ => return Ok(false),
        }
        state.insert_tokens(access, refresh)?;
        Ok(true)
    }

    async fn granted_scopes(
        &self,
        user_id: &str,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Vec<String>>, StoreError> {
        Ok(self
            .state()
            .access
            .values()
            .filter(|t| {
                t.user_id.as_deref() == Some(user_id) && t.client_id == client_id && !t.revoked && t.expires_at > now
            })
            .map(|t| t.scopes.to_vec())
            .collect())
    }
}

#[async_trait]
impl DeviceCodeStore for MemoryStore {
    async fn insert_device_code(&self, code: &DeviceCodeRecord) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.devices.contains_key(&code.id) || state.devices.values().any(|d| d.user_code == code.user_code) {
            return Err(StoreError::Conflict);
        }
        state.devices.insert(code.id.clone(), code.clone());
        Ok(())
    }

    async fn find_device_code(&self, id: &str) -> Result<Option<DeviceCodeRecord>, StoreError> {
        Ok(self.state().devices.get(id).cloned())
    }

    async fn find_pending_user_code(
        &self,
        user_code: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DeviceCodeRecord>, StoreError> {
        Ok(self
            .state()
            .devices
            .values()
            .find(|d| d.user_code == user_code && !d.revoked && d.user_id.is_none() && d.expires_at > now)
            .cloned())
    }

    async fn decide_device_code(
        &self,
        id: &str,
        user_id: &str,
        approved_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        Ok(match self.state().devices.get_mut(id) {
            Some(device) if device.user_id.is_none() && !device.revoked => {
                device.user_id = Some(user_id.to_owned());
                device.user_approved_at = approved_at;
                true
            }
            _ => false,
        })
    }

    async fn record_device_poll(&self, id: &str, polled_at: DateTime<Utc>, interval: i64) -> Result<(), StoreError> {
        if let Some(device) = self.state().devices.get_mut(id) {
            device.last_polled_at = Some(polled_at);
            device.interval = interval;
        }
        Ok(())
    }

    async fn redeem_device_code(
        &self,
        id: &str,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        state.check_free(access, refresh)?;
        match state.devices.get_mut(id) {
            Some(device) if !device.revoked && device.user_approved_at.is_some() => device.revoked = true,
            _ => return Ok(false),
        }
        state.insert_tokens(access, refresh)?;
        Ok(true)
    }
}

#[async_trait]
impl ConsentStore for MemoryStore {
    async fn insert_pending(&self, pending: &PendingAuthorizationRecord) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.pending.contains_key(&pending.id) {
            return Err(StoreError::Conflict);
        }
        state.pending.insert(pending.id.clone(), pending.clone());
        Ok(())
    }

    async fn take_pending(
        &self,
        id: &str,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingAuthorizationRecord>, StoreError> {
        let mut state = self.state();
        if state.pending.get(id).is_none_or(|p| p.session_id != session_id) {
            return Ok(None);
        }
        Ok(state.pending.remove(id).filter(|p| p.expires_at > now))
    }

    async fn insert_pushed_request(&self, request: &PushedRequestRecord) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.pushed.contains_key(&request.id) {
            return Err(StoreError::Conflict);
        }
        state.pushed.insert(request.id.clone(), request.clone());
        Ok(())
    }

    async fn take_pushed_request(
        &self,
        id: &str,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<PushedRequestRecord>, StoreError> {
        let mut state = self.state();
        if state.pushed.get(id).is_none_or(|p| p.client_id != client_id) {
            return Ok(None);
        }
        Ok(state.pushed.remove(id).filter(|p| p.expires_at > now))
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.sessions.contains_key(&session.id) {
            return Err(StoreError::Conflict);
        }
        state.sessions.insert(session.id.clone(), session.clone());
        Ok(())
    }

    async fn find_session(&self, id: &str, now: DateTime<Utc>) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.state().sessions.get(id).filter(|s| s.expires_at > now).cloned())
    }

    async fn update_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        if let Some(stored) = self.state().sessions.get_mut(&session.id) {
            stored.user_id.clone_from(&session.user_id);
            stored.data.clone_from(&session.data);
            stored.expires_at = session.expires_at;
        }
        Ok(())
    }

    async fn delete_session(&self, id: &str) -> Result<(), StoreError> {
        let mut state = self.state();
        state.sessions.remove(id);
        state.pending.retain(|_, p| p.session_id != id);
        Ok(())
    }
}

/// Scopes from string slices (for building records in tests).
pub fn scopes(list: &[&str]) -> ScopeSet {
    list.iter().copied().collect()
}

/// Users kept in memory, for the password grant and the sign-in page in tests: email is the
/// username, passwords are argon2id hashes made by the given hasher.
#[derive(Debug)]
pub struct MemoryUsers {
    users: Mutex<Vec<(crate::user::User, String)>>,
    hasher: crate::secret::PasswordHasher,
}

impl MemoryUsers {
    /// No users; passwords hashed and checked with `hasher`.
    pub fn new(hasher: crate::secret::PasswordHasher) -> Self {
        Self {
            users: Mutex::new(Vec::new()),
            hasher,
        }
    }

    /// Adds a user with this id, email and password.
    pub async fn add(&self, id: &str, email: &str, password: &str) -> Result<crate::user::User, crate::HashError> {
        let hash = self.hasher.hash(password).await?;
        let user = crate::user::User {
            id: id.to_owned(),
            name: email.split('@').next().unwrap_or_default().to_owned(),
            email: email.to_owned(),
            extra: serde_json::Map::new(),
        };
        self.lock().push((user.clone(), hash));
        Ok(user)
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(crate::user::User, String)>> {
        self.users.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl crate::user::UserProvider for MemoryUsers {
    async fn find_for_passport(&self, username: &str) -> Result<Option<crate::user::User>, StoreError> {
        Ok(self
            .lock()
            .iter()
            .find(|(u, _)| u.email == username)
            .map(|(u, _)| u.clone()))
    }

    async fn validate_for_passport_password_grant(
        &self,
        user: &crate::user::User,
        password: &str,
    ) -> Result<bool, StoreError> {
        let hash = self
            .lock()
            .iter()
            .find(|(u, _)| u.id == user.id)
            .map(|(_, h)| h.clone());
        Ok(match hash {
            Some(hash) => self.hasher.verify(&hash, password).await,
            None => false,
        })
    }

    async fn retrieve_by_id(&self, id: &str) -> Result<Option<crate::user::User>, StoreError> {
        Ok(self.lock().iter().find(|(u, _)| u.id == id).map(|(u, _)| u.clone()))
    }

    fn can_delete_users(&self) -> bool {
        true
    }

    async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
        let mut users = self.lock();
        let before = users.len();
        users.retain(|(u, _)| u.id != id);
        Ok(users.len() < before)
    }
}
