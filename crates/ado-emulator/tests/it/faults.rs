// Every fault, through the Rust API and the admin endpoint.

use std::time::{Duration, Instant};

use crate::common::*;
use ado_emulator::{Fault, FaultRule, FaultScope};
use serde_json::{json, Value};

#[tokio::test]
async fn token_faults() {
    let w = world().await;
    let form = [
        ("client_id", CLIENT),
        ("client_secret", SECRET),
        ("scope", SCOPE),
        ("grant_type", "client_credentials"),
    ];
    for (code, status) in [
        (7000215u32, 401u16),
        (7000222, 401),
        (90002, 400),
        (700016, 400),
        (500011, 400),
    ] {
        w.emu.add_fault(FaultRule::once(
            FaultScope::Token,
            Fault::TokenError { aadsts: code },
        ));
        let (s, c, v) = aadsts(w.token_response(TENANT, &form).await).await;
        assert_eq!((s, c), (status, code), "{v}");
        assert!(v["error_description"]
            .as_str()
            .unwrap()
            .starts_with(&format!("AADSTS{code}:")));
    }
    // Consumed: the next call succeeds.
    assert_eq!(w.token_response(TENANT, &form).await.status(), 200);
    // 429 and 5xx on the token endpoint.
    w.emu.add_fault(FaultRule::once(
        FaultScope::Token,
        Fault::Throttle429 {
            retry_after_secs: 7,
        },
    ));
    let r = w.token_response(TENANT, &form).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    w.emu.add_fault(FaultRule::once(
        FaultScope::Token,
        Fault::ServerError { status: 503 },
    ));
    assert_eq!(w.token_response(TENANT, &form).await.status(), 503);
    // TokenError never applies to DevOps calls.
    let token = w.token().await;
    w.emu.add_fault(FaultRule::new(
        FaultScope::DevOps,
        Fault::TokenError { aadsts: 90002 },
    ));
    assert_eq!(w.get(&token, "_apis/projects").await.status(), 200);
    assert_eq!(w.emu.token_requests(), 9);
}

#[tokio::test]
async fn devops_answer_faults() {
    let w = world().await;
    let token = w.token().await;

    w.emu
        .add_fault(FaultRule::once(FaultScope::DevOps, Fault::SignInPage203));
    let r = w.get(&token, "_apis/projects").await;
    assert_eq!(r.status(), 203);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));

    w.emu.add_fault(FaultRule::once(
        FaultScope::DevOps,
        Fault::RedirectToSignIn302,
    ));
    let r = w.get(&token, "_apis/projects").await;
    assert_eq!(r.status(), 302);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.contains("/_signin?"), "{loc}");
    assert_eq!(
        w.http.get(&loc).send().await.unwrap().status(),
        200,
        "sign-in page is served"
    );

    w.emu
        .add_fault(FaultRule::once(FaultScope::DevOps, Fault::Unauthorized401));
    let r = w.get(&token, "_apis/projects").await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let v: Value = r.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().starts_with("TF400813"));

    w.emu.add_fault(FaultRule::once(
        FaultScope::DevOps,
        Fault::Throttle429 {
            retry_after_secs: 30,
        },
    ));
    let r = w.get(&token, "_apis/projects").await;
    assert_eq!(r.status(), 429);
    for h in [
        "retry-after",
        "x-ratelimit-resource",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        assert!(r.headers().contains_key(h), "missing {h}");
    }
    assert_eq!(r.headers()["retry-after"], "30");
    assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
    let v: Value = r.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().starts_with("TF400733"));

    w.emu.add_fault(FaultRule::once(
        FaultScope::DevOps,
        Fault::RetryAfterOn200 { secs: 3 },
    ));
    let r = w.get(&token, "_apis/projects").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["retry-after"], "3");
    assert!(r.headers().contains_key("x-ratelimit-delay"));

    for status in [500u16, 502, 503, 504] {
        w.emu.add_fault(FaultRule::once(
            FaultScope::DevOps,
            Fault::ServerError { status },
        ));
        assert_eq!(w.get(&token, "_apis/projects").await.status(), status);
    }
    // All consumed.
    assert_eq!(w.get(&token, "_apis/projects").await.status(), 200);
    assert!(w.emu.faults().is_empty());
}

