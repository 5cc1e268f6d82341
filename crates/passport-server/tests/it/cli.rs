//! The `passport` binary driven as an operator drives it (README: For operators): every command
//! and its `--json` output, its errors (non-zero exit, one line on stderr), and configuration
//! (file, environment, keys from the environment) shown to take effect through `serve`. SQLite
//! in the data directory always; PostgreSQL through `--database` when
//! `PASSPORT_TEST_DATABASE_URL` is set.
//!
//! The process helpers here ([`Deployment`], [`ServerProcess`]) are shared with `e2e.rs`.

// Helpers outside #[test] functions panic on failure too: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use passport_sqlx::testing::TestDatabase;
use serde_json::{Value, json};
use sqlx::Connection as _;
use tempfile::TempDir;

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_passport");

/// How long a command may take before the test gives up on it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);

/// A data directory (and, on PostgreSQL, a database) that `passport` commands run against.
pub(crate) struct Deployment {
    /// `"sqlite"` or `"postgres"`.
    pub(crate) kind: &'static str,
    root: TempDir,
    database: Option<TestDatabase>,
    env: Vec<(String, String)>,
}

impl Deployment {
    /// SQLite at its default place, `passport.db` in the data directory (no `--database`).
    pub(crate) fn sqlite() -> Self {
        Self {
            kind: "sqlite",
            root: tempfile::tempdir().expect("temporary directory"),
            database: None,
            env: Vec::new(),
        }
    }

    /// A deployment on the backend of `db`, for [`backend_test!`]: on SQLite the same as
    /// [`Self::sqlite`] (`db` goes unused: the database stays at its default place), on any
    /// other backend a fresh data directory with `db` passed as `--database`.
    pub(crate) fn new(db: TestDatabase) -> Self {
        if db.kind == "sqlite" {
            return Self::sqlite();
        }
        Self {
            kind: db.kind,
            root: tempfile::tempdir().expect("temporary directory"),
            database: Some(db),
            env: Vec::new(),
        }
    }

    /// The data directory (not created until a command creates it).
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// The database URL the commands use.
    pub(crate) fn database_url(&self) -> String {
        match &self.database {
            Some(db) => db.url.clone(),
            None => format!("sqlite://{}", self.data_dir().join("passport.db").display()),
        }
    }

    /// Sets an environment variable for every later command.
    pub(crate) fn set_env(&mut self, name: &str, value: &str) {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_owned(), value.to_owned()));
    }

    /// Removes an environment variable set with [`Self::set_env`].
    pub(crate) fn unset_env(&mut self, name: &str) {
        self.env.retain(|(n, _)| n != name);
    }

    /// Writes `passport.toml` into the data directory.
    pub(crate) fn write_config(&self, text: &str) {
        fs::create_dir_all(self.data_dir()).expect("create data dir");
        fs::write(self.data_dir().join("passport.toml"), text).expect("write passport.toml");
    }

    /// `passport --data-dir … [--database …] ARGS` with a clean environment.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        for (name, _) in std::env::vars() {
            if name.starts_with("PASSPORT_") || name == "DATABASE_URL" || name == "RUST_LOG" {
                cmd.env_remove(name);
            }
        }
        cmd.arg("--data-dir").arg(self.data_dir());
        if let Some(db) = &self.database {
            cmd.arg("--database").arg(&db.url);
        }
        cmd.args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs a command to completion.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        run_with_timeout(self.command(args), None, args)
    }

    /// Runs a command with `input` on its stdin.
    pub(crate) fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        run_with_timeout(self.command(args), Some(input), args)
    }

    /// Runs a command that must succeed and print exactly one JSON value on one line.
    pub(crate) fn json(&self, args: &[&str]) -> Value {
        json_output(&self.run(args), args)
    }

    /// Runs a command that must fail; returns its single stderr line.
    pub(crate) fn fails(&self, args: &[&str]) -> String {
        error_line(&self.run(args), args)
    }

    /// Generates a 2048-bit key pair (fast) in the data directory.
    pub(crate) fn keys(&self) {
        self.json(&["keys", "--length", "2048", "--json"]);
    }

    /// Creates a user; returns the id.
    pub(crate) fn user(&self, email: &str, password: &str) -> String {
        let out = self.json(&["user", "create", "--email", email, "--password", password, "--json"]);
        out["user_id"].as_str().expect("user_id").to_owned()
    }

    /// Creates a client with `args` (type flags etc.); returns id and secret (None if public).
    pub(crate) fn client(&self, args: &[&str]) -> (String, Option<String>) {
        let mut all = vec!["client"];
        all.extend_from_slice(args);
        all.push("--json");
        let out = self.json(&all);
        (
            out["client_id"].as_str().expect("client_id").to_owned(),
            out["client_secret"].as_str().map(str::to_owned),
        )
    }

    /// Starts `passport serve --bind 127.0.0.1:0` and waits until it listens.
    pub(crate) fn serve(&self) -> ServerProcess {
        ServerProcess::spawn(self.command(&["serve", "--bind", "127.0.0.1:0"]))
    }
}

fn run_with_timeout(mut cmd: Command, input: Option<&str>, args: &[&str]) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().expect("spawn passport");
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_bytes()).expect("write stdin");
    }
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(COMMAND_TIMEOUT) {
        Ok(output) => output.expect("wait for passport"),
        Err(_) => {
            let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
            panic!("passport {args:?} did not finish within {COMMAND_TIMEOUT:?}");
        }
    }
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Asserts success and exactly one line of JSON on stdout.
pub(crate) fn json_output(output: &Output, args: &[&str]) -> Value {
    assert!(
        output.status.success(),
        "passport {args:?} failed: {}",
        describe(output)
    );
    let stdout = String::from_utf8(output.stdout.clone()).expect("utf-8 stdout");
    assert_eq!(
        stdout.lines().count(),
        1,
        "passport {args:?}: one line of JSON: {}",
        describe(output)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("passport {args:?}: not JSON ({e}): {stdout}"))
}

