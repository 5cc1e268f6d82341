//! Refresh token grant (RFC 6749 §6) with rotation (RFC 9700 §4.14.2): the presented token is
//! used up atomically, the access token issued with it is revoked, and a new pair is issued in
//! the same family. Presenting a used token again revokes the whole family, except within the
//! reuse grace (`refresh_token_reuse_grace`, as Hydra's grace period): then the client that
//! rotated it gets a fresh pair and the pair it never used is revoked, so a client whose answer
//! was lost can retry. Scopes may be narrowed, never widened. A grant made by an OpenID Connect
//! authentication request gets a new id_token while it keeps `openid` (Core §12.2: same `iss`,
//! `sub`, `aud`, the original `auth_time`, no `nonce`). A public client's token bound to a
//! DPoP key is refreshed only with a proof of that key (RFC 9449 §5).

use crate::client::GrantType;
use crate::error::OAuthError;
use crate::events::Event;
use crate::grants::{TokenRequest, TokenResponse};
use crate::oidc::{IdTokenSpec, OPENID};
use crate::passport::{Family, MintSpec, Passport};
use crate::scope::ScopeSet;
use crate::secret::sha256_hex;

pub(super) async fn handle(passport: &Passport, request: &TokenRequest) -> Result<TokenResponse, OAuthError> {
    let client = passport.client_for_grant(request, GrantType::RefreshToken).await?;
    let presented = request.required("refresh_token")?;
    let store = passport.store();
    let (id, old) = match laravel_refresh_token(passport, request, &client, presented).await? {
        Some(found) => found,
        None => {
            let id = sha256_hex(presented);
            let Some(old) = store.find_refresh_token(&id).await? else {
                return Err(OAuthError::invalid_refresh_token("Token is unknown"));
            };
            if old.client_id != client.id {
                return Err(OAuthError::invalid_refresh_token("Token is not linked to client"));
            }
            (id, old)
        }
    };
    // A used token is a retry within the grace (the pair it became still unused), or reuse.
    let retry_of = match (old.revoked, within_grace(passport, &old)) {
        (false, _) => None,
        (true, Some(child)) => Some(child),
        (true, None) => {
            reuse_detected(passport, &old.family_id, client.id.as_str()).await?;
            return Err(OAuthError::invalid_refresh_token("Token has been revoked"));
        }
    };
    if old.expires_at <= passport.now() {
        return Err(OAuthError::invalid_refresh_token("Token has expired"));
    }

    let jkt = passport.dpop_binding(request, &client).await?;
    if let Some(bound) = &old.dpop_jkt {
        match &jkt {
            None => {
                return Err(OAuthError::invalid_dpop_proof(
                    "This refresh token is bound to a DPoP key: present a proof of it",
                ));
            }
            Some(jkt) if jkt != bound => {
                return Err(OAuthError::invalid_refresh_token(
                    "The DPoP proof's key is not the one this refresh token is bound to",
                ));
            }
            Some(_) => {}
        }
    }

    // §6: the scope "MUST NOT include any scope not originally granted"; omitted means the
    // original scopes.
    let asked = ScopeSet::parse(request.param("scope"));
    let requested = if asked.is_empty() { old.scopes.clone() } else { asked };
    if let Some(wider) = requested.iter().find(|s| !old.scopes.contains(s)) {
        return Err(OAuthError::invalid_scope(wider));
    }
    // Passport 11/12 carried the scopes over verbatim (`*` too: §5.5 step 8); 13 and we
    // finalize them.
    let passport12 = passport
        .settings()
        .laravel
        .as_ref()
        .is_some_and(|c| c.version() == crate::laravel::PassportVersion::V12);
    let scopes = if passport12 {
        requested.clone()
    } else {
        passport
            .scopes()
            .finalize(requested.clone(), GrantType::RefreshToken, &client)
    };

    let mut minted = passport
        .mint(MintSpec {
            grant: GrantType::RefreshToken,
            client: &client,
            user_id: old.user_id.clone(),
            scopes,
            ttl: passport.settings().tokens_expire_in,
            name: None,
            family: Family::Existing(old.family_id.clone()),
            with_refresh: client.supports_grant(GrantType::RefreshToken),
            jkt,
        })
        .await?;
    if let Some((_, refresh)) = minted.refresh.as_mut() {
        refresh.auth_time = old.auth_time;
    }
    let id_token = match (old.auth_time, &old.user_id) {
        (Some(auth_time), Some(user_id)) if minted.access.scopes.contains(OPENID) => {
            let spec = IdTokenSpec {
                client: &client,
                user_id,
                scopes: &minted.access.scopes,
                auth_time: auth_time.timestamp(),
                // §12.2: the new id_token "SHOULD NOT" carry the original nonce.
                nonce: None,
                access_token: Some(&minted.jwt),
                with_user_claims: true,
            };
            Some(passport.issue_id_token(spec).await?)
        }
        _ => None,
    };
    let refresh = minted.refresh.as_ref().map(|(_, record)| record);
    let revoked_access = match (retry_of, refresh) {
        (None, _) => store
            .rotate_refresh_token(&id, &minted.access, refresh)
            .await?
            .then(|| old.access_token_id.clone()),
        (Some(child), Some(refresh)) => store.regrant_refresh_token(&id, child, &minted.access, refresh).await?,
        // The client lost the refresh grant since: no pair to hand out again.
        (Some(_), None) => None,
    };
    let Some(revoked_access) = revoked_access else {
        // Lost a race with another redemption of the same token, or the pair it became was
        // used meanwhile: that is reuse too.
        reuse_detected(passport, &old.family_id, client.id.as_str()).await?;
        return Err(OAuthError::invalid_refresh_token("Token has been revoked"));
    };
    passport.emit(Event::AccessTokenRevoked {
        token_id: revoked_access,
    });
    passport.announce(&minted);
    let mut response = TokenResponse::from_minted(&minted, &requested);
    response.id_token = id_token;
    Ok(response)
}

