//! The browser side of OAuth: `GET /oauth/authorize` (validate → decide → login, consent or
//! redirect), the approve and deny forms, and the default login / logout pages.
//!
//! Errors about the client or its redirect URI are shown as a page and never redirected;
//! forms need the session's CSRF token (else 419) and consent needs the single-use
//! `auth_token` bound to this session and this pending request (else 403).

use std::sync::Arc;

use axum::extract::{OriginalUri, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::TimeDelta;
use passport::{
    AuthorizationRequest, AuthorizeError, Decision, OAuthError, Passport, PendingAuthorizationRecord, User, UserState,
    ValidatedAuthorization, decide, random_alphanumeric, sha256_hex,
};
use serde_json::{Value, json};

use crate::rate_limit::{AddressLimiter, KeyLimiter};
use crate::session::{self, Session, csrf_header};
use crate::token::{parse_query, read_params};
use crate::views::{Renderer, Views, page_response};

/// How long a consent page stays answerable.
const PENDING_TTL: TimeDelta = TimeDelta::minutes(30);

/// State of the page routes: the server, how pages are rendered, and where login lives.
#[derive(Clone, Debug)]
pub struct Pages {
    pub(crate) passport: Passport,
    renderer: Arc<dyn Renderer>,
    app_name: Arc<str>,
    login_path: Arc<str>,
    pub(crate) login_limiter: AddressLimiter,
    pub(crate) device_address_limiter: AddressLimiter,
    pub(crate) device_session_limiter: KeyLimiter,
}

impl Pages {
    /// Built-in pages, login at `/login`, login attempts limited per address as the settings
    /// say (`login_rate_limit`).
    pub fn new(passport: &Passport) -> Self {
        Self {
            passport: passport.clone(),
            renderer: Arc::new(Views::builtin()),
            app_name: Arc::from("Passport"),
            login_path: Arc::from("/login"),
            login_limiter: AddressLimiter::per_minute(passport.settings().login_rate_limit),
            device_address_limiter: AddressLimiter::per_minute(20),
            device_session_limiter: KeyLimiter::per_minute(10),
        }
    }

    /// Renders pages with `renderer` (e.g. [`Views::with_overrides_from`] or your own).
    pub fn renderer(mut self, renderer: impl Renderer + 'static) -> Self {
        self.renderer = Arc::new(renderer);
        self
    }

    /// The product name shown on pages.
    pub fn app_name(mut self, name: &str) -> Self {
        self.app_name = Arc::from(name);
        self
    }

    /// Where guests are sent to sign in (default `/login`).
    pub fn login_path(mut self, path: &str) -> Self {
        self.login_path = Arc::from(path);
        self
    }

    /// Login attempts per minute and address (0 = unlimited).
    pub fn login_rate_limit(mut self, per_minute: u32) -> Self {
        self.login_limiter = AddressLimiter::per_minute(per_minute);
        self
    }

    /// The server these pages serve.
    pub fn passport(&self) -> &Passport {
        &self.passport
    }

    /// User-code attempts on the device consent page allowed per minute, per address and per
    /// session (defaults 20 and 10; 0 = unlimited).
    pub fn device_code_rate_limit(mut self, per_address: u32, per_session: u32) -> Self {
        self.device_address_limiter = AddressLimiter::per_minute(per_address);
        self.device_session_limiter = KeyLimiter::per_minute(per_session);
        self
    }

    fn authorize_url(&self) -> String {
        format!("/{}/authorize", self.passport.settings().path)
    }

    pub(crate) fn device_url(&self) -> String {
        format!("/{}/device", self.passport.settings().path)
    }

    pub(crate) fn device_authorize_url(&self) -> String {
        format!("/{}/device/authorize", self.passport.settings().path)
    }

    pub(crate) fn login_url(&self) -> &str {
        &self.login_path
    }

    pub(crate) fn sign_in_required(&self) -> Response {
        self.plain_error(
            StatusCode::UNAUTHORIZED,
            "Sign in required",
            "Sign in, then start again from the application.",
        )
    }

    pub(crate) fn invalid_auth_token(&self) -> Response {
        self.plain_error(
            StatusCode::FORBIDDEN,
            "This request is no longer valid",
            "The provided auth token for the request is different from the session auth token. Start again from the application.",
        )
    }

    pub(crate) fn render(
        &self,
        status: StatusCode,
        template: &str,
        mut context: Value,
        session: Option<&Session>,
    ) -> Response {
        if let Value::Object(map) = &mut context {
            map.insert("app_name".to_owned(), Value::from(&*self.app_name));
            map.insert(
                "oauth_path".to_owned(),
                Value::from(self.passport.settings().path.as_str()),
            );
            map.insert(
                "csrf_token".to_owned(),
                Value::from(session.map(Session::csrf_token).unwrap_or_default()),
            );
        }
        match self.renderer.render(template, &context) {
            Ok(html) => page_response(status, html),
            Err(err) => {
                tracing::error!(error = %err, template, "page rendering failed");
                page_response(StatusCode::INTERNAL_SERVER_ERROR, "<h1>Server error</h1>".to_owned())
            }
        }
    }

    /// An error page for an OAuth error (never a redirect).
    pub(crate) fn error_page(&self, error: &OAuthError) -> Response {
        let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        let message = match error.hint() {
            Some(hint) => format!("{} {hint}.", error.description()),
            None => error.description().to_owned(),
        };
        self.render(
            status,
            "error.html",
            json!({"title": "This request cannot be completed", "message": message, "code": error.code().as_str()}),
            None,
        )
    }

    fn plain_error(&self, status: StatusCode, title: &str, message: &str) -> Response {
        self.render(status, "error.html", json!({"title": title, "message": message}), None)
    }

    fn page_expired(&self) -> Response {
        // 419: Laravel's "page expired" for a missing or wrong CSRF token.
        let status = StatusCode::from_u16(419).unwrap_or(StatusCode::FORBIDDEN);
        self.plain_error(
            status,
            "Page expired",
            "Your session expired or the form was not sent from this site. Go back, reload the page and try again.",
        )
    }

    pub(crate) async fn current_user(&self, session: &Session) -> Result<Option<User>, OAuthError> {
        let Some(id) = session.user_id() else {
            return Ok(None);
        };
        let provider = self
            .passport
            .user_provider(None)
            .ok_or_else(|| OAuthError::server_error("no user provider registered"))?;
        Ok(provider.retrieve_by_id(id).await?)
    }

    pub(crate) async fn finish(&self, mut session: Session, mut response: Response) -> Response {
        match session::save(&self.passport, &mut session, &mut response).await {
            Ok(()) => response,
            Err(err) => self.error_page(&err),
        }
    }
}

/// Sets a fresh SPA token cookie for the session's user.
pub(crate) fn refresh_transient_cookie(pages: &Pages, session: &Session, user_id: &str, response: &mut Response) {
    session::set_transient_cookie(&pages.passport, session.csrf_token(), user_id, response);
}

/// Middleware (Passport's `CreateFreshApiToken`): on `GET` requests of a signed-in browser, sets
/// the SPA token cookie (name from the `cookie` setting) on the response, so the page's
/// JavaScript can call the API with it plus the `X-XSRF-TOKEN` header.
///
/// ```no_run
/// # fn demo(app: axum::Router, pages: passport_axum::Pages) -> axum::Router {
/// app.layer(axum::middleware::from_fn_with_state(pages, passport_axum::create_fresh_api_token))
/// # }
/// ```
pub async fn create_fresh_api_token(
    State(pages): State<Pages>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    if request.method() != Method::GET {
        return next.run(request).await;
    }
    let session = session::load(&pages.passport, request.headers()).await.ok().flatten();
    let mut response = next.run(request).await;
    let cookie = &pages.passport.settings().cookie;
    let already = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.starts_with(&format!("{cookie}=")));
    if let Some(session) = session
        && let (Some(user_id), false) = (session.user_id(), already)
    {
        refresh_transient_cookie(&pages, &session, user_id, &mut response);
        // A response carrying the cookie must never be stored by a shared cache.
        let cacheable = !response
            .headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("no-store"));
        if cacheable {
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
        }
    }
    response
}

