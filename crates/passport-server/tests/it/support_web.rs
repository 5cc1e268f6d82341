//! A browser over plain HTTP for the tests of the server's pages: a cookie-holding client that
//! never follows redirects (so every hop is checked), the pages it gets read completely, and
//! the forms on them read out of the served HTML, as a browser would.

use std::sync::Arc;

use reqwest::cookie::{CookieStore as _, Jar};
use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url};
use serde_json::Value;

use crate::common::TestServer;

/// A served response, read completely.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Page {
    pub(crate) async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.expect("response body");
        Self { status, headers, body }
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().expect("ASCII header"))
    }

    pub(crate) fn location(&self) -> Option<&str> {
        self.header("location")
    }

    /// Every `Set-Cookie` header.
    pub(crate) fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().expect("ASCII cookie"))
            .collect()
    }

    /// The last `Set-Cookie` for `name` (attributes included).
    pub(crate) fn set_cookie(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}=");
        self.set_cookies().into_iter().rev().find(|c| c.starts_with(&prefix))
    }

    /// The body as JSON (the content type must say so).
    #[track_caller]
    pub(crate) fn json(&self) -> Value {
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "a JSON response, got {:?}: {}",
            self.header("content-type"),
            self.body
        );
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// Every `<form>` on the page.
    pub(crate) fn forms(&self) -> Vec<Form> {
        parse_forms(&self.body)
    }

    /// The consent page's approve form (the one without `_method`).
    pub(crate) fn approve_form(&self, what: &str) -> Form {
        let forms = self.forms();
        assert_eq!(
            forms.len(),
            2,
            "{what}: the consent page has an approve and a deny form:\n{}",
            self.body
        );
        forms
            .into_iter()
            .find(|f| f.get("_method").is_none())
            .unwrap_or_else(|| panic!("{what}: no approve form"))
    }

    /// The consent page's deny form (`_method=DELETE`).
    pub(crate) fn deny_form(&self, what: &str) -> Form {
        self.forms()
            .into_iter()
            .find(|f| f.get("_method") == Some("DELETE"))
            .unwrap_or_else(|| panic!("{what}: no deny form with _method=DELETE:\n{}", self.body))
    }

    /// An HTML page that is not frameable nor cached.
    pub(crate) fn assert_html_page(&self, what: &str) {
        assert!(
            self.header("content-type").is_some_and(|c| c.starts_with("text/html")),
            "{what}: an HTML page, got {:?}",
            self.header("content-type")
        );
        assert_eq!(self.header("x-frame-options"), Some("DENY"), "{what}: X-Frame-Options");
        assert_eq!(self.header("cache-control"), Some("no-store"), "{what}: Cache-Control");
    }
}

/// One HTML form: method, action and inputs.
#[derive(Debug, Clone)]
pub(crate) struct Form {
    pub(crate) method: String,
    pub(crate) action: String,
    pub(crate) fields: Vec<(String, String)>,
}

impl Form {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The fields with `name` replaced by `value` (or added).
    pub(crate) fn with(&self, name: &str, value: &str) -> Vec<(String, String)> {
        let mut fields = self.without(name);
        fields.push((name.to_owned(), value.to_owned()));
        fields
    }

    /// The fields without `name`.
    pub(crate) fn without(&self, name: &str) -> Vec<(String, String)> {
        self.fields.iter().filter(|(k, _)| k != name).cloned().collect()
    }
}

/// `name="value"` of one tag.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(html_unescape(&tag[start..end]))
}

/// Undoes HTML escaping (named entities the templates produce, and numeric references).
fn html_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every `<form>` in `html`, with its named `<input>`s.
pub(crate) fn parse_forms(html: &str) -> Vec<Form> {
    let mut forms = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<form") {
        let after = &rest[start..];
        let end = after.find("</form>").expect("closed form");
        let form = &after[..end];
        let open = &form[..form.find('>').expect("form tag")];
        let method = attribute(open, "method").unwrap_or_else(|| "GET".to_owned());
        let action = attribute(open, "action").unwrap_or_default();
        let mut fields = Vec::new();
        let mut inputs = form;
        while let Some(i) = inputs.find("<input") {
            let tag_end = inputs[i..].find('>').expect("input tag") + i;
            let tag = &inputs[i..tag_end];
            if let Some(name) = attribute(tag, "name") {
                fields.push((name, attribute(tag, "value").unwrap_or_default()));
            }
            inputs = &inputs[tag_end..];
        }
        forms.push(Form { method, action, fields });
        rest = &after[end..];
    }
    forms
}