/// Asserts failure and exactly one line on stderr, `error: …`; returns that line.
pub(crate) fn error_line(output: &Output, args: &[&str]) -> String {
    assert!(
        !output.status.success(),
        "passport {args:?} should fail: {}",
        describe(output)
    );
    assert!(
        output.status.code().is_some(),
        "passport {args:?} exits, not killed: {}",
        describe(output)
    );
    let stderr = String::from_utf8(output.stderr.clone()).expect("utf-8 stderr");
    assert_eq!(
        stderr.lines().count(),
        1,
        "passport {args:?}: one line on stderr: {}",
        describe(output)
    );
    let line = stderr.trim_end().to_owned();
    assert!(line.starts_with("error: "), "passport {args:?}: {line}");
    assert!(line.len() > "error: ".len() + 10, "a clear message: {line}");
    line
}

/// A `passport serve` child process; killed when dropped.
pub(crate) struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub(crate) base: String,
    log: PathBuf,
    _log_dir: TempDir,
    /// The lines the server printed after its first.
    stdout: std::sync::Mutex<mpsc::Receiver<String>>,
}

impl ServerProcess {
    /// Spawns `cmd` (a `serve` command) and waits for its `listening on http://ADDR` line.
    pub(crate) fn spawn(mut cmd: Command) -> Self {
        let log_dir = tempfile::tempdir().expect("temporary directory");
        let log = log_dir.path().join("stderr.log");
        let log_file = fs::File::create(&log).expect("log file");
        cmd.stdout(Stdio::piped()).stderr(log_file);
        let mut child = cmd.spawn().expect("spawn passport serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        let mut server = Self {
            child,
            base: String::new(),
            log,
            _log_dir: log_dir,
            stdout: std::sync::Mutex::new(rx),
        };
        std::thread::spawn(move || {
            // Keep draining so the server never writes into a closed pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let first = server.stdout.lock().unwrap().recv_timeout(COMMAND_TIMEOUT);
        let line = match first {
            Ok(line) => line,
            Err(_) => panic!("passport serve did not start; stderr:\n{}", server.log()),
        };
        let address = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}; stderr:\n{}", server.log()));
        assert!(address.starts_with("http://127.0.0.1:"), "{address}");
        server.base = address.to_owned();
        server
    }

    /// An absolute URL on this server.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The next line the server prints on stdout after `listening on …`.
    pub(crate) fn next_line(&self) -> String {
        match self.stdout.lock().unwrap().recv_timeout(COMMAND_TIMEOUT) {
            Ok(line) => line,
            Err(_) => panic!("passport serve printed no further line; stderr:\n{}", self.log()),
        }
    }

    /// The server's stderr so far.
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal by name (`TERM`, `INT`) with the `kill` command.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// SIGKILL (`Child::kill`), then reaps the process.
    pub(crate) fn kill9(&mut self) -> ExitStatus {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("wait")
    }

    /// Waits up to `timeout` for the process to exit.
    pub(crate) async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if start.elapsed() > timeout {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The claims of a JWT, decoded without verification.
pub(crate) fn jwt_claims(jwt: &str) -> Value {
    jwt_part(jwt, 1)
}

/// The JOSE header of a JWT, decoded without verification.
pub(crate) fn jwt_header(jwt: &str) -> Value {
    jwt_part(jwt, 0)
}

fn jwt_part(jwt: &str, index: usize) -> Value {
    let part = jwt.split('.').nth(index).expect("a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url part")).expect("a JSON part")
}

/// POSTs a form to a token endpoint; returns status and JSON body.
pub(crate) async fn post_token(http: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let response = http.post(url).form(form).send().await.expect("token request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

/// `GET /api/user` with a bearer token; returns status and JSON body.
pub(crate) async fn api_user(http: &reqwest::Client, server: &ServerProcess, token: &str) -> (u16, Value) {
    let response = http
        .get(server.url("/api/user"))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET /api/user");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

/// How many migrations the backend has (files in `passport-sqlx/migrations/<kind>`).
/// The migrations shipped for a dialect: one folder per schema set (`core`, `sessions`,
/// `users`; `legacy` holds the in-place upgrade of older databases, not a migration).
pub(crate) fn migration_count(kind: &str) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../passport-sqlx/migrations")
        .join(kind);
    ["core", "sessions", "users"]
        .iter()
        .map(|set| {
            fs::read_dir(dir.join(set))
                .expect("migrations dir")
                .filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
                })
                .count()
        })
        .sum()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

/// The DER length of a PEM body.
fn der_len(pem: &str) -> usize {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).expect("base64 PEM body").len()
}

/// Overwrites a client's stored secret with `value`, as a legacy import would have left it.
async fn set_stored_secret(site: &Deployment, client_id: &str, value: &str) {
    let url = site.database_url();
    let sql = "UPDATE oauth_clients SET secret = $1 WHERE id = $2";
    let updated = if site.kind == "sqlite" {
        let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("connect");
        let result = sqlx::query(sql).bind(value).bind(client_id).execute(&mut conn).await;
        let _ = conn.close().await;
        result.expect("update").rows_affected()
    } else {
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        let result = sqlx::query(sql).bind(value).bind(client_id).execute(&mut conn).await;
        let _ = conn.close().await;
        result.expect("update").rows_affected()
    };
    assert_eq!(updated, 1);
}

const SCOPES_TOML: &str = "[scopes]\nread = \"Read your data\"\nwrite = \"Change your data\"\n";

#[tokio::test]
async fn keys_writes_a_pem_pair_with_a_private_file_only_the_owner_reads() {
    let site = Deployment::sqlite();
    let private = site.data_dir().join("oauth-private.key");
    let public = site.data_dir().join("oauth-public.key");

    let out = site.json(&["keys", "--length", "2048", "--json"]);
    assert_eq!(
        out,
        json!({"private_key": private.to_str().unwrap(), "public_key": public.to_str().unwrap()})
    );
    assert_eq!(mode(&private), 0o600, "private key mode");
    assert_eq!(mode(&public), 0o644, "public key mode");
    let private_pem = fs::read_to_string(&private).unwrap();
    let public_pem = fs::read_to_string(&public).unwrap();
    // PKCS#8 and SPKI, as Passport writes them (line endings may be CRLF, as phpseclib's are).
    let private_lines: Vec<&str> = private_pem.lines().collect();
    let public_lines: Vec<&str> = public_pem.lines().collect();
    assert_eq!(private_lines.first(), Some(&"-----BEGIN PRIVATE KEY-----"));
    assert_eq!(private_lines.last(), Some(&"-----END PRIVATE KEY-----"));
    assert_eq!(
        public_lines.first(),
        Some(&"-----BEGIN PUBLIC KEY-----"),
        "{public_pem}"
    );
    assert_eq!(public_lines.last(), Some(&"-----END PUBLIC KEY-----"), "{public_pem}");
    passport::KeySet::from_pem(&private_pem, Some(&public_pem)).expect("a matching RSA pair");
    // A 2048-bit PKCS#8 key is ~1.2 kB of DER, a 4096-bit one ~2.4 kB.
    let len = der_len(&private_pem);
    assert!((1100..1300).contains(&len), "2048-bit key expected, DER is {len} bytes");

    // A second run without --force is refused and changes nothing.
    let line = site.fails(&["keys", "--length", "2048"]);
    assert!(line.contains("already exist") && line.contains("--force"), "{line}");
    assert_eq!(fs::read_to_string(&private).unwrap(), private_pem);
    let output = site.run(&["keys", "--length", "2048", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty(), "no JSON on failure");

    // --force overwrites, and puts the mode right even if someone loosened it.
    fs::set_permissions(&private, fs::Permissions::from_mode(0o644)).unwrap();
    let out = site.json(&["keys", "--force", "--length", "2048", "--json"]);
    assert_eq!(out["private_key"], private.to_str().unwrap());
    let new_private = fs::read_to_string(&private).unwrap();
    let new_public = fs::read_to_string(&public).unwrap();
    assert_ne!(new_private, private_pem, "--force writes a new key");
    assert_ne!(new_public, public_pem);
    assert_eq!(mode(&private), 0o600, "mode restored by --force");
    passport::KeySet::from_pem(&new_private, Some(&new_public)).expect("a matching RSA pair");

    // Human output.
    let output = site.run(&["keys", "--force", "--length", "2048"]);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "Encryption keys generated successfully.\n"
    );

    // An unsupported length fails cleanly, even with --force, leaving the keys alone.
    let kept = fs::read_to_string(&private).unwrap();
    let line = site.fails(&["keys", "--force", "--length", "1234"]);
    assert!(line.contains("1234"), "{line}");
    assert_eq!(fs::read_to_string(&private).unwrap(), kept);

    let fresh = Deployment::sqlite();
    let line = fresh.fails(&["keys", "--length", "1234", "--json"]);
    assert!(line.contains("unsupported key length 1234"), "{line}");
    assert!(!fresh.data_dir().join("oauth-private.key").exists());
    assert!(!fresh.data_dir().join("oauth-public.key").exists());
    // Not a number at all: a usage error, still one line.
    let output = fresh.run(&["keys", "--length", "big"]);
    assert_eq!(output.status.code(), Some(2));
    let line = error_line(&output, &["keys", "--length", "big"]);
    assert!(line.contains("--length"), "{line}");
}

#[tokio::test]
async fn install_generates_4096_bit_keys_by_default() {
    // `install` without --length generates the default 4096-bit key (about a second).
    let site = Deployment::sqlite();
    site.json(&["install", "--json"]);
    let len = der_len(&fs::read_to_string(site.data_dir().join("oauth-private.key")).unwrap());
    assert!((2300..2500).contains(&len), "4096-bit key expected, DER is {len} bytes");
}

backend_test! {
    async fn migrate_applies_pending_migrations_once(db) {
        let site = Deployment::new(db);
        let expected = migration_count(site.kind);
        assert!(expected >= 1);
        assert_eq!(site.json(&["migrate", "--json"]), json!({"applied": expected}),);
        assert_eq!(site.json(&["migrate", "--json"]), json!({"applied": 0}));
        let output = site.run(&["migrate"]);
        assert!(output.status.success());
        assert_eq!(String::from_utf8_lossy(&output.stdout), "Applied 0 migration(s).\n",);
    }
}

backend_test! {
    async fn install_creates_keys_schema_and_one_personal_access_client(db) {
        let site = Deployment::new(db);
        let out = site.json(&["install", "--length", "2048", "--json"]);
        let id = out["personal_access_client"]["client_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{out}"))
            .to_owned();
        assert_eq!(out, json!({"personal_access_client": {"client_id": id}}));
        uuid::Uuid::parse_str(&id).expect("a UUID client id");
        let private = site.data_dir().join("oauth-private.key");
        assert_eq!(mode(&private), 0o600);
        assert!(site.data_dir().join("oauth-public.key").exists());
        let key = fs::read_to_string(&private).unwrap();

        // Idempotent: same client, same keys; the schema is in place.
        assert_eq!(site.json(&["install", "--length", "2048", "--json"]), out);
        assert_eq!(fs::read_to_string(&private).unwrap(), key, "keys kept");
        assert_eq!(site.json(&["migrate", "--json"]), json!({"applied": 0}));

        let list = site.json(&["client", "list", "--json"]);
        let list = list.as_array().expect("array");
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(list[0]["client_id"], id.as_str());
        assert_eq!(list[0]["grant_types"], json!(["personal_access"]));
        assert_eq!(list[0]["confidential"], true);
        assert_eq!(list[0]["revoked"], false);

        // --force regenerates the keys but keeps the client.
        assert_eq!(site.json(&["install", "--force", "--length", "2048", "--json"]), out,);
        assert_ne!(fs::read_to_string(&private).unwrap(), key, "--force regenerates keys");
    }
}

backend_test! {
    async fn client_creates_every_type_with_its_grants_and_a_secret_shown_once(db) {
        const DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";
        struct Case {
            args: &'static [&'static str],
            confidential: bool,
            grants: &'static [&'static str],
            redirects: &'static [&'static str],
            name: &'static str,
            provider: Option<&'static str>,
        }
        let cases = [
            Case {
                args: &["--client", "--name", "Billing service"],
                confidential: true,
                grants: &["client_credentials"],
                redirects: &[],
                name: "Billing service",
                provider: None,
            },
            Case {
                args: &["--password"],
                confidential: true,
                grants: &["password", "refresh_token"],
                redirects: &[],
                name: "Password Grant Client",
                provider: None,
            },
            Case {
                args: &["--password", "--provider", "admins", "--name", "Admin console"],
                confidential: true,
                grants: &["password", "refresh_token"],
                redirects: &[],
                name: "Admin console",
                provider: Some("admins"),
            },
            Case {
                args: &["--password", "--public", "--name", "Mobile"],
                confidential: false,
                grants: &["password", "refresh_token"],
                redirects: &[],
                name: "Mobile",
                provider: None,
            },
            Case {
                args: &["--implicit", "--redirect-uri", "https://spa.example/callback"],
                confidential: false,
                grants: &["implicit"],
                redirects: &["https://spa.example/callback"],
                name: "Implicit Grant Client",
                provider: None,
            },
            Case {
                args: &["--device"],
                confidential: true,
                grants: &[DEVICE, "refresh_token"],
                redirects: &[],
                name: "Device Authorization Grant Client",
                provider: None,
            },
            Case {
                args: &["--device", "--public", "--name", "TV"],
                confidential: false,
                grants: &[DEVICE, "refresh_token"],
                redirects: &[],
                name: "TV",
                provider: None,
            },
            Case {
                args: &["--personal"],
                confidential: true,
                grants: &["personal_access"],
                redirects: &[],
                name: "Personal Access Client",
                provider: None,
            },
            Case {
                args: &[
                    "--name",
                    "Web app",
                    "--redirect-uri",
                    "https://app.example/callback, http://127.0.0.1/callback",
                ],
                confidential: true,
                grants: &["authorization_code", "refresh_token"],
                redirects: &["https://app.example/callback", "http://127.0.0.1/callback"],
                name: "Web app",
                provider: None,
            },
            Case {
                args: &["--public", "--redirect-uri", "https://native.example/cb"],
                confidential: false,
                grants: &["authorization_code", "refresh_token"],
                redirects: &["https://native.example/cb"],
                name: "Authorization Code Client",
                provider: None,
            },
            Case {
                args: &["--with-device-flow", "--redirect_uri", "https://tv.example/cb"],
                confidential: true,
                grants: &["authorization_code", "refresh_token", DEVICE],
                redirects: &["https://tv.example/cb"],
                name: "Authorization Code Client",
                provider: None,
            },
        ];
        let site = Deployment::new(db);
        site.keys();
        let mut created = Vec::new();
        for case in &cases {
            let mut args = vec!["client"];
            args.extend_from_slice(case.args);
            args.push("--json");
            let out = site.json(&args);
            let object = out.as_object().unwrap_or_else(|| panic!("{args:?}: {out}"));
            let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(
                keys,
                [
                    "can_introspect",
                    "client_id",
                    "client_secret",
                    "dpop_bound_access_tokens",
                    "fapi_profile",
                    "grant_types",
                    "post_logout_redirect_uris",
                    "redirect_uris",
                    "require_pushed_authorization_requests",
                    "token_endpoint_auth_method"
                ],
                "{args:?}"
            );
            let id = out["client_id"].as_str().expect("client_id").to_owned();
            uuid::Uuid::parse_str(&id).expect("UUID");
            if case.confidential {
                let secret = out["client_secret"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{args:?}: {out}"));
                assert!(secret.len() >= 40, "{args:?}: secret of 40+ characters: {secret}");
                assert!(secret.chars().all(|c| c.is_ascii_alphanumeric()), "{secret}");
            } else {
                assert_eq!(out["client_secret"], Value::Null, "{args:?}: public client");
            }
            assert_eq!(out["grant_types"], json!(case.grants), "{args:?}");
            assert_eq!(out["redirect_uris"], json!(case.redirects), "{args:?}");
            created.push((id, out["client_secret"].as_str().map(str::to_owned)));
        }
        let secrets: std::collections::HashSet<_> = created.iter().filter_map(|(_, s)| s.clone()).collect();
        assert_eq!(
            secrets.len(),
            cases.iter().filter(|c| c.confidential).count(),
            "secrets are distinct"
        );

        // The list shows every client as created; secrets are not in it.
        let list = site.json(&["client", "list", "--json"]);
        let list = list.as_array().expect("array");
        assert_eq!(list.len(), cases.len());
        for (case, (id, _)) in cases.iter().zip(&created) {
            let entry = list
                .iter()
                .find(|c| c["client_id"] == id.as_str())
                .unwrap_or_else(|| panic!("{id} listed"));
            assert_eq!(entry["name"], case.name, "{:?}", case.args);
            assert_eq!(entry["confidential"], case.confidential, "{:?}", case.args);
            assert_eq!(entry["grant_types"], json!(case.grants));
            assert_eq!(entry["redirect_uris"], json!(case.redirects));
            assert_eq!(entry["provider"], json!(case.provider), "{:?}", case.args);
            assert_eq!(entry["revoked"], false);
            assert!(entry["created_at"].is_string());
            assert!(entry.get("client_secret").is_none() && entry.get("secret").is_none());
        }

        // Secrets are stored hashed, never in clear.
        let db = passport_sqlx::Database::connect(&site.database_url()).await.unwrap();
        for (id, secret) in &created {
            let client = db.store().find_client(id).await.unwrap().expect("stored");
            match secret {
                Some(secret) => {
                    let stored = client.secret_hash.expect("hash");
                    assert_eq!(stored, passport::hash_client_secret(secret), "SHA-256 stored");
                    assert!(!stored.contains(secret.as_str()));
                }
                None => assert!(client.secret_hash.is_none()),
            }
        }
        db.close().await;

        // Revoke: one JSON object, the list says so, a second revoke fails.
        let (victim, _) = &created[0];
        assert_eq!(
            site.json(&["client", "revoke", victim, "--json"]),
            json!({"revoked": victim})
        );
        let list = site.json(&["client", "list", "--json"]);
        for entry in list.as_array().unwrap() {
            assert_eq!(entry["revoked"], entry["client_id"] == victim.as_str(), "{entry}");
        }
        let line = site.fails(&["client", "revoke", victim, "--json"]);
        assert!(line.contains(victim.as_str()), "{line}");
        let line = site.fails(&["client", "revoke", "00000000-0000-0000-0000-000000000000"]);
        assert!(line.contains("no active client"), "{line}");
    }
}

