//! The bearer check's cache (README: Performance): a revocation is refused on the next request
//! on the instance that made it, and within one second on another instance of the same
//! database, whatever was revoked: a token, a refresh family, a client, a user.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{TestServer, api_user};

/// Polls `server`'s `/api/user` with `token` until it is refused; how long that took.
async fn refused_within(server: &TestServer, token: &str, limit: Duration, what: &str) -> Duration {
    let start = Instant::now();
    loop {
        if api_user(server, token).await.0 == 401 {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: still accepted after {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A password-grant token pair for a new user; returns (user id, client, access, refresh).
async fn pair(server: &TestServer, email: &str) -> (String, (String, String), String, String) {
    let user = server.user(email, "cache password").await;
    let client = server.password_client().await;
    let response = server
        .token(&[
            ("grant_type", "password"),
            ("client_id", &client.0),
            ("client_secret", &client.1),
            ("username", email),
            ("password", "cache password"),
            ("scope", "read"),
        ])
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    (user, client, access, refresh)
}

fn jti(token: &str) -> String {
    crate::cli::jwt_claims(token)["jti"].as_str().unwrap().to_owned()
}

backend_test! {
    /// Two instances on one database, both with the token cached: each revocation made on A is
    /// refused by A on the next request and by B within a second.
    #[flavor(multi_thread, 2)]
    async fn revocations_reach_the_cache_here_at_once_and_elsewhere_within_a_second(db) {
        let a = TestServer::start_default(db).await;
        let b = a.beside(|builder| builder).await;
        let limit = Duration::from_secs(1);

        // A token.
        let (_, _, token, _) = pair(&a, "t@example.com").await;
        for server in [&a, &b] {
            for _ in 0..2 {
                assert_eq!(api_user(server, &token).await.0, 200, "checked, then cached");
            }
        }
        assert!(a.passport.revoke_token(&jti(&token)).await.unwrap());
        assert_eq!(api_user(&a, &token).await.0, 401, "at once where it was revoked");
        let took = refused_within(&b, &token, limit, "a revoked token").await;
        eprintln!("token revocation reached the other instance in {took:?}");

        // A refresh family (revoked at the revocation endpoint, RFC 7009).
        let (_, client, token, refresh) = pair(&a, "f@example.com").await;
        for server in [&a, &b] {
            assert_eq!(api_user(server, &token).await.0, 200);
        }
        let revoked = a
            .http
            .post(a.url("/oauth/revoke"))
            .basic_auth(&client.0, Some(&client.1))
            .form(&[("token", refresh.as_str()), ("token_type_hint", "refresh_token")])
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), 200);
        assert_eq!(api_user(&a, &token).await.0, 401, "the family, at once");
        refused_within(&b, &token, limit, "a revoked family").await;

        // A client.
        let (_, client, token, _) = pair(&a, "c@example.com").await;
        for server in [&a, &b] {
            assert_eq!(api_user(server, &token).await.0, 200);
        }
        a.passport.revoke_client(&client.0).await.unwrap();
        assert_eq!(api_user(&a, &token).await.0, 401, "the client, at once");
        refused_within(&b, &token, limit, "a revoked client").await;

        // A client revoked by writing its row, as another application would: every instance
        // learns it from the feed.
        let (_, client, token, _) = pair(&a, "w@example.com").await;
        for server in [&a, &b] {
            assert_eq!(api_user(server, &token).await.0, 200);
        }
        assert!(a.db.store().revoke_client(&client.0).await.unwrap());
        for server in [&a, &b] {
            refused_within(server, &token, limit, "a client revoked in the database").await;
        }

        // A user.
        let (user, _, token, _) = pair(&a, "u@example.com").await;
        for server in [&a, &b] {
            assert_eq!(api_user(server, &token).await.0, 200);
        }
        a.passport.delete_user(None, &user).await.unwrap();
        assert_eq!(api_user(&a, &token).await.0, 401, "the user, at once");
        refused_within(&b, &token, limit, "a deleted user").await;
    }
}

/// `GET /api/token` with `token`: status and body.
async fn api_token(server: &TestServer, token: &str) -> (u16, Value) {
    let response = server
        .http
        .get(server.url("/api/token"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A client-credentials request; its status and access token.
async fn client_token(server: &TestServer, id: &str, secret: &str) -> (u16, Option<String>) {
    let response = server
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["access_token"].as_str().map(str::to_owned))
}

backend_test! {
    /// The token endpoint keeps client rows and successful slow-hash (bcrypt, as imported from
    /// Laravel) verifications in memory: a wrong secret is still refused after a right one, a
    /// revoked client is refused on the next request here and within a second elsewhere, and
    /// `/api/token` answers the token's own claims.
    #[flavor(multi_thread, 2)]
    async fn cached_clients_and_secret_checks_follow_revocation(db) {
        let a = TestServer::start_default(db).await;
        let b = a.beside(|builder| builder).await;
        let (id, _) = a.service_client().await;
        let hashed = bcrypt::hash("laravel secret", 4).unwrap();
        a.db.store().update_client_secret(&id, &hashed).await.unwrap();

        for server in [&a, &b] {
            for _ in 0..2 {
                let (status, token) = client_token(server, &id, "laravel secret").await;
                assert_eq!(status, 200, "the bcrypt secret, checked then remembered");
                let (status, claims) = api_token(server, &token.unwrap()).await;
                assert_eq!(status, 200);
                assert_eq!(claims["client_id"], id.as_str());
                assert!(claims.get("user_id").is_none(), "a client's token has no user: {claims}");
            }
            assert_eq!(client_token(server, &id, "laravel secreT").await.0, 401, "a wrong one is still checked");
        }
        let (_, token) = client_token(&a, &id, "laravel secret").await;
        let token = token.unwrap();
        for server in [&a, &b] {
            assert_eq!(api_token(server, &token).await.0, 200);
        }

        a.passport.revoke_client(&id).await.unwrap();
        assert_eq!(client_token(&a, &id, "laravel secret").await.0, 401, "at once where it was revoked");
        assert_eq!(api_token(&a, &token).await.0, 401);
        let start = Instant::now();
        while client_token(&b, &id, "laravel secret").await.0 != 401 {
            assert!(start.elapsed() < Duration::from_secs(1), "the other instance still issues");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(api_token(&b, &token).await.0, 401);
    }
}

/// `token_cache(false)`: every check reads the database, so even a client revoked by writing its
/// row (which a cache would learn only from the feed) is refused on the very next request.
#[tokio::test]
async fn with_the_cache_off_a_row_written_under_the_server_counts_at_once() {
    let server = TestServer::start(passport_sqlx::testing::sqlite(), |b| b.token_cache(false)).await;
    let (_, client, token, _) = pair(&server, "off@example.com").await;
    for _ in 0..2 {
        assert_eq!(api_user(&server, &token).await.0, 200);
    }
    assert!(server.passport.token_cache().is_empty(), "nothing remembered");
    assert!(server.db.store().revoke_client(&client.0).await.unwrap());
    assert_eq!(api_user(&server, &token).await.0, 401, "at once, without the feed");
    assert_eq!(
        client_token(&server, &client.0, &client.1).await.0,
        401,
        "the token endpoint too"
    );
}

/// A cached answer is the cache's only for the very same token: one character different is a
/// miss, and the signature check refuses it.
#[tokio::test]
async fn a_token_differing_in_one_character_is_not_the_cached_one() {
    let server = TestServer::start_default(passport_sqlx::testing::sqlite()).await;
    let (_, _, token, _) = pair(&server, "x@example.com").await;
    assert_eq!(api_user(&server, &token).await.0, 200);
    assert_eq!(api_user(&server, &token).await.0, 200, "now cached");
    let mut bytes = token.into_bytes();
    let last = bytes.len() - 1;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    assert_eq!(api_user(&server, &tampered).await.0, 401);
    assert!(!server.passport.token_cache().is_empty(), "the cache is in use");
}
