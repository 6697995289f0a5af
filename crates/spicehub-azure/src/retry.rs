//! Throttling and retry policy.
//!
//! Two mechanisms work together:
//! * [`RetryPolicy`]: jittered exponential backoff with a cap (via `backon`) for
//!   transient failures of one call: 429, 5xx, timeouts, network errors, cut bodies.
//! * [`OrgGate`]: one per Azure DevOps organization and identity (one per
//!   organization inside a client family, which is bound to one identity). It
//!   bounds concurrent requests and holds a "not before" instant fed by the
//!   server's rate-limit headers. Every request to that organization waits for it,
//!   so a throttle signal slows the whole organization down, not only the request
//!   that received it. Each wait is recorded as a [`ThrottleEvent`] so that tests
//!   and the admin UI can see what happened.
//!
//! # Mandatory and voluntary pauses
//!
//! The gate tells apart what the server *mandates* from what the hub *chooses*:
//! * mandatory ([`ThrottleCause::RetryAfter`], [`ThrottleCause::RateLimitReset`]):
//!   `Retry-After` (on *any* status, 200 included, as Azure DevOps documents) and
//!   `X-RateLimit-Remaining: 0` (until the window has freed a TSTU, judged from
//!   `X-RateLimit-Reset`). Every request obeys them: ignoring them is what earns a
//!   429 (TF400733).
//! * voluntary ([`ThrottleCause::RateLimitDelay`], [`ThrottleCause::RateLimitPacing`]):
//!   spacing requests by the server's `X-RateLimit-Delay` (it is already delaying
//!   this identity, so more requests would only pile up there), and pacing once the
//!   budget runs low (under a tenth of `X-RateLimit-Limit` left: requests no faster
//!   than the sliding window frees budget, so the identity slows down *before* it
//!   is delayed, as Microsoft advises).
//!
//! # Priority
//!
//! [`Priority::Interactive`] requests (an admin waiting on a page: the repository
//! picker, "Test connection") have their own small concurrency lane, so a
//! background lane saturated by syncs never queues them, and they skip the
//! voluntary pauses: a delayed request is slowed by the server itself, and a
//! handful of clicks does not move the budget. They still obey the mandatory ones.
//! [`Priority::Background`] requests (syncs, reconcile) obey everything.
//!
//! # Several hub instances, one identity
//!
//! Nothing is shared between processes, on purpose: Azure DevOps meters the
//! *identity*, and every answer to every instance carries the identity's shared
//! budget (`X-RateLimit-Remaining`, `-Reset`, `-Delay`, `Retry-After`). Each
//! instance paces itself from what the server reports, so instances sharing a
//! service principal slow down together as the common budget drains, without a
//! coordination store that could fail or disagree with the server.
//!
//! # Memory
//!
//! A gate lives as long as the process; it keeps only the last [`EVENT_HISTORY`]
//! events, plus running totals.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backon::ExponentialBuilder;
use parking_lot::Mutex;
use reqwest::header::HeaderMap;
use serde::{Serialize, Serializer};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
// tokio's Instant (a thin wrapper over std's) so that paused-clock tests drive the gate.
use tokio::time::Instant;

/// Default number of concurrent background requests per organization.
pub const DEFAULT_ORG_CONCURRENCY: usize = 4;

/// Default number of concurrent interactive requests per organization: as many
/// as the repository picker asks for at once (four projects' listings), so an
/// admin's page is as quick as before the lanes were split.
pub const DEFAULT_INTERACTIVE_CONCURRENCY: usize = 4;

/// Events a gate remembers; older ones only count in the totals.
pub const EVENT_HISTORY: usize = 256;

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

/// Who is waiting for an answer, which decides the lane and the pauses a request obeys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// An admin waiting on a page (repository picker, "Test connection"): own
    /// concurrency lane, skips the hub's voluntary pacing, obeys the server's
    /// mandatory pauses.
    Interactive,
    /// Syncs, reconcile, webhook follow-ups: obey every pause.
    #[default]
    Background,
}

