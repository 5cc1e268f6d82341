//! Issue 10, "Hardening", as its "How it is checked" section asks: every attack as the security
//! review ran it, over HTTP (or the CLI), with the answer expected now (README: For operators,
//! HTTP).
//!
//! * **Brute-force limits** count failures, not requests: failed client authentication and
//!   wrong user credentials at the token endpoint per (client, address) and per address, failed
//!   sign-ins per (account, address) and per address. A locked key answers `429` with
//!   `Retry-After` (`temporarily_unavailable` in JSON, a clear message on the login page) and
//!   refuses the right secret or password too, with the same answer. Honest traffic (successes)
//!   is never throttled by default.
//! * **Findings 1–9** of the security review, one test each (two where both the HTTP side and
//!   the CLI are concerned).
//!
//! The limits key on the peer address, so "another address" is a client socket bound to
//! `127.0.0.2` ([`ELSEWHERE`]); the test servers listen on `127.0.0.1`. The harness switches the
//! failure limits off; the tests here set them explicitly, small, so few requests trip them.
//! The one-minute failure window runs on the server's clock, so the test that waits it out
//! advances the mock clock instead of sleeping (nothing here is ignored).

use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;
use std::time::Duration;

use passport::{ClientKind, FailureLimitSettings, NewClient};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection as _;

use crate::cli::{Deployment, error_line};
use crate::common::{TestServer, create_client};
use crate::support_web::{Browser, Page, parse_forms};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const PASSWORD: &str = "correct horse battery staple";
const CALLBACK: &str = "https://client.example/callback";
const CODE_CLIENT: ClientKind = ClientKind::AuthorizationCode { device_flow: false };
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// What the login page says for any wrong email or password.
const BAD_CREDENTIALS: &str = "These credentials do not match our records.";
/// What the login page says during a lockout.
const LOCKED_OUT: &str = "Too many failed sign-ins.";
/// Another address on the loopback network: the limits count it apart from `127.0.0.1`.
const ELSEWHERE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// Unicode format characters (general category Cf) that can disguise a name.
const FORMAT_CHARACTERS: [char; 6] = ['\u{202E}', '\u{200B}', '\u{2066}', '\u{FEFF}', '\u{AD}', '\u{E0041}'];

// ---------------------------------------------------------------------------------------------
// Brute-force limits: the token endpoint.
// ---------------------------------------------------------------------------------------------

