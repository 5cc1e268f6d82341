//! Browser sessions for the sign-in and consent pages.
//!
//! * A **signed-in** session is stored server-side through a [`passport::SessionStore`] (the
//!   `passport_sessions` table with `passport-sqlx`, so several instances behind one database
//!   share them). Its cookie holds a random value; the store holds only its SHA-256.
//! * A **guest** session (a visitor who has not signed in: the sign-in page, an authorization
//!   request before login) is stored nowhere: it lives in a signed cookie of its own
//!   (`passport_guest`), so anonymous visits cost the server nothing and cannot fill its tables.
//!
//! Each session carries a CSRF token, exposed to pages as the `_token` field /
//! `<meta name="csrf-token">` and to scripts as the readable `XSRF-TOKEN` cookie;
//! state-changing requests must echo it (field `_token`, or header `X-CSRF-TOKEN` /
//! `X-XSRF-TOKEN`).
//!
//! Handlers never save a session themselves: they attach it to their response, and the
//! middleware every page router carries stores it and sets the cookies. A session that is not
//! attached (an early error) is never stored.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use cookie::{Cookie, SameSite};
use passport::{OAuthError, Passport, SessionRecord, random_alphanumeric, random_hex, sha256_hex};
use serde_json::Value;
use subtle::ConstantTimeEq as _;

use crate::pages::Pages;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "passport_session";
/// Name of the guest session's signed cookie.
pub const GUEST_COOKIE: &str = "passport_guest";
/// Name of the readable CSRF cookie (the Laravel/axios convention).
pub const XSRF_COOKIE: &str = "XSRF-TOKEN";

/// The session key holding when its user signed in (Unix seconds).
const AUTH_TIME: &str = "auth_time";

/// The most a guest cookie may hold; past it, where the visitor was going is dropped (they
/// land on `/` after signing in) rather than the cookie being refused by the browser.
const GUEST_COOKIE_LIMIT: usize = 3_500;

/// A loaded (or new) session. `Debug` shows no cookie value or token.
#[derive(Clone)]
pub struct Session {
    record: SessionRecord,
    /// The cookie value of a signed-in session (to name it in the SPA cookie, to renew it).
    raw: Option<String>,
    /// Send the session cookie (new, or renewed).
    send_cookie: bool,
    /// A stored session to delete when this one is saved (replaced on sign-in).
    replaces: Option<String>,
    /// The guest cookie to clear when this one is saved (the guest signed in).
    was_guest: bool,
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

/// Sessions waiting in a response's extensions to be stored, in order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Attached(pub(crate) Vec<Session>);

impl Session {
    fn from_record(record: SessionRecord, raw: Option<String>, is_new: bool) -> Self {
        Self {
            record,
            raw,
            send_cookie: is_new,
            replaces: None,
            was_guest: false,
            is_new,
            dirty: is_new,
            deleted: false,
        }
    }

    /// The signed-in user's id.
    pub fn user_id(&self) -> Option<&str> {
        self.record.user_id.as_deref()
    }

    /// When the signed-in user authenticated (OpenID Connect `auth_time`); for sessions signed
    /// in before it was recorded, when the session was made (at sign-in).
    pub fn auth_time(&self) -> Option<DateTime<Utc>> {
        self.record.user_id.as_ref()?;
        let recorded = self.get(AUTH_TIME).and_then(Value::as_i64);
        Some(
            recorded
                .and_then(|t| DateTime::from_timestamp(t, 0))
                .unwrap_or(self.record.created_at),
        )
    }

    /// The CSRF token of this session.
    pub fn csrf_token(&self) -> &str {
        self.record.data.get("csrf").and_then(Value::as_str).unwrap_or_default()
    }

    /// The session id (hash), which binds consent requests to this session.
    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// The session cookie's value, for a signed-in session.
    pub(crate) fn cookie(&self) -> Option<&str> {
        self.raw.as_deref()
    }

    /// A value stored in the session.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.record.data.get(key)
    }

