// git.push service-hook deliveries: payload shape, Basic Auth, Azure DevOps' retry schedule, subscriptions API.

use std::time::Duration;

use crate::common::*;
use ado_emulator::{FileChange, SubscriptionStatus, WebhookTarget};
use base64::Engine;
use serde_json::{json, Value};

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

#[tokio::test]
async fn push_delivery_with_basic_auth_and_payload_shape() {
    let (url, rec) = receiver(vec![]).await;
    let w = world_with(|c| c.with_webhook(&url, "hook-user", "hook-pass")).await;
    let before = w
        .emu
        .branch_head(ORG, "Alpha", "app", "main")
        .unwrap()
        .unwrap();
    let sha = w
        .emu
        .commit(
            ORG,
            "Alpha",
            "app",
            "main",
            vec![FileChange::put("src/c.py", "C = 3\n")],
            "add c",
        )
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || rec.hits.lock().len() == 1).await);
    let (headers, body) = rec.hits.lock()[0].clone();
    assert_eq!(headers["authorization"], basic("hook-user", "hook-pass"));
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));

    // Same top-level keys as Microsoft's sample, plus subscriptionId / notificationId.
    let sample: Value = serde_json::from_str(
        r#"{"id":"","eventType":"","publisherId":"","scope":"","message":{},"detailedMessage":{},"resource":{},
            "resourceVersion":"","resourceContainers":{},"createdDate":""}"#,
    )
    .unwrap();
    for k in sample.as_object().unwrap().keys() {
        assert!(body.get(k).is_some(), "payload lacks {k}");
    }
    assert_eq!(body["eventType"], "git.push");
    assert_eq!(body["publisherId"], "tfs");
    assert!(body["subscriptionId"].is_string());
    assert_eq!(body["notificationId"], 1);
    let r = &body["resource"];
    assert_eq!(r["refUpdates"][0]["name"], "refs/heads/main");
    assert_eq!(r["refUpdates"][0]["oldObjectId"], before.as_str());
    assert_eq!(r["refUpdates"][0]["newObjectId"], sha.as_str());
    assert_eq!(r["commits"][0]["commitId"], sha.as_str());
    assert_eq!(r["commits"][0]["comment"], "add c");
    assert_eq!(
        r["repository"]["id"],
        w.emu.repository_id(ORG, "Alpha", "app").unwrap().as_str()
    );
    assert_eq!(r["repository"]["defaultBranch"], "refs/heads/main");
    assert_eq!(r["pushId"], 3);
    assert_eq!(body["resourceContainers"]["collection"]["id"], ORG_ID);
    assert!(body["resourceContainers"]["account"]["id"].is_string());
    assert_eq!(
        body["resourceContainers"]["project"]["id"],
        w.emu.project_id(ORG, "Alpha").unwrap().as_str()
    );

    // A second push: new event id, notificationId 2; branch creation has a zero old id.
    w.emu
        .set_branch(ORG, "Alpha", "app", "feature/x", Some(&sha))
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || rec.hits.lock().len() == 2).await);
    let second = rec.hits.lock()[1].1.clone();
    assert_eq!(second["notificationId"], 2);
    assert_ne!(second["id"], body["id"]);
    assert_eq!(
        second["resource"]["refUpdates"][0]["oldObjectId"],
        "0000000000000000000000000000000000000000"
    );

    // set_webhook(None) stops deliveries.
    w.emu.set_webhook(None);
    w.emu
        .commit(
            ORG,
            "Alpha",
            "app",
            "main",
            vec![FileChange::put("src/d.py", "D = 4\n")],
            "add d",
        )
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rec.hits.lock().len(), 2);
}

