//! Running as a fleet (README: Running several instances): purges that never stop the server,
//! several `passport serve` processes on one PostgreSQL database serving one person's flows in
//! turn, and a database that goes away and comes back.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use serde_json::Value;

use crate::cli::{Deployment, ServerProcess, api_user, jwt_header, post_token};
use crate::common::TestServer;
use crate::support_web::Browser;

const BIN: &str = env!("CARGO_BIN_EXE_passport");

/// Rows the purge test deletes.
const PURGED_ROWS: u64 = 1_000_000;

/// Fills `oauth_access_tokens` with [`PURGED_ROWS`] tokens that expired in 2020, in one
/// statement.
async fn fill_with_expired_tokens(kind: &str, url: &str, client_id: &str) {
    let started = Instant::now();
    match kind {
        "sqlite" => {
            let pool = sqlx::SqlitePool::connect(url).await.expect("connect");
            sqlx::query(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
                 INSERT INTO oauth_access_tokens (id, user_id, client_id, name, scopes, family_id, revoked, \
                 created_at, updated_at, expires_at) \
                 SELECT printf('expired%08d', i), NULL, ?2, NULL, '[]', NULL, FALSE, \
                 '2020-01-01T00:00:00+00:00', '2020-01-01T00:00:00+00:00', '2020-01-02T00:00:00+00:00' FROM n",
            )
            .bind(PURGED_ROWS as i64)
            .bind(client_id)
            .execute(&pool)
            .await
            .expect("fill");
            pool.close().await;
        }
        _ => {
            let pool = sqlx::PgPool::connect(url).await.expect("connect");
            sqlx::query(
                "INSERT INTO oauth_access_tokens (id, user_id, client_id, name, scopes, family_id, revoked, \
                 created_at, updated_at, expires_at) \
                 SELECT 'expired' || lpad(i::text, 8, '0'), NULL, $2, NULL, '[]', NULL, FALSE, \
                 '2020-01-01T00:00:00Z', '2020-01-01T00:00:00Z', '2020-01-02T00:00:00Z' \
                 FROM generate_series(1, $1) AS i",
            )
            .bind(PURGED_ROWS as i64)
            .bind(client_id)
            .execute(&pool)
            .await
            .expect("fill");
            pool.close().await;
        }
    }
    eprintln!("{PURGED_ROWS} expired tokens written in {:?}", started.elapsed());
}

backend_test! {
    /// `passport purge` of a million expired tokens while the server issues and checks tokens:
    /// it deletes in bounded batches, so no request fails or waits out a lock.
    #[flavor(multi_thread, 2)]
    async fn a_purge_of_a_million_rows_fails_no_request(db) {
        let (kind, url) = (db.kind, db.url.clone());
        let server = Arc::new(TestServer::start_default(db).await);
        let (id, secret) = server.service_client().await;
        fill_with_expired_tokens(kind, &url, &id).await;

        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let mut load = Vec::new();
        for _ in 0..4 {
            let (server, stop, served) = (server.clone(), stop.clone(), served.clone());
            let (id, secret) = (id.clone(), secret.clone());
            load.push(tokio::spawn(async move {
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let form = [("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", &secret)];
                    let response = server.token(&form).await;
                    let status = response.status();
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    if status != 200 {
                        failures.push(format!("token: {status} {body}"));
                        continue;
                    }
                    let token = body["access_token"].as_str().unwrap_or_default();
                    let check = server.http.get(server.url("/api/token")).bearer_auth(token).send().await;
                    match check {
                        Ok(r) if r.status() == 200 => {}
                        Ok(r) => failures.push(format!("check: {}", r.status())),
                        Err(err) => failures.push(format!("check: {err}")),
                    }
                    served.fetch_add(1, Ordering::Relaxed);
                }
                failures
            }));
        }

        let data_dir = tempfile::tempdir().expect("temporary directory");
        let started = Instant::now();
        let purge = tokio::task::spawn_blocking(move || {
            Command::new(BIN)
                .arg("--data-dir")
                .arg(data_dir.path())
                .args(["--database", &url, "purge", "--expired", "--hours", "24", "--json"])
                .env_remove("RUST_LOG")
                .output()
                .expect("run passport purge")
        })
        .await
        .unwrap();
        let took = started.elapsed();
        let during = served.load(Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
        let mut failures = Vec::new();
        for task in load {
            failures.extend(task.await.unwrap());
        }
        assert!(purge.status.success(), "purge failed: {}", String::from_utf8_lossy(&purge.stderr));
        let out: Value = serde_json::from_slice(&purge.stdout).expect("purge JSON");
        assert_eq!(out["purged"]["access_tokens"], PURGED_ROWS, "{out}");
        assert!(failures.is_empty(), "{} failed requests during the purge: {:?}", failures.len(), &failures[..failures.len().min(5)]);
        assert!(during > 0, "no request was served during the purge");
        eprintln!("{kind}: purged {PURGED_ROWS} rows in {took:?}; {during} tokens issued and checked meanwhile");
    }
}

