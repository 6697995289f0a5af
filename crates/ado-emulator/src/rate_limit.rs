//! Azure DevOps' global consumption limit, modelled: throughput units (TSTUs) charged per identity in a
//! sliding window, warning headers before the limit, delayed answers above it, `429` + TF400733 far above it.
//!
//! Off unless a [`RateLimitModel`] is set (configuration `rate_limit`, `--rate-limit JSON`,
//! `PUT /_emulator/rate-limit`, [`crate::Emulator::set_rate_limit`]); when off nothing is charged and no
//! header is added, so the injected `Throttle429` / `RetryAfterOn200` faults stay the only rate-limit
//! signals. The two are independent: faults act before authentication (in the fault middleware), the model
//! after it (in the DevOps router), because it needs the caller's identity.
//!
//! What Microsoft documents ([DOC] `azure-devops-docs docs/integrate/concepts/rate-limits.md`): 200 TSTUs per
//! sliding five-minute window per identity; above it requests are delayed "from a few milliseconds per request
//! up to 30 seconds"; blocked requests get `429` and TF400733; `Retry-After`, `X-RateLimit-Resource`,
//! `-Limit`, `-Remaining`, `-Reset` are sent "before requests start getting delayed", `X-RateLimit-Delay`
//! only when delayed, and a delayed request still answers `200`. What it does not publish, and is therefore
//! [INFER] here: the TSTU cost of each call, when the warning headers start, where delaying turns into
//! blocking, and how the delay grows.
//!
//! Per request (decided on the usage *before* the request, since Azure DevOps only learns a call's cost by
//! running it):
//! * usage ≥ `limit × block_factor`: `429`, not charged (the call does not run), counted as blocked;
//! * usage ≥ `limit`: charged, delayed (the emulator sleeps) and answered normally with `X-RateLimit-Delay`,
//!   `X-RateLimit-Remaining: 0` and `Retry-After`;
//! * otherwise charged; once usage after the charge reaches `limit × warn_fraction` the answer carries
//!   `X-RateLimit-Resource/-Limit/-Remaining/-Reset`.
//!
//! `X-RateLimit-Reset` is, as documented, when usage would be back to 0 were consumption to stop now (the
//! newest charge leaving the window); `Retry-After` is how long until a request would no longer be delayed
//! (enough of the oldest charges leaving it).
//!
//! Only authenticated Azure DevOps REST calls are charged: the token endpoint belongs to Entra ID, not Azure
//! DevOps, and a refused call (no or bad credentials, not a member, bad `api-version`) did no work worth
//! metering. Usage is kept as (instant, cost) pairs pruned on every charge, so memory is bounded by what one
//! window holds.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::http::set_header;

/// Azure DevOps' documented ceiling of one delay.
pub const MAX_DELAY_MS: u64 = 30_000;

/// Costs are kept in thousandths of a TSTU so sums do not drift the way repeated `f64` additions do.
const MILLI: u64 = 1000;

/// Which kind of Azure DevOps call a request is, for its cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// Metadata lists and gets: projects, repositories, refs.
    List,
    /// One object or a page of them: items (file or listing), trees, blobs, commits, pushes.
    Read,
    /// `diffs/commits`.
    Diff,
    /// A zip: items as zip (`$format=zip`, `Accept: application/zip`, `download=true` +
    /// `recursionLevel=full`) and "Get Blobs Zip" (`POST .../blobs`).
    Archive,
    /// Everything else (connection data, service-hook subscriptions, unknown routes).
    Other,
}

/// TSTUs charged per kind of call. There is deliberately no entry for the token endpoint: Entra ID is not
/// Azure DevOps and never charges TSTUs.
///
/// [INFER] every default: Microsoft publishes no per-call cost (the usage page shows it after the fact). They
/// are roughly proportional to the database and storage work of each call, and pessimistic (a typical user
/// spends about 1 TSTU in five minutes), so that a few hundred calls in a window reach the limit and a
/// client's throttling path can be exercised without millions of requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestCosts {
    /// Projects, repositories, refs. [INFER] default 1.
    pub list: f64,
    /// Items, trees, blobs, commits, pushes. [INFER] default 0.5.
    pub read: f64,
    /// `diffs/commits`. [INFER] default 2.
    pub diff: f64,
    /// Zip downloads. [INFER] default 10 (a whole tree read from storage at once).
    pub archive: f64,
    /// Any other authenticated Azure DevOps call. [INFER] default 1.
    pub default: f64,
}

