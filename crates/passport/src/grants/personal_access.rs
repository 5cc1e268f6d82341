//! Personal access tokens, issued in-process for a user (Passport's `createToken`). There is no
//! HTTP route to this grant: only code holding a [`Passport`] can mint them.

use crate::client::{Client, GrantType};
use crate::error::OAuthError;
use crate::names::check_name;
use crate::passport::{Family, MintSpec, Passport};
use crate::scope::ScopeSet;
use crate::store::AccessTokenRecord;

/// A new personal access token: the JWT (shown once) and its stored record.
#[derive(Clone)]
pub struct PersonalAccessToken {
    /// The bearer token.
    pub access_token: String,
    /// The stored row (`id`, `name`, `scopes`, `expires_at`, …).
    pub token: AccessTokenRecord,
}

impl std::fmt::Debug for PersonalAccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonalAccessToken")
            .field("access_token", &"[redacted]")
            .field("token", &self.token)
            .finish()
    }
}

impl Passport {
    /// The newest live personal access client serving `provider` (`None` = default provider).
    pub async fn personal_access_client(&self, provider: Option<&str>) -> Result<Option<Client>, OAuthError> {
        let provider = provider.unwrap_or(self.default_provider());
        let clients = self.store().list_clients().await?;
        Ok(clients.into_iter().rev().find(|c| {
            !c.revoked
                && c.supports_grant(GrantType::PersonalAccess)
                && c.belongs_to_provider(provider, self.default_provider())
        }))
    }

    /// Issues a personal access token named `name` for `user_id` of `provider` (`None` = the
    /// default provider). Scopes default to the server's default scopes; `*` is allowed.
    /// Errors: `invalid_scope` for an unknown scope, `invalid_request` when no personal access
    /// client exists for the provider.
    pub async fn create_token(
        &self,
        user_id: &str,
        provider: Option<&str>,
        name: &str,
        scopes: &[String],
    ) -> Result<PersonalAccessToken, OAuthError> {
        let name = check_name(name).map_err(|_| {
            OAuthError::invalid_request("The token name must be 1 to 255 characters without control characters")
        })?;
        let client = self.personal_access_client(provider).await?.ok_or_else(|| {
            OAuthError::invalid_request(format!(
                "Personal access client not found for '{}' user provider. Please create one.",
                provider.unwrap_or(self.default_provider())
            ))
        })?;
        // Checked as given: an empty or unknown scope is an error, not dropped.
        self.scopes().validate(scopes)?;
        let requested: ScopeSet = if scopes.is_empty() {
            self.scopes().defaults().clone()
        } else {
            scopes.iter().cloned().collect()
        };
        self.scopes().validate(&requested)?;
        let scopes = self.scopes().finalize(requested, GrantType::PersonalAccess, &client);
        let minted = self
            .mint(MintSpec {
                grant: GrantType::PersonalAccess,
                client: &client,
                user_id: Some(user_id.to_owned()),
                scopes,
                ttl: self.settings().personal_access_tokens_expire_in,
                name: Some(name.to_owned()),
                family: Family::None,
                with_refresh: false,
                jkt: None,
            })
            .await?;
        let minted = self.store_minted(minted).await?;
        Ok(PersonalAccessToken {
            access_token: minted.jwt,
            token: minted.access,
        })
    }
}
