//! Throttling and retry policy.
//!
//! Two mechanisms work together:
//! * [`RetryPolicy`]: jittered exponential backoff with a cap (via `backon`) for
//!   transient failures of one call: 429, 5xx, timeouts, network errors, cut bodies.
//! * [`OrgGate`]: one per Azure DevOps organization. It bounds concurrent requests
//!   (a `Semaphore`, default 4) and holds a "not before" instant fed by `Retry-After`
//!   (on *any* status, 200 included, as Azure DevOps documents) and by
//!   `X-RateLimit-Remaining: 0` + `X-RateLimit-Reset`, by `X-RateLimit-Delay`
//!   (the server is already delaying this identity's requests: spacing them by as
//!   much keeps them from piling up there), and by pacing once the budget runs low
//!   (under a tenth of `X-RateLimit-Limit` left: the rest is spread evenly until
//!   the reset, so the identity slows down *before* it is delayed, as Microsoft
//!   advises). Every request to that
//!   organization waits for it, so a throttle signal slows the whole organization
//!   down, not only the request that received it. Each wait is recorded as a
//!   [`ThrottleEvent`] so that tests and the admin UI can see what happened.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backon::ExponentialBuilder;
use reqwest::header::HeaderMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
// tokio's Instant (a thin wrapper over std's) so that paused-clock tests drive the gate.
use tokio::time::Instant;

/// Default number of concurrent requests per organization.
pub const DEFAULT_ORG_CONCURRENCY: usize = 4;

/// Backoff policy for transient failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retries).
    pub max_retries: usize,
    /// First backoff delay.
    pub min_delay: Duration,
    /// Cap of one backoff delay.
    pub max_delay: Duration,
    /// Add random jitter so that many workers do not retry in lockstep.
    pub jitter: bool,
    /// Longest server-requested wait (`Retry-After`, rate-limit reset) we sleep through.
    /// A longer one fails the call with a `throttled` diagnosis instead: a job queue
    /// should re-schedule rather than hold a worker for minutes.
    pub max_server_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 4,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            jitter: true,
            max_server_wait: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// Fast retries for tests against a local emulator.
    pub fn fast() -> Self {
        RetryPolicy {
            max_retries: 4,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
            jitter: true,
            max_server_wait: Duration::from_secs(30),
        }
    }

    /// The `backon` builder for this policy.
    pub fn backoff(&self) -> ExponentialBuilder {
        let b = ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_max_times(self.max_retries);
        if self.jitter {
            b.with_jitter()
        } else {
            b
        }
    }
}

/// Why the client waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleCause {
    /// A `Retry-After` header (on any status).
    RetryAfter,
    /// `X-RateLimit-Remaining: 0` until `X-RateLimit-Reset`.
    RateLimitReset,
    /// `X-RateLimit-Delay`: the server delayed the request by this much.
    RateLimitDelay,
    /// Little budget left: requests spread evenly until `X-RateLimit-Reset`.
    RateLimitPacing,
}

/// One wait imposed by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleEvent {
    /// Organization.
    pub organization: String,
    /// Why.
    pub cause: ThrottleCause,
    /// What the server asked for (the `Retry-After` value, or reset − now).
    pub requested: Duration,
    /// How long the waiting request actually slept (≤ requested: time already elapsed counts).
    pub waited: Duration,
    /// HTTP status of the answer that carried the signal.
    pub status: u16,
}

#[derive(Debug, Clone, Copy)]
struct Hold {
    until: Instant,
    cause: ThrottleCause,
    requested: Duration,
    status: u16,
}

/// Per-organization gate: concurrency limit + server-requested pauses.
#[derive(Debug)]
pub struct OrgGate {
    organization: String,
    permits: std::sync::Arc<Semaphore>,
    hold: Mutex<Option<Hold>>,
    events: Mutex<Vec<ThrottleEvent>>,
}

/// What a request must do before it may be sent.
pub(crate) enum GateWait {
    /// Go.
    Ready,
    /// The server asked for a pause longer than the policy accepts.
    TooLong(Duration),
}

