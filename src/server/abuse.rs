//! Per-address limits on failures at the two doors anyone can knock on: the
//! webhook (`/gateway/public/`) and sign-in. An address whose requests keep
//! failing (401, 400, 413, 429) runs out of its allowance and is then
//! answered 429 for a while before anything is checked; an address whose
//! requests succeed is never slowed, so a real Azure DevOps delivery gets
//! through while another address floods the hub with bad ones.
//!
//! Memory is bounded: the limiter forgets addresses that are back to a full
//! allowance, and at most [`MAX_BLOCKED`] addresses are remembered as
//! blocked. IPv6 clients are counted per /64, since one holds a whole one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;

use spicehub_core::auth::ClientAddr;

/// Failures an address may have in a burst before it is blocked.
const BURST: u32 = 30;
/// Failures per second an address earns back.
const PER_SECOND: u32 = 1;
/// Addresses remembered as blocked at once.
pub const MAX_BLOCKED: usize = 65_536;
/// Addresses the limiter may track before it forgets the idle ones.
const MAX_TRACKED: usize = 100_000;

pub struct FailureGate {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    clock: DefaultClock,
    failures: AtomicU64,
}

impl Default for FailureGate {
    fn default() -> Self {
        Self::new()
    }
}

impl FailureGate {
    pub fn new() -> FailureGate {
        let quota = Quota::per_second(NonZeroU32::MIN.saturating_add(PER_SECOND - 1))
            .allow_burst(NonZeroU32::MIN.saturating_add(BURST - 1));
        FailureGate {
            limiter: RateLimiter::keyed(quota),
            blocked: Mutex::new(HashMap::new()),
            clock: DefaultClock::default(),
            failures: AtomicU64::new(0),
        }
    }

    /// How long this address must still wait, if it is blocked.
    fn blocked_for(&self, ip: IpAddr) -> Option<Duration> {
        let mut blocked = self.blocked.lock();
        let until = *blocked.get(&ip)?;
        let left = until.checked_duration_since(Instant::now());
        if left.is_none() {
            blocked.remove(&ip);
        }
        left
    }

    /// Counts a failure; blocks the address when its allowance is used up.
    fn failed(&self, ip: IpAddr) {
        if self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(1024)
            && self.limiter.len() > MAX_TRACKED
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        let Err(not_until) = self.limiter.check_key(&ip) else {
            return;
        };
        let wait = not_until
            .wait_time_from(self.clock.now())
            .max(Duration::from_secs(1));
        let mut blocked = self.blocked.lock();
        if blocked.len() >= MAX_BLOCKED {
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
        }
        if blocked.len() < MAX_BLOCKED {
            blocked.insert(ip, Instant::now() + wait);
        }
    }

    #[cfg(test)]
    fn blocked_len(&self) -> usize {
        self.blocked.lock().len()
    }
}

/// One key per client: an IPv4 address, or an IPv6 /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
        v4 => v4,
    }
}

fn is_failure(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::UNAUTHORIZED
            | StatusCode::BAD_REQUEST
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::TOO_MANY_REQUESTS
    )
}

/// Paths the gate watches: the webhook, the sign-in server function and
/// the consent callback (anonymous, and a made-up state costs a lookup).
fn watched(path: &str) -> bool {
    path.starts_with(spicehub_routes::PUBLIC_GATEWAY_PREFIX)
        || path == spicehub_routes::SIGN_IN_API
        || path == spicehub_routes::CONSENT_CALLBACK
}

pub async fn gate(State(gate): State<Arc<FailureGate>>, request: Request, next: Next) -> Response {
    if !watched(request.uri().path()) {
        return next.run(request).await;
    }
    let Some(ClientAddr(ip)) = request.extensions().get::<ClientAddr>().copied() else {
        return next.run(request).await;
    };
    let ip = key(ip);
    if let Some(wait) = gate.blocked_for(ip) {
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed requests from your address; try again later.\n",
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return response;
    }
    let response = next.run(request).await;
    if is_failure(response.status()) {
        gate.failed(ip);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_block_after_the_burst_and_memory_stays_bounded() {
        let gate = FailureGate::new();
        let ip: IpAddr = "198.51.100.1".parse().unwrap();
        for _ in 0..BURST {
            gate.failed(ip);
        }
        assert!(gate.blocked_for(ip).is_none(), "the burst is allowed");
        gate.failed(ip);
        assert!(gate.blocked_for(ip).is_some(), "one more is not");
        let other: IpAddr = "198.51.100.2".parse().unwrap();
        assert!(gate.blocked_for(other).is_none());

        // A million addresses, each blocked: the map stays at its cap.
        let many = FailureGate::new();
        for i in 0..(MAX_BLOCKED as u32 + 5_000) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            for _ in 0..=BURST {
                many.failed(ip);
            }
        }
        assert!(many.blocked_len() <= MAX_BLOCKED);
    }

    #[test]
    fn ipv6_is_counted_per_64() {
        let a: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        let b: IpAddr = "2001:db8:0:1:ffff::2".parse().unwrap();
        assert_eq!(key(a), key(b));
        assert_ne!(key(a), key("2001:db8:0:2::1".parse().unwrap()));
        assert!(watched("/gateway/public/sync"));
        assert!(watched("/api/sign_in"));
        assert!(!watched("/api/sign_out"));
    }
}
