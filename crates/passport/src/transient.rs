//! The SPA token cookie (Passport's `CreateFreshApiToken` / `laravel_token`): a short-lived,
//! HMAC-signed value naming the signed-in user and the session's CSRF token. The guard accepts
//! it only with a matching CSRF header, so another site cannot ride on the cookie.
//!
//! The HMAC key is derived from the server secret (see [`crate::ServerSecret`]), so every
//! instance sharing the secret accepts the cookies of the others, and rotating the signing keys
//! signs no one out.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use crate::passport::Passport;

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    csrf: String,
    exp: i64,
}

/// What a valid cookie says.
#[derive(Clone, PartialEq, Eq)]
pub struct TransientToken {
    /// The user.
    pub user_id: String,
    /// The CSRF token of the session it was made for.
    pub csrf: String,
}

impl std::fmt::Debug for TransientToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransientToken")
            .field("user_id", &self.user_id)
            .field("csrf", &"[redacted]")
            .finish()
    }
}

impl TransientToken {
    /// Whether `presented` (from `X-CSRF-TOKEN` / `X-XSRF-TOKEN`) matches, in constant time.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        !self.csrf.is_empty() && bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

impl Passport {
    /// A cookie value for `user_id` valid for the session lifetime.
    pub fn issue_transient_token(&self, user_id: &str, csrf: &str) -> String {
        let claims = Claims {
            sub: user_id.to_owned(),
            csrf: csrf.to_owned(),
            exp: (self.now() + self.settings().session_lifetime).timestamp(),
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let tag = hmac::sign(self.cookie_key(), payload.as_bytes());
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Checks a cookie value: signature and expiry. The caller checks the CSRF header.
    pub fn verify_transient_token(&self, value: &str) -> Option<TransientToken> {
        let (payload, tag) = value.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        hmac::verify(self.cookie_key(), payload.as_bytes(), &tag).ok()?;
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let now: DateTime<Utc> = self.now();
        (claims.exp > now.timestamp()).then_some(TransientToken {
            user_id: claims.sub,
            csrf: claims.csrf,
        })
    }
}
