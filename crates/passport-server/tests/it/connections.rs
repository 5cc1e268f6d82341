//! Connection-level resistance of `passport serve` (issue 10; README: Security, connections):
//! stalled connections from one address cannot take the server's file descriptors, requests
//! from elsewhere keep being served while they are open, and the server closes them after its
//! deadlines.

// Helpers outside #[test] functions panic on failure too: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

use crate::cli::{Deployment, ServerProcess, post_token};

/// The deadlines the server runs with here (short, so the test is quick; the defaults are 10 s
/// and 30 s).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(4);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How a stalled connection stalls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stall {
    /// Connects and sends nothing.
    Silent,
    /// Sends half a request head and stops.
    PartialHeaders,
    /// Sends a whole head promising a body, a few bytes of it, and stops.
    PartialBody,
}

/// `cmd` run under `ulimit -n limit`.
fn with_fd_limit(cmd: &Command, limit: u32) -> Command {
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(format!("ulimit -n {limit} && exec \"$@\""))
        .arg("sh")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdin(Stdio::null());
    for (name, value) in cmd.get_envs() {
        match value {
            Some(value) => sh.env(name, value),
            None => sh.env_remove(name),
        };
    }
    sh
}

/// Opens a connection from `from` to `server` and stalls it as `stall` says.
async fn stalled(from: &str, server: SocketAddr, stall: Stall) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(server).await.ok()?;
    let bytes: &[u8] = match stall {
        Stall::Silent => b"",
        Stall::PartialHeaders => b"POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty",
        Stall::PartialBody => {
            b"POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 1000\r\n\r\ngrant_type=cl"
        }
    };
    // A connection the server already closed may refuse the write: it is still counted below.
    let _ = stream.write_all(bytes).await;
    Some(stream)
}

/// Reads until the server closes `stream`; how long that took from `since`, or `None` if it
/// stayed open until `deadline`.
async fn closed_after(mut stream: TcpStream, since: Instant, deadline: Duration) -> Option<Duration> {
    let mut buf = [0u8; 1024];
    let until = since + deadline;
    loop {
        let left = until.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(since.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connections_from_one_address_neither_starve_others_nor_stay_open() {
    let mut site = Deployment::sqlite();
    site.keys();
    let (id, secret) = site.client(&["--client", "--name", "Probe"]);
    let secret = secret.unwrap();
    site.set_env(
        "PASSPORT_HEADER_READ_TIMEOUT",
        &format!("{}s", HEADER_READ_TIMEOUT.as_secs()),
    );
    site.set_env("PASSPORT_REQUEST_TIMEOUT", &format!("{}s", REQUEST_TIMEOUT.as_secs()));
    // The default connection caps, in a process allowed 256 file descriptors.
    let server = ServerProcess::spawn(with_fd_limit(&site.command(&["serve", "--bind", "127.0.0.1:0"]), 256));
    let address: SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();

    // 300 stalled connections from 127.0.0.2, a third of each kind.
    let opened = Instant::now();
    let mut stalls = Vec::new();
    for i in 0..300 {
        let stall = [Stall::Silent, Stall::PartialHeaders, Stall::PartialBody][i % 3];
        if let Some(stream) = stalled("127.0.0.2", address, stall).await {
            stalls.push((stall, stream));
        }
    }
    assert_eq!(stalls.len(), 300, "the kernel accepts them all into the backlog");

    // While they are open, well before the header deadline, 127.0.0.1 is served.
    let http = reqwest::Client::new();
    let health = http.get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200, "health; log:\n{}", server.log());
    let (status, body) = post_token(
        &http,
        &server.url("/oauth/token"),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let probed = opened.elapsed();
    assert!(
        probed < HEADER_READ_TIMEOUT / 2,
        "answered while the stalled connections were open ({probed:?})"
    );

    // Every stalled connection is closed: those past the per-address cap at once, the others
    // by the header deadline (silent, partial headers) or the request deadline (partial body).
    let deadline = REQUEST_TIMEOUT + Duration::from_secs(5);
    let mut held = 0;
    let mut waits = Vec::new();
    for (stall, stream) in stalls {
        waits.push(tokio::spawn(async move {
            (stall, closed_after(stream, opened, deadline).await)
        }));
    }
    for wait in waits {
        let (stall, closed) = wait.await.unwrap();
        let closed = closed.unwrap_or_else(|| panic!("a {stall:?} connection stayed open past {deadline:?}"));
        // Those refused at the cap were closed before the probe; reading them starts after it.
        if closed > HEADER_READ_TIMEOUT / 2 {
            held += 1;
            let limit = match stall {
                Stall::Silent | Stall::PartialHeaders => HEADER_READ_TIMEOUT,
                Stall::PartialBody => REQUEST_TIMEOUT,
            };
            assert!(
                closed <= limit + Duration::from_secs(3),
                "a {stall:?} connection closed after {closed:?}, its deadline is {limit:?}"
            );
        }
    }
    assert!(
        (1..=32).contains(&held),
        "the per-address cap (32) held some and refused the rest: {held} held"
    );
    // Still serving after all that.
    let health = http.get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

/// README: Security, behind a proxy. From a trusted proxy the forwarded client address is what
/// the failure limits count; from anyone else the forwarding headers are ignored, so a client
/// cannot step out of its lockout by writing one.
#[tokio::test]
async fn failure_limits_count_the_forwarded_address_only_from_trusted_proxies() {
    let mut site = Deployment::sqlite();
    site.keys();
    let (id, secret) = site.client(&["--client", "--name", "Behind a proxy"]);
    let secret = secret.unwrap();
    site.set_env("PASSPORT_CLIENT_AUTH_FAILURES_PER_CLIENT", "3");
    site.set_env("PASSPORT_TRUSTED_PROXIES", "127.0.0.1");
    let server = site.serve();
    let via_proxy = reqwest::Client::new();
    let token = |http: &reqwest::Client, forwarded_for: &str, secret: &str| {
        let request = http
            .post(server.url("/oauth/token"))
            .header("x-forwarded-for", forwarded_for)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id.as_str()),
                ("client_secret", secret),
            ]);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    for _ in 0..3 {
        assert_eq!(token(&via_proxy, "198.51.100.1", "wrong").await, 401);
    }
    assert_eq!(token(&via_proxy, "198.51.100.1", &secret).await, 429, "locked out");
    assert_eq!(
        token(&via_proxy, "198.51.100.2", &secret).await,
        200,
        "another client behind the same proxy"
    );

    // From an untrusted address (127.0.0.2), the header is the client's own word: ignored.
    let direct = reqwest::ClientBuilder::new()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    for _ in 0..3 {
        assert_eq!(token(&direct, "203.0.113.1", "wrong").await, 401);
    }
    assert_eq!(
        token(&direct, "203.0.113.99", &secret).await,
        429,
        "a new X-Forwarded-For does not escape the lockout"
    );
}
