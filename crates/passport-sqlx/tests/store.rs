//! The store conformance suite: the same checks on every backend (SQLite always, PostgreSQL when
//! `PASSPORT_TEST_DATABASE_URL` is set).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use passport::{AccessTokenRecord, Client, GrantType, PurgeFilter, RefreshTokenRecord, StoreError};
use passport_sqlx::Database;
use passport_sqlx::testing;

fn now() -> DateTime<Utc> {
    #[allow(clippy::disallowed_methods)]
    Utc::now().trunc_subsecs(0)
}

fn client(id: &str) -> Client {
    Client {
        id: id.to_owned(),
        owner_id: None,
        name: "Store Test".to_owned(),
        secret_hash: Some("sha256:abc".to_owned()),
        provider: Some("users".to_owned()),
        redirect_uris: vec!["https://a.example/cb".to_owned(), "http://127.0.0.1/cb".to_owned()],
        grant_types: vec![GrantType::Password, GrantType::RefreshToken],
        scopes: Some(vec!["read".to_owned()]),
        skips_authorization: true,
        revoked: false,
        created_at: now(),
        updated_at: now(),
    }
}

fn access(id: &str, client_id: &str, user: Option<&str>) -> AccessTokenRecord {
    AccessTokenRecord {
        id: id.to_owned(),
        user_id: user.map(str::to_owned),
        client_id: client_id.to_owned(),
        name: None,
        scopes: vec!["read".to_owned(), "write".to_owned()],
        family_id: None,
        revoked: false,
        created_at: now(),
        expires_at: now() + TimeDelta::hours(1),
    }
}

fn access_in(id: &str, family: &str) -> AccessTokenRecord {
    AccessTokenRecord {
        family_id: Some(family.to_owned()),
        ..access(id, "c1", Some("7"))
    }
}

fn refresh(id: &str, access_id: &str, client_id: &str, family: &str) -> RefreshTokenRecord {
    RefreshTokenRecord {
        id: id.to_owned(),
        access_token_id: access_id.to_owned(),
        client_id: client_id.to_owned(),
        user_id: Some("7".to_owned()),
        scopes: vec!["read".to_owned()],
        family_id: family.to_owned(),
        revoked: false,
        created_at: now(),
        expires_at: now() + TimeDelta::days(1),
    }
}

async fn each_backend(test: impl AsyncFn(Database, &'static str)) {
    for t in testing::all().await {
        let db = Database::connect(&t.url).await.unwrap();
        assert!(db.migrate().await.unwrap() >= 1, "{}: first migrate applies", t.kind);
        assert_eq!(db.migrate().await.unwrap(), 0, "{}: second migrate is a no-op", t.kind);
        test(db.clone(), t.kind).await;
        db.close().await;
    }
}

#[tokio::test]
async fn clients_round_trip_and_revoke() {
    each_backend(async |db, kind| {
        let store = db.store();
        let c = client("0000-a");
        store.insert_client(&c).await.unwrap();
        assert_eq!(store.find_client("0000-a").await.unwrap(), Some(c.clone()), "{kind}");
        assert!(
            matches!(store.insert_client(&c).await, Err(StoreError::Conflict)),
            "{kind}"
        );
        assert_eq!(store.find_client("missing").await.unwrap(), None, "{kind}");
        assert_eq!(store.list_clients().await.unwrap().len(), 1, "{kind}");
        store.update_client_secret("0000-a", "sha256:def").await.unwrap();
        assert!(store.revoke_client("0000-a").await.unwrap(), "{kind}");
        assert!(!store.revoke_client("0000-a").await.unwrap(), "{kind}: revoking twice");
        let found = store.find_client("0000-a").await.unwrap().unwrap();
        assert!(found.revoked);
        assert_eq!(found.secret_hash.as_deref(), Some("sha256:def"));
    })
    .await;
}

#[tokio::test]
async fn token_status_joins_client_and_follows_revocation() {
    each_backend(async |db, kind| {
        let store = db.store();
        store.insert_client(&client("c1")).await.unwrap();
        store.insert_tokens(&access("t1", "c1", Some("7")), None).await.unwrap();
        let status = store.token_status("t1").await.unwrap().unwrap();
        assert!(!status.revoked && !status.client_revoked, "{kind}");
        assert_eq!(status.user_id.as_deref(), Some("7"));
        assert_eq!(status.client_provider.as_deref(), Some("users"));
        assert_eq!(store.token_status("nope").await.unwrap(), None);
        assert_eq!(
            store.find_access_token("t1").await.unwrap().unwrap().scopes,
            ["read", "write"]
        );

        store.revoke_client("c1").await.unwrap();
        assert!(
            store.token_status("t1").await.unwrap().unwrap().client_revoked,
            "{kind}"
        );
        assert!(store.revoke_access_token("t1").await.unwrap());
        assert!(
            !store.revoke_access_token("t1").await.unwrap(),
            "{kind}: already revoked"
        );
        assert!(store.token_status("t1").await.unwrap().unwrap().revoked);
    })
    .await;
}

#[tokio::test]
async fn refresh_rotation_is_single_use_and_family_revocation_reaches_descendants() {
    each_backend(async |db, kind| {
        let store = db.store();
        store.insert_client(&client("c1")).await.unwrap();
        store
            .insert_tokens(&access_in("a1", "fam"), Some(&refresh("r1", "a1", "c1", "fam")))
            .await
            .unwrap();
        let r = store.find_refresh_token("r1").await.unwrap().unwrap();
        assert_eq!(r.family_id, "fam", "{kind}");
        assert!(!r.revoked);

        let rotated = store
            .rotate_refresh_token("r1", &access_in("a2", "fam"), Some(&refresh("r2", "a2", "c1", "fam")))
            .await
            .unwrap();
        assert!(rotated, "{kind}: first rotation wins");
        assert!(store.find_refresh_token("r1").await.unwrap().unwrap().revoked);
        assert!(
            store.token_status("a1").await.unwrap().unwrap().revoked,
            "{kind}: old access revoked"
        );
        let again = store
            .rotate_refresh_token("r1", &access_in("a3", "fam"), Some(&refresh("r3", "a3", "c1", "fam")))
            .await
            .unwrap();
        assert!(!again, "{kind}: a used token cannot rotate again");
        assert_eq!(
            store.find_access_token("a3").await.unwrap(),
            None,
            "{kind}: loser stored nothing"
        );

        store.revoke_refresh_family("fam").await.unwrap();
        assert!(store.find_refresh_token("r2").await.unwrap().unwrap().revoked, "{kind}");
        assert!(store.token_status("a2").await.unwrap().unwrap().revoked, "{kind}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rotations_have_exactly_one_winner() {
    each_backend(async |db, kind| {
        let store = db.store();
        store.insert_client(&client("c1")).await.unwrap();
        store
            .insert_tokens(&access("a0", "c1", Some("7")), Some(&refresh("r0", "a0", "c1", "f")))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..12 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let a = access(&format!("a-{i}"), "c1", Some("7"));
                let r = refresh(&format!("r-{i}"), &a.id, "c1", "f");
                store.rotate_refresh_token("r0", &a, Some(&r)).await.unwrap()
            }));
        }
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1, "{kind}");
    })
    .await;
}

