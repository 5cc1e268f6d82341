//! Running as a fleet (README: Running several instances): purges that never stop the server,
//! several `passport serve` processes on one PostgreSQL database serving one person's flows in
//! turn, and a database that goes away and comes back.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use serde_json::Value;

use crate::common::TestServer;

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
