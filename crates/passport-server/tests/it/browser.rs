//! A real browser (headless Chromium through chromedriver) signs in, sees the consent page,
//! approves, and lands on the client's callback with a code the test exchanges; a second run
//! denies and lands with `error=access_denied`. The consent page is saved as a screenshot in
//! `target/test-artifacts/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them the
//! test prints why it is skipped — except under CI (`CI` set), where a missing browser fails.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use fantoccini::{Client, ClientBuilder, Locator};
use passport::{ClientKind, NewClient};
use serde_json::{Value, json};

use crate::common::{TestServer, backends};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver, killed on drop.
struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn start_driver() -> Option<Driver> {
    if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install chromium and chromium-driver for the browser test"
        );
        eprintln!("skipping the browser test: {CHROMEDRIVER} or {CHROMIUM} is not installed");
        return None;
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    Some(Driver {
        child,
        port,
        _profile: tempfile::tempdir().expect("profile dir"),
    })
}

async fn open_browser(driver: &Driver) -> Client {
    let profile = driver._profile.path().display().to_string();
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1000,900", format!("--user-data-dir={profile}"),
            ],
        },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let url = format!("http://127.0.0.1:{}", driver.port);
    for attempt in 0..50 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return client,
            Err(err) if attempt == 49 => panic!("cannot start a browser session: {err}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    unreachable!()
}

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

fn artifact_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir
}

async fn wait_for_url(browser: &Client, prefix: &str) -> url::Url {
    for _ in 0..100 {
        let current = browser.current_url().await.expect("current url");
        if current.as_str().starts_with(prefix) {
            return current;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the browser never reached {prefix}");
}

fn query_param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_approves_and_denies_in_a_real_browser() {
    let Some(driver) = start_driver() else { return };
    let db = backends().await.remove(0);
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
            .append_pair("client_id", &client.id)
            .append_pair("redirect_uri", &callback)
            .append_pair("scope", "read orders:read")
            .append_pair("state", state)
            .append_pair("prompt", prompt);
        url.to_string()
    };

    let browser = open_browser(&driver).await;

    // A guest is sent to the login page, signs in, and comes back to the consent page.
    browser.goto(&authorize("first-run", "consent")).await.expect("goto");
    wait_for_url(&browser, &server.url("/login")).await;
    browser
        .find(Locator::Css("input[name=email]"))
        .await
        .expect("email field")
        .send_keys("grace@example.com")
        .await
        .expect("type email");
    browser
        .find(Locator::Css("input[name=password]"))
        .await
        .expect("password field")
        .send_keys("analytical engine")
        .await
        .expect("type password");
    browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("sign in button")
        .click()
        .await
        .expect("sign in");
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
    browser
        .find(Locator::Css("#approve"))
        .await
        .expect("approve")
        .click()
        .await
        .expect("click approve");
    let landed = wait_for_url(&browser, &callback).await;
    assert_eq!(query_param(&landed, "state").as_deref(), Some("first-run"));
    let code = query_param(&landed, "code").expect("a code on the callback");
    let response = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &client.id),
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
    browser
        .find(Locator::Css("#deny"))
        .await
        .expect("deny")
        .click()
        .await
        .expect("click deny");
    let landed = wait_for_url(&browser, &callback).await;
    assert_eq!(query_param(&landed, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&landed, "state").as_deref(), Some("second-run"));
    assert!(query_param(&landed, "code").is_none());

    browser.close().await.expect("close browser");
}
