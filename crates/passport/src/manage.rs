//! Managing clients, tokens and users (Passport's `HasApiTokens`, `TokenRepository`,
//! `ClientRepository` and the JSON API's logic). Every state change a person or an operator
//! makes goes through here, whatever the door (CLI, JSON API, library), and announces what it
//! did the same way: each revoked access token is an `AccessTokenRevoked` event. Revocations
//! return what they revoked.

use std::collections::HashMap;

use crate::client::{Client, ClientKind, GrantType, NewClient, name_error};
use crate::error::OAuthError;
use crate::events::Event;
use crate::names::check_name;
use crate::passport::Passport;
use crate::secret::{ClientSecret, hash_client_secret, is_hashed_secret};
use crate::store::{AccessTokenRecord, PurgeCounts, PurgeFilter, Revoked};

/// A client a user has authorized, with the user's live tokens for it.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The client.
    pub client: Client,
    /// The user's live tokens for it, newest first.
    pub tokens: Vec<AccessTokenRecord>,
}

impl Passport {
    /// Announces revoked access tokens.
    fn announce_revoked(&self, token_ids: &[String]) {
        for token_id in token_ids {
            self.emit(Event::AccessTokenRevoked {
                token_id: token_id.clone(),
            });
        }
    }

    async fn live_tokens_with_clients(&self, user_id: &str) -> Result<Vec<(AccessTokenRecord, Client)>, OAuthError> {
        let tokens = self.store().tokens_of_user(user_id, self.now()).await?;
        let mut clients: HashMap<String, Option<Client>> = HashMap::new();
        let mut out = Vec::with_capacity(tokens.len());
        for token in tokens {
            if !clients.contains_key(token.client_id.as_str()) {
                let client = self.find_active_client(token.client_id.as_str()).await?;
                clients.insert(token.client_id.to_string(), client);
            }
            if let Some(Some(client)) = clients.get(token.client_id.as_str()) {
                out.push((token, client.clone()));
            }
        }
        Ok(out)
    }

    /// A user's live personal access tokens, newest first.
    pub async fn personal_access_tokens(&self, user_id: &str) -> Result<Vec<AccessTokenRecord>, OAuthError> {
        Ok(self
            .live_tokens_with_clients(user_id)
            .await?
            .into_iter()
            .filter(|(_, client)| client.supports_grant(GrantType::PersonalAccess))
            .map(|(token, _)| token)
            .collect())
    }

    /// The apps a user has authorized (everything but personal access tokens), grouped by client.
    pub async fn connections(&self, user_id: &str) -> Result<Vec<Connection>, OAuthError> {
        let mut out: Vec<Connection> = Vec::new();
        for (token, client) in self.live_tokens_with_clients(user_id).await? {
            if client.supports_grant(GrantType::PersonalAccess) {
                continue;
            }
            match out.iter_mut().find(|c| c.client.id == client.id) {
                Some(connection) => connection.tokens.push(token),
                None => out.push(Connection {
                    client,
                    tokens: vec![token],
                }),
            }
        }
        Ok(out)
    }

    /// Revokes an access token and its refresh tokens (Passport's `$token->revoke()`); false
    /// when it was not live.
    pub async fn revoke_token(&self, token_id: &str) -> Result<bool, OAuthError> {
        let revoked = self.store().revoke_access_token(token_id).await?;
        if revoked {
            self.announce_revoked(&[token_id.to_owned()]);
        }
        Ok(revoked)
    }

    /// Revokes a user's token if it is theirs; false otherwise (also when already revoked).
    pub async fn revoke_user_token(&self, user_id: &str, token_id: &str) -> Result<bool, OAuthError> {
        match self.store().find_access_token(token_id).await? {
            Some(token) if token.user_id.as_deref() == Some(user_id) && !token.revoked => {
                self.revoke_token(token_id).await
            }
            _ => Ok(false),
        }
    }

