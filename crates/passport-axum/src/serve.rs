//! Serving an app so that no client can take the server down by holding connections open:
//! each request knows its peer address (the rate and failure limits key on it), headers must
//! arrive within a deadline (also on an idle keep-alive connection, so silent connections are
//! closed too), every request has an overall deadline, HTTP/2 streams and resets are bounded,
//! and connections are capped per address (IPv6 by its /64) and in total, with defaults that
//! fit a process limited to 256 file descriptors. Past a cap a new connection waits briefly for
//! a slot, then is closed; the others are served as usual.
//!
//! Behind a reverse proxy, list it in [`ServeOptions::trusted_proxies`]: its connections are
//! exempt from the per-address cap, and the address it forwards for (`Forwarded` or
//! `X-Forwarded-For`) is the one the limits see.

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt as _;

use crate::forwarded::client_address;
use crate::rate_limit::address_key;

/// Limits of [`serve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// A request's headers must arrive within this (and an idle keep-alive connection gets no
    /// longer before its next request); then the connection is closed. Default 10 s.
    pub header_read_timeout: Duration,
    /// The longest a request may take, body and handler included; past it the answer is
    /// `408 Request Timeout`. Default 30 s.
    pub request_timeout: Duration,
    /// Connections open at once, in total. Default 160.
    pub max_connections: usize,
    /// Connections open at once from one address (IPv6: one /64). Default 32.
    pub max_connections_per_address: usize,
    /// Concurrent HTTP/2 streams per connection. Default 64.
    pub http2_max_concurrent_streams: u32,
    /// How long shutdown waits for requests in flight. Default 10 s.
    pub shutdown_grace: Duration,
    /// Reverse proxies whose forwarding headers are believed (see the module documentation;
    /// [`parse_trusted_proxies`](crate::parse_trusted_proxies) reads the setting). Default none.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 160,
            max_connections_per_address: 32,
            http2_max_concurrent_streams: 64,
            shutdown_grace: Duration::from_secs(10),
            trusted_proxies: Vec::new(),
        }
    }
}

/// How long a connection past the total cap waits for a slot before it is closed.
const WAIT_FOR_SLOT: Duration = Duration::from_millis(250);

type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A server in the making; `.await` it (see [`serve`]).
#[must_use = "a server does nothing until it is awaited"]
pub struct Serve {
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    shutdown: Shutdown,
}

impl std::fmt::Debug for Serve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serve")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Serves `app` on `listener` with the peer address on every request (`ConnectInfo`) and the
/// limits of [`ServeOptions`]. Without the address the per-address limits could only share one
/// bucket between all callers; they refuse to, and the request fails with a logged reason.
///
/// ```no_run
/// # async fn demo(app: axum::Router) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// passport_axum::serve(listener, app)
///     .with_graceful_shutdown(async { tokio::signal::ctrl_c().await.ok(); })
///     .await
/// # }
/// ```
pub fn serve(listener: TcpListener, app: Router) -> Serve {
    Serve {
        listener,
        app,
        options: ServeOptions::default(),
        shutdown: Box::pin(std::future::pending()),
    }
}

impl Serve {
    /// Replaces the limits.
    pub fn options(mut self, options: ServeOptions) -> Self {
        self.options = options;
        self
    }

    /// Stops accepting when `signal` completes, lets requests in flight finish (up to
    /// [`ServeOptions::shutdown_grace`]), then returns.
    pub fn with_graceful_shutdown(mut self, signal: impl Future<Output = ()> + Send + 'static) -> Self {
        self.shutdown = Box::pin(signal);
        self
    }
}

impl IntoFuture for Serve {
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(run(self))
    }
}

/// Connections open per address.
#[derive(Debug, Default)]
struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in [`PerAddress`], given back when dropped.
struct Slot {
    table: Arc<PerAddress>,
    key: IpAddr,
    _total: OwnedSemaphorePermit,
}

