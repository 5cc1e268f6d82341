//! The device authorization grant (RFC 8628): the device authorization request (§3.1–3.2),
//! the person's decision on the verification page, and the polling rules (§3.5).

use serde::Serialize;

use crate::client::GrantType;
use crate::error::{ErrorCode, OAuthError, StoreError};
use crate::grants::TokenRequest;
use crate::passport::Passport;
use crate::random::{random_from_alphabet, random_hex};
use crate::secret::sha256_hex;
use crate::store::DeviceCodeRecord;

/// Device codes live ten minutes.
pub const DEVICE_CODE_TTL: chrono::TimeDelta = chrono::TimeDelta::minutes(10);
/// Seconds a device waits between polls, at first.
pub const DEVICE_POLL_INTERVAL: i64 = 5;
/// The user-code alphabet: 20 consonants, no vowels (no words), no digits (no 0/O, 1/I).
pub const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters in a user code (20^8 ≈ 2.6 × 10^10 codes).
pub(crate) const USER_CODE_LENGTH: usize = 8;

/// The device authorization response (RFC 8628 §3.2).
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct DeviceAuthorization {
    /// The secret the device polls with.
    pub device_code: String,
    /// What the person types, shown as `XXXX-XXXX`.
    pub user_code: String,
    /// Where the person goes.
    pub verification_uri: String,
    /// The same with the user code filled in.
    pub verification_uri_complete: String,
    /// Seconds until the codes expire.
    pub expires_in: i64,
    /// Seconds between polls.
    pub interval: i64,
}

impl std::fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .finish_non_exhaustive()
    }
}

/// Normalizes what a person typed: upper case, without dashes or spaces. `None` when it cannot
/// be a user code.
pub fn normalize_user_code(input: &str) -> Option<String> {
    let code: String = input
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LENGTH && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b))).then_some(code)
}

/// A user code as shown to people: `BCDF-GHJK`.
pub fn display_user_code(code: &str) -> String {
    match code.split_at_checked(4) {
        Some((first, second)) if code.len() == USER_CODE_LENGTH => format!("{first}-{second}"),
        _ => code.to_owned(),
    }
}

impl Passport {
    /// Handles a device authorization request (RFC 8628 §3.1): the client authenticates as at
    /// the token endpoint (RFC 6749 §2.3: a confidential client with its secret, a public one
    /// by its id), then asks `scope`. `verification_uri` is the absolute URL of the user-code
    /// page. Errors: those of [`Passport::authenticate_client`], `unauthorized_client`,
    /// `invalid_scope`.
    pub async fn request_device_code(
        &self,
        request: &TokenRequest,
        verification_uri: &str,
    ) -> Result<DeviceAuthorization, OAuthError> {
        let client = self
            .authenticate_client(&request.client_credentials()?, request.peer())
            .await?;
        let scope = request.param("scope");
        // The device pages sign in users of the default provider (see `validate_authorization`).
        if !client.supports_grant(GrantType::DeviceCode)
            || !client.belongs_to_provider(self.default_provider(), self.default_provider())
            || self.fapi_applies(&client)
        {
            return Err(OAuthError::unauthorized_client());
        }
        let scopes = self.scopes().requested(scope)?;
        let device_code = random_hex(40)?;
        let now = self.now();
        // A user code may collide with a live one: draw again (a handful of tries is plenty).
        for _ in 0..10 {
            let user_code = random_from_alphabet(USER_CODE_LENGTH, USER_CODE_ALPHABET)?;
            let record = DeviceCodeRecord {
                id: sha256_hex(&device_code),
                user_code: user_code.clone(),
                client_id: client.id.clone(),
                scopes: scopes.clone(),
                user_id: None,
                user_approved_at: None,
                last_polled_at: None,
                interval: DEVICE_POLL_INTERVAL,
                revoked: false,
                created_at: now,
                expires_at: now + DEVICE_CODE_TTL,
            };
            match self.store().insert_device_code(&record).await {
                Ok(()) => {
                    let shown = display_user_code(&user_code);
                    let complete = crate::authorize::redirect_with(verification_uri, false, &[("user_code", &shown)]);
                    return Ok(DeviceAuthorization {
                        device_code,
                        user_code: shown,
                        verification_uri: verification_uri.to_owned(),
                        verification_uri_complete: complete,
                        expires_in: DEVICE_CODE_TTL.num_seconds(),
                        interval: DEVICE_POLL_INTERVAL,
                    });
                }
                Err(StoreError::Conflict) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(OAuthError::server_error("could not draw a free user code"))
    }

    /// The live, undecided device authorization a person's input names, if any.
    pub async fn find_device_authorization(&self, typed: &str) -> Result<Option<DeviceCodeRecord>, OAuthError> {
        let Some(code) = normalize_user_code(typed) else {
            return Ok(None);
        };
        Ok(self.store().find_pending_user_code(&code, self.now()).await?)
    }

    /// Records the person's decision on a device authorization. False when it was decided
    /// already or is gone.
    pub async fn decide_device(&self, device_code_id: &str, user_id: &str, approve: bool) -> Result<bool, OAuthError> {
        let approved_at = approve.then(|| self.now());
        Ok(self
            .store()
            .decide_device_code(device_code_id, user_id, approved_at)
            .await?)
    }
}

pub(crate) fn pending() -> OAuthError {
    OAuthError::new(ErrorCode::AuthorizationPending)
}

pub(crate) fn slow_down() -> OAuthError {
    OAuthError::new(ErrorCode::SlowDown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_accept_what_people_type() {
        assert_eq!(normalize_user_code("bcdf-ghjk").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalize_user_code(" BCDF GHJK ").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalize_user_code("BCDFGHJA"), None, "no vowels");
        assert_eq!(normalize_user_code("BCDF"), None);
        assert_eq!(display_user_code("BCDFGHJK"), "BCDF-GHJK");
    }

    /// Found by `cargo fuzz run device_user_code` (fuzz/): eight bytes that are not eight ASCII
    /// characters, split at byte 4 inside a character.
    #[test]
    fn displaying_a_code_of_eight_bytes_that_are_not_eight_characters_does_not_panic() {
        for input in ["%%%\u{769a}ee", "a\u{e9}\u{e9}\u{e9}a"] {
            assert_eq!(input.len(), 8);
            assert_eq!(display_user_code(input), input, "not a user code: shown as is");
        }
    }
}