/// A refresh token Laravel Passport issued (compatibility on, a defuse ciphertext): its
/// payload decrypted with the `APP_KEY` and checked as Passport does (§5.5: linked to the
/// client, not expired), then its `oauth_refresh_tokens` row, which the rest of the grant
/// rotates like ours. Its family is named after the row, so presenting it again revokes what it
/// became. `None`: not such a token (ours, or compatibility off).
async fn laravel_refresh_token(
    passport: &Passport,
    request: &TokenRequest,
    client: &crate::client::Client,
    presented: &str,
) -> Result<Option<(String, crate::store::RefreshTokenRecord)>, OAuthError> {
    let Some(compat) = passport.settings().laravel.as_ref() else {
        return Ok(None);
    };
    if !crate::laravel::looks_like_ciphertext(presented) {
        return Ok(None);
    }
    let payload = passport
        .laravel_payload::<crate::laravel::RefreshPayload>(compat, presented, client.id.as_str(), request.peer())
        .await;
    let Some(payload) = payload else {
        return Err(OAuthError::invalid_refresh_token("Cannot decrypt the refresh token"));
    };
    if payload.client_id != client.id.as_str() {
        return Err(OAuthError::invalid_refresh_token("Token is not linked to client"));
    }
    if payload.expire_time < passport.now().timestamp() {
        return Err(OAuthError::invalid_refresh_token("Token has expired"));
    }
    let Some(mut row) = passport.store().find_refresh_token(&payload.refresh_token_id).await? else {
        // Passport: a missing row is a revoked token.
        return Err(OAuthError::invalid_refresh_token("Token has been revoked"));
    };
    // The payload is authoritative for what Passport did not store in the row.
    row.client_id = client.id.clone();
    row.user_id = payload.user_id;
    row.scopes = crate::scope::ScopeSet::from_iter(payload.scopes);
    row.access_token_id = payload.access_token_id;
    if let Some(expires) = chrono::DateTime::from_timestamp(payload.expire_time, 0) {
        row.expires_at = expires;
    }
    Ok(Some((payload.refresh_token_id, row)))
}

/// The refresh token `old` was rotated into, when `old` was rotated (not revoked otherwise)
/// within the reuse grace.
fn within_grace<'a>(passport: &Passport, old: &'a crate::store::RefreshTokenRecord) -> Option<&'a str> {
    let grace = passport.settings().refresh_token_reuse_grace;
    let rotated_at = old.rotated_at?;
    (grace > chrono::TimeDelta::zero() && passport.now() - rotated_at <= grace)
        .then_some(old.rotated_to.as_deref())
        .flatten()
}

async fn reuse_detected(passport: &Passport, family_id: &str, client_id: &str) -> Result<(), OAuthError> {
    let revoked = passport.revoke_family(family_id).await?;
    tracing::warn!(
        client_id,
        revoked = revoked.len(),
        "refresh token reuse detected: token family revoked"
    );
    passport.emit(Event::RefreshTokenReused {
        client_id: client_id.to_owned(),
    });
    Ok(())
}
