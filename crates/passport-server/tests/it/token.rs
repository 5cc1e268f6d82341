//! `POST /oauth/token`: every grant and its errors (RFC 6749 §4–6, Passport 13 wire format).

use serde_json::Value;

use crate::common::{TestServer, backends};

#[tokio::test]
async fn client_credentials_token_calls_nothing_as_a_user() {
    for db in backends().await {
        let server = TestServer::start_default(db).await;
        let (id, secret) = server.service_client().await;
        let response = server
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", "read"),
            ])
            .await;
        assert_eq!(response.status(), 200, "{}", server.kind);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert!(body.get("refresh_token").is_none());
        let token = body["access_token"].as_str().unwrap();
        let user = server
            .http
            .get(server.url("/api/user"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(user.status(), 401, "a client-credentials token never resolves to a user");
    }
}