/// A 302 that no cache keeps (the location may carry a code or token).
pub(crate) fn redirect(location: &str) -> Response {
    let Ok(value) = HeaderValue::from_str(location) else {
        // Registered redirect URIs are ASCII without control characters, so this is not
        // reachable through them; never answer a bare 302 all the same.
        tracing::error!("a redirect location was not a valid header value");
        return (StatusCode::BAD_REQUEST, "The redirect address is invalid.").into_response();
    };
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, value);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /oauth/authorize`.
pub(crate) async fn authorize(
    State(pages): State<Pages>,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    match authorize_inner(&pages, &uri, query.as_deref().unwrap_or_default(), &headers).await {
        Ok(response) => response,
        Err(err) => pages.error_page(&err),
    }
}

async fn authorize_inner(
    pages: &Pages,
    uri: &axum::http::Uri,
    query: &str,
    headers: &HeaderMap,
) -> Result<Response, OAuthError> {
    let passport = &pages.passport;
    let request = AuthorizationRequest::from_pairs(parse_query(query)?)?;
    let (validated, client) = match passport.validate_authorization(&request).await {
        Ok(ok) => ok,
        Err(AuthorizeError::Show(err)) => return Ok(pages.error_page(&err)),
        Err(AuthorizeError::Redirect(r)) => return Ok(redirect(&r.location)),
    };
    let mut session = session::load_or_start(passport, headers).await?;
    let user = pages.current_user(&session).await?;
    let already_granted = match &user {
        Some(user) => passport.has_granted_scopes(&user.id, &validated).await?,
        None => false,
    };
    let state = UserState {
        signed_in: user.is_some(),
        prompted_login: session.get("prompted_login") == Some(&Value::Bool(true)),
        already_granted,
        client_skips_consent: client.skips_authorization,
    };
    let response = match (decide(&validated, state), user) {
        (Decision::Login { force }, _) => {
            if force {
                session::sign_out(passport, &mut session).await?;
                let mut fresh = session::start(passport)?;
                let mut response = redirect(&pages.login_path);
                // Clear the old cookies first, then set the new guest session.
                session::save(passport, &mut session, &mut response).await?;
                fresh.insert("intended", Value::from(intended(uri)));
                fresh.insert("prompted_login", Value::Bool(true));
                return Ok(pages.finish(fresh, response).await);
            }
            session.insert("intended", Value::from(intended(uri)));
            // Remember that this login answers `prompt=login`, so the request goes on afterwards
            // instead of asking again.
            if validated.prompt == Some(passport::Prompt::Login) {
                session.insert("prompted_login", Value::Bool(true));
            }
            redirect(&pages.login_path)
        }
        (Decision::Redirect(r), _) => redirect(&r.location),
        (Decision::Approve, Some(user)) => {
            session.remove("prompted_login");
            match passport.approve_authorization(&validated, &user.id).await {
                Ok(location) => redirect(&location),
                Err(AuthorizeError::Show(err)) => pages.error_page(&err),
                Err(AuthorizeError::Redirect(r)) => redirect(&r.location),
            }
        }
        (Decision::AskConsent, Some(user)) => {
            session.remove("prompted_login");
            consent_page(pages, &session, &validated, &client.name, &user).await?
        }
        (Decision::Approve | Decision::AskConsent, None) => redirect(&pages.login_path),
    };
    Ok(pages.finish(session, response).await)
}

/// `base` with query parameters added, URL-encoded.
pub(crate) fn with_query(base: &str, params: &[(&str, &str)]) -> String {
    passport::redirect_with(base, false, params)
}

/// The path and query to come back to after login.
pub(crate) fn intended(uri: &axum::http::Uri) -> String {
    uri.path_and_query().map_or_else(|| "/".to_owned(), ToString::to_string)
}

async fn consent_page(
    pages: &Pages,
    session: &Session,
    validated: &ValidatedAuthorization,
    client_name: &str,
    user: &User,
) -> Result<Response, OAuthError> {
    let passport = &pages.passport;
    let auth_token = random_alphanumeric(40)?;
    let payload = serde_json::to_value(validated).map_err(|_| OAuthError::server_error("cannot store the request"))?;
    passport
        .store()
        .insert_pending(&PendingAuthorizationRecord {
            id: sha256_hex(&auth_token),
            session_id: session.id().to_owned(),
            user_id: user.id.clone(),
            payload,
            expires_at: passport.now() + PENDING_TTL,
        })
        .await?;
    let redirect_host = url::Url::parse(&validated.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| validated.redirect_uri.clone());
    let scopes = passport
        .scopes()
        .scopes_for(validated.scopes.iter().map(String::as_str));
    Ok(pages.render(
        StatusCode::OK,
        "authorize.html",
        json!({
            "client": {"id": validated.client_id, "name": client_name},
            "user": user,
            "scopes": scopes,
            "state": validated.state,
            "auth_token": auth_token,
            "authorize_url": pages.authorize_url(),
            "redirect_host": redirect_host,
        }),
        Some(session),
    ))
}

/// A consent decision: the form checked (CSRF), the signed-in user, and the pending request
/// its single-use `auth_token` named, already taken from storage.
pub(crate) struct TakenDecision {
    pub(crate) deny: bool,
    pub(crate) user_id: String,
    pub(crate) pending: PendingAuthorizationRecord,
    pub(crate) session: Session,
}

impl Pages {
    /// Reads an approve / deny form (`POST`, `DELETE`, or `POST` with `_method=DELETE`): checks
    /// CSRF (419), the signed-in user (401), and takes the pending request bound to this session
    /// and `auth_token` (403 when it is not there: forged, reused or someone else's).
    pub(crate) async fn take_decision(&self, request: Request) -> Result<TakenDecision, Response> {
        let pages = self;
        let (params, session, method) = pages.form_with_session(request).await?;
        let deny = match param(&params, "_method") {
            None => method == Method::DELETE,
            Some(m) if m.eq_ignore_ascii_case("DELETE") => true,
            Some(m) if m.eq_ignore_ascii_case("POST") => method == Method::DELETE,
            Some(_) => return Err(pages.error_page(&OAuthError::invalid_parameter("_method"))),
        };
        let Some(user_id) = session.user_id().map(str::to_owned) else {
            return Err(pages.sign_in_required());
        };
        let Some(auth_token) = param(&params, "auth_token") else {
            return Err(pages.error_page(&OAuthError::invalid_parameter("auth_token")));
        };
        let passport = &pages.passport;
        let pending = match passport
            .store()
            .take_pending(&sha256_hex(auth_token), session.id(), passport.now())
            .await
        {
            Ok(Some(pending)) if pending.user_id == user_id => pending,
            Ok(_) => return Err(pages.invalid_auth_token()),
            Err(err) => return Err(pages.error_page(&err.into())),
        };
        Ok(TakenDecision {
            deny,
            user_id,
            pending,
            session,
        })
    }

    /// Reads a form post and checks the session and its CSRF token (419 otherwise).
    pub(crate) async fn form_with_session(
        &self,
        request: Request,
    ) -> Result<(Vec<(String, String)>, Session, Method), Response> {
        let method = request.method().clone();
        let headers = request.headers().clone();
        let params = read_params(request).await.map_err(|e| self.error_page(&e))?;
        let session = match session::load(&self.passport, &headers).await {
            Ok(Some(session)) => session,
            Ok(None) => return Err(self.page_expired()),
            Err(err) => return Err(self.error_page(&err)),
        };
        let token = param(&params, "_token").or_else(|| csrf_header(&headers));
        if !session.csrf_matches(token) {
            return Err(self.page_expired());
        }
        Ok((params, session, method))
    }
}

pub(crate) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// `POST /oauth/authorize` (approve; or deny with `_method=DELETE`) and `DELETE /oauth/authorize`.
pub(crate) async fn decide_authorization(State(pages): State<Pages>, request: Request) -> Response {
    let decision = match pages.take_decision(request).await {
        Ok(decision) => decision,
        Err(response) => return response,
    };
    let (deny, user_id, pending) = (decision.deny, decision.user_id, decision.pending);
    let passport = &pages.passport;
    let Ok(validated) = serde_json::from_value::<ValidatedAuthorization>(pending.payload) else {
        return pages.error_page(&OAuthError::invalid_request(
            "The stored authorization request is unreadable",
        ));
    };
    if deny {
        return match passport.deny_authorization(&validated).await {
            Ok(location) => redirect(&location),
            Err(AuthorizeError::Show(err)) => pages.error_page(&err),
            Err(AuthorizeError::Redirect(r)) => redirect(&r.location),
        };
    }
    match passport.approve_authorization(&validated, &user_id).await {
        Ok(location) => redirect(&location),
        Err(AuthorizeError::Show(err)) => pages.error_page(&err),
        Err(AuthorizeError::Redirect(r)) => redirect(&r.location),
    }
}

/// `GET /login`.
pub(crate) async fn login_form(State(pages): State<Pages>, headers: HeaderMap) -> Response {
    let session = match session::load_or_start(&pages.passport, &headers).await {
        Ok(session) => session,
        Err(err) => return pages.error_page(&err),
    };
    let response = pages.render(
        StatusCode::OK,
        "login.html",
        json!({"login_url": &*pages.login_path, "email": "", "error": null}),
        Some(&session),
    );
    pages.finish(session, response).await
}

/// `POST /login` (`email`, `password`, `_token`).
pub(crate) async fn login(State(pages): State<Pages>, request: Request) -> Response {
    let (params, mut session, _) = match pages.form_with_session(request).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    let email = param(&params, "email").unwrap_or_default().trim().to_owned();
    let password = param(&params, "password").unwrap_or_default();
    let passport = &pages.passport;
    let user = match authenticate(passport, &email, password).await {
        Ok(user) => user,
        Err(err) => return pages.error_page(&err),
    };
    let Some(user) = user else {
        tracing::info!("login failed");
        passport.emit(passport::Event::UserAuthenticationFailed { client_id: None });
        let response = pages.render(
            StatusCode::UNPROCESSABLE_ENTITY,
            "login.html",
            json!({"login_url": &*pages.login_path, "email": email,
                   "error": "These credentials do not match our records."}),
            Some(&session),
        );
        return pages.finish(session, response).await;
    };
    let destination = session
        .remove("intended")
        .and_then(|v| v.as_str().map(str::to_owned))
        .filter(|p| safe_local_path(p))
        .unwrap_or_else(|| "/".to_owned());
    if let Err(err) = session::sign_in(passport, &mut session, &user.id).await {
        return pages.error_page(&err);
    }
    pages.finish(session, redirect(&destination)).await
}

async fn authenticate(passport: &Passport, email: &str, password: &str) -> Result<Option<User>, OAuthError> {
    let provider = passport
        .user_provider(None)
        .ok_or_else(|| OAuthError::server_error("no user provider registered"))?;
    if email.is_empty() || password.is_empty() || email.len() > 255 || password.len() > 1024 {
        passport.hasher().verify_dummy(password).await;
        return Ok(None);
    }
    match provider.find_for_passport(email).await? {
        Some(user) => Ok(provider
            .validate_for_passport_password_grant(&user, password)
            .await?
            .then_some(user)),
        None => {
            passport.hasher().verify_dummy(password).await;
            Ok(None)
        }
    }
}

/// Only paths on this site: `/x`, never `//host` or `/\host`.
fn safe_local_path(path: &str) -> bool {
    path.starts_with('/') && !path.starts_with("//") && !path.starts_with("/\\") && !path.contains(['\r', '\n'])
}

