//! The browser side of OAuth: `GET /oauth/authorize` (resolve a pushed request, validate →
//! decide → login, consent or the answer to the client), the approve and deny forms, and the
//! default login / logout pages.
//!
//! Errors about the client or its redirect URI are shown as a page and never redirected;
//! forms need the session's CSRF token (else 419) and consent needs the single-use
//! `auth_token` bound to this session and this pending request (else 403).

use std::sync::Arc;

use axum::extract::{OriginalUri, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use passport::{
    AuthorizationRequest, Decision, ErrorCode, FailureLimitSettings, OAuthError, Passport, PendingConsent,
    ResolvedAuthorization, SessionStore, User, ValidatedAuthorization, decide,
};
use serde_json::{Value, json};

use crate::extract::{ConsentDecision, PageForm, Peer, SignedIn, Visitor};
use crate::page::{PageError, redirect};
use crate::rate_limit::NO_PEER_ADDRESS;
use crate::rate_limit::{AddressLimiter, KeyLimiter};
use crate::session::{self, Session};
use crate::token::parse_query;
use crate::views::{Renderer, Views, page_response};

/// State of the page routes: the server, where sessions live, how pages are rendered, and
/// where login lives.
#[derive(Clone, Debug)]
pub struct Pages {
    pub(crate) passport: Passport,
    pub(crate) sessions: Arc<dyn SessionStore>,
    renderer: Arc<dyn Renderer>,
    app_name: Arc<str>,
    login_path: Arc<str>,
    pub(crate) login_limiter: AddressLimiter,
    pub(crate) device_address_limiter: AddressLimiter,
    pub(crate) device_session_limiter: KeyLimiter,
}

impl Pages {
    /// Built-in pages over `sessions` (e.g. `passport_sqlx::Database::sessions()`), login at
    /// `/login`, login attempts limited per address as the settings say (`login_rate_limit`).
    pub fn new(passport: &Passport, sessions: Arc<dyn SessionStore>) -> Self {
        Self {
            passport: passport.clone(),
            sessions,
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

    pub(crate) fn logout_url(&self) -> String {
        format!("/{}/logout", self.passport.settings().path)
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

    /// Renders `template` with `context`, plus `app_name`, `oauth_path` and the session's
    /// `csrf_token`.
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
        let mut response = self.render(
            status,
            "error.html",
            json!({"title": "This request cannot be completed", "message": message, "code": error.code().as_str()}),
            None,
        );
        crate::error::retry_after(&mut response, error);
        response
    }

    pub(crate) fn plain_error(&self, status: StatusCode, title: &str, message: &str) -> Response {
        self.render(status, "error.html", json!({"title": title, "message": message}), None)
    }

    /// The session's user, from the default provider (the pages sign in its users).
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

    /// The login page, with an error message and the email typed (or the `login_hint` of the
    /// authorization request that sent the user here).
    fn login_page(&self, status: StatusCode, session: &Session, email: &str, error: Option<&str>) -> Response {
        let hint = session.get(LOGIN_HINT).and_then(Value::as_str).unwrap_or_default();
        let email = if email.is_empty() { hint } else { email };
        let context = json!({"login_url": &*self.login_path, "email": email, "error": error});
        self.render(status, "login.html", context, Some(session))
    }
}

/// Sets a fresh SPA token cookie for the session's user.
pub(crate) fn refresh_transient_cookie(pages: &Pages, session: &Session, response: &mut Response) {
    session::set_transient_cookie(&pages.passport, session, response);
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
    let mut request = request;
    // The guard checks an SPA cookie's session in the pages' store.
    request
        .extensions_mut()
        .insert(crate::guard::SpaSessions(pages.sessions.clone()));
    if request.method() != Method::GET {
        return next.run(request).await;
    }
    let session = session::load(&pages, request.headers()).await.ok().flatten();
    let mut response = next.run(request).await;
    let cookie = &pages.passport.settings().cookie;
    let already = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.starts_with(&format!("{cookie}=")));
    if let Some(session) = session
        && session.user_id().is_some()
        && !already
    {
        refresh_transient_cookie(&pages, &session, &mut response);
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

/// `GET /oauth/authorize`: validate (errors before any session is stored), then decide.
pub(crate) async fn authorize(
    State(pages): State<Pages>,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let passport = &pages.passport;
    let request = AuthorizationRequest::from_pairs(parse_query(query.as_deref().unwrap_or_default())?)?;
    let ResolvedAuthorization {
        validated,
        client,
        pushed,
    } = passport.resolve_authorization(&request).await?;
    let Visitor { mut session, user } = Visitor::load(&pages, &headers).await?;
    // A sign-in this request asked for answers it, once.
    let prompted_login = session.remove(PROMPTED_LOGIN) == Some(Value::Bool(true));
    let user_id = user.as_ref().map(|u| u.id.as_str());
    let auth_time = session.auth_time();
    let state = passport
        .user_state(user_id, auth_time, prompted_login, &validated, &client)
        .await?;
    let (decision, user) = match (decide(&validated, state), user) {
        (Decision::Login { .. }, _) => {
            // A pushed request was taken: the browser comes back with a fresh reference to it.
            let back = match &pushed {
                Some(pushed) => {
                    let request_uri = passport.defer_pushed_authorization(&client.id, pushed).await?;
                    let params = [("client_id", client.id.as_str()), ("request_uri", request_uri.as_str())];
                    with_query(&pages.authorize_url(), &params)
                }
                None => intended(&uri),
            };
            return Ok(to_login(&pages, session, back, &validated));
        }
        (Decision::Redirect(r), _) => return Ok(session.attach(crate::oidc::respond(&pages, &r.response))),
        (decision, Some(user)) => (decision, user),
        (_, None) => return Ok(session.attach(redirect(&pages.login_path))),
    };
    if decision == Decision::AskConsent {
        return Ok(consent_page(&pages, session, &validated, &client.name, &user).await?);
    }
    let auth_time = auth_time.unwrap_or_else(|| passport.now());
    match passport.approve_authorization(&validated, &user.id, auth_time).await {
        Ok(answer) => Ok(session.attach(crate::oidc::respond(&pages, &answer))),
        Err(err) => Ok(PageError::from(err).keeping(session)),
    }
}

/// Sends the user to sign in and back to `intended` afterwards. When the request demands a fresh
/// authentication (`prompt=login`, `max_age`, `id_token_hint`) the session is marked so that
/// the sign-in that follows answers it (then the request goes on instead of asking again); a
/// signed-in user stays signed in until that sign-in succeeds, so a link with `prompt=login`
/// cannot sign anyone out (a GET changes nothing that matters). A `login_hint` pre-fills the
/// sign-in form.
fn to_login(pages: &Pages, mut session: Session, intended: String, validated: &ValidatedAuthorization) -> Response {
    session.insert("intended", Value::from(intended));
    if validated.demands_authentication() {
        session.insert(REAUTHENTICATE, Value::Bool(true));
    }
    match validated.login_hint.as_deref().filter(|h| h.len() <= MAX_LOGIN_HINT) {
        Some(hint) => session.insert(LOGIN_HINT, Value::from(hint)),
        None => {
            session.remove(LOGIN_HINT);
        }
    }
    session.attach(redirect(&pages.login_path))
}

/// Set while a sign-in is asked for by the request (`prompt=login`, `max_age`,
/// `id_token_hint`); a successful one turns it into [`PROMPTED_LOGIN`].
const REAUTHENTICATE: &str = "reauthenticate";

/// Set by a sign-in that answers a request's demand for one; taken by the next decision.
const PROMPTED_LOGIN: &str = "prompted_login";

/// The `login_hint` the sign-in form shows until the user signs in.
const LOGIN_HINT: &str = "login_hint";

/// Longest `login_hint` kept (an email address is at most 254 characters).
const MAX_LOGIN_HINT: usize = 320;

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
    session: Session,
    validated: &ValidatedAuthorization,
    client_name: &str,
    user: &User,
) -> Result<Response, OAuthError> {
    let passport = &pages.passport;
    let auth_token = passport.begin_consent(session.id(), &user.id, validated).await?;
    let redirect_host = url::Url::parse(&validated.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| validated.redirect_uri.clone());
    let scopes = passport
        .scopes()
        .scopes_for(validated.scopes.iter().map(String::as_str));
    let page = pages.render(
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
        Some(&session),
    );
    Ok(session.attach(page))
}

pub(crate) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// `POST /oauth/authorize` (approve; or deny with `_method=DELETE`) and `DELETE /oauth/authorize`.
pub(crate) async fn decide_authorization(
    State(pages): State<Pages>,
    decision: ConsentDecision,
) -> Result<Response, PageError> {
    let passport = &pages.passport;
    let consent = passport
        .take_consent(&decision.auth_token, decision.session.id(), &decision.user_id)
        .await?
        .ok_or(PageError::InvalidAuthToken)?;
    let PendingConsent::Authorization(request) = consent else {
        return Err(OAuthError::invalid_request("The stored authorization request is unreadable").into());
    };
    let answer = match decision.deny {
        true => passport.deny_authorization(&request).await?,
        false => {
            let auth_time = decision.session.auth_time().unwrap_or_else(|| passport.now());
            passport
                .approve_authorization(&request, &decision.user_id, auth_time)
                .await?
        }
    };
    Ok(crate::oidc::respond(&pages, &answer))
}

/// `GET /login`.
pub(crate) async fn login_form(State(pages): State<Pages>, headers: HeaderMap) -> Result<Response, PageError> {
    let session = session::load_or_start(&pages, &headers).await?;
    let page = pages.login_page(StatusCode::OK, &session, "", None);
    Ok(session.attach(page))
}

/// `POST /login` (`email`, `password`, `_token`). Failures count per account and address; a
/// locked account is refused before its password is checked.
pub(crate) async fn login(State(pages): State<Pages>, Peer(peer): Peer, form: PageForm) -> Result<Response, PageError> {
    let passport = &pages.passport;
    if peer.is_none() && passport.settings().failure_limits != FailureLimitSettings::OFF {
        return Err(OAuthError::server_error(NO_PEER_ADDRESS).into());
    }
    let email = form.field("email").unwrap_or_default().trim().to_owned();
    let password = form.field("password").unwrap_or_default().to_owned();
    let mut session = form.session;
    let user = match passport.sign_in(&email, &password, peer).await {
        Ok(user) => user,
        Err(err) if err.code() == ErrorCode::TemporarilyUnavailable => {
            let wait = err.retry_after().unwrap_or(60);
            let error = format!("Too many failed sign-ins. Wait {wait} seconds, then try again.");
            let mut page = pages.login_page(StatusCode::TOO_MANY_REQUESTS, &session, &email, Some(&error));
            if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
                page.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return Ok(session.attach(page));
        }
        Err(err) => return Err(err.into()),
    };
    let Some(user) = user else {
        let error = "These credentials do not match our records.";
        let page = pages.login_page(StatusCode::UNPROCESSABLE_ENTITY, &session, &email, Some(error));
        return Ok(session.attach(page));
    };
    let destination = session
        .remove("intended")
        .and_then(|v| v.as_str().map(str::to_owned))
        .filter(|p| safe_local_path(p))
        .unwrap_or_else(|| "/".to_owned());
    let answers_prompt = session.remove(REAUTHENTICATE).is_some();
    session.remove(LOGIN_HINT);
    session.sign_in(passport, &user.id)?;
    if answers_prompt {
        session.insert(PROMPTED_LOGIN, Value::Bool(true));
    }
    Ok(session.attach(redirect(&destination)))
}

/// Only paths on this site: `/x`, never `//host` or `/\host`.
fn safe_local_path(path: &str) -> bool {
    path.starts_with('/') && !path.starts_with("//") && !path.starts_with("/\\") && !path.contains(['\r', '\n'])
}

/// `POST /logout`.
pub(crate) async fn logout(State(pages): State<Pages>, form: PageForm) -> Response {
    let mut session = form.session;
    session.sign_out();
    session.attach(redirect(&pages.login_path))
}

/// `GET /account`: the dashboard (your apps, authorized apps, personal access tokens), built on
/// the JSON API. Guests are sent to sign in first.
pub(crate) async fn account(State(pages): State<Pages>, signed_in: SignedIn) -> Response {
    let SignedIn { session, user } = signed_in;
    let mut page = pages.render(StatusCode::OK, "account.html", json!({"user": user}), Some(&session));
    // The dashboard runs its own script and calls the JSON API on this origin.
    page.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    session.attach(page)
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
pub(crate) async fn home(State(pages): State<Pages>, headers: HeaderMap) -> Result<Response, PageError> {
    // Guests get the page without a session: nothing is stored for anonymous visits.
    let Some(session) = session::load(&pages, &headers).await? else {
        return Ok(pages.render(StatusCode::OK, "home.html", json!({"user": null}), None));
    };
    let user = pages.current_user(&session).await.ok().flatten();
    let page = pages.render(StatusCode::OK, "home.html", json!({"user": user}), Some(&session));
    Ok(session.attach(page))
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
