//! Client credentials grant (RFC 6749 §4.4): a confidential client gets a token for itself.
//! No user, no refresh token; `*` is allowed.

use crate::client::GrantType;
use crate::error::OAuthError;
use crate::grants::{TokenRequest, TokenResponse};
use crate::passport::{Family, MintSpec, Passport};
use crate::scope::parse_scope_param;

pub(super) async fn handle(passport: &Passport, request: &TokenRequest) -> Result<TokenResponse, OAuthError> {
    let client = passport
        .authenticate_client(request, GrantType::ClientCredentials)
        .await?;
    if !client.is_confidential() {
        return Err(OAuthError::invalid_client());
    }
    let requested = passport.scopes().requested(request.param("scope"))?;
    let scopes = passport
        .scopes()
        .finalize(requested, GrantType::ClientCredentials, &client);
    let minted = passport
        .mint(MintSpec {
            client: &client,
            user_id: None,
            scopes,
            ttl: passport.settings().tokens_expire_in,
            name: None,
            family: Family::None,
            with_refresh: false,
        })
        .await?;
    passport.store().insert_tokens(&minted.access, None).await?;
    passport.announce(&minted);
    let asked = parse_scope_param(request.param("scope"));
    Ok(TokenResponse::from_minted(&minted, Some(&asked), passport.now()))
}