backend_test! {
    async fn client_errors_exit_non_zero_with_one_line(db) {
        let cases: &[(&[&str], &str)] = &[
            (&["client", "--implicit", "--name", "SPA", "--json"], "redirect URI"),
            (&["client", "--name", "Web", "--json"], "redirect URI"),
            (&["client", "--client", "--public", "--json"], "public"),
            (&["client", "--personal", "--public"], "public"),
            (&["client", "--client", "--password", "--json"], "cannot be used with"),
            (
                &[
                    "client",
                    "--implicit",
                    "--device",
                    "--redirect-uri",
                    "https://a.example/cb",
                ],
                "cannot be used with",
            ),
            (
                &["client", "--redirect-uri", "not a uri", "--json"],
                "Invalid redirect URI",
            ),
            (
                &["client", "--redirect-uri", "https://a.example/cb#fragment"],
                "Invalid redirect URI",
            ),
            (
                &["client", "--redirect-uri", "javascript:alert(1)"],
                "Invalid redirect URI",
            ),
            (&["client", "--client", "--name", "   "], "name"),
            (&["client", "--client", "--nonsense"], "--nonsense"),
        ];
        let site = Deployment::new(db);
        site.keys();
        for (args, needle) in cases {
            let output = site.run(args);
            let line = error_line(&output, args);
            assert!(line.contains(needle), "{args:?}: {line:?} should mention {needle:?}");
            assert!(output.stdout.is_empty(), "{args:?}: nothing on stdout");
        }
        assert_eq!(
            site.json(&["client", "list", "--json"]),
            json!([]),
            "nothing was created"
        );
    }
}