/// Failed client authentication is counted per (client, address): past the limit the client is
/// refused from that address with `429 temporarily_unavailable` and `Retry-After`, the right
/// secret too and with the very same answer (no oracle), while other clients on that address and
/// the same client from another address carry on.
#[tokio::test]
async fn failed_client_authentication_locks_the_client_on_its_address() {
    let server = TestServer::start(passport_sqlx::testing::sqlite(), |b| {
        b.failure_limits(limits(3, 100, 0, 0))
    })
    .await;
    let (id, secret) = server.service_client().await;
    let (other_id, other_secret) = server.service_client().await;
    let here = plain_client(None);

    // Three failures, by form and by Basic credentials: each one an ordinary invalid_client.
    let wrong = client_credentials(&id, "wrong secret");
    for attempt in 1..=2 {
        let answer = post_token(&here, &server, &wrong).await;
        assert_oauth_error(&answer, 401, "invalid_client", &format!("wrong secret {attempt}"));
    }
    let basic = Page::read(
        here.post(server.url("/oauth/token"))
            .basic_auth(&id, Some("also wrong"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token request"),
    )
    .await;
    assert_oauth_error(&basic, 401, "invalid_client", "wrong Basic secret");

    // Locked: a wrong and a right secret get the same refusal.
    let locked_wrong = post_token(&here, &server, &wrong).await;
    assert_locked_json(&locked_wrong, "wrong secret past the limit");
    let locked_right = post_token(&here, &server, &client_credentials(&id, &secret)).await;
    assert_locked_json(&locked_right, "right secret during the lockout");
    assert_eq!(
        locked_right.json(),
        locked_wrong.json(),
        "the right secret must not be told apart during a lockout"
    );

    // Another client on this address, and this client from another address, are not locked.
    let other = post_token(&here, &server, &client_credentials(&other_id, &other_secret)).await;
    assert_issued(&other, "another client from the same address");
    let elsewhere = plain_client(Some(ELSEWHERE));
    let answer = post_token(&elsewhere, &server, &client_credentials(&id, &secret)).await;
    assert_issued(&answer, "the locked client from 127.0.0.2");
    let again = post_token(&here, &server, &client_credentials(&id, &secret)).await;
    assert_locked_json(&again, "a success elsewhere does not unlock 127.0.0.1");
}

/// The per-address ceiling: failures of any clients (unknown ones included) from one address add
/// up, and past the ceiling every client is refused from there, even one that never failed.
#[tokio::test]
async fn failed_client_authentication_is_capped_per_address() {
    let server = TestServer::start(passport_sqlx::testing::sqlite(), |b| {
        b.failure_limits(limits(100, 4, 0, 0))
    })
    .await;
    let (a, _) = server.service_client().await;
    let (b, _) = server.service_client().await;
    let (honest, honest_secret) = server.service_client().await;
    let here = plain_client(None);
    let unknown = uuid::Uuid::new_v4().to_string();
    for (client_id, what) in [
        (unknown.as_str(), "an unknown client"),
        ("not-a-client", "a malformed client id"),
        (a.as_str(), "client a, wrong secret"),
        (b.as_str(), "client b, wrong secret"),
    ] {
        let answer = post_token(&here, &server, &client_credentials(client_id, "wrong")).await;
        assert_oauth_error(&answer, 401, "invalid_client", what);
    }
    let answer = post_token(&here, &server, &client_credentials(&honest, &honest_secret)).await;
    assert_locked_json(&answer, "a client that never failed, from the locked address");
    let elsewhere = plain_client(Some(ELSEWHERE));
    let answer = post_token(&elsewhere, &server, &client_credentials(&honest, &honest_secret)).await;
    assert_issued(&answer, "the same client from 127.0.0.2");
}

/// Successes are never counted: with the default failure limits, 200 client-credentials tokens
/// in a row from one address (an integration test suite, say) all succeed, and so do sign-ins of
/// 20 people behind one address (an office behind NAT), even with a few typos among them.
#[tokio::test]
async fn honest_traffic_is_never_throttled_with_the_default_limits() {
    let server = TestServer::start(passport_sqlx::testing::sqlite(), |b| {
        b.failure_limits(FailureLimitSettings::default())
    })
    .await;
    let (id, secret) = server.service_client().await;
    let here = plain_client(None);
    let form = client_credentials(&id, &secret);
    for n in 1..=200 {
        let answer = post_token(&here, &server, &form).await;
        assert_issued(&answer, &format!("token {n} of 200"));
    }
    for n in 0..20 {
        let email = format!("person{n}@example.com");
        server.user(&email, PASSWORD).await;
        let browser = Browser::new(&server.base);
        if n % 5 == 0 {
            let typo = browser.login(&email, "a typo").await;
            assert_eq!(typo.status, StatusCode::UNPROCESSABLE_ENTITY, "{email}: typo");
        }
        let page = browser.login(&email, PASSWORD).await;
        assert_eq!(
            (page.status, page.location()),
            (StatusCode::FOUND, Some("/")),
            "{email} signs in\n{}",
            page.body
        );
    }
}

/// The same for the binary with its shipped defaults (no `passport.toml`): no request-rate
/// limit stands in the way of 200 tokens from one address, nor of 20 sign-ins from it.
#[tokio::test]
async fn the_shipped_defaults_never_throttle_honest_traffic() {
    let site = Deployment::sqlite();
    site.keys();
    let (id, secret) = site.client(&["--client", "--name", "Test suite"]);
    let secret = secret.expect("confidential");
    for n in 0..20 {
        site.user(&format!("person{n}@example.com"), PASSWORD);
    }
    let server = site.serve();
    let here = plain_client(None);
    let form = client_credentials(&id, &secret);
    for n in 1..=200 {
        let response = here
            .post(server.url("/oauth/token"))
            .form(&form)
            .send()
            .await
            .expect("token request");
        assert_issued(&Page::read(response).await, &format!("token {n} of 200"));
    }
    for n in 0..20 {
        let email = format!("person{n}@example.com");
        let page = login_with(&cookie_client(None), &server.base, &email, PASSWORD).await;
        assert_eq!(
            (page.status, page.location()),
            (StatusCode::FOUND, Some("/")),
            "{email} signs in\n{}",
            page.body
        );
    }
}

/// Wrong user credentials at the password grant count per client and address like failed
/// client authentication: `invalid_grant` up to the limit (whichever user was tried), then
/// `temporarily_unavailable` even for the right password; another address is not locked.
#[tokio::test]
async fn wrong_user_credentials_at_the_password_grant_lock_the_client_on_its_address() {
    let server = TestServer::start(passport_sqlx::testing::sqlite(), |b| {
        b.failure_limits(limits(3, 100, 0, 0))
    })
    .await;
    server.user(ALICE, PASSWORD).await;
    let (id, secret) = server.password_client().await;
    let (other_id, other_secret) = server.password_client().await;
    let here = plain_client(None);
    for (username, password, what) in [
        (ALICE, "wrong", "alice, wrong password"),
        ("nobody@example.com", PASSWORD, "an unknown user"),
        (ALICE, "wrong again", "alice, wrong password again"),
    ] {
        let answer = post_token(&here, &server, &password_grant(&id, &secret, username, password)).await;
        assert_oauth_error(&answer, 400, "invalid_grant", what);
    }
    let locked_wrong = post_token(&here, &server, &password_grant(&id, &secret, ALICE, "wrong")).await;
    assert_locked_json(&locked_wrong, "wrong password past the limit");
    let locked_right = post_token(&here, &server, &password_grant(&id, &secret, ALICE, PASSWORD)).await;
    assert_locked_json(&locked_right, "right password during the lockout");
    assert_eq!(locked_right.json(), locked_wrong.json(), "no oracle during a lockout");

    let other = post_token(
        &here,
        &server,
        &password_grant(&other_id, &other_secret, ALICE, PASSWORD),
    )
    .await;
    assert_issued(&other, "another client from the same address");
    let elsewhere = plain_client(Some(ELSEWHERE));
    let answer = post_token(&elsewhere, &server, &password_grant(&id, &secret, ALICE, PASSWORD)).await;
    assert_issued(&answer, "the locked client from 127.0.0.2");
}

// ---------------------------------------------------------------------------------------------
// Brute-force limits: the login page.
// ---------------------------------------------------------------------------------------------

/// Wrong passwords for one account from one address: the usual error up to the limit, then a
/// `429` page saying to wait, with `Retry-After`, for the right password too (and the same page
/// either way, so it tells nothing). Another account on that address, and the same account from
/// another address, sign in; a success elsewhere does not unlock this address.
#[tokio::test]
async fn failed_logins_lock_the_account_on_its_address() {
    let server = TestServer::start(passport_sqlx::testing::sqlite(), |b| {
        b.failure_limits(limits(0, 0, 3, 100))
    })
    .await;
    server.user(ALICE, PASSWORD).await;
    server.user(BOB, PASSWORD).await;
    let browser = Browser::new(&server.base);
    for attempt in 1..=3 {
        let page = browser.login(ALICE, "wrong password").await;
        assert_bad_credentials(&page, &format!("wrong password {attempt}"));
    }
    let locked_wrong = browser.login(ALICE, "wrong password").await;
    assert_locked_page(&locked_wrong, "wrong password past the limit");
    let locked_right = browser.login(ALICE, PASSWORD).await;
    assert_locked_page(&locked_right, "right password during the lockout");
    assert_eq!(
        without_wait(&locked_right.body),
        without_wait(&locked_wrong.body),
        "the right password must not be told apart during a lockout"
    );
    let shouting = browser.login(&ALICE.to_uppercase(), PASSWORD).await;
    assert_locked_page(&shouting, "the email in capitals is the same account");

    let bob = Browser::new(&server.base).login(BOB, PASSWORD).await;
    assert_signed_in(&bob, "another account from the same address");
    let elsewhere = login_with(&cookie_client(Some(ELSEWHERE)), &server.base, ALICE, PASSWORD).await;
    assert_signed_in(&elsewhere, "alice from 127.0.0.2");
    let again = Browser::new(&server.base).login(ALICE, PASSWORD).await;
    assert_locked_page(&again, "a success elsewhere does not unlock 127.0.0.1");
}

/// The per-address ceiling of failed logins: wrong passwords for several accounts (unknown ones
/// too) from one address add up, and past it any sign-in from there waits.
#[tokio::test]
async fn failed_logins_are_capped_per_address() {
    let server = TestServer::start(passport_sqlx::testing::sqlite(), |b| {
        b.failure_limits(limits(0, 0, 100, 4))
    })
    .await;
    server.user(ALICE, PASSWORD).await;
    server.user(BOB, PASSWORD).await;
    for email in [ALICE, "carol@example.com", "dave@example.com", "eve@example.com"] {
        let page = Browser::new(&server.base).login(email, "guess").await;
        assert_bad_credentials(&page, email);
    }
    let page = Browser::new(&server.base).login(BOB, PASSWORD).await;
    assert_locked_page(&page, "bob, who never failed, from the locked address");
    let elsewhere = login_with(&cookie_client(Some(ELSEWHERE)), &server.base, BOB, PASSWORD).await;
    assert_signed_in(&elsewhere, "bob from 127.0.0.2");
}

/// A success clears its account's count for its address (Laravel's login throttling): limit−1
/// failures, a success, limit−1 failures again and the account still signs in. The count starts
/// over at each success, so a full limit of failures after the last one locks it.
#[tokio::test]
async fn a_successful_login_clears_the_accounts_failures_on_its_address() {
    let server = TestServer::start(passport_sqlx::testing::sqlite(), |b| {
        b.failure_limits(limits(0, 0, 3, 100))
    })
    .await;
    server.user(ALICE, PASSWORD).await;
    for round in ["first", "second"] {
        for attempt in 1..=2 {
            let page = Browser::new(&server.base).login(ALICE, "wrong").await;
            assert_bad_credentials(&page, &format!("{round} round, failure {attempt}"));
        }
        let page = Browser::new(&server.base).login(ALICE, PASSWORD).await;
        assert_signed_in(&page, &format!("{round} round: two failures do not lock"));
    }
    for attempt in 1..=3 {
        let page = Browser::new(&server.base).login(ALICE, "wrong").await;
        assert_bad_credentials(&page, &format!("after the success, failure {attempt}"));
    }
    let page = Browser::new(&server.base).login(ALICE, PASSWORD).await;
    assert_locked_page(&page, "three failures after the success lock");
}

/// A lockout lasts until its one-minute window ends, then the right password works again.
#[tokio::test]
async fn a_login_lockout_ends_with_its_window() {
    let server = TestServer::start(passport_sqlx::testing::sqlite(), |b| {
        b.failure_limits(limits(0, 0, 2, 100))
    })
    .await;
    server.user(ALICE, PASSWORD).await;
    let browser = Browser::new(&server.base);
    for _ in 0..2 {
        assert_bad_credentials(&browser.login(ALICE, "wrong").await, "failure");
    }
    let page = browser.login(ALICE, PASSWORD).await;
    let wait = assert_locked_page(&page, "locked");
    server.advance(chrono::TimeDelta::seconds(i64::try_from(wait).unwrap() + 1));
    assert_signed_in(&browser.login(ALICE, PASSWORD).await, "after the window");
}

// ---------------------------------------------------------------------------------------------
// Findings of the security review.
// ---------------------------------------------------------------------------------------------

/// Finding 1: `POST /oauth/device/code` with a confidential client and a wrong, blank or
/// missing `client_secret` got a device code in the client's name. Now the client authenticates
/// as at the token endpoint (RFC 8628 §3.1, RFC 6749 §2.3): `invalid_client` for a wrong secret
/// (`invalid_request` naming `client_secret` when it is missing, as at the token endpoint), and
/// no device code is answered or stored.
#[tokio::test]
async fn finding_1_device_authorization_authenticates_confidential_clients() {
    let db = passport_sqlx::testing::sqlite();
    let url = db.url.clone();
    let server = TestServer::start_default(db).await;
    let (id, secret) = server.client(ClientKind::Device, false).await;
    let secret = secret.expect("a confidential device client");
    let here = plain_client(None);
    let device_code = |form: Vec<(&'static str, String)>| {
        let request = here.post(server.url("/oauth/device/code")).form(&form);
        async move { Page::read(request.send().await.expect("device code request")).await }
    };

    let wrong = device_code(vec![("client_id", id.clone()), ("client_secret", "wrong".into())]).await;
    assert_oauth_error(&wrong, 401, "invalid_client", "a wrong secret");
    let basic = Page::read(
        here.post(server.url("/oauth/device/code"))
            .basic_auth(&id, Some("wrong"))
            .form(&[("scope", "read")])
            .send()
            .await
            .expect("device code request"),
    )
    .await;
    assert_oauth_error(&basic, 401, "invalid_client", "a wrong Basic secret");
    assert_eq!(basic.header("www-authenticate"), Some("Basic realm=\"OAuth\""));
    for (form, what) in [
        (vec![("client_id", id.clone())], "no secret"),
        (
            vec![("client_id", id.clone()), ("client_secret", "  ".into())],
            "a blank secret",
        ),
    ] {
        let answer = device_code(form).await;
        assert_oauth_error(&answer, 400, "invalid_request", what);
        assert_eq!(answer.json()["hint"], "Check the `client_secret` parameter", "{what}");
    }
    assert_eq!(
        count_rows("sqlite", &url, "oauth_device_codes").await,
        0,
        "no device code stored"
    );

    let right = device_code(vec![("client_id", id.clone()), ("client_secret", secret.clone())]).await;
    assert_eq!(right.status, StatusCode::OK, "the right secret: {}", right.body);
    assert!(right.json()["device_code"].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(count_rows("sqlite", &url, "oauth_device_codes").await, 1);
}

/// The failure limits hold wherever a client authenticates: wrong secrets at the device
/// authorization endpoint lock the client at the token endpoint too (and there), from that
/// address only.
#[tokio::test]
async fn failed_client_authentication_at_the_device_endpoint_counts_with_the_token_endpoint() {
    let server = TestServer::start(passport_sqlx::testing::sqlite(), |b| {
        b.failure_limits(limits(3, 100, 0, 0))
    })
    .await;
    let (id, secret) = server.client(ClientKind::Device, false).await;
    let secret = secret.expect("confidential");
    let here = plain_client(None);
    let post = |http: &reqwest::Client, path: &str, form: Vec<(&str, &str)>| {
        let request = http.post(server.url(path)).form(&form);
        async move { Page::read(request.send().await.expect("request")).await }
    };
    let elsewhere = plain_client(Some(ELSEWHERE));
    let started = post(
        &elsewhere,
        "/oauth/device/code",
        vec![("client_id", id.as_str()), ("client_secret", secret.as_str())],
    )
    .await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.body);
    let device_code = started.json()["device_code"].as_str().expect("device_code").to_owned();

    for attempt in 1..=3 {
        let answer = post(
            &here,
            "/oauth/device/code",
            vec![("client_id", id.as_str()), ("client_secret", "wrong")],
        )
        .await;
        assert_oauth_error(
            &answer,
            401,
            "invalid_client",
            &format!("device endpoint, failure {attempt}"),
        );
    }
    let poll = vec![
        ("grant_type", DEVICE_GRANT),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
        ("device_code", device_code.as_str()),
    ];
    assert_locked_json(
        &post(&here, "/oauth/token", poll.clone()).await,
        "a poll with the right secret",
    );
    assert_locked_json(
        &post(
            &here,
            "/oauth/device/code",
            vec![("client_id", id.as_str()), ("client_secret", secret.as_str())],
        )
        .await,
        "a device authorization with the right secret",
    );
    let elsewhere_poll = post(&elsewhere, "/oauth/token", poll).await;
    assert_oauth_error(
        &elsewhere_poll,
        400,
        "authorization_pending",
        "the same client polls from 127.0.0.2",
    );
}

/// Finding 2: `GET /oauth/authorize?…&prompt=login` ended the signed-in session, so any site
/// could sign a user out with a link. Now it shows the login page and the session lives on
/// (pages, the JSON API and the SPA cookie keep working, through a failed attempt too) until a
/// new login succeeds; that login replaces the session and the request goes on.
#[tokio::test]
async fn finding_2_prompt_login_does_not_sign_the_user_out() {
    let server = TestServer::start_default(passport_sqlx::testing::sqlite()).await;
    let user_id = server.user(ALICE, PASSWORD).await;
    let (client_id, _) = server.client(CODE_CLIENT, false).await;
    let browser = Browser::signed_in(&server, ALICE, PASSWORD).await;
    let session = browser.cookie("passport_session").expect("a signed-in session");
    let account = browser.get("/account").await;
    assert_eq!(account.status, StatusCode::OK, "{}", account.body);
    let spa = browser.cookie("passport_token").expect("the SPA cookie");
    let csrf = csrf(&browser);

    let link = authorize_url(&server, &client_id, CALLBACK, &[("prompt", "login")]);
    let page = browser.get(&link).await;
    assert_eq!(
        (page.status, page.location()),
        (StatusCode::FOUND, Some("/login")),
        "prompt=login asks for a login\n{}",
        page.body
    );
    let (login, _) = browser.login_form().await;
    login.assert_html_page("the login page");
    assert_still_signed_in(&server, &browser, &spa, &csrf, &user_id, "after the prompt=login link").await;

    let failed = browser.login(ALICE, "not my password").await;
    assert_bad_credentials(&failed, "a failed login after prompt=login");
    assert_still_signed_in(&server, &browser, &spa, &csrf, &user_id, "after a failed login").await;

    // The new login succeeds: a new session, the old one (and its SPA cookie) ended, and the
    // authorization request goes on.
    let page = browser.login(ALICE, PASSWORD).await;
    assert_eq!(page.status, StatusCode::FOUND, "{}", page.body);
    let back = page.location().expect("Location");
    assert!(back.starts_with("/oauth/authorize?"), "back to the request: {back}");
    assert_ne!(
        browser.cookie("passport_session"),
        Some(session.clone()),
        "a new session"
    );
    let old = server
        .http
        .get(server.url("/oauth/clients"))
        .header("accept", "application/json")
        .header("cookie", format!("passport_session={session}"))
        .header("x-xsrf-token", &csrf)
        .send()
        .await
        .expect("request");
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED, "the replaced session has ended");
    let (status, body) = spa_api_user(&server, &spa, &csrf, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "and its SPA cookie: {body}");
    let consent = browser.get(back).await;
    assert_eq!(consent.status, StatusCode::OK, "the consent page\n{}", consent.body);
    consent.approve_form("after the new login");
}

backend_test! {
    /// Finding 3: every cookieless `GET /login` stored a session row (2,000 requests, 2,000
    /// rows). Now anonymous visits store nothing (the guest session is a signed cookie): a few
    /// hundred of them, plus the other pages a guest sees and failed or forged logins, leave the
    /// sessions table empty; the login form still works with the guest cookie (CSRF), and only
    /// then is a session stored.
    async fn finding_3_anonymous_visits_store_no_session(db) {
        let (kind, url) = (db.kind, db.url.clone());
        let server = TestServer::start_default(db).await;
        server.user(ALICE, PASSWORD).await;
        let (client_id, _) = server.client(CODE_CLIENT, false).await;
        let anonymous = plain_client(None);
        let mut visits = tokio::task::JoinSet::new();
        for _ in 0..300 {
            let request = anonymous.get(server.url("/login"));
            visits.spawn(async move { request.send().await.expect("GET /login").status() });
        }
        while let Some(status) = visits.join_next().await {
            assert_eq!(status.expect("visit"), StatusCode::OK);
        }
        let authorize = authorize_url(&server, &client_id, CALLBACK, &[]);
        for path in ["/", "/oauth/device", "/account", authorize.as_str()] {
            let target = if path.starts_with("http") {
                path.to_owned()
            } else {
                server.url(path)
            };
            let status = anonymous.get(target).send().await.expect("guest visit").status();
            assert!(status.is_success() || status.is_redirection(), "{path}: {status}");
        }
        let guest = Browser::new(&server.base);
        let (_, form) = guest.login_form().await;
        assert!(
            guest.cookie("passport_guest").is_some(),
            "the guest session is a cookie"
        );
        let no_cookie = anonymous
            .post(server.url("/login"))
            .form(&form.with("email", ALICE))
            .send()
            .await
            .expect("POST /login");
        assert_eq!(
            no_cookie.status().as_u16(),
            419,
            "the form's token without its guest cookie"
        );
        let forged = guest.post("/login", &form.with("_token", &"x".repeat(40))).await;
        assert_eq!(forged.status.as_u16(), 419, "a forged CSRF token");
        assert_bad_credentials(&guest.login(ALICE, "wrong").await, "a failed login");
        assert_eq!(
            count_rows(kind, &url, "passport_sessions").await,
            0,
            "nothing stored for guests"
        );

        let page = guest.login(ALICE, PASSWORD).await;
        assert_signed_in(&page, "the guest signs in with the guest cookie's CSRF token");
        assert_eq!(guest.cookie("passport_guest"), None, "the guest cookie is gone");
        assert_eq!(
            count_rows(kind, &url, "passport_sessions").await,
            1,
            "one signed-in session"
        );
    }
}

/// Finding 4: with `issuer` unset the `Host` header was reflected into `verification_uri`.
/// Absolute URLs now come from the issuer only: a spoofed `Host` (or forwarded headers) shows up
/// nowhere in the device authorization answer, redirects or pages.
#[tokio::test]
async fn finding_4_absolute_urls_never_come_from_the_host_header() {
    let server = TestServer::start_default(passport_sqlx::testing::sqlite()).await;
    server.user(ALICE, PASSWORD).await;
    let (device_id, _) = server.client(ClientKind::Device, true).await;
    let (code_id, _) = server.client(CODE_CLIENT, false).await;
    let spoofed = |request: reqwest::RequestBuilder| {
        request
            .header("host", "evil.example")
            .header("x-forwarded-host", "evil.example")
            .header("x-forwarded-proto", "https")
            .header("forwarded", "host=evil.example;proto=https")
    };
    let browser = Browser::new(&server.base);
    let answer = browser
        .send(spoofed(browser.http.post(server.url("/oauth/device/code"))).form(&[("client_id", &device_id)]))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let json = answer.json();
    assert_eq!(json["verification_uri"], server.url("/oauth/device"), "{json}");
    let complete = json["verification_uri_complete"]
        .as_str()
        .expect("verification_uri_complete");
    assert!(
        complete.starts_with(&server.url("/oauth/device?user_code=")),
        "{complete}"
    );

    let authorize = authorize_url(&server, &code_id, CALLBACK, &[]);
    let mut pages = vec![("device authorization", answer)];
    for path in [authorize.as_str(), "/login", "/oauth/device", "/"] {
        pages.push((path, browser.send(spoofed(browser.http.get(browser.url(path)))).await));
    }
    let (_, form) = browser.login_form().await;
    let login = form.with("email", ALICE);
    let mut login: Vec<(String, String)> = login.into_iter().filter(|(k, _)| k != "password").collect();
    login.push(("password".to_owned(), PASSWORD.to_owned()));
    let signed_in = browser
        .send(spoofed(browser.http.post(browser.url("/login"))).form(&login))
        .await;
    assert_eq!(signed_in.status, StatusCode::FOUND, "{}", signed_in.body);
    pages.push(("the login", signed_in));
    let consent = browser.send(spoofed(browser.http.get(&authorize))).await;
    pages.push(("the consent page", consent));
    for (what, page) in &pages {
        assert!(
            !page.body.contains("evil.example"),
            "{what}: the Host header in the body"
        );
        for (name, value) in &page.headers {
            let value = value.to_str().unwrap_or_default();
            assert!(!value.contains("evil.example"), "{what}: {name}: {value}");
        }
    }
}

/// Finding 4, the binary: `serve` without `issuer` derives it from the bind address and says so
/// at start-up (a spoofed `Host` does not change `verification_uri`), and refuses a wildcard bind
/// with a one-line reason; with an issuer, a wildcard bind starts.
#[tokio::test]
async fn finding_4_serve_takes_the_issuer_from_the_bind_address_and_refuses_wildcards() {
    let mut site = Deployment::sqlite();
    site.keys();
    for bind in ["0.0.0.0:0", "[::]:0"] {
        let line = site.fails(&["serve", "--bind", bind]);
        assert!(
            line.contains("issuer"),
            "--bind {bind}: the reason names the issuer: {line}"
        );
    }

    let (device_id, _) = site.client(&["--device", "--public"]);
    let server = site.serve();
    let answer = plain_client(None)
        .post(server.url("/oauth/device/code"))
        .header("host", "evil.example")
        .form(&[("client_id", &device_id)])
        .send()
        .await
        .expect("device code request");
    let answer = Page::read(answer).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.json()["verification_uri"], server.url("/oauth/device"));
    let log = server.log();
    assert!(
        log.contains("no issuer configured") && log.contains(&server.base),
        "start-up says which issuer it derived:\n{log}"
    );
    drop(server);

    site.set_env("PASSPORT_ISSUER", "https://auth.example.com");
    let mut child = site
        .command(&["serve", "--bind", "0.0.0.0:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn passport serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.starts_with("listening on http://0.0.0.0:"),
        "with an issuer a wildcard bind starts: {line:?}"
    );
}

/// Finding 5: at the token endpoint `unauthorized_client` was answered before the secret was
/// checked, telling anyone who knew a client's id which grants it has. Now a wrong secret is
/// `invalid_client` whatever the grant (the very answer a client with that grant gets), and only
/// the right secret learns `unauthorized_client`.
#[tokio::test]
async fn finding_5_the_secret_is_checked_before_the_grant() {
    let server = TestServer::start_default(passport_sqlx::testing::sqlite()).await;
    let service = server.service_client().await;
    let password = server.password_client().await;
    let code = server.client(CODE_CLIENT, false).await;
    let code = (code.0, code.1.expect("confidential"));
    let device = server.client(ClientKind::Device, false).await;
    let device = (device.0, device.1.expect("confidential"));
    let here = plain_client(None);
    // (grant_type, its other parameters, a client with the grant, a client without it)
    let cases = [
        ("client_credentials", vec![], &service, &password),
        (
            "password",
            vec![("username", ALICE), ("password", PASSWORD)],
            &password,
            &service,
        ),
        ("refresh_token", vec![("refresh_token", "def502")], &password, &service),
        (
            "authorization_code",
            vec![("code", "def502"), ("redirect_uri", CALLBACK)],
            &code,
            &service,
        ),
        (DEVICE_GRANT, vec![("device_code", "def502")], &device, &code),
    ];
    for (grant, extra, with, without) in cases {
        let form = |client: &(String, String), secret: &str| {
            let mut form = vec![
                ("grant_type".to_owned(), grant.to_owned()),
                ("client_id".to_owned(), client.0.clone()),
                ("client_secret".to_owned(), secret.to_owned()),
            ];
            form.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
            form
        };
        let send = |form: Vec<(String, String)>| {
            let request = here.post(server.url("/oauth/token")).form(&form);
            async move { Page::read(request.send().await.expect("token request")).await }
        };
        let having = send(form(with, "wrong")).await;
        assert_oauth_error(
            &having,
            401,
            "invalid_client",
            &format!("{grant}: the grant's own client"),
        );
        let lacking = send(form(without, "wrong")).await;
        assert_oauth_error(
            &lacking,
            401,
            "invalid_client",
            &format!("{grant}: a client without it"),
        );
        assert_eq!(lacking.json(), having.json(), "{grant}: nothing tells the two apart");
        let mut basic_form = vec![("grant_type", grant)];
        basic_form.extend(extra.iter().copied());
        let basic = Page::read(
            here.post(server.url("/oauth/token"))
                .basic_auth(&without.0, Some("wrong"))
                .form(&basic_form)
                .send()
                .await
                .expect("token request"),
        )
        .await;
        assert_oauth_error(&basic, 401, "invalid_client", &format!("{grant}: a wrong Basic secret"));
        assert_eq!(
            basic.header("www-authenticate"),
            Some("Basic realm=\"OAuth\""),
            "{grant}"
        );
        let right = send(form(without, &without.1)).await;
        assert_oauth_error(
            &right,
            400,
            "unauthorized_client",
            &format!("{grant}: the right secret"),
        );
    }
}

/// Finding 6, the JSON API: client names with Unicode format characters (the bidirectional
/// override U+202E, zero-width space, isolates, BOM, soft hyphen, tags) are refused with a 422
/// naming the field, when creating or renaming a client and naming a personal access token;
/// nothing is created, and other non-ASCII names still work.
#[tokio::test]
async fn finding_6_the_json_api_refuses_names_with_format_characters() {
    let server = TestServer::start_default(passport_sqlx::testing::sqlite()).await;
    server.user(ALICE, PASSWORD).await;
    server
        .passport
        .create_client(NewClient::new("PAT", ClientKind::PersonalAccess))
        .await
        .expect("personal access client");
    let alice = Browser::signed_in(&server, ALICE, PASSWORD).await;
    let created = api(
        &alice,
        Method::POST,
        "/oauth/clients",
        json!({"name": "Café 東京", "redirect": CALLBACK}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let client_id = created.json()["id"].as_str().expect("id").to_owned();

    for c in FORMAT_CHARACTERS {
        let name = format!("Good{c}App");
        let what = format!("U+{:04X}", u32::from(c));
        let body = json!({"name": name, "redirect": CALLBACK});
        for (method, path) in [
            (Method::POST, "/oauth/clients".to_owned()),
            (Method::PUT, format!("/oauth/clients/{client_id}")),
        ] {
            let reply = api(&alice, method.clone(), &path, body.clone()).await;
            assert_name_refused(&reply, &format!("{method} {path} with {what}"));
        }
        let reply = api(
            &alice,
            Method::POST,
            "/oauth/personal-access-tokens",
            json!({"name": name, "scopes": ["read"]}),
        )
        .await;
        assert_name_refused(&reply, &format!("a personal access token named with {what}"));
    }
    let clients = api(&alice, Method::GET, "/oauth/clients", Value::Null).await.json();
    assert_eq!(clients.as_array().map(Vec::len), Some(1), "{clients}");
    assert_eq!(clients[0]["name"], "Café 東京", "not renamed: {clients}");
    let tokens = api(&alice, Method::GET, "/oauth/personal-access-tokens", Value::Null)
        .await
        .json();
    assert_eq!(tokens, json!([]), "no token created");
}

/// Finding 6, the CLI: `passport client --name` and `passport token personal --name` refuse
/// format characters with a one-line error (exit non-zero), creating nothing.
#[tokio::test]
async fn finding_6_the_cli_refuses_names_with_format_characters() {
    let site = Deployment::sqlite();
    site.keys();
    site.json(&["install", "--json"]);
    let user = site.user(ALICE, PASSWORD);
    let before = site.json(&["client", "list", "--json"]);
    for c in FORMAT_CHARACTERS {
        let name = format!("Good{c}App");
        for args in [
            vec!["client", "--client", "--name", &name, "--json"],
            vec!["token", "personal", "--user", &user, "--name", &name, "--json"],
            vec![
                "user",
                "create",
                "--email",
                "bob@example.com",
                "--password",
                PASSWORD,
                "--name",
                &name,
            ],
        ] {
            let output = site.run(&args);
            let line = error_line(&output, &args);
            assert!(
                line.contains("name") && line.contains("character"),
                "U+{:04X}: a clear reason: {line}",
                u32::from(c)
            );
        }
    }
    assert_eq!(site.json(&["client", "list", "--json"]), before, "no client created");
    let users = site.json(&["user", "list", "--json"]);
    assert_eq!(users.as_array().map(Vec::len), Some(1), "no user created: {users}");
}

/// Finding 7, the JSON API: redirect URI registration accepted `http:/x` (no authority) and
/// non-web schemes. Now `http`/`https` need an authority, schemes no browser redirects to are
/// refused, plain `http` only to loopback unless `insecure_http_redirect_uris`, and private-use
/// reverse-domain schemes (RFC 8252 §7.1) are allowed; the same on update.
#[tokio::test]
async fn finding_7_the_json_api_registers_only_redirect_uris_a_browser_can_follow() {
    let server = TestServer::start_default(passport_sqlx::testing::sqlite()).await;
    server.user(ALICE, PASSWORD).await;
    let alice = Browser::signed_in(&server, ALICE, PASSWORD).await;
    for uri in REFUSED_REDIRECT_URIS {
        let reply = api(
            &alice,
            Method::POST,
            "/oauth/clients",
            json!({"name": "App", "redirect": uri}),
        )
        .await;
        assert_field_refused(&reply, "redirect", &format!("register {uri}"));
    }
    let mut ids = Vec::new();
    for uri in ACCEPTED_REDIRECT_URIS {
        let reply = api(
            &alice,
            Method::POST,
            "/oauth/clients",
            json!({"name": "App", "redirect": uri}),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "register {uri}: {}", reply.body);
        assert_eq!(reply.json()["redirect_uris"], json!([uri]), "{uri}");
        ids.push(reply.json()["id"].as_str().expect("id").to_owned());
    }
    for uri in REFUSED_REDIRECT_URIS {
        let path = format!("/oauth/clients/{}", ids[0]);
        let reply = api(&alice, Method::PUT, &path, json!({"name": "App", "redirect": uri})).await;
        assert_field_refused(&reply, "redirect", &format!("update to {uri}"));
    }

    let insecure = TestServer::start(passport_sqlx::testing::sqlite(), |b| {
        b.insecure_http_redirect_uris(true)
    })
    .await;
    insecure.user(ALICE, PASSWORD).await;
    let alice = Browser::signed_in(&insecure, ALICE, PASSWORD).await;
    let reply = api(
        &alice,
        Method::POST,
        "/oauth/clients",
        json!({"name": "App", "redirect": PLAIN_HTTP}),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "with insecure_http_redirect_uris: {}",
        reply.body
    );
    for uri in REFUSED_REDIRECT_URIS.iter().filter(|u| **u != PLAIN_HTTP) {
        let reply = api(
            &alice,
            Method::POST,
            "/oauth/clients",
            json!({"name": "App", "redirect": uri}),
        )
        .await;
        assert_field_refused(&reply, "redirect", &format!("{uri} with insecure_http_redirect_uris"));
    }
}

/// Finding 7, the CLI: `passport client --redirect-uri` follows the same rules (one-line
/// errors), and `PASSPORT_INSECURE_HTTP_REDIRECT_URIS=true` lets plain `http` through.
#[tokio::test]
async fn finding_7_the_cli_registers_only_redirect_uris_a_browser_can_follow() {
    let mut site = Deployment::sqlite();
    site.keys();
    for uri in REFUSED_REDIRECT_URIS {
        let line = site.fails(&["client", "--redirect-uri", uri, "--json"]);
        assert!(line.contains("Invalid redirect URI"), "{uri}: {line}");
    }
    assert_eq!(site.json(&["client", "list", "--json"]), json!([]), "nothing created");
    for uri in ACCEPTED_REDIRECT_URIS {
        site.client(&["--redirect-uri", uri]);
    }
    site.set_env("PASSPORT_INSECURE_HTTP_REDIRECT_URIS", "true");
    site.client(&["--redirect-uri", PLAIN_HTTP]);
    let line = site.fails(&["client", "--redirect-uri", "http:/x", "--json"]);
    assert!(line.contains("Invalid redirect URI"), "still no http:/x: {line}");
}

/// Finding 8: the loopback any-port rule matched other spellings of 127.0.0.1 and dot segments
/// against `http://127.0.0.1/cb` and redirected to the raw requested string. Now only the
/// literal host and the exact path match (an error page, never a redirect, for the rest), the
/// code goes to the registered URI with the requested port, and `localhost` is not port-flexible.
#[tokio::test]
async fn finding_8_the_loopback_port_rule_matches_literal_hosts_and_exact_paths() {
    let server = TestServer::start_default(passport_sqlx::testing::sqlite()).await;
    server.user(ALICE, PASSWORD).await;
    let (loopback_id, loopback_secret) = create_client(
        &server,
        NewClient::new("Native app", CODE_CLIENT).redirect_uris(["http://127.0.0.1/cb", "http://[::1]/cb"]),
    )
    .await;
    let (localhost_id, _) = create_client(
        &server,
        NewClient::new("Old native app", CODE_CLIENT).redirect_uris(["http://localhost/cb"]),
    )
    .await;
    let guest = Browser::new(&server.base);
    let alice = Browser::signed_in(&server, ALICE, PASSWORD).await;
    let attacks = [
        (&loopback_id, "http://2130706433:99/cb"),
        (&loopback_id, "http://127.1:99/cb"),
        (&loopback_id, "http://127.0.0.1.:99/cb"),
        (&loopback_id, "http://127.0.0.1:99/x/../cb"),
        (&loopback_id, "http://127.0.0.1:99/cb/"),
        (&loopback_id, "http://127.0.0.1:99/%63b"),
        (&loopback_id, "http://127.0.0.1:99@evil.example/cb"),
        (&loopback_id, "http://127.0.0.1.evil.example:99/cb"),
        (&loopback_id, "http://[0:0:0:0:0:0:0:1]:99/cb"),
        (&localhost_id, "http://localhost:99/cb"),
    ];
    for (client_id, uri) in attacks {
        for (who, browser, prompt) in [("guest", &guest, "none"), ("alice", &alice, "consent")] {
            let what = format!("{uri} for {who}");
            let page = browser
                .get(&authorize_url(&server, client_id, uri, &[("prompt", prompt)]))
                .await;
            assert!(
                page.status.is_client_error(),
                "{what}: an error page, got {}",
                page.status
            );
            assert_eq!(page.location(), None, "{what}: never a redirect");
            page.assert_html_page(&what);
            assert!(!page.body.contains("code="), "{what}: no code");
        }
    }

    // The real thing: a port the app never registered; the code goes there.
    let uri = "http://127.0.0.1:4567/cb";
    let consent = alice.get(&authorize_url(&server, &loopback_id, uri, &[])).await;
    assert_eq!(consent.status, StatusCode::OK, "the consent page\n{}", consent.body);
    let page = alice.submit(&consent.approve_form("loopback")).await;
    assert_eq!(page.status, StatusCode::FOUND, "{}", page.body);
    let location = page.location().expect("Location");
    let code = location
        .strip_prefix("http://127.0.0.1:4567/cb?code=")
        .unwrap_or_else(|| panic!("the registered URI with the requested port: {location}"));
    let code = code.split('&').next().expect("code").to_owned();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", loopback_id.as_str()),
        ("client_secret", loopback_secret.as_deref().expect("confidential")),
        ("redirect_uri", uri),
        ("code", code.as_str()),
    ];
    assert_issued(&post_token(&plain_client(None), &server, &form).await, "the exchange");

    // A localhost URI registered before the rule still works, exactly as registered.
    let page = alice
        .get(&authorize_url(&server, &localhost_id, "http://localhost/cb", &[]))
        .await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "http://localhost/cb as registered\n{}",
        page.body
    );
}

/// Finding 9: the SPA cookie (Passport's `laravel_token`) kept working for its whole lifetime
/// after logout. Now it carries its session: replayed after logout (even with the old session
/// cookie and CSRF token), and after signing in again, it is refused.
#[tokio::test]
async fn finding_9_the_spa_cookie_ends_at_logout() {
    let server = TestServer::start_default(passport_sqlx::testing::sqlite()).await;
    let user_id = server.user(ALICE, PASSWORD).await;
    let alice = Browser::signed_in(&server, ALICE, PASSWORD).await;
    let account = alice.get("/account").await;
    assert_eq!(account.status, StatusCode::OK, "{}", account.body);
    let spa = alice.cookie("passport_token").expect("the SPA cookie");
    let session = alice.cookie("passport_session").expect("the session cookie");
    let xsrf = csrf(&alice);
    let (status, body) = spa_api_user(&server, &spa, &xsrf, None).await;
    assert_eq!(
        (status, &body["id"]),
        (StatusCode::OK, &json!(user_id)),
        "before logout: {body}"
    );

    let out = alice.post("/logout", &[("_token".to_owned(), xsrf.clone())]).await;
    assert_eq!(out.status, StatusCode::FOUND, "logout: {}", out.body);
    let (status, body) = spa_api_user(&server, &spa, &xsrf, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the SPA cookie after logout: {body}");
    let (status, body) = spa_api_user(&server, &spa, &xsrf, Some(&session)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "with the old session cookie too: {body}"
    );

    let again = Browser::signed_in(&server, ALICE, PASSWORD).await;
    assert_eq!(again.get("/account").await.status, StatusCode::OK);
    let (status, _) = spa_api_user(&server, &spa, &xsrf, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "signing in again does not revive it");
    let fresh = again.cookie("passport_token").expect("a new SPA cookie");
    let (status, body) = spa_api_user(&server, &fresh, &csrf(&again), None).await;
    assert_eq!(status, StatusCode::OK, "the new session's cookie works: {body}");
}

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

/// Redirect URIs registration refuses by default (the review's and their kin).
const REFUSED_REDIRECT_URIS: [&str; 8] = [
    "http:/x",
    "http:///cb",
    "https:/x",
    "ws://example.com/cb",
    "javascript:alert(1)",
    "urn:ietf:wg:oauth:2.0:oob",
    "myapp:/cb",
    PLAIN_HTTP,
];
/// Redirect URIs registration accepts.
const ACCEPTED_REDIRECT_URIS: [&str; 4] = [
    "https://example.com/cb",
    "http://127.0.0.1/cb",
    "http://[::1]:8080/cb",
    "com.example.app:/cb",
];
/// Plain http off loopback: only with `insecure_http_redirect_uris`.
const PLAIN_HTTP: &str = "http://example.com/cb";

/// Failure limits per minute (0 = none): client authentication per client and per address,
/// sign-ins per account and per address.
fn limits(
    per_client: u32,
    clients_per_address: u32,
    per_account: u32,
    logins_per_address: u32,
) -> FailureLimitSettings {
    FailureLimitSettings {
        client_auth_failures_per_client: per_client,
        client_auth_failures_per_address: clients_per_address,
        login_failures_per_account: per_account,
        login_failures_per_address: logins_per_address,
    }
}

/// A cookieless client that does not follow redirects, its requests from `address` (or the
/// default, 127.0.0.1).
fn plain_client(address: Option<IpAddr>) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(address)
        .build()
        .expect("HTTP client")
}

/// A cookie-holding client that does not follow redirects (a browser), from `address`.
fn cookie_client(address: Option<IpAddr>) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(address)
        .build()
        .expect("HTTP client")
}

