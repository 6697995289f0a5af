//! Removal leaves no debris, on SQLite and PostgreSQL, against the real
//! binary and the emulator's demo organization: removing a repository
//! deletes the service hook the hub created for it in Azure DevOps (or
//! says where to delete it by hand when Azure DevOps refuses), and deleting
//! a Git provider, from its confirmation page or with `spicehub provider
//! remove`, deletes its hooks, its repositories with their graphs, and its
//! webhook credentials (a delivery with them is then refused).

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ado_emulator::{demo, start, Emulator, EmulatorConfig, Fault, FaultRule, FaultScope};
use base64::Engine;
use common::*;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Row;

const ADMIN: &str = "admin@example.com";
const ADMIN_PW: &str = "admin-password-123";
const PROVIDER: &str = "Contoso (demo)";
const HOOK_USER: &str = "spicehub-removal";

struct Env {
    emu: Emulator,
    hub: Hub,
    admin: reqwest::Client,
    /// The provider's id and its webhook password (printed once by `provider add`).
    provider_id: String,
    hook_password: String,
    data: std::path::PathBuf,
    _emu_dir: tempfile::TempDir,
    _data: tempfile::TempDir,
}

/// `spicehub` with the hub's database, data directory and emulator.
fn cli(db: &TestDb, data: &std::path::Path, emu: &Emulator) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("DATABASE_URL", &db.url)
        .env("SPICEHUB_DATA_DIR", data)
        .env("SPICEHUB_AUTHORITY_URL", emu.authority_url())
        .env("SPICEHUB_DEVOPS_URL", emu.devops_url())
        .env_remove("SPICEHUB_PUBLIC_URL")
        .env_remove("SPICEHUB_SECRET_KEY")
        .env("RUST_LOG", "info");
    cmd
}