impl OrgGate {
    /// A gate allowing `concurrency` simultaneous requests.
    pub fn new(organization: &str, concurrency: usize) -> Self {
        OrgGate {
            organization: organization.to_string(),
            permits: std::sync::Arc::new(Semaphore::new(concurrency.max(1))),
            hold: Mutex::new(None),
            events: Mutex::new(Vec::new()),
        }
    }

    /// Waits for a concurrency permit. The semaphore is never closed, so the only error
    /// path (closed semaphore) cannot happen; we still avoid `unwrap` and just proceed.
    pub(crate) async fn permit(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().acquire_owned().await.ok()
    }

    /// Sleeps until any pause requested by the server is over.
    pub(crate) async fn wait_turn(&self, max_wait: Duration) -> GateWait {
        loop {
            let hold = self.hold.lock().map(|h| *h).unwrap_or(None);
            let Some(hold) = hold else {
                return GateWait::Ready;
            };
            let now = Instant::now();
            if hold.until <= now {
                return GateWait::Ready;
            }
            let remaining = hold.until - now;
            if remaining > max_wait {
                return GateWait::TooLong(remaining);
            }
            tokio::time::sleep(remaining).await;
            if let Ok(mut ev) = self.events.lock() {
                ev.push(ThrottleEvent {
                    organization: self.organization.clone(),
                    cause: hold.cause,
                    requested: hold.requested,
                    waited: remaining,
                    status: hold.status,
                });
            }
            // Loop: another answer may have extended the pause while we slept.
        }
    }

    /// Feeds the throttle headers of an answer into the gate. Returns the pause requested.
    pub(crate) fn observe(&self, status: u16, headers: &HeaderMap) -> Option<Duration> {
        let now = Instant::now();
        let wall = SystemTime::now();
        // The strongest signal wins: an explicit pause, then the exhausted
        // budget, then the server's own delay, then pacing.
        let signal = retry_after(headers)
            .map(|d| (d, ThrottleCause::RetryAfter))
            .or_else(|| {
                rate_limit_reset_wait(headers, wall).map(|d| (d, ThrottleCause::RateLimitReset))
            })
            .or_else(|| rate_limit_delay(headers).map(|d| (d, ThrottleCause::RateLimitDelay)))
            .or_else(|| {
                rate_limit_pacing(headers, wall).map(|d| (d, ThrottleCause::RateLimitPacing))
            });
        let (delay, cause) = signal?;
        if delay.is_zero() {
            return Some(delay);
        }
        let until = now + delay;
        if let Ok(mut h) = self.hold.lock() {
            // Keep the later of two pauses: never shorten what the server asked for.
            let keep_old = h.as_ref().is_some_and(|old| old.until >= until);
            if !keep_old {
                *h = Some(Hold {
                    until,
                    cause,
                    requested: delay,
                    status,
                });
            }
        }
        Some(delay)
    }

    /// Waits recorded so far.
    pub fn events(&self) -> Vec<ThrottleEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Free concurrency permits right now.
    pub fn available_permits(&self) -> usize {
        self.permits.available_permits()
    }
}