/// A cookie-holding client that does not follow redirects.
pub(crate) struct Browser {
    pub(crate) http: reqwest::Client,
    jar: Arc<Jar>,
    base: String,
}

impl Browser {
    /// A browser for the server at `base` (`http://127.0.0.1:PORT`), holding no cookies.
    pub(crate) fn new(base: &str) -> Self {
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("browser client");
        Self {
            http,
            jar,
            base: base.to_owned(),
        }
    }

    /// A browser signed in as `email` through the login form (sent home to `/`).
    pub(crate) async fn signed_in(server: &TestServer, email: &str, password: &str) -> Self {
        let browser = Self::new(&server.base);
        let page = browser.login(email, password).await;
        assert_eq!(
            (page.status, page.location()),
            (StatusCode::FOUND, Some("/")),
            "sign in as {email}\n{}",
            page.body
        );
        browser
    }

    /// An absolute URL: `path` on the server, or `path` itself when already absolute.
    pub(crate) fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{}", self.base, path)
        }
    }

    /// The value of a cookie this browser holds for the server.
    pub(crate) fn cookie(&self, name: &str) -> Option<String> {
        let url = Url::parse(&self.base).expect("base URL");
        let header = self.jar.cookies(&url)?;
        let prefix = format!("{name}=");
        header
            .to_str()
            .expect("ASCII cookies")
            .split("; ")
            .find_map(|c| c.strip_prefix(&prefix).map(str::to_owned))
    }

    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> Page {
        Page::read(request.send().await.expect("request")).await
    }

    pub(crate) async fn get(&self, path: &str) -> Page {
        self.send(self.http.get(self.url(path))).await
    }

    pub(crate) async fn post(&self, path: &str, form: &[(String, String)]) -> Page {
        self.send(self.http.post(self.url(path)).form(form)).await
    }

    pub(crate) async fn delete(&self, path: &str, form: &[(String, String)]) -> Page {
        self.send(self.http.delete(self.url(path)).form(form)).await
    }

    /// POSTs a raw body with a content type.
    pub(crate) async fn post_raw(&self, path: &str, content_type: &str, body: impl Into<reqwest::Body>) -> Page {
        self.send(
            self.http
                .post(self.url(path))
                .header("content-type", content_type)
                .body(body),
        )
        .await
    }

    /// Submits a POST form as the browser would (POST to its action).
    pub(crate) async fn submit(&self, form: &Form) -> Page {
        assert!(form.method.eq_ignore_ascii_case("POST"), "a POST form");
        self.post(&form.action, &form.fields).await
    }

    /// The login page and its form (with a `_token`).
    pub(crate) async fn login_form(&self) -> (Page, Form) {
        let page = self.get("/login").await;
        assert_eq!(page.status, StatusCode::OK, "login page\n{}", page.body);
        let form = page
            .forms()
            .into_iter()
            .find(|f| f.get("email").is_some() && f.get("password").is_some())
            .unwrap_or_else(|| panic!("a login form with email and password:\n{}", page.body));
        assert!(form.get("_token").is_some_and(|t| !t.is_empty()), "login form _token");
        (page, form)
    }

    /// Opens the login page, fills in its form and sends it.
    pub(crate) async fn login(&self, email: &str, password: &str) -> Page {
        let (_, form) = self.login_form().await;
        let mut fields = form.without("email");
        fields.retain(|(k, _)| k != "password");
        fields.push(("email".to_owned(), email.to_owned()));
        fields.push(("password".to_owned(), password.to_owned()));
        self.post(&form.action, &fields).await
    }
}