impl PerAddress {
    fn take(table: &Arc<Self>, key: IpAddr, limit: usize) -> bool {
        let mut open = table.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = open.entry(key).or_insert(0);
        if *count >= limit {
            return false;
        }
        *count += 1;
        true
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        release(&self.table, self.key);
    }
}

async fn run(serve: Serve) -> io::Result<()> {
    let Serve {
        listener,
        app,
        options,
        mut shutdown,
    } = serve;
    let app = app.layer(tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        options.request_timeout,
    ));
    let total = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let trusted: Arc<[ipnet::IpNet]> = options.trusted_proxies.clone().into();
    let per_address = Arc::new(PerAddress::default());
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(options.http2_max_concurrent_streams)
        .max_pending_accept_reset_streams(Some(20))
        .keep_alive_interval(Some(options.header_read_timeout))
        .keep_alive_timeout(options.header_read_timeout);
    // The version is sniffed here, under the header deadline (hyper-util's own sniffing waits
    // for the first bytes without one, so a silent connection would stay open).
    let http1 = Arc::new(builder.clone().http1_only());
    let http2 = Arc::new(builder.http2_only());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, or a connection reset before accept: wait a moment
                    // rather than spin.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let key = address_key(peer.ip());
        // A proxy carries many clients: only the total cap applies to it.
        let per_address_cap = if trusted.iter().any(|net| net.contains(&peer.ip())) {
            usize::MAX
        } else {
            options.max_connections_per_address
        };
        if !PerAddress::take(&per_address, key, per_address_cap) {
            tracing::debug!(%key, "connection refused: too many from this address");
            continue;
        }
        let Ok(Ok(permit)) = tokio::time::timeout(WAIT_FOR_SLOT, total.clone().acquire_owned()).await else {
            release(&per_address, key);
            tracing::debug!("connection refused: the server is at its connection cap");
            continue;
        };
        let slot = Slot {
            table: per_address.clone(),
            key,
            _total: permit,
        };
        let trusted_here = trusted.clone();
        let service = app.clone().map_request(move |mut request: hyper::Request<Incoming>| {
            let client = if trusted_here.is_empty() {
                peer
            } else {
                SocketAddr::new(client_address(peer.ip(), request.headers(), &trusted_here), 0)
            };
            request.extensions_mut().insert(ConnectInfo::<SocketAddr>(client));
            request.map(axum::body::Body::new)
        });
        let watcher = graceful.watcher();
        let (http1, http2) = (http1.clone(), http2.clone());
        let deadline = options.header_read_timeout;
        tokio::spawn(async move {
            let Some(is_http2) = sniff_http2(&stream, deadline).await else {
                tracing::debug!("connection closed: nothing arrived before the header deadline");
                return;
            };
            let builder = if is_http2 { http2 } else { http1 };
            let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            if let Err(err) = watcher.watch(connection).await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(options.shutdown_grace) => {
            tracing::warn!("shutdown grace period over: closing the connections still open");
        }
    }
    Ok(())
}

/// HTTP/2's connection preface (RFC 9113 §3.4).
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether a connection speaks HTTP/2 (prior knowledge) rather than HTTP/1, from its first
/// bytes, left unread; `None` when it closes or sends nothing within `deadline`.
async fn sniff_http2(stream: &tokio::net::TcpStream, deadline: Duration) -> Option<bool> {
    let mut buf = [0u8; HTTP2_PREFACE.len()];
    let sniff = async {
        loop {
            let n = stream.peek(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            if buf[..n] != HTTP2_PREFACE[..n] {
                return Some(false);
            }
            if n == HTTP2_PREFACE.len() {
                return Some(true);
            }
            // A preface arriving in pieces: peeking again returns at once, so wait a little.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(deadline, sniff).await.ok().flatten()
}

/// Gives back an address's count taken by [`PerAddress::take`] (for a connection refused at the
/// total cap).
fn release(table: &Arc<PerAddress>, key: IpAddr) {
    let mut open = table.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(count) = open.get_mut(&key) {
        *count -= 1;
        if *count == 0 {
            open.remove(&key);
        }
    }
}
