//! The orders API with OAuth:
//!
//! ```text
//! cargo run -p example-orders-api          # listens on 127.0.0.1:3001, data in ./orders-data
//! ```

use std::str::FromStr;
use std::time::Duration;

use example_orders_api::{AppState, app, passport};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt::init();
    let data = std::path::Path::new("orders-data");
    std::fs::create_dir_all(data)?;
    if !data.join(::passport::PRIVATE_KEY_FILE).exists() {
        ::passport::write_keys(data, 2048, false)?;
    }
    // The application's own pool; passport shares it (a busy timeout is required, WAL advised).
    let options = SqliteConnectOptions::from_str("sqlite://orders-data/orders.db")?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await?;
    let passport = passport(&pool, |b| b.load_keys_from(data)).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
    println!("listening on http://{}", listener.local_addr()?);
    passport_axum::serve(listener, app(AppState { passport, pool })).await?;
    Ok(())
}
