// TSTU rate limiting per identity over real HTTP: warning headers, delayed
// 200s, 429 + TF400733, the sliding window, per-identity accounting, what is
// not charged, and the admin endpoint that turns it on and reports counters.

use std::time::{Duration, Instant};

use crate::common::*;
use ado_emulator::{RateLimitModel, RequestCosts};
use serde_json::{json, Value};

const RATE_HEADERS: [&str; 6] = [
    "x-ratelimit-resource",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-delay",
    "retry-after",
];

/// Every call costs 1 TSTU, so thresholds are counted in requests.
fn flat(limit: u32, window_secs: u64, block_factor: f64, max_delay_ms: u64) -> RateLimitModel {
    RateLimitModel {
        limit,
        window_secs,
        costs: RequestCosts::uniform(1.0),
        warn_fraction: 0.5,
        block_factor,
        max_delay_ms,
        resource: "Core".into(),
    }
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|value| value.to_str().ok())
}

fn number(r: &reqwest::Response, name: &str) -> u64 {
    header(r, name)
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("numeric {name} in {:?}", r.headers()))
}

fn now_epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn assert_no_rate_headers(r: &reqwest::Response, context: &str) {
    for name in RATE_HEADERS {
        assert!(
            !r.headers().contains_key(name),
            "{context}: unexpected {name}"
        );
    }
}

impl World {
    fn admin(&self) -> String {
        format!("{}/_emulator/rate-limit", self.emu.base_url())
    }

    async fn rate_limit_state(&self) -> Value {
        let r = self.http.get(self.admin()).send().await.expect("GET");
        assert_eq!(r.status(), 200);
        r.json().await.expect("json")
    }

    async fn put_rate_limit(&self, body: &Value) -> reqwest::Response {
        self.http
            .put(self.admin())
            .json(body)
            .send()
            .await
            .expect("PUT")
    }

    async fn projects(&self, token: &str) -> reqwest::Response {
        self.get(token, "_apis/projects").await
    }

    async fn projects_with_pat(&self) -> reqwest::Response {
        self.http
            .get(format!(
                "{}/_apis/projects?api-version=7.1",
                self.emu.org_url(ORG)
            ))
            .basic_auth("", Some("legacy-pat-value"))
            .send()
            .await
            .expect("request")
    }
}

#[tokio::test]
async fn off_by_default_no_headers() {
    let w = world().await;
    let token = w.token().await;
    for step in 0..30 {
        let r = w.projects(&token).await;
        assert_eq!(r.status(), 200);
        assert_no_rate_headers(&r, &format!("request {step}"));
    }
    let state = w.rate_limit_state().await;
    assert_eq!(state, json!({"model": null, "identities": []}));
    assert!(w.emu.rate_limit_usage().is_empty());
}

#[tokio::test]
async fn warning_headers_between_warn_fraction_and_limit() {
    let w = world().await;
    let token = w.token().await;
    let r = w
        .put_rate_limit(&json!({
            "limit": 10, "window_secs": 60, "warn_fraction": 0.5, "block_factor": 1.5, "max_delay_ms": 50,
            "costs": {"list": 1.0, "default": 1.0}
        }))
        .await;
    assert_eq!(r.status(), 200);
    let stored: Value = r.json().await.expect("json");
    assert_eq!(stored["limit"], 10);
    assert_eq!(
        stored["costs"]["archive"], 10.0,
        "unspecified cost defaults"
    );
    for step in 1..=4 {
        let r = w.projects(&token).await;
        assert_eq!(r.status(), 200);
        assert_no_rate_headers(&r, &format!("below warn, request {step}"));
    }
    for step in 5..=10u64 {
        let before = now_epoch();
        let r = w.projects(&token).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-ratelimit-resource"), Some("Core"));
        assert_eq!(number(&r, "x-ratelimit-limit"), 10);
        assert_eq!(number(&r, "x-ratelimit-remaining"), 10 - step);
        // When all usage would be gone: 60 s after this, the newest call.
        let reset = number(&r, "x-ratelimit-reset");
        assert!(
            reset >= before + 60 && reset <= now_epoch() + 61,
            "reset when the newest call leaves the window"
        );
        assert!(!r.headers().contains_key("x-ratelimit-delay"));
        assert!(!r.headers().contains_key("retry-after"));
    }
    let state = w.rate_limit_state().await;
    let identities = state["identities"].as_array().expect("identities");
    assert_eq!(identities.len(), 1);
    assert_eq!(identities[0]["display_name"], "sync app");
    assert_eq!(identities[0]["usage"], 10.0);
    assert_eq!(identities[0]["remaining"], 0);
    assert_eq!(identities[0]["requests_charged"], 10);
    assert_eq!(identities[0]["requests_delayed"], 0);
}

