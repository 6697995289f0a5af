//! `POST /gateway/public/sync` over real HTTP against the real binary, on
//! SQLite and (when configured) PostgreSQL: authentication, limits, the
//! deliveries that are ignored, deduplication, and a push that queues exactly
//! one job — also one posted by the Azure DevOps emulator.

use crate::common;

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use common::*;
use serde_json::{json, Value};
use spicehub_core::crypto::SecretKey;
use spicehub_core::db::providers::{CredentialKind, NewProvider};
use spicehub_core::db::repositories::NewRepository;
use spicehub_core::db::Db;
use spicehub_core::sync::{JobKind, JobStatus, Queue, QueueConfig};

pub(crate) const USER: &str = "hook-user";
pub(crate) const PASSWORD: &str = "Zx8-webhook-password-0123456789";
pub(crate) const REPO: &str = "5f3c8a10-1111-4222-8333-944445555666";
const ORG_GUID: &str = "0a0a0a0a-1b1b-4c2c-8d3d-4e4e4e4e4e4e";
fn samples() -> std::path::PathBuf {
    ado_emulator::testkit::vectors_dir().join("azure-devops-docs/docs/service-hooks")
}

pub(crate) fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// Seeds a provider (webhook `USER`/`PASSWORD`) and `repo_id` tracking
/// `main`, with the key the hub will load from `data_dir`.
pub(crate) async fn seed(db_url: &str, data_dir: &Path, repo_id: &str) -> Db {
    let db = Db::connect(db_url).await.expect("connect");
    db.migrate().await.expect("migrate");
    let key = SecretKey::load_or_generate(&data_dir.join("secret.key")).expect("key");
    let provider = db
        .create_provider(
            &key,
            &NewProvider {
                display_name: "Contoso",
                tenant_id: "11111111-2222-4333-8444-555555555555",
                client_id: "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
                credential_kind: CredentialKind::ClientSecret,
                credential: b"client~secret",
                webhook_username: USER,
                webhook_password: PASSWORD,
                secret_expires_at: None,
            },
        )
        .await
        .expect("provider");
    let org = db
        .create_organization(&provider.id, "acme", Some(ORG_GUID))
        .await
        .expect("organization");
    db.create_repository(&NewRepository {
        id: repo_id,
        organization_id: &org.id,
        project_id: "6ce954b1-ce1f-45d1-b94d-e6bf2464ba2c",
        project_name: "Alpha",
        name: "app",
        tracked_branch: "main",
        web_url: None,
    })
    .await
    .expect("repository");
    db
}

pub(crate) fn push(event_id: &str, repo: &str, branch: &str, new: &str) -> Value {
    json!({
        "subscriptionId": "10e850da-0000-4000-8000-000000000001",
        "notificationId": 3,
        "id": event_id,
        "eventType": "git.push",
        "publisherId": "tfs",
        "resource": {
            "commits": [{"commitId": new, "comment": "change"}],
            "refUpdates": [{
                "name": branch,
                "oldObjectId": "aad331d8d3b131fa9ae03cf5e53965b51942618a",
                "newObjectId": new
            }],
            "repository": {
                "id": repo,
                "name": "app",
                "defaultBranch": "refs/heads/main",
                "project": {"id": "6ce954b1-ce1f-45d1-b94d-e6bf2464ba2c", "name": "Alpha"}
            },
            "pushId": 7
        },
        "resourceVersion": "1.0",
        "resourceContainers": {"account": {"id": ORG_GUID}, "collection": {"id": ORG_GUID}},
        "createdDate": "2026-11-23T10:00:00Z"
    })
}

struct Posted {
    status: u16,
    www_authenticate: Option<String>,
    body: Value,
}

async fn post(hub: &Hub, auth: Option<String>, body: impl Into<reqwest::Body>) -> Posted {
    let mut request = reqwest::Client::new()
        .post(format!("{}/gateway/public/sync", hub.url))
        .header("Content-Type", "application/json")
        .body(body);
    if let Some(auth) = auth {
        request = request.header("Authorization", auth);
    }
    let response = request.send().await.expect("post");
    let status = response.status().as_u16();
    let www_authenticate = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Posted {
        status,
        www_authenticate,
        body,
    }
}