backend_test! {
    async fn user_commands_create_list_and_delete_accounts(db) {
        let site = Deployment::new(db);
        site.keys();
        let out = site.json(&[
            "user",
            "create",
            "--email",
            "Alice@Example.com",
            "--password",
            "correct horse battery",
            "--name",
            "Alice",
            "--json",
        ]);
        let alice = out["user_id"].as_str().unwrap_or_else(|| panic!("{out}")).to_owned();
        assert_eq!(out, json!({"user_id": alice}));
        // The password may come from stdin; the name defaults to the email's local part.
        let output = site.run_with_stdin(
            &["user", "create", "--email", "bob@example.com", "--json"],
            "stdin password 123\n",
        );
        let bob = json_output(&output, &["user", "create"])["user_id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_ne!(alice, bob);

        let list = site.json(&["user", "list", "--json"]);
        let list = list.as_array().expect("array");
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["id"], alice.as_str());
        assert_eq!(list[0]["email"], "alice@example.com", "emails are stored lower case");
        assert_eq!(list[0]["name"], "Alice");
        assert_eq!(list[1]["id"], bob.as_str());
        assert_eq!(list[1]["name"], "bob");
        for entry in list {
            assert!(entry["created_at"].is_string());
            assert!(entry.get("password").is_none(), "no password hash in the list");
        }

        // Passwords are argon2id hashes that verify.
        let db = passport_sqlx::Database::connect(&site.database_url()).await.unwrap();
        let row = db.users().find_user_by_email("bob@example.com").await.unwrap().unwrap();
        assert!(row.password_hash.starts_with("$argon2id$"), "{}", row.password_hash);
        let hasher = passport::PasswordHasher::new(1);
        assert!(hasher.verify(&row.password_hash, "stdin password 123").await);
        assert!(!hasher.verify(&row.password_hash, "stdin password 124").await);
        db.close().await;

        // Errors.
        let line = site.fails(&[
            "user",
            "create",
            "--email",
            "ALICE@example.com",
            "--password",
            "another password",
        ]);
        assert!(line.contains("already exists"), "{line}");
        let line = site.fails(&[
            "user",
            "create",
            "--email",
            "carol@example.com",
            "--password",
            "short",
            "--json",
        ]);
        assert!(line.contains("at least 8"), "{line}");
        let line = site.fails(&[
            "user",
            "create",
            "--email",
            "not-an-email",
            "--password",
            "long enough pw",
        ]);
        assert!(line.contains("invalid email"), "{line}");
        // No password on the command line and none on stdin.
        let line = site.fails(&["user", "create", "--email", "dave@example.com"]);
        assert!(line.contains("at least 8"), "{line}");

        assert_eq!(
            site.json(&["user", "delete", &alice, "--json"]),
            json!({"deleted": alice})
        );
        let list = site.json(&["user", "list", "--json"]);
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert_eq!(list[0]["id"], bob.as_str());
        let line = site.fails(&["user", "delete", &alice, "--json"]);
        assert!(line.contains("no user"), "{line}");
    }
}

