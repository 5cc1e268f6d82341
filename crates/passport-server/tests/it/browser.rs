//! A real browser (headless Chromium through chromedriver) signs in, sees the consent page,
//! approves, and lands on the client's callback with a code the test exchanges; a second run
//! denies and lands with `error=access_denied`. The consent page is saved as a screenshot in
//! `target/test-artifacts/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them the
//! test prints why it is skipped — except under CI (`CI` set), where a missing browser fails.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use fantoccini::Locator;
use passport::{ClientKind, NewClient};
use serde_json::Value;

use crate::common::TestServer;
use crate::support_browser::{artifact_dir, click, open_browser, start_driver, type_into, wait_for_url};

/// A stand-in for the client application: its callback page just says so.
async fn start_callback_app() -> String {
    let app = Router::new().route("/callback", get(|| async { "Back at the client application." }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address: SocketAddr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://127.0.0.1:{}/callback", address.port())
}

fn query_param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_approves_and_denies_in_a_real_browser() {
    let Some(driver) = start_driver("browser test") else {
        return;
    };
    let db = passport_sqlx::testing::sqlite();
    let server = TestServer::start(db, |b| b.login_rate_limit(0)).await;
    let callback = start_callback_app().await;
    server.user("grace@example.com", "analytical engine").await;
    let (client, secret) = server
        .passport
        .create_client(
            NewClient::new("Acme Reports", ClientKind::AuthorizationCode { device_flow: false })
                .redirect_uris([callback.clone()]),
        )
        .await
        .expect("client");
    let secret = secret.expect("confidential client").expose_secret().to_owned();
    let authorize = |state: &str, prompt: &str| {
        let mut url = url::Url::parse(&server.url("/oauth/authorize")).expect("url");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client.id.as_str())
            .append_pair("redirect_uri", &callback)
            .append_pair("scope", "read orders:read")
            .append_pair("state", state)
            .append_pair("prompt", prompt);
        url.to_string()
    };

    let browser = open_browser(&driver, "1000,900").await;

    // A guest is sent to the login page, signs in, and comes back to the consent page.
    browser.goto(&authorize("first-run", "consent")).await.expect("goto");
    wait_for_url(&browser, &server.url("/login")).await;
    type_into(&browser, "input[name=email]", "grace@example.com").await;
    type_into(&browser, "input[name=password]", "analytical engine").await;
    click(&browser, "button[type=submit]").await;
    browser
        .wait()
        .for_element(Locator::Css("#approve"))
        .await
        .expect("the consent page");

    let page = browser.source().await.expect("page source");
    assert!(
        page.contains("Acme Reports wants to access your account"),
        "names the client"
    );
    assert!(
        page.contains("Read your data") && page.contains("Read your orders"),
        "describes each scope"
    );
    assert!(page.contains("grace@example.com"), "says who is signed in");
    let screenshot = browser.screenshot().await.expect("screenshot");
    assert!(screenshot.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(artifact_dir().join("consent.png"), &screenshot).expect("save screenshot");

    // Approve: the browser lands on the callback with a code the client exchanges.
    click(&browser, "#approve").await;
    let landed = wait_for_url(&browser, &callback).await;
    assert_eq!(query_param(&landed, "state").as_deref(), Some("first-run"));
    let code = query_param(&landed, "code").expect("a code on the callback");
    let response = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", client.id.as_str()),
            ("client_secret", &secret),
            ("redirect_uri", &callback),
            ("code", &code),
        ])
        .await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.expect("token json");
    let me = server
        .http
        .get(server.url("/api/user"))
        .bearer_auth(tokens["access_token"].as_str().expect("access token"))
        .send()
        .await
        .expect("api/user");
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<Value>().await.expect("user")["email"], "grace@example.com");

    // A second request, denied.
    browser.goto(&authorize("second-run", "consent")).await.expect("goto");
    browser
        .wait()
        .for_element(Locator::Css("#deny"))
        .await
        .expect("consent again");
    click(&browser, "#deny").await;
    let landed = wait_for_url(&browser, &callback).await;
    assert_eq!(query_param(&landed, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&landed, "state").as_deref(), Some("second-run"));
    assert!(query_param(&landed, "code").is_none());

    browser.close().await.expect("close browser");
}
