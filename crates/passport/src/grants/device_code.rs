//! Device code polling (RFC 8628 §3.4–3.5): `authorization_pending` until the person decides,
//! `slow_down` (and five more seconds of interval) when polled too fast, `access_denied` after
//! a denial, `expired_token` after expiry, and the tokens exactly once after approval.

use chrono::TimeDelta;

use crate::client::GrantType;
use crate::device::{pending, slow_down};
use crate::error::{ErrorCode, OAuthError};
use crate::grants::{TokenRequest, TokenResponse};
use crate::passport::{Family, MintSpec, Passport};
use crate::secret::sha256_hex;

pub(super) async fn handle(passport: &Passport, request: &TokenRequest) -> Result<TokenResponse, OAuthError> {
    let client = passport.client_for_grant(request, GrantType::DeviceCode).await?;
    let device_code = request.required("device_code")?;
    let id = sha256_hex(device_code);
    let store = passport.store();
    let now = passport.now();

    let Some(record) = store.find_device_code(&id).await? else {
        return Err(OAuthError::invalid_grant("Unknown device code"));
    };
    if record.revoked {
        return Err(OAuthError::invalid_grant("The device code has been used"));
    }
    if record.client_id != client.id {
        return Err(OAuthError::invalid_grant("Device code was not issued to this client"));
    }
    if record.expires_at <= now {
        return Err(OAuthError::new(ErrorCode::ExpiredToken).with_hint("device_code"));
    }
    let Some(user_id) = record.user_id.clone() else {
        let too_soon = record
            .last_polled_at
            .is_some_and(|last| last + TimeDelta::seconds(record.interval) > now);
        let interval = if too_soon { record.interval + 5 } else { record.interval };
        store.record_device_poll(&id, now, interval).await?;
        return Err(if too_soon { slow_down() } else { pending() });
    };
    if record.user_approved_at.is_none() {
        return Err(OAuthError::access_denied("The user denied the request"));
    }

    passport.scopes().validate(&record.scopes)?;
    let scopes = passport
        .scopes()
        .finalize(record.scopes.clone(), GrantType::DeviceCode, &client);
    let jkt = passport.dpop_binding(request, &client).await?;
    let minted = passport
        .mint(MintSpec {
            grant: GrantType::DeviceCode,
            client: &client,
            user_id: Some(user_id),
            scopes,
            ttl: passport.settings().tokens_expire_in,
            name: None,
            family: Family::Existing(id.clone()),
            with_refresh: client.supports_grant(GrantType::RefreshToken),
            jkt,
        })
        .await?;
    let refresh = minted.refresh.as_ref().map(|(_, r)| r);
    if !store.redeem_device_code(&id, &minted.access, refresh).await? {
        return Err(OAuthError::invalid_grant("The device code has been used"));
    }
    passport.announce(&minted);
    Ok(TokenResponse::from_minted(&minted, &record.scopes))
}