#[tokio::test]
async fn delayed_above_the_limit_with_retry_after_on_200() {
    let w = world().await;
    let token = w.token().await;
    w.emu
        .set_rate_limit(Some(flat(10, 60, 1.5, 500)))
        .expect("valid model");
    for _ in 0..10 {
        assert_eq!(w.projects(&token).await.status(), 200);
    }
    let started = Instant::now();
    let r = w.projects(&token).await;
    let took = started.elapsed();
    assert_eq!(r.status(), 200);
    let delay: f64 = header(&r, "x-ratelimit-delay")
        .expect("x-ratelimit-delay")
        .parse()
        .expect("seconds");
    let text = header(&r, "x-ratelimit-delay").unwrap_or_default();
    assert_eq!(text.split('.').nth(1).map(str::len), Some(3), "{text}");
    // 11 TSTUs: 1/5 of the way from the limit (10) to blocking (15) → 500 ms × 0.2.
    assert_eq!(delay, 0.1);
    assert!(
        took >= Duration::from_secs_f64(delay),
        "answered in {took:?}, delay {delay}"
    );
    assert_eq!(number(&r, "x-ratelimit-remaining"), 0);
    assert!(number(&r, "retry-after") >= 1);
    assert!(number(&r, "x-ratelimit-reset") > now_epoch());
    let v: Value = r.json().await.expect("normal body");
    assert!(v["count"].as_u64().is_some(), "{v}");
    // The delay grows with the overuse.
    let r = w.projects(&token).await;
    let second: f64 = header(&r, "x-ratelimit-delay")
        .and_then(|value| value.parse().ok())
        .expect("delay");
    assert!(second > delay, "{second} > {delay}");
    let usage = w.emu.rate_limit_usage();
    assert_eq!(usage[0].requests_delayed, 2);
    assert_eq!(usage[0].total_delay_ms, 100 + 200);
    assert_eq!(usage[0].requests_blocked, 0);
}

#[tokio::test]
async fn blocked_with_429_and_tf400733_above_block_factor() {
    let w = world().await;
    let token = w.token().await;
    w.emu
        .set_rate_limit(Some(flat(4, 60, 1.5, 10)))
        .expect("valid model");
    // 4 served, 2 delayed (usage 4 and 5 before them), then usage 6 = 4 × 1.5.
    for _ in 0..6 {
        assert_eq!(w.projects(&token).await.status(), 200);
    }
    let r = w.projects(&token).await;
    assert_eq!(r.status(), 429);
    assert_eq!(number(&r, "x-ratelimit-remaining"), 0);
    assert_eq!(number(&r, "x-ratelimit-limit"), 4);
    let retry_after = number(&r, "retry-after");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(!r.headers().contains_key("x-ratelimit-delay"));
    let v: Value = r.json().await.expect("json");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("TF400733: The request has been canceled"),
        "{v}"
    );
    assert_eq!(v["typeKey"], "RequestBlockedException");
    // Blocked calls do not run, so they are not charged: usage stays at 6.
    assert_eq!(w.projects(&token).await.status(), 429);
    let state = w.rate_limit_state().await;
    let me = &state["identities"][0];
    assert_eq!(me["usage"], 6.0);
    assert_eq!(me["requests_charged"], 6);
    assert_eq!(me["requests_delayed"], 2);
    assert_eq!(me["requests_blocked"], 2);
}

#[tokio::test]
async fn usage_slides_out_of_the_window() {
    let w = world().await;
    let token = w.token().await;
    // block_factor 1: no delay zone, the third call in a second is refused.
    w.emu
        .set_rate_limit(Some(flat(2, 1, 1.0, 0)))
        .expect("valid model");
    assert_eq!(w.projects(&token).await.status(), 200);
    assert_eq!(w.projects(&token).await.status(), 200);
    let r = w.projects(&token).await;
    assert_eq!(r.status(), 429);
    assert_eq!(number(&r, "retry-after"), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = w.projects(&token).await;
    assert_eq!(r.status(), 200);
    assert_eq!(number(&r, "x-ratelimit-remaining"), 1);
    let usage = w.emu.rate_limit_usage();
    assert_eq!(usage[0].usage, 1.0);
    assert_eq!(usage[0].requests_charged, 3);
}

#[tokio::test]
async fn identities_are_accounted_separately() {
    let w = world().await;
    let token = w.token().await;
    w.emu
        .set_rate_limit(Some(flat(2, 60, 1.0, 0)))
        .expect("valid model");
    for _ in 0..2 {
        assert_eq!(w.projects(&token).await.status(), 200);
    }
    assert_eq!(w.projects(&token).await.status(), 429);
    // A personal access token is another identity (its user): not throttled.
    let r = w.projects_with_pat().await;
    assert_eq!(r.status(), 200);
    assert_eq!(number(&r, "x-ratelimit-remaining"), 1);
    let usage = w.emu.rate_limit_usage();
    assert_eq!(usage.len(), 2, "{usage:?}");
    let app = usage
        .iter()
        .find(|entry| entry.display_name == "sync app")
        .expect("the app's identity");
    let pat = usage
        .iter()
        .find(|entry| entry.display_name != "sync app")
        .expect("the PAT user's identity");
    assert_ne!(app.identity, pat.identity);
    assert_eq!(
        (app.requests_charged, app.requests_blocked),
        (2, 1),
        "{app:?}"
    );
    assert_eq!(
        (pat.requests_charged, pat.requests_blocked),
        (1, 0),
        "{pat:?}"
    );
}

#[tokio::test]
async fn token_endpoint_and_refused_calls_are_not_charged() {
    let w = world_with(|c| c.with_rate_limit(flat(1, 60, 1.0, 0))).await;
    // Entra is not Azure DevOps: any number of token calls, no headers, no usage.
    let mut token = String::new();
    for _ in 0..5 {
        let r = w
            .token_response(
                TENANT,
                &[
                    ("client_id", CLIENT),
                    ("client_secret", SECRET),
                    ("scope", SCOPE),
                    ("grant_type", "client_credentials"),
                ],
            )
            .await;
        assert_eq!(r.status(), 200);
        assert_no_rate_headers(&r, "token endpoint");
        let v: Value = r.json().await.expect("json");
        token = v["access_token"].as_str().unwrap_or_default().to_string();
    }
    // Unauthenticated and refused calls do no work worth metering.
    let anonymous = w
        .http
        .get(format!(
            "{}/_apis/projects?api-version=7.1",
            w.emu.org_url(ORG)
        ))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status(), 401);
    assert_no_rate_headers(&anonymous, "anonymous");
    assert_eq!(w.projects("not-a-token").await.status(), 203);
    assert!(w.emu.rate_limit_usage().is_empty());
    // The first real call is charged (limit 1: it reaches the limit, so headers).
    let r = w.projects(&token).await;
    assert_eq!(r.status(), 200);
    assert_eq!(number(&r, "x-ratelimit-remaining"), 0);
    assert_eq!(w.emu.rate_limit_usage()[0].requests_charged, 1);
}

