// Azure DevOps authentication / authorization answers over real HTTP.

use crate::common::*;
use ado_emulator::ApiVersionPolicy;
use serde_json::Value;

async fn envelope(r: reqwest::Response) -> (u16, Value) {
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({s}): {text}"));
    for k in [
        "$id",
        "innerException",
        "message",
        "typeName",
        "typeKey",
        "errorCode",
        "eventId",
    ] {
        assert!(v.get(k).is_some(), "envelope lacks {k}: {v}");
    }
    (s, v)
}

#[tokio::test]
async fn missing_garbage_and_expired_tokens() {
    let w = world().await;
    let url = format!("{}/_apis/projects?api-version=7.1", w.emu.org_url(ORG));
    // No credentials: 401 + challenges + tenant header.
    let r = w.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let challenges: Vec<String> = r
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        challenges.iter().any(|c| c.starts_with("Basic realm=")),
        "{challenges:?}"
    );
    assert!(challenges
        .iter()
        .any(|c| c.starts_with("Bearer authorization_uri=")));
    assert_eq!(r.headers()["x-vss-resourcetenant"], TENANT);
    let (_, v) = envelope(r).await;
    assert!(v["message"].as_str().unwrap().starts_with("TF400813"));

    // Garbage bearer: 203 + HTML on GET; 401 with the suppress header; 401 on DELETE.
    let r = w
        .http
        .get(&url)
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 203);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let r = w
        .http
        .get(&url)
        .bearer_auth("garbage")
        .header("X-TFS-FedAuthRedirect", "Suppress")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = w
        .http
        .delete(format!(
            "{}/_apis/hooks/subscriptions/x?api-version=7.1",
            w.emu.org_url(ORG)
        ))
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Expired token (expire_tokens) → 203.
    let token = w.token().await;
    assert_eq!(w.get(&token, "_apis/projects").await.status(), 200);
    w.emu.expire_tokens();
    assert_eq!(w.get(&token, "_apis/projects").await.status(), 203);
}

