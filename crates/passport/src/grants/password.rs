//! Resource owner password credentials grant (RFC 6749 §4.3), off unless enabled. The client's
//! `provider` picks the user provider. Unknown user and wrong password give the same
//! `invalid_grant`, after the same amount of hashing work ([`Passport::authenticate_user`]).

use crate::client::GrantType;
use crate::error::OAuthError;
use crate::grants::{TokenRequest, TokenResponse};
use crate::passport::{Family, MintSpec, Passport};
use crate::scope::ScopeSet;

pub(super) async fn handle(passport: &Passport, request: &TokenRequest) -> Result<TokenResponse, OAuthError> {
    let client = passport.client_for_grant(request, GrantType::Password).await?;
    let requested = passport.scopes().requested(request.param("scope"))?;
    let username = request.required("username")?;
    let password = request.required("password")?;

    let provider = passport.user_provider(client.provider.as_deref()).ok_or_else(|| {
        tracing::warn!(client_id = %client.id, "the client's user provider is not registered");
        OAuthError::unauthorized_client().with_hint("The client's user provider is not available")
    })?;
    let Some(user) = passport
        .authenticate_user(provider.as_ref(), Some(&client.id), username, password)
        .await?
    else {
        // Counted with the client's failures (the client is checked first, so a lockout
        // refuses even the right password).
        passport
            .limits()
            .client_failed(passport.store().as_ref(), client.id.as_str(), request.peer())
            .await;
        return Err(OAuthError::invalid_credentials());
    };

    let scopes = passport.scopes().finalize(requested, GrantType::Password, &client);
    let jkt = passport.dpop_binding(request, &client).await?;
    let minted = passport
        .mint(MintSpec {
            grant: GrantType::Password,
            client: &client,
            user_id: Some(user.id),
            scopes,
            ttl: passport.settings().tokens_expire_in,
            name: None,
            family: Family::New,
            with_refresh: client.supports_grant(GrantType::RefreshToken),
            jkt,
        })
        .await?;
    let minted = passport.store_minted(minted).await?;
    let asked = ScopeSet::parse(request.param("scope"));
    Ok(TokenResponse::from_minted(&minted, &asked))
}
