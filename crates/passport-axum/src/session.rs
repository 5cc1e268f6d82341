//! Browser sessions for the sign-in and consent pages, stored server-side through a
//! [`passport::SessionStore`] (the `passport_sessions` table with `passport-sqlx`, so several instances
//! behind one database share them). The cookie holds a random id; the store holds only its
//! SHA-256. Each session carries a CSRF token, exposed to pages as the `_token` field /
//! `<meta name="csrf-token">` and to scripts as the readable `XSRF-TOKEN` cookie;
//! state-changing requests must echo it (field `_token`, or header `X-CSRF-TOKEN` /
//! `X-XSRF-TOKEN`).
//!
//! Handlers never save a session themselves: they attach it to their response, and
//! the middleware every page router carries stores it and sets the cookies. A session
//! that is not attached (an early error) is never stored.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};
use passport::{OAuthError, Passport, SessionRecord, random_alphanumeric, random_hex, sha256_hex};
use serde_json::Value;
use subtle::ConstantTimeEq as _;

use crate::pages::Pages;

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
    /// Sessions to delete from storage when this one is saved (replaced on sign-in).
    replaces: Option<String>,
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
    /// The signed-in user's id.
    pub fn user_id(&self) -> Option<&str> {
        self.record.user_id.as_deref()
    }

    /// The CSRF token of this session.
    pub fn csrf_token(&self) -> &str {
        self.record.data.get("csrf").and_then(Value::as_str).unwrap_or_default()
    }

    /// The session id (hash), which binds consent requests to this session.
    pub fn id(&self) -> &str {
        &self.record.id
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

    /// Signs `user_id` in: a fresh session id and CSRF token (no session fixation), keeping the
    /// data (such as the intended URL) of the guest session. The old session is deleted when
    /// this one is saved.
    pub(crate) fn sign_in(&mut self, passport: &Passport, user_id: &str) -> Result<(), OAuthError> {
        let (raw, mut record) = new_record(passport, Some(user_id.to_owned()))?;
        for (k, v) in &self.record.data {
            if k != "csrf" {
                record.data.insert(k.clone(), v.clone());
            }
        }
        let replaces = (!self.is_new).then(|| self.record.id.clone());
        *self = Session {
            record,
            new_cookie: Some(raw),
            replaces,
            is_new: true,
            dirty: true,
            deleted: false,
        };
        Ok(())
    }

    /// Ends the session (and its consent requests) when saved; its cookies are cleared.
    pub(crate) fn sign_out(&mut self) {
        self.deleted = true;
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

/// Loads the request's live session, if it has one.
pub async fn load(pages: &Pages, headers: &HeaderMap) -> Result<Option<Session>, OAuthError> {
    let Some(raw) = cookie_value(headers, SESSION_COOKIE).filter(|v| v.len() <= 128) else {
        return Ok(None);
    };
    let record = pages
        .sessions
        .find_session(&sha256_hex(raw), pages.passport.now())
        .await?;
    Ok(record.map(|record| Session {
        record,
        new_cookie: None,
        replaces: None,
        is_new: false,
        dirty: false,
        deleted: false,
    }))
}

/// Starts a new guest session (stored only once attached to a response).
pub(crate) fn start(passport: &Passport) -> Result<Session, OAuthError> {
    let (raw, record) = new_record(passport, None)?;
    Ok(Session {
        record,
        new_cookie: Some(raw),
        replaces: None,
        is_new: true,
        dirty: true,
        deleted: false,
    })
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

/// Stores `session` and sets its cookies on `response`.
pub(crate) async fn save(pages: &Pages, mut session: Session, response: &mut Response) -> Result<(), OAuthError> {
    let passport = &pages.passport;
    let secure = secure(passport);
    let lifetime = cookie::time::Duration::seconds(passport.settings().session_lifetime.num_seconds());
    if let Some(old) = session.replaces.take() {
        pages.sessions.delete_session(&old).await?;
    }
    let headers = response.headers_mut();
    if session.deleted {
        if !session.is_new {
            pages.sessions.delete_session(&session.record.id).await?;
        }
        for name in [SESSION_COOKIE, XSRF_COOKIE, passport.settings().cookie.as_str()] {
            let c = Cookie::build((name.to_owned(), ""))
                .path("/")
                .max_age(cookie::time::Duration::ZERO)
                .build();
            append_cookie(headers, &c);
        }
        return Ok(());
    }
    if session.is_new {
        pages.sessions.insert_session(&session.record).await?;
    } else if session.dirty {
        pages.sessions.update_session(&session.record).await?;
    }
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
    let value = passport.issue_transient_token(user_id, csrf);
    let c = Cookie::build((passport.settings().cookie.clone(), value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure(passport))
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
