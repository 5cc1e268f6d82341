//! Rate limiting of `/oauth/token` per client address (README: For operators, `token_rate_limit`;
//! Passport's `throttle`).

use crate::common::TestServer;

#[tokio::test]
async fn token_endpoint_answers_429_with_retry_after_past_the_limit() {
    let db = passport_sqlx::testing::sqlite();
    let server = TestServer::start(db, |b| b.token_rate_limit(3)).await;
    let form = [("grant_type", "client_credentials"), ("client_id", "nobody")];
    for _ in 0..3 {
        let response = server.token(&form).await;
        assert_eq!(response.status(), 401, "within the limit the request is handled");
    }
    let response = server.token(&form).await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    // Protected resources are not throttled by the token endpoint's limiter.
    let user = server.http.get(server.url("/api/user")).send().await.unwrap();
    assert_eq!(user.status(), 401);
}
