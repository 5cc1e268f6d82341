//! The real `passport` binary as a server process, set up with its own CLI, driven by a
//! third-party OAuth 2.0 client library (the `oauth2` crate): client credentials, password and
//! refresh grants with both client authentication methods, errors parsed by the library, a
//! crash and restart (tokens survive), and a graceful shutdown on SIGTERM / SIGINT.

// Helpers outside #[test] functions panic on failure too: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use oauth2::basic::{BasicClient, BasicErrorResponseType, BasicTokenType};
use oauth2::{
    AuthType, ClientId, ClientSecret, RequestTokenError, ResourceOwnerPassword, ResourceOwnerUsername, Scope,
    TokenResponse, TokenUrl,
};
use serde_json::{Value, json};

use crate::cli::{Deployment, ServerProcess, api_user, jwt_claims, post_token};

/// What the CLI set up.
struct Setup {
    user_id: String,
    email: &'static str,
    password: &'static str,
    /// Client credentials client (id, secret).
    service: (String, String),
    /// Password grant client (id, secret).
    app: (String, String),
}

/// Keys, scopes, the password grant switched on, a user and two clients — all with the CLI.
fn set_up(site: &mut Deployment) -> Setup {
    site.write_config("[scopes]\nread = \"Read your data\"\nwrite = \"Change your data\"\n");
    site.set_env("PASSPORT_ENABLE_PASSWORD_GRANT", "true");
    site.keys();
    let email = "erin@example.com";
    let password = "erin's password";
    let user_id = site.user(email, password);
    let (service, service_secret) = site.client(&["--client", "--name", "Service"]);
    let (app, app_secret) = site.client(&["--password", "--name", "App"]);
    Setup {
        user_id,
        email,
        password,
        service: (service, service_secret.expect("confidential")),
        app: (app, app_secret.expect("confidential")),
    }
}

/// oauth2 5 refuses to run with a client that follows redirects.
fn http_client() -> reqwest::Client {
    reqwest::ClientBuilder::new()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client")
}

type Client = oauth2::basic::BasicClient<
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

fn oauth_client(server: &ServerProcess, (id, secret): &(String, String), auth: &AuthType) -> Client {
    BasicClient::new(ClientId::new(id.clone()))
        .set_client_secret(ClientSecret::new(secret.clone()))
        .set_token_uri(TokenUrl::new(server.url("/oauth/token")).expect("token URL"))
        .set_auth_type(auth.clone())
}

/// The error code of a failed oauth2 request, which must be a parsed server response.
fn server_error<RE: std::error::Error + 'static>(
    result: Result<impl std::fmt::Debug, RequestTokenError<RE, oauth2::StandardErrorResponse<BasicErrorResponseType>>>,
) -> BasicErrorResponseType {
    match result {
        Err(RequestTokenError::ServerResponse(response)) => response.error().clone(),
        Err(other) => panic!("expected an OAuth error response, got {other:?}"),
        Ok(token) => panic!("expected an OAuth error response, got a token: {token:?}"),
    }
}

