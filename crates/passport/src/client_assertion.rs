//! `private_key_jwt` client authentication (RFC 7523 §2.2, OpenID Connect Core §9): the client
//! signs a short-lived JWT with a key of its registered JWK Set instead of sending a secret.
//!
//! What is accepted: `client_assertion_type` `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`;
//! an RS256, PS256, ES256 or EdDSA signature by a key of the client's `jwks` (by `kid`, or any
//! key of the header's algorithm without one); `iss` and `sub` the client id; `aud` exactly the
//! issuer, as a string or as an array of that one value — never the token endpoint's URL nor a
//! list with other audiences, so an assertion made for another server cannot be replayed here
//! (the 2025 audience-injection advisory; FAPI 2.0 §5.3.2.1); `exp` in the future and at most
//! ten minutes ahead; a `jti` used once, recorded in the store until `exp` so that every
//! instance of a fleet refuses a replay. `client_secret_jwt` is not offered: it needs the plain
//! secret, and only its hash is stored.

use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm as JwtAlgorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::error::StoreError;

/// The `client_assertion_type` of RFC 7523 §2.2.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Signature algorithms accepted for client assertions.
pub const ASSERTION_ALGORITHMS: [&str; 4] = ["RS256", "PS256", "ES256", "EdDSA"];

/// The longest an assertion may still be valid for.
const MAX_AHEAD: TimeDelta = TimeDelta::minutes(10);

/// Why an assertion was refused (logged; the client only ever sees `invalid_client`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AssertionError {
    #[error("the assertion is not a JWT the server can read")]
    Malformed,
    #[error("the assertion's algorithm is not accepted")]
    Algorithm,
    #[error("no key of the client's JWK Set verifies the assertion")]
    Signature,
    #[error("iss and sub must be the client id")]
    Subject,
    #[error("aud must be the issuer alone")]
    Audience,
    #[error("the assertion has expired, is not yet valid, or is valid for too long")]
    Time,
    #[error("the assertion has no jti")]
    NoJti,
    #[error("the assertion's jti was already used")]
    Replayed,
    #[error("the store failed: {0}")]
    Store(String),
    #[error("the client's jwks_uri could not be read: {0}")]
    Fetch(String),
}

/// Fetches the JWK Set a `private_key_jwt` client publishes at its `jwks_uri`. An
/// implementation must bound what it does with an address a client chose: https only, no
/// redirects, no private or loopback addresses, a time and a size limit
/// (`passport_axum::HttpJwksFetcher` does all of that).
#[async_trait::async_trait]
pub trait JwksFetcher: Send + Sync + std::fmt::Debug {
    /// The document at `uri`, or why not.
    async fn fetch(&self, uri: &str) -> Result<String, String>;
}

/// How long a fetched key set is used.
const JWKS_TTL: TimeDelta = TimeDelta::minutes(5);
/// A key set at least this old is fetched again when no key of it verifies an assertion (the
/// client may have rotated its keys).
const REFETCH_AFTER: TimeDelta = TimeDelta::seconds(30);
/// Key sets kept at most.
const JWKS_CACHE_CAPACITY: usize = 1000;

/// A fetched key set and when it was fetched.
type Fetched = (DateTime<Utc>, std::sync::Arc<str>);

/// Fetched key sets by URI.
#[derive(Debug, Default)]
pub(crate) struct JwksCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, Fetched>>,
}

impl JwksCache {
    fn get(&self, uri: &str, now: DateTime<Utc>) -> Option<Fetched> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(uri).filter(|(at, _)| now - *at < JWKS_TTL).cloned()
    }

    fn put(&self, uri: &str, jwks: std::sync::Arc<str>, now: DateTime<Utc>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= JWKS_CACHE_CAPACITY {
            entries.retain(|_, (at, _)| now - *at < JWKS_TTL);
            if entries.len() >= JWKS_CACHE_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(uri.to_owned(), (now, jwks));
    }
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Value>,
    exp: Option<i64>,
    nbf: Option<i64>,
    jti: Option<String>,
}