async fn post_json(hub: &Hub, body: &Value) -> Posted {
    post(hub, Some(basic(USER, PASSWORD)), body.to_string()).await
}

fn queue(db: &Db) -> Queue {
    Queue::new(db.clone(), QueueConfig::default())
}

#[tokio::test]
async fn credentials_size_and_json_are_checked_in_that_order() {
    for test_db in TestDb::all().await {
        let (_dir, data) = data_dir();
        let db = seed(&test_db.url, &data, REPO).await;
        let hub = Hub::start_with(HubOptions {
            db: &test_db,
            data_dir: &data,
            env: vec![("SPICEHUB_WEBHOOK_BODY_LIMIT", "4096".into())],
        });
        let valid = push("e-1", REPO, "refs/heads/main", &"a".repeat(40)).to_string();
        let label = test_db.label;

        for auth in [
            None,
            Some(basic(USER, "wrong-password-0123456789")),
            Some(basic("someone", PASSWORD)),
            Some(format!("Bearer {PASSWORD}")),
            Some("Basic !!notbase64".to_owned()),
        ] {
            let r = post(&hub, auth.clone(), valid.clone()).await;
            assert_eq!(r.status, 401, "{label} {auth:?}");
            assert_eq!(
                r.www_authenticate.as_deref(),
                Some("Basic realm=\"spicehub\""),
                "{label}"
            );
        }
        // Credentials come before the body: a huge body without them is 401.
        let huge = "x".repeat(64 * 1024);
        assert_eq!(post(&hub, None, huge.clone()).await.status, 401, "{label}");
        let r = post(&hub, Some(basic(USER, PASSWORD)), huge).await;
        assert_eq!(r.status, 413, "{label}: {:?}", r.body);

        let r = post(&hub, Some(basic(USER, PASSWORD)), "{\"id\": \"x\", ").await;
        assert_eq!(r.status, 400, "{label}");
        assert_eq!(r.body["status"], "rejected");
        assert!(
            r.body["reason"]
                .as_str()
                .unwrap()
                .contains("malformed JSON"),
            "{label}: {:?}",
            r.body
        );
        let r = post(&hub, Some(basic(USER, PASSWORD)), "[1, 2]").await;
        assert_eq!(r.status, 400, "{label}");
        let r = post(
            &hub,
            Some(basic(USER, PASSWORD)),
            "{\"eventType\": \"git.push\"}",
        )
        .await;
        assert_eq!(r.status, 400, "{label}: no event id");

        // None of it was recorded or queued.
        assert!(
            db.recent_deliveries(10).await.unwrap().is_empty(),
            "{label}"
        );
        assert!(queue(&db).jobs_for(REPO).await.unwrap().is_empty());
        // The password is not in the logs.
        assert!(!hub.logs().contains(PASSWORD), "{label}");
        db.close().await;
    }
}

#[tokio::test]
async fn ignored_deliveries_get_200_and_are_recorded() {
    for test_db in TestDb::all().await {
        let (_dir, data) = data_dir();
        let db = seed(&test_db.url, &data, REPO).await;
        let hub = Hub::start(&test_db, &data);
        let label = test_db.label;
        let sha = "b".repeat(40);

        let mut other_event = push("e-pr", REPO, "refs/heads/main", &sha);
        other_event["eventType"] = json!("git.pullrequest.created");
        let cases = [
            (other_event, "event type `git.pullrequest.created`"),
            (
                push("e-branch", REPO, "refs/heads/feature/x", &sha),
                "not the tracked branch refs/heads/main",
            ),
            (
                push(
                    "e-unknown",
                    "99999999-8888-4777-8666-555555555555",
                    "refs/heads/main",
                    &sha,
                ),
                "is not replicated by this hub",
            ),
        ];
        for (body, reason) in &cases {
            let r = post_json(&hub, body).await;
            assert_eq!(r.status, 200, "{label}: {:?}", r.body);
            assert_eq!(r.body["status"], "ignored", "{label}");
            assert!(
                r.body["reason"].as_str().unwrap().contains(reason),
                "{label}: {:?}",
                r.body
            );
        }
        // The Test button's samples, each twice (same id each time): 200 every time.
        for file in [
            "events.git.push.sample.json",
            "events.git.push.sample.2024.json",
        ] {
            let sample = std::fs::read_to_string(samples().join(file)).expect("sample");
            for _ in 0..2 {
                let r = post(&hub, Some(basic(USER, PASSWORD)), sample.clone()).await;
                assert_eq!(r.status, 200, "{label} {file}");
                assert_eq!(r.body["status"], "ignored");
                assert!(r.body["reason"]
                    .as_str()
                    .unwrap()
                    .contains("test notification"));
            }
        }
        let deliveries = db.recent_deliveries(20).await.unwrap();
        assert_eq!(deliveries.len(), 7, "{label}");
        assert!(deliveries
            .iter()
            .all(|d| d.status == "ignored" && d.job_id.is_none()));
        assert!(
            queue(&db).jobs_for(REPO).await.unwrap().is_empty(),
            "{label}"
        );
        // The wrong-branch push still shows the repository is being hooked.
        let repo = db.repository(REPO).await.unwrap().unwrap();
        assert!(repo.last_webhook_at.is_some(), "{label}");
        db.close().await;
    }
}