backend_test! {
    async fn a_standard_oauth2_client_library_works_against_the_binary(db) {
        let mut site = Deployment::new(db);
        let setup = set_up(&mut site);
        let server = site.serve();
        let http = http_client();
        let username = ResourceOwnerUsername::new(setup.email.to_owned());
        let password = ResourceOwnerPassword::new(setup.password.to_owned());

        for auth in [AuthType::BasicAuth, AuthType::RequestBody] {
            let what = format!("{auth:?}");
            let service = oauth_client(&server, &setup.service, &auth);
            let app = oauth_client(&server, &setup.app, &auth);

            // Client credentials.
            let token = service
                .exchange_client_credentials()
                .add_scope(Scope::new("read".to_owned()))
                .request_async(&http)
                .await
                .unwrap_or_else(|e| panic!("{what}: {e:?}; log:\n{}", server.log()));
            assert_eq!(*token.token_type(), BasicTokenType::Bearer, "{what}");
            assert!(
                token.refresh_token().is_none(),
                "{what}: no refresh token for client credentials"
            );
            assert_eq!(token.expires_in(), Some(Duration::from_secs(365 * 86_400)), "{what}");
            assert!(
                token.scopes().is_none(),
                "{what}: scope omitted when granted as requested"
            );
            let claims = jwt_claims(token.access_token().secret());
            assert_eq!(claims["aud"], setup.service.0.as_str());
            assert_eq!(claims["sub"], setup.service.0.as_str());
            assert_eq!(claims["scopes"], json!(["read"]));
            let (status, _) = api_user(&http, &server, token.access_token().secret()).await;
            assert_eq!(status, 401, "{what}: a client token is no user");

            // Errors the library parses: wrong secret, unknown scope, a grant the client lacks.
            let wrong = oauth_client(&server, &(setup.service.0.clone(), "not-the-secret".to_owned()), &auth);
            let error = server_error(wrong.exchange_client_credentials().request_async(&http).await);
            assert_eq!(error, BasicErrorResponseType::InvalidClient, "{what}");
            let error = server_error(
                service
                    .exchange_client_credentials()
                    .add_scope(Scope::new("delete-everything".to_owned()))
                    .request_async(&http)
                    .await,
            );
            assert_eq!(error, BasicErrorResponseType::InvalidScope, "{what}");
            let error = server_error(
                service
                    .exchange_password(&username, &password)
                    .request_async(&http)
                    .await,
            );
            assert_eq!(error, BasicErrorResponseType::UnauthorizedClient, "{what}");

            // Password grant.
            let token = app
                .exchange_password(&username, &password)
                .add_scope(Scope::new("read".to_owned()))
                .add_scope(Scope::new("write".to_owned()))
                .request_async(&http)
                .await
                .unwrap_or_else(|e| panic!("{what}: {e:?}"));
            let first_access = token.access_token().secret().clone();
            let first_refresh = token.refresh_token().expect("a refresh token").clone();
            assert_eq!(jwt_claims(&first_access)["scopes"], json!(["read", "write"]));
            let (status, body) = api_user(&http, &server, &first_access).await;
            assert_eq!(status, 200, "{what}: {body}");
            assert_eq!(body["id"], setup.user_id.as_str());
            assert_eq!(body["email"], setup.email);

            let wrong_password = ResourceOwnerPassword::new("guess".to_owned());
            let error = server_error(
                app.exchange_password(&username, &wrong_password)
                    .request_async(&http)
                    .await,
            );
            assert_eq!(error, BasicErrorResponseType::InvalidGrant, "{what}");

            // Refresh: rotation, the old access token revoked.
            let refreshed = app
                .exchange_refresh_token(&first_refresh)
                .request_async(&http)
                .await
                .unwrap_or_else(|e| panic!("{what}: {e:?}"));
            let second_access = refreshed.access_token().secret().clone();
            let second_refresh = refreshed.refresh_token().expect("rotated refresh token").clone();
            assert_ne!(second_refresh.secret(), first_refresh.secret());
            assert_eq!(jwt_claims(&second_access)["scopes"], json!(["read", "write"]));
            assert_eq!(api_user(&http, &server, &second_access).await.0, 200, "{what}");
            assert_eq!(
                api_user(&http, &server, &first_access).await.0,
                401,
                "{what}: old access token revoked"
            );

            // Narrowing the scope on refresh.
            let narrowed = app
                .exchange_refresh_token(&second_refresh)
                .add_scope(Scope::new("read".to_owned()))
                .request_async(&http)
                .await
                .unwrap_or_else(|e| panic!("{what}: {e:?}"));
            let third_access = narrowed.access_token().secret().clone();
            assert_eq!(jwt_claims(&third_access)["scopes"], json!(["read"]), "{what}");
            assert_eq!(api_user(&http, &server, &third_access).await.0, 200);

            // Replaying a rotated refresh token fails and revokes the family (RFC 9700 §4.14.2).
            let error = server_error(app.exchange_refresh_token(&first_refresh).request_async(&http).await);
            assert_eq!(error, BasicErrorResponseType::InvalidGrant, "{what}");
            assert_eq!(
                api_user(&http, &server, &third_access).await.0,
                401,
                "{what}: reuse revokes the family"
            );
            let latest = narrowed.refresh_token().expect("refresh token");
            let error = server_error(app.exchange_refresh_token(latest).request_async(&http).await);
            assert_eq!(error, BasicErrorResponseType::InvalidGrant, "{what}: family revoked");
        }

        // On the wire: HTTP Basic failures answer 401 with a Basic challenge and no-store.
        let response = http
            .post(server.url("/oauth/token"))
            .basic_auth(&setup.service.0, Some("not-the-secret"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.starts_with("Basic"), "{challenge}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");

        // Revoking a client with the CLI while the server runs: its tokens stop within a second
        // (the server's token cache follows the database's revocation feed).
        let app = oauth_client(&server, &setup.app, &AuthType::BasicAuth);
        let token = app
            .exchange_password(&username, &password)
            .request_async(&http)
            .await
            .unwrap();
        assert_eq!(api_user(&http, &server, token.access_token().secret()).await.0, 200);
        site.json(&["client", "revoke", &setup.app.0, "--json"]);
        let revoked_at = std::time::Instant::now();
        let (status, body) = loop {
            let (status, body) = api_user(&http, &server, token.access_token().secret()).await;
            if status != 200 || revoked_at.elapsed() > Duration::from_secs(1) {
                break (status, body);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")), "within a second");
        let error = server_error(app.exchange_password(&username, &password).request_async(&http).await);
        assert_eq!(error, BasicErrorResponseType::InvalidClient);
        let error = server_error(
            app.exchange_refresh_token(token.refresh_token().unwrap())
                .request_async(&http)
                .await,
        );
        assert_eq!(error, BasicErrorResponseType::InvalidClient);
    }
}

backend_test! {
    async fn tokens_survive_a_crash_and_restart(db) {
        let mut site = Deployment::new(db);
        let setup = set_up(&mut site);
        let http = http_client();
        let mut server = site.serve();
        let (status, body) = post_token(
            &http,
            &server.url("/oauth/token"),
            &[
                ("grant_type", "password"),
                ("client_id", &setup.app.0),
                ("client_secret", &setup.app.1),
                ("username", setup.email),
                ("password", setup.password),
                ("scope", "read"),
            ],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let access = body["access_token"].as_str().unwrap().to_owned();
        let refresh = body["refresh_token"].as_str().unwrap().to_owned();
        assert_eq!(api_user(&http, &server, &access).await.0, 200);

        // SIGKILL: no shutdown, no WAL checkpoint.
        let status = server.kill9();
        assert!(!status.success(), "killed");
        let old_base = server.base.clone();
        drop(server);
        assert!(http.get(format!("{old_base}/health")).send().await.is_err(), "gone");

        let server = site.serve();
        let (status, body) = api_user(&http, &server, &access).await;
        assert_eq!(status, 200, "the access token survives: {body}; log:\n{}", server.log());
        assert_eq!(body["id"], setup.user_id.as_str());

        let (status, body) = post_token(
            &http,
            &server.url("/oauth/token"),
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &setup.app.0),
                ("client_secret", &setup.app.1),
                ("refresh_token", &refresh),
            ],
        )
        .await;
        assert_eq!(status, 200, "the refresh token survives: {body}");
        let new_access = body["access_token"].as_str().unwrap();
        assert_eq!(jwt_claims(new_access)["scopes"], json!(["read"]));
        assert_eq!(api_user(&http, &server, new_access).await.0, 200);
        assert_eq!(api_user(&http, &server, &access).await.0, 401, "rotated");
    }
}

backend_test! {
    /// Issue 10, faults: 32 clients rotate refresh tokens in a loop while the server is killed
    /// with -9 and restarted three times. A refresh token received in a 200 always works after
    /// a restart; a client whose request died unanswered, retrying it, gets a working pair
    /// (SQLite runs with `refresh_token_reuse_grace`) or, without the grace (PostgreSQL), finds
    /// its family revoked by reuse detection; never anything else.
    #[flavor(multi_thread, 2)]
    async fn refresh_rotation_survives_kill_9(db) {
        const CLIENTS: usize = 32;
        let mut site = Deployment::new(db);
        let setup = set_up(&mut site);
        let grace = site.kind == "sqlite";
        if grace {
            site.set_env("PASSPORT_REFRESH_TOKEN_REUSE_GRACE", "60");
        }
        // One address with 32 clients and the checks beside them.
        site.set_env("PASSPORT_MAX_CONNECTIONS_PER_ADDRESS", "96");
        let mut server = site.serve();
        let address = server.base.trim_start_matches("http://").to_owned();
        let base = server.base.clone();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let setup = std::sync::Arc::new(setup);
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|_| tokio::spawn(rotate_until_stopped(base.clone(), setup.clone(), stop.clone(), grace)))
            .collect();
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            assert!(!server.kill9().success(), "killed");
            drop(server);
            tokio::time::sleep(Duration::from_millis(200)).await;
            server = ServerProcess::spawn(site.command(&["serve", "--bind", &address]));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut total = Outcome::default();
        for task in tasks {
            let outcome = task.await.expect("client task");
            total.rotations += outcome.rotations;
            total.retries += outcome.retries;
            total.families_revoked += outcome.families_revoked;
        }
        eprintln!(
            "{}: {} rotations, {} unanswered requests retried, {} families revoked by reuse detection",
            site.kind, total.rotations, total.retries, total.families_revoked
        );
        assert!(total.rotations > CLIENTS * 4, "the clients kept rotating: {total:?}");
        assert!(total.retries > 0, "the kills interrupted requests: {total:?}");
        if grace {
            assert_eq!(total.families_revoked, 0, "within the grace every retry gets a pair");
        }
        drop(server);
    }
}

backend_test! {
    /// Group commit keeps durability (issue 12): 32 clients take client-credentials tokens
    /// while the server is killed with -9; after a restart, every token a client received in a
    /// 200 passes the bearer check (its row was committed before it was sent).
    #[flavor(multi_thread, 2)]
    async fn every_issued_token_survives_kill_9(db) {
        const CLIENTS: usize = 32;
        let mut site = Deployment::new(db);
        let setup = set_up(&mut site);
        site.set_env("PASSPORT_MAX_CONNECTIONS_PER_ADDRESS", "96");
        let server = site.serve();
        let address = server.base.trim_start_matches("http://").to_owned();
        let setup = std::sync::Arc::new(setup);
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|_| tokio::spawn(issue_until_refused(server.base.clone(), setup.clone())))
            .collect();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut server = server;
        assert!(!server.kill9().success(), "killed");
        drop(server);
        let mut received = Vec::new();
        for task in tasks {
            received.extend(task.await.expect("client task"));
        }
        assert!(received.len() > CLIENTS, "tokens were issued: {}", received.len());

        let server = ServerProcess::spawn(site.command(&["serve", "--bind", &address]));
        let check_url = server.url("/api/token");
        let chunks: Vec<Vec<String>> = received.chunks(received.len().div_ceil(CLIENTS)).map(<[String]>::to_vec).collect();
        let checks: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let url = check_url.clone();
                tokio::spawn(async move {
                    let http = reqwest::Client::new();
                    for token in chunk {
                        let response = http.get(&url).bearer_auth(&token).send().await.expect("check");
                        assert_eq!(response.status(), 200, "a token answered in a 200 was lost");
                    }
                })
            })
            .collect();
        for check in checks {
            check.await.expect("check task");
        }
        eprintln!("{}: {} tokens issued before the kill, all valid after the restart", site.kind, received.len());
        drop(server);
    }
}

