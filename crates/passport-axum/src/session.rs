//! Browser sessions for the login and consent pages, stored server-side (the `sessions` table,
//! so several instances behind one PostgreSQL share them). The cookie holds a random id; the
//! database holds only its SHA-256. Each session carries a CSRF token, exposed to pages as the
//! `_token` field / `<meta name="csrf-token">` and to scripts as the readable `XSRF-TOKEN`
//! cookie; state-changing requests must echo it (field `_token`, or header `X-CSRF-TOKEN` /
//! `X-XSRF-TOKEN`).

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use cookie::{Cookie, SameSite};
use passport::{OAuthError, Passport, SessionRecord, random_alphanumeric, random_hex, sha256_hex};
use serde_json::Value;
use subtle::ConstantTimeEq as _;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "passport_session";
/// Name of the readable CSRF cookie (the Laravel/axios convention).
pub const XSRF_COOKIE: &str = "XSRF-TOKEN";

/// A loaded (or new) session. `Debug` shows no cookie value or token.
#[derive(Clone)]
pub struct Session {
    record: SessionRecord,
    /// The cookie value, set when the id is new and must be sent to the browser.
    new_cookie: Option<String>,
    is_new: bool,
    dirty: bool,
    deleted: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("record", &self.record)
            .field("is_new", &self.is_new)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The signed-in user's id.
    pub fn user_id(&self) -> Option<&str> {
        self.record.user_id.as_deref()
    }

    /// The CSRF token of this session.
    pub fn csrf_token(&self) -> &str {
        self.record.data.get("csrf").and_then(Value::as_str).unwrap_or_default()
    }

    /// The session id (hash), which binds pending consent requests to this session.
    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// A value stored in the session.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.record.data.get(key)
    }

    /// Stores a value.
    pub fn insert(&mut self, key: &str, value: Value) {
        self.record.data.insert(key.to_owned(), value);
        self.dirty = true;
    }

    /// Removes and returns a value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let value = self.record.data.remove(key);
        self.dirty |= value.is_some();
        value
    }

    /// Whether `presented` matches this session's CSRF token (constant time).
    pub fn csrf_matches(&self, presented: Option<&str>) -> bool {
        let expected = self.csrf_token();
        !expected.is_empty() && presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(expected.as_bytes())))
    }
}

/// The CSRF token a request presents in a header.
pub fn csrf_header(headers: &HeaderMap) -> Option<&str> {
    ["x-csrf-token", "x-xsrf-token"]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
}

pub(crate) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .flatten()
        .find(|c| c.name() == name)
        .and_then(|c| c.value_raw())
}

fn new_record(passport: &Passport, user_id: Option<String>) -> Result<(String, SessionRecord), OAuthError> {
    let raw = random_hex(32)?;
    let now = passport.now();
    let mut data = serde_json::Map::new();
    data.insert("csrf".to_owned(), Value::String(random_alphanumeric(40)?));
    Ok((
        raw.clone(),
        SessionRecord {
            id: sha256_hex(&raw),
            user_id,
            data,
            created_at: now,
            expires_at: now + passport.settings().session_lifetime,
        },
    ))
}

/// Loads the request's live session, if it has one.
pub async fn load(passport: &Passport, headers: &HeaderMap) -> Result<Option<Session>, OAuthError> {
    let Some(raw) = cookie_value(headers, SESSION_COOKIE).filter(|v| v.len() <= 128) else {
        return Ok(None);
    };
    let record = passport.store().find_session(&sha256_hex(raw), passport.now()).await?;
    Ok(record.map(|record| Session {
        record,
        new_cookie: None,
        is_new: false,
        dirty: false,
        deleted: false,
    }))
}

/// Starts a new guest session.
pub fn start(passport: &Passport) -> Result<Session, OAuthError> {
    let (raw, record) = new_record(passport, None)?;
    Ok(Session {
        record,
        new_cookie: Some(raw),
        is_new: true,
        dirty: true,
        deleted: false,
    })
}

/// Loads the request's session, or starts a new guest session.
pub async fn load_or_start(passport: &Passport, headers: &HeaderMap) -> Result<Session, OAuthError> {
    match load(passport, headers).await? {
        Some(session) => Ok(session),
        None => start(passport),
    }
}

/// Signs `user_id` in: a fresh session id and CSRF token (no session fixation), keeping the
/// data (such as the intended URL) of the guest session.
pub async fn sign_in(passport: &Passport, session: &mut Session, user_id: &str) -> Result<(), OAuthError> {
    let (raw, mut record) = new_record(passport, Some(user_id.to_owned()))?;
    for (k, v) in &session.record.data {
        if k != "csrf" {
            record.data.insert(k.clone(), v.clone());
        }
    }
    if !session.is_new {
        passport.store().delete_session(&session.record.id).await?;
    }
    *session = Session {
        record,
        new_cookie: Some(raw),
        is_new: true,
        dirty: true,
        deleted: false,
    };
    Ok(())
}

/// Ends the session (and its pending consent requests).
pub async fn sign_out(passport: &Passport, session: &mut Session) -> Result<(), OAuthError> {
    if !session.is_new {
        passport.store().delete_session(&session.record.id).await?;
    }
    session.deleted = true;
    Ok(())
}

/// Persists changes and sets the cookies on `response`.
pub async fn save(passport: &Passport, session: &mut Session, response: &mut Response) -> Result<(), OAuthError> {
    let secure = passport
        .settings()
        .issuer
        .as_deref()
        .is_some_and(|i| i.starts_with("https://"));
    let lifetime = cookie::time::Duration::seconds(passport.settings().session_lifetime.num_seconds());
    let headers = response.headers_mut();
    if session.deleted {
        let spa_cookie = passport.settings().cookie.clone();
        for name in [SESSION_COOKIE, XSRF_COOKIE, spa_cookie.as_str()] {
            let c = Cookie::build((name.to_owned(), ""))
                .path("/")
                .max_age(cookie::time::Duration::ZERO)
                .build();
            append_cookie(headers, &c);
        }
        return Ok(());
    }
    if session.is_new {
        passport.store().insert_session(&session.record).await?;
    } else if session.dirty {
        passport.store().update_session(&session.record).await?;
    }
    session.is_new = false;
    session.dirty = false;
    if let Some(raw) = session.new_cookie.take() {
        let c = Cookie::build((SESSION_COOKIE, raw))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(secure)
            .max_age(lifetime)
            .build();
        append_cookie(headers, &c);
        let x = Cookie::build((XSRF_COOKIE, session.csrf_token().to_owned()))
            .path("/")
            .same_site(SameSite::Lax)
            .secure(secure)
            .max_age(lifetime)
            .build();
        append_cookie(headers, &x);
    }
    Ok(())
}

/// Sets the SPA token cookie (HttpOnly, SameSite=Lax) for `user_id` on `response`.
pub(crate) fn set_transient_cookie(passport: &Passport, csrf: &str, user_id: &str, response: &mut Response) {
    let secure = passport
        .settings()
        .issuer
        .as_deref()
        .is_some_and(|i| i.starts_with("https://"));
    let value = passport.issue_transient_token(user_id, csrf);
    let c = Cookie::build((passport.settings().cookie.clone(), value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(
            passport.settings().session_lifetime.num_seconds(),
        ))
        .build();
    append_cookie(response.headers_mut(), &c);
}

fn append_cookie(headers: &mut HeaderMap, cookie: &Cookie<'_>) {
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        headers.append(header::SET_COOKIE, value);
    }
}