#[tokio::test]
async fn retries_transient_failures_then_succeeds() {
    let (url, rec) = receiver(vec![503, 503, 502]).await;
    // ×0.05: the 1 s, 2 s, 4 s schedule becomes 50, 100, 200 ms.
    let w = world_with(|c| c.with_webhook(&url, "u", "p").with_retry_time_scale(0.05)).await;
    w.emu
        .commit(
            ORG,
            "Alpha",
            "app",
            "main",
            vec![FileChange::put("r.py", "R = 1\n")],
            "retry me",
        )
        .unwrap();
    let deliveries = w.emu.wait_for_deliveries(4, Duration::from_secs(10)).await;
    assert_eq!(deliveries.len(), 4);
    let statuses: Vec<Option<u16>> = deliveries.iter().map(|d| d.status).collect();
    assert_eq!(statuses, vec![Some(503), Some(503), Some(502), Some(200)]);
    assert_eq!(
        deliveries.iter().map(|d| d.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    // Same event, same notification, on every attempt.
    let hits = rec.hits.lock().clone();
    assert!(hits
        .iter()
        .all(|(_, b)| b["id"] == hits[0].1["id"] && b["notificationId"] == 1));
    // Exponential backoff.
    let gaps: Vec<Duration> = deliveries
        .windows(2)
        .map(|p| p[1].at.duration_since(p[0].at).unwrap_or_default())
        .collect();
    for (gap, min_ms) in gaps.iter().zip([50u64, 100, 200]) {
        assert!(*gap >= Duration::from_millis(min_ms), "gaps {gaps:?}");
    }
    let subs = w.emu.subscriptions();
    assert_eq!(subs[0].status, SubscriptionStatus::Enabled);
}

#[tokio::test]
async fn enduring_failure_probation_and_gone() {
    // 500 is enduring: probation retries (scaled), then success restores "enabled".
    let (url, rec) = receiver(vec![500, 500]).await;
    let w = world_with(|c| {
        c.with_webhook(&url, "u", "p")
            .with_retry_time_scale(0.00002)
    })
    .await;
    w.emu
        .commit(
            ORG,
            "Alpha",
            "app",
            "main",
            vec![FileChange::put("e.py", "E = 1\n")],
            "enduring",
        )
        .unwrap();
    let d = w.emu.wait_for_deliveries(3, Duration::from_secs(10)).await;
    assert_eq!(d.len(), 3, "{d:?}");
    assert!(!d[0].probation && d[1].probation && d[2].probation);
    assert!(
        wait_until(Duration::from_secs(2), || w.emu.subscriptions()[0].status
            == SubscriptionStatus::Enabled)
        .await
    );
    assert_eq!(rec.hits.lock().len(), 3);

    // 410 disables the subscription at once.
    let (url2, _rec2) = receiver(vec![410]).await;
    let w2 = world_with(|c| c.with_webhook(&url2, "u", "p")).await;
    w2.emu
        .commit(
            ORG,
            "Alpha",
            "app",
            "main",
            vec![FileChange::put("g.py", "G = 1\n")],
            "gone",
        )
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || w2.emu.subscriptions()[0].status
            == SubscriptionStatus::DisabledBySystem)
        .await
    );
    assert_eq!(w2.emu.webhook_deliveries().len(), 1);
}