/// Why the client waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
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

impl ThrottleCause {
    /// The server's explicit word, which every request obeys; the others are the
    /// hub's own caution, which interactive requests skip.
    pub fn is_mandatory(self) -> bool {
        matches!(
            self,
            ThrottleCause::RetryAfter | ThrottleCause::RateLimitReset
        )
    }
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

/// The identity's rate-limit budget as the server last reported it. Azure DevOps
/// only sends these headers once usage nears the limit, so a snapshot ages:
/// `observed_at` says how old it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Budget {
    /// `X-RateLimit-Limit`: TSTUs per window. Microsoft sends it with the
    /// others; a server that leaves it out still has its reset obeyed.
    pub limit: Option<f64>,
    /// `X-RateLimit-Remaining`: TSTUs left (0 while delayed or blocked).
    pub remaining: f64,
    /// `X-RateLimit-Reset`.
    #[serde(serialize_with = "rfc3339")]
    pub reset: SystemTime,
    /// `X-RateLimit-Resource`, display only.
    pub resource: Option<String>,
    /// When the answer carrying these headers arrived.
    #[serde(serialize_with = "rfc3339")]
    pub observed_at: SystemTime,
}

impl Budget {
    /// The budget in an answer's headers; None unless remaining and reset are
    /// there and make sense (they come from the network).
    pub fn from_headers(headers: &HeaderMap, observed_at: SystemTime) -> Option<Budget> {
        let number = |name| {
            header_str(headers, name)?
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
        };
        let limit = number("x-ratelimit-limit");
        let remaining = number("x-ratelimit-remaining")?;
        let reset_secs: u64 = header_str(headers, "x-ratelimit-reset")?.parse().ok()?;
        let reset = UNIX_EPOCH.checked_add(Duration::from_secs(reset_secs))?;
        let resource = header_str(headers, "x-ratelimit-resource")
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        Some(Budget {
            limit,
            remaining,
            reset,
            resource,
            observed_at,
        })
    }

    /// With nothing left and the reset in the future, how long until the
    /// window has freed budget for a request. `X-RateLimit-Reset` is when usage
    /// would be back to zero, so the wait is the time the window takes to free
    /// one TSTU on average, `(reset - now) / limit`: waiting for all of it would
    /// idle a whole window (five minutes) at every brush with the limit. Azure
    /// DevOps sends these headers *before* it starts delaying requests, so
    /// honouring them keeps us out of 429s; a request sent too early is delayed,
    /// and its `Retry-After` is obeyed in turn.
    pub fn reset_wait(&self, now: SystemTime) -> Option<Duration> {
        if self.remaining > 0.0 {
            return None;
        }
        // Measured from the exact now, not its whole second: rounding down would
        // add up to a second to every wait, which short windows feel.
        let drained = self
            .reset
            .duration_since(now)
            .ok()
            .filter(|d| !d.is_zero())?;
        // Without the limit, the whole way to the reset.
        Some(match self.limit.filter(|l| *l >= 1.0) {
            Some(limit) => Duration::from_secs_f64(drained.as_secs_f64() / limit),
            None => drained,
        })
    }

    /// With under a tenth of the limit left (but some), the spacing that spends
    /// the budget no faster than the sliding window frees it. The
    /// `limit - remaining` TSTUs in use have all left the window by the reset
    /// (when usage would be back to zero, were requests to stop), so one request
    /// per `(reset - now) / (limit - remaining)` keeps what is left about level,
    /// counting a request as one TSTU: Microsoft publishes no costs, and a dearer
    /// request shows as a falling Remaining and then a server delay, which the
    /// gate obeys as well. (Spreading only what remains until the reset, as if
    /// nothing freed before it, crawled.)
    pub fn pacing(&self, now: SystemTime) -> Option<Duration> {
        let limit = self.limit?;
        if self.remaining <= 0.0 || limit <= 0.0 || self.remaining >= limit / 10.0 {
            return None;
        }
        let left = self
            .reset
            .duration_since(now)
            .ok()
            .filter(|d| !d.is_zero())?;
        let in_use = (limit - self.remaining).max(1.0);
        Some(Duration::from_secs_f64(left.as_secs_f64() / in_use).min(MAX_SELF_PACING))
    }
}

