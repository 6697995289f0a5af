//! The tracked branch, on SQLite and PostgreSQL, against the real binary
//! and the emulator's demo organization: an admin picks another branch on
//! the Repositories tab (the repository syncs its head and the hub's
//! service hook filters on it), or goes back to following the default
//! branch; when Azure DevOps' default branch changes, a repository that
//! follows it re-targets at the next reconcile (sync and hook filter), and
//! one whose branch was named on the command line stays where it is. A
//! tracked branch that disappears points the admin to the action.

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ado_emulator::{demo, start, Emulator, EmulatorConfig, FileChange};
use common::*;
use reqwest::StatusCode;
use serde_json::Value;
use spicehub_core::sync::{JobKind, JobStatus, Queue, QueueConfig};

const ADMIN: &str = "admin@example.com";
const ADMIN_PW: &str = "admin-password-123";
const PROVIDER: &str = "Contoso (demo)";
/// Follows the default branch (added without `--branch`); has `develop`.
const SHOP: &str = "shop-pipelines";
/// Added with `--branch main`: pinned.
const ML: &str = "ml-models";
const PROJECT: &str = "Commerce";

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

fn start_hub(db: &TestDb, data: &std::path::Path, emu: &Emulator, reconcile: &str) -> Hub {
    Hub::start_with(HubOptions {
        db,
        data_dir: data,
        env: vec![
            ("SPICEHUB_AUTHORITY_URL", emu.authority_url()),
            ("SPICEHUB_DEVOPS_URL", emu.devops_url()),
            ("SPICEHUB_SYNC_POLL_MS", "50".into()),
            ("SPICEHUB_SYNC_RETRY_DELAY", "1".into()),
            ("SPICEHUB_RECONCILE_INTERVAL", reconcile.into()),
        ],
    })
}

/// The hydrated page's call: JSON back.
async fn call(c: &reqwest::Client, hub: &Hub, path: &str, form: &[(&str, &str)]) -> Value {
    let r = c
        .post(format!("{}{path}", hub.url))
        .header("Origin", &hub.url)
        .form(form)
        .send()
        .await
        .expect("server function");
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

async fn row(c: &reqwest::Client, hub: &Hub, name: &str) -> Value {
    call(c, hub, "/api/admin/repositories", &[])
        .await
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == name).cloned())
        .unwrap_or_else(|| panic!("no row {name}"))
}