    /// Stores a value.
    pub(crate) fn insert(&mut self, key: &str, value: Value) {
        self.record.data.insert(key.to_owned(), value);
        self.dirty = true;
    }

    /// Removes and returns a value.
    pub(crate) fn remove(&mut self, key: &str) -> Option<Value> {
        let value = self.record.data.remove(key);
        self.dirty |= value.is_some();
        value
    }

    /// Whether `presented` matches this session's CSRF token (constant time).
    pub fn csrf_matches(&self, presented: Option<&str>) -> bool {
        let expected = self.csrf_token();
        !expected.is_empty() && presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(expected.as_bytes())))
    }

    /// Signs `user_id` in: a fresh stored session and CSRF token (no session fixation), keeping
    /// the data (such as the intended URL) of the session before. The old session is deleted
    /// (or the guest cookie cleared) when this one is saved.
    pub(crate) fn sign_in(&mut self, passport: &Passport, user_id: &str) -> Result<(), OAuthError> {
        let (raw, mut record) = new_record(passport, Some(user_id.to_owned()))?;
        for (k, v) in &self.record.data {
            if k != "csrf" {
                record.data.insert(k.clone(), v.clone());
            }
        }
        // When the user authenticated (OpenID Connect `auth_time`, `max_age`).
        record
            .data
            .insert(AUTH_TIME.to_owned(), Value::from(passport.now().timestamp()));
        let stored = self.raw.is_some() && !self.is_new;
        let mut next = Self::from_record(record, Some(raw), true);
        next.replaces = stored.then(|| self.record.id.clone());
        next.was_guest = self.raw.is_none();
        *self = next;
        Ok(())
    }

    /// Ends the session (and its consent requests) when saved; its cookies are cleared.
    pub(crate) fn sign_out(&mut self) {
        self.deleted = true;
    }

    /// Renews a signed-in session for another lifetime from now (its cookie too).
    pub(crate) fn renew(&mut self, passport: &Passport) {
        if self.raw.is_some() {
            self.record.expires_at = passport.now() + passport.settings().session_lifetime;
            self.dirty = true;
            self.send_cookie = true;
        }
    }

    /// Puts the session on `response`, to be stored (and its cookies set) on the way out.
    /// Sessions attached one after the other are stored in that order.
    pub(crate) fn attach(self, response: impl IntoResponse) -> Response {
        let mut response = response.into_response();
        match response.extensions_mut().get_mut::<Attached>() {
            Some(attached) => attached.0.push(self),
            None => {
                response.extensions_mut().insert(Attached(vec![self]));
            }
        }
        response
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

/// Loads the request's live session, if it has one: the stored session its cookie names, or a
/// guest session from its signed cookie.
pub async fn load(pages: &Pages, headers: &HeaderMap) -> Result<Option<Session>, OAuthError> {
    if let Some(raw) = cookie_value(headers, SESSION_COOKIE).filter(|v| v.len() <= 128) {
        let record = pages
            .sessions
            .find_session(&sha256_hex(raw), pages.passport.now())
            .await?;
        if let Some(record) = record {
            return Ok(Some(Session::from_record(record, Some(raw.to_owned()), false)));
        }
    }
    let Some((data, expires_at)) = cookie_value(headers, GUEST_COOKIE)
        .filter(|v| v.len() <= GUEST_COOKIE_LIMIT * 2)
        .and_then(|value| pages.passport.open_guest_session(value))
    else {
        return Ok(None);
    };
    let id = data.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
    let record = SessionRecord {
        id,
        user_id: None,
        data,
        created_at: pages.passport.now(),
        expires_at,
    };
    Ok(Some(Session::from_record(record, None, false)))
}

/// Starts a new guest session (kept only in its cookie, once attached to a response).
pub(crate) fn start(passport: &Passport) -> Result<Session, OAuthError> {
    let (_, mut record) = new_record(passport, None)?;
    record.data.insert("id".to_owned(), Value::String(record.id.clone()));
    Ok(Session::from_record(record, None, true))
}

/// Loads the request's session, or starts a new guest session.
pub(crate) async fn load_or_start(pages: &Pages, headers: &HeaderMap) -> Result<Session, OAuthError> {
    match load(pages, headers).await? {
        Some(session) => Ok(session),
        None => start(&pages.passport),
    }
}

fn secure(passport: &Passport) -> bool {
    passport
        .settings()
        .issuer
        .as_deref()
        .is_some_and(|i| i.starts_with("https://"))
}

/// A cookie of ours: path `/`, SameSite=Lax, Secure over https, living `max_age` seconds.
fn cookie(passport: &Passport, name: &str, value: String, max_age: i64, http_only: bool) -> Cookie<'static> {
    Cookie::build((name.to_owned(), value))
        .path("/")
        .http_only(http_only)
        .same_site(SameSite::Lax)
        .secure(secure(passport))
        .max_age(cookie::time::Duration::seconds(max_age))
        .build()
}

