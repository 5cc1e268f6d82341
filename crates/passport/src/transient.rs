//! Signed cookies: values the browser keeps and the server can trust without storing them,
//! each HMAC-signed with a key derived from the server secret for its purpose (see
//! [`crate::ServerSecret`]), so every instance sharing the secret accepts the cookies of the
//! others, and rotating the signing keys signs no one out.
//!
//! * The SPA token cookie (Passport's `CreateFreshApiToken` / `laravel_token`): the signed-in
//!   user, the session's CSRF token, and the session it belongs to. The guard accepts it only
//!   with a matching CSRF header, so another site cannot ride on the cookie, and only while the
//!   session lives, so signing out ends it. It carries the session cookie's own value, which the
//!   database never holds (it keeps a hash), so reading the database is not enough to make one.
//! * A guest session (the sign-in page before anyone signs in): its CSRF token and what the
//!   visitor was doing, so that an anonymous visit stores nothing on the server.

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
    sid: String,
    exp: i64,
}

/// What a valid SPA cookie says.
#[derive(Clone, PartialEq, Eq)]
pub struct TransientToken {
    /// The user.
    pub user_id: String,
    /// The CSRF token of the session it was made for.
    pub csrf: String,
    /// The value of that session's cookie (check that the session still lives).
    pub session: String,
}

impl std::fmt::Debug for TransientToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransientToken")
            .field("user_id", &self.user_id)
            .field("csrf", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl TransientToken {
    /// Whether `presented` (from `X-CSRF-TOKEN` / `X-XSRF-TOKEN`) matches, in constant time.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        !self.csrf.is_empty() && bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

/// `base64url(payload).base64url(hmac)`.
fn seal(key: &hmac::Key, payload: &[u8]) -> String {
    let payload = URL_SAFE_NO_PAD.encode(payload);
    let tag = hmac::sign(key, payload.as_bytes());
    format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// The payload of a value [`seal`] made with `key`, when its signature holds.
fn open(key: &hmac::Key, value: &str) -> Option<Vec<u8>> {
    let (payload, tag) = value.split_once('.')?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    hmac::verify(key, payload.as_bytes(), &tag).ok()?;
    URL_SAFE_NO_PAD.decode(payload).ok()
}

#[derive(Serialize, Deserialize)]
struct Guest {
    data: serde_json::Map<String, serde_json::Value>,
    exp: i64,
}

impl Passport {
    /// An SPA cookie value for `user_id` in the session whose cookie is `session`, valid for
    /// the session lifetime.
    pub fn issue_transient_token(&self, user_id: &str, csrf: &str, session: &str) -> String {
        let claims = Claims {
            sub: user_id.to_owned(),
            csrf: csrf.to_owned(),
            sid: session.to_owned(),
            exp: (self.now() + self.settings().session_lifetime).timestamp(),
        };
        seal(self.cookie_key(), &serde_json::to_vec(&claims).unwrap_or_default())
    }

    /// Checks an SPA cookie value: signature and expiry. The caller checks the CSRF header and
    /// that the session lives.
    pub fn verify_transient_token(&self, value: &str) -> Option<TransientToken> {
        let claims: Claims = serde_json::from_slice(&open(self.cookie_key(), value)?).ok()?;
        let now: DateTime<Utc> = self.now();
        (claims.exp > now.timestamp()).then_some(TransientToken {
            user_id: claims.sub,
            csrf: claims.csrf,
            session: claims.sid,
        })
    }

    /// A guest session's cookie value: `data` (CSRF token, where the visitor was going), until
    /// `expires_at`.
    pub fn seal_guest_session(
        &self,
        data: &serde_json::Map<String, serde_json::Value>,
        expires_at: DateTime<Utc>,
    ) -> String {
        let guest = Guest {
            data: data.clone(),
            exp: expires_at.timestamp(),
        };
        seal(self.guest_key(), &serde_json::to_vec(&guest).unwrap_or_default())
    }

    /// The data and expiry of a guest session's cookie, when it is ours and has not expired.
    pub fn open_guest_session(
        &self,
        value: &str,
    ) -> Option<(serde_json::Map<String, serde_json::Value>, DateTime<Utc>)> {
        let guest: Guest = serde_json::from_slice(&open(self.guest_key(), value)?).ok()?;
        let expires_at = DateTime::from_timestamp(guest.exp, 0)?;
        (expires_at > self.now()).then_some((guest.data, expires_at))
    }
}