/// When the gate last made a request wait, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Slowed {
    /// When the wait began.
    #[serde(serialize_with = "rfc3339")]
    pub at: SystemTime,
    /// Why.
    pub cause: ThrottleCause,
}

/// A pause in force right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pause {
    /// Time left, in milliseconds.
    pub remaining_ms: u64,
    /// Why.
    pub cause: ThrottleCause,
}

/// What a gate knows, for the admin UI (one per organization of an identity).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateReport {
    /// Organization, as first bound.
    pub organization: String,
    /// False only in the naive measurement mode (see `ClientConfig::governor`).
    pub governor: bool,
    /// Last budget the server reported.
    pub budget: Option<Budget>,
    /// Last wait the gate imposed.
    pub last_slowed: Option<Slowed>,
    /// Pause background requests face now (mandatory or voluntary).
    pub background_pause: Option<Pause>,
    /// Pause interactive requests face now (mandatory only).
    pub interactive_pause: Option<Pause>,
    /// Waits imposed since the gate was created.
    pub waits: u64,
    /// Sum of those waits, in milliseconds.
    pub total_wait_ms: u64,
    /// 429 answers received.
    pub responses_429: u64,
    /// Answers received (any status).
    pub answers: u64,
    /// Free permits of the background lane.
    pub background_permits_free: usize,
    /// Free permits of the interactive lane.
    pub interactive_permits_free: usize,
}

fn rfc3339<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let formatted = time::OffsetDateTime::from(*t)
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(serde::ser::Error::custom)?;
    s.serialize_str(&formatted)
}

#[derive(Debug, Clone, Copy)]
struct Hold {
    until: Instant,
    cause: ThrottleCause,
    requested: Duration,
    status: u16,
}

impl Hold {
    fn pause(&self, now: Instant) -> Option<Pause> {
        (self.until > now).then(|| Pause {
            remaining_ms: u64::try_from((self.until - now).as_millis()).unwrap_or(u64::MAX),
            cause: self.cause,
        })
    }
}

/// Later of two optional holds.
fn later(a: Option<Hold>, b: Option<Hold>) -> Option<Hold> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.until > a.until { b } else { a }),
        (a, b) => a.or(b),
    }
}

#[derive(Debug, Default)]
struct GateState {
    /// Server-mandated pause: every request obeys it.
    mandatory: Option<Hold>,
    /// The hub's own pacing: background requests only.
    voluntary: Option<Hold>,
    /// The last [`EVENT_HISTORY`] waits, oldest first.
    events: VecDeque<ThrottleEvent>,
    waits: u64,
    total_wait: Duration,
    responses_429: u64,
    answers: u64,
    budget: Option<Budget>,
    last_slowed: Option<Slowed>,
}

impl GateState {
    fn hold_for(&self, priority: Priority) -> Option<Hold> {
        match priority {
            Priority::Interactive => self.mandatory,
            Priority::Background => later(self.mandatory, self.voluntary),
        }
    }