#[tokio::test]
async fn admin_endpoint_validates_and_turns_off() {
    let w = world().await;
    let token = w.token().await;
    let r = w.put_rate_limit(&json!({"limit": 0})).await;
    assert_eq!(r.status(), 400);
    let r = w.put_rate_limit(&json!({"max_delay_ms": 60000})).await;
    assert_eq!(r.status(), 400);
    let r = w.put_rate_limit(&json!({"limit": 5, "unknown": 1})).await;
    assert_eq!(r.status(), 400);
    assert!(w.emu.rate_limit().is_none());
    let r = w.put_rate_limit(&json!({})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(w.emu.rate_limit(), Some(RateLimitModel::default()));
    assert_eq!(w.projects(&token).await.status(), 200);
    let state = w.rate_limit_state().await;
    assert_eq!(state["model"]["limit"], 200);
    assert_eq!(state["identities"][0]["usage"], 1.0);
    assert_eq!(state["identities"][0]["remaining"], 199);
    let r = w.http.delete(w.admin()).send().await.expect("DELETE");
    assert_eq!(r.status(), 204);
    assert_eq!(
        w.rate_limit_state().await,
        json!({"model": null, "identities": []})
    );
    let r = w.projects(&token).await;
    assert_no_rate_headers(&r, "turned off");
}

#[tokio::test]
async fn injected_faults_stay_independent() {
    use ado_emulator::{Fault, FaultRule, FaultScope};
    let w = world().await;
    let token = w.token().await;
    w.emu
        .set_rate_limit(Some(flat(100, 60, 1.5, 0)))
        .expect("valid model");
    w.emu.add_fault(FaultRule::once(
        FaultScope::DevOps,
        Fault::Throttle429 {
            retry_after_secs: 9,
        },
    ));
    let r = w.projects(&token).await;
    assert_eq!(r.status(), 429);
    assert_eq!(number(&r, "retry-after"), 9);
    // The fault answered before authentication: nothing was charged.
    assert!(w.emu.rate_limit_usage().is_empty());
    let r = w.projects(&token).await;
    assert_eq!(r.status(), 200);
    assert_no_rate_headers(&r, "below warn");
    assert_eq!(w.emu.rate_limit_usage()[0].requests_charged, 1);
}

#[tokio::test]
async fn archives_cost_more_than_lists() {
    let w = world().await;
    let token = w.token().await;
    w.emu
        .set_rate_limit(Some(RateLimitModel::default()))
        .expect("valid model");
    let r = w
        .get(
            &token,
            &format!(
                "{}/items?scopePath=/&recursionLevel=full&$format=zip",
                w.repo_url("app")
            ),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = w
        .get(&token, &format!("{}/refs?filter=heads/", w.repo_url("app")))
        .await;
    assert_eq!(r.status(), 200);
    let r = w
        .get(
            &token,
            &format!("{}/items?path=/README.md", w.repo_url("app")),
        )
        .await;
    assert_eq!(r.status(), 200);
    let usage = w.emu.rate_limit_usage();
    // Defaults: archive 10 + list 1 + read 0.5.
    assert_eq!(usage[0].usage, 11.5);
}