#[tokio::test]
async fn subscriptions_api_and_filtered_delivery() {
    let (url, rec) = receiver(vec![]).await;
    let w = world().await;
    let token = w.token().await;
    let hooks = format!(
        "{}/_apis/hooks/subscriptions?api-version=7.1",
        w.emu.org_url(ORG)
    );
    let repo_id = w.emu.repository_id(ORG, "Alpha", "app").unwrap();
    let body = json!({
        "publisherId": "tfs", "eventType": "git.push", "resourceVersion": "1.0",
        "consumerId": "webHooks", "consumerActionId": "httpRequest",
        "publisherInputs": {"projectId": w.emu.project_id(ORG, "Alpha").unwrap(), "repository": repo_id, "branch": "main"},
        "consumerInputs": {"url": url, "basicAuthUsername": "sub-user", "basicAuthPassword": "sub-pass",
                           "resourceDetailsToSend": "all", "messagesToSend": "none", "detailedMessagesToSend": "none"}
    });
    let r = w
        .http
        .post(&hooks)
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["status"], "enabled");
    assert_eq!(created["consumerInputs"]["basicAuthPassword"], "********");
    assert_eq!(created["publisherInputs"]["hostId"], ORG_ID);
    assert!(created["url"].as_str().unwrap().ends_with(&id));

    let list: Value = w
        .http
        .get(&hooks)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["count"], 1);
    let one_url = format!(
        "{}/_apis/hooks/subscriptions/{id}?api-version=7.1",
        w.emu.org_url(ORG)
    );
    let one: Value = w
        .http
        .get(&one_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["id"], id.as_str());

    // Filtered: a push to another branch is not delivered; one to main is, with the subscription's inputs.
    w.emu
        .commit(
            ORG,
            "Alpha",
            "app",
            "other",
            vec![FileChange::put("o.py", "O = 1\n")],
            "other branch",
        )
        .unwrap();
    w.emu
        .commit(
            ORG,
            "Beta",
            "lib",
            "main",
            vec![FileChange::put("l2.py", "L = 2\n")],
            "other repo",
        )
        .unwrap();
    w.emu
        .commit(
            ORG,
            "Alpha",
            "app",
            "main",
            vec![FileChange::put("m.py", "M = 1\n")],
            "main",
        )
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || rec.hits.lock().len() == 1).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let hits = rec.hits.lock().clone();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].0["authorization"], basic("sub-user", "sub-pass"));
    assert_eq!(hits[0].1["subscriptionId"], id.as_str());
    assert!(hits[0].1.get("message").is_none(), "messagesToSend=none");

    // Notifications history.
    let n_url = format!(
        "{}/_apis/hooks/subscriptions/{id}/notifications?api-version=7.1",
        w.emu.org_url(ORG)
    );
    let n: Value = w
        .http
        .get(&n_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(n["value"][0]["result"], "succeeded");

    // Validation and permissions.
    let bad = json!({"publisherId": "tfs", "eventType": "git.push", "consumerId": "webHooks",
                     "consumerActionId": "httpRequest", "consumerInputs": {"url": "not a url"}});
    assert_eq!(
        w.http
            .post(&hooks)
            .bearer_auth(&token)
            .json(&bad)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let stake = w.token_for(STAKE_CLIENT, STAKE_SECRET).await;
    assert_eq!(
        w.http
            .post(&hooks)
            .bearer_auth(&stake)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );

    // Delete.
    assert_eq!(
        w.http
            .delete(&one_url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        w.http
            .get(&one_url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn admin_commit_endpoint_fires_the_webhook() {
    let (url, rec) = receiver(vec![]).await;
    let w = world().await;
    let admin = format!("{}/_emulator", w.emu.base_url());
    let r = w
        .http
        .post(format!("{admin}/webhook"))
        .json(&WebhookTarget::new(&url, "a", "b"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = w
        .http
        .post(format!("{admin}/orgs/{ORG}/Alpha/app/commits"))
        .json(&json!({"branch": "main", "message": "via admin",
                      "changes": [{"op": "put", "path": "admin.py", "content": "A = 1\n"},
                                  {"op": "put", "path": "bin.dat", "content": {"base64": "AAEC"}},
                                  {"op": "delete", "path": "README.md"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    let sha = v["commitId"].as_str().unwrap().to_string();
    assert_eq!(
        w.emu
            .branch_head(ORG, "Alpha", "app", "main")
            .unwrap()
            .as_deref(),
        Some(sha.as_str())
    );
    assert!(wait_until(Duration::from_secs(5), || rec.hits.lock().len() == 1).await);
    assert_eq!(
        rec.hits.lock()[0].1["resource"]["commits"][0]["commitId"],
        sha.as_str()
    );
    // Errors: unknown repository, deleting a missing file.
    let r = w
        .http
        .post(format!("{admin}/orgs/{ORG}/Alpha/nope/commits"))
        .json(&json!({"branch": "main", "message": "x", "changes": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = w
        .http
        .post(format!("{admin}/orgs/{ORG}/Alpha/app/commits"))
        .json(&json!({"branch": "main", "message": "x", "changes": [{"op": "delete", "path": "missing.txt"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let d: Vec<Value> = w
        .http
        .get(format!("{admin}/webhook/deliveries"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["payload"]["eventType"], "git.push");
}