/// The login page and its form, filled in and sent, with a cookie-holding `http`.
async fn login_with(http: &reqwest::Client, base: &str, email: &str, password: &str) -> Page {
    let page = Page::read(http.get(format!("{base}/login")).send().await.expect("GET /login")).await;
    assert_eq!(page.status, StatusCode::OK, "the login page\n{}", page.body);
    let form = parse_forms(&page.body)
        .into_iter()
        .find(|f| f.get("email").is_some())
        .unwrap_or_else(|| panic!("a login form:\n{}", page.body));
    let mut fields: Vec<(String, String)> = form.with("email", email);
    fields.retain(|(k, _)| k != "password");
    fields.push(("password".to_owned(), password.to_owned()));
    let response = http
        .post(format!("{base}{}", form.action))
        .form(&fields)
        .send()
        .await
        .expect("POST /login");
    Page::read(response).await
}

/// A client-credentials token request.
fn client_credentials<'a>(id: &'a str, secret: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
    ]
}

/// A password grant token request.
fn password_grant<'a>(
    id: &'a str,
    secret: &'a str,
    username: &'a str,
    password: &'a str,
) -> Vec<(&'static str, &'a str)> {
    vec![
        ("grant_type", "password"),
        ("client_id", id),
        ("client_secret", secret),
        ("username", username),
        ("password", password),
    ]
}