impl Default for RequestCosts {
    fn default() -> Self {
        RequestCosts {
            list: 1.0,
            read: 0.5,
            diff: 2.0,
            archive: 10.0,
            default: 1.0,
        }
    }
}

impl RequestCosts {
    /// Every kind of call at the same cost, so thresholds count requests.
    pub fn uniform(cost: f64) -> Self {
        RequestCosts {
            list: cost,
            read: cost,
            diff: cost,
            archive: cost,
            default: cost,
        }
    }

    /// Cost of one call of `kind`.
    pub fn of(&self, kind: RequestKind) -> f64 {
        match kind {
            RequestKind::List => self.list,
            RequestKind::Read => self.read,
            RequestKind::Diff => self.diff,
            RequestKind::Archive => self.archive,
            RequestKind::Other => self.default,
        }
    }
}

/// The rate-limit model. JSON (every field optional, defaults shown):
/// `{"limit":200,"window_secs":300,"costs":{"list":1.0,"read":0.5,"diff":2.0,"archive":10.0,"default":1.0},
///   "warn_fraction":0.8,"block_factor":1.5,"max_delay_ms":30000,"resource":"Core"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitModel {
    /// TSTUs per window and identity ([DOC] 200).
    pub limit: u32,
    /// Length of the sliding window in seconds ([DOC] 300).
    pub window_secs: u64,
    /// TSTUs per kind of call.
    pub costs: RequestCosts,
    /// The `X-RateLimit-*` headers (without `-Delay`) are sent once usage reaches `limit × warn_fraction`.
    /// [INFER] default 0.8: Microsoft only says they come "before requests start getting delayed".
    pub warn_fraction: f64,
    /// Usage at or above `limit × block_factor` is answered `429`; between `limit` and that, requests are
    /// delayed. [INFER] default 1.5 (Microsoft documents both outcomes, not the threshold between them).
    pub block_factor: f64,
    /// Delay of a request at the blocking threshold; it grows linearly from 1 ms just above the limit.
    /// At most 30 000 ([DOC] "up to 30 seconds", the default); tests use a few milliseconds.
    /// [INFER] the linear growth.
    pub max_delay_ms: u64,
    /// Value of `X-RateLimit-Resource` (display only, per Microsoft). [INFER] default "Core".
    pub resource: String,
}

impl Default for RateLimitModel {
    fn default() -> Self {
        RateLimitModel {
            limit: 200,
            window_secs: 300,
            costs: RequestCosts::default(),
            warn_fraction: 0.8,
            block_factor: 1.5,
            max_delay_ms: MAX_DELAY_MS,
            resource: "Core".into(),
        }
    }
}

/// Why a [`RateLimitModel`] was refused.
#[derive(Debug, Error, PartialEq)]
pub enum RateLimitError {
    #[error("rate limit: limit must be at least 1 TSTU")]
    Limit,
    #[error("rate limit: window_secs must be between 1 and 86400")]
    Window,
    #[error("rate limit: cost `{0}` must be a finite number >= 0")]
    Cost(&'static str),
    #[error("rate limit: warn_fraction must be between 0 and 1")]
    WarnFraction,
    #[error("rate limit: block_factor must be a finite number >= 1")]
    BlockFactor,
    #[error("rate limit: max_delay_ms must be at most 30000 (Azure DevOps delays up to 30 s)")]
    MaxDelay,
    #[error("rate limit: resource must be non-empty printable ASCII (it is sent as a header)")]
    Resource,
}

impl RateLimitModel {
    /// Checks the model; every value comes from outside (configuration, CLI, admin endpoint).
    pub fn validate(&self) -> Result<(), RateLimitError> {
        if self.limit == 0 {
            return Err(RateLimitError::Limit);
        }
        if !(1..=86_400).contains(&self.window_secs) {
            return Err(RateLimitError::Window);
        }
        let costs = &self.costs;
        for (name, cost) in [
            ("list", costs.list),
            ("read", costs.read),
            ("diff", costs.diff),
            ("archive", costs.archive),
            ("default", costs.default),
        ] {
            // The upper bound keeps the conversion to thousandths far from u64 overflow.
            if !(cost.is_finite() && (0.0..=1e9).contains(&cost)) {
                return Err(RateLimitError::Cost(name));
            }
        }
        if !(self.warn_fraction.is_finite() && (0.0..=1.0).contains(&self.warn_fraction)) {
            return Err(RateLimitError::WarnFraction);
        }
        if !(self.block_factor.is_finite() && self.block_factor >= 1.0) {
            return Err(RateLimitError::BlockFactor);
        }
        if self.max_delay_ms > MAX_DELAY_MS {
            return Err(RateLimitError::MaxDelay);
        }
        let printable = |byte: u8| (0x20..0x7f).contains(&byte);
        if self.resource.is_empty() || !self.resource.bytes().all(printable) {
            return Err(RateLimitError::Resource);
        }
        Ok(())
    }

