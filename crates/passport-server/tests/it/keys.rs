//! Signing keys kept in the database (README: OpenID Connect, keys and rotation): the key file
//! seeds the set and keeps its `kid`; `passport keys rotate` publishes a new key at once and
//! signs with it only after the publish-ahead time; `passport keys retire` ends a key's tokens;
//! two servers on one database agree on all of it within seconds, without a restart.

// Helpers outside #[test] functions panic on failure too: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

use crate::cli::{Deployment, ServerProcess, api_user};

/// A personal access token for `user`, minted by the CLI.
fn personal_token(site: &Deployment, user: &str) -> String {
    let out = site.json(&["token", "personal", "--user", user, "--name", "key test", "--json"]);
    out["access_token"].as_str().expect("access_token").to_owned()
}

fn kid_of(token: &str) -> String {
    decode_header(token).unwrap().kid.expect("a kid")
}

async fn jwks(http: &reqwest::Client, server: &ServerProcess) -> JwkSet {
    let response = http.get(server.url("/oauth/jwks")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn kids(set: &JwkSet) -> Vec<String> {
    set.keys.iter().filter_map(|k| k.common.key_id.clone()).collect()
}

/// Polls `check` every 200 ms until it holds, for at most `within`.
async fn eventually(within: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Verifies `token` as a third party would: with the key its `kid` names in `set`.
fn verifies_with(set: &JwkSet, token: &str) -> bool {
    let header = decode_header(token).unwrap();
    let Some(jwk) = header.kid.as_deref().and_then(|kid| set.find(kid)) else {
        return false;
    };
    let mut validation = Validation::new(header.alg);
    validation.validate_aud = false;
    decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_and_retirement_reach_two_servers_on_one_database() {
    let mut site = Deployment::sqlite();
    site.set_env("PASSPORT_ISSUER", "https://id.example.test");
    site.keys();
    site.json(&["install", "--json"]);
    let user = site.user("kim@example.com", "kim's password");
    let first = personal_token(&site, &user);
    let first_kid = kid_of(&first);

    let listed = site.json(&["keys", "list", "--json"]);
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "the key file seeded the set: {listed}"
    );
    assert_eq!(listed[0]["kid"], first_kid.as_str(), "and kept its kid");
    assert_eq!(listed[0]["state"], "current");

    let a = site.serve();
    let b = site.serve();
    let http = reqwest::Client::new();
    for server in [&a, &b] {
        assert_eq!(api_user(&http, server, &first).await.0, 200);
    }

    // A new ES256 key: in both JWKS documents at once, signing only after three seconds.
    let rotated = site.json(&[
        "keys",
        "rotate",
        "--algorithm",
        "es256",
        "--publish-ahead",
        "3s",
        "--json",
    ]);
    assert_eq!(rotated["state"], "published", "{rotated}");
    assert_eq!(rotated["algorithm"], "ES256");
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    let published_at = Instant::now();
    for server in [&a, &b] {
        eventually(Duration::from_secs(5), "the new key in the JWKS", async || {
            kids(&jwks(&http, server).await).contains(&new_kid)
        })
        .await;
    }
    if published_at.elapsed() < Duration::from_secs(2) {
        assert_eq!(kid_of(&personal_token(&site, &user)), first_kid, "not signing yet");
    }

    // After the publish-ahead time the new key signs, on the CLI and on both servers.
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(published_at.elapsed())).await;
    let second = personal_token(&site, &user);
    assert_eq!(kid_of(&second), new_kid);
    assert_eq!(format!("{:?}", decode_header(&second).unwrap().alg), "ES256");
    for server in [&a, &b] {
        let set = jwks(&http, server).await;
        assert!(verifies_with(&set, &first), "the old token, by a third party");
        assert!(verifies_with(&set, &second), "the new token, by a third party");
        assert_eq!(api_user(&http, server, &second).await.0, 200);
        assert_eq!(
            api_user(&http, server, &first).await.0,
            200,
            "tokens minted before keep working"
        );
    }
    let listed = site.json(&["keys", "list", "--json"]);
    let states: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["verifying", "current"]);

    // The current key cannot be retired; the old one can, and then its tokens are refused.
    let refusal = site.fails(&["keys", "retire", &new_kid]);
    assert!(refusal.contains("rotate"), "{refusal}");
    let retired = site.json(&["keys", "retire", &first_kid, "--json"]);
    assert_eq!(retired["state"], "retired");
    for server in [&a, &b] {
        eventually(Duration::from_secs(5), "the retired key's token refused", async || {
            api_user(&http, server, &first).await.0 == 401
        })
        .await;
        assert!(
            !kids(&jwks(&http, server).await).contains(&first_kid),
            "gone from the JWKS"
        );
        assert_eq!(api_user(&http, server, &second).await.0, 200);
    }
}

/// `passport keys --algorithm` writes key files of that algorithm, which seed the set.
#[tokio::test]
async fn key_files_of_each_algorithm_seed_the_set() {
    for algorithm in ["es256", "eddsa"] {
        let site = Deployment::sqlite();
        site.json(&["keys", "--algorithm", algorithm, "--json"]);
        site.json(&["install", "--json"]);
        let user = site.user("lee@example.com", "lee's password");
        let token = personal_token(&site, &user);
        let header = decode_header(&token).unwrap();
        assert_eq!(format!("{:?}", header.alg).to_lowercase(), algorithm);
        let listed = site.json(&["keys", "list", "--json"]);
        assert_eq!(listed[0]["kid"], header.kid.unwrap().as_str());
    }
    let site = Deployment::sqlite();
    let line = site.fails(&["keys", "--algorithm", "hs256"]);
    assert!(line.contains("hs256"), "{line}");
}
