//! Authorization code grant, token request (RFC 6749 §4.1.3; PKCE RFC 7636 §4.5–4.6).
//! The code is single-use atomically: of concurrent exchanges exactly one wins, and a code
//! presented again revokes every token issued from it (RFC 6749 §4.1.2). A code of an OpenID
//! Connect request (`openid` granted) also gets an id_token (Core §3.1.3.3), and its refresh
//! token remembers when the user authenticated, for the id_tokens of refreshes (§12.2).
//! A valid DPoP proof binds the tokens to its key (RFC 9449 §5); a code requested with
//! `dpop_jkt` is exchanged only with a proof of that key (§10).

use crate::client::GrantType;
use crate::error::OAuthError;
use crate::events::Event;
use crate::grants::{TokenRequest, TokenResponse};
use crate::oidc::{IdTokenSpec, OPENID};
use crate::passport::{Family, MintSpec, Passport};
use crate::pkce::{PkceMethod, verify_pkce};
use crate::redirect::check_exchange_redirect_uri;
use crate::secret::sha256_hex;

pub(super) async fn handle(passport: &Passport, request: &TokenRequest) -> Result<TokenResponse, OAuthError> {
    let client = passport.client_for_grant(request, GrantType::AuthorizationCode).await?;
    let code = request.required("code")?;
    let store = passport.store();
    let (id, record) = match laravel_auth_code(passport, request, &client, code).await? {
        Some(found) => found,
        None => {
            let id = sha256_hex(code);
            let Some(record) = store.find_auth_code(&id).await? else {
                return Err(OAuthError::invalid_grant(
                    "Cannot validate the provided authorization code",
                ));
            };
            (id, record)
        }
    };
    if record.revoked {
        replay_detected(passport, &id, client.id.as_str()).await?;
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
    check_exchange_redirect_uri(
        record.redirect_uri.as_deref(),
        request.param("redirect_uri"),
        &client.redirect_uris,
    )?;
    // RFC 7636 §4.6; a verifier for a code issued without a challenge is a downgrade attempt
    // (RFC 9700 §4.8.2).
    match (&record.code_challenge, request.param("code_verifier")) {
        (None, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "code_verifier received when no code_challenge is present",
            ));
        }
        (Some(_), None) => return Err(OAuthError::invalid_parameter("code_verifier")),
        (Some(challenge), Some(verifier)) => {
            let method = record.code_challenge_method.unwrap_or(PkceMethod::Plain);
            verify_pkce(challenge, method, verifier)?;
        }
        (None, None) => {}
    }

    let jkt = passport.dpop_binding(request, &client).await?;
    if let Some(bound) = &record.extensions.dpop_jkt {
        match &jkt {
            None => {
                return Err(OAuthError::invalid_dpop_proof(
                    "The authorization request named dpop_jkt: present a proof of that key",
                ));
            }
            Some(jkt) if jkt != bound => {
                return Err(OAuthError::invalid_grant(
                    "The DPoP proof's key is not the one the authorization request named",
                ));
            }
            Some(_) => {}
        }
    }

    passport.scopes().validate(&record.scopes)?;
    let scopes = passport
        .scopes()
        .finalize(record.scopes.clone(), GrantType::AuthorizationCode, &client);
    let mut minted = passport
        .mint(MintSpec {
            grant: GrantType::AuthorizationCode,
            client: &client,
            user_id: Some(record.user_id.clone()),
            scopes,
            ttl: passport.settings().tokens_expire_in,
            name: None,
            // The family is named after the code, so a replay can revoke what it produced.
            family: Family::Existing(id.clone()),
            with_refresh: client.supports_grant(GrantType::RefreshToken),
            jkt,
        })
        .await?;
    let id_token = match minted.access.scopes.contains(OPENID) {
        true => {
            let auth_time = record
                .extensions
                .auth_time
                .unwrap_or_else(|| record.created_at.timestamp());
            if let Some((_, refresh)) = minted.refresh.as_mut() {
                refresh.auth_time = chrono::DateTime::from_timestamp(auth_time, 0);
            }
            let spec = IdTokenSpec {
                client: &client,
                user_id: &record.user_id,
                scopes: &minted.access.scopes,
                auth_time,
                nonce: record.extensions.nonce.as_deref(),
                access_token: Some(&minted.jwt),
                with_user_claims: true,
            };
            Some(passport.issue_id_token(spec).await?)
        }
        false => None,
    };
    let refresh = minted.refresh.as_ref().map(|(_, r)| r);
    if !store.redeem_auth_code(&id, &minted.access, refresh).await? {
        replay_detected(passport, &id, client.id.as_str()).await?;
        return Err(OAuthError::invalid_grant("Authorization code has been revoked"));
    }
    passport.announce(&minted);
    let mut response = TokenResponse::from_minted(&minted, &record.scopes);
    response.id_token = id_token;
    Ok(response)
}

/// An authorization code Laravel Passport issued (compatibility on, a defuse ciphertext): its
/// payload decrypted with the `APP_KEY`, merged with its `oauth_auth_codes` row (which says
/// whether it was used; a missing row is a revoked code, as in Passport). The rest of the grant
/// checks and redeems it like ours, atomically. `None`: not such a code.
async fn laravel_auth_code(
    passport: &Passport,
    request: &TokenRequest,
    client: &crate::client::Client,
    code: &str,
) -> Result<Option<(String, crate::store::AuthCodeRecord)>, OAuthError> {
    let Some(compat) = passport.settings().laravel.as_ref() else {
        return Ok(None);
    };
    if !crate::laravel::looks_like_ciphertext(code) {
        return Ok(None);
    }
    let payload = passport
        .laravel_payload::<crate::laravel::AuthCodePayload>(compat, code, client.id.as_str(), request.peer())
        .await;
    let Some(payload) = payload else {
        // league 9's answer (a `LogicException` from the decryption).
        return Err(OAuthError::invalid_request("Issue decrypting the authorization code"));
    };
    let Some(mut record) = passport.store().find_auth_code(&payload.auth_code_id).await? else {
        return Err(OAuthError::invalid_grant("Authorization code has been revoked"));
    };
    let code_challenge_method = match payload.code_challenge_method.as_deref() {
        None | Some("") => None,
        Some(method) => Some(
            method
                .parse::<PkceMethod>()
                .map_err(|()| OAuthError::server_error("unsupported code_challenge_method in a Passport code"))?,
        ),
    };
    record.client_id = payload.client_id.into();
    record.user_id = payload.user_id;
    record.scopes = crate::scope::ScopeSet::from_iter(payload.scopes);
    record.redirect_uri = payload.redirect_uri;
    record.code_challenge = payload.code_challenge.filter(|c| !c.is_empty());
    record.code_challenge_method = code_challenge_method;
    record.expires_at =
        chrono::DateTime::from_timestamp(payload.expire_time, 0).unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    // Passport's codes live ten minutes: when the user approved (an id_token's `auth_time`).
    record.created_at = record
        .expires_at
        .checked_sub_signed(chrono::TimeDelta::minutes(10))
        .unwrap_or(record.expires_at);
    Ok(Some((payload.auth_code_id, record)))
}

async fn replay_detected(passport: &Passport, code_id: &str, client_id: &str) -> Result<(), OAuthError> {
    let revoked = passport.revoke_family(code_id).await?;
    tracing::warn!(
        client_id,
        revoked = revoked.len(),
        "authorization code replay: tokens issued from it revoked"
    );
    passport.emit(Event::AuthCodeReplayed {
        client_id: client_id.to_owned(),
    });
    Ok(())
}