async fn wait_row(
    c: &reqwest::Client,
    hub: &Hub,
    name: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let r = row(c, hub, name).await;
        if done(&r) {
            return r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{name}: {what} never happened: {r}\n{}",
            hub.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn head(emu: &Emulator, repo: &str, branch: &str) -> String {
    emu.branch_head(demo::ORG, PROJECT, repo, branch)
        .expect("head")
        .expect("branch exists")
}

/// The branch filter of the subscription the hub recorded for a repository.
async fn hook_branch(emu: &Emulator, db: &TestDb, repository_id: &str) -> Option<String> {
    let handle = db.open().await;
    let hooks = handle.hook_subscriptions_of(repository_id).await.unwrap();
    handle.close().await;
    let id = &hooks.first()?.devops_subscription_id;
    emu.subscriptions()
        .into_iter()
        .find(|s| &s.id == id)?
        .publisher_inputs
        .get("branch")
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_admin_picks_the_branch_and_followers_move_with_the_default() {
    for db in TestDb::all().await {
        let emu_dir = tempfile::tempdir().unwrap();
        let emu = start(
            EmulatorConfig::demo(emu_dir.path().to_path_buf()),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .expect("emulator");
        let (_data_guard, data) = data_dir();
        let out = create_user(&db, &data, ADMIN, "admin", ADMIN_PW);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        run_ok(
            cli(&db, &data, &emu).args([
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
                "spicehub-branches",
            ]),
            demo::CLIENT_SECRET,
        );
        for (repo, branch) in [(SHOP, None), (ML, Some("main"))] {
            let mut cmd = cli(&db, &data, &emu);
            cmd.args([
                "repository",
                "add",
                "--provider",
                PROVIDER,
                "--organization",
                demo::ORG,
                "--project",
                PROJECT,
                "--repository",
                repo,
            ]);
            if let Some(b) = branch {
                cmd.args(["--branch", b]);
            }
            run_ok(&mut cmd, "");
        }
        let hub = start_hub(&db, &data, &emu, "0");
        let c = client();
        let r = sign_in(&c, &hub, ADMIN, ADMIN_PW).await;
        assert!(r.status().is_redirection(), "sign-in: {}", r.status());
        let main = head(&emu, SHOP, "main");
        let shop = wait_row(&c, &hub, SHOP, "first sync", |r| {
            r["state"] == "in_sync" && r["commit"] == main.as_str()
        })
        .await;
        let shop_id = shop["id"].as_str().unwrap().to_owned();
        assert_eq!(shop["branch"], "main");
        assert_eq!(
            shop["follows_default"], true,
            "{}: added without --branch",
            db.label
        );
        let ml = wait_row(&c, &hub, ML, "first sync", |r| r["state"] == "in_sync").await;
        let ml_id = ml["id"].as_str().unwrap().to_owned();
        assert_eq!(
            ml["follows_default"], false,
            "{}: added with --branch",
            db.label
        );

        // The hub's service hook filters on the tracked branch.
        let v = call(
            &c,
            &hub,
            "/api/admin/create_webhook",
            &[("repository_id", &shop_id)],
        )
        .await;
        assert!(v.is_string(), "{}: {v}", db.label);
        assert_eq!(
            hook_branch(&emu, &db, &shop_id).await.as_deref(),
            Some("main")
        );

        // The action's page lists the branches from Azure DevOps, following
        // the default first.
        let page = c
            .get(format!("{}/repositories/{shop_id}/branch", hub.url))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(
            html.contains("Follow the default branch (currently main)") && html.contains("develop"),
            "{}: {html}",
            db.label
        );
        let list = c
            .get(format!("{}/repositories", hub.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(list.contains(&format!("/repositories/{shop_id}/branch")));
        let choices = call(
            &c,
            &hub,
            "/api/admin/repository_branches",
            &[("id", &shop_id)],
        )
        .await;
        assert_eq!(choices["default_branch"], "main", "{choices}");
        assert_eq!(choices["follows_default"], true, "{choices}");
        let names: Vec<&str> = choices["branches"]
            .as_array()
            .expect("branches")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            names.contains(&"develop") && names.contains(&"main"),
            "{choices}"
        );

        // A branch that does not exist is refused, nothing changes.
        let v = call(
            &c,
            &hub,
            "/api/admin/set_tracked_branch",
            &[("id", &shop_id), ("branch", "no-such-branch")],
        )
        .await;
        assert_eq!(v["Fields"][0]["field"], "branch", "{}: {v}", db.label);
        assert_eq!(row(&c, &hub, SHOP).await["branch"], "main");

        // Picked as a plain form post: back to the list, the hook's filter
        // moved at once, and the repository syncs develop's head.
        let r = c
            .post(format!("{}/api/admin/set_tracked_branch", hub.url))
            .header("Origin", &hub.url)
            .header(
                "Referer",
                format!("{}/repositories/{shop_id}/branch", hub.url),
            )
            .header("Accept", "text/html")
            .form(&[("id", shop_id.as_str()), ("branch", "develop")])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_redirection(), "{}: {}", db.label, r.status());
        let to = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(to, "/repositories", "{}", db.label);
        assert_eq!(
            hook_branch(&emu, &db, &shop_id).await.as_deref(),
            Some("develop"),
            "{}: the hook filters on the picked branch",
            db.label
        );
        let develop = head(&emu, SHOP, "develop");
        assert_ne!(develop, main);
        let shop = wait_row(&c, &hub, SHOP, "sync of develop", |r| {
            r["state"] == "in_sync" && r["commit"] == develop.as_str()
        })
        .await;
        assert_eq!(shop["branch"], "develop");
        assert_eq!(shop["follows_default"], false);

        // Back to following the default branch (the empty choice).
        let v = call(
            &c,
            &hub,
            "/api/admin/set_tracked_branch",
            &[("id", &shop_id), ("branch", "")],
        )
        .await;
        assert!(v.is_string(), "{}: {v}", db.label);
        let shop = wait_row(&c, &hub, SHOP, "sync of main", |r| {
            r["state"] == "in_sync" && r["commit"] == main.as_str() && r["branch"] == "main"
        })
        .await;
        assert_eq!(shop["follows_default"], true);
        assert_eq!(
            hook_branch(&emu, &db, &shop_id).await.as_deref(),
            Some("main")
        );
        hub.stop();

        // Azure DevOps' default branch becomes `trunk` in both repositories.
        for repo in [SHOP, ML] {
            emu.set_branch(demo::ORG, PROJECT, repo, "trunk", Some("main"))
                .unwrap();
            emu.commit(
                demo::ORG,
                PROJECT,
                repo,
                "trunk",
                vec![FileChange::put("trunk_only.py", b"TRUNK = 1\n".to_vec())],
                "Work on trunk",
            )
            .unwrap();
            emu.set_default_branch(demo::ORG, PROJECT, repo, "trunk")
                .unwrap();
        }
        let trunk = head(&emu, SHOP, "trunk");
        let hub = start_hub(&db, &data, &emu, "1");
        let r = sign_in(&c, &hub, ADMIN, ADMIN_PW).await;
        assert!(r.status().is_redirection(), "sign-in: {}", r.status());
        let shop = wait_row(&c, &hub, SHOP, "re-target to trunk", |r| {
            r["state"] == "in_sync" && r["commit"] == trunk.as_str()
        })
        .await;
        assert_eq!(shop["branch"], "trunk", "{}: {shop}", db.label);
        assert_eq!(shop["follows_default"], true);
        assert!(
            shop["note"]
                .as_str()
                .unwrap_or_default()
                .contains("the default branch changed from main to trunk"),
            "{}: {shop}",
            db.label
        );
        let start = Instant::now();
        while hook_branch(&emu, &db, &shop_id).await.as_deref() != Some("trunk") {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{}: the hook's filter never followed: {:?}\n{}",
                db.label,
                hook_branch(&emu, &db, &shop_id).await,
                hub.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // The pinned one was reconciled too, and stayed on main.
        let handle = db.open().await;
        let queue = Queue::new(handle.clone(), QueueConfig::default());
        let start = Instant::now();
        loop {
            let jobs = queue.jobs_for(&ml_id).await.unwrap();
            if jobs
                .iter()
                .any(|j| j.kind == JobKind::Reconcile && j.status == JobStatus::Succeeded)
            {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{}: {ML} not reconciled: {jobs:#?}",
                db.label
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Reconciled every second here: the next pass may be checking it
        // right now, so wait for it to rest.
        let ml = wait_row(&c, &hub, ML, "reconciled, in sync", |r| {
            r["state"] == "in_sync"
        })
        .await;
        assert_eq!(ml["branch"], "main", "{}: {ml}", db.label);
        assert_eq!(ml["follows_default"], false);
        assert_eq!(ml["commit"], head(&emu, ML, "main").as_str());

        // Its branch deleted: the failure points to the action, which
        // brings it back.
        emu.set_branch(demo::ORG, PROJECT, ML, "main", None)
            .unwrap();
        let v = call(
            &c,
            &hub,
            "/api/admin/repository_action",
            &[("id", &ml_id), ("action", "entire")],
        )
        .await;
        assert!(v.is_string(), "{v}");
        let ml = wait_row(&c, &hub, ML, "branch missing", |r| r["state"] == "failed").await;
        assert_eq!(ml["branch_missing"], true, "{}: {ml}", db.label);
        assert!(
            ml["error"]
                .as_str()
                .unwrap_or_default()
                .contains("Change tracked branch"),
            "{ml}"
        );
        let list = c
            .get(format!("{}/repositories", hub.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(list.contains("Change tracked branch"));
        let v = call(
            &c,
            &hub,
            "/api/admin/set_tracked_branch",
            &[("id", &ml_id), ("branch", "trunk")],
        )
        .await;
        assert!(v.is_string(), "{v}");
        let ml_trunk = head(&emu, ML, "trunk");
        wait_row(&c, &hub, ML, "sync of trunk", |r| {
            r["state"] == "in_sync" && r["commit"] == ml_trunk.as_str() && r["branch"] == "trunk"
        })
        .await;
        handle.close().await;
        drop(hub);
        emu.shutdown().await;
    }
}