/// POSTs `form` to the token endpoint with `http`.
async fn post_token(http: &reqwest::Client, server: &TestServer, form: &[(&str, &str)]) -> Page {
    let response = http
        .post(server.url("/oauth/token"))
        .form(form)
        .send()
        .await
        .expect("token request");
    Page::read(response).await
}

/// A token response.
#[track_caller]
fn assert_issued(page: &Page, what: &str) {
    assert_eq!(page.status, StatusCode::OK, "{what}: {}", page.body);
    assert_eq!(page.json()["token_type"], "Bearer", "{what}");
}

/// A JSON OAuth error with this status and code, and no token.
#[track_caller]
fn assert_oauth_error(page: &Page, status: u16, code: &str, what: &str) {
    assert_eq!(page.status.as_u16(), status, "{what}: {}", page.body);
    let body = page.json();
    assert_eq!(body["error"], code, "{what}: {body}");
    assert!(body.get("access_token").is_none(), "{what}: no token");
    assert!(body.get("device_code").is_none(), "{what}: no device code");
}

/// The JSON lockout: `429 temporarily_unavailable` with `Retry-After` within the minute.
#[track_caller]
fn assert_locked_json(page: &Page, what: &str) {
    assert_oauth_error(page, 429, "temporarily_unavailable", what);
    retry_after(page, what);
}

