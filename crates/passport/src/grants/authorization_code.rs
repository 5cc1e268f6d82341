//! Authorization code grant, token request (RFC 6749 §4.1.3; PKCE RFC 7636 §4.5–4.6).
//! The code is single-use atomically: of concurrent exchanges exactly one wins, and a code
//! presented again revokes every token issued from it (RFC 6749 §4.1.2).

use crate::authorize::verify_pkce;
use crate::client::GrantType;
use crate::error::OAuthError;
use crate::events::Event;
use crate::grants::{TokenRequest, TokenResponse};
use crate::passport::{Family, MintSpec, Passport};
use crate::secret::sha256_hex;

pub(super) async fn handle(passport: &Passport, request: &TokenRequest) -> Result<TokenResponse, OAuthError> {
    let client = passport
        .authenticate_client(request, GrantType::AuthorizationCode)
        .await?;
    let code = request.required("code")?;
    let id = sha256_hex(code);
    let store = passport.store();

    let Some(record) = store.find_auth_code(&id).await? else {
        return Err(OAuthError::invalid_grant(
            "Cannot validate the provided authorization code",
        ));
    };
    if record.revoked {
        replay_detected(passport, &id, &client.id).await?;
        return Err(OAuthError::invalid_grant("Authorization code has been revoked"));
    }
    if record.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "Authorization code was not issued to this client",
        ));
    }
    if record.expires_at <= passport.now() {
        return Err(OAuthError::invalid_grant("Authorization code has expired"));
    }
    match (&record.redirect_uri, request.param("redirect_uri")) {
        (Some(_), None) => return Err(OAuthError::invalid_parameter("redirect_uri")),
        (Some(bound), Some(given)) if bound != given => {
            return Err(OAuthError::invalid_grant("Invalid redirect URI"));
        }
        (None, Some(given)) if !client.redirect_uris.iter().any(|r| r == given) => {
            return Err(OAuthError::invalid_grant("Invalid redirect URI"));
        }
        _ => {}
    }
    match (&record.code_challenge, request.param("code_verifier")) {
        (None, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "code_verifier received when no code_challenge is present",
            ));
        }
        (Some(_), None) => return Err(OAuthError::invalid_parameter("code_verifier")),
        (Some(challenge), Some(verifier)) => {
            let method = record.code_challenge_method.as_deref().unwrap_or("plain");
            verify_pkce(challenge, method, verifier)?;
        }
        (None, None) => {}
    }

    passport.scopes().validate(&record.scopes)?;
    let scopes = passport
        .scopes()
        .finalize(record.scopes.clone(), GrantType::AuthorizationCode, &client);
    let minted = passport
        .mint(MintSpec {
            client: &client,
            user_id: Some(record.user_id.clone()),
            scopes,
            ttl: passport.settings().tokens_expire_in,
            name: None,
            // The family is named after the code, so a replay can revoke what it produced.
            family: Family::Existing(id.clone()),
            with_refresh: client.supports_grant(GrantType::RefreshToken),
        })
        .await?;
    let refresh = minted.refresh.as_ref().map(|(_, r)| r);
    if !store.redeem_auth_code(&id, &minted.access, refresh).await? {
        replay_detected(passport, &id, &client.id).await?;
        return Err(OAuthError::invalid_grant("Authorization code has been revoked"));
    }
    passport.announce(&minted);
    Ok(TokenResponse::from_minted(
        &minted,
        Some(&record.scopes),
        passport.now(),
    ))
}

async fn replay_detected(passport: &Passport, code_id: &str, client_id: &str) -> Result<(), OAuthError> {
    let revoked = passport.store().revoke_refresh_family(code_id).await?;
    tracing::warn!(
        client_id,
        revoked,
        "authorization code replay: tokens issued from it revoked"
    );
    passport.emit(Event::AuthCodeReplayed {
        client_id: client_id.to_owned(),
    });
    Ok(())
}