    fn limit_milli(&self) -> u64 {
        u64::from(self.limit) * MILLI
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.window_secs)
    }
}

fn to_milli(tstu: f64) -> u64 {
    // validate() bounds costs to [0, 1e9], so the cast neither saturates nor truncates meaningfully.
    (tstu * MILLI as f64).round() as u64
}

fn from_milli(milli: u64) -> f64 {
    milli as f64 / MILLI as f64
}

/// Rate-limit headers of one answer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RateLimitHeaders {
    pub resource: String,
    pub limit: u32,
    /// Whole TSTUs left in the window.
    pub remaining: u64,
    /// Unix second when, were all consumption to stop now, usage would be
    /// back to 0 (Microsoft's definition): when the newest charge leaves
    /// the window; now when nothing is in it.
    pub reset_epoch: u64,
    /// Seconds until then, at least 1; only on delayed and blocked answers.
    pub retry_after_secs: Option<u64>,
    /// Only on delayed answers.
    pub delay: Option<Duration>,
}

impl RateLimitHeaders {
    pub fn apply(&self, headers: &mut HeaderMap) {
        set_header(headers, "x-ratelimit-resource", &self.resource);
        set_header(headers, "x-ratelimit-limit", &self.limit.to_string());
        set_header(
            headers,
            "x-ratelimit-remaining",
            &self.remaining.to_string(),
        );
        set_header(headers, "x-ratelimit-reset", &self.reset_epoch.to_string());
        if let Some(secs) = self.retry_after_secs {
            set_header(headers, "retry-after", &secs.to_string());
        }
        if let Some(delay) = self.delay {
            set_header(
                headers,
                "x-ratelimit-delay",
                &format!("{:.3}", delay.as_secs_f64()),
            );
        }
    }
}

/// What to do with a request.
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    /// Serve it, after `delay` (zero unless delayed), adding `headers` when there are any.
    Serve {
        delay: Duration,
        headers: Option<RateLimitHeaders>,
    },
    /// Answer `429` with these headers.
    Block(RateLimitHeaders),
}

impl Verdict {
    const UNLIMITED: Verdict = Verdict::Serve {
        delay: Duration::ZERO,
        headers: None,
    };
}

/// Usage and counters of one identity.
#[derive(Debug, Default)]
struct Usage {
    display_name: String,
    /// (when, thousandths of a TSTU), oldest first.
    window: VecDeque<(Instant, u64)>,
    /// Sum of `window`'s costs.
    in_window: u64,
    charged: u64,
    delayed: u64,
    blocked: u64,
    delay_ms: u64,
}

impl Usage {
    fn prune(&mut self, now: Instant, window: Duration) {
        while let Some(&(at, cost)) = self.window.front() {
            if now.saturating_duration_since(at) < window {
                break;
            }
            self.window.pop_front();
            self.in_window = self.in_window.saturating_sub(cost);
        }
    }

    /// Time from `now` until at least one whole TSTU is left, i.e. until enough of the oldest charges
    /// slide out of the window.
    fn until_remaining(&self, now: Instant, model: &RateLimitModel) -> Duration {
        let limit = model.limit_milli();
        let mut usage = self.in_window;
        if usage + MILLI <= limit {
            return Duration::ZERO;
        }
        for &(at, cost) in &self.window {
            usage = usage.saturating_sub(cost);
            if usage + MILLI <= limit {
                return (at + model.window()).saturating_duration_since(now);
            }
        }
        model.window()
    }