    /// Revokes every live token of a user; returns the revoked token ids.
    pub async fn revoke_all_tokens(&self, user_id: &str) -> Result<Vec<String>, OAuthError> {
        let tokens = self.store().tokens_of_user(user_id, self.now()).await?;
        let mut revoked = Vec::with_capacity(tokens.len());
        for token in tokens {
            if self.revoke_token(&token.id).await? {
                revoked.push(token.id);
            }
        }
        Ok(revoked)
    }

    /// Revokes a token family after a replayed code or a reused refresh token (RFC 6749 §4.1.2,
    /// RFC 9700 §4.14.2). Announced by the security event the caller emits, not token by token.
    pub(crate) async fn revoke_family(&self, family_id: &str) -> Result<Vec<String>, OAuthError> {
        let revoked = self.store().revoke_refresh_family(family_id).await?;
        self.token_cache()
            .forget(&[crate::token_cache::Forget::Tokens(revoked.clone())]);
        Ok(revoked)
    }

    /// Revokes a client and every token issued to it. `revoked.clients` is empty when there was
    /// no such live client.
    pub async fn revoke_client(&self, client_id: &str) -> Result<Revoked, OAuthError> {
        // The client first: its tokens stop working at once (the guard checks the client), and
        // of two concurrent revocations only one goes on.
        if !self.store().revoke_client(client_id).await? {
            return Ok(Revoked::default());
        }
        self.token_cache()
            .forget(&[crate::token_cache::Forget::Client(client_id.to_owned())]);
        let access_tokens = self.store().revoke_client_tokens(client_id).await?;
        self.announce_revoked(&access_tokens);
        Ok(Revoked {
            access_tokens,
            clients: vec![client_id.into()],
        })
    }

    /// Registers an authorization-code client owned by `owner_id` (a third-party app made through
    /// the JSON API). Returns it with its plain secret, shown once (`None` when not confidential).
    pub async fn create_owned_client(
        &self,
        owner_id: &str,
        name: &str,
        redirect_uris: Vec<String>,
        post_logout_redirect_uris: Vec<String>,
        confidential: bool,
    ) -> Result<(Client, Option<ClientSecret>), OAuthError> {
        let new = NewClient::new(name, ClientKind::AuthorizationCode { device_flow: false })
            .redirect_uris(redirect_uris)
            .post_logout_redirect_uris(post_logout_redirect_uris)
            .public(!confidential)
            .owner(Some(owner_id.to_owned()));
        self.create_client(new).await
    }

    /// A live client owned by `owner_id`.
    pub async fn owned_client(&self, owner_id: &str, client_id: &str) -> Result<Option<Client>, OAuthError> {
        Ok(self
            .find_active_client(client_id)
            .await?
            .filter(|c| c.owner_id.as_deref() == Some(owner_id)))
    }

    /// The live clients `owner_id` owns, by name.
    pub async fn clients_owned_by(&self, owner_id: &str) -> Result<Vec<Client>, OAuthError> {
        Ok(self.store().clients_owned_by(owner_id).await?)
    }

    /// Every client, oldest first (for operators).
    pub async fn list_clients(&self) -> Result<Vec<Client>, OAuthError> {
        Ok(self.store().list_clients().await?)
    }

    /// Renames a client `owner_id` owns and replaces its redirect URIs; `None` when they own no
    /// such live client. Errors: `invalid_request` for a bad name or redirect URI.
    pub async fn update_owned_client(
        &self,
        owner_id: &str,
        client_id: &str,
        name: &str,
        redirect_uris: &[String],
        post_logout_redirect_uris: Option<&[String]>,
    ) -> Result<Option<Client>, OAuthError> {
        let name = check_name(name).map_err(name_error)?;
        let policy = self.settings().redirect_policy;
        let uris = policy.parse_all(redirect_uris)?;
        let post_logout = post_logout_redirect_uris.map(|u| policy.parse_all(u)).transpose()?;
        let Some(client) = self.owned_client(owner_id, client_id).await? else {
            return Ok(None);
        };
        let post_logout = post_logout.unwrap_or(client.post_logout_redirect_uris);
        self.store()
            .update_client(client_id, name, &uris, &post_logout, self.now())
            .await?;
        self.forget_client_row(client_id);
        self.owned_client(owner_id, client_id).await
    }

