//! Client credentials grant (RFC 6749 §4.4): a confidential client gets a token for itself.
//! No user, no refresh token; `*` is allowed.

use crate::client::GrantType;
use crate::error::OAuthError;
use crate::grants::{TokenRequest, TokenResponse};
use crate::passport::{Family, MintSpec, Passport};
use crate::scope::ScopeSet;

pub(super) async fn handle(passport: &Passport, request: &TokenRequest) -> Result<TokenResponse, OAuthError> {
    let client = passport.client_for_grant(request, GrantType::ClientCredentials).await?;
    // §4.4: "The client credentials grant type MUST only be used by confidential clients."
    if !client.is_confidential() {
        return Err(OAuthError::invalid_client());
    }
    let requested = passport.scopes().requested(request.param("scope"))?;
    let scopes = passport
        .scopes()
        .finalize(requested, GrantType::ClientCredentials, &client);
    let jkt = passport.dpop_binding(request, &client).await?;
    let minted = passport
        .mint(MintSpec {
            grant: GrantType::ClientCredentials,
            client: &client,
            user_id: None,
            scopes,
            ttl: passport.settings().tokens_expire_in,
            name: None,
            family: Family::None,
            with_refresh: false,
            jkt,
        })
        .await?;
    let minted = passport.store_minted(minted).await?;
    let asked = ScopeSet::parse(request.param("scope"));
    Ok(TokenResponse::from_minted(&minted, &asked))
}