/// Parses `Retry-After`: delta-seconds (what Azure DevOps sends) or an HTTP-date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // Fractional seconds are not in RFC 9110 but cost nothing to accept.
    if let Some(secs) = v.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0) {
        return Some(Duration::from_secs_f64(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// With `X-RateLimit-Remaining: 0` and `X-RateLimit-Reset` (unix seconds) in the future,
/// the time to wait until the reset. Azure DevOps sends these headers *before* it starts
/// delaying requests, so honouring them keeps us out of 429s.
pub fn rate_limit_reset_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let remaining: f64 = header_str(headers, "x-ratelimit-remaining")?.parse().ok()?;
    if remaining > 0.0 {
        return None;
    }
    let reset: u64 = header_str(headers, "x-ratelimit-reset")?.parse().ok()?;
    let now_secs = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    if reset <= now_secs {
        return None;
    }
    Some(Duration::from_secs(reset - now_secs))
}

/// The longest pause taken from `X-RateLimit-Delay` or pacing alone: they
/// slow the hub down, they must never stall it (`Retry-After` and an
/// exhausted budget are the server's explicit word and have their own cap).
pub const MAX_SELF_PACING: Duration = Duration::from_secs(30);

/// `X-RateLimit-Delay` (seconds with up to three decimals): how long Azure
/// DevOps delayed this request, sent only while it delays the identity.
pub fn rate_limit_delay(headers: &HeaderMap) -> Option<Duration> {
    let secs: f64 = header_str(headers, "x-ratelimit-delay")?.parse().ok()?;
    (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs).min(MAX_SELF_PACING))
}

/// With under a tenth of `X-RateLimit-Limit` left (but some), the spacing
/// that spreads what remains evenly until `X-RateLimit-Reset`.
pub fn rate_limit_pacing(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let remaining: f64 = header_str(headers, "x-ratelimit-remaining")?.parse().ok()?;
    let limit: f64 = header_str(headers, "x-ratelimit-limit")?.parse().ok()?;
    if !(remaining.is_finite() && limit.is_finite()) || remaining <= 0.0 || limit <= 0.0 {
        return None;
    }
    if remaining >= limit / 10.0 {
        return None;
    }
    let reset: u64 = header_str(headers, "x-ratelimit-reset")?.parse().ok()?;
    let now_secs = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    let left = reset.checked_sub(now_secs).filter(|s| *s > 0)?;
    Some(Duration::from_secs_f64(left as f64 / remaining).min(MAX_SELF_PACING))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            if let (Ok(k), Ok(v)) = (HeaderName::try_from(*k), HeaderValue::from_str(v)) {
                h.insert(k, v);
            }
        }
        h
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "7")])),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "0.5")])),
            Some(Duration::from_millis(500))
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(retry_after(&headers(&[])), None);
        let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let d = retry_after(&headers(&[("retry-after", &future)])).unwrap_or_default();
        assert!(
            d <= Duration::from_secs(30) && d >= Duration::from_secs(28),
            "{d:?}"
        );
    }

    #[test]
    fn rate_limit_reset_only_when_exhausted() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1012"),
        ]);
        assert_eq!(
            rate_limit_reset_wait(&h, now),
            Some(Duration::from_secs(12))
        );
        let h = headers(&[
            ("x-ratelimit-remaining", "3"),
            ("x-ratelimit-reset", "1012"),
        ]);
        assert_eq!(rate_limit_reset_wait(&h, now), None);
        let h = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "900")]);
        assert_eq!(rate_limit_reset_wait(&h, now), None);
    }

    #[test]
    fn the_servers_delay_and_a_low_budget_slow_the_hub_down() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(
            rate_limit_delay(&headers(&[("x-ratelimit-delay", "1.250")])),
            Some(Duration::from_millis(1_250))
        );
        assert_eq!(
            rate_limit_delay(&headers(&[("x-ratelimit-delay", "0.000")])),
            None
        );
        assert_eq!(
            rate_limit_delay(&headers(&[("x-ratelimit-delay", "NaN")])),
            None
        );
        assert_eq!(
            rate_limit_delay(&headers(&[("x-ratelimit-delay", "9999")])),
            Some(MAX_SELF_PACING)
        );
        // 10 of 200 left, reset in 60 s: one request every 6 s.
        let low = headers(&[
            ("x-ratelimit-limit", "200"),
            ("x-ratelimit-remaining", "10"),
            ("x-ratelimit-reset", "1060"),
        ]);
        assert_eq!(rate_limit_pacing(&low, now), Some(Duration::from_secs(6)));
        // A tenth or more left: no pacing; nothing left is the reset's business.
        let fine = headers(&[
            ("x-ratelimit-limit", "200"),
            ("x-ratelimit-remaining", "20"),
            ("x-ratelimit-reset", "1060"),
        ]);
        assert_eq!(rate_limit_pacing(&fine, now), None);
        let spent = headers(&[
            ("x-ratelimit-limit", "200"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1060"),
        ]);
        assert_eq!(rate_limit_pacing(&spent, now), None);
        // One left and a long window: capped, never a stall.
        let one = headers(&[
            ("x-ratelimit-limit", "200"),
            ("x-ratelimit-remaining", "1"),
            ("x-ratelimit-reset", "1300"),
        ]);
        assert_eq!(rate_limit_pacing(&one, now), Some(MAX_SELF_PACING));
    }

    #[tokio::test(start_paused = true)]
    async fn the_gate_paces_on_the_servers_delay_before_any_429() {
        let gate = OrgGate::new("org", 4);
        let asked = gate.observe(200, &headers(&[("x-ratelimit-delay", "2.000")]));
        assert_eq!(asked, Some(Duration::from_secs(2)));
        let start = tokio::time::Instant::now();
        assert!(matches!(
            gate.wait_turn(Duration::from_secs(60)).await,
            GateWait::Ready
        ));
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        let events = gate.events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].cause, ThrottleCause::RateLimitDelay);
        // Retry-After on the same answer is the stronger word.
        let asked = gate.observe(
            200,
            &headers(&[("x-ratelimit-delay", "2.000"), ("retry-after", "5")]),
        );
        assert_eq!(asked, Some(Duration::from_secs(5)));
    }

    #[tokio::test(start_paused = true)]
    async fn gate_waits_what_the_server_asked_and_records_it() {
        let gate = OrgGate::new("org", 4);
        let asked = gate.observe(200, &headers(&[("retry-after", "3")]));
        assert_eq!(asked, Some(Duration::from_secs(3)));
        let start = tokio::time::Instant::now();
        assert!(matches!(
            gate.wait_turn(Duration::from_secs(60)).await,
            GateWait::Ready
        ));
        let slept = start.elapsed();
        assert!(
            slept >= Duration::from_secs(3) - Duration::from_millis(5),
            "{slept:?}"
        );
        let ev = gate.events();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].requested, Duration::from_secs(3));
        assert_eq!(ev[0].cause, ThrottleCause::RetryAfter);
        assert_eq!(ev[0].status, 200);
        // The pause is over: no further wait.
        assert!(matches!(
            gate.wait_turn(Duration::from_secs(60)).await,
            GateWait::Ready
        ));
        assert_eq!(gate.events().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn gate_refuses_waits_longer_than_policy() {
        let gate = OrgGate::new("org", 1);
        gate.observe(429, &headers(&[("retry-after", "600")]));
        assert!(matches!(
            gate.wait_turn(Duration::from_secs(60)).await,
            GateWait::TooLong(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_shorter_pause_never_shortens_a_longer_one() {
        let gate = OrgGate::new("org", 1);
        gate.observe(429, &headers(&[("retry-after", "5")]));
        gate.observe(200, &headers(&[("retry-after", "1")]));
        let start = tokio::time::Instant::now();
        let _ = gate.wait_turn(Duration::from_secs(60)).await;
        assert!(start.elapsed() >= Duration::from_secs(5) - Duration::from_millis(5));
    }

    #[test]
    fn backoff_is_capped_and_bounded() {
        use backon::BackoffBuilder;
        let p = RetryPolicy {
            max_retries: 6,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(400),
            jitter: false,
            max_server_wait: Duration::from_secs(1),
        };
        let delays: Vec<Duration> = p.backoff().build().collect();
        assert_eq!(delays.len(), 6);
        // backon computes in f32/f64 seconds: allow a microsecond of rounding.
        let close = |a: Duration, b: Duration| a.abs_diff(b) < Duration::from_micros(1);
        assert!(close(delays[0], Duration::from_millis(100)), "{delays:?}");
        assert!(close(delays[1], Duration::from_millis(200)), "{delays:?}");
        assert!(
            delays
                .iter()
                .all(|d| *d <= Duration::from_millis(400) + Duration::from_micros(1)),
            "{delays:?}"
        );
        assert!(close(delays[5], Duration::from_millis(400)), "{delays:?}");
    }
}