/// One client of [`every_issued_token_survives_kill_9`]: client-credentials tokens in a loop
/// until the server stops answering; the tokens it was given.
async fn issue_until_refused(base: String, setup: std::sync::Arc<Setup>) -> Vec<String> {
    let http = reqwest::ClientBuilder::new()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest client");
    let url = format!("{base}/oauth/token");
    let mut received = Vec::new();
    loop {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", setup.service.0.as_str()),
            ("client_secret", setup.service.1.as_str()),
        ];
        let Ok(response) = http.post(&url).form(&form).send().await else {
            return received;
        };
        assert_eq!(response.status(), 200, "client credentials");
        let Ok(body) = response.json::<Value>().await else {
            return received;
        };
        received.push(body["access_token"].as_str().expect("access_token").to_owned());
    }
}

/// What one client saw in [`refresh_rotation_survives_kill_9`].
#[derive(Debug, Default)]
struct Outcome {
    rotations: usize,
    retries: usize,
    families_revoked: usize,
}

/// One client: a pair from the password grant, then refreshes in a loop. An answered pair is
/// always the next one presented, so it must work; a request that died is sent again as it was.
async fn rotate_until_stopped(
    base: String,
    setup: std::sync::Arc<Setup>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    grace: bool,
) -> Outcome {
    let http = reqwest::ClientBuilder::new()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest client");
    let token_url = format!("{base}/oauth/token");
    let (app, secret) = (&setup.app.0, &setup.app.1);
    let new_family = || async {
        loop {
            let sent = http
                .post(&token_url)
                .form(&[
                    ("grant_type", "password"),
                    ("client_id", app),
                    ("client_secret", secret),
                    ("username", setup.email),
                    ("password", setup.password),
                    ("scope", "read"),
                ])
                .send()
                .await;
            // A password grant that dies unanswered leaves a family nobody holds: harmless.
            if let Ok(response) = sent {
                assert_eq!(response.status(), 200, "password grant");
                return pair(response.json().await.expect("JSON"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let mut outcome = Outcome::default();
    let (mut access, mut refresh) = new_family().await;
    let mut retrying = false;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", app.as_str()),
            ("client_secret", secret.as_str()),
            ("refresh_token", refresh.as_str()),
        ];
        let response = match http.post(&token_url).form(&form).send().await {
            Ok(response) => response,
            Err(_) => {
                // Died unanswered (or the server is down): send it again as it was.
                outcome.retries += usize::from(!retrying);
                retrying = true;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let status = response.status().as_u16();
        let Ok(body) = response.json::<Value>().await else {
            outcome.retries += usize::from(!retrying);
            retrying = true;
            continue;
        };
        match status {
            200 => {
                let was_retry = retrying;
                (access, refresh) = pair(body);
                outcome.rotations += 1;
                retrying = false;
                if was_retry {
                    let status = http.get(format!("{base}/api/user")).bearer_auth(&access).send().await;
                    assert!(
                        status.is_err() || status.unwrap().status() == 200,
                        "the pair a retry got works"
                    );
                }
            }
            400 if body["error"] == "invalid_grant" => {
                assert!(retrying, "a refresh token answered in a 200 was refused: {body}");
                assert!(!grace, "within the grace a retry gets a pair: {body}");
                // Reuse detection: the family is gone, with the access token last answered.
                let check = http.get(format!("{base}/api/user")).bearer_auth(&access).send().await;
                if let Ok(check) = check {
                    assert_eq!(check.status(), 401, "the family of a detected reuse is revoked");
                }
                outcome.families_revoked += 1;
                (access, refresh) = new_family().await;
                retrying = false;
            }
            _ => panic!("unexpected answer {status}: {body}"),
        }
    }
    outcome
}

/// The access and refresh tokens of a token response.
fn pair(body: Value) -> (String, String) {
    (
        body["access_token"].as_str().expect("access_token").to_owned(),
        body["refresh_token"].as_str().expect("refresh_token").to_owned(),
    )
}

#[tokio::test]
async fn sigterm_and_sigint_shut_down_gracefully() {
    for signal in ["TERM", "INT"] {
        let mut site = Deployment::sqlite();
        let setup = set_up(&mut site);
        let http = http_client();
        let mut server = site.serve();
        // A keep-alive connection is open when the signal arrives.
        let response = http.get(server.url("/health")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "ok");
        let (status, _) = post_token(
            &http,
            &server.url("/oauth/token"),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &setup.service.0),
                ("client_secret", &setup.service.1),
            ],
        )
        .await;
        assert_eq!(status, 200);

        server.signal(signal);
        // The idle keep-alive connection is closed at once, not after the 10 s grace period.
        let status = server
            .wait_exit(Duration::from_secs(3))
            .await
            .unwrap_or_else(|| panic!("SIG{signal}: still running after 3 s; log:\n{}", server.log()));
        assert_eq!(status.code(), Some(0), "SIG{signal}: exit 0; log:\n{}", server.log());
        assert!(
            server.log().contains("shutting down"),
            "SIG{signal}: log:\n{}",
            server.log()
        );
        assert!(
            http.get(server.url("/health")).send().await.is_err(),
            "SIG{signal}: no longer listening"
        );

        // The database was closed cleanly: the next start finds everything.
        let server = site.serve();
        assert_eq!(http.get(server.url("/health")).send().await.unwrap().status(), 200);
        // The two clients of the set-up, plus the personal access client `serve` creates.
        let list = site.json(&["client", "list", "--json"]);
        assert_eq!(list.as_array().map(Vec::len), Some(3));
    }
}
