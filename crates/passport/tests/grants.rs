//! Each grant, driven through `Passport::issue_token` on the in-memory store with a mock clock:
//! no database, no HTTP, no sleeping. Rows cite the RFC section they check. The HTTP suites of
//! `passport-server` check the same rules end to end on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex, OnceLock};

use chrono::TimeDelta;
use passport::testing::{MemoryStore, MemoryUsers, conformance};
use passport::{
    AuthorizationRequest, AuthorizeError, ClientKind, ErrorCode, Event, EventListener, GeneratedKeys, MockClock,
    NewClient, OAuthError, Passport, PasswordHasher, TokenInvalid, TokenRequest, TokenResponse,
};

fn keys() -> &'static GeneratedKeys {
    static KEYS: OnceLock<GeneratedKeys> = OnceLock::new();
    KEYS.get_or_init(|| passport::generate_keys(2048).unwrap())
}

/// Records events.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Event>>);

impl EventListener for Recorder {
    fn handle(&self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

struct Fixture {
    passport: Passport,
    clock: Arc<MockClock>,
    users: Arc<MemoryUsers>,
    events: Arc<Recorder>,
}

impl Fixture {
    fn new() -> Self {
        Self::with(|b| b)
    }

    fn with(configure: impl FnOnce(passport::PassportBuilder) -> passport::PassportBuilder) -> Self {
        let clock = Arc::new(MockClock::starting_now());
        let hasher = PasswordHasher::new(2);
        let users = Arc::new(MemoryUsers::new(hasher.clone()));
        let events = Arc::new(Recorder::default());
        let builder = Passport::builder()
            .tokens_can([("read", "Read"), ("write", "Write")])
            .keys_from_pem(keys().private_pem.clone(), Some(keys().public_pem.clone()))
            .store(Arc::new(MemoryStore::new()))
            .user_provider(passport::DEFAULT_PROVIDER, users.clone())
            .password_hasher(hasher)
            .enable_password_grant(true)
            .clock(clock.clone())
            .listen(events.clone());
        Self {
            passport: configure(builder).build().unwrap(),
            clock,
            users,
            events,
        }
    }

    async fn client(&self, kind: ClientKind, public: bool) -> (String, String) {
        let mut new = NewClient::new("Test", kind).public(public);
        if matches!(kind, ClientKind::AuthorizationCode { .. }) {
            new = new.redirect_uris(["https://app.example/cb", "http://127.0.0.1/cb"]);
        }
        let (client, secret) = self.passport.create_client(new).await.unwrap();
        (
            client.id.into_string(),
            secret.map(|s| s.expose_secret().to_owned()).unwrap_or_default(),
        )
    }

    async fn token(&self, params: &[(&str, &str)]) -> Result<TokenResponse, OAuthError> {
        let request = TokenRequest::new(params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())), None);
        self.passport.issue_token(&request).await
    }

    async fn events(&self) -> Vec<Event> {
        self.passport.flush_events().await;
        std::mem::take(&mut *self.events.0.lock().unwrap())
    }

    /// Approves an authorization request for user `7`; returns the code.
    async fn code(&self, client_id: &str, extra: &[(&str, &str)]) -> String {
        let mut pairs = vec![
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", "https://app.example/cb"),
            ("scope", "read"),
        ];
        pairs.extend_from_slice(extra);
        let request =
            AuthorizationRequest::from_pairs(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))).unwrap();
        let (validated, _) = self.passport.validate_authorization(&request).await.unwrap();
        let answer = self
            .passport
            .approve_authorization(&validated, "7", self.passport.now())
            .await
            .unwrap();
        let url = url::Url::parse(&answer.location().unwrap()).unwrap();
        url.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned()
    }
}

fn code_of(err: Result<TokenResponse, OAuthError>) -> ErrorCode {
    err.expect_err("an error").code()
}

/// The in-memory store passes the same conformance suite as the SQL stores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_conforms() {
    for (name, check) in conformance::CHECKS {
        eprintln!("conformance check: {name}");
        check(Arc::new(MemoryStore::new())).await;
    }
}