    fn headers(
        &self,
        now: Instant,
        wall: SystemTime,
        model: &RateLimitModel,
        retry_after: bool,
        delay: Option<Duration>,
    ) -> RateLimitHeaders {
        let wait = self.until_remaining(now, model);
        let drained = self
            .window
            .back()
            .map(|&(at, _)| (at + model.window()).saturating_duration_since(now))
            .unwrap_or_default();
        let wall_secs = wall
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let reset_epoch = if drained.is_zero() {
            wall_secs.floor() as u64
        } else {
            (wall_secs + drained.as_secs_f64()).ceil() as u64
        };
        let remaining = if delay.is_some() {
            0
        } else {
            model.limit_milli().saturating_sub(self.in_window) / MILLI
        };
        RateLimitHeaders {
            resource: model.resource.clone(),
            limit: model.limit,
            remaining,
            reset_epoch,
            retry_after_secs: retry_after.then(|| (wait.as_secs_f64().ceil() as u64).max(1)),
            delay,
        }
    }
}

/// One identity's usage and counters, as `GET /_emulator/rate-limit` reports them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdentityUsage {
    /// Object id of the service principal (or the user of a personal access token).
    pub identity: String,
    pub display_name: String,
    /// TSTUs charged in the current window.
    pub usage: f64,
    /// Whole TSTUs left in the window (what `X-RateLimit-Remaining` would say).
    pub remaining: u64,
    /// Requests charged (served, delayed or not) since the model was turned on.
    pub requests_charged: u64,
    /// Requests answered after a delay.
    pub requests_delayed: u64,
    /// Requests answered `429`.
    pub requests_blocked: u64,
    /// Sum of the delays, in milliseconds.
    pub total_delay_ms: u64,
}

/// The model, if on, and per-identity usage. One lock: a charge is a few arithmetic operations.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    model: Option<RateLimitModel>,
    usage: HashMap<String, Usage>,
}

impl RateLimiter {
    pub fn new(model: Option<RateLimitModel>) -> Self {
        RateLimiter {
            inner: Mutex::new(Inner {
                model,
                usage: HashMap::new(),
            }),
        }
    }

    /// Turns the model on or replaces it (usage so far is kept, so thresholds can change mid-run), or turns
    /// it off (`None`), which also forgets all usage.
    pub fn set(&self, model: Option<RateLimitModel>) -> Result<(), RateLimitError> {
        if let Some(model) = &model {
            model.validate()?;
        }
        let mut inner = self.inner.lock();
        if model.is_none() {
            inner.usage.clear();
        }
        inner.model = model;
        Ok(())
    }

    pub fn model(&self) -> Option<RateLimitModel> {
        self.inner.lock().model.clone()
    }

    /// Usage per identity, sorted by identity.
    pub fn report(&self) -> Vec<IdentityUsage> {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        let Some(model) = inner.model.clone() else {
            return Vec::new();
        };
        let mut out: Vec<IdentityUsage> = inner
            .usage
            .iter_mut()
            .map(|(identity, usage)| {
                usage.prune(now, model.window());
                IdentityUsage {
                    identity: identity.clone(),
                    display_name: usage.display_name.clone(),
                    usage: from_milli(usage.in_window),
                    remaining: model.limit_milli().saturating_sub(usage.in_window) / MILLI,
                    requests_charged: usage.charged,
                    requests_delayed: usage.delayed,
                    requests_blocked: usage.blocked,
                    total_delay_ms: usage.delay_ms,
                }
            })
            .collect();
        out.sort_by(|left, right| left.identity.cmp(&right.identity));
        out
    }

    /// Charges one call of `kind` to `identity` and says how to answer it.
    pub fn charge(&self, identity: &str, display_name: &str, kind: RequestKind) -> Verdict {
        self.charge_at(
            identity,
            display_name,
            kind,
            Instant::now(),
            SystemTime::now(),
        )
    }