#[tokio::test]
async fn purge_removes_only_what_it_is_asked_to() {
    each_backend(async |db, kind| {
        let store = db.store();
        store.insert_client(&client("c1")).await.unwrap();
        let mut old = access("old", "c1", None);
        old.expires_at = now() - TimeDelta::days(30);
        store.insert_tokens(&old, None).await.unwrap();
        store.insert_tokens(&access("live", "c1", None), None).await.unwrap();
        store.insert_tokens(&access("dead", "c1", None), None).await.unwrap();
        store.revoke_access_token("dead").await.unwrap();

        let counts = store
            .purge(PurgeFilter {
                revoked: true,
                expired_before: None,
                now: now(),
            })
            .await
            .unwrap();
        assert_eq!(counts.access_tokens, 1, "{kind}: only the revoked one");
        let counts = store
            .purge(PurgeFilter {
                revoked: false,
                expired_before: Some(now() - TimeDelta::days(7)),
                now: now(),
            })
            .await
            .unwrap();
        assert_eq!(counts.access_tokens, 1, "{kind}: only the long-expired one");
        assert!(store.find_access_token("live").await.unwrap().is_some());
    })
    .await;
}

#[tokio::test]
async fn users_are_unique_by_email_and_deleting_revokes_their_tokens() {
    each_backend(async |db, kind| {
        let users = db.users();
        let id = users
            .create_user("Ann", "Ann@Example.com", "$argon2id$x", now())
            .await
            .unwrap();
        assert!(
            matches!(
                users
                    .create_user("Ann 2", "ann@example.com", "$argon2id$y", now())
                    .await,
                Err(StoreError::Conflict)
            ),
            "{kind}"
        );
        let found = users.find_user_by_email(" ANN@example.com ").await.unwrap().unwrap();
        assert_eq!(found.id, id);
        assert_eq!(found.email, "ann@example.com");
        assert!(
            users.find_user_by_id(&format!("0{id}")).await.unwrap().is_none(),
            "{kind}: no numeric coercion"
        );
        assert!(users.find_user_by_id("not-a-number").await.unwrap().is_none());

        let store = db.store();
        store.insert_client(&client("c1")).await.unwrap();
        store.insert_tokens(&access("ut", "c1", Some(&id)), None).await.unwrap();
        assert!(users.delete_user(&id).await.unwrap());
        assert!(!users.delete_user(&id).await.unwrap());
        assert!(store.token_status("ut").await.unwrap().unwrap().revoked, "{kind}");
        assert!(users.list_users().await.unwrap().is_empty());
    })
    .await;
}