/// The `Retry-After` seconds, within the one-minute window.
#[track_caller]
fn retry_after(page: &Page, what: &str) -> u64 {
    let wait: u64 = page
        .header("retry-after")
        .unwrap_or_else(|| panic!("{what}: Retry-After"))
        .parse()
        .unwrap_or_else(|e| panic!("{what}: Retry-After in seconds: {e}"));
    assert!((1..=60).contains(&wait), "{what}: Retry-After {wait}");
    wait
}

/// The login page with the lockout message, `429` and `Retry-After`; no session is started.
/// Returns the seconds to wait.
#[track_caller]
fn assert_locked_page(page: &Page, what: &str) -> u64 {
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{what}\n{}", page.body);
    page.assert_html_page(what);
    assert!(
        page.body.contains(LOCKED_OUT),
        "{what}: the lockout message\n{}",
        page.body
    );
    assert!(
        !page.body.contains(BAD_CREDENTIALS),
        "{what}: not the wrong-password message"
    );
    assert!(
        page.forms().iter().any(|f| f.get("password").is_some()),
        "{what}: the login form is shown again"
    );
    assert_eq!(page.set_cookie("passport_session"), None, "{what}: not signed in");
    let wait = retry_after(page, what);
    assert!(
        page.body.contains(&format!("Wait {wait} seconds")),
        "{what}: the page says how long to wait\n{}",
        page.body
    );
    wait
}