backend_test! {
    async fn token_personal_issues_a_token_that_works_at_api_user(db) {
        let site = Deployment::new(db);
        site.write_config(SCOPES_TOML);
        site.keys();
        let user = site.user("pat@example.com", "pat password 1");

        let line = site.fails(&["token", "personal", "--user", &user, "--name", "CLI", "--json"]);
        assert!(line.contains("Personal access client not found"), "{line}");

        let install = site.json(&["install", "--json"]);
        let pat_client = install["personal_access_client"]["client_id"]
            .as_str()
            .unwrap()
            .to_owned();

        let out = site.json(&[
            "token",
            "personal",
            "--user",
            &user,
            "--name",
            "CLI token",
            "--scopes",
            "read",
            "--json",
        ]);
        let object = out.as_object().unwrap_or_else(|| panic!("{out}"));
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["access_token", "expires_at", "token_id"]);
        let token = out["access_token"].as_str().unwrap().to_owned();
        let token_id = out["token_id"].as_str().unwrap();
        assert_eq!(token_id.len(), 80);
        assert!(token_id.chars().all(|c| c.is_ascii_hexdigit()));
        let claims = jwt_claims(&token);
        assert_eq!(claims["jti"], token_id);
        assert_eq!(claims["sub"], user.as_str());
        assert_eq!(claims["aud"], pat_client.as_str());
        assert_eq!(claims["scopes"], json!(["read"]));
        let expires_at = chrono::DateTime::parse_from_rfc3339(out["expires_at"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("expires_at is RFC 3339: {e}: {out}"));
        assert_eq!(expires_at.timestamp(), claims["exp"].as_i64().unwrap());
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            365 * 86_400,
            "default lifetime one year"
        );

        let two = site.json(&[
            "token",
            "personal",
            "--user",
            &user,
            "--name",
            "Two",
            "--scopes",
            "read,write",
            "--json",
        ]);
        assert_eq!(
            jwt_claims(two["access_token"].as_str().unwrap())["scopes"],
            json!(["read", "write"])
        );

        let line = site.fails(&["token", "personal", "--user", "999999", "--name", "x", "--json"]);
        assert!(line.contains("no user"), "{line}");
        let line = site.fails(&[
            "token", "personal", "--user", &user, "--name", "x", "--scopes", "delete",
        ]);
        assert!(line.contains("delete"), "{line}");

        let server = site.serve();
        let http = reqwest::Client::new();
        let (status, body) = api_user(&http, &server, &token).await;
        assert_eq!(status, 200, "{body}; log:\n{}", server.log());
        assert_eq!(body["id"], user.as_str());
        assert_eq!(body["email"], "pat@example.com");
        assert_eq!(body["name"], "pat");
        let (status, _) = api_user(&http, &server, "not-a-token").await;
        assert_eq!(status, 401);

        // Deleting the user with the CLI while the server runs: the revocation feed brings it to
        // the server's cache within a second (README: Performance).
        site.json(&["user", "delete", &user, "--json"]);
        let deleted_at = std::time::Instant::now();
        loop {
            let (status, _) = api_user(&http, &server, &token).await;
            if status == 401 {
                break;
            }
            assert!(deleted_at.elapsed() < std::time::Duration::from_secs(1), "still {status} after a second");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

backend_test! {
    async fn purge_removes_revoked_and_long_expired_tokens(db) {
        /// `{"purged": {"access_tokens": n, "refresh_tokens": 0, "auth_codes": 0, "device_codes": 0, …}}`
        /// (other kinds of rows may be counted too; they must be 0 here).
        #[track_caller]
        fn assert_purged(out: &Value, access: u64, what: &str) {
            let object = out.as_object().unwrap_or_else(|| panic!("{what}: {out}"));
            assert_eq!(object.len(), 1, "{what}: {out}");
            let counts = out["purged"].as_object().unwrap_or_else(|| panic!("{what}: {out}"));
            for table in ["access_tokens", "refresh_tokens", "auth_codes", "device_codes"] {
                assert!(counts.contains_key(table), "{what}: {table} counted: {out}");
            }
            for (table, count) in counts {
                let expected = if table == "access_tokens" { access } else { 0 };
                assert_eq!(count.as_u64(), Some(expected), "{what}: {table} in {out}");
            }
        }
        let site = Deployment::new(db);
        site.write_config("personal_access_tokens_expire_in = \"1s\"\n");
        site.keys();
        site.json(&["install", "--json"]);
        let user = site.user("purge@example.com", "purge password");
        let issue = |name: &str| {
            site.json(&["token", "personal", "--user", &user, "--name", name, "--json"])["token_id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let (a, b, c) = (issue("a"), issue("b"), issue("c"));
        let db = passport_sqlx::Database::connect(&site.database_url()).await.unwrap();
        let store = db.store();
        assert!(store.revoke_access_token(&a).await.unwrap());

        assert_purged(
            &site.json(&["purge", "--revoked", "--json"]),
            1,
            "purge --revoked --json",
        );
        assert!(store.find_access_token(&a).await.unwrap().is_none(), "revoked row gone");
        assert!(store.find_access_token(&b).await.unwrap().is_some(), "live row kept");
        assert_purged(
            &site.json(&["purge", "--revoked", "--json"]),
            0,
            "purge --revoked --json",
        );
        let output = site.run(&["purge", "--revoked"]);
        assert_eq!(String::from_utf8_lossy(&output.stdout), "Purged revoked items.\n");

        // b and c expire after a second; by default only rows expired for a week are purged.
        // The server's clock counts whole seconds, and a row only counts as expired once the
        // cutoff is past its `expires_at`: more than two seconds make sure it is.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_purged(
            &site.json(&["purge", "--expired", "--json"]),
            0,
            "purge --expired --json",
        );
        assert!(store.find_access_token(&b).await.unwrap().is_some());
        assert_purged(
            &site.json(&["purge", "--expired", "--hours", "0", "--json"]),
            2,
            "purge --expired --hours 0 --json",
        );
        assert!(store.find_access_token(&b).await.unwrap().is_none());
        assert!(store.find_access_token(&c).await.unwrap().is_none());

        // Neither flag means both.
        let d = issue("d");
        let e = issue("e");
        assert!(store.revoke_access_token(&d).await.unwrap());
        assert_purged(&site.json(&["purge", "--json"]), 1, "purge --json");
        assert!(store.find_access_token(&e).await.unwrap().is_some());
        db.close().await;
    }
}

backend_test! {
    async fn hash_rehashes_plaintext_secrets_which_then_authenticate(db) {
        let site = Deployment::new(db);
        site.keys();
        let (legacy, _) = site.client(&["--client", "--name", "Legacy"]);
        let (modern, modern_secret) = site.client(&["--client", "--name", "Modern"]);
        let modern_secret = modern_secret.unwrap();
        let plain = "legacy-Plaintext-Secret-0123456789-abcdefghij";
        set_stored_secret(&site, &legacy, plain).await;

        let server = site.serve();
        let http = reqwest::Client::new();
        let token_url = server.url("/oauth/token");
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", legacy.as_str()),
            ("client_secret", plain),
        ];
        let (status, body) = post_token(&http, &token_url, &form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "plaintext never matches"
        );

        assert_eq!(site.json(&["hash", "--json"]), json!({"hashed": 1}));
        let db = passport_sqlx::Database::connect(&site.database_url()).await.unwrap();
        let stored = db
            .store()
            .find_client(&legacy)
            .await
            .unwrap()
            .unwrap()
            .secret_hash
            .unwrap();
        assert_eq!(stored, passport::hash_client_secret(plain));
        db.close().await;

        let (status, body) = post_token(&http, &token_url, &form).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            jwt_claims(body["access_token"].as_str().unwrap())["aud"],
            legacy.as_str()
        );
        // The other client was already hashed and still works; a second run has nothing to do.
        assert_eq!(site.json(&["hash", "--json"]), json!({"hashed": 0}));
        let (status, _) = post_token(
            &http,
            &token_url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &modern),
                ("client_secret", &modern_secret),
            ],
        )
        .await;
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn config_file_and_environment_take_effect_through_serve() {
    let mut site = Deployment::sqlite();
    site.write_config(
        "tokens_expire_in = \"15m\"\nenable_password_grant = false\ndefault_scopes = [\"read\"]\n\n\
         [scopes]\nread = \"Read your data\"\nwrite = \"Change your data\"\n",
    );
    site.keys();
    site.user("config@example.com", "config password");
    let (service, service_secret) = site.client(&["--client"]);
    let service_secret = service_secret.unwrap();
    let (app, app_secret) = site.client(&["--password"]);
    let app_secret = app_secret.unwrap();
    let http = reqwest::Client::new();
    let cc = |scope: Option<&'static str>| {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", service.as_str()),
            ("client_secret", service_secret.as_str()),
        ];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        form
    };
    let password = [
        ("grant_type", "password"),
        ("client_id", app.as_str()),
        ("client_secret", app_secret.as_str()),
        ("username", "config@example.com"),
        ("password", "config password"),
    ];

    {
        let server = site.serve();
        let url = server.url("/oauth/token");
        // default_scopes and tokens_expire_in from the file.
        let (status, body) = post_token(&http, &url, &cc(None)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["expires_in"], 900);
        assert_eq!(body["scope"], "read", "granted scopes differ from the (empty) request");
        assert_eq!(
            jwt_claims(body["access_token"].as_str().unwrap())["scopes"],
            json!(["read"])
        );
        // [scopes] from the file.
        let (status, body) = post_token(&http, &url, &cc(Some("write"))).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("scope").is_none(), "granted as requested: {body}");
        assert_eq!(
            jwt_claims(body["access_token"].as_str().unwrap())["scopes"],
            json!(["write"])
        );
        let (status, body) = post_token(&http, &url, &cc(Some("admin"))).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")), "{body}");
        // enable_password_grant = false from the file.
        let (status, body) = post_token(&http, &url, &password).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("unsupported_grant_type")),
            "{body}"
        );
    }

    // Environment variables override the file.
    site.set_env("PASSPORT_ENABLE_PASSWORD_GRANT", "true");
    site.set_env("PASSPORT_TOKENS_EXPIRE_IN", "1h");
    let server = site.serve();
    let url = server.url("/oauth/token");
    let (status, body) = post_token(&http, &url, &password).await;
    assert_eq!(status, 200, "{body}; log:\n{}", server.log());
    assert_eq!(body["expires_in"], 3600);
    assert!(body["refresh_token"].is_string());
    assert_eq!(body["scope"], "read");
    let (status, user) = api_user(&http, &server, body["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(user["email"], "config@example.com");
    let (status, body) = post_token(&http, &url, &cc(None)).await;
    assert_eq!((status, &body["expires_in"]), (200, &json!(3600)));
}

#[tokio::test]
async fn config_option_points_at_another_file() {
    let site = Deployment::sqlite();
    site.keys();
    let elsewhere = site.root.path().join("elsewhere.toml");
    fs::write(&elsewhere, "tokens_expire_in = \"2h\"\n").unwrap();
    site.write_config("tokens_expire_in = \"15m\"\n");
    let (service, secret) = site.client(&["--client"]);
    let elsewhere = elsewhere.to_str().unwrap().to_owned();
    let server = ServerProcess::spawn(site.command(&["--config", &elsewhere, "serve", "--bind", "127.0.0.1:0"]));
    let (status, body) = post_token(
        &reqwest::Client::new(),
        &server.url("/oauth/token"),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &service),
            ("client_secret", &secret.unwrap()),
        ],
    )
    .await;
    assert_eq!((status, &body["expires_in"]), (200, &json!(7200)), "{body}");
    let line = site.fails(&[
        "--config",
        "/nonexistent/passport.toml",
        "serve",
        "--bind",
        "127.0.0.1:0",
    ]);
    assert!(line.contains("cannot read"), "{line}");
}

