//! Consent requests: what a consent page asked the user, stored server-side with a single-use
//! `auth_token` bound to one session and one user. The page carries only the token; approving
//! or denying takes the request out of storage atomically, so a token works once, in the
//! session it was made for, for the user it was shown to.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::authorize::ValidatedAuthorization;
use crate::client::ClientId;
use crate::error::OAuthError;
use crate::passport::Passport;
use crate::random::random_alphanumeric;
use crate::secret::sha256_hex;
use crate::store::{DeviceCodeRecord, PendingAuthorizationRecord};

/// How long a browser consent page stays answerable.
pub const CONSENT_TTL: TimeDelta = TimeDelta::minutes(30);

/// The device consent page's request: which device authorization, for which client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConsent {
    /// The device code's id (hash).
    pub device_code_id: String,
    /// The client that asked.
    pub client_id: ClientId,
}

/// What a consent page asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingConsent {
    /// An authorization request (code or implicit grant).
    Authorization(Box<ValidatedAuthorization>),
    /// A device authorization.
    Device(DeviceConsent),
    /// A stored request this version cannot read.
    Unreadable,
}

impl PendingConsent {
    fn from_payload(payload: serde_json::Value) -> Self {
        if let Ok(device) = serde_json::from_value::<DeviceConsent>(payload.clone()) {
            return Self::Device(device);
        }
        match serde_json::from_value::<ValidatedAuthorization>(payload) {
            Ok(request) => Self::Authorization(Box::new(request)),
            Err(_) => Self::Unreadable,
        }
    }
}

impl Passport {
    async fn store_consent(
        &self,
        session_id: &str,
        user_id: &str,
        payload: serde_json::Value,
        expires_at: DateTime<Utc>,
    ) -> Result<String, OAuthError> {
        let auth_token = random_alphanumeric(40)?;
        self.store()
            .insert_pending(&PendingAuthorizationRecord {
                id: sha256_hex(&auth_token),
                session_id: session_id.to_owned(),
                user_id: user_id.to_owned(),
                payload,
                expires_at,
            })
            .await?;
        Ok(auth_token)
    }

    /// Stores the authorization request a consent page shows to `user_id` in session
    /// `session_id`; returns the page's `auth_token` (valid [`CONSENT_TTL`]).
    pub async fn begin_consent(
        &self,
        session_id: &str,
        user_id: &str,
        request: &ValidatedAuthorization,
    ) -> Result<String, OAuthError> {
        let payload =
            serde_json::to_value(request).map_err(|_| OAuthError::server_error("cannot store the request"))?;
        self.store_consent(session_id, user_id, payload, self.now() + CONSENT_TTL)
            .await
    }

    /// Stores the device authorization a device consent page shows; returns its `auth_token`
    /// (valid as long as the device code).
    pub async fn begin_device_consent(
        &self,
        session_id: &str,
        user_id: &str,
        device: &DeviceCodeRecord,
    ) -> Result<String, OAuthError> {
        let consent = DeviceConsent {
            device_code_id: device.id.clone(),
            client_id: device.client_id.clone(),
        };
        let payload =
            serde_json::to_value(&consent).map_err(|_| OAuthError::server_error("cannot store the request"))?;
        self.store_consent(session_id, user_id, payload, device.expires_at)
            .await
    }

    /// Takes (once) the consent request `auth_token` names, if it belongs to this session and
    /// this user and has not expired; `None` otherwise (forged, reused, or someone else's).
    pub async fn take_consent(
        &self,
        auth_token: &str,
        session_id: &str,
        user_id: &str,
    ) -> Result<Option<PendingConsent>, OAuthError> {
        let pending = self
            .store()
            .take_pending(&sha256_hex(auth_token), session_id, self.now())
            .await?;
        Ok(pending
            .filter(|p| p.user_id == user_id)
            .map(|p| PendingConsent::from_payload(p.payload)))
    }
}