/// `html` with the number of seconds to wait taken out (it ticks between two answers).
fn without_wait(html: &str) -> String {
    let Some(start) = html.find("Wait ").map(|i| i + "Wait ".len()) else {
        return html.to_owned();
    };
    let digits = html[start..].bytes().take_while(u8::is_ascii_digit).count();
    format!("{}N{}", &html[..start], &html[start + digits..])
}

/// The login page again with the generic wrong-credentials message.
#[track_caller]
fn assert_bad_credentials(page: &Page, what: &str) {
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{what}\n{}", page.body);
    assert!(page.body.contains(BAD_CREDENTIALS), "{what}: the usual message");
}

/// A successful sign-in: home to `/`, with a session cookie.
#[track_caller]
fn assert_signed_in(page: &Page, what: &str) {
    assert_eq!(
        (page.status, page.location()),
        (StatusCode::FOUND, Some("/")),
        "{what}\n{}",
        page.body
    );
    assert!(
        page.set_cookie("passport_session").is_some(),
        "{what}: a session cookie"
    );
}

/// A 422 naming exactly `field`.
#[track_caller]
fn assert_field_refused(reply: &Page, field: &str, what: &str) {
    assert_eq!(reply.status.as_u16(), 422, "{what}: {}", reply.body);
    let body = reply.json();
    let errors = body["errors"]
        .as_object()
        .unwrap_or_else(|| panic!("{what}: errors: {body}"));
    assert_eq!(errors.keys().collect::<Vec<_>>(), [field], "{what}: {body}");
    assert!(
        errors[field][0].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: a message: {body}"
    );
}