    fn record(&mut self, event: ThrottleEvent) {
        self.waits = self.waits.saturating_add(1);
        self.total_wait = self.total_wait.saturating_add(event.waited);
        if self.events.len() >= EVENT_HISTORY {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }
}

/// Per-organization gate: two concurrency lanes + server-requested pauses.
#[derive(Debug)]
pub struct OrgGate {
    organization: String,
    governor: bool,
    background: Arc<Semaphore>,
    /// The background lane's size, which pacing spreads.
    background_concurrency: usize,
    interactive: Arc<Semaphore>,
    state: Mutex<GateState>,
}

/// What a request must do before it may be sent.
pub(crate) enum GateWait {
    /// Go.
    Ready,
    /// The server asked for a pause longer than the policy accepts.
    TooLong(Duration),
}

impl OrgGate {
    /// A gate allowing `concurrency` simultaneous background requests and
    /// [`DEFAULT_INTERACTIVE_CONCURRENCY`] interactive ones, governor on.
    pub fn new(organization: &str, concurrency: usize) -> Self {
        OrgGate {
            organization: organization.to_string(),
            governor: true,
            background: Arc::new(Semaphore::new(concurrency.max(1))),
            background_concurrency: concurrency.max(1),
            interactive: Arc::new(Semaphore::new(DEFAULT_INTERACTIVE_CONCURRENCY)),
            state: Mutex::new(GateState::default()),
        }
    }

    /// Sets the size of the interactive lane (at least 1).
    pub fn with_interactive_concurrency(mut self, concurrency: usize) -> Self {
        self.interactive = Arc::new(Semaphore::new(concurrency.max(1)));
        self
    }

    /// `false`: the naive measurement mode (see `ClientConfig::governor`): no pause
    /// is ever held; only a 429/503's `Retry-After` is returned to the caller.
    pub fn with_governor(mut self, governor: bool) -> Self {
        self.governor = governor;
        self
    }

    /// Organization name.
    pub fn organization(&self) -> &str {
        &self.organization
    }

    /// Waits for a permit of `priority`'s lane. The semaphores are never closed, so
    /// the only error path (closed semaphore) cannot happen; we still avoid
    /// `unwrap` and just proceed.
    pub(crate) async fn permit(&self, priority: Priority) -> Option<OwnedSemaphorePermit> {
        let lane = match priority {
            Priority::Interactive => &self.interactive,
            Priority::Background => &self.background,
        };
        lane.clone().acquire_owned().await.ok()
    }