#[tokio::test]
async fn keys_from_the_environment_are_used_instead_of_files() {
    let mut site = Deployment::sqlite();
    let keys = passport::generate_keys(2048).unwrap();
    // As an operator puts them in an environment file: one line, literal \n.
    let one_line = |pem: &str| pem.trim().replace('\n', "\\n");
    site.set_env("PASSPORT_PRIVATE_KEY", &one_line(&keys.private_pem));
    site.set_env("PASSPORT_PUBLIC_KEY", &one_line(&keys.public_pem));
    let (service, secret) = site.client(&["--client"]);
    let server = site.serve();
    let (status, body) = post_token(
        &reqwest::Client::new(),
        &server.url("/oauth/token"),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &service),
            ("client_secret", &secret.unwrap()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}; log:\n{}", server.log());
    let jwt = body["access_token"].as_str().unwrap();
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(keys.public_pem.as_bytes()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_aud = false;
    let data = jsonwebtoken::decode::<Value>(jwt, &key, &validation).expect("signed with the environment's key");
    assert_eq!(data.claims["aud"], service.as_str());
    assert!(data.header.kid.is_some());
    drop(server);
    assert!(
        !site.data_dir().join("oauth-private.key").exists(),
        "no key file written"
    );
    assert!(!site.data_dir().join("oauth-public.key").exists());

    // The public key alone may be omitted (derived from the private one).
    site.unset_env("PASSPORT_PUBLIC_KEY");
    let server = site.serve();
    drop(server);

    // A mismatched pair, or garbage, stops the server with one line.
    let other = passport::generate_keys(2048).unwrap();
    site.set_env("PASSPORT_PUBLIC_KEY", &one_line(&other.public_pem));
    let line = site.fails(&["serve", "--bind", "127.0.0.1:0"]);
    assert!(line.contains("does not match"), "{line}");
    site.unset_env("PASSPORT_PUBLIC_KEY");
    site.set_env(
        "PASSPORT_PRIVATE_KEY",
        "-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----",
    );
    let line = site.fails(&["serve", "--bind", "127.0.0.1:0"]);
    assert!(line.contains("private key"), "{line}");
}

#[tokio::test]
async fn bad_configuration_stops_serve_with_one_line() {
    // (passport.toml, environment, what the error line says)
    type Case = (&'static str, &'static [(&'static str, &'static str)], &'static str);
    let cases: &[Case] = &[
        (
            "default_scopes = [\"admin\"]\n[scopes]\nread = \"Read\"\n",
            &[],
            "default scope \"admin\" is not defined",
        ),
        ("tokens_expire_in = \"soon\"\n", &[], "invalid duration \"soon\""),
        ("refresh_tokens_expire_in = \"0\"\n", &[], "longer than zero"),
        (
            "personal_access_tokens_expire_in = \"15 days\"\n",
            &[],
            "invalid duration",
        ),
        ("nope = 1\n", &[], "unknown field"),
        ("enable_password_grant = \"sometimes\"\n", &[], "passport.toml"),
        ("[scopes]\n\"two words\" = \"Bad\"\n", &[], "invalid scope id"),
        (
            "",
            &[("PASSPORT_ENABLE_PASSWORD_GRANT", "maybe")],
            "expected true or false",
        ),
        (
            "tokens_expire_in = \"1h\"\n",
            &[("PASSPORT_TOKENS_EXPIRE_IN", "soon")],
            "soon",
        ),
        ("", &[("PASSPORT_SCOPES", "read")], "PASSPORT_SCOPES"),
    ];
    let mut site = Deployment::sqlite();
    site.keys();
    for (toml, env, needle) in cases {
        site.write_config(toml);
        for (name, value) in *env {
            site.set_env(name, value);
        }
        let line = site.fails(&["serve", "--bind", "127.0.0.1:0"]);
        assert!(
            line.contains(needle),
            "{toml:?} {env:?}: {line:?} should mention {needle:?}"
        );
        for (name, _) in *env {
            site.unset_env(name);
        }
    }
}

#[tokio::test]
async fn usage_errors_are_one_line_and_help_still_works() {
    let site = Deployment::sqlite();
    for args in [
        &["frobnicate"][..],
        &["user", "create", "--json"],
        &["purge", "--hours", "-3"],
    ] {
        let output = site.run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        error_line(&output, args);
    }
    let output = site.run(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for command in [
        "install", "keys", "migrate", "client", "user", "token", "purge", "hash", "serve",
    ] {
        assert!(help.contains(command), "--help lists {command}: {help}");
    }
    let output = site.run(&["--version"]);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("passport "));
}