/// Parses a registered JWK Set: public keys only, each usable for signatures, at least one.
pub(crate) fn parse_jwks(text: &str) -> Result<JwkSet, String> {
    let raw: Value = serde_json::from_str(text).map_err(|_| "jwks is not JSON".to_owned())?;
    let keys = raw
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| "jwks must be a JWK Set: {\"keys\": [...]}".to_owned())?;
    if keys.is_empty() {
        return Err("jwks holds no keys".to_owned());
    }
    // RFC 7517 §4: private members never belong in a registered set.
    for key in keys {
        if ["d", "p", "q", "dp", "dq", "qi", "k"]
            .iter()
            .any(|m| key.get(m).is_some())
        {
            return Err("jwks must hold public keys only".to_owned());
        }
    }
    let set: JwkSet = serde_json::from_value(raw).map_err(|e| format!("jwks holds an unusable key: {e}"))?;
    for key in &set.keys {
        DecodingKey::from_jwk(key).map_err(|e| format!("jwks holds an unusable key: {e}"))?;
    }
    Ok(set)
}

/// The `sub` of an assertion, read without checking anything: which client it claims to be,
/// for a request that names the client only in the assertion (RFC 7523 §3).
pub(crate) fn claimed_client(assertion: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = assertion.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    claims.sub
}

fn algorithm(name: JwtAlgorithm) -> Option<JwtAlgorithm> {
    matches!(
        name,
        JwtAlgorithm::RS256 | JwtAlgorithm::PS256 | JwtAlgorithm::ES256 | JwtAlgorithm::EdDSA
    )
    .then_some(name)
}

fn key_algorithm_matches(key: &Jwk, alg: JwtAlgorithm) -> bool {
    use jsonwebtoken::jwk::AlgorithmParameters as P;
    match &key.algorithm {
        P::RSA(_) => matches!(alg, JwtAlgorithm::RS256 | JwtAlgorithm::PS256),
        P::EllipticCurve(_) => alg == JwtAlgorithm::ES256,
        P::OctetKeyPair(_) => alg == JwtAlgorithm::EdDSA,
        _ => false,
    }
}

/// The replay record of a jti: a hash of the client and the jti.
fn replay_key(client_id: &str, jti: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(client_id.as_bytes());
    hash.update([0]);
    hash.update(jti.as_bytes());
    hex::encode(hash.finalize())
}

/// Verifies `assertion` for `client_id` against its JWK Set `jwks`, with `issuer` the only
/// accepted audience; `record_jti` stores the jti until the given instant and answers false
/// when it was there already.
pub(crate) async fn verify<F, Fut>(
    assertion: &str,
    client_id: &str,
    jwks: &str,
    issuer: &str,
    now: DateTime<Utc>,
    record_jti: F,
) -> Result<(), AssertionError>
where
    F: FnOnce(String, DateTime<Utc>) -> Fut,
    Fut: std::future::Future<Output = Result<bool, StoreError>>,
{
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| AssertionError::Malformed)?;
    let alg = algorithm(header.alg).ok_or(AssertionError::Algorithm)?;
    let set = parse_jwks(jwks).map_err(|_| AssertionError::Signature)?;
    let candidates: Vec<&Jwk> = set
        .keys
        .iter()
        .filter(|k| match (&header.kid, &k.common.key_id) {
            (Some(kid), Some(id)) => kid == id,
            (Some(_), None) => false,
            (None, _) => true,
        })
        .filter(|k| key_algorithm_matches(k, alg))
        .collect();
    let mut validation = Validation::new(alg);
    // Time and audience are checked below, against the server's clock and rules.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let mut claims = None;
    for key in candidates {
        let Ok(decoding) = DecodingKey::from_jwk(key) else {
            continue;
        };
        if let Ok(data) = jsonwebtoken::decode::<Claims>(assertion, &decoding, &validation) {
            claims = Some(data.claims);
            break;
        }
    }
    let claims = claims.ok_or(AssertionError::Signature)?;
    if claims.iss.as_deref() != Some(client_id) || claims.sub.as_deref() != Some(client_id) {
        return Err(AssertionError::Subject);
    }
    let audience_ok = match &claims.aud {
        Some(Value::String(aud)) => aud == issuer,
        Some(Value::Array(list)) => list.len() == 1 && list[0].as_str() == Some(issuer),
        _ => false,
    };
    if !audience_ok {
        return Err(AssertionError::Audience);
    }
    let exp = claims
        .exp
        .and_then(|e| DateTime::from_timestamp(e, 0))
        .ok_or(AssertionError::Time)?;
    let skew = TimeDelta::seconds(30);
    if exp + skew <= now || exp > now + MAX_AHEAD {
        return Err(AssertionError::Time);
    }
    if claims.nbf.is_some_and(|nbf| nbf > (now + skew).timestamp()) {
        return Err(AssertionError::Time);
    }
    let jti = claims.jti.filter(|j| !j.is_empty()).ok_or(AssertionError::NoJti)?;
    match record_jti(replay_key(client_id, &jti), exp + skew).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(AssertionError::Replayed),
        Err(err) => Err(AssertionError::Store(err.to_string())),
    }
}