/// Polls `check` every 20 ms until it holds; panics after `limit`.
async fn within<F, Fut>(limit: std::time::Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A token-endpoint request to `server`: status and JSON body.
async fn token_at(http: &reqwest::Client, server: &ServerProcess, form: &[(&str, &str)]) -> (u16, Value) {
    post_token(http, &server.url("/oauth/token"), form).await
}

/// Three `passport serve` processes on one PostgreSQL database, started at once on an empty
/// database, behind an imaginary load balancer that sends each request to the next one:
/// sign-in, consent and code exchange land on different instances, so do the device flow's
/// steps and every refresh; a revocation on one is refused by the others within a second;
/// failed client authentications spread over all three lock the client on all three; and an
/// instance killed with -9 under load loses no token it answered with a 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_database_serve_every_flow_in_turn() {
    let Some(db) = passport_sqlx::testing::postgres().await else {
        return;
    };
    let mut site = Deployment::new(db);
    site.write_config("issuer = \"http://localhost\"\n[scopes]\nread = \"Read your data\"\n");
    site.set_env("PASSPORT_CLIENT_AUTH_FAILURES_PER_CLIENT", "3");
    site.keys();

    // Started at once on a database nothing has migrated: one applies the migrations, the
    // others wait for it.
    let mut servers: Vec<ServerProcess> = std::thread::scope(|scope| {
        let site = &site;
        let starting: Vec<_> = (0..3).map(|_| scope.spawn(move || site.serve())).collect();
        starting.into_iter().map(|s| s.join().expect("serve started")).collect()
    });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut turn = 0usize;
    let mut next = || {
        turn += 1;
        turn % 3
    };

    let email = "fleet@example.com";
    let password = "fleet password";
    site.user(email, password);
    const CALLBACK: &str = "https://client.example/callback";
    let (app, app_secret) = site.client(&["--name", "App", "--redirect-uri", CALLBACK]);
    let app_secret = app_secret.expect("confidential");

    // Authorization code: the authorization request on one, sign-in on the next, consent on
    // the next, approval on the next, the exchange on the next.
    let browser = Browser::new(&servers[0].base);
    let authorize = format!(
        "/oauth/authorize?client_id={app}&redirect_uri={}&response_type=code&scope=read&state=s1",
        url::form_urlencoded::byte_serialize(CALLBACK.as_bytes()).collect::<String>()
    );
    let page = browser.get(&servers[next()].url(&authorize)).await;
    assert_eq!(
        page.location(),
        Some("/login"),
        "a guest is sent to sign in\n{}",
        page.body
    );
    let login = browser.get(&servers[next()].url("/login")).await;
    let form = login
        .forms()
        .into_iter()
        .find(|f| f.get("email").is_some())
        .expect("the login form");
    let mut fields = form.without("email");
    fields.retain(|(k, _)| k != "password");
    fields.push(("email".to_owned(), email.to_owned()));
    fields.push(("password".to_owned(), password.to_owned()));
    let page = browser.post(&servers[next()].url(&form.action), &fields).await;
    let back = page
        .location()
        .unwrap_or_else(|| panic!("signed in\n{}", page.body))
        .to_owned();
    let consent = browser.get(&servers[next()].url(&back)).await;
    assert_eq!(consent.status, 200, "the consent page\n{}", consent.body);
    let approve = consent.approve_form("fleet");
    let page = browser
        .post(&servers[next()].url(&approve.action), &approve.fields)
        .await;
    let location = page.location().unwrap_or_else(|| panic!("approved\n{}", page.body));
    let code = url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code");
    let (status, tokens) = token_at(
        &http,
        &servers[next()],
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &app),
            ("client_secret", &app_secret),
            ("redirect_uri", CALLBACK),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let mut access = tokens["access_token"].as_str().unwrap().to_owned();
    let mut refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    // Refresh rotation, each on the next instance; every instance accepts the new token and
    // refuses the one it replaced.
    for _ in 0..3 {
        let (status, tokens) = token_at(
            &http,
            &servers[next()],
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &app),
                ("client_secret", &app_secret),
                ("refresh_token", &refresh),
            ],
        )
        .await;
        assert_eq!(status, 200, "{tokens}");
        let old = std::mem::replace(&mut access, tokens["access_token"].as_str().unwrap().to_owned());
        refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        for server in &servers {
            assert_eq!(api_user(&http, server, &access).await.0, 200);
            within(std::time::Duration::from_secs(1), "the rotated token", || async {
                api_user(&http, server, &old).await.0 == 401
            })
            .await;
        }
    }

    // The device flow: requested on one, entered and approved in the browser on the next two,
    // polled on the next.
    let (tv, _) = site.client(&["--device", "--public", "--name", "TV"]);
    let response = http
        .post(servers[next()].url("/oauth/device/code"))
        .form(&[("client_id", tv.as_str()), ("scope", "read")])
        .send()
        .await
        .unwrap();
    let device: Value = response.json().await.unwrap();
    let user_code = device["user_code"].as_str().expect("user_code");
    let device_code = device["device_code"].as_str().expect("device_code");
    let mut entry = url::Url::parse(&servers[next()].url("/oauth/device/authorize")).unwrap();
    entry.query_pairs_mut().append_pair("user_code", user_code);
    let consent = browser.get(entry.as_str()).await;
    assert_eq!(consent.status, 200, "the device consent page\n{}", consent.body);
    let approve = consent.approve_form("device");
    let done = browser
        .post(&servers[next()].url(&approve.action), &approve.fields)
        .await;
    assert_eq!(done.status, 200, "approved\n{}", done.body);
    let (status, tokens) = token_at(
        &http,
        &servers[next()],
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", &tv),
            ("device_code", device_code),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let tv_token = tokens["access_token"].as_str().unwrap().to_owned();

    // A revocation on one instance (RFC 7009) is refused by all within a second.
    for server in &servers {
        assert_eq!(
            api_user(&http, server, &tv_token).await.0,
            200,
            "cached everywhere first"
        );
    }
    let revoked = http
        .post(servers[next()].url("/oauth/revoke"))
        .form(&[("token", tv_token.as_str()), ("client_id", tv.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    for server in &servers {
        within(std::time::Duration::from_secs(1), "the revoked token", || async {
            api_user(&http, server, &tv_token).await.0 == 401
        })
        .await;
    }

    // A key rotated with the CLI signs on every instance once active; retiring the old one
    // makes every instance refuse its tokens within a second, cached or not.
    let (keys_client, keys_secret) = site.client(&["--client", "--name", "Keys"]);
    let keys_secret = keys_secret.expect("confidential");
    let keys_form = [
        ("grant_type", "client_credentials"),
        ("client_id", keys_client.as_str()),
        ("client_secret", keys_secret.as_str()),
    ];
    let token_check =
        |server: &ServerProcess, token: &str| http.get(server.url("/api/token")).bearer_auth(token.to_owned()).send();
    let (status, tokens) = token_at(&http, &servers[next()], &keys_form).await;
    assert_eq!(status, 200, "{tokens}");
    let signed_by_old = tokens["access_token"].as_str().unwrap().to_owned();
    let old_kid = jwt_header(&signed_by_old)["kid"].as_str().expect("kid").to_owned();
    for server in &servers {
        assert_eq!(
            token_check(server, &signed_by_old).await.unwrap().status(),
            200,
            "cached everywhere"
        );
    }
    let rotated = site.json(&[
        "keys",
        "rotate",
        "--algorithm",
        "es256",
        "--publish-ahead",
        "1s",
        "--json",
    ]);
    let new_kid = rotated["kid"]
        .as_str()
        .unwrap_or_else(|| panic!("{rotated}"))
        .to_owned();
    let mut signed_by_new = Vec::new();
    for server in &servers {
        let started = Instant::now();
        loop {
            let (status, tokens) = token_at(&http, server, &keys_form).await;
            assert_eq!(status, 200, "{tokens}");
            let token = tokens["access_token"].as_str().unwrap().to_owned();
            if jwt_header(&token)["kid"] == new_kid.as_str() {
                signed_by_new.push(token);
                break;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(3),
                "the new key signs everywhere"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    site.json(&["keys", "retire", &old_kid, "--json"]);
    let retired = Instant::now();
    for server in &servers {
        // Within a second on an idle machine (the feed wakes every instance at once); 2 s
        // here, because the CI machine runs this beside the rest of the suite on two cores.
        within(std::time::Duration::from_secs(2), "the retired key's token", || async {
            token_check(server, &signed_by_old).await.unwrap().status() == 401
        })
        .await;
        eprintln!("retired key refused by {} after {:?}", server.base, retired.elapsed());
        for token in &signed_by_new {
            assert_eq!(
                token_check(server, token).await.unwrap().status(),
                200,
                "the new key's tokens"
            );
        }
    }

    // Wrong secrets spread over the three instances lock the client on all of them after at
    // most limit + 2 failures (each instance learns the shared count with its next failure).
    let (service, service_secret) = site.client(&["--client", "--name", "Service"]);
    let service_secret = service_secret.expect("confidential");
    let mut failures = 0;
    loop {
        let (status, body) = token_at(
            &http,
            &servers[next()],
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &service),
                ("client_secret", "wrong"),
            ],
        )
        .await;
        match status {
            401 => failures += 1,
            429 => break,
            other => panic!("a wrong secret: {other} {body}"),
        }
        assert!(failures <= 5, "{failures} failures and no lockout");
    }
    for server in &servers {
        let (status, body) = token_at(
            &http,
            server,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &service),
                ("client_secret", &service_secret),
                ("scope", "read"),
            ],
        )
        .await;
        // An instance that has not seen the last failures learns them with its own next one:
        // the right secret during the lockout is refused everywhere once each has seen one.
        assert!(status == 429 || status == 200, "{status} {body}");
    }
    assert!(failures >= 3, "locked only after the limit: {failures}");

    // Kill one instance with -9 while clients issue tokens on all three, retrying on the next
    // instance when one does not answer: every token answered with a 200 works on the others.
    let (worker, worker_secret) = site.client(&["--client", "--name", "Worker"]);
    let worker_secret = worker_secret.expect("confidential");
    let bases: Arc<Vec<String>> = Arc::new(servers.iter().map(|s| s.base.clone()).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for n in 0..4usize {
        let (bases, stop, http) = (bases.clone(), stop.clone(), http.clone());
        let (worker, worker_secret) = (worker.clone(), worker_secret.clone());
        load.push(tokio::spawn(async move {
            let mut received = Vec::new();
            let mut at = n;
            while !stop.load(Ordering::Relaxed) {
                at += 1;
                let url = format!("{}/oauth/token", bases[at % 3]);
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", worker.as_str()),
                    ("client_secret", worker_secret.as_str()),
                ];
                let Ok(response) = http.post(&url).form(&form).send().await else {
                    continue;
                };
                if response.status() != 200 {
                    continue;
                }
                let Ok(body) = response.json::<Value>().await else {
                    continue;
                };
                received.push(body["access_token"].as_str().unwrap().to_owned());
            }
            received
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    servers[0].kill9();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut received = Vec::new();
    for task in load {
        received.extend(task.await.unwrap());
    }
    assert!(received.len() > 10, "tokens were issued: {}", received.len());
    let survivors = servers.split_off(1);
    // Client-credentials tokens have no user: `/api/token` checks the token itself.
    for (n, token) in received.iter().enumerate() {
        let response = http
            .get(survivors[n % 2].url("/api/token"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "a token answered with a 200 works after the kill"
        );
    }
}

/// A PostgreSQL server of the test's own, on a free port in a temporary directory, so that
/// stopping it never touches the shared CI database. Needs root (to run it as `postgres`).
struct OwnPostgres {
    bin: std::path::PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl OwnPostgres {
    /// None (and why, printed) where it cannot run.
    fn create() -> Option<Self> {
        let versions = std::fs::read_dir("/usr/lib/postgresql").ok()?;
        let bin = versions
            .flatten()
            .map(|v| v.path().join("bin"))
            .find(|b| b.join("initdb").exists());
        let Some(bin) = bin else {
            eprintln!("skipping: no PostgreSQL binaries under /usr/lib/postgresql");
            return None;
        };
        let dir = tempfile::tempdir().expect("temporary directory");
        let owned = Command::new("chown").arg("postgres").arg(dir.path()).status();
        if !owned.is_ok_and(|s| s.success()) {
            eprintln!("skipping: cannot hand a directory to the postgres user (not root?)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = Self { bin, dir, port };
        let data = server.data();
        server.run("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"]);
        server.start();
        Some(server)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let output = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(tool))
            .args(args)
            .output()
            .expect("run a PostgreSQL tool");
        assert!(
            output.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "start"],
        );
    }

    fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
    }
}

/// What the load saw, by answer.
#[derive(Debug, Default)]
struct Seen {
    ok: u64,
    unavailable: u64,
    other: Vec<String>,
}

/// The database stopped and started again under load: the token endpoint and the guard answer
/// 503 `temporarily_unavailable` with `Retry-After` (never another 5xx, never a hang past the
/// acquire timeout), `/ready` says 503 and `/health` stays 200, pages answer a 503 page, and
/// the server recovers by itself once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_going_away_is_a_503_and_the_server_recovers() {
    if std::env::var_os("PASSPORT_TEST_DATABASE_URL").is_none() {
        eprintln!("skipping: PostgreSQL tests are off (PASSPORT_TEST_DATABASE_URL is not set)");
        return;
    }
    let Some(postgres) = OwnPostgres::create() else { return };
    let mut site = Deployment::sqlite();
    site.set_env("PASSPORT_DATABASE_ACQUIRE_TIMEOUT", "2s");
    site.keys();
    let database = postgres.url();
    let with_database = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["--database".to_owned(), database.clone()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        all
    };
    let args = with_database(&["client", "--client", "--name", "Service", "--json"]);
    let out = site.json(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let id = out["client_id"].as_str().unwrap().to_owned();
    let secret = out["client_secret"].as_str().unwrap().to_owned();
    let args = with_database(&["serve", "--bind", "127.0.0.1:0"]);
    let server = ServerProcess::spawn(site.command(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(8))
        .build()
        .unwrap();
    let base = Arc::new(server.base.clone());

    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..3 {
        let (base, stop, http, id, secret) = (base.clone(), stop.clone(), http.clone(), id.clone(), secret.clone());
        load.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            while !stop.load(Ordering::Relaxed) {
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", id.as_str()),
                    ("client_secret", secret.as_str()),
                ];
                let answer = http.post(format!("{base}/oauth/token")).form(&form).send().await;
                let response = match answer {
                    Ok(response) => response,
                    Err(err) => {
                        seen.other.push(format!("token: {err}"));
                        continue;
                    }
                };
                let status = response.status().as_u16();
                let retry_after = response.headers().contains_key("retry-after");
                let body: Value = response.json().await.unwrap_or(Value::Null);
                match status {
                    200 => {
                        seen.ok += 1;
                        let token = body["access_token"].as_str().unwrap_or_default();
                        let check = http.get(format!("{base}/api/token")).bearer_auth(token).send().await;
                        match check.map(|r| r.status().as_u16()) {
                            Ok(200 | 503) => {}
                            other => seen.other.push(format!("check: {other:?}")),
                        }
                    }
                    503 if retry_after && body["error"] == "temporarily_unavailable" => seen.unavailable += 1,
                    _ => seen.other.push(format!("token: {status} {body}")),
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            seen
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    postgres.stop();
    let started = Instant::now();
    within(std::time::Duration::from_secs(10), "/ready says 503", || async {
        http.get(format!("{base}/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 503)
    })
    .await;
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200, "liveness is not readiness");
    // The sign-in page needs no database (a guest's session is a signed cookie); the
    // authorization page must look the client up.
    let page = http
        .get(format!(
            "{base}/oauth/authorize?client_id=0194a6d0-0000-7000-8000-000000000000&response_type=code&redirect_uri=https%3A%2F%2Fclient.example%2Fcb"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 503, "a page that needs the database");
    assert!(page.headers().contains_key("retry-after"), "Retry-After on the page");
    assert!(page.text().await.unwrap().contains("<html"), "an HTML error page");
    tokio::time::sleep(std::time::Duration::from_secs(4).saturating_sub(started.elapsed())).await;

    postgres.start();
    within(std::time::Duration::from_secs(20), "/ready again", || async {
        http.get(format!("{base}/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
    ];
    within(std::time::Duration::from_secs(10), "tokens again", || async {
        http.post(format!("{base}/oauth/token"))
            .form(&form)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut seen = Seen::default();
    for task in load {
        let part = task.await.unwrap();
        seen.ok += part.ok;
        seen.unavailable += part.unavailable;
        seen.other.extend(part.other);
    }
    eprintln!("{seen:?}");
    assert!(
        seen.other.is_empty(),
        "only 200 and 503 with Retry-After: {:?}",
        seen.other
    );
    assert!(seen.unavailable > 0, "the outage was answered with 503s: {seen:?}");
    assert!(seen.ok > 0, "{seen:?}");
}

/// Operability: with `log_format = "json"` every stderr line is one JSON object, and every
/// request has an id: the caller's `X-Request-Id` when plausible, else a generated one, in the
/// response and in the request's log lines.
#[tokio::test]
async fn request_ids_reach_the_response_and_the_json_logs() {
    let mut site = Deployment::sqlite();
    site.keys();
    site.set_env("PASSPORT_LOG_FORMAT", "json");
    site.set_env("RUST_LOG", "info");
    let server = site.serve();
    let http = reqwest::Client::new();
    let given = http
        .get(server.url("/health"))
        .header("x-request-id", "trace-4711")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "trace-4711", "a plausible id is kept");
    for junk in ["", "two words", &"x".repeat(129)] {
        let response = http
            .get(server.url("/health"))
            .header("x-request-id", junk)
            .send()
            .await
            .unwrap();
        let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{junk:?} replaced by {id:?}"
        );
    }
    // A logged request: an unknown client at the token endpoint logs a line in its span.
    let response = http
        .post(server.url("/oauth/token"))
        .header("x-request-id", "trace-4712")
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "nobody"),
            ("client_secret", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let mut lines = Vec::new();
    within(std::time::Duration::from_secs(5), "the request's log line", || {
        lines = server.log().lines().map(str::to_owned).collect();
        let found = lines.iter().any(|l| l.contains("trace-4712"));
        async move { found }
    })
    .await;
    let mut in_span = 0;
    for line in &lines {
        let object: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(object["timestamp"].is_string() && object["level"].is_string(), "{line}");
        if object["span"]["request_id"] == "trace-4712" {
            in_span += 1;
        }
    }
    assert!(
        in_span > 0,
        "a line in the request's span names its id:\n{}",
        lines.join("\n")
    );
}

/// `purge_interval`: `serve` purges by itself rows expired for more than seven days, with no
/// `passport purge` run, and leaves live ones.
#[tokio::test]
async fn serve_purges_long_expired_rows_by_itself() {
    let mut site = Deployment::sqlite();
    site.keys();
    let (client, _) = site.client(&["--client", "--name", "Old"]);
    site.set_env("PASSPORT_PURGE_INTERVAL", "1s");
    let url = site.database_url();
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    for (id, expired) in [
        ("long-expired", "2020-01-02T00:00:00+00:00"),
        ("kept", "2999-01-02T00:00:00+00:00"),
    ] {
        sqlx::query(
            "INSERT INTO oauth_access_tokens (id, user_id, client_id, name, scopes, family_id, revoked, created_at, updated_at, expires_at) \
             VALUES (?1, NULL, ?2, NULL, '[]', NULL, FALSE, '2020-01-01T00:00:00+00:00', '2020-01-01T00:00:00+00:00', ?3)",
        )
        .bind(id)
        .bind(&client)
        .bind(expired)
        .execute(&pool)
        .await
        .unwrap();
    }
    let _server = site.serve();
    let count = |id: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM oauth_access_tokens WHERE id = ?1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    within(std::time::Duration::from_secs(10), "the background purge", || async {
        count("long-expired").await == 0
    })
    .await;
    assert_eq!(count("kept").await, 1, "a live row stays");
}