/// A 422 on `name` that says what is wrong with it.
#[track_caller]
fn assert_name_refused(reply: &Page, what: &str) {
    assert_field_refused(reply, "name", what);
    let message = reply.json()["errors"]["name"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("character"), "{what}: a clear message: {message}");
}

/// The session's CSRF token, from the readable `XSRF-TOKEN` cookie.
fn csrf(browser: &Browser) -> String {
    browser.cookie("XSRF-TOKEN").expect("an XSRF-TOKEN cookie")
}

/// A JSON API request as the dashboard sends it (`X-XSRF-TOKEN` from the cookie); `Null` sends
/// no body.
async fn api(browser: &Browser, method: Method, path: &str, body: Value) -> Page {
    let mut request = browser
        .http
        .request(method, browser.url(path))
        .header("accept", "application/json")
        .header("x-xsrf-token", csrf(browser));
    if !body.is_null() {
        request = request.json(&body);
    }
    browser.send(request).await
}

/// `GET /api/user` with only the SPA cookie (and `session`, the session cookie, if given) and
/// the CSRF header: the status and the JSON body (`Null` when not JSON).
async fn spa_api_user(server: &TestServer, spa: &str, csrf: &str, session: Option<&str>) -> (StatusCode, Value) {
    let mut cookies = format!("passport_token={spa}");
    if let Some(session) = session {
        cookies.push_str(&format!("; passport_session={session}"));
    }
    let reply = Page::read(
        server
            .http
            .get(server.url("/api/user"))
            .header("accept", "application/json")
            .header("cookie", cookies)
            .header("x-xsrf-token", csrf)
            .send()
            .await
            .expect("GET /api/user"),
    )
    .await;
    (reply.status, serde_json::from_str(&reply.body).unwrap_or(Value::Null))
}