#[tokio::test]
async fn a_push_queues_one_job_and_redeliveries_are_recognised() {
    for test_db in TestDb::all().await {
        let (_dir, data) = data_dir();
        let db = seed(&test_db.url, &data, REPO).await;
        // No runner may claim the job between the posts (in CI a runner
        // whose first look came late did): a web-only instance queues only.
        let hub = Hub::start_with(HubOptions {
            db: &test_db,
            data_dir: &data,
            env: vec![("SPICEHUB_SYNC_WORKERS", "0".into())],
        });
        let label = test_db.label;
        let first = "c".repeat(40);
        let second = "d".repeat(40);

        // Upper-case GUIDs name the same repository.
        let body = push("e-100", &REPO.to_uppercase(), "refs/heads/main", &first);
        let r = post_json(&hub, &body).await;
        assert_eq!(r.status, 200, "{label}: {:?}", r.body);
        assert_eq!(r.body["status"], "queued", "{label}: {:?}", r.body);
        let job_id = r.body["job"].as_str().expect("job id").to_owned();

        // Azure DevOps retries with the same event id: not processed again.
        let r = post_json(&hub, &body).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["status"], "ignored");
        assert!(r.body["reason"]
            .as_str()
            .unwrap()
            .contains("already received"));

        // A second push before the job ran: coalesced, newest target.
        let r = post_json(&hub, &push("e-101", REPO, "refs/heads/main", &second)).await;
        assert_eq!(r.body["status"], "queued", "{label}");
        assert_eq!(r.body["job"], job_id.as_str(), "{label}: coalesced");

        let jobs = queue(&db).jobs_for(REPO).await.unwrap();
        assert_eq!(jobs.len(), 1, "{label}: exactly one job");
        assert_eq!(jobs[0].id, job_id);
        assert_eq!(
            jobs[0].kind,
            JobKind::FirstReplication,
            "nothing synced yet"
        );
        assert_eq!(jobs[0].status, JobStatus::Pending);
        assert_eq!(jobs[0].target_commit.as_deref(), Some(second.as_str()));

        let deliveries = db.recent_deliveries(10).await.unwrap();
        assert_eq!(
            deliveries.len(),
            2,
            "{label}: the redelivery is not stored twice"
        );
        assert!(deliveries
            .iter()
            .all(|d| d.status == "queued" && d.job_id.as_deref() == Some(job_id.as_str())));
        db.close().await;
    }
}

