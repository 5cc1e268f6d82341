//! Test helpers for applications (Passport's `actingAs` / `actingAsClient`): a layer that makes
//! every request pass the guard and the scope checks as a given user or client, without real
//! tokens, keys or database rows.
//!
//! ```
//! use axum::{Router, routing::get};
//! use passport::User;
//! use passport_axum::{AuthUser, testing::acting_as};
//!
//! async fn me(user: AuthUser) -> String { user.user.email }
//!
//! # fn app(passport: passport::Passport) -> Router {
//! let app = Router::new().route("/me", get(me)).with_state(passport);
//! // In a test:
//! let user = User { id: "7".into(), name: "Ada".into(), email: "ada@example.com".into(), extra: Default::default() };
//! app.layer(acting_as(user, ["orders:read"]))
//! # }
//! ```
//!
//! Only code can add this layer; nothing a request carries can trigger it.

use std::task::{Context, Poll};

use axum::extract::Request;
use chrono::{DateTime, Utc};
use passport::{AccessToken, User};
use tower::{Layer, Service};

/// The user put in place by [`acting_as`].
#[derive(Debug, Clone)]
pub(crate) struct ActingUser(pub(crate) User);

/// A layer authenticating every request as `user` with `scopes` (`*` allowed).
pub fn acting_as(user: User, scopes: impl IntoIterator<Item = impl Into<String>>) -> ActingAs {
    ActingAs {
        token: AccessToken {
            id: "acting-as".to_owned(),
            client_id: "acting-as-client".into(),
            user_id: Some(user.id.clone()),
            scopes: scopes.into_iter().map(Into::into).collect::<Vec<String>>().into(),
            client_provider: None,
            expires_at: DateTime::<Utc>::MAX_UTC,
            custom_claims: serde_json::Map::new(),
            jkt: None,
        },
        user: Some(user),
    }
}

/// A layer authenticating every request as client `client_id` (a client-credentials token,
/// no user) with `scopes`.
pub fn acting_as_client(client_id: &str, scopes: impl IntoIterator<Item = impl Into<String>>) -> ActingAs {
    ActingAs {
        token: AccessToken {
            id: "acting-as-client".to_owned(),
            client_id: client_id.into(),
            user_id: None,
            scopes: scopes.into_iter().map(Into::into).collect::<Vec<String>>().into(),
            client_provider: None,
            expires_at: DateTime::<Utc>::MAX_UTC,
            custom_claims: serde_json::Map::new(),
            jkt: None,
        },
        user: None,
    }
}

/// See [`acting_as`].
#[derive(Debug, Clone)]
pub struct ActingAs {
    token: AccessToken,
    user: Option<User>,
}

impl<S> Layer<S> for ActingAs {
    type Service = ActingAsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ActingAsService {
            acting: self.clone(),
            inner,
        }
    }
}

/// The service of [`ActingAs`].
#[derive(Debug, Clone)]
pub struct ActingAsService<S> {
    acting: ActingAs,
    inner: S,
}

impl<S: Service<Request>> Service<Request> for ActingAsService<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        request.extensions_mut().insert(self.acting.token.clone());
        if let Some(user) = &self.acting.user {
            request.extensions_mut().insert(ActingUser(user.clone()));
        }
        self.inner.call(request)
    }
}
