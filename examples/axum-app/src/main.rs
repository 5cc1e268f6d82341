//! An axum API protected by passport, the way a library user wires it:
//! storage, keys, scopes, the OAuth routes, and guarded handlers.
//!
//! ```text
//! cargo run -p example-axum-app            # listens on 127.0.0.1:3000, data in ./example-data
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use example_axum_app::{AppState, app};
use passport::Passport;
use passport_sqlx::{Database, SqlUserProvider};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt::init();
    let data = std::path::Path::new("example-data");
    std::fs::create_dir_all(data)?;
    if !data.join(passport::PRIVATE_KEY_FILE).exists() {
        passport::write_keys(data, 2048, false)?;
    }

    let db = Database::connect("sqlite://example-data/app.db").await?;
    db.migrate().await?;
    db.migrate_sessions().await?;
    db.migrate_users().await?;
    let passport = Passport::builder()
        .tokens_can([("orders:read", "Read your orders"), ("orders:create", "Place orders")])
        .default_scopes(["orders:read"])
        .tokens_expire_in(chrono::TimeDelta::days(15))
        .refresh_tokens_expire_in(chrono::TimeDelta::days(30))
        .enable_password_grant(true)
        .load_keys_from(data)
        .store(db.store())
        .user_provider("users", Arc::new(SqlUserProvider::new(db.users())))
        .server_secret(db.server_secret().await?)
        .build()?;

    let state = AppState {
        pages: passport_axum::Pages::new(&passport, db.sessions()),
        passport,
        shop_name: Arc::from("Example Shop"),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(state).into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}
