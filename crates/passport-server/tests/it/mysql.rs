//! MySQL / MariaDB through the `passport` binary, once: the HTTP and CLI suites run on SQLite
//! and PostgreSQL (`backend_test!`), and passport-sqlx runs the store conformance suite on
//! MySQL, so this checks only the wiring: `passport migrate` and `passport serve` with a
//! `mysql://` database URL, a client-credentials token, its introspection, and its revocation
//! seen there. Skipped (the reason printed) unless `PASSPORT_TEST_MYSQL_URL` is set.

use serde_json::{Value, json};

use crate::cli::{Deployment, migration_count, post_token};

#[tokio::test]
async fn migrate_and_serve_on_mysql() {
    let Some(db) = passport_sqlx::testing::mysql().await else {
        return;
    };
    let site = Deployment::new(db);
    assert!(site.database_url().starts_with("mysql://"), "{}", site.database_url());
    let expected = migration_count("mysql");
    assert_eq!(site.json(&["migrate", "--json"]), json!({"applied": expected}));
    assert_eq!(site.json(&["migrate", "--json"]), json!({"applied": 0}));
    site.keys();
    let gateway = site.json(&["client", "--client", "--can-introspect", "--name", "Gateway", "--json"]);
    let gateway = (
        gateway["client_id"].as_str().unwrap().to_owned(),
        gateway["client_secret"].as_str().unwrap().to_owned(),
    );
    let (billing, billing_secret) = site.client(&["--client", "--name", "Billing"]);
    let billing_secret = billing_secret.unwrap();

    let server = site.serve();
    let http = reqwest::Client::new();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", billing.as_str()),
        ("client_secret", billing_secret.as_str()),
    ];
    let (status, body) = post_token(&http, &server.url("/oauth/token"), &form).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let introspect = || async {
        let response = http
            .post(server.url("/oauth/introspect"))
            .basic_auth(&gateway.0, Some(&gateway.1))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()
    };
    let answer = introspect().await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["client_id"], billing.as_str(), "{answer}");

    let revoked = http
        .post(server.url("/oauth/revoke"))
        .basic_auth(&billing, Some(&billing_secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(introspect().await, json!({"active": false}), "revoked in the database");
}
