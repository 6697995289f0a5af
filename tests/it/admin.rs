//! The admin journey over HTTP against the real binary and the emulator's
//! demo dataset, on SQLite and PostgreSQL: the Azure DevOps form as plain
//! HTML form posts (diagnoses, fixes, misconfigurations), the repository
//! picker, sync states and manual actions, the webhook page with "Create the
//! webhook for me", removal, admin consent, and secrets kept out of pages
//! and logs.

use crate::common;

use std::time::{Duration, Instant};

use ado_emulator::{demo, start, Emulator, EmulatorConfig, FileChange, RateLimitModel};
use common::*;
use reqwest::StatusCode;
use serde_json::Value;

const ADMIN: &str = "admin@example.com";
const ADMIN_PW: &str = "admin-password-123";
const VIEWER: &str = "viewer@example.com";
const VIEWER_PW: &str = "viewer-password-123";
const HOOK_PASSWORD: &str = "Hk7-admin-test-webhook-password-0123456789";
const WRONG_SECRET: &str = "Wr0ng~secret.Value-that-is-not-right";

struct Env {
    emu: Emulator,
    hub: Hub,
    admin: reqwest::Client,
    _emu_dir: tempfile::TempDir,
    _data: tempfile::TempDir,
}

async fn setup(db: &TestDb) -> Env {
    let emu_dir = tempfile::tempdir().unwrap();
    let emu = start(
        EmulatorConfig::demo(emu_dir.path().to_path_buf()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .expect("emulator");
    let (data_guard, data) = data_dir();
    for (email, role, pw) in [(ADMIN, "admin", ADMIN_PW), (VIEWER, "viewer", VIEWER_PW)] {
        let out = create_user(db, &data, email, role, pw);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let hub = Hub::start_with(HubOptions {
        db,
        data_dir: &data,
        env: vec![
            ("SPICEHUB_AUTHORITY_URL", emu.authority_url()),
            ("SPICEHUB_DEVOPS_URL", emu.devops_url()),
            ("SPICEHUB_SYNC_POLL_MS", "50".into()),
            ("SPICEHUB_SYNC_RETRY_DELAY", "1".into()),
            ("SPICEHUB_RECONCILE_INTERVAL", "0".into()),
            ("SPICEHUB_HUB_CLIENT_ID", demo::HUB_CLIENT_ID.into()),
            ("SPICEHUB_HUB_CLIENT_SECRET", demo::HUB_CLIENT_SECRET.into()),
            ("RUST_LOG", "debug,sqlx=warn,hyper=info,h2=info".into()),
        ],
    });
    let admin = client();
    let r = sign_in(&admin, &hub, ADMIN, ADMIN_PW).await;
    assert!(r.status().is_redirection(), "sign-in: {}", r.status());
    Env {
        emu,
        hub,
        admin,
        _emu_dir: emu_dir,
        _data: data_guard,
    }
}

/// A browser's plain form post: `Accept: text/html` and a Referer, so the
/// hub answers with a redirect.
async fn form_post(
    c: &reqwest::Client,
    hub: &Hub,
    path: &str,
    referer: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    c.post(format!("{}{path}", hub.url))
        .header("Origin", &hub.url)
        .header("Referer", format!("{}{referer}", hub.url))
        .header("Accept", "text/html")
        .form(form)
        .send()
        .await
        .expect("form post")
}

/// The hydrated page's call: JSON back.
async fn call(
    c: &reqwest::Client,
    hub: &Hub,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let r = c
        .post(format!("{}{path}", hub.url))
        .header("Origin", &hub.url)
        .form(form)
        .send()
        .await
        .expect("server function");
    let status = r.status();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn page(c: &reqwest::Client, hub: &Hub, path: &str) -> (StatusCode, String) {
    let r = c.get(format!("{}{path}", hub.url)).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

/// Polls `check` for up to 10 s.
async fn wait_for_value<F, Fut>(check: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

fn provider_form<'a>(
    id: &'a str,
    tenant: &'a str,
    client_id: &'a str,
    secret: &'a str,
    org: &'a str,
    intent: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("id", id),
        ("display_name", "Contoso"),
        ("onboarding", "app_registration"),
        ("tenant_id", tenant),
        ("client_id", client_id),
        ("credential_kind", "client_secret"),
        ("client_secret", secret),
        ("organization", org),
        ("webhook_username", "spicehub-contoso"),
        (
            "webhook_password",
            if id.is_empty() { HOOK_PASSWORD } else { "" },
        ),
        ("intent", intent),
    ]
}

async fn rows(env: &Env) -> Vec<Value> {
    let (status, v) = call(&env.admin, &env.hub, "/api/admin/repositories", &[]).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v.as_array().cloned().unwrap_or_default()
}

async fn wait_row(env: &Env, name: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let row = rows(env).await.into_iter().find(|r| r["name"] == name);
        if let Some(r) = &row {
            if done(r) {
                return r.clone();
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{name} never reached the state: {row:?}\n{}",
            env.hub.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn admin_journey_over_plain_form_posts() {
    for db in TestDb::all().await {
        let env = setup(&db).await;
        let (hub, c) = (&env.hub, &env.admin);

        // A viewer may call no admin function.
        let viewer = client();
        sign_in(&viewer, hub, VIEWER, VIEWER_PW).await;
        let (status, _) = call(&viewer, hub, "/api/admin/providers", &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{}", db.label);
        let (status, _) = call(&client(), hub, "/api/admin/providers", &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", db.label);

        // A new form with a wrong secret, tested: diagnosed, nothing stored.
        let form = provider_form(
            "",
            demo::TENANT_ID,
            demo::CLIENT_ID,
            WRONG_SECRET,
            demo::ORG,
            "test",
        );
        let (status, v) = call(c, hub, "/api/admin/save_provider", &form).await;
        assert_eq!(status, StatusCode::OK, "{}: {v}", db.label);
        assert_eq!(v["saved"], Value::Null, "a test stores nothing: {v}");
        assert_eq!(
            v["check"]["diagnosis"]["code"], "wrong_client_secret",
            "{v}"
        );
        let (_, list) = call(c, hub, "/api/admin/providers", &[]).await;
        assert_eq!(
            list.as_array().map(Vec::len),
            Some(0),
            "{}: {list}",
            db.label
        );
        // The name and the webhook fields do not stop a test.
        let mut unnamed = provider_form(
            "",
            demo::TENANT_ID,
            demo::CLIENT_ID,
            demo::CLIENT_SECRET,
            "https://dev.azure.com/contoso/Commerce/_git/ml-models",
            "test",
        );
        unnamed[1] = ("display_name", "");
        unnamed[9] = ("webhook_password", "");
        let (_, v) = call(c, hub, "/api/admin/save_provider", &unnamed).await;
        assert_eq!(v["check"]["ok"], true, "{}: {v}", db.label);
        assert_eq!(v["check"]["organization"], "contoso", "a pasted URL: {v}");

        // Saved with the right secret (a plain form post: redirected).
        let form = provider_form(
            "",
            demo::TENANT_ID,
            demo::CLIENT_ID,
            demo::CLIENT_SECRET,
            demo::ORG,
            "save",
        );
        let r = form_post(
            c,
            hub,
            "/api/admin/save_provider",
            "/providers/new/azure-devops",
            &form,
        )
        .await;
        assert_eq!(r.status(), StatusCode::FOUND, "{}", db.label);
        let target = location(&r);
        assert!(target.starts_with("/providers/"), "{target}");
        let id = target.trim_start_matches("/providers/").to_owned();
        let (status, html) = page(c, hub, &target).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("set on "), "the secret shows only as set");

        // Trying a wrong secret on the saved provider does not replace the
        // working one: the next test with the field empty (the stored
        // secret) passes, and becomes the provider's health.
        let form = provider_form(
            &id,
            demo::TENANT_ID,
            demo::CLIENT_ID,
            WRONG_SECRET,
            demo::ORG,
            "test",
        );
        let (_, v) = call(c, hub, "/api/admin/save_provider", &form).await;
        assert_eq!(
            v["check"]["diagnosis"]["code"], "wrong_client_secret",
            "{v}"
        );
        let (_, p) = call(c, hub, "/api/admin/provider", &[("id", &id)]).await;
        assert_eq!(
            p["last_check"],
            Value::Null,
            "a tried secret is not the health: {p}"
        );
        let form = provider_form(&id, demo::TENANT_ID, demo::CLIENT_ID, "", demo::ORG, "test");
        let (_, v) = call(c, hub, "/api/admin/save_provider", &form).await;
        assert_eq!(
            v["check"]["ok"], true,
            "{}: the stored secret still works: {v}",
            db.label
        );
        let (_, p) = call(c, hub, "/api/admin/provider", &[("id", &id)]).await;
        assert_eq!(p["last_check"]["ok"], true, "{p}");
        let (_, html) = page(c, hub, &target).await;
        for secret in [WRONG_SECRET, HOOK_PASSWORD, demo::CLIENT_SECRET] {
            assert!(
                !html.contains(secret),
                "{}: a secret is in the page",
                db.label
            );
        }

        // A refused field comes back on the page after the redirect.
        let mut bad = provider_form(&id, "not a tenant", demo::CLIENT_ID, "", demo::ORG, "save");
        bad[1] = ("display_name", "Contoso");
        let r = form_post(c, hub, "/api/admin/save_provider", &target, &bad).await;
        let back = location(&r);
        assert!(back.contains("__err="), "{back}");
        let (_, html) = page(c, hub, back.trim_start_matches(&hub.url)).await;
        assert!(
            html.contains("Enter the Directory (tenant) ID"),
            "field error shown"
        );

        // Each misconfiguration is named.
        let cases = [
            (
                demo::TENANT_ID,
                demo::CLIENT_ID,
                demo::EXPIRED_SECRET,
                demo::ORG,
                "expired_client_secret",
            ),
            (
                "0b0b0b0b-1c1c-4d2d-8e3e-4f4f4f4f4f4f",
                demo::CLIENT_ID,
                demo::CLIENT_SECRET,
                demo::ORG,
                "unknown_tenant",
            ),
            (
                demo::TENANT_ID,
                "0b0b0b0b-1c1c-4d2d-8e3e-4f4f4f4f4f4f",
                demo::CLIENT_SECRET,
                demo::ORG,
                "unknown_client_id",
            ),
            (
                demo::TENANT_ID,
                demo::CLIENT_ID,
                demo::CLIENT_SECRET,
                "tailspin",
                "service_principal_not_in_organization",
            ),
            (
                demo::TENANT_ID,
                demo::CLIENT_ID,
                "",
                "northwind",
                "no_repositories_visible",
            ),
        ];
        for (tenant, client_id, secret, org, code) in cases {
            let form = provider_form(&id, tenant, client_id, secret, org, "test");
            let (status, v) = call(c, hub, "/api/admin/save_provider", &form).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            assert_eq!(v["check"]["diagnosis"]["code"], code, "{}: {v}", db.label);
        }
        let form = provider_form(
            &id,
            demo::TENANT_ID,
            demo::CLIENT_ID,
            "7d1e5b2c-9a4f-4c3e-8b6d-2f0a1c3e5d70",
            demo::ORG,
            "test",
        );
        let (_, v) = call(c, hub, "/api/admin/save_provider", &form).await;
        assert_eq!(
            v["Fields"][0]["field"], "client_secret",
            "secret ID pasted: {v}"
        );

        // Fixed: the check passes.
        let form = provider_form(
            &id,
            demo::TENANT_ID,
            demo::CLIENT_ID,
            demo::CLIENT_SECRET,
            demo::ORG,
            "test",
        );
        let (_, v) = call(c, hub, "/api/admin/save_provider", &form).await;
        assert_eq!(v["check"]["ok"], true, "{}: {v}", db.label);
        assert_eq!(v["check"]["projects"], 2);

        // The picker: the page lists the two projects at once; each
        // project's repositories (empty and disabled ones marked) come from
        // a request of their own.
        let (status, html) =
            page(c, hub, &format!("/providers/{id}/repositories?org=contoso")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains(r#"data-project="Commerce""#)
                && html.contains(r#"data-project="Platform""#),
            "{}: {html}",
            db.label
        );
        let (_, projects) = call(
            c,
            hub,
            "/api/admin/browse_projects",
            &[("provider_id", &id), ("organization", "contoso")],
        )
        .await;
        let mut listing = Vec::new();
        for p in projects["projects"].as_array().unwrap() {
            let (_, repos) = call(
                c,
                hub,
                "/api/admin/browse_project",
                &[
                    ("provider_id", &id),
                    ("organization", "contoso"),
                    ("project_id", p["id"].as_str().unwrap()),
                ],
            )
            .await;
            listing.push((p.clone(), repos));
        }
        let all = serde_json::to_string(&listing).unwrap();
        assert!(
            all.contains("Empty: no commit yet") && all.contains("Disabled in Azure DevOps"),
            "{all}"
        );
        let repo_of = |project: &str, name: &str| -> (String, String) {
            let (p, repos) = listing.iter().find(|(p, _)| p["name"] == project).unwrap();
            let r = repos["repositories"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == name)
                .unwrap();
            (
                format!("repo[id-{}]", r["id"].as_str().unwrap()),
                p["id"].as_str().unwrap().to_owned(),
            )
        };
        let (k1, p1) = repo_of("Commerce", "ml-models");
        let (k2, p2) = repo_of("Platform", "data-platform");
        let r = form_post(
            c,
            hub,
            "/api/admin/add_repositories",
            &format!("/providers/{id}/repositories?org=contoso"),
            &[
                ("provider_id", &id),
                ("organization", "contoso"),
                (&k1, &p1),
                (&k2, &p2),
            ],
        )
        .await;
        assert_eq!(location(&r), "/repositories", "{}", db.label);
        let ml = wait_row(&env, "ml-models", |r| r["state"] == "in_sync").await;
        wait_row(&env, "data-platform", |r| r["state"] == "in_sync").await;
        let first = ml["commit"].as_str().unwrap().to_owned();
        assert!(ml["commit_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/commit/{first}")));
        let (_, html) = page(c, hub, "/repositories").await;
        assert!(html.contains("In sync") && html.contains("ml-models"));
        assert!(html.contains(&first[..8]));

        // Create the webhook for me; a push then updates the last synced commit.
        let ml_id = ml["id"].as_str().unwrap().to_owned();
        let (status, v) = call(
            c,
            hub,
            "/api/admin/create_webhook",
            &[("repository_id", &ml_id)],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let pushed = env
            .emu
            .commit(
                demo::ORG,
                "Commerce",
                "ml-models",
                "main",
                vec![FileChange::put("models/extra.py", b"extra = 1\n".to_vec())],
                "Add a model",
            )
            .unwrap();
        let ml = wait_row(&env, "ml-models", |r| {
            r["commit"] == pushed.as_str() && r["state"] == "in_sync"
        })
        .await;
        assert!(ml["last_webhook"].is_string(), "{ml}");
        let (_, html) = page(c, hub, "/webhooks").await;
        assert!(html.contains("git.push") && html.contains("Commerce/ml-models"));
        assert!(html.contains("Code pushed") && html.contains("spicehub-contoso"));
        assert!(
            !html.contains(HOOK_PASSWORD),
            "webhook password in the page"
        );

        // A new webhook password goes to the hook the hub created, and the
        // previous one is still accepted, until the first delivery with
        // the new one: no delivery is refused while hooks are updated.
        const NEW_HOOK_PASSWORD: &str = "Hk8-rotated-webhook-password-0123456789";
        let ping = |password: &'static str| async move {
            reqwest::Client::new()
                .post(format!("{}/gateway/public/sync", hub.url))
                .basic_auth("spicehub-contoso", Some(password))
                .json(&serde_json::json!({
                    "id": "b3e1f0d4-0000-4000-8000-000000000001",
                    "eventType": "git.pullrequest.created",
                    "publisherId": "tfs",
                    "resource": {}
                }))
                .send()
                .await
                .unwrap()
                .status()
        };
        let mut form = provider_form(&id, demo::TENANT_ID, demo::CLIENT_ID, "", demo::ORG, "save");
        form[9] = ("webhook_password", NEW_HOOK_PASSWORD);
        let (status, v) = call(c, hub, "/api/admin/save_provider", &form).await;
        assert_eq!(status, StatusCode::OK, "{}: {v}", db.label);
        let notes = v["notes"].to_string();
        assert!(
            notes.contains("ml-models now sends the new password"),
            "{notes}"
        );
        assert!(notes.contains("still accepted until"), "{notes}");
        let subs = env.emu.subscriptions();
        assert_eq!(subs.len(), 1);
        assert_eq!(
            subs[0]
                .consumer_inputs
                .get("basicAuthPassword")
                .map(String::as_str),
            Some(NEW_HOOK_PASSWORD),
            "{}: the hub's hook holds the new password",
            db.label
        );
        let (_, p) = call(c, hub, "/api/admin/provider", &[("id", &id)]).await;
        assert!(p["previous_password_until"].is_string(), "{p}");
        assert_ne!(
            ping(HOOK_PASSWORD).await,
            StatusCode::UNAUTHORIZED,
            "the previous one still works"
        );
        assert_ne!(ping(NEW_HOOK_PASSWORD).await, StatusCode::UNAUTHORIZED);
        let ended = wait_for_value(|| async {
            let (_, p) = call(c, hub, "/api/admin/provider", &[("id", &id)]).await;
            p["previous_password_until"].is_null()
        })
        .await;
        assert!(
            ended,
            "{}: the first delivery with the new password ends the overlap",
            db.label
        );
        assert_eq!(ping(HOOK_PASSWORD).await, StatusCode::UNAUTHORIZED);
        assert!(
            !hub.logs().contains(NEW_HOOK_PASSWORD),
            "the new password is in the log"
        );

        // "Check the webhook" reads the hook's status and says what it did.
        let sub_id = subs[0].id.clone();
        assert!(env
            .emu
            .set_subscription_status(&sub_id, ado_emulator::SubscriptionStatus::OnProbation));
        let (status, v) = call(
            c,
            hub,
            "/api/admin/create_webhook",
            &[("repository_id", &ml_id)],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let said = v.to_string();
        assert!(
            said.contains("on probation") && said.contains("re-enabled"),
            "{said}"
        );
        assert_eq!(
            env.emu.subscriptions()[0].status,
            ado_emulator::SubscriptionStatus::Enabled
        );

        // The three synchronize actions and re-parse, as plain form posts.
        let act = |id: String, action: &'static str| async move {
            let r = form_post(
                c,
                hub,
                "/api/admin/repository_action",
                "/repositories",
                &[("id", &id), ("action", action)],
            )
            .await;
            assert_eq!(
                location(&r).trim_end_matches('?'),
                format!("{}/repositories", hub.url)
            );
        };
        act(ml_id.clone(), "entire").await;
        wait_row(&env, "ml-models", |r| {
            r["state"] == "in_sync"
                && r["note"]
                    .as_str()
                    .is_some_and(|n| n.contains("entire repository"))
        })
        .await;
        // data-platform has no service hook: its push waits for "recent changes".
        let dp = rows(&env)
            .await
            .into_iter()
            .find(|r| r["name"] == "data-platform")
            .unwrap();
        let dp_id = dp["id"].as_str().unwrap().to_owned();
        let dp_head = env
            .emu
            .commit(
                demo::ORG,
                "Platform",
                "data-platform",
                "main",
                vec![FileChange::put(
                    "platform/new_step.py",
                    b"step = 2\n".to_vec(),
                )],
                "Add a step",
            )
            .unwrap();
        act(dp_id.clone(), "recent").await;
        wait_row(&env, "data-platform", |r| {
            r["commit"] == dp_head.as_str()
                && r["note"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("incremental"))
        })
        .await;
        act(ml_id.clone(), "reparse").await;
        wait_row(&env, "ml-models", |r| {
            r["state"] == "in_sync" && r["note"].as_str().is_some_and(|n| n.contains("re-parsed"))
        })
        .await;
        let (_, v) = call(
            c,
            hub,
            "/api/admin/repository_action",
            &[
                ("id", &ml_id),
                ("action", "from_commit"),
                ("commit", "nothex"),
            ],
        )
        .await;
        assert_eq!(v["Fields"][0]["field"], "commit", "{v}");
        let (status, _) = call(
            c,
            hub,
            "/api/admin/repository_action",
            &[
                ("id", &ml_id),
                ("action", "from_commit"),
                ("commit", &first),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        wait_row(&env, "ml-models", |r| {
            r["state"] == "in_sync"
                && r["note"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("re-applied"))
        })
        .await;

        // Remove, after the confirmation page.
        let (status, html) = page(c, hub, &format!("/repositories/{ml_id}/remove")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Remove repository"));
        let r = form_post(
            c,
            hub,
            "/api/admin/remove_repository",
            &format!("/repositories/{ml_id}/remove"),
            &[("id", &ml_id)],
        )
        .await;
        assert_eq!(location(&r), "/repositories");
        let names: Vec<Value> = rows(&env)
            .await
            .into_iter()
            .map(|r| r["name"].clone())
            .collect();
        assert_eq!(names, [Value::from("data-platform")], "{}", db.label);

        // The providers list shows the health, and the identity's rate
        // limit as this hub saw it: figures once Azure DevOps sends them
        // (here from the first request), counted by the emulator too.
        env.emu
            .set_rate_limit(Some(RateLimitModel {
                warn_fraction: 0.0,
                ..RateLimitModel::default()
            }))
            .expect("rate-limit model");
        let (_, v) = call(c, hub, "/api/admin/test_provider", &[("id", &id)]).await;
        assert_eq!(v["ok"], true, "{}: {v}", db.label);
        let charged: u64 = env
            .emu
            .rate_limit_usage()
            .iter()
            .map(|u| u.requests_charged)
            .sum();
        assert!(charged > 0, "{}: the test was charged", db.label);
        let (_, html) = page(c, hub, "/providers").await;
        assert!(html.contains("Connection OK") && html.contains("Last token obtained"));
        let limit = html
            .split("<ul class=\"rate-limits\">")
            .nth(1)
            .and_then(|rest| rest.split("</ul>").next())
            .unwrap_or_else(|| panic!("{}: no rate-limit list in {html}", db.label));
        assert!(
            limit.contains("data-organization=\"contoso\"")
                && limit.contains("of 200 TSTUs left (Core) as of")
                && limit.contains("usage back to zero by"),
            "{}: {limit}",
            db.label
        );
        env.emu.set_rate_limit(None).expect("rate limit off");

        // No secret in any log line.
        let logs = env.hub.logs();
        for secret in [
            WRONG_SECRET,
            HOOK_PASSWORD,
            demo::CLIENT_SECRET,
            demo::EXPIRED_SECRET,
            demo::HUB_CLIENT_SECRET,
        ] {
            assert!(
                !logs.contains(secret),
                "{}: a secret is in the logs",
                db.label
            );
        }
    }
}

#[tokio::test]
async fn admin_consent_records_the_tenant_once() {
    for db in TestDb::all().await {
        let env = setup(&db).await;
        let (hub, c) = (&env.hub, &env.admin);
        let r = form_post(
            c,
            hub,
            "/api/admin/save_provider",
            "/providers/new/azure-devops",
            &[
                ("display_name", "Contoso (hub app)"),
                ("onboarding", "hub_app"),
                ("tenant_id", demo::TENANT_DOMAIN),
                ("organization", demo::ORG),
                ("webhook_username", "spicehub-hubapp"),
                ("webhook_password", HOOK_PASSWORD),
                ("intent", "save"),
            ],
        )
        .await;
        let target = location(&r);
        let id = target.trim_start_matches("/providers/").to_owned();
        // A link answered by another directory's admin is refused, and the
        // provider keeps the tenant it was made for.
        let (_, first) = page(c, hub, &target).await;
        let state = first
            .split("state=")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a consent state")
            .to_owned();
        let elsewhere = c
            .get(format!(
                "{}/admin-consent/callback?admin_consent=True&tenant=9b1c2d3e-4f50-4617-8a9b-0c1d2e3f4a5b&state={state}",
                hub.url
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(elsewhere.status(), StatusCode::BAD_REQUEST, "{}", db.label);
        assert!(elsewhere
            .text()
            .await
            .unwrap()
            .contains("but the link was made for"));
        let (_, v) = call(c, hub, "/api/admin/provider", &[("id", &id)]).await;
        assert_eq!(v["tenant_id"], demo::TENANT_DOMAIN, "{v}");
        assert!(v["consented"].is_null(), "{v}");

        let (_, html) = page(c, hub, &target).await;
        let start = html
            .find(&format!(
                "{}/{}/adminconsent?",
                env.emu.authority_url(),
                demo::TENANT_DOMAIN
            ))
            .expect("consent link");
        let link = html[start..]
            .split('"')
            .next()
            .unwrap()
            .replace("&amp;", "&");
        assert!(link.contains(&format!("client_id={}", demo::HUB_CLIENT_ID)));
        assert!(link.contains("state=") && link.contains("redirect_uri="));
        // The emulator plays the tenant admin approving, then sends the browser back.
        let back = client().get(&link).send().await.unwrap();
        let callback = location(&back);
        assert!(callback.contains("admin_consent=True"), "{callback}");
        // The tenant's admin has no hub account: the state is the
        // authority, and they get a plain page saying it worked.
        let tenant_admin = client();
        let done = tenant_admin.get(&callback).send().await.unwrap();
        assert_eq!(done.status(), StatusCode::OK, "{}", db.label);
        let text = done.text().await.unwrap();
        assert!(text.contains("Consent recorded"), "{text}");
        assert!(
            text.contains("your hub administrator can continue"),
            "{text}"
        );
        assert!(
            !text.contains("/providers"),
            "no hub link for a stranger: {text}"
        );
        // A state works once, for anyone.
        let again = c.get(&callback).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::BAD_REQUEST);
        assert!(again.text().await.unwrap().contains("was used already"));
        let (_, v) = call(c, hub, "/api/admin/provider", &[("id", &id)]).await;
        assert_eq!(v["tenant_id"], demo::TENANT_ID, "{v}");
        assert!(v["consented"].is_string());
        let (_, v) = call(c, hub, "/api/admin/test_provider", &[("id", &id)]).await;
        assert_eq!(v["ok"], true, "{}: {v}", db.label);
        // A forged state is refused.
        let forged = format!(
            "{}/admin-consent/callback?tenant={}&state=forged",
            hub.url,
            demo::TENANT_ID
        );
        assert_eq!(
            c.get(&forged).send().await.unwrap().status(),
            StatusCode::BAD_REQUEST
        );
        let stranger = client().get(&forged).send().await.unwrap();
        assert_eq!(
            stranger.status(),
            StatusCode::BAD_REQUEST,
            "not sent to sign in"
        );

        // A signed-in hub admin who consents is taken back to the provider.
        let (_, html) = page(c, hub, &target).await;
        assert!(html.contains("Admin consent granted on"), "{}", db.label);
        let r = form_post(
            c,
            hub,
            "/api/admin/save_provider",
            "/providers/new/azure-devops",
            &[
                ("display_name", "Fabrikam (hub app)"),
                ("onboarding", "hub_app"),
                ("tenant_id", demo::TENANT_DOMAIN),
                ("organization", demo::ORG),
                ("webhook_username", "spicehub-hubapp2"),
                ("webhook_password", HOOK_PASSWORD),
                ("intent", "save"),
            ],
        )
        .await;
        let second = location(&r);
        let second_id = second.trim_start_matches("/providers/").to_owned();
        let (_, html) = page(c, hub, &second).await;
        let start = html.find("/adminconsent?").expect("consent link");
        let begin = html[..start].rfind('"').unwrap() + 1;
        let link = html[begin..]
            .split('"')
            .next()
            .unwrap()
            .replace("&amp;", "&");
        let back = client().get(&link).send().await.unwrap();
        let done = c.get(location(&back)).send().await.unwrap();
        assert_eq!(
            location(&done),
            format!("/providers/{second_id}?consent=granted")
        );
    }
}