    /// Sleeps until every pause `priority` must obey is over.
    pub(crate) async fn wait_turn(&self, priority: Priority, max_wait: Duration) -> GateWait {
        loop {
            let Some(hold) = self.state.lock().hold_for(priority) else {
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
            self.state.lock().last_slowed = Some(Slowed {
                at: SystemTime::now(),
                cause: hold.cause,
            });
            tokio::time::sleep(remaining).await;
            self.state.lock().record(ThrottleEvent {
                organization: self.organization.clone(),
                cause: hold.cause,
                requested: hold.requested,
                waited: remaining,
                status: hold.status,
            });
            // Loop: another answer may have extended the pause while we slept.
        }
    }

    /// Records a wait the caller slept itself (the naive mode's per-request
    /// `Retry-After`), so that both modes count waits the same way.
    pub(crate) fn record_wait(&self, cause: ThrottleCause, waited: Duration, status: u16) {
        let mut state = self.state.lock();
        state.last_slowed = Some(Slowed {
            at: SystemTime::now(),
            cause,
        });
        state.record(ThrottleEvent {
            organization: self.organization.clone(),
            cause,
            requested: waited,
            waited,
            status,
        });
    }

    /// Feeds the throttle headers of an answer into the gate. Returns the pause requested.
    pub(crate) fn observe(&self, status: u16, headers: &HeaderMap) -> Option<Duration> {
        let now = Instant::now();
        let wall = SystemTime::now();
        let budget = Budget::from_headers(headers, wall);
        let mut state = self.state.lock();
        state.answers = state.answers.saturating_add(1);
        if status == 429 {
            state.responses_429 = state.responses_429.saturating_add(1);
        }
        if budget.is_some() {
            state.budget.clone_from(&budget);
        }
        if !self.governor {
            // What a naive client does: only a refusal's Retry-After counts, and
            // only for the request that got it (the caller sleeps it).
            return if matches!(status, 429 | 503) {
                retry_after(headers)
            } else {
                None
            };
        }
        // The strongest signal wins: an explicit pause, then the exhausted
        // budget, then the server's own delay, then pacing.
        let signal = retry_after(headers)
            .map(|d| (d, ThrottleCause::RetryAfter))
            .or_else(|| {
                budget
                    .as_ref()?
                    .reset_wait(wall)
                    .map(|d| (d, ThrottleCause::RateLimitReset))
            })
            .or_else(|| rate_limit_delay(headers).map(|d| (d, ThrottleCause::RateLimitDelay)))
            .or_else(|| {
                // Every request waiting on the gate leaves when a pause ends:
                // a lane of n paces n requests per spacing.
                budget.as_ref()?.pacing(wall).map(|d| {
                    let lane = u32::try_from(self.background_concurrency).unwrap_or(u32::MAX);
                    (
                        d.saturating_mul(lane).min(MAX_SELF_PACING),
                        ThrottleCause::RateLimitPacing,
                    )
                })
            });
        let (delay, cause) = signal?;
        if delay.is_zero() {
            return Some(delay);
        }
        let hold = Hold {
            until: now + delay,
            cause,
            requested: delay,
            status,
        };
        let slot = if cause.is_mandatory() {
            &mut state.mandatory
        } else {
            &mut state.voluntary
        };
        // Keep the later of two pauses: never shorten what the server asked for.
        if slot.as_ref().is_none_or(|old| old.until < hold.until) {
            *slot = Some(hold);
        }
        Some(delay)
    }

    /// The last [`EVENT_HISTORY`] waits, oldest first ([`OrgGate::waits`] counts all).
    pub fn events(&self) -> Vec<ThrottleEvent> {
        self.state.lock().events.iter().cloned().collect()
    }

    /// Waits imposed since the gate was created.
    pub fn waits(&self) -> u64 {
        self.state.lock().waits
    }

    /// 429 answers received since the gate was created.
    pub fn responses_429(&self) -> u64 {
        self.state.lock().responses_429
    }

    /// The identity's budget in this organization as the server last reported it.
    pub fn budget(&self) -> Option<Budget> {
        self.state.lock().budget.clone()
    }

    /// When the gate last made a request wait, and why.
    pub fn last_slowed(&self) -> Option<(SystemTime, ThrottleCause)> {
        self.state.lock().last_slowed.map(|s| (s.at, s.cause))
    }

    /// Free permits of the background lane right now.
    pub fn available_permits(&self) -> usize {
        self.background.available_permits()
    }

    /// Free permits of the interactive lane right now.
    pub fn available_interactive_permits(&self) -> usize {
        self.interactive.available_permits()
    }

    /// Everything the gate knows, for the admin UI.
    pub fn report(&self) -> GateReport {
        let now = Instant::now();
        let state = self.state.lock();
        GateReport {
            organization: self.organization.clone(),
            governor: self.governor,
            budget: state.budget.clone(),
            last_slowed: state.last_slowed,
            background_pause: state
                .hold_for(Priority::Background)
                .and_then(|h| h.pause(now)),
            interactive_pause: state
                .hold_for(Priority::Interactive)
                .and_then(|h| h.pause(now)),
            waits: state.waits,
            total_wait_ms: u64::try_from(state.total_wait.as_millis()).unwrap_or(u64::MAX),
            responses_429: state.responses_429,
            answers: state.answers,
            background_permits_free: self.background.available_permits(),
            interactive_permits_free: self.interactive.available_permits(),
        }
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

    /// The budget of an answer carrying limit, remaining and reset.
    fn budget(limit: &str, remaining: &str, reset: &str) -> Budget {
        let h = headers(&[
            ("x-ratelimit-limit", limit),
            ("x-ratelimit-remaining", remaining),
            ("x-ratelimit-reset", reset),
        ]);
        Budget::from_headers(&h, SystemTime::now()).expect("a whole budget")
    }

    #[test]
    fn a_budget_needs_remaining_and_reset() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let no_limit = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1012"),
        ]);
        let b = Budget::from_headers(&no_limit, now).expect("a budget without its limit");
        assert_eq!(b.limit, None);
        // Without the limit, the whole way to the reset; no pacing.
        assert_eq!(b.reset_wait(now), Some(Duration::from_secs(12)));
        assert_eq!(b.pacing(now), None);
        let no_reset = headers(&[("x-ratelimit-limit", "200"), ("x-ratelimit-remaining", "0")]);
        assert_eq!(Budget::from_headers(&no_reset, now), None);
        let nonsense = headers(&[
            ("x-ratelimit-limit", "200"),
            ("x-ratelimit-remaining", "NaN"),
            ("x-ratelimit-reset", "1012"),
        ]);
        assert_eq!(Budget::from_headers(&nonsense, now), None);
    }

