//! A real browser for the tests that need one: headless Chromium driven through chromedriver
//! (fantoccini), plus the waits and clicks those tests share.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them a
//! test prints why it is skipped — except under CI (`CI` set), where a missing browser fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver, killed on drop.
pub(crate) struct Driver {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
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

/// Starts chromedriver for `test` (e.g. `"browser test"`); `None` (the test is skipped) when
/// the browser is not installed, which fails under CI.
pub(crate) fn start_driver(test: &str) -> Option<Driver> {
    if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install chromium and chromium-driver for the {test}"
        );
        eprintln!("skipping the {test}: {CHROMEDRIVER} or {CHROMIUM} is not installed");
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
        profile: tempfile::tempdir().expect("profile dir"),
    })
}

/// A headless Chromium session with a window of `window_size` (`"WIDTH,HEIGHT"`).
pub(crate) async fn open_browser(driver: &Driver, window_size: &str) -> Client {
    let profile = driver.profile.path().display().to_string();
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", format!("--window-size={window_size}"),
                format!("--user-data-dir={profile}"),
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

/// `target/test-artifacts/`, where screenshots are saved.
pub(crate) fn artifact_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir
}

/// Waits (up to 10 s) until the browser is at a URL starting with `prefix`; that URL.
pub(crate) async fn wait_for_url(browser: &Client, prefix: &str) -> url::Url {
    for _ in 0..100 {
        let current = browser.current_url().await.expect("current url");
        if current.as_str().starts_with(prefix) {
            return current;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the browser never reached {prefix}");
}

/// Waits for the element at `css` and types `text` into it.
pub(crate) async fn type_into(browser: &Client, css: &str, text: &str) {
    browser
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("type into {css}: {e}"));
}

/// Waits for the element at `css` and clicks it.
pub(crate) async fn click(browser: &Client, css: &str) {
    browser
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}
