//! Resource owner password credentials grant (RFC 6749 §4.3), off unless enabled. The client's
//! `provider` picks the user provider. Unknown user and wrong password give the same
//! `invalid_grant`, after the same amount of hashing work.

use crate::client::GrantType;
use crate::error::OAuthError;
use crate::events::Event;
use crate::grants::{TokenRequest, TokenResponse};
use crate::passport::{Family, MintSpec, Passport};
use crate::scope::parse_scope_param;

pub(super) async fn handle(passport: &Passport, request: &TokenRequest) -> Result<TokenResponse, OAuthError> {
    let client = passport.authenticate_client(request, GrantType::Password).await?;
    let requested = passport.scopes().requested(request.param("scope"))?;
    let username = request.required("username")?;
    let password = request.required("password")?;

    let provider = passport.user_provider(client.provider.as_deref()).ok_or_else(|| {
        tracing::warn!(client_id = %client.id, "the client's user provider is not registered");
        OAuthError::unauthorized_client().with_hint("The client's user provider is not available")
    })?;
    let user = match provider.find_for_passport(username).await? {
        Some(user) => user,
        None => {
            passport.hasher().verify_dummy(password).await;
            tracing::info!(client_id = %client.id, "password grant: user authentication failed");
            passport.emit(Event::UserAuthenticationFailed {
                client_id: Some(client.id.clone()),
            });
            return Err(OAuthError::invalid_credentials());
        }
    };
    if !provider.validate_for_passport_password_grant(&user, password).await? {
        tracing::info!(client_id = %client.id, "password grant: user authentication failed");
        passport.emit(Event::UserAuthenticationFailed {
            client_id: Some(client.id.clone()),
        });
        return Err(OAuthError::invalid_credentials());
    }

    let scopes = passport.scopes().finalize(requested, GrantType::Password, &client);
    let with_refresh = client.supports_grant(GrantType::RefreshToken);
    let minted = passport
        .mint(MintSpec {
            client: &client,
            user_id: Some(user.id),
            scopes,
            ttl: passport.settings().tokens_expire_in,
            name: None,
            family: Family::New,
            with_refresh,
        })
        .await?;
    let refresh = minted.refresh.as_ref().map(|(_, record)| record);
    passport.store().insert_tokens(&minted.access, refresh).await?;
    passport.announce(&minted);
    let asked = parse_scope_param(request.param("scope"));
    Ok(TokenResponse::from_minted(&minted, Some(&asked), passport.now()))
}