    #[test]
    fn rate_limit_reset_only_when_exhausted() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        // The time the window takes to free one of its 200 TSTUs, not the
        // whole way to zero.
        assert_eq!(
            budget("200", "0", "1012").reset_wait(now),
            Some(Duration::from_millis(60))
        );
        assert_eq!(budget("200", "3", "1012").reset_wait(now), None);
        assert_eq!(budget("200", "0", "900").reset_wait(now), None);
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
        // 10 of 200 left, the 190 in use gone in 60 s: one request every
        // 60/190 s, as fast as the window frees one TSTU.
        assert_eq!(
            budget("200", "10", "1060").pacing(now),
            Some(Duration::from_secs_f64(60.0 / 190.0))
        );
        // A tenth or more left: no pacing; nothing left is the reset's business.
        assert_eq!(budget("200", "20", "1060").pacing(now), None);
        assert_eq!(budget("200", "0", "1060").pacing(now), None);
        // A reset improbably far away: capped, never a stall.
        assert_eq!(
            budget("200", "1", "11000").pacing(now),
            Some(MAX_SELF_PACING)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_gate_paces_on_the_servers_delay_before_any_429() {
        let gate = OrgGate::new("org", 4);
        let asked = gate.observe(200, &headers(&[("x-ratelimit-delay", "2.000")]));
        assert_eq!(asked, Some(Duration::from_secs(2)));
        let start = tokio::time::Instant::now();
        assert!(matches!(
            gate.wait_turn(Priority::Background, Duration::from_secs(60))
                .await,
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
            gate.wait_turn(Priority::Background, Duration::from_secs(60))
                .await,
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
            gate.wait_turn(Priority::Background, Duration::from_secs(60))
                .await,
            GateWait::Ready
        ));
        assert_eq!(gate.events().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn gate_refuses_waits_longer_than_policy() {
        let gate = OrgGate::new("org", 1);
        gate.observe(429, &headers(&[("retry-after", "600")]));
        assert!(matches!(
            gate.wait_turn(Priority::Background, Duration::from_secs(60))
                .await,
            GateWait::TooLong(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_shorter_pause_never_shortens_a_longer_one() {
        let gate = OrgGate::new("org", 1);
        gate.observe(429, &headers(&[("retry-after", "5")]));
        gate.observe(200, &headers(&[("retry-after", "1")]));
        let start = tokio::time::Instant::now();
        let _ = gate
            .wait_turn(Priority::Background, Duration::from_secs(60))
            .await;
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

    /// Rate-limit headers whose reset is `reset_in` seconds from the real clock
    /// (the gate reads `SystemTime`, which a paused tokio clock does not move).
    fn budget_headers(limit: u32, remaining: u32, reset_in: u64) -> HeaderMap {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        headers(&[
            ("x-ratelimit-resource", "Core"),
            ("x-ratelimit-limit", &limit.to_string()),
            ("x-ratelimit-remaining", &remaining.to_string()),
            ("x-ratelimit-reset", &(now + reset_in).to_string()),
        ])
    }

    async fn ready_after(gate: &OrgGate, priority: Priority) -> Duration {
        let start = tokio::time::Instant::now();
        assert!(matches!(
            gate.wait_turn(priority, Duration::from_secs(120)).await,
            GateWait::Ready
        ));
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn interactive_requests_pass_a_full_background_lane_and_a_pacing_hold() {
        let gate = OrgGate::new("org", 2);
        let _a = gate.permit(Priority::Background).await;
        let _b = gate.permit(Priority::Background).await;
        assert_eq!(gate.available_permits(), 0);
        // The background lane is full: a third background request queues...
        let queued =
            tokio::time::timeout(Duration::from_secs(5), gate.permit(Priority::Background)).await;
        assert!(queued.is_err(), "the background lane should be full");
        // ...an interactive one does not.
        let start = tokio::time::Instant::now();
        let lane = gate.permit(Priority::Interactive).await;
        assert!(lane.is_some());
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(
            gate.available_interactive_permits(),
            DEFAULT_INTERACTIVE_CONCURRENCY - 1
        );

        // 10 of 200 left, usage gone in a minute: background requests are
        // paced at the rate the window frees budget, 60/190 s a request,
        // times the lane's 2 requests that leave together.
        let asked = gate.observe(200, &budget_headers(200, 10, 60));
        let pacing = asked.unwrap_or_default();
        assert!(
            pacing >= Duration::from_millis(615) && pacing <= Duration::from_millis(635),
            "{pacing:?}"
        );
        assert_eq!(
            ready_after(&gate, Priority::Interactive).await,
            Duration::ZERO
        );
        assert!(gate.events().is_empty(), "interactive requests do not wait");
        // The paused clock's timer rounds up to the millisecond.
        let waited = ready_after(&gate, Priority::Background).await;
        assert!(
            waited >= pacing && waited <= pacing + Duration::from_millis(1),
            "{waited:?} for {pacing:?}"
        );
        let (_, cause) = gate.last_slowed().unwrap_or_else(|| panic!("slowed"));
        assert_eq!(cause, ThrottleCause::RateLimitPacing);
        assert_eq!(gate.waits(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn interactive_requests_skip_the_servers_delay_but_not_its_word() {
        let gate = OrgGate::new("org", 4);
        gate.observe(200, &headers(&[("x-ratelimit-delay", "4.000")]));
        assert_eq!(
            ready_after(&gate, Priority::Interactive).await,
            Duration::ZERO
        );
        assert_eq!(
            ready_after(&gate, Priority::Background).await,
            Duration::from_secs(4)
        );

        // Retry-After binds both lanes.
        gate.observe(429, &headers(&[("retry-after", "3")]));
        assert_eq!(
            ready_after(&gate, Priority::Interactive).await,
            Duration::from_secs(3)
        );
        gate.observe(429, &headers(&[("retry-after", "3")]));
        assert_eq!(
            ready_after(&gate, Priority::Background).await,
            Duration::from_secs(3)
        );
        assert_eq!(gate.responses_429(), 2);

        // So does an exhausted budget: for the time the window takes to
        // free a TSTU (the 200 in use are gone in 4 to 5 s).
        gate.observe(200, &budget_headers(200, 0, 5));
        let waited = ready_after(&gate, Priority::Interactive).await;
        assert!(
            waited >= Duration::from_millis(19) && waited <= Duration::from_millis(26),
            "{waited:?}"
        );
        let causes: Vec<ThrottleCause> = gate.events().iter().map(|e| e.cause).collect();
        assert_eq!(
            causes,
            [
                ThrottleCause::RateLimitDelay,
                ThrottleCause::RetryAfter,
                ThrottleCause::RetryAfter,
                ThrottleCause::RateLimitReset
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_mandatory_pause_outlasting_the_pacing_binds_background_requests() {
        let gate = OrgGate::new("org", 4);
        gate.observe(200, &headers(&[("x-ratelimit-delay", "1.000")]));
        gate.observe(200, &headers(&[("retry-after", "3")]));
        assert_eq!(
            ready_after(&gate, Priority::Background).await,
            Duration::from_secs(3)
        );
        assert_eq!(
            gate.last_slowed().map(|(_, c)| c),
            Some(ThrottleCause::RetryAfter)
        );
    }

    #[test]
    fn budget_reflects_the_last_headers() {
        let gate = OrgGate::new("org", 4);
        assert_eq!(gate.budget(), None);
        gate.observe(200, &budget_headers(200, 150, 0));
        let first = gate.budget().unwrap_or_else(|| panic!("budget"));
        assert_eq!((first.limit, first.remaining), (Some(200.0), 150.0));
        assert_eq!(first.resource.as_deref(), Some("Core"));
        // An answer without the headers (usage low) keeps the last snapshot.
        gate.observe(200, &headers(&[]));
        assert_eq!(gate.budget(), Some(first.clone()));
        // Nonsense from the network is ignored, not trusted.
        gate.observe(
            200,
            &headers(&[
                ("x-ratelimit-limit", "-3"),
                ("x-ratelimit-remaining", "NaN"),
                ("x-ratelimit-reset", "soon"),
            ]),
        );
        assert_eq!(gate.budget(), Some(first));
        gate.observe(200, &budget_headers(200, 12, 30));
        let last = gate.budget().unwrap_or_else(|| panic!("budget"));
        assert_eq!(last.remaining, 12.0);
        assert!(last.reset > SystemTime::now() + Duration::from_secs(28));
        assert_eq!(gate.last_slowed(), None, "observing is not waiting");

        let report = gate.report();
        assert_eq!(report.budget, Some(last));
        assert_eq!(report.answers, 4);
        let json = serde_json::to_value(&report).unwrap_or_default();
        let reset = json["budget"]["reset"].as_str().unwrap_or_default();
        assert!(reset.ends_with('Z') && reset.contains('T'), "{json}");
        assert_eq!(json["budget"]["limit"], 200.0);
        assert!(json["background_pause"].is_object(), "{json}");
        assert!(json["interactive_pause"].is_null(), "{json}");
    }

    #[tokio::test(start_paused = true)]
    async fn events_stay_bounded_after_thousands_of_waits() {
        let gate = OrgGate::new("org", 4);
        // The status doubles as a sequence number, to see which events were kept.
        for round in 0..3_000u16 {
            gate.observe(round, &headers(&[("retry-after", "0.001")]));
            let _ = gate
                .wait_turn(Priority::Background, Duration::from_secs(1))
                .await;
        }
        let events = gate.events();
        assert_eq!(events.len(), EVENT_HISTORY);
        assert_eq!(gate.waits(), 3_000);
        // The newest are kept, oldest first.
        assert_eq!(events.first().map(|e| e.status), Some(3_000 - 256));
        assert_eq!(events.last().map(|e| e.status), Some(2_999));
        // 0.001 s as f64 may land a nanosecond short of a millisecond.
        let total = gate.report().total_wait_ms;
        assert!((2_999..=3_000).contains(&total), "{total}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_naive_mode_holds_nothing_and_hands_back_a_refusals_retry_after() {
        let gate = OrgGate::new("org", 4).with_governor(false);
        let on_200 = headers(&[("retry-after", "5"), ("x-ratelimit-delay", "2.0")]);
        assert_eq!(gate.observe(200, &on_200), None);
        assert_eq!(gate.observe(200, &budget_headers(200, 0, 60)), None);
        assert_eq!(
            ready_after(&gate, Priority::Background).await,
            Duration::ZERO
        );
        assert_eq!(
            gate.observe(429, &headers(&[("retry-after", "2")])),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            gate.observe(503, &headers(&[("retry-after", "1")])),
            Some(Duration::from_secs(1))
        );
        // The caller sleeps it: the gate itself still lets everyone through.
        assert_eq!(
            ready_after(&gate, Priority::Background).await,
            Duration::ZERO
        );
        assert_eq!(gate.responses_429(), 1);
        // The budget is still recorded: it is information, not behaviour.
        assert_eq!(gate.budget().map(|b| b.remaining), Some(0.0));
        assert!(!gate.report().governor);
    }
}