    /// Deletes (revokes) a client `owner_id` owns, with its tokens; `None` when they own no such
    /// live client.
    pub async fn delete_owned_client(&self, owner_id: &str, client_id: &str) -> Result<Option<Revoked>, OAuthError> {
        if self.owned_client(owner_id, client_id).await?.is_none() {
            return Ok(None);
        }
        self.revoke_client(client_id).await.map(Some)
    }

    /// Deletes dead rows: revoked ones and/or those expired before a cut-off, and always expired
    /// sessions and consent requests (Passport's `passport:purge`).
    pub async fn purge(&self, filter: PurgeFilter) -> Result<PurgeCounts, OAuthError> {
        Ok(self.store().purge(filter).await?)
    }

    /// Readiness: the store answers now (a `Passport` always holds a signing key: it cannot be
    /// built without one). For a `/ready` probe, 503 while this fails; not for liveness.
    pub async fn ready(&self) -> Result<(), OAuthError> {
        Ok(self.store().ping().await?)
    }

    /// Drops a changed client's cached row (its tokens stay cached: they are unaffected).
    pub(crate) fn forget_client_row(&self, client_id: &str) {
        if let Some(clients) = self.token_cache().clients() {
            clients.forget(client_id);
        }
    }

    /// Hashes client secrets imported in plain text (Passport 11 without hashing); returns how
    /// many it hashed.
    pub async fn hash_plaintext_secrets(&self) -> Result<usize, OAuthError> {
        let mut hashed = 0;
        for client in self.store().list_clients().await? {
            if let Some(secret) = client.secret_hash.as_deref().filter(|s| !s.is_empty())
                && !is_hashed_secret(secret)
            {
                // On a Laravel database the PHP side must still verify it: bcrypt `$2y$`, as
                // Laravel's `Hash::make` writes (cost 12, Laravel's default).
                let stored = match &self.settings().laravel {
                    Some(_) => {
                        let plain = secret.to_owned();
                        self.hasher()
                            .run(move || {
                                bcrypt::hash_with_result(plain, 12)
                                    .map(|h| h.format_for_version(bcrypt::Version::TwoY))
                                    .map_err(|_| crate::secret::HashError::Hashing)
                            })
                            .await
                            .map_err(|_| OAuthError::server_error("cannot hash a client secret"))?
                    }
                    None => hash_client_secret(secret),
                };
                self.store().update_client_secret(client.id.as_str(), &stored).await?;
                self.forget_client_row(client.id.as_str());
                hashed += 1;
            }
        }
        Ok(hashed)
    }

    /// Deletes a user of `provider` (`None` = the default provider) and revokes everything they
    /// hold or made: tokens, codes, device codes, and the clients they own with those clients'
    /// tokens. `None` when there is no such user. Errors: `server_error` when the provider
    /// cannot delete users (then nothing is revoked).
    pub async fn delete_user(&self, provider: Option<&str>, user_id: &str) -> Result<Option<Revoked>, OAuthError> {
        let users = self
            .user_provider(provider)
            .ok_or_else(|| OAuthError::server_error("the user provider is not registered"))?;
        if !users.can_delete_users() {
            return Err(OAuthError::server_error("this user provider cannot delete users"));
        }
        if users.retrieve_by_id(user_id).await?.is_none() {
            return Ok(None);
        }
        // Revoke first: if deleting then fails, nothing the user held still works, and the
        // deletion can simply be tried again.
        let revoked = self.store().revoke_user_grants(user_id).await?;
        let mut forget = vec![crate::token_cache::Forget::User(user_id.to_owned())];
        forget.extend(
            revoked
                .clients
                .iter()
                .map(|id| crate::token_cache::Forget::Client(id.to_string())),
        );
        self.token_cache().forget(&forget);
        self.announce_revoked(&revoked.access_tokens);
        users.delete_user(user_id).await?;
        Ok(Some(revoked))
    }
}