/// Deliveries arriving together are committed together (group commit):
/// each still gets its own answer, and a redelivery racing its original in
/// the same batch is recognised.
#[tokio::test]
async fn concurrent_deliveries_are_each_recorded_once() {
    for test_db in TestDb::all().await {
        let (_dir, data) = data_dir();
        let db = seed(&test_db.url, &data, REPO).await;
        let hub = Hub::start(&test_db, &data);
        let label = test_db.label;
        let events: Vec<Value> = (0..40)
            .map(|i| {
                push(
                    &format!("burst-{i}"),
                    REPO,
                    "refs/heads/main",
                    &format!("{:040x}", i + 1),
                )
            })
            .collect();
        // Every event twice, all at once (commit ids count from 1: all
        // zeros would mean a deleted branch).
        let answers = futures_util::future::join_all(
            events
                .iter()
                .chain(events.iter())
                .map(|body| post_json(&hub, body)),
        )
        .await;
        assert!(
            answers.iter().all(|r| r.status == 200),
            "{label}: all answered 200"
        );
        let queued: Vec<&Posted> = answers
            .iter()
            .filter(|r| r.body["status"] == "queued")
            .collect();
        let repeats = answers
            .iter()
            .filter(|r| {
                r.body["status"] == "ignored"
                    && r.body["reason"]
                        .as_str()
                        .is_some_and(|m| m.contains("already received"))
            })
            .count();
        assert_eq!(
            (queued.len(), repeats),
            (40, 40),
            "{label}: one of each pair queued"
        );
        // All pushes coalesce into the one pending job.
        let job = queued[0].body["job"].clone();
        assert!(
            queued.iter().all(|r| r.body["job"] == job),
            "{label}: one job"
        );
        assert_eq!(queue(&db).jobs_for(REPO).await.unwrap().len(), 1, "{label}");
        let deliveries = db.recent_deliveries(200).await.unwrap();
        assert_eq!(deliveries.len(), 40, "{label}: each event stored once");
        db.close().await;
    }
}

#[tokio::test]
async fn the_emulator_posts_a_real_push_that_queues_a_job() {
    use ado_emulator::{
        start, AccessLevel, EmulatorConfig, FileChange, SeedCommit, Signature, WebhookTarget,
    };
    const TENANT: &str = "11111111-2222-4333-8444-555555555555";
    const CLIENT: &str = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";

    for test_db in TestDb::all().await {
        let emu_dir = tempfile::tempdir().expect("tempdir");
        let config = EmulatorConfig::new(emu_dir.path().to_path_buf())
            .with_tenant(TENANT, &["contoso.test"])
            .with_app(TENANT, CLIENT, "sync app")
            .with_secret(CLIENT, "good~secret", None)
            .with_org("acme", ORG_GUID, TENANT)
            .with_member("acme", CLIENT, AccessLevel::Basic)
            .with_project("acme", "Alpha")
            .with_seeded_repo(
                "acme",
                "Alpha",
                "app",
                vec![SeedCommit {
                    branch: None,
                    from_branch: None,
                    message: "first".into(),
                    author: Some(Signature {
                        name: "Test Author".into(),
                        email: "author@contoso.test".into(),
                    }),
                    date: None,
                    changes: vec![FileChange::put("src/a.py", "A = 1\n")],
                    tags: Vec::new(),
                }],
            )
            .with_retry_time_scale(0.001);
        let emu = start(config, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("emulator");
        let repo_id = emu.repository_id("acme", "Alpha", "app").expect("repo id");

        let (_dir, data) = data_dir();
        let db = seed(&test_db.url, &data, &repo_id).await;
        let hub = Hub::start(&test_db, &data);
        emu.set_webhook(Some(WebhookTarget::new(
            format!("{}/gateway/public/sync", hub.url),
            USER,
            PASSWORD,
        )));
        let sha = emu
            .commit(
                "acme",
                "Alpha",
                "app",
                "main",
                vec![FileChange::put("src/b.py", "B = 2\n")],
                "add b",
            )
            .expect("commit");

        let q = queue(&db);
        let mut jobs = Vec::new();
        for _ in 0..100 {
            jobs = q.jobs_for(&repo_id).await.unwrap();
            if !jobs.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(jobs.len(), 1, "{}: {}", test_db.label, hub.logs());
        assert_eq!(jobs[0].target_commit.as_deref(), Some(sha.as_str()));
        // The hub stores the job before it answers, so the emulator may
        // record the answer a moment after the job is visible.
        let mut answered = false;
        for _ in 0..100 {
            answered = emu
                .webhook_deliveries()
                .iter()
                .any(|d| d.status == Some(200));
            if answered {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(answered, "the emulator saw 200");
        db.close().await;
    }
}