    fn charge_at(
        &self,
        identity: &str,
        display_name: &str,
        kind: RequestKind,
        now: Instant,
        wall: SystemTime,
    ) -> Verdict {
        let mut inner = self.inner.lock();
        let Some(model) = inner.model.clone() else {
            return Verdict::UNLIMITED;
        };
        let usage = inner
            .usage
            .entry(identity.to_ascii_lowercase())
            .or_default();
        if usage.display_name.is_empty() {
            usage.display_name = display_name.to_string();
        }
        usage.prune(now, model.window());
        let limit = model.limit_milli();
        let before = usage.in_window;
        // f64 is fine for the thresholds: they are compared once, never accumulated.
        if before as f64 >= limit as f64 * model.block_factor {
            usage.blocked += 1;
            return Verdict::Block(usage.headers(now, wall, &model, true, None));
        }
        let cost = to_milli(model.costs.of(kind));
        usage.window.push_back((now, cost));
        usage.in_window = usage.in_window.saturating_add(cost);
        usage.charged += 1;
        if before >= limit {
            let zone = limit as f64 * (model.block_factor - 1.0);
            let overuse = if zone > 0.0 {
                ((usage.in_window - limit) as f64 / zone).clamp(0.0, 1.0)
            } else {
                1.0
            };
            let delay_ms = ((model.max_delay_ms as f64 * overuse).ceil() as u64)
                .max(1)
                .min(model.max_delay_ms);
            let delay = Duration::from_millis(delay_ms);
            usage.delayed += 1;
            usage.delay_ms = usage.delay_ms.saturating_add(delay_ms);
            let headers = usage.headers(now, wall, &model, true, Some(delay));
            return Verdict::Serve {
                delay,
                headers: Some(headers),
            };
        }
        let warn = usage.in_window as f64 >= limit as f64 * model.warn_fraction;
        Verdict::Serve {
            delay: Duration::ZERO,
            headers: warn.then(|| usage.headers(now, wall, &model, false, None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> RateLimitModel {
        RateLimitModel {
            limit: 10,
            window_secs: 60,
            costs: RequestCosts {
                list: 1.0,
                read: 0.5,
                diff: 2.0,
                archive: 5.0,
                default: 1.0,
            },
            warn_fraction: 0.5,
            block_factor: 1.5,
            max_delay_ms: 1000,
            resource: "Core".into(),
        }
    }

    fn limiter() -> RateLimiter {
        RateLimiter::new(Some(model()))
    }

    #[test]
    fn defaults_are_the_documented_limit_and_valid() {
        let model: RateLimitModel = serde_json::from_str("{}").expect("all fields default");
        assert_eq!((model.limit, model.window_secs), (200, 300));
        assert_eq!(model.max_delay_ms, 30_000);
        assert_eq!(model.validate(), Ok(()));
    }

    #[test]
    fn invalid_models_are_refused() {
        let cases: Vec<(RateLimitModel, RateLimitError)> = vec![
            (
                RateLimitModel {
                    limit: 0,
                    ..model()
                },
                RateLimitError::Limit,
            ),
            (
                RateLimitModel {
                    window_secs: 0,
                    ..model()
                },
                RateLimitError::Window,
            ),
            (
                RateLimitModel {
                    costs: RequestCosts {
                        diff: -1.0,
                        ..RequestCosts::default()
                    },
                    ..model()
                },
                RateLimitError::Cost("diff"),
            ),
            (
                RateLimitModel {
                    warn_fraction: 1.5,
                    ..model()
                },
                RateLimitError::WarnFraction,
            ),
            (
                RateLimitModel {
                    block_factor: 0.5,
                    ..model()
                },
                RateLimitError::BlockFactor,
            ),
            (
                RateLimitModel {
                    max_delay_ms: 30_001,
                    ..model()
                },
                RateLimitError::MaxDelay,
            ),
            (
                RateLimitModel {
                    resource: "a\nb".into(),
                    ..model()
                },
                RateLimitError::Resource,
            ),
        ];
        for (model, expected) in cases {
            assert_eq!(model.validate(), Err(expected));
        }
        assert!(serde_json::from_str::<RateLimitModel>(r#"{"limt":1}"#).is_err());
    }

    #[test]
    fn off_means_unlimited() {
        let limiter = RateLimiter::new(None);
        for _ in 0..1000 {
            assert_eq!(
                limiter.charge("a", "A", RequestKind::Archive),
                Verdict::UNLIMITED
            );
        }
        assert!(limiter.report().is_empty());
    }

    #[test]
    fn warn_then_delay_then_block() {
        let limiter = limiter();
        let start = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut verdicts = Vec::new();
        for step in 0..16u64 {
            let at = start + Duration::from_millis(step);
            verdicts.push(limiter.charge_at("SP", "sp", RequestKind::List, at, wall));
        }
        // 1..=4 TSTUs: below 50 % of 10.
        for verdict in &verdicts[..4] {
            assert_eq!(verdict, &Verdict::UNLIMITED);
        }
        // 5..=10 TSTUs: headers, no delay, remaining counts down to 0.
        for (index, verdict) in verdicts[4..10].iter().enumerate() {
            let Verdict::Serve { delay, headers } = verdict else {
                panic!("served: {verdict:?}");
            };
            assert!(delay.is_zero());
            let headers = headers.as_ref().expect("warning headers");
            assert_eq!(headers.remaining, 5 - index as u64);
            assert_eq!(headers.delay, None);
            assert_eq!(headers.retry_after_secs, None);
        }
        // Reset is when all usage would be gone: the newest charge (this
        // one) leaves the 60 s window, whatever is left.
        let Verdict::Serve {
            headers: Some(at_nine),
            ..
        } = &verdicts[8]
        else {
            panic!("headers at 9");
        };
        assert_eq!(at_nine.reset_epoch, 1_000_060);
        assert_eq!(at_nine.retry_after_secs, None);
        let Verdict::Serve {
            headers: Some(at_ten),
            ..
        } = &verdicts[9]
        else {
            panic!("headers at 10");
        };
        assert_eq!(at_ten.remaining, 0);
        assert_eq!(at_ten.reset_epoch, 1_000_060);
        // 10..15 before the request: delayed, growing with the overuse.
        let mut last = Duration::ZERO;
        for verdict in &verdicts[10..15] {
            let Verdict::Serve {
                delay,
                headers: Some(headers),
            } = verdict
            else {
                panic!("delayed: {verdict:?}");
            };
            assert!(*delay > last, "{delay:?} after {last:?}");
            last = *delay;
            assert_eq!(headers.delay, Some(*delay));
            assert_eq!(headers.remaining, 0);
            assert_eq!(headers.retry_after_secs, Some(60));
        }
        assert_eq!(last, Duration::from_millis(1000), "at the block threshold");
        // 15 before the request: blocked, not charged.
        assert!(matches!(verdicts[15], Verdict::Block(_)));
        let report = limiter.report();
        assert_eq!(report.len(), 1);
        assert_eq!(report[0].identity, "sp");
        assert_eq!(report[0].usage, 15.0);
        assert_eq!(
            (
                report[0].requests_charged,
                report[0].requests_delayed,
                report[0].requests_blocked
            ),
            (15, 5, 1)
        );
        assert_eq!(report[0].total_delay_ms, 200 + 400 + 600 + 800 + 1000);
    }

    #[test]
    fn usage_slides_out_of_the_window() {
        let limiter = limiter();
        let start = Instant::now();
        let wall = SystemTime::now();
        for _ in 0..15 {
            limiter.charge_at("sp", "", RequestKind::List, start, wall);
        }
        assert!(matches!(
            limiter.charge_at("sp", "", RequestKind::List, start, wall),
            Verdict::Block(_)
        ));
        let later = start + Duration::from_secs(60);
        assert_eq!(
            limiter.charge_at("sp", "", RequestKind::List, later, wall),
            Verdict::UNLIMITED
        );
    }

    #[test]
    fn costs_follow_the_kind_and_fractions_do_not_drift() {
        let limiter = limiter();
        let now = Instant::now();
        let wall = SystemTime::now();
        for _ in 0..10 {
            limiter.charge_at("sp", "", RequestKind::Read, now, wall);
        }
        limiter.charge_at("sp", "", RequestKind::Archive, now, wall);
        let report = limiter.report();
        assert_eq!(report[0].usage, 10.0);
        assert_eq!(report[0].remaining, 0);
    }

    #[test]
    fn turning_off_forgets_usage() {
        let limiter = limiter();
        limiter.charge("sp", "", RequestKind::List);
        assert_eq!(limiter.report().len(), 1);
        assert_eq!(limiter.set(None), Ok(()));
        assert_eq!(limiter.set(Some(model())), Ok(()));
        assert!(limiter.report().is_empty());
        assert_eq!(
            limiter.set(Some(RateLimitModel {
                limit: 0,
                ..model()
            })),
            Err(RateLimitError::Limit)
        );
        assert_eq!(limiter.model(), Some(model()));
    }
}