#[tokio::test]
async fn scope_times_delay_and_path_matching() {
    let w = world().await;
    let token = w.token().await;
    w.emu.add_fault(FaultRule::times(
        FaultScope::PathContains("/refs".into()),
        Fault::ServerError { status: 503 },
        2,
    ));
    let refs = format!("{}/refs", w.repo_url("app"));
    assert_eq!(w.get(&token, &refs).await.status(), 503);
    assert_eq!(
        w.get(&token, "_apis/projects").await.status(),
        200,
        "other paths unaffected"
    );
    assert_eq!(w.get(&token, &refs).await.status(), 503);
    assert_eq!(w.get(&token, &refs).await.status(), 200);

    w.emu.add_fault(FaultRule::once(
        FaultScope::DevOps,
        Fault::Delay { ms: 400 },
    ));
    let t0 = Instant::now();
    assert_eq!(w.get(&token, "_apis/projects").await.status(), 200);
    assert!(t0.elapsed() >= Duration::from_millis(400));
    let _ = w.get(&token, "_apis/projects").await;
    let log = w.emu.request_log();
    assert!(log
        .iter()
        .any(|l| l.elapsed_ms >= 400 && l.faults.iter().any(|f| f.contains("Delay"))));
    // A `once` rule is spent: the next request carries no fault (read from
    // the log rather than timed, so a busy machine cannot fail it).
    let last = log.last().expect("logged");
    assert!(last.faults.is_empty(), "{:?}", last.faults);
}

#[tokio::test]
async fn cut_body_drops_the_connection() {
    let w = world().await;
    let token = w.token().await;
    let zip_path = format!(
        "{}/items?scopePath=/&recursionLevel=full&$format=zip",
        w.repo_url("app")
    );
    let full = w.get(&token, &zip_path).await.bytes().await.unwrap();
    assert!(full.len() > 100);
    w.emu.add_fault(FaultRule::once(
        FaultScope::PathContains("$format=zip".into()),
        Fault::CutBody { after_bytes: 50 },
    ));
    let r = w.get(&token, &zip_path).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"].to_str().unwrap(),
        full.len().to_string()
    );
    let body = r.bytes().await;
    assert!(body.is_err(), "the body must end early");
    // The log has the full body the emulator meant to send.
    let last = w.emu.request_log().pop().unwrap();
    assert_eq!(last.body.len(), full.len());
    // JSON bodies too.
    w.emu.add_fault(FaultRule::once(
        FaultScope::DevOps,
        Fault::CutBody { after_bytes: 10 },
    ));
    let r = w.get(&token, "_apis/projects").await;
    assert!(r.json::<Value>().await.is_err());
}

#[tokio::test]
async fn admin_endpoints_manage_faults_and_logs() {
    let w = world().await;
    let token = w.token().await;
    let admin = format!("{}/_emulator", w.emu.base_url());
    let r = w
        .http
        .post(format!("{admin}/faults"))
        .json(&json!([
            {"scope": "DevOps", "fault": {"ServerError": {"status": 502}}, "times": 1},
            {"scope": {"PathContains": "/_apis/projects"}, "fault": {"PageSize": {"n": 1}}},
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let active: Vec<FaultRule> = w
        .http
        .get(format!("{admin}/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(active.len(), 2);
    assert_eq!(active[1].fault, Fault::PageSize { n: 1 });
    assert_eq!(w.get(&token, "_apis/projects").await.status(), 502);
    let r = w.get(&token, "_apis/projects").await;
    assert_eq!(r.headers()["x-ms-continuationtoken"], "1");
    // A single rule object is accepted too; DELETE clears.
    let r = w
        .http
        .post(format!("{admin}/faults"))
        .json(&json!({"scope": "Token", "fault": "SignInPage203"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["active"], 2);
    assert_eq!(
        w.http
            .delete(format!("{admin}/faults"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert!(w.emu.faults().is_empty());
    // Request log over HTTP: admin calls are not logged.
    let log: Vec<Value> = w
        .http
        .get(format!("{admin}/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(log
        .iter()
        .all(|l| !l["path"].as_str().unwrap().starts_with("/_emulator")));
    assert!(log.iter().any(|l| l["status"] == 502));
    let t: Value = w
        .http
        .get(format!("{admin}/token-requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(t["count"], 1);
    assert_eq!(
        w.http
            .delete(format!("{admin}/requests"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert!(w.emu.request_log().is_empty());
    // Faults from the configuration ("per run").
    let w2 = world_with(|c| {
        c.with_faults(vec![FaultRule::new(
            FaultScope::Token,
            Fault::TokenError { aadsts: 7000222 },
        )])
    })
    .await;
    let (_, code, _) = aadsts(
        w2.token_response(
            TENANT,
            &[
                ("client_id", CLIENT),
                ("client_secret", SECRET),
                ("scope", SCOPE),
                ("grant_type", "client_credentials"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(code, 7000222);
}