fn run_ok(cmd: &mut Command, stdin: &str) -> String {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn spicehub");
    let mut input = child.stdin.take().expect("stdin");
    writeln!(input, "{stdin}").expect("write stdin");
    drop(input);
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The demo provider and two repositories (ml-models in Commerce,
/// data-platform in Platform), added on the command line as an operator
/// would, then the hub, replicating both.
async fn setup(db: &TestDb) -> Env {
    let emu_dir = tempfile::tempdir().unwrap();
    let emu = start(
        EmulatorConfig::demo(emu_dir.path().to_path_buf()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .expect("emulator");
    let (data_guard, data) = data_dir();
    let out = create_user(db, &data, ADMIN, "admin", ADMIN_PW);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added = run_ok(
        cli(db, &data, &emu).args([
            "provider",
            "add",
            "--name",
            PROVIDER,
            "--tenant",
            demo::TENANT_ID,
            "--client-id",
            demo::CLIENT_ID,
            "--organization",
            demo::ORG,
            "--webhook-username",
            HOOK_USER,
        ]),
        demo::CLIENT_SECRET,
    );
    let hook_password = added
        .lines()
        .find_map(|l| l.split_once("webhook password").map(|(_, rest)| rest))
        .and_then(|rest| rest.rsplit(": ").next())
        .expect("webhook password printed")
        .trim()
        .to_owned();
    let provider_id = added
        .lines()
        .next()
        .and_then(|l| l.rsplit_once('(')?.1.strip_suffix(')').map(str::to_owned))
        .expect("provider id printed");
    for (project, repo) in [("Commerce", "ml-models"), ("Platform", "data-platform")] {
        run_ok(
            cli(db, &data, &emu).args([
                "repository",
                "add",
                "--provider",
                PROVIDER,
                "--organization",
                demo::ORG,
                "--project",
                project,
                "--repository",
                repo,
            ]),
            "",
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
        ],
    });
    let admin = client();
    let r = sign_in(&admin, &hub, ADMIN, ADMIN_PW).await;
    assert!(r.status().is_redirection(), "sign-in: {}", r.status());
    let env = Env {
        emu,
        hub,
        admin,
        provider_id,
        hook_password,
        data,
        _emu_dir: emu_dir,
        _data: data_guard,
    };
    for name in ["ml-models", "data-platform"] {
        wait_in_sync(&env, name).await;
    }
    env
}

/// A plain HTML form post (no wasm): the hub answers with a redirect.
async fn form_post(
    env: &Env,
    path: &str,
    referer: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    env.admin
        .post(format!("{}{path}", env.hub.url))
        .header("Origin", &env.hub.url)
        .header("Referer", format!("{}{referer}", env.hub.url))
        .header("Accept", "text/html")
        .form(form)
        .send()
        .await
        .expect("form post")
}

/// The hydrated page's call: JSON back.
async fn call(env: &Env, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let r = env
        .admin
        .post(format!("{}{path}", env.hub.url))
        .header("Origin", &env.hub.url)
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

async fn page(env: &Env, path: &str) -> (StatusCode, String) {
    let r = env
        .admin
        .get(format!("{}{path}", env.hub.url))
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn rows(env: &Env) -> Vec<Value> {
    let (status, v) = call(env, "/api/admin/repositories", &[]).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v.as_array().cloned().unwrap_or_default()
}

async fn wait_in_sync(env: &Env, name: &str) -> Value {
    let start = Instant::now();
    loop {
        let row = rows(env).await.into_iter().find(|r| r["name"] == name);
        if let Some(r) = &row {
            if r["state"] == "in_sync" {
                return r.clone();
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{name} never synced: {row:?}\n{}",
            env.hub.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn repo_id(env: &Env, name: &str) -> String {
    rows(env)
        .await
        .into_iter()
        .find(|r| r["name"] == name)
        .and_then(|r| r["id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no row {name}"))
}

/// "Create the webhook for me"; returns the subscription's id in Azure DevOps.
async fn create_hook(env: &Env, db: &TestDb, repository_id: &str) -> String {
    let (status, v) = call(
        env,
        "/api/admin/create_webhook",
        &[("repository_id", repository_id)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}: {v}", db.label);
    let handle = db.open().await;
    let hooks = handle.hook_subscriptions_of(repository_id).await.unwrap();
    assert_eq!(hooks.len(), 1, "{}", db.label);
    hooks[0].devops_subscription_id.clone()
}

/// The subscription ids the emulator's own list (`/_emulator/subscriptions`) holds.
async fn emulator_subscriptions(emu: &Emulator) -> Vec<String> {
    let list: Value = reqwest::get(format!("{}/_emulator/subscriptions", emu.base_url()))
        .await
        .expect("emulator subscriptions")
        .json()
        .await
        .expect("subscriptions JSON");
    list.as_array()
        .expect("a list")
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect()
}

/// The status of a webhook delivery with these credentials (a body that
/// is not an event: anything but 401 means the credentials were accepted).
async fn webhook_status(env: &Env, user: &str, password: &str) -> StatusCode {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    reqwest::Client::new()
        .post(format!("{}/gateway/public/sync", env.hub.url))
        .header("Authorization", format!("Basic {auth}"))
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("webhook post")
        .status()
}

/// Rows left in a table for these repositories.
async fn left_in(db: &TestDb, table: &str, repositories: &[&str]) -> i64 {
    let handle = db.open().await;
    let mut total = 0;
    for id in repositories {
        let row = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE repository_id = $1"
        ))
        .bind(*id)
        .fetch_one(handle.pool())
        .await
        .unwrap();
        total += row.try_get::<i64, _>("n").unwrap();
    }
    total
}

const REPOSITORY_TABLES: [&str; 7] = [
    "graph_snapshots",
    "graph_entries",
    "repository_snapshots",
    "file_blobs",
    "sync_jobs",
    "hook_subscriptions",
    "graph_registries",
];

// Multi-threaded: the command line runs as a blocking child process while
// the in-process emulator must keep answering it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_repository_deletes_its_service_hook() {
    for db in TestDb::all().await {
        let env = setup(&db).await;
        let ml = repo_id(&env, "ml-models").await;
        let dp = repo_id(&env, "data-platform").await;
        let ml_hook = create_hook(&env, &db, &ml).await;
        let dp_hook = create_hook(&env, &db, &dp).await;
        let subs = emulator_subscriptions(&env.emu).await;
        assert!(
            subs.contains(&ml_hook) && subs.contains(&dp_hook),
            "{subs:?}"
        );
        assert!(
            left_in(&db, "graph_snapshots", &[&ml]).await > 0,
            "{}",
            db.label
        );

        // Removed from its confirmation page as a plain form: the hook goes too.
        let (status, html) = page(&env, &format!("/repositories/{ml}/remove")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("service hook"), "the page says the hook goes");
        let r = form_post(
            &env,
            "/api/admin/remove_repository",
            &format!("/repositories/{ml}/remove"),
            &[("id", &ml)],
        )
        .await;
        assert_eq!(location(&r), "/repositories", "{}", db.label);
        let subs = emulator_subscriptions(&env.emu).await;
        assert!(
            !subs.contains(&ml_hook),
            "{}: hook left: {subs:?}",
            db.label
        );
        assert!(subs.contains(&dp_hook), "the other repository's hook stays");
        for table in REPOSITORY_TABLES {
            assert_eq!(
                left_in(&db, table, &[&ml]).await,
                0,
                "{}: {table}",
                db.label
            );
        }

        // Azure DevOps refuses to delete: removed anyway, and the admin is
        // told where to delete the hook by hand.
        env.emu.add_fault(FaultRule::new(
            FaultScope::PathContains(dp_hook.clone()),
            Fault::Unauthorized401,
        ));
        let (status, v) = call(&env, "/api/admin/remove_repository", &[("id", &dp)]).await;
        env.emu.clear_faults();
        assert_eq!(status, StatusCode::OK, "{}: {v}", db.label);
        assert_eq!(v["hooks_deleted"], 0, "{v}");
        let left = &v["hooks_left"][0];
        assert_eq!(left["subscription_id"], dp_hook.as_str(), "{v}");
        assert_eq!(left["repository"], "contoso/Platform/data-platform", "{v}");
        assert_eq!(
            left["service_hooks_url"],
            format!(
                "{}/contoso/Platform/_settings/serviceHooks",
                env.emu.devops_url()
            ),
            "{v}"
        );
        assert!(
            left["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{v}"
        );
        assert!(rows(&env).await.is_empty(), "{}: removed anyway", db.label);
        assert!(emulator_subscriptions(&env.emu).await.contains(&dp_hook));

        // A hook already deleted by hand counts as deleted (404).
        let again = run_ok(
            cli(&db, &env.data, &env.emu).args([
                "repository",
                "add",
                "--provider",
                PROVIDER,
                "--organization",
                demo::ORG,
                "--project",
                "Commerce",
                "--repository",
                "ml-models",
            ]),
            "",
        );
        assert!(again.contains("added"), "{again}");
        let ml_hook = create_hook(&env, &db, &ml).await;
        assert!(env.emu.remove_subscription(&ml_hook));
        let (status, v) = call(&env, "/api/admin/remove_repository", &[("id", &ml)]).await;
        assert_eq!(status, StatusCode::OK, "{}: {v}", db.label);
        assert_eq!(v["hooks_deleted"], 1, "{v}");
        assert_eq!(v["hooks_left"], Value::Array(vec![]), "{v}");
    }
}

// Multi-threaded: the command line runs as a blocking child process while
// the in-process emulator must keep answering it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_provider_removes_its_hooks_repositories_and_credentials() {
    for db in TestDb::all().await {
        let env = setup(&db).await;
        let ml = repo_id(&env, "ml-models").await;
        let dp = repo_id(&env, "data-platform").await;
        let hooks = [
            create_hook(&env, &db, &ml).await,
            create_hook(&env, &db, &dp).await,
        ];
        assert_ne!(
            webhook_status(&env, HOOK_USER, &env.hook_password).await,
            StatusCode::UNAUTHORIZED,
            "{}: the credentials work before",
            db.label
        );

        // The confirmation page says what goes.
        let id = env.provider_id.clone();
        let (status, html) = page(&env, &format!("/providers/{id}/delete")).await;
        assert_eq!(status, StatusCode::OK, "{}", db.label);
        for text in [
            "Delete Git provider",
            PROVIDER,
            "2 repositories",
            "2 service hooks",
            "contoso/Commerce/ml-models",
            "Delete provider",
        ] {
            assert!(html.contains(text), "{}: no {text:?} in the page", db.label);
        }

        // Confirmed as a plain form: back to the list, nothing left.
        let r = form_post(
            &env,
            "/api/admin/delete_provider",
            &format!("/providers/{id}/delete"),
            &[("id", &id)],
        )
        .await;
        assert_eq!(location(&r), "/providers", "{}", db.label);
        let subs = emulator_subscriptions(&env.emu).await;
        for hook in &hooks {
            assert!(!subs.contains(hook), "{}: hook left: {subs:?}", db.label);
        }
        assert!(rows(&env).await.is_empty(), "{}", db.label);
        for table in REPOSITORY_TABLES {
            assert_eq!(
                left_in(&db, table, &[&ml, &dp]).await,
                0,
                "{}: {table}",
                db.label
            );
        }
        let handle = db.open().await;
        assert!(handle.provider(&id).await.unwrap().is_none());
        let deliveries: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE provider_id = $1")
                .bind(&id)
                .fetch_one(handle.pool())
                .await
                .unwrap()
                .try_get("n")
                .unwrap();
        assert_eq!(deliveries, 0, "{}", db.label);
        assert_eq!(
            webhook_status(&env, HOOK_USER, &env.hook_password).await,
            StatusCode::UNAUTHORIZED,
            "{}: the old webhook credentials still work",
            db.label
        );
        let (_, html) = page(&env, "/providers").await;
        assert!(!html.contains(PROVIDER), "{}: still listed", db.label);
        let (_, html) = page(&env, &format!("/providers/{id}/delete")).await;
        assert!(html.contains("No such Git provider"), "{}", db.label);
    }
}

// Multi-threaded: the command line runs as a blocking child process while
// the in-process emulator must keep answering it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_remove_on_the_command_line() {
    for db in TestDb::all().await {
        let env = setup(&db).await;
        let ml = repo_id(&env, "ml-models").await;
        let hook = create_hook(&env, &db, &ml).await;

        // Not on a terminal and no --yes: refused, nothing removed.
        let out = cli(&db, &env.data, &env.emu)
            .args(["provider", "remove", "--provider", PROVIDER, "--json"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", db.label);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--yes") && err.contains("2 repositories"),
            "{err}"
        );
        assert!(out.stdout.is_empty());
        assert_eq!(rows(&env).await.len(), 2);

        let out = cli(&db, &env.data, &env.emu)
            .args(["provider", "remove", "--provider", "nobody", "--yes"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("no Git provider is named"));

        // By display name, with --json: only JSON on standard output.
        let out = cli(&db, &env.data, &env.emu)
            .args([
                "provider",
                "remove",
                "--provider",
                PROVIDER,
                "--yes",
                "--json",
            ])
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            db.label,
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        assert_eq!(v["id"], env.provider_id.as_str(), "{v}");
        assert_eq!(v["display_name"], PROVIDER);
        assert_eq!(v["repositories_removed"], 2, "{v}");
        assert_eq!(v["hooks_deleted"], 1, "{v}");
        assert_eq!(v["hooks_left"], Value::Array(vec![]), "{v}");
        assert!(!emulator_subscriptions(&env.emu).await.contains(&hook));
        assert!(rows(&env).await.is_empty(), "{}", db.label);

        // The running hub stops accepting the credentials within its
        // cache's lifetime (another process deleted them).
        let start = Instant::now();
        while webhook_status(&env, HOOK_USER, &env.hook_password).await != StatusCode::UNAUTHORIZED
        {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{}: the old webhook credentials still work",
                db.label
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