/// RFC 6749 §4.4: a confidential client gets a token for itself, with no user and no refresh
/// token, that the guard accepts.
#[tokio::test]
async fn client_credentials() {
    let f = Fixture::new();
    let (id, secret) = f.client(ClientKind::ClientCredentials, false).await;
    let issued = f
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("scope", "read"),
        ])
        .await
        .unwrap();
    assert!(issued.refresh_token.is_none());
    let token = f.passport.authenticate_bearer(&issued.access_token).await.unwrap();
    assert_eq!(token.client_id, id);
    assert_eq!(token.user_id, None, "never a user (RFC 6749 §4.4)");
    assert_eq!(token.scopes, ["read"]);
    // §2.3.1 / §5.2: wrong secret, then no secret.
    let wrong = f
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", "nope"),
        ])
        .await;
    assert_eq!(code_of(wrong), ErrorCode::InvalidClient);
    let missing = f
        .token(&[("grant_type", "client_credentials"), ("client_id", &id)])
        .await;
    assert_eq!(code_of(missing), ErrorCode::InvalidRequest);
    let events = f.events().await;
    assert!(
        events.contains(&Event::ClientAuthenticationFailed { client_id: id.clone() }),
        "{events:?}"
    );
}

/// RFC 6749 §4.3: the password grant; unknown user and wrong password look alike.
#[tokio::test]
async fn password() {
    let f = Fixture::new();
    f.users.add("7", "ada@example.com", "correct horse").await.unwrap();
    let (id, secret) = f.client(ClientKind::Password, false).await;
    let form = |user: &'static str, password: &'static str| {
        [
            ("grant_type", "password"),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
            ("username", user),
            ("password", password),
        ]
    };
    let issued = f.token(&form("ada@example.com", "correct horse")).await.unwrap();
    assert!(issued.refresh_token.is_some(), "password clients get refresh tokens");
    let token = f.passport.authenticate_bearer(&issued.access_token).await.unwrap();
    assert_eq!(token.user_id.as_deref(), Some("7"));
    let wrong = f.token(&form("ada@example.com", "wrong")).await.unwrap_err();
    let unknown = f.token(&form("nobody@example.com", "wrong")).await.unwrap_err();
    assert_eq!(wrong, unknown, "the same answer for both");
    assert_eq!(wrong.code(), ErrorCode::InvalidGrant);
    let failed = Event::UserAuthenticationFailed {
        client_id: Some(id.clone()),
    };
    let events = f.events().await;
    assert_eq!(events.iter().filter(|e| **e == failed).count(), 2, "{events:?}");
}