/// `POST /logout`.
pub(crate) async fn logout(State(pages): State<Pages>, request: Request) -> Response {
    let (_, mut session, _) = match pages.form_with_session(request).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    if let Err(err) = session::sign_out(&pages.passport, &mut session).await {
        return pages.error_page(&err);
    }
    pages.finish(session, redirect(&pages.login_path)).await
}

/// `GET /account`: the dashboard (your apps, authorized apps, personal access tokens), built on
/// the JSON API. Guests are sent to sign in first.
pub(crate) async fn account(State(pages): State<Pages>, OriginalUri(uri): OriginalUri, headers: HeaderMap) -> Response {
    let mut session = match session::load_or_start(&pages.passport, &headers).await {
        Ok(session) => session,
        Err(err) => return pages.error_page(&err),
    };
    let user = match pages.current_user(&session).await {
        Ok(user) => user,
        Err(err) => return pages.error_page(&err),
    };
    let Some(user) = user else {
        session.insert("intended", Value::from(intended(&uri)));
        let response = redirect(&pages.login_path);
        return pages.finish(session, response).await;
    };
    let mut response = pages.render(StatusCode::OK, "account.html", json!({"user": user}), Some(&session));
    // The dashboard runs its own script and calls the JSON API on this origin.
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    pages.finish(session, response).await
}

/// `GET /account/app.js`: the dashboard's script.
pub(crate) async fn account_script() -> Response {
    let mut response = (StatusCode::OK, include_str!("../templates/account.js")).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    response
}

/// `GET /`: who is signed in, with a sign-out button (the standalone server mounts it).
pub async fn home(State(pages): State<Pages>, headers: HeaderMap) -> Response {
    // Guests get the page without a session: nothing is stored for anonymous visits.
    let session = match session::load(&pages.passport, &headers).await {
        Ok(Some(session)) => session,
        Ok(None) => return pages.render(StatusCode::OK, "home.html", json!({"user": null}), None),
        Err(err) => return pages.error_page(&err),
    };
    let user = pages.current_user(&session).await.ok().flatten();
    let response = pages.render(StatusCode::OK, "home.html", json!({"user": user}), Some(&session));
    pages.finish(session, response).await
}

#[cfg(test)]
mod tests {
    use super::safe_local_path;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert!(safe_local_path("/oauth/authorize?client_id=x"));
        assert!(!safe_local_path("//evil.example/"));
        assert!(!safe_local_path("/\\evil.example"));
        assert!(!safe_local_path("https://evil.example/"));
    }
}
