//! Per-address rate limiting for the token endpoint (Passport's `throttle`: 60 a minute by
//! default). The address is the TCP peer; proxies' headers are not trusted.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
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

impl AddressLimiter {
    /// Counts one attempt from `address`; `Err(seconds to wait)` when over the quota.
    pub(crate) fn check(&self, address: IpAddr) -> Result<(), u64> {
        match &self.limiter {
            None => Ok(()),
            Some(limiter) => tidy(limiter)
                .check_key(&address)
                .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()).as_secs().max(1)),
        }
    }
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

    pub(crate) fn check(&self, key: &str) -> Result<(), u64> {
        match &self.limiter {
            None => Ok(()),
            Some(limiter) => tidy(limiter)
                .check_key(&key.to_owned())
                .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()).as_secs().max(1)),
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

/// The TCP peer's address of a request (unspecified when unknown, e.g. in unit tests). IPv6
/// peers count by their /64, since one host usually owns the whole prefix.
pub(crate) fn peer_address(extensions: &axum::http::Extensions) -> IpAddr {
    match extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()) {
        Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        Some(IpAddr::V6(v6)) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        }
        Some(v4) => v4,
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
}

/// Middleware: answers 429 with `Retry-After` when the caller's address is over its quota.
pub(crate) async fn limit(State(limiter): State<AddressLimiter>, request: Request, next: Next) -> Response {
    let Some(limiter) = &limiter.limiter else {
        return next.run(request).await;
    };
    let address = peer_address(request.extensions());
    match tidy(limiter).check_key(&address) {
        Ok(()) => next.run(request).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now()).as_secs().max(1);
            let error = OAuthError::new(ErrorCode::TemporarilyUnavailable)
                .with_description("Too many attempts. Try again later.");
            let mut response = OAuthJsonError::from(error).into_response();
            if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
    }
}