/// Stores `session` (a signed-in one in the store, a guest one in its cookie) and sets its
/// cookies on `response`.
pub(crate) async fn save(pages: &Pages, mut session: Session, response: &mut Response) -> Result<(), OAuthError> {
    let passport = &pages.passport;
    if let Some(old) = session.replaces.take() {
        pages.sessions.delete_session(&old).await?;
    }
    let headers = response.headers_mut();
    if session.deleted {
        if session.raw.is_some() && !session.is_new {
            pages.sessions.delete_session(&session.record.id).await?;
        }
        for name in [
            SESSION_COOKIE,
            GUEST_COOKIE,
            XSRF_COOKIE,
            passport.settings().cookie.as_str(),
        ] {
            append_cookie(headers, &cookie(passport, name, String::new(), 0, false));
        }
        return Ok(());
    }
    let lifetime = (session.record.expires_at - passport.now()).num_seconds().max(0);
    let Some(raw) = session.raw.clone() else {
        // A guest: everything is in the signed cookie, rewritten when it changed.
        if session.dirty {
            let mut data = session.record.data.clone();
            let mut value = passport.seal_guest_session(&data, session.record.expires_at);
            if value.len() > GUEST_COOKIE_LIMIT {
                tracing::debug!("guest session too large for its cookie: dropping the intended URL");
                data.remove("intended");
                value = passport.seal_guest_session(&data, session.record.expires_at);
            }
            append_cookie(headers, &cookie(passport, GUEST_COOKIE, value, lifetime, true));
        }
        if session.is_new {
            let xsrf = session.csrf_token().to_owned();
            append_cookie(headers, &cookie(passport, XSRF_COOKIE, xsrf, lifetime, false));
        }
        return Ok(());
    };
    if session.is_new {
        pages.sessions.insert_session(&session.record).await?;
    } else if session.dirty {
        pages.sessions.update_session(&session.record).await?;
    }
    if session.was_guest {
        append_cookie(headers, &cookie(passport, GUEST_COOKIE, String::new(), 0, true));
    }
    if session.send_cookie {
        append_cookie(headers, &cookie(passport, SESSION_COOKIE, raw, lifetime, true));
        let xsrf = session.csrf_token().to_owned();
        append_cookie(headers, &cookie(passport, XSRF_COOKIE, xsrf, lifetime, false));
    }
    Ok(())
}

/// Sets the SPA token cookie (HttpOnly, SameSite=Lax) for the session's user on `response`.
pub(crate) fn set_transient_cookie(passport: &Passport, session: &Session, response: &mut Response) {
    let (Some(user_id), Some(raw)) = (session.user_id(), session.cookie()) else {
        return;
    };
    let value = passport.issue_transient_token(user_id, session.csrf_token(), raw);
    let lifetime = passport.settings().session_lifetime.num_seconds();
    let name = passport.settings().cookie.clone();
    append_cookie(response.headers_mut(), &cookie(passport, &name, value, lifetime, true));
}

fn append_cookie(headers: &mut HeaderMap, cookie: &Cookie<'_>) {
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        headers.append(header::SET_COOKIE, value);
    }
}