#[tokio::test]
async fn membership_tenant_and_access_levels() {
    let w = world().await;
    let token = w.token().await;
    // Not added to the organization → 401 TF401444.
    let r = w
        .http
        .get(format!(
            "{}/_apis/projects?api-version=7.1",
            w.emu.org_url("nobody")
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (s, v) = envelope(r).await;
    assert_eq!(s, 401);
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!(
            "TF401444: Please sign-in at least once as {TENANT}\\{TENANT}\\"
        )),
        "{msg}"
    );

    // Organization of another tenant → 401 TF400813.
    let r = w
        .http
        .get(format!(
            "{}/_apis/projects?api-version=7.1",
            w.emu.org_url("other")
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (s, v) = envelope(r).await;
    assert_eq!(s, 401);
    assert!(v["message"]
        .as_str()
        .unwrap()
        .starts_with("TF400813: The user '"));
    assert_eq!(v["typeKey"], "UnauthorizedRequestException");

    // Stakeholder: projects yes, repositories no.
    let stake = w.token_for(STAKE_CLIENT, STAKE_SECRET).await;
    assert_eq!(w.get_json(&stake, "_apis/projects").await["count"], 2);
    assert_eq!(
        w.get_json(&stake, "Alpha/_apis/git/repositories").await["count"],
        0
    );
    let (s, v) = envelope(w.get(&stake, "Alpha/_apis/git/repositories/app").await).await;
    assert_eq!(s, 404);
    assert!(v["message"].as_str().unwrap().starts_with("TF401019"));
    assert_eq!(v["typeKey"], "GitRepositoryNotFoundException");

    // A repository restricted to nobody: hidden and 404 for a Basic member too.
    let names: Vec<String> = w.get_json(&token, "Alpha/_apis/git/repositories").await["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["app", "empty", "old"]);
    assert_eq!(
        w.get(&token, "Alpha/_apis/git/repositories/secret")
            .await
            .status(),
        404
    );

    // Legacy PAT through Basic.
    let r = w
        .http
        .get(format!(
            "{}/_apis/projects?api-version=7.1",
            w.emu.org_url(ORG)
        ))
        .basic_auth("", Some("legacy-pat-value"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn not_found_answers() {
    let w = world().await;
    let token = w.token().await;
    // Unknown organization: 404 without an ADO envelope nor tenant header.
    let r = w
        .http
        .get(format!(
            "{}/no-such-org/_apis/projects?api-version=7.1",
            w.emu.devops_url()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers().get("x-vss-resourcetenant").is_none());
    assert!(!r.text().await.unwrap().contains("typeKey"));
    // Unknown project.
    let (s, v) = envelope(w.get(&token, "Nope/_apis/git/repositories").await).await;
    assert_eq!(s, 404);
    assert!(v["message"].as_str().unwrap().starts_with("TF200016"));
    // Unknown repository / repository by name without project.
    let (s, v) = envelope(w.get(&token, "Alpha/_apis/git/repositories/nope").await).await;
    assert_eq!(s, 404);
    assert!(v["message"].as_str().unwrap().starts_with("TF401019"));
    assert_eq!(
        w.get(&token, "_apis/git/repositories/app").await.status(),
        404
    );
    // By id without project works.
    let id = w.emu.repository_id(ORG, "Alpha", "app").unwrap();
    assert_eq!(
        w.get_json(&token, &format!("_apis/git/repositories/{id}"))
            .await["name"],
        "app"
    );
    // Disabled repository: listed with isDisabled, content refused.
    let v = w.get_json(&token, "Alpha/_apis/git/repositories/old").await;
    assert_eq!(v["isDisabled"], true);
    assert_eq!(
        w.get(&token, "Alpha/_apis/git/repositories/old/refs")
            .await
            .status(),
        404
    );
    // Empty repository: no defaultBranch; items refused with VS403403.
    let v = w
        .get_json(&token, "Alpha/_apis/git/repositories/empty")
        .await;
    assert!(v.get("defaultBranch").is_none());
    let (s, v) = envelope(
        w.get(&token, "Alpha/_apis/git/repositories/empty/items?path=/x")
            .await,
    )
    .await;
    assert_eq!(s, 404);
    assert!(v["message"].as_str().unwrap().starts_with("VS403403"));
}

#[tokio::test]
async fn api_version_rules() {
    let w = world().await;
    let token = w.token().await;
    let base = format!("{}/_apis/projects", w.emu.org_url(ORG));
    let r = w.http.get(&base).bearer_auth(&token).send().await.unwrap();
    let (s, v) = envelope(r).await;
    assert_eq!(s, 400);
    assert_eq!(v["typeKey"], "VssVersionNotSpecifiedException");
    // In the Accept header.
    let r = w
        .http
        .get(&base)
        .bearer_auth(&token)
        .header("Accept", "application/json; api-version=7.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for (v, key) in [
        ("9.0", "VssVersionOutOfRangeException"),
        ("7.2", "VssInvalidPreviewVersionException"),
    ] {
        let r = w
            .http
            .get(format!("{base}?api-version={v}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let (s, body) = envelope(r).await;
        assert_eq!((s, body["typeKey"].as_str().unwrap()), (400, key));
    }
    assert_eq!(
        w.http
            .get(format!("{base}?api-version=7.1-preview.1"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Lenient policy: GET without api-version is served.
    let w2 = world_with(|c| c.with_api_version_policy(ApiVersionPolicy::Lenient)).await;
    let t2 = w2.token().await;
    let r = w2
        .http
        .get(format!("{}/_apis/projects", w2.emu.org_url(ORG)))
        .bearer_auth(&t2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn request_log_records_auth_presence_and_time() {
    let w = world().await;
    let token = w.token().await;
    w.emu.clear_request_log();
    let _ = w.get(&token, "_apis/projects").await;
    let _ = w
        .http
        .get(format!(
            "{}/_apis/projects?api-version=7.1",
            w.emu.org_url(ORG)
        ))
        .send()
        .await;
    let log = w.emu.request_log();
    assert_eq!(log.len(), 2);
    assert!(log[0].has_authorization && !log[1].has_authorization);
    assert_eq!(log[0].status, 200);
    assert_eq!(log[1].status, 401);
    assert!(log[1].received_instant >= log[0].received_instant);
    assert!(log[0].path_and_query().contains("api-version=7.1"));
    assert!(!log[0].body_text().contains(&token));
}
