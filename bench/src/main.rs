//! The benchmark's baseline: a trivial axum handler (`GET /` answers a short JSON body) on the
//! same runtime configuration as `passport serve` (Tokio's multi-threaded runtime, one worker
//! per core). `bench/run.sh` measures it beside the token check.
//! Usage: `trivial-axum 127.0.0.1:18090`.

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let bind = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18090".to_owned());
    let app = Router::new().route(
        "/",
        get(|| async { ([("content-type", "application/json")], r#"{"ok":true}"#) }),
    );
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    axum::serve(listener, app).await
}
