//! Per-address rate limiting for the token endpoint (Passport's `throttle`: 60 a minute by
//! default). The address is the TCP peer; proxies' headers are not trusted.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use passport::{ErrorCode, OAuthError};

use crate::error::OAuthJsonError;

/// A keyed limiter shared by the routes it guards.
#[derive(Debug, Clone)]
pub struct AddressLimiter {
    limiter: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
}

impl AddressLimiter {
    /// `per_minute` requests a minute per address; 0 disables limiting.
    pub fn per_minute(per_minute: u32) -> Self {
        Self {
            limiter: NonZeroU32::new(per_minute).map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n)))),
        }
    }
}

/// Why a limiter refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Over the quota: wait this many seconds.
    Wait(u64),
    /// The request carries no peer address (the app was not served with connect info), so
    /// limiting per address is impossible. Refused rather than all callers sharing one bucket.
    NoPeerAddress,
}

/// What to add so that limits can see who is calling.
pub(crate) const NO_PEER_ADDRESS: &str = "rate limiting needs the peer address of each request: serve the app with \
     passport_axum::serve(listener, app), or axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())";

impl AddressLimiter {
    /// Counts one attempt from `address`.
    pub(crate) fn check(&self, address: Option<IpAddr>) -> Result<(), Refused> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        let address = address.ok_or(Refused::NoPeerAddress)?;
        tidy(limiter)
            .check_key(&address)
            .map_err(|not_until| Refused::Wait(wait_seconds(&not_until)))
    }
}

fn wait_seconds(not_until: &governor::NotUntil<governor::clock::QuantaInstant>) -> u64 {
    not_until.wait_time_from(DefaultClock::default().now()).as_secs().max(1)
}

/// A limiter keyed by an arbitrary string (e.g. a session id).
#[derive(Debug, Clone)]
pub(crate) struct KeyLimiter {
    limiter: Option<Arc<DefaultKeyedRateLimiter<String>>>,
}

impl KeyLimiter {
    pub(crate) fn per_minute(per_minute: u32) -> Self {
        Self {
            limiter: NonZeroU32::new(per_minute).map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n)))),
        }
    }

    pub(crate) fn check(&self, key: &str) -> Result<(), Refused> {
        match &self.limiter {
            None => Ok(()),
            Some(limiter) => tidy(limiter)
                .check_key(&key.to_owned())
                .map_err(|not_until| Refused::Wait(wait_seconds(&not_until))),
        }
    }
}

/// Drops idle keys once the table grows large, so memory stays bounded.
fn tidy<K: std::hash::Hash + Eq + Clone>(limiter: &DefaultKeyedRateLimiter<K>) -> &DefaultKeyedRateLimiter<K> {
    if limiter.len() > 10_000 {
        limiter.retain_recent();
    }
    limiter
}

/// The TCP peer's address of a request, when the app is served with connect info. IPv6 peers
/// count by their /64, since one host usually owns the whole prefix.
pub(crate) fn peer_address(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    Some(address_key(extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip()))
}

/// What limits count an address as: IPv4 as is (also when IPv4-mapped), IPv6 by its /64.
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
        v4 => v4,
    }
}

/// Middleware: answers 429 with `Retry-After` when the caller's address is over its quota.
pub(crate) async fn limit(State(limiter): State<AddressLimiter>, request: Request, next: Next) -> Response {
    match limiter.check(peer_address(request.extensions())) {
        Ok(()) => next.run(request).await,
        Err(refused) => refusal(refused),
    }
}

/// [`limit`] for the token endpoint, which also counts its refusals in
/// `passport_token_errors_total`.
pub(crate) async fn limit_token(
    State((limiter, passport)): State<(AddressLimiter, passport::Passport)>,
    request: Request,
    next: Next,
) -> Response {
    match limiter.check(peer_address(request.extensions())) {
        Ok(()) => next.run(request).await,
        Err(refused) => {
            passport.metrics().token_error(refused.code());
            refusal(refused)
        }
    }
}

impl Refused {
    /// The OAuth error code a refusal is answered with.
    pub(crate) fn code(self) -> ErrorCode {
        match self {
            Self::Wait(_) => ErrorCode::TemporarilyUnavailable,
            Self::NoPeerAddress => ErrorCode::ServerError,
        }
    }
}

/// The token endpoint's answer to a refusal: 429 `temporarily_unavailable` with `Retry-After`,
/// or `server_error` when the app cannot see peer addresses (logged with the fix).
pub(crate) fn refusal(refused: Refused) -> Response {
    match refused {
        Refused::Wait(wait) => {
            let error = OAuthError::new(ErrorCode::TemporarilyUnavailable)
                .with_description("Too many attempts. Try again later.");
            let mut response = OAuthJsonError::from(error).into_response();
            if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Refused::NoPeerAddress => OAuthJsonError::from(OAuthError::server_error(NO_PEER_ADDRESS)).into_response(),
    }
}
