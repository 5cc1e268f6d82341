//! The store conformance suite: what every [`Store`] must do, as checks that take any
//! `Arc<dyn Store>` (a fresh, empty, migrated one) and panic on a violation. The in-memory
//! store runs it here; `passport-sqlx` runs it on SQLite and PostgreSQL, one generated test per
//! check and backend. [`CHECKS`] lists them all, so a runner can prove it misses none.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};

use crate::authorize::AuthorizationExtensions;
use crate::client::{Client, GrantType};
use crate::error::StoreError;
use crate::pkce::PkceMethod;
use crate::redirect::RedirectUri;
use crate::store::{
    AccessTokenRecord, AuthCodeRecord, DeviceCodeRecord, PendingAuthorizationRecord, PurgeFilter, PushedRequestRecord,
    RefreshTokenRecord, Store,
};
use crate::testing::memory::scopes;

/// A check of the suite.
pub type Check = fn(Arc<dyn Store>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Every check, by name.
pub const CHECKS: &[(&str, Check)] = &[
    ("dpop_proofs_are_accepted_once_until_they_expire", |s| {
        Box::pin(dpop_proofs_are_accepted_once_until_they_expire(s))
    }),
    ("clients_round_trip_and_revoke", |s| {
        Box::pin(clients_round_trip_and_revoke(s))
    }),
    ("token_status_joins_client_and_follows_revocation", |s| {
        Box::pin(token_status_joins_client_and_follows_revocation(s))
    }),
    ("token_batches_are_stored_all_or_none", |s| {
        Box::pin(token_batches_are_stored_all_or_none(s))
    }),
    (
        "refresh_rotation_is_single_use_and_family_revocation_reaches_descendants",
        |s| Box::pin(refresh_rotation_is_single_use_and_family_revocation_reaches_descendants(s)),
    ),
    ("a_retry_within_the_grace_replaces_only_an_unused_pair", |s| {
        Box::pin(a_retry_within_the_grace_replaces_only_an_unused_pair(s))
    }),
    ("concurrent_rotations_have_exactly_one_winner", |s| {
        Box::pin(concurrent_rotations_have_exactly_one_winner(s))
    }),
    ("purge_removes_only_what_it_is_asked_to", |s| {
        Box::pin(purge_removes_only_what_it_is_asked_to(s))
    }),
    ("auth_codes_redeem_once_and_keep_their_extensions", |s| {
        Box::pin(auth_codes_redeem_once_and_keep_their_extensions(s))
    }),
    ("device_codes_are_decided_once_and_redeemed_once", |s| {
        Box::pin(device_codes_are_decided_once_and_redeemed_once(s))
    }),
    ("consent_requests_are_single_use_and_bound_to_their_session", |s| {
        Box::pin(consent_requests_are_single_use_and_bound_to_their_session(s))
    }),
    ("pushed_requests_are_single_use_bound_to_their_client_and_expire", |s| {
        Box::pin(pushed_requests_are_single_use_bound_to_their_client_and_expire(s))
    }),
    ("revoking_a_users_grants_reaches_tokens_codes_and_owned_clients", |s| {
        Box::pin(revoking_a_users_grants_reaches_tokens_codes_and_owned_clients(s))
    }),
    ("clients_owned_by_a_user_can_be_listed_and_updated", |s| {
        Box::pin(clients_owned_by_a_user_can_be_listed_and_updated(s))
    }),
    ("signing_keys_are_stored_once_and_retired_once", |s| {
        Box::pin(signing_keys_are_stored_once_and_retired_once(s))
    }),
];

/// One instant for the whole run, whole seconds: records built at different moments of a
/// test compare equal (a wall clock read twice can straddle a second on a loaded machine).
fn now() -> DateTime<Utc> {
    static NOW: std::sync::OnceLock<DateTime<Utc>> = std::sync::OnceLock::new();
    #[allow(clippy::disallowed_methods)]
    *NOW.get_or_init(|| Utc::now().trunc_subsecs(0))
}

/// A password client with a secret hash, a provider and a scope list.
pub fn client(id: &str) -> Client {
    Client {
        id: id.into(),
        owner_id: None,
        name: "Store Test".to_owned(),
        secret_hash: Some("sha256:abc".to_owned()),
        provider: Some("users".to_owned()),
        redirect_uris: vec![
            RedirectUri::parse("https://a.example/cb").unwrap(),
            RedirectUri::parse("http://127.0.0.1/cb").unwrap(),
        ],
        grant_types: vec![GrantType::Password, GrantType::RefreshToken],
        scopes: Some(scopes(&["read"])),
        skips_authorization: true,
        post_logout_redirect_uris: vec![RedirectUri::parse("https://a.example/bye").unwrap()],
        can_introspect: true,
        require_pushed_authorization_requests: true,
        dpop_bound_access_tokens: true,
        jwks: Some(r#"{"keys":[]}"#.to_owned()),
        fapi_profile: true,
        jwks_uri: Some("https://client.example/jwks".to_owned()),
        revoked: false,
        created_at: now(),
        updated_at: now(),
    }
}

fn access(id: &str, client_id: &str, user: Option<&str>) -> AccessTokenRecord {
    AccessTokenRecord {
        id: id.to_owned(),
        user_id: user.map(str::to_owned),
        client_id: client_id.into(),
        name: None,
        scopes: scopes(&["read", "write"]),
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
        client_id: client_id.into(),
        user_id: Some("7".to_owned()),
        scopes: scopes(&["read"]),
        family_id: family.to_owned(),
        revoked: false,
        rotated_at: None,
        rotated_to: None,
        // A fixed instant: two records built across a second boundary still compare equal.
        auth_time: DateTime::from_timestamp(1_800_000_000, 0),
        dpop_jkt: Some(format!("jkt-of-{id}")),
        created_at: now(),
        expires_at: now() + TimeDelta::days(1),
    }
}

fn code(id: &str, user: &str) -> AuthCodeRecord {
    AuthCodeRecord {
        id: id.to_owned(),
        user_id: user.to_owned(),
        client_id: "c1".into(),
        scopes: scopes(&["read"]),
        redirect_uri: Some("https://a.example/cb".to_owned()),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned()),
        code_challenge_method: Some(PkceMethod::S256),
        extensions: AuthorizationExtensions {
            nonce: Some("n-0S6_WzA2Mj".to_owned()),
            max_age: Some(300),
            auth_time: Some(now().timestamp() - 60),
            dpop_jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".to_owned()),
        },
        revoked: false,
        created_at: now(),
        expires_at: now() + TimeDelta::minutes(10),
    }
}

fn device(id: &str, user_code: &str) -> DeviceCodeRecord {
    DeviceCodeRecord {
        id: id.to_owned(),
        user_code: user_code.to_owned(),
        client_id: "c1".into(),
        scopes: scopes(&["read"]),
        user_id: None,
        user_approved_at: None,
        last_polled_at: None,
        interval: 5,
        revoked: false,
        created_at: now(),
        expires_at: now() + TimeDelta::minutes(10),
    }
}

/// Clients are stored, found, listed once, and revoked once.
pub async fn clients_round_trip_and_revoke(store: Arc<dyn Store>) {
    let c = client("0000-a");
    store.insert_client(&c).await.unwrap();
    assert_eq!(store.find_client("0000-a").await.unwrap(), Some(c.clone()));
    assert!(matches!(store.insert_client(&c).await, Err(StoreError::Conflict)));
    assert_eq!(store.find_client("missing").await.unwrap(), None);
    assert_eq!(store.list_clients().await.unwrap().len(), 1);
    store.update_client_secret("0000-a", "sha256:def").await.unwrap();
    assert!(store.revoke_client("0000-a").await.unwrap());
    assert!(!store.revoke_client("0000-a").await.unwrap(), "revoking twice");
    let found = store.find_client("0000-a").await.unwrap().unwrap();
    assert!(found.revoked);
    assert_eq!(found.secret_hash.as_deref(), Some("sha256:def"));
}

/// The guard's read joins the token with its client and sees revocations of either.
pub async fn token_status_joins_client_and_follows_revocation(store: Arc<dyn Store>) {
    store.insert_client(&client("c1")).await.unwrap();
    store.insert_tokens(&access("t1", "c1", Some("7")), None).await.unwrap();
    let status = store.token_status("t1").await.unwrap().unwrap();
    assert!(!status.revoked && !status.client_revoked);
    assert_eq!(status.user_id.as_deref(), Some("7"));
    assert_eq!(status.client_provider.as_deref(), Some("users"));
    assert_eq!(store.token_status("nope").await.unwrap(), None);
    assert_eq!(
        store.find_access_token("t1").await.unwrap().unwrap().scopes,
        ["read", "write"]
    );

    store.revoke_client("c1").await.unwrap();
    assert!(store.token_status("t1").await.unwrap().unwrap().client_revoked);
    assert!(store.revoke_access_token("t1").await.unwrap());
    assert!(!store.revoke_access_token("t1").await.unwrap(), "already revoked");
    assert!(store.token_status("t1").await.unwrap().unwrap().revoked);
}

/// Group commit's write: a batch of token pairs lands whole, or (one row refused) not at all.
pub async fn token_batches_are_stored_all_or_none(store: Arc<dyn Store>) {
    store.insert_client(&client("c1")).await.unwrap();
    let batch = vec![
        (access("b1", "c1", Some("7")), None),
        (access_in("b2", "fam"), Some(refresh("rb2", "b2", "c1", "fam"))),
        (access("b3", "c1", None), None),
    ];
    store.insert_token_batch(&batch).await.unwrap();
    for id in ["b1", "b2", "b3"] {
        assert!(!store.token_status(id).await.unwrap().unwrap().revoked, "{id} stored");
    }
    assert_eq!(store.find_access_token("b1").await.unwrap().unwrap(), batch[0].0);
    assert_eq!(
        store.find_refresh_token("rb2").await.unwrap().unwrap(),
        refresh("rb2", "b2", "c1", "fam")
    );

    // b1 exists: the whole batch is refused, and its new rows are not stored either.
    let clash = vec![
        (access("b4", "c1", None), Some(refresh("rb4", "b4", "c1", "fam"))),
        (access("b1", "c1", None), None),
    ];
    assert!(store.insert_token_batch(&clash).await.is_err());
    assert_eq!(store.find_access_token("b4").await.unwrap(), None, "rolled back");
    assert_eq!(store.find_refresh_token("rb4").await.unwrap(), None, "rolled back");
    store.insert_token_batch(&[]).await.unwrap();
}

/// Rotation uses a refresh token up atomically; family revocation reaches what it produced.
pub async fn refresh_rotation_is_single_use_and_family_revocation_reaches_descendants(store: Arc<dyn Store>) {
    store.insert_client(&client("c1")).await.unwrap();
    store
        .insert_tokens(&access_in("a1", "fam"), Some(&refresh("r1", "a1", "c1", "fam")))
        .await
        .unwrap();
    let r = store.find_refresh_token("r1").await.unwrap().unwrap();
    assert_eq!(r.family_id, "fam");
    assert!(!r.revoked);
    assert_eq!(r, refresh("r1", "a1", "c1", "fam"), "stored as given (auth_time too)");

    let rotated = store
        .rotate_refresh_token("r1", &access_in("a2", "fam"), Some(&refresh("r2", "a2", "c1", "fam")))
        .await
        .unwrap();
    assert!(rotated, "first rotation wins");
    assert!(store.find_refresh_token("r1").await.unwrap().unwrap().revoked);
    assert_eq!(
        store.find_refresh_token("r2").await.unwrap().unwrap().auth_time,
        refresh("r2", "a2", "c1", "fam").auth_time,
        "the new token keeps the OpenID Connect auth_time"
    );
    assert!(
        store.token_status("a1").await.unwrap().unwrap().revoked,
        "old access revoked"
    );
    let again = store
        .rotate_refresh_token("r1", &access_in("a3", "fam"), Some(&refresh("r3", "a3", "c1", "fam")))
        .await
        .unwrap();
    assert!(!again, "a used token cannot rotate again");
    assert_eq!(
        store.find_access_token("a3").await.unwrap(),
        None,
        "loser stored nothing"
    );

    let revoked = store.revoke_refresh_family("fam").await.unwrap();
    assert_eq!(revoked, ["a2"], "the family's live access tokens");
    assert!(store.find_refresh_token("r2").await.unwrap().unwrap().revoked);
    assert!(store.token_status("a2").await.unwrap().unwrap().revoked);
}

/// Rotation records when and into what; a retry within the grace swaps the unused child pair
/// for a new one, once, and never a child that was used.
pub async fn a_retry_within_the_grace_replaces_only_an_unused_pair(store: Arc<dyn Store>) {
    store.insert_client(&client("c1")).await.unwrap();
    store
        .insert_tokens(&access_in("a1", "fam"), Some(&refresh("r1", "a1", "c1", "fam")))
        .await
        .unwrap();
    let a2 = access_in("a2", "fam");
    assert!(
        store
            .rotate_refresh_token("r1", &a2, Some(&refresh("r2", "a2", "c1", "fam")))
            .await
            .unwrap()
    );
    let r1 = store.find_refresh_token("r1").await.unwrap().unwrap();
    assert_eq!(
        r1.rotated_at,
        Some(a2.created_at),
        "rotated at the new pair's issue time"
    );
    assert_eq!(r1.rotated_to.as_deref(), Some("r2"));
    assert_eq!(store.find_refresh_token("r2").await.unwrap().unwrap().rotated_at, None);

    let regranted = store
        .regrant_refresh_token("r1", "r2", &access_in("a3", "fam"), &refresh("r3", "a3", "c1", "fam"))
        .await
        .unwrap();
    assert_eq!(regranted.as_deref(), Some("a2"), "the unused child's access token");
    assert!(store.find_refresh_token("r2").await.unwrap().unwrap().revoked);
    assert!(store.token_status("a2").await.unwrap().unwrap().revoked);
    assert!(!store.token_status("a3").await.unwrap().unwrap().revoked);
    let r1 = store.find_refresh_token("r1").await.unwrap().unwrap();
    assert_eq!(r1.rotated_to.as_deref(), Some("r3"));
    assert_eq!(
        r1.rotated_at,
        Some(a2.created_at),
        "the grace still counts from the first rotation"
    );

    let stale = store
        .regrant_refresh_token("r1", "r2", &access_in("a4", "fam"), &refresh("r4", "a4", "c1", "fam"))
        .await
        .unwrap();
    assert_eq!(stale, None, "a second retry naming the old child changes nothing");
    assert_eq!(store.find_access_token("a4").await.unwrap(), None);

    // The client used its new pair: the answer was not lost, so no retry replaces it.
    assert!(
        store
            .rotate_refresh_token("r3", &access_in("a5", "fam"), Some(&refresh("r5", "a5", "c1", "fam")))
            .await
            .unwrap()
    );
    let used = store
        .regrant_refresh_token("r1", "r3", &access_in("a6", "fam"), &refresh("r6", "a6", "c1", "fam"))
        .await
        .unwrap();
    assert_eq!(used, None, "a used child is not replaced");
    assert_eq!(store.find_access_token("a6").await.unwrap(), None);
    assert!(!store.token_status("a5").await.unwrap().unwrap().revoked);
}

/// Of twelve concurrent rotations of one refresh token, exactly one wins.
pub async fn concurrent_rotations_have_exactly_one_winner(store: Arc<dyn Store>) {
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
    assert_eq!(wins, 1);
}

/// Purge deletes revoked rows, or rows expired before the cut-off, and nothing else.
pub async fn purge_removes_only_what_it_is_asked_to(store: Arc<dyn Store>) {
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
    assert_eq!(counts.access_tokens, 1, "only the revoked one");
    let counts = store
        .purge(PurgeFilter {
            revoked: false,
            expired_before: Some(now() - TimeDelta::days(7)),
            now: now(),
        })
        .await
        .unwrap();
    assert_eq!(counts.access_tokens, 1, "only the long-expired one");
    assert!(store.find_access_token("live").await.unwrap().is_some());
}

/// A code keeps its PKCE challenge and extension parameters, and redeems exactly once.
pub async fn auth_codes_redeem_once_and_keep_their_extensions(store: Arc<dyn Store>) {
    store.insert_client(&client("c1")).await.unwrap();
    let c = code("code-1", "7");
    store.insert_auth_code(&c).await.unwrap();
    assert_eq!(store.find_auth_code("code-1").await.unwrap(), Some(c));
    assert!(
        store
            .redeem_auth_code("code-1", &access_in("a1", "code-1"), None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .redeem_auth_code("code-1", &access_in("a2", "code-1"), None)
            .await
            .unwrap(),
        "a code redeems once"
    );
    assert_eq!(
        store.find_access_token("a2").await.unwrap(),
        None,
        "the loser stored nothing"
    );
    assert!(store.find_auth_code("code-1").await.unwrap().unwrap().revoked);
    let granted = store.granted_scopes("7", "c1", now()).await.unwrap();
    assert_eq!(granted, [vec!["read".to_owned(), "write".to_owned()]]);
}

/// A device authorization is decided once, polled, and redeemed once after approval.
pub async fn device_codes_are_decided_once_and_redeemed_once(store: Arc<dyn Store>) {
    store.insert_client(&client("c1")).await.unwrap();
    store.insert_device_code(&device("d1", "BCDFGHJK")).await.unwrap();
    assert!(
        matches!(
            store.insert_device_code(&device("d2", "BCDFGHJK")).await,
            Err(StoreError::Conflict)
        ),
        "user codes are unique"
    );
    let found = store.find_pending_user_code("BCDFGHJK", now()).await.unwrap().unwrap();
    assert_eq!(found.id, "d1");
    assert!(
        !store
            .redeem_device_code("d1", &access("a0", "c1", Some("7")), None)
            .await
            .unwrap(),
        "not approved yet"
    );
    store.record_device_poll("d1", now(), 10).await.unwrap();
    assert_eq!(store.find_device_code("d1").await.unwrap().unwrap().interval, 10);
    assert!(store.decide_device_code("d1", "7", Some(now())).await.unwrap());
    assert!(
        !store.decide_device_code("d1", "8", None).await.unwrap(),
        "decided once"
    );
    assert_eq!(store.find_pending_user_code("BCDFGHJK", now()).await.unwrap(), None);
    assert!(
        store
            .redeem_device_code("d1", &access("a1", "c1", Some("7")), None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .redeem_device_code("d1", &access("a2", "c1", Some("7")), None)
            .await
            .unwrap()
    );
    assert_eq!(store.find_access_token("a2").await.unwrap(), None);
}

/// A consent request is taken once, only by its session, and not after it expired.
pub async fn consent_requests_are_single_use_and_bound_to_their_session(store: Arc<dyn Store>) {
    let pending = |id: &str, expires_at| PendingAuthorizationRecord {
        id: id.to_owned(),
        session_id: "s1".to_owned(),
        user_id: "7".to_owned(),
        payload: serde_json::json!({"client_id": "c1"}),
        expires_at,
    };
    store
        .insert_pending(&pending("p1", now() + TimeDelta::minutes(5)))
        .await
        .unwrap();
    assert_eq!(
        store.take_pending("p1", "s2", now()).await.unwrap(),
        None,
        "another session"
    );
    let taken = store.take_pending("p1", "s1", now()).await.unwrap().unwrap();
    assert_eq!(taken.payload["client_id"], "c1");
    assert_eq!(store.take_pending("p1", "s1", now()).await.unwrap(), None, "single use");
    store
        .insert_pending(&pending("p2", now() - TimeDelta::seconds(1)))
        .await
        .unwrap();
    assert_eq!(store.take_pending("p2", "s1", now()).await.unwrap(), None, "expired");
}

/// A pushed authorization request (RFC 9126) is taken once, only by its client (another
/// client's attempt leaves it in place), not after it expired, and purged once expired.
pub async fn pushed_requests_are_single_use_bound_to_their_client_and_expire(store: Arc<dyn Store>) {
    let pushed = |id: &str, expires_at| PushedRequestRecord {
        id: id.to_owned(),
        client_id: "c1".into(),
        payload: serde_json::json!({"client_id": "c1", "state": "s"}),
        expires_at,
    };
    store
        .insert_pushed_request(&pushed("r1", now() + TimeDelta::seconds(60)))
        .await
        .unwrap();
    assert!(matches!(
        store
            .insert_pushed_request(&pushed("r1", now() + TimeDelta::seconds(60)))
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.take_pushed_request("r1", "c2", now()).await.unwrap(),
        None,
        "another client"
    );
    let taken = store.take_pushed_request("r1", "c1", now()).await.unwrap().unwrap();
    assert_eq!(taken, pushed("r1", now() + TimeDelta::seconds(60)));
    assert_eq!(
        store.take_pushed_request("r1", "c1", now()).await.unwrap(),
        None,
        "single use"
    );
    store
        .insert_pushed_request(&pushed("r2", now() - TimeDelta::seconds(1)))
        .await
        .unwrap();
    store
        .insert_pushed_request(&pushed("r3", now() - TimeDelta::seconds(1)))
        .await
        .unwrap();
    assert_eq!(
        store.take_pushed_request("r2", "c1", now()).await.unwrap(),
        None,
        "expired"
    );
    let counts = store
        .purge(PurgeFilter {
            revoked: false,
            expired_before: None,
            now: now(),
        })
        .await
        .unwrap();
    assert_eq!(counts.sessions, 1, "the expired push left is purged");
    assert_eq!(
        store
            .take_pushed_request("r3", "c1", now() - TimeDelta::minutes(1))
            .await
            .unwrap(),
        None
    );
}

/// Revoking a user's grants reaches their tokens, codes and device codes, the clients they own
/// and every token of those clients; it returns what it revoked.
pub async fn revoking_a_users_grants_reaches_tokens_codes_and_owned_clients(store: Arc<dyn Store>) {
    store.insert_client(&client("c1")).await.unwrap();
    let mut owned = client("mine");
    owned.owner_id = Some("7".to_owned());
    store.insert_client(&owned).await.unwrap();
    // A client they owned and that was revoked alone, its tokens still live.
    let mut old = client("old");
    old.owner_id = Some("7".to_owned());
    store.insert_client(&old).await.unwrap();
    store
        .insert_tokens(&access("t-old", "old", Some("9")), None)
        .await
        .unwrap();
    store.revoke_client("old").await.unwrap();
    store
        .insert_tokens(&access("t-own", "c1", Some("7")), None)
        .await
        .unwrap();
    store
        .insert_tokens(&access("t-other", "mine", Some("8")), None)
        .await
        .unwrap();
    store
        .insert_tokens(&access("t-bystander", "c1", Some("8")), None)
        .await
        .unwrap();
    store.insert_auth_code(&code("code-7", "7")).await.unwrap();
    store.insert_device_code(&device("d7", "BCDFGHJK")).await.unwrap();
    store.decide_device_code("d7", "7", Some(now())).await.unwrap();

    let revoked = store.revoke_user_grants("7").await.unwrap();
    let mut tokens = revoked.access_tokens.clone();
    tokens.sort();
    assert_eq!(tokens, ["t-old", "t-other", "t-own"]);
    assert_eq!(revoked.clients, ["mine"]);
    assert!(store.find_client("mine").await.unwrap().unwrap().revoked);
    assert!(!store.find_client("c1").await.unwrap().unwrap().revoked);
    assert!(!store.token_status("t-bystander").await.unwrap().unwrap().revoked);
    assert!(store.find_auth_code("code-7").await.unwrap().unwrap().revoked);
    assert!(store.find_device_code("d7").await.unwrap().unwrap().revoked);
    let again = store.revoke_user_grants("7").await.unwrap();
    assert!(
        again.access_tokens.is_empty() && again.clients.is_empty(),
        "nothing twice"
    );
}

/// A user's live clients are listed by name, and can be renamed and re-pointed.
pub async fn clients_owned_by_a_user_can_be_listed_and_updated(store: Arc<dyn Store>) {
    for (id, name) in [("b", "Beta"), ("a", "Alpha"), ("z", "Gone")] {
        let mut c = client(id);
        c.name = name.to_owned();
        c.owner_id = Some("7".to_owned());
        store.insert_client(&c).await.unwrap();
    }
    store.revoke_client("z").await.unwrap();
    let names: Vec<String> = store
        .clients_owned_by("7")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["Alpha", "Beta"]);
    let uris = [RedirectUri::parse("https://new.example/cb").unwrap()];
    let later = now() + TimeDelta::seconds(5);
    let bye = [RedirectUri::parse("https://new.example/bye").unwrap()];
    store.update_client("a", "Alpha 2", &uris, &bye, later).await.unwrap();
    let updated = store.find_client("a").await.unwrap().unwrap();
    assert_eq!(updated.name, "Alpha 2");
    assert_eq!(updated.redirect_uris, ["https://new.example/cb"]);
    assert_eq!(updated.post_logout_redirect_uris, ["https://new.example/bye"]);
    assert!(updated.can_introspect, "kept");
    assert_eq!(updated.updated_at, later);
}

/// Signing keys: stored once per kid, listed as stored, retired once.
pub async fn signing_keys_are_stored_once_and_retired_once(store: Arc<dyn Store>) {
    let key = crate::keyring::StoredKey {
        kid: "k1".to_owned(),
        algorithm: "ES256".to_owned(),
        private_key: "v1.sealed".to_owned(),
        public_key: "-----BEGIN PUBLIC KEY-----".to_owned(),
        created_at: now(),
        activates_at: now() + TimeDelta::minutes(5),
        retired_at: None,
    };
    store.insert_key(&key).await.unwrap();
    assert!(matches!(store.insert_key(&key).await, Err(StoreError::Conflict)));
    assert_eq!(store.list_keys().await.unwrap(), std::slice::from_ref(&key));
    let later = now() + TimeDelta::hours(1);
    assert!(store.retire_key("k1", later).await.unwrap());
    assert!(!store.retire_key("k1", later).await.unwrap(), "once");
    assert!(!store.retire_key("nope", later).await.unwrap());
    let listed = store.list_keys().await.unwrap();
    assert_eq!(listed[0].retired_at, Some(later));
}

/// A DPoP proof id is recorded once (a second record is a replay, RFC 9449 §11.1) until it
/// expires; purging forgets expired ones.
pub async fn dpop_proofs_are_accepted_once_until_they_expire(store: Arc<dyn Store>) {
    let expires = now() + TimeDelta::seconds(65);
    assert!(store.record_dpop_proof("p1", expires, now()).await.unwrap(), "new");
    assert!(!store.record_dpop_proof("p1", expires, now()).await.unwrap(), "replay");
    assert!(
        store.record_dpop_proof("p2", expires, now()).await.unwrap(),
        "another proof"
    );
    let later = expires + TimeDelta::seconds(1);
    assert!(
        store
            .record_dpop_proof("p1", later + TimeDelta::seconds(65), later)
            .await
            .unwrap(),
        "an expired record no longer counts"
    );
    let filter = PurgeFilter {
        revoked: false,
        expired_before: Some(later + TimeDelta::days(1)),
        now: later + TimeDelta::days(1),
    };
    store.purge(filter).await.unwrap();
    assert!(
        store
            .record_dpop_proof("p2", later + TimeDelta::days(2), later + TimeDelta::days(1))
            .await
            .unwrap()
    );
}
