// The rate-limit governor against the emulator's TSTU model: a burst of
// background requests larger than the identity's budget, with the governor
// on (paced by the server's headers: no 429) and off (the naive client the
// benchmark compares against: 429s, recovered by retries).

use std::time::{Duration, Instant};

use crate::common::*;
use ado_emulator::{IdentityUsage, RateLimitModel};
use spicehub_azure::{AzureClient, Priority, ThrottleCause};

/// 20 TSTUs per 2 s, one per projects listing; delays stay small so the naive
/// run reaches the blocking threshold (1.5 × the limit) quickly.
fn small_budget() -> RateLimitModel {
    RateLimitModel {
        limit: 20,
        window_secs: 2,
        warn_fraction: 0.5,
        max_delay_ms: 50,
        ..RateLimitModel::default()
    }
}

/// Requests in the burst: a bit over two windows' worth of budget.
const BURST: usize = 45;

struct Run {
    wall: Duration,
    usage: IdentityUsage,
}

/// Fires `BURST` projects listings at once (the way a sync fans out) and waits for all.
async fn burst(client: &AzureClient, f: &Fixture) -> Run {
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..BURST {
        let c = client.clone();
        set.spawn(async move { c.list_projects().await.map(|p| p.len()) });
    }
    let mut done = 0;
    while let Some(joined) = set.join_next().await {
        let listed = joined
            .unwrap_or_else(|e| panic!("task: {e}"))
            .unwrap_or_else(|e| panic!("listing: {e}"));
        assert_eq!(listed, 2);
        done += 1;
    }
    assert_eq!(done, BURST);
    let wall = start.elapsed();
    let usage = f
        .emu
        .rate_limit_usage()
        .into_iter()
        .find(|u| u.requests_charged > 0)
        .unwrap_or_else(|| panic!("the emulator charged nobody"));
    Run { wall, usage }
}

#[tokio::test]
async fn the_governor_keeps_a_burst_over_budget_free_of_429s() {
    let f = fixture().await;
    f.emu
        .set_rate_limit(Some(small_budget()))
        .unwrap_or_else(|e| panic!("{e}"));
    let run = burst(&f.client, &f).await;
    eprintln!(
        "governor on: {BURST} requests in {:?}; charged {}, delayed {} ({} ms), blocked {}",
        run.wall,
        run.usage.requests_charged,
        run.usage.requests_delayed,
        run.usage.total_delay_ms,
        run.usage.requests_blocked
    );
    assert_eq!(run.usage.requests_blocked, 0, "{:?}", run.usage);
    assert_eq!(f.client.gate().responses_429(), 0);
    assert_eq!(run.usage.requests_charged, BURST as u64);
    // It got there by slowing down as the budget ran low (pacing), and
    // by obeying the few delays it ran into, and says so.
    assert!(f.client.gate().waits() > 0);
    assert!(
        f.client.last_slowed().is_some(),
        "the gate never slowed a request"
    );
    let causes: Vec<ThrottleCause> = f.client.throttle_events().iter().map(|e| e.cause).collect();
    eprintln!("waits: {causes:?}");
    assert!(
        causes.contains(&ThrottleCause::RateLimitPacing),
        "{causes:?}"
    );
    let budget = f
        .client
        .budget()
        .unwrap_or_else(|| panic!("no budget recorded"));
    assert_eq!(budget.limit, Some(20.0));
    assert_eq!(budget.resource.as_deref(), Some("Core"));
    assert!(budget.remaining <= 20.0);

    // The Providers page's view: one report per organization of the identity.
    let other = f
        .client
        .for_organization(STAKEHOLDER_ORG)
        .unwrap_or_else(|e| panic!("{e}"));
    let gates = other.gates();
    let orgs: Vec<&str> = gates.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(orgs, [ORG, STAKEHOLDER_ORG]);
    assert_eq!(gates[0].1.budget.as_ref().and_then(|b| b.limit), Some(20.0));
    assert!(gates[1].1.budget.is_none());
}

#[tokio::test]
async fn without_the_governor_the_same_burst_is_blocked_and_recovers() {
    let f = fixture_with(|c| c, |c| c.governor = false).await;
    f.emu
        .set_rate_limit(Some(small_budget()))
        .unwrap_or_else(|e| panic!("{e}"));
    let run = burst(&f.client, &f).await;
    eprintln!(
        "governor off: {BURST} requests in {:?}; charged {}, delayed {} ({} ms), blocked {}",
        run.wall,
        run.usage.requests_charged,
        run.usage.requests_delayed,
        run.usage.total_delay_ms,
        run.usage.requests_blocked
    );
    assert!(run.usage.requests_blocked > 0, "{:?}", run.usage);
    assert_eq!(
        f.client.gate().responses_429(),
        run.usage.requests_blocked,
        "every 429 the emulator sent was seen"
    );
    assert!(run.usage.requests_delayed > 0, "{:?}", run.usage);
    // Its waits were the 429s' Retry-After, slept per request.
    assert!(f
        .client
        .throttle_events()
        .iter()
        .all(|e| e.cause == ThrottleCause::RetryAfter && e.status == 429));
    assert!(!f.client.gate_report().governor);
}

#[tokio::test]
async fn an_interactive_request_uses_its_own_lane_end_to_end() {
    let f = fixture().await;
    let interactive = f.client.with_priority(Priority::Interactive);
    assert_eq!(interactive.priority(), Priority::Interactive);
    assert_eq!(f.client.priority(), Priority::Background);
    let projects = interactive
        .list_projects()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(projects.len(), 2);
    // Same gate, same family: the answer is counted once, both lanes are free again.
    let report = f.client.gate_report();
    assert_eq!(report.answers, 1);
    assert_eq!(
        report.interactive_permits_free,
        spicehub_azure::retry::DEFAULT_INTERACTIVE_CONCURRENCY
    );
    assert_eq!(report.background_permits_free, 4);
    let other = interactive
        .for_organization(STAKEHOLDER_ORG)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(other.priority(), Priority::Interactive);
}
