//! Managing tokens and clients on a user's behalf (Passport's `HasApiTokens`, `TokenRepository`
//! and the JSON API's logic): connected apps, personal access tokens, revocation, and clients
//! owned by users.

use std::collections::HashMap;

use crate::client::{Client, ClientKind, GrantType, NewClient};
use crate::error::OAuthError;
use crate::events::Event;
use crate::passport::Passport;
use crate::secret::ClientSecret;
use crate::store::AccessTokenRecord;

/// A client a user has authorized, with the user's live tokens for it.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The client.
    pub client: Client,
    /// The user's live tokens for it, newest first.
    pub tokens: Vec<AccessTokenRecord>,
}

impl Passport {
    async fn live_tokens_with_clients(&self, user_id: &str) -> Result<Vec<(AccessTokenRecord, Client)>, OAuthError> {
        let tokens = self.store().tokens_of_user(user_id, self.now()).await?;
        let mut clients: HashMap<String, Option<Client>> = HashMap::new();
        let mut out = Vec::with_capacity(tokens.len());
        for token in tokens {
            if !clients.contains_key(&token.client_id) {
                let client = self.find_active_client(&token.client_id).await?;
                clients.insert(token.client_id.clone(), client);
            }
            if let Some(Some(client)) = clients.get(&token.client_id) {
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

    /// Revokes a user's token if it is theirs; false otherwise (also when already revoked).
    pub async fn revoke_user_token(&self, user_id: &str, token_id: &str) -> Result<bool, OAuthError> {
        match self.store().find_access_token(token_id).await? {
            Some(token) if token.user_id.as_deref() == Some(user_id) && !token.revoked => {
                self.revoke_token(token_id).await
            }
            _ => Ok(false),
        }
    }

    /// Revokes every live token of a user; returns how many.
    pub async fn revoke_all_tokens(&self, user_id: &str) -> Result<usize, OAuthError> {
        let tokens = self.store().tokens_of_user(user_id, self.now()).await?;
        let mut revoked = 0;
        for token in tokens {
            if self.revoke_token(&token.id).await? {
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// Registers an authorization-code client owned by `owner_id` (a third-party app made through
    /// the JSON API). Returns it with its plain secret, shown once (`None` when not confidential).
    pub async fn create_owned_client(
        &self,
        owner_id: &str,
        name: &str,
        redirect_uris: Vec<String>,
        confidential: bool,
    ) -> Result<(Client, Option<ClientSecret>), OAuthError> {
        let new = NewClient::new(name, ClientKind::AuthorizationCode { device_flow: false })
            .redirect_uris(redirect_uris)
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

    /// Revokes a client and every token issued to it.
    pub async fn revoke_client_and_tokens(&self, client_id: &str) -> Result<bool, OAuthError> {
        for token_id in self.store().revoke_client_tokens(client_id).await? {
            self.emit(Event::AccessTokenRevoked { token_id });
        }
        Ok(self.store().revoke_client(client_id).await?)
    }
}