/// RFC 6749 §6 and RFC 9700 §4.14.2: rotation; a rotated token presented again revokes the
/// family; expiry by the clock; scope may narrow, never widen.
#[tokio::test]
async fn refresh_token() {
    let f = Fixture::with(|b| b.refresh_tokens_expire_in(TimeDelta::hours(1)));
    f.users.add("7", "ada@example.com", "pw-ada-1").await.unwrap();
    let (id, secret) = f.client(ClientKind::Password, false).await;
    let first = f
        .token(&[
            ("grant_type", "password"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("username", "ada@example.com"),
            ("password", "pw-ada-1"),
            ("scope", "read write"),
        ])
        .await
        .unwrap();
    let refresh = |token: &str, scope: &str| {
        let mut form = vec![
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            ("client_id".to_owned(), id.clone()),
            ("client_secret".to_owned(), secret.clone()),
            ("refresh_token".to_owned(), token.to_owned()),
        ];
        if !scope.is_empty() {
            form.push(("scope".to_owned(), scope.to_owned()));
        }
        let passport = f.passport.clone();
        async move { passport.issue_token(&TokenRequest::new(form, None)).await }
    };
    let wider = refresh(first.refresh_token.as_deref().unwrap(), "read admin").await;
    assert_eq!(code_of(wider), ErrorCode::InvalidScope, "§6: never wider");
    let second = refresh(first.refresh_token.as_deref().unwrap(), "read").await.unwrap();
    assert_eq!(second.scope, None, "§5.1: granted as asked");
    let narrowed = f.passport.authenticate_bearer(&second.access_token).await.unwrap();
    assert_eq!(narrowed.scopes, ["read"], "§6: narrowed");
    assert_eq!(
        f.passport.authenticate_bearer(&first.access_token).await,
        Err(TokenInvalid::Revoked),
        "the old access token is revoked"
    );
    // Reuse of the rotated token revokes the whole family, the new pair included.
    let reuse = refresh(first.refresh_token.as_deref().unwrap(), "").await;
    assert_eq!(code_of(reuse), ErrorCode::InvalidGrant);
    assert_eq!(
        f.passport.authenticate_bearer(&second.access_token).await,
        Err(TokenInvalid::Revoked)
    );
    assert_eq!(
        code_of(refresh(second.refresh_token.as_deref().unwrap(), "").await),
        ErrorCode::InvalidGrant
    );
    assert!(
        f.events()
            .await
            .contains(&Event::RefreshTokenReused { client_id: id.clone() })
    );

    // Expiry follows the clock.
    let third = f
        .token(&[
            ("grant_type", "password"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("username", "ada@example.com"),
            ("password", "pw-ada-1"),
        ])
        .await
        .unwrap();
    f.clock.advance(TimeDelta::hours(1));
    let expired = refresh(third.refresh_token.as_deref().unwrap(), "").await.unwrap_err();
    assert_eq!(expired.hint(), Some("Token has expired"));
}

/// RFC 6749 §4.1.3 and RFC 7636 §4.6: the code exchange, PKCE, the identical redirect URI,
/// single use with replay revocation (§4.1.2), and the ten-minute lifetime.
#[tokio::test]
async fn authorization_code() {
    let f = Fixture::new();
    let (id, secret) = f
        .client(ClientKind::AuthorizationCode { device_flow: false }, false)
        .await;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let code = f
        .code(&id, &[("code_challenge", challenge), ("code_challenge_method", "S256")])
        .await;
    let exchange = |code: &str, redirect: &str, verifier: &str| {
        let mut form = vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("client_id".to_owned(), id.clone()),
            ("client_secret".to_owned(), secret.clone()),
            ("code".to_owned(), code.to_owned()),
            ("redirect_uri".to_owned(), redirect.to_owned()),
        ];
        if !verifier.is_empty() {
            form.push(("code_verifier".to_owned(), verifier.to_owned()));
        }
        let passport = f.passport.clone();
        async move { passport.issue_token(&TokenRequest::new(form, None)).await }
    };
    assert_eq!(
        code_of(exchange(&code, "https://app.example/cb", "").await),
        ErrorCode::InvalidRequest,
        "RFC 7636 §4.5: the verifier is required"
    );
    assert_eq!(
        code_of(exchange(&code, "https://app.example/cb", &verifier.replace('d', "e")).await),
        ErrorCode::InvalidGrant,
        "RFC 7636 §4.6: a wrong verifier"
    );
    assert_eq!(
        code_of(exchange(&code, "http://127.0.0.1/cb", verifier).await),
        ErrorCode::InvalidGrant,
        "RFC 6749 §4.1.3: not the URI of the authorization request"
    );
    let issued = exchange(&code, "https://app.example/cb", verifier).await.unwrap();
    let token = f.passport.authenticate_bearer(&issued.access_token).await.unwrap();
    assert_eq!(token.user_id.as_deref(), Some("7"));
    assert_eq!(
        code_of(exchange(&code, "https://app.example/cb", verifier).await),
        ErrorCode::InvalidGrant,
        "single use"
    );
    assert_eq!(
        f.passport.authenticate_bearer(&issued.access_token).await,
        Err(TokenInvalid::Revoked),
        "§4.1.2: a replayed code revokes what it produced"
    );

    // A code issued without redirect_uri accepts a registered one, never another.
    let request = AuthorizationRequest::from_pairs(
        [("response_type", "code"), ("client_id", id.as_str())].map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    assert!(
        matches!(
            f.passport.validate_authorization(&request.unwrap()).await,
            Err(AuthorizeError::Show(e)) if e.code() == ErrorCode::InvalidRequest
        ),
        "two registered URIs: the request must name one"
    );

    // Ten minutes, by the clock.
    let late = f.code(&id, &[]).await;
    f.clock.advance(TimeDelta::minutes(10));
    let expired = exchange(&late, "https://app.example/cb", "").await.unwrap_err();
    assert_eq!(expired.hint(), Some("Authorization code has expired"));
}

/// OpenID Connect Core §3.1.2.1 parameters travel with the code.
#[tokio::test]
async fn nonce_and_max_age_reach_the_code() {
    let f = Fixture::new();
    let (id, _) = f
        .client(ClientKind::AuthorizationCode { device_flow: false }, false)
        .await;
    let request = AuthorizationRequest::from_pairs(
        [
            ("response_type", "code"),
            ("client_id", id.as_str()),
            ("redirect_uri", "https://app.example/cb"),
            ("nonce", "n-0S6_WzA2Mj"),
            ("max_age", "300"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .unwrap();
    let (validated, _) = f.passport.validate_authorization(&request).await.unwrap();
    assert_eq!(validated.extensions.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
    assert_eq!(validated.extensions.max_age, Some(300));
}

/// RFC 8628 §3.4–3.5: pending, slow_down (interval + 5 s), approval, tokens once, expiry.
#[tokio::test]
async fn device_code() {
    let f = Fixture::new();
    let (id, _) = f.client(ClientKind::Device, true).await;
    let device = f
        .passport
        .request_device_code(
            &TokenRequest::new(
                [
                    ("client_id".to_owned(), id.clone()),
                    ("scope".to_owned(), "read".to_owned()),
                ],
                None,
            ),
            "https://auth.example/oauth/device",
        )
        .await
        .unwrap();
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("client_id", id.as_str()),
        ("device_code", device.device_code.as_str()),
    ];
    let poll = || f.token(&form);
    assert_eq!(code_of(poll().await), ErrorCode::AuthorizationPending);
    assert_eq!(code_of(poll().await), ErrorCode::SlowDown, "polled at once");
    f.clock.advance(TimeDelta::seconds(10));
    assert_eq!(
        code_of(poll().await),
        ErrorCode::AuthorizationPending,
        "after the grown interval"
    );
    let record = f
        .passport
        .find_device_authorization(&device.user_code)
        .await
        .unwrap()
        .unwrap();
    assert!(f.passport.decide_device(&record.id, "7", true).await.unwrap());
    assert!(
        !f.passport.decide_device(&record.id, "8", false).await.unwrap(),
        "decided once"
    );
    let issued = poll().await.unwrap();
    assert!(issued.refresh_token.is_some());
    assert_eq!(code_of(poll().await), ErrorCode::InvalidGrant, "tokens once");

    let late = f
        .passport
        .request_device_code(
            &TokenRequest::new([("client_id".to_owned(), id.clone())], None),
            "https://auth.example/oauth/device",
        )
        .await
        .unwrap();
    f.clock.advance(TimeDelta::minutes(10));
    let expired = f
        .token(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", &id),
            ("device_code", &late.device_code),
        ])
        .await;
    assert_eq!(code_of(expired), ErrorCode::ExpiredToken);
}

/// Personal access tokens: in process only (`personal_access` is not a grant over HTTP), named,
/// and revocable by the user's operations, which announce each revoked token.
#[tokio::test]
async fn personal_access_and_revocation() {
    let f = Fixture::new();
    f.client(ClientKind::PersonalAccess, false).await;
    let issued = f.passport.create_token("7", None, "  deploy  ", &[]).await.unwrap();
    assert_eq!(issued.token.name.as_deref(), Some("deploy"), "names are trimmed");
    assert_eq!(
        code_of(f.token(&[("grant_type", "personal_access")]).await),
        ErrorCode::UnsupportedGrantType
    );
    let bad_name = f.passport.create_token("7", None, "a\u{7}b", &[]).await.unwrap_err();
    assert_eq!(bad_name.code(), ErrorCode::InvalidRequest);
    f.events().await;
    assert_eq!(
        f.passport.revoke_all_tokens("7").await.unwrap(),
        std::slice::from_ref(&issued.token.id)
    );
    assert_eq!(
        f.events().await,
        [Event::AccessTokenRevoked {
            token_id: issued.token.id.clone()
        }]
    );
    assert_eq!(
        f.passport.authenticate_bearer(&issued.access_token).await,
        Err(TokenInvalid::Revoked)
    );
}

/// Deleting a user revokes their tokens and the clients they own, announcing each token.
#[tokio::test]
async fn deleting_a_user() {
    let f = Fixture::new();
    f.users.add("7", "ada@example.com", "pw-ada-1").await.unwrap();
    f.client(ClientKind::PersonalAccess, false).await;
    let issued = f.passport.create_token("7", None, "script", &[]).await.unwrap();
    let (owned, _) = f
        .passport
        .create_owned_client(
            "7",
            "Mine",
            vec!["https://mine.example/cb".to_owned()],
            Vec::new(),
            true,
        )
        .await
        .unwrap();
    f.events().await;
    let revoked = f.passport.delete_user(None, "7").await.unwrap().unwrap();
    assert_eq!(revoked.access_tokens, std::slice::from_ref(&issued.token.id));
    assert_eq!(revoked.clients, std::slice::from_ref(&owned.id));
    assert_eq!(
        f.events().await,
        [Event::AccessTokenRevoked {
            token_id: issued.token.id.clone()
        }]
    );
    assert!(f.passport.delete_user(None, "7").await.unwrap().is_none(), "gone");
    assert!(
        f.passport
            .find_active_client(owned.id.as_str())
            .await
            .unwrap()
            .is_none()
    );
}

/// The claims hook adds claims to access tokens, is told the grant and the user, and may not
/// set a reserved claim.
#[tokio::test]
async fn custom_claims_are_added_and_reserved_names_refused() {
    #[derive(Debug)]
    struct Hook(&'static str);

    #[passport::async_trait]
    impl passport::ClaimsHook for Hook {
        async fn access_token_claims(
            &self,
            token: passport::TokenContext<'_>,
        ) -> Result<serde_json::Map<String, serde_json::Value>, passport::StoreError> {
            let mut claims = serde_json::Map::new();
            claims.insert(self.0.to_owned(), serde_json::json!(format!("{:?}", token.grant)));
            Ok(claims)
        }
    }

    let f = Fixture::with(|b| b.custom_claims(Arc::new(Hook("grant"))));
    let (id, secret) = f.client(ClientKind::ClientCredentials, false).await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
    ];
    let issued = f.token(&form).await.unwrap();
    let token = f.passport.authenticate_bearer(&issued.access_token).await.unwrap();
    assert_eq!(token.custom_claims["grant"], "ClientCredentials");

    let f = Fixture::with(|b| b.custom_claims(Arc::new(Hook("sub"))));
    let (id, secret) = f.client(ClientKind::ClientCredentials, false).await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
    ];
    assert_eq!(
        code_of(f.token(&form).await),
        ErrorCode::ServerError,
        "`sub` is reserved"
    );
}

/// RFC 6749 §2.3.1 with client secrets as Laravel Passport stored them: bcrypt (`$2y$`, as
/// Laravel writes it; cost 4 here to stay fast) verifies; plaintext (Passport 11 without
/// `hashClientSecrets`) only with `accept_plaintext_client_secrets`; a wrong secret of either
/// kind is `invalid_client` and counts toward the client's failure limit.
#[tokio::test]
async fn laravel_client_secrets_verify_and_their_failures_count() {
    use passport::{ClientStore as _, FailureLimitSettings};
    let address: std::net::IpAddr = "192.0.2.7".parse().unwrap();
    for accept in [false, true] {
        let store = Arc::new(MemoryStore::new());
        let limits = FailureLimitSettings {
            client_auth_failures_per_client: 3,
            ..FailureLimitSettings::default()
        };
        let f = Fixture::with(|b| {
            b.store(store.clone())
                .accept_plaintext_client_secrets(accept)
                .failure_limits(limits)
        });
        assert_eq!(f.passport.settings().accept_plaintext_client_secrets, accept);
        let (id, _) = f.client(ClientKind::ClientCredentials, false).await;
        let token = |secret: &str| {
            let params = [
                ("grant_type", "client_credentials"),
                ("client_id", id.as_str()),
                ("client_secret", secret),
            ];
            let request =
                TokenRequest::new(params.map(|(k, v)| (k.to_owned(), v.to_owned())), None).from_address(Some(address));
            let passport = f.passport.clone();
            async move { passport.issue_token(&request).await }
        };

        let bcrypt = bcrypt::hash("laravel secret", 4).unwrap().replacen("$2b$", "$2y$", 1);
        store.update_client_secret(&id, &bcrypt).await.unwrap();
        token("laravel secret").await.unwrap();
        token("laravel secret").await.unwrap();
        assert_eq!(
            code_of(token("laravel secreT").await),
            ErrorCode::InvalidClient,
            "1st failure"
        );

        store
            .update_client_secret(&id, "plain-secret-from-passport-11")
            .await
            .unwrap();
        let right = token("plain-secret-from-passport-11").await;
        match accept {
            true => drop(right.unwrap()),
            false => assert_eq!(
                code_of(right),
                ErrorCode::InvalidClient,
                "refused until `passport hash`"
            ),
        }
        assert_eq!(code_of(token("plain-secret").await), ErrorCode::InvalidClient);
        if accept {
            assert_eq!(code_of(token("nope").await), ErrorCode::InvalidClient);
        }
        // Three failures: the client is locked, so even its right secret is refused.
        let locked = token("plain-secret-from-passport-11").await;
        assert_eq!(code_of(locked), ErrorCode::TemporarilyUnavailable, "accept = {accept}");
    }
}

/// Unknown users cost what known ones do: the core asks the provider for its own dummy check
/// (one like its stored hashes) and falls back to its argon2id dummy only when the provider
/// has none.
#[tokio::test]
async fn unknown_users_take_the_providers_dummy_check() {
    #[derive(Debug)]
    struct Counting {
        users: Arc<MemoryUsers>,
        dummies: std::sync::atomic::AtomicUsize,
    }
    #[passport::async_trait]
    impl passport::UserProvider for Counting {
        async fn find_for_passport(&self, username: &str) -> Result<Option<passport::User>, passport::StoreError> {
            self.users.find_for_passport(username).await
        }
        async fn validate_for_passport_password_grant(
            &self,
            user: &passport::User,
            password: &str,
        ) -> Result<bool, passport::StoreError> {
            self.users.validate_for_passport_password_grant(user, password).await
        }
        async fn retrieve_by_id(&self, id: &str) -> Result<Option<passport::User>, passport::StoreError> {
            self.users.retrieve_by_id(id).await
        }
        async fn verify_dummy_password(&self, _password: &str) -> bool {
            self.dummies.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            true
        }
    }
    use passport::UserProvider as _;
    let f = Fixture::new();
    f.users.add("1", "known@example.com", "right").await.unwrap();
    let provider = Counting {
        users: f.users.clone(),
        dummies: Default::default(),
    };
    let dummies = || provider.dummies.load(std::sync::atomic::Ordering::Relaxed);
    let check =
        |user: &'static str, password: &'static str| f.passport.authenticate_user(&provider, None, user, password);
    assert!(check("known@example.com", "right").await.unwrap().is_some());
    assert!(check("known@example.com", "wrong").await.unwrap().is_none());
    assert_eq!(dummies(), 0, "a known user's own hash was checked");
    assert!(check("nobody@example.com", "right").await.unwrap().is_none());
    assert!(check("", "right").await.unwrap().is_none(), "implausible usernames too");
    assert_eq!(dummies(), 2);
    assert!(
        !f.users.verify_dummy_password("x").await,
        "a provider without one leaves it to the core"
    );
}

/// `passport hash` (`hash_plaintext_secrets`) hashes plaintext secrets (Passport 11/12 without
/// `hashClientSecrets`) into our `sha256:` form and leaves every hash alone: ours, bcrypt
/// (`$2y$`, `$2a$`, `$2b$`) and argon2 (`$argon2i$`, `$argon2id$`); each still verifies after.
#[tokio::test]
async fn hashing_plaintext_secrets_leaves_every_hash_alone() {
    use passport::ClientStore as _;
    let store = Arc::new(MemoryStore::new());
    let f = Fixture::with(|b| b.store(store.clone()));
    let argon2id = PasswordHasher::new(1).hash("argon2id secret").await.unwrap();
    let bcrypt = bcrypt::hash("bcrypt secret", 4).unwrap();
    let argon2i = {
        use argon2::password_hash::{PasswordHasher as _, SaltString};
        let params = argon2::Params::new(1024, 1, 1, None).unwrap();
        argon2::Argon2::new(argon2::Algorithm::Argon2i, argon2::Version::V0x13, params)
            .hash_password(b"argon2i secret", &SaltString::encode_b64(b"sixteen byte slt").unwrap())
            .unwrap()
            .to_string()
    };
    let stored = [
        ("plain secret", "plain secret".to_owned()),
        ("bcrypt secret", bcrypt.replacen("$2b$", "$2y$", 1)),
        ("bcrypt secret", bcrypt.replacen("$2b$", "$2a$", 1)),
        ("bcrypt secret", bcrypt.clone()),
        ("argon2id secret", argon2id),
        ("argon2i secret", argon2i),
        ("ours", passport::hash_client_secret("ours")),
    ];
    let mut clients = Vec::new();
    for (plain, hash) in &stored {
        let (id, _) = f.client(ClientKind::ClientCredentials, false).await;
        store.update_client_secret(&id, hash).await.unwrap();
        clients.push((id, *plain, hash.clone()));
    }
    assert_eq!(f.passport.hash_plaintext_secrets().await.unwrap(), 1);
    assert_eq!(f.passport.hash_plaintext_secrets().await.unwrap(), 0, "nothing left");
    for (i, (id, plain, before)) in clients.iter().enumerate() {
        let after = store.find_client(id).await.unwrap().unwrap().secret_hash.unwrap();
        match i {
            0 => assert_eq!(after, passport::hash_client_secret(plain)),
            _ => assert_eq!(&after, before, "{plain}: left alone"),
        }
        f.token(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", plain),
        ])
        .await
        .unwrap();
    }
}
