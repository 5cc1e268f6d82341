//! Pages: the built-in login, consent and error pages (minijinja templates compiled into the
//! binary, autoescaped, no external assets), replaceable per template from a directory
//! (Passport's `vendor:publish --tag=passport-views`) or wholesale with a custom [`Renderer`]
//! (Passport's `authorizationView`).
//!
//! Templates and what they receive (besides `app_name` and `csrf_token`):
//! * `login.html` — `login_url`, `email`, `error`
//! * `authorize.html` — `client {id, name}`, `user {id, name, email}`, `scopes [{id, description}]`,
//!   `state`, `auth_token`, `authorize_url`, `redirect_host`
//! * `error.html` — `title`, `message`, `code`
//! * `home.html` — `user`
//! * `device_user_code.html` — `authorize_url`, `user_code`, `error` (Passport's `deviceUserCodeView`)
//! * `device_authorize.html` — `client`, `user`, `scopes`, `user_code`, `auth_token`, `authorize_url`
//!   (Passport's `deviceAuthorizationView`)
//! * `device_done.html` — `approved`
//! * `account.html` — `user` (the dashboard; its script is served at `/account/app.js`)
//! * `form_post.html` — `action`, `fields [{name, value}]`, `csp_nonce` (the auto-submitting
//!   form of `response_mode=form_post`; its script must carry `nonce="{{ csp_nonce }}"`)
//! * `logout.html` — `logout_url`, `client {id, name}`, `post_logout_redirect_uri`, `state`
//!   (the sign-out confirmation of RP-initiated logout)
//! * `signed_out.html` — `client {name}`
//! * `layout.html` — the frame the others extend.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;

const BUILTIN: [(&str, &str); 12] = [
    ("layout.html", include_str!("../templates/layout.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("authorize.html", include_str!("../templates/authorize.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("home.html", include_str!("../templates/home.html")),
    (
        "device_user_code.html",
        include_str!("../templates/device_user_code.html"),
    ),
    (
        "device_authorize.html",
        include_str!("../templates/device_authorize.html"),
    ),
    ("device_done.html", include_str!("../templates/device_done.html")),
    ("account.html", include_str!("../templates/account.html")),
    ("form_post.html", include_str!("../templates/form_post.html")),
    ("logout.html", include_str!("../templates/logout.html")),
    ("signed_out.html", include_str!("../templates/signed_out.html")),
];

/// Renders a named page with a JSON context. Implement it to take over the pages entirely.
pub trait Renderer: Send + Sync + fmt::Debug {
    /// Renders `template` (e.g. `authorize.html`) with `context`.
    fn render(&self, template: &str, context: &serde_json::Value) -> Result<String, String>;
}

/// The minijinja renderer: built-in templates, optionally overridden.
#[derive(Clone)]
pub struct Views {
    env: Arc<Environment<'static>>,
}

impl fmt::Debug for Views {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Views")
    }
}

impl Default for Views {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Views {
    fn environment(overrides: &[(String, String)]) -> Result<Environment<'static>, String> {
        let mut env = Environment::new();
        // Missing values render as empty, also through attribute chains, so a custom template
        // that reads a field some page does not pass still renders.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        for (name, source) in BUILTIN {
            let source = overrides
                .iter()
                .find(|(n, _)| n == name)
                .map_or_else(|| source.to_owned(), |(_, s)| s.clone());
            env.add_template_owned(name.to_owned(), source)
                .map_err(|e| format!("template {name}: {e}"))?;
        }
        Ok(env)
    }

    /// The built-in pages.
    pub fn builtin() -> Self {
        #[allow(clippy::expect_used)] // the built-in templates are compiled and tested
        let env = Self::environment(&[]).expect("built-in templates are valid");
        Self { env: Arc::new(env) }
    }

    /// Built-in pages, with every `*.html` in `dir` whose name matches a built-in template
    /// replacing it.
    pub fn with_overrides_from(dir: &Path) -> Result<Self, String> {
        let mut overrides = Vec::new();
        for (name, _) in BUILTIN {
            let path = dir.join(name);
            if path.exists() {
                let source = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                overrides.push((name.to_owned(), source));
            }
        }
        Ok(Self {
            env: Arc::new(Self::environment(&overrides)?),
        })
    }

    /// Built-in pages with one template replaced by `source`.
    pub fn with_template(name: &str, source: &str) -> Result<Self, String> {
        Ok(Self {
            env: Arc::new(Self::environment(&[(name.to_owned(), source.to_owned())])?),
        })
    }
}

impl Renderer for Views {
    fn render(&self, template: &str, context: &serde_json::Value) -> Result<String, String> {
        self.env
            .get_template(template)
            .and_then(|t| t.render(context))
            .map_err(|e| format!("{template}: {e}"))
    }
}

/// An HTML page response with the headers every page gets: not cacheable, not frameable.
pub(crate) fn page_response(status: StatusCode, html: String) -> Response {
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"),
    );
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_templates_render_and_escape() {
        let views = Views::builtin();
        let html = views
            .render(
                "authorize.html",
                &serde_json::json!({
                    "app_name": "Passport", "csrf_token": "t",
                    "client": {"id": "c", "name": "<script>x</script>"},
                    "user": {"email": "a@b.c"}, "scopes": [{"id": "read", "description": "Read"}],
                    "state": "s", "auth_token": "a", "authorize_url": "/oauth/authorize", "redirect_host": "app"
                }),
            )
            .unwrap();
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>x"));
        assert!(html.contains("name=\"_method\" value=\"DELETE\""));
        let html = views
            .render(
                "form_post.html",
                &serde_json::json!({
                    "action": "https://rp.example/cb", "csp_nonce": "n0",
                    "fields": [{"name": "code", "value": "a\"b"}, {"name": "state", "value": "<s>"}],
                }),
            )
            .unwrap();
        assert!(html.contains("<script nonce=\"n0\">"));
        assert!(html.contains("value=\"a&quot;b\"") && html.contains("value=\"&lt;s&gt;\""));
        for (name, _) in BUILTIN {
            views.render(name, &serde_json::json!({"app_name": "P"})).unwrap();
        }
    }

    #[test]
    fn a_template_can_be_replaced() {
        let views = Views::with_template("login.html", "custom {{ app_name }}").unwrap();
        assert_eq!(
            views
                .render("login.html", &serde_json::json!({"app_name": "X"}))
                .unwrap(),
            "custom X"
        );
    }
}