/// The signed-in session still works: the home page, the dashboard, the JSON API and the SPA
/// cookie.
async fn assert_still_signed_in(
    server: &TestServer,
    browser: &Browser,
    spa: &str,
    csrf: &str,
    user_id: &str,
    what: &str,
) {
    let home = browser.get("/").await;
    assert!(
        home.body.contains("You are signed in"),
        "{what}: the home page\n{}",
        home.body
    );
    let account = browser.get("/account").await;
    assert_eq!(account.status, StatusCode::OK, "{what}: the dashboard");
    let clients = api(browser, Method::GET, "/oauth/clients", Value::Null).await;
    assert_eq!(clients.status, StatusCode::OK, "{what}: the JSON API: {}", clients.body);
    let (status, body) = spa_api_user(server, spa, csrf, None).await;
    assert_eq!(
        (status, &body["id"]),
        (StatusCode::OK, &json!(user_id)),
        "{what}: the SPA cookie"
    );
}

/// `/oauth/authorize` for a code request to `redirect_uri` (scope `read`, a state), plus `extra`.
fn authorize_url(server: &TestServer, client_id: &str, redirect_uri: &str, extra: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse(&server.url("/oauth/authorize")).expect("url");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "read")
        .append_pair("state", "hardening")
        .extend_pairs(extra);
    url.to_string()
}

/// Rows in `table`, counted with plain SQL on the test database.
async fn count_rows(kind: &str, url: &str, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    if kind == "sqlite" {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("connect");
        let n = sqlx::query_scalar(&sql).fetch_one(&mut conn).await.expect("count");
        let _ = conn.close().await;
        n
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
        let n = sqlx::query_scalar(&sql).fetch_one(&mut conn).await.expect("count");
        let _ = conn.close().await;
        n
    }
}