impl crate::passport::Passport {
    /// The key set at `uri`, from the cache unless `fresh`; and how old it is.
    async fn client_jwks(&self, uri: &str, fresh: bool) -> Result<(std::sync::Arc<str>, TimeDelta), AssertionError> {
        let now = self.now();
        if !fresh && let Some((at, jwks)) = self.inner_jwks_cache().get(uri, now) {
            return Ok((jwks, now - at));
        }
        let fetcher = self
            .inner_jwks_fetcher()
            .ok_or_else(|| AssertionError::Fetch("no fetcher is configured".to_owned()))?;
        let text = fetcher.fetch(uri).await.map_err(AssertionError::Fetch)?;
        parse_jwks(&text).map_err(AssertionError::Fetch)?;
        let jwks: std::sync::Arc<str> = text.into();
        self.inner_jwks_cache().put(uri, jwks.clone(), now);
        Ok((jwks, TimeDelta::zero()))
    }

    /// Verifies an assertion of `client` against its inline `jwks` or the set at its
    /// `jwks_uri` (fetched again once when it is old and no key of it verifies).
    pub(crate) async fn verify_assertion_of(
        &self,
        client: &crate::Client,
        assertion: &str,
    ) -> Result<(), AssertionError> {
        let id = client.id.as_str();
        if let Some(jwks) = client.jwks.as_deref() {
            return self.verify_client_assertion(assertion, id, jwks).await;
        }
        let uri = client.jwks_uri.as_deref().ok_or(AssertionError::Signature)?;
        let (jwks, age) = self.client_jwks(uri, false).await?;
        match self.verify_client_assertion(assertion, id, &jwks).await {
            Err(AssertionError::Signature) if age >= REFETCH_AFTER => {
                let (jwks, _) = self.client_jwks(uri, true).await?;
                self.verify_client_assertion(assertion, id, &jwks).await
            }
            other => other,
        }
    }

    /// Verifies a `private_key_jwt` assertion of `client_id` (see the module documentation);
    /// the issuer must be configured, since it is the only audience accepted.
    pub(crate) async fn verify_client_assertion(
        &self,
        assertion: &str,
        client_id: &str,
        jwks: &str,
    ) -> Result<(), AssertionError> {
        let issuer = self.settings().issuer.as_deref().ok_or(AssertionError::Audience)?;
        let now = self.now();
        let store = self.store().clone();
        verify(assertion, client_id, jwks, issuer, now, |id, expires| async move {
            store.record_client_assertion(&id, expires, now).await
        })
        .await
    }
}
