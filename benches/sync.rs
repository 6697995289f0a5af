//! Sync engine benchmarks (harness = false). Prints figures; asserts nothing
//! about time.
//!
//! 1. Webhook ingestion on SQLite: the real `spicehub serve` binary under a
//!    load generator on loopback, beside a bare axum handler that only
//!    answers 200.
//! 2. Incremental vs full sync of a 10,000-file repository: requests, bytes
//!    and wall time for pushes touching 1, 10, 100 and 1,000 files, with the
//!    changed files fetched in batches (the default) and one by one, and a
//!    full sync; the hub's CPU time for each push, beside a re-parse over
//!    the kept facts and a full parse with none kept.
//! 3. First replication of 10,000 files / ~100 MB beside `curl` + `unzip` of
//!    the same archive.
//! 4. First replication of 50 repositories under an Azure DevOps rate limit
//!    they exceed (the emulator's throughput-unit model, scaled down from
//!    200 per 5 minutes to 100 per 10 s, or `SPICEHUB_BENCH_RATE_LIMIT`),
//!    with the hub's governor and without it: 429s, delayed requests and
//!    wall time.
//!
//! `cargo bench --bench sync` (SPICEHUB_BENCH_QUICK=1 for a
//! smaller run, SPICEHUB_BENCH_ONLY=incremental for one part: `webhook`,
//! `incremental`, `first`, `governor`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ado_emulator::{
    self as emulator, AccessLevel, Emulator, EmulatorConfig, FileChange, RateLimitModel, SeedCommit,
};
use spicehub_core::admin::repositories::{add_repository, request_sync, AddRepository};
use spicehub_core::config::AzureArgs;
use spicehub_core::connections::ProviderConnections;
use spicehub_core::crypto::SecretKey;
use spicehub_core::db::providers::{CredentialKind, NewProvider};
use spicehub_core::db::repositories::{NewRepository, RepoState};
use spicehub_core::db::Db;
use spicehub_core::sync::{JobKind, Queue, QueueConfig};

const BIN: &str = env!("CARGO_BIN_EXE_spicehub");
const TENANT: &str = "3f4e1a52-6c1d-4b8e-9a27-5d0c7e1b2a90";
const CLIENT: &str = "0c6f8e2a-4d3b-4f7e-9b1a-2e5d7c9a1b30";
const SECRET: &str = "Xq48Q~bench.Spicehub_Secret.Value0";
const ORG: &str = "bench";
const PROJECT: &str = "Alpha";
const HOOK_USER: &str = "bench-hook";
const HOOK_PASSWORD: &str = "Zx8-bench-webhook-password-0123456789";

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("bench failed: {what}: {e}");
    std::process::exit(1)
}

fn quick() -> bool {
    std::env::var("SPICEHUB_BENCH_QUICK").is_ok_and(|v| !v.is_empty())
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail("runtime", e));
    rt.block_on(async {
        if part("webhook") {
            webhook_ingestion().await;
        }
        if part("incremental") {
            incremental_vs_full().await;
        }
        if part("first") {
            first_replication_vs_curl().await;
        }
        if part("governor") {
            governed_replication().await;
        }
    });
}

/// `SPICEHUB_BENCH_ONLY=incremental` (or `webhook`, `first`, comma-separated)
/// runs only those parts.
fn part(name: &str) -> bool {
    match std::env::var("SPICEHUB_BENCH_ONLY") {
        Ok(only) if !only.trim().is_empty() => only.split(',').any(|p| p.trim() == name),
        _ => true,
    }
}

/// The hub binary on SQLite in `data`, pointed at `devops` (or nowhere).
struct HubProcess {
    child: Child,
    url: String,
}

impl HubProcess {
    fn start(data: &Path, env: &[(&str, String)]) -> HubProcess {
        use std::io::BufRead;
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--bind", "127.0.0.1:0"])
            .env("SPICEHUB_DATA_DIR", data)
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "warn,spicehub=info")
            // Logs go to standard error (standard output is for results).
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| fail("spawn hub", e));
        let out = child
            .stderr
            .take()
            .unwrap_or_else(|| fail("stderr", "none"));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(i) = line.find("listening on http://") {
                    let url = line[i + "listening on ".len()..]
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = tx.send(url);
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| fail("hub start", e));
        HubProcess { child, url }
    }
}

impl HubProcess {
    /// CPU time (user + system) the hub process has used so far, from
    /// `/proc` (Linux reports it in USER_HZ = 100 ticks a second).
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .unwrap_or_else(|e| fail("hub cpu time", e));
        // The command name (2nd field) may hold spaces: count after its ')'.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15, i.e. 11 and 12 after ')'.
        (ticks(11) + ticks(12)) / 100.0
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn seed_provider(db: &Db, data: &Path) -> String {
    let key =
        SecretKey::load_or_generate(&data.join("secret.key")).unwrap_or_else(|e| fail("key", e));
    db.create_provider(
        &key,
        &NewProvider {
            display_name: "Bench",
            tenant_id: TENANT,
            client_id: CLIENT,
            credential_kind: CredentialKind::ClientSecret,
            credential: SECRET.as_bytes(),
            webhook_username: HOOK_USER,
            webhook_password: HOOK_PASSWORD,
            secret_expires_at: None,
        },
    )
    .await
    .unwrap_or_else(|e| fail("provider", e))
    .id
}

struct Load {
    count: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
    errors: usize,
}

/// `total` POSTs from `concurrency` tasks; `body(i)` makes the i-th body.
async fn load(
    url: &str,
    total: usize,
    concurrency: usize,
    body: Arc<dyn Fn(usize) -> String + Send + Sync>,
) -> Load {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap_or_else(|e| fail("client", e));
    let auth = format!(
        "Basic {}",
        base64_encode(format!("{HOOK_USER}:{HOOK_PASSWORD}").as_bytes())
    );
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let url = url.to_owned();
        let auth = auth.clone();
        let next = next.clone();
        let body = body.clone();
        set.spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .header("Authorization", &auth)
                    .header("Content-Type", "application/json")
                    .body(body(i))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                    }
                    _ => errors += 1,
                }
                lat.push(t.elapsed());
            }
            (lat, errors)
        });
    }
    let mut all = Vec::with_capacity(total);
    let mut errors = 0;
    while let Some(r) = set.join_next().await {
        let (lat, e) = r.unwrap_or_else(|e| fail("load task", e));
        all.extend(lat);
        errors += e;
    }
    let elapsed = start.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Load {
        count: all.len(),
        elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
        max: *all.last().unwrap_or(&Duration::ZERO),
        errors,
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn print_load(what: &str, l: &Load) {
    println!(
        "{what}: {} requests in {:.2} s = {:.0}/s; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} errors",
        l.count,
        l.elapsed.as_secs_f64(),
        l.count as f64 / l.elapsed.as_secs_f64(),
        l.p50.as_secs_f64() * 1e3,
        l.p99.as_secs_f64() * 1e3,
        l.max.as_secs_f64() * 1e3,
        l.errors
    );
}

async fn webhook_ingestion() {
    let total = if quick() { 3_000 } else { 20_000 };
    let concurrency = 32;
    let dir = tempfile::tempdir().unwrap_or_else(|e| fail("tempdir", e));
    let data = dir.path().to_owned();
    let db = Db::connect(&format!("sqlite://{}", data.join("spicehub.db").display()))
        .await
        .unwrap_or_else(|e| fail("db", e));
    db.migrate().await.unwrap_or_else(|e| fail("migrate", e));
    let provider = seed_provider(&db, &data).await;
    let org = db
        .create_organization(&provider, "acme", None)
        .await
        .unwrap_or_else(|e| fail("org", e));
    // 100 repositories: deliveries spread over them, as pushes from a team would.
    let mut repos = Vec::new();
    for i in 0..100 {
        let id = format!("5f3c8a10-1111-4222-8333-{i:012}");
        db.create_repository(&NewRepository {
            id: &id,
            organization_id: &org.id,
            project_id: "6ce954b1-ce1f-45d1-b94d-e6bf2464ba2c",
            project_name: "Alpha",
            name: &format!("r{i}"),
            tracked_branch: "main",
            web_url: None,
        })
        .await
        .unwrap_or_else(|e| fail("repository", e));
        repos.push(id);
    }
    db.close().await;
    // Azure DevOps is unreachable on purpose: jobs are queued, not run.
    let hub = HubProcess::start(
        &data,
        &[
            ("SPICEHUB_DEVOPS_URL", "http://127.0.0.1:9".into()),
            ("SPICEHUB_AUTHORITY_URL", "http://127.0.0.1:9".into()),
            ("SPICEHUB_RECONCILE_INTERVAL", "0".into()),
        ],
    );
    let repos = Arc::new(repos);
    let body = {
        let repos = repos.clone();
        Arc::new(move |i: usize| {
            push_body(
                &format!("{i:08x}-0000-4000-8000-bench"),
                &repos[i % repos.len()],
                i,
            )
        }) as Arc<dyn Fn(usize) -> String + Send + Sync>
    };
    let url = format!("{}/gateway/public/sync", hub.url);
    // Warm-up, then the measured run.
    let _ = load(
        &url,
        200,
        8,
        Arc::new(|i| {
            push_body(
                &format!("warm-{i}"),
                "5f3c8a10-1111-4222-8333-000000000000",
                i,
            )
        }),
    )
    .await;
    let hub_load = load(&url, total, concurrency, body.clone()).await;
    let flood = flooded_deliveries(&url, total, body).await;
    drop(hub);

    // The bare handler: the same HTTP stack, no auth, no database.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| fail("bind", e));
    let addr = listener.local_addr().unwrap_or_else(|e| fail("addr", e));
    let app = axum::Router::new().route(
        "/gateway/public/sync",
        axum::routing::post(|| async { "{\"status\":\"queued\"}" }),
    );
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let bare_url = format!("http://{addr}/gateway/public/sync");
    let bare_body = Arc::new(|i: usize| push_body(&format!("{i}"), "x", i))
        as Arc<dyn Fn(usize) -> String + Send + Sync>;
    let _ = load(&bare_url, 200, 8, bare_body.clone()).await;
    let bare = load(&bare_url, total, concurrency, bare_body).await;
    server.abort();

    println!("\n== webhook ingestion (SQLite, durable: every 200 is a committed delivery + job; {concurrency} connections)");
    print_load("hub POST /gateway/public/sync", &hub_load);
    print_load("bare axum handler answering 200", &bare);
    print_load(
        &format!(
            "real deliveries (from 127.0.0.2) during a flood of {} bad posts from 200 connections ({} refused 429, {:.1} s)",
            flood.bad, flood.refused, flood.flood_secs
        ),
        &flood.real,
    );
    println!(
        "ratio: hub throughput = {:.2} x bare",
        (hub_load.count as f64 / hub_load.elapsed.as_secs_f64())
            / (bare.count as f64 / bare.elapsed.as_secs_f64())
    );
}

struct Flooded {
    real: Load,
    bad: usize,
    refused: usize,
    flood_secs: f64,
}

/// 20,000 posts with wrong passwords from 200 connections on 127.0.0.1,
/// while one client on 127.0.0.2 delivers real pushes one after another:
/// how long each real delivery takes while the hub is under attack.
async fn flooded_deliveries(
    url: &str,
    first_event: usize,
    body: Arc<dyn Fn(usize) -> String + Send + Sync>,
) -> Flooded {
    let bad_total = if quick() { 4_000 } else { 20_000 };
    let connections = 200;
    let started = Instant::now();
    let mut flood = tokio::task::JoinSet::new();
    for conn in 0..connections {
        let url = url.to_owned();
        flood.spawn(async move {
            let client = reqwest::Client::new();
            let auth = format!(
                "Basic {}",
                base64_encode(format!("{HOOK_USER}:guess-{conn}").as_bytes())
            );
            let mut refused = 0;
            for _ in 0..bad_total / connections {
                if let Ok(r) = client
                    .post(&url)
                    .header("Authorization", &auth)
                    .body("{}")
                    .send()
                    .await
                {
                    refused += usize::from(r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS);
                }
            }
            refused
        });
    }
    let real = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap_or_else(|e| fail("client", e));
    let auth = format!(
        "Basic {}",
        base64_encode(format!("{HOOK_USER}:{HOOK_PASSWORD}").as_bytes())
    );
    let mut lat = Vec::new();
    let mut errors = 0;
    let mut refused = 0;
    let mut i = first_event + 1_000_000;
    while !flood.is_empty() && lat.len() < 100_000 {
        let t = Instant::now();
        match real
            .post(url)
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .body(body(i))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {}
            _ => errors += 1,
        }
        lat.push(t.elapsed());
        i += 1;
        while let Some(done) = flood.try_join_next() {
            refused += done.unwrap_or(0);
        }
        if flood.is_empty() {
            break;
        }
    }
    while let Some(r) = flood.join_next().await {
        refused += r.unwrap_or(0);
    }
    let elapsed = started.elapsed();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Flooded {
        real: Load {
            count: lat.len(),
            elapsed,
            p50: pct(0.50),
            p99: pct(0.99),
            max: lat.last().copied().unwrap_or_default(),
            errors,
        },
        bad: bad_total,
        refused,
        flood_secs: elapsed.as_secs_f64(),
    }
}

fn push_body(event_id: &str, repo: &str, i: usize) -> String {
    serde_json::json!({
        "subscriptionId": "10e850da-0000-4000-8000-000000000001",
        "notificationId": i,
        "id": event_id,
        "eventType": "git.push",
        "publisherId": "tfs",
        "resource": {
            "refUpdates": [{
                "name": "refs/heads/main",
                "oldObjectId": "aad331d8d3b131fa9ae03cf5e53965b51942618a",
                "newObjectId": format!("{:040x}", i + 1),
            }],
            "repository": {
                "id": repo,
                "name": "r",
                "project": {"id": "6ce954b1-ce1f-45d1-b94d-e6bf2464ba2c", "name": "Alpha"},
                "defaultBranch": "refs/heads/main",
            },
            "pushId": i,
        },
        "resourceContainers": {"account": {"id": "0a0a0a0a-1b1b-4c2c-8d3d-4e4e4e4e4e4e"}},
        "createdDate": "2026-11-23T10:00:00Z",
    })
    .to_string()
}

/// The bench's tenant, app and organization, with no repository yet.
fn bench_org(dir: &Path) -> EmulatorConfig {
    EmulatorConfig::new(dir.join("emu"))
        .with_tenant(TENANT, &["contoso.onmicrosoft.com"])
        .with_app(TENANT, CLIENT, "spicehub-bench")
        .with_secret(CLIENT, SECRET, None)
        .with_org(ORG, "b8a1f2c4-7e3d-4c59-8f6a-1d2e3c4b5a60", TENANT)
        .with_member(ORG, CLIENT, AccessLevel::Basic)
        .with_project(ORG, PROJECT)
}

/// One commit on the default branch.
fn seed(files: Vec<FileChange>) -> Vec<SeedCommit> {
    vec![SeedCommit {
        branch: None,
        from_branch: None,
        message: "seed".into(),
        author: None,
        date: None,
        changes: files,
        tags: Vec::new(),
    }]
}

/// An emulator with one repository made of `files`.
async fn emulator_with(dir: &Path, files: Vec<FileChange>) -> Emulator {
    let config = bench_org(dir).with_seeded_repo(ORG, PROJECT, "big", seed(files));
    emulator::start(
        config,
        "127.0.0.1:0".parse().unwrap_or_else(|e| fail("addr", e)),
    )
    .await
    .unwrap_or_else(|e| fail("emulator", e))
}

struct Replica {
    db: Db,
    clients: ProviderConnections,
    queue: Queue,
    repo: String,
    hub: HubProcess,
    _dir: tempfile::TempDir,
}

/// A hub replicating the emulator's `big` repository, with `env` on top of
/// the bench's settings; returns once the first replication is queued, with
/// the time it was queued.
async fn replicate(emu: &Emulator, env: &[(&str, String)]) -> (Replica, Instant) {
    let hub = hub_for(emu, env).await;
    let start = Instant::now();
    let repo = hub.add("big").await;
    (
        Replica {
            db: hub.db,
            clients: hub.clients,
            queue: hub.queue,
            repo,
            hub: hub.hub,
            _dir: hub.dir,
        },
        start,
    )
}

/// A hub process on its own SQLite database, with the bench's provider,
/// and the admin side's handles on the same database.
struct BenchHub {
    db: Db,
    clients: ProviderConnections,
    queue: Queue,
    provider: String,
    hub: HubProcess,
    dir: tempfile::TempDir,
}

impl BenchHub {
    /// Adds a repository of the bench's project as an admin does, which
    /// queues its first replication; its id.
    async fn add(&self, repository: &str) -> String {
        add_repository(
            &self.db,
            &self.clients,
            &self.queue,
            &AddRepository {
                provider_id: &self.provider,
                organization: ORG,
                project: PROJECT,
                repository,
                branch: None,
            },
        )
        .await
        .unwrap_or_else(|e| fail("add repository", e))
        .id
    }
}

async fn hub_for(emu: &Emulator, env: &[(&str, String)]) -> BenchHub {
    let dir = tempfile::tempdir().unwrap_or_else(|e| fail("tempdir", e));
    let data = dir.path().to_owned();
    let db = Db::connect(&format!("sqlite://{}", data.join("spicehub.db").display()))
        .await
        .unwrap_or_else(|e| fail("db", e));
    db.migrate().await.unwrap_or_else(|e| fail("migrate", e));
    let provider = seed_provider(&db, &data).await;
    let key =
        SecretKey::load_or_generate(&data.join("secret.key")).unwrap_or_else(|e| fail("key", e));
    let clients = ProviderConnections::new(
        db.clone(),
        key,
        AzureArgs {
            authority_url: emu.authority_url(),
            devops_url: emu.devops_url(),
        },
        Default::default(),
    )
    .unwrap_or_else(|e| fail("clients", e));
    let mut settings = vec![
        ("SPICEHUB_AUTHORITY_URL", emu.authority_url()),
        ("SPICEHUB_DEVOPS_URL", emu.devops_url()),
        ("SPICEHUB_SYNC_POLL_MS", "20".into()),
        ("SPICEHUB_RECONCILE_INTERVAL", "0".into()),
    ];
    settings.extend(env.iter().cloned());
    let hub = HubProcess::start(&data, &settings);
    let queue = Queue::new(db.clone(), QueueConfig::default());
    BenchHub {
        db,
        clients,
        queue,
        provider,
        hub,
        dir,
    }
}

async fn wait_commit(r: &Replica, commit: &str) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let repo =
            r.db.repository(&r.repo)
                .await
                .unwrap_or_else(|e| fail("read", e));
        if let Some(repo) = repo {
            if repo.last_synced_commit.as_deref() == Some(commit) && repo.state == RepoState::Synced
            {
                return;
            }
            if repo.state == RepoState::Error {
                fail("sync", repo.last_error.unwrap_or_default());
            }
        }
        if Instant::now() > deadline {
            fail("sync", "did not finish in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn module(i: usize, size: usize) -> String {
    let mut s = format!("\"\"\"Module {i}.\"\"\"\nfrom pkg.registry import steps\n\n@steps.register(\"step_{i}\")\ndef step_{i}(x):\n    return x + {i}\n\n");
    let mut n = 0;
    while s.len() < size {
        s.push_str(&format!(
            "CONSTANT_{i}_{n} = \"{:x}\"\n",
            (i * 7919 + n * 104729) % 1_000_003
        ));
        n += 1;
    }
    s
}

fn repo_files(n: usize, size: usize) -> Vec<FileChange> {
    let mut files = vec![
        FileChange::put("pkg/__init__.py", ""),
        FileChange::put(
            "pkg/registry.py",
            "from spice import Registry\nsteps = Registry(\"steps\")\n",
        ),
    ];
    for i in 0..n {
        files.push(FileChange::put(
            format!("pkg/m{:02}/mod_{i}.py", i % 100),
            module(i, size),
        ));
    }
    files
}

async fn incremental_vs_full() {
    let n = if quick() { 1_000 } else { 10_000 };
    let dir = tempfile::tempdir().unwrap_or_else(|e| fail("tempdir", e));
    let files = repo_files(n, 1_000);
    let content_bytes: usize = files
        .iter()
        .map(|c| match c {
            FileChange::Put { bytes, .. } => bytes.len(),
            _ => 0,
        })
        .sum();
    let python_files = files.len() as i64;
    let emu = emulator_with(dir.path(), files).await;
    let head = emu
        .branch_head(ORG, PROJECT, "big", "main")
        .unwrap_or_else(|e| fail("head", e))
        .unwrap_or_else(|| fail("head", "none"));
    let batch = spicehub_core::config::DEFAULT_BLOB_BATCH;
    let (replica, _) = replicate(&emu, &[]).await;
    wait_commit(&replica, &head).await;

    println!("\n== incremental vs full ({n}-file repository, ~1 KB per file)");
    let (rows, facts_bytes) = facts_kept(&replica, python_files).await;
    println!(
        "parser facts kept after the first replication: {rows} files, {facts_bytes} bytes \
         ({:.0} per file; the files' contents: {content_bytes} bytes)",
        facts_bytes as f64 / rows.max(1) as f64
    );
    println!("-- changed files in batches (SPICEHUB_BLOB_BATCH={batch}, the default)");
    let cpu_by_push = pushes(&emu, &replica, n, Some(batch), 0).await;
    // The parse alone, on the hub: names resolved over the kept facts of
    // every file, then every file extracted again with no facts kept.
    let (kept_wall, kept_cpu) = reparse(&replica).await;
    let sql = "DELETE FROM file_facts";
    sqlx::query(sql)
        .execute(replica.db.pool())
        .await
        .unwrap_or_else(|e| fail("drop facts", e));
    let (full_wall, full_cpu) = reparse(&replica).await;
    println!(
        "re-parse over kept facts: {kept_wall:.2} s, hub CPU {kept_cpu:.2} s; full parse (no facts kept): {full_wall:.2} s, hub CPU {full_cpu:.2} s"
    );
    for (k, cpu) in &cpu_by_push {
        println!(
            "  push touching {k:>4} files: hub CPU {:.1}% of the full parse's (target for 1 file < 5%)",
            100.0 * cpu / full_cpu.max(f64::EPSILON)
        );
    }
    // The same pushes, each file fetched alone: a second hub on the same
    // emulator, replicated from the head the first one reached.
    let head = emu
        .branch_head(ORG, PROJECT, "big", "main")
        .unwrap_or_else(|e| fail("head", e))
        .unwrap_or_else(|| fail("head", "none"));
    let (single, _) = replicate(&emu, &[("SPICEHUB_BLOB_BATCH", "0".into())]).await;
    wait_commit(&single, &head).await;
    println!("-- each changed file alone (SPICEHUB_BLOB_BATCH=0)");
    pushes(&emu, &single, n, None, 1).await;
    single.db.close().await;
    drop(single);

    emu.clear_request_log();
    let start = Instant::now();
    // Same commit: wait for the job itself to finish.
    let job = request(&replica, JobKind::EntireRepository).await;
    wait_job(&replica, &job).await;
    let elapsed = start.elapsed();
    let log = emu.request_log();
    let devops: Vec<_> = log
        .iter()
        .filter(|r| r.service == emulator::Service::DevOps)
        .collect();
    let bytes: usize = devops.iter().map(|r| r.body.len()).sum();
    println!(
        "full sync (entire repository): {} requests, {} bytes, {:.2} s",
        devops.len(),
        bytes,
        elapsed.as_secs_f64()
    );
    replica.db.close().await;
}

/// Pushes touching 1, 10, 100 and 1,000 files, each synced incrementally by
/// `replica`: requests, bytes and wall time. `batch` is the hub's
/// `SPICEHUB_BLOB_BATCH` (None: one request per file); `salt` keeps the
/// contents of one series from repeating another's.
async fn pushes(
    emu: &Emulator,
    replica: &Replica,
    n: usize,
    batch: Option<usize>,
    salt: usize,
) -> Vec<(usize, f64)> {
    let mut cpu_by_push = Vec::new();
    for k in [1usize, 10, 100, 1_000] {
        emu.clear_request_log();
        let changes: Vec<FileChange> = (0..k.min(n))
            .map(|j| {
                let i = (j * 97) % n;
                FileChange::put(
                    format!("pkg/m{:02}/mod_{i}.py", i % 100),
                    module(i + n * k + salt * n * 10_000, 1_000),
                )
            })
            .collect();
        let k = changes.len();
        let changed_bytes: usize = changes
            .iter()
            .map(|c| match c {
                FileChange::Put { bytes, .. } => bytes.len(),
                _ => 0,
            })
            .sum();
        let cpu = replica.hub.cpu_seconds();
        let start = Instant::now();
        let commit = emu
            .commit(ORG, PROJECT, "big", "main", changes, &format!("touch {k}"))
            .unwrap_or_else(|e| fail("commit", e));
        request(replica, JobKind::RecentChanges).await;
        wait_commit(replica, &commit).await;
        let elapsed = start.elapsed();
        let cpu = replica.hub.cpu_seconds() - cpu;
        cpu_by_push.push((k, cpu));
        let log = emu.request_log();
        let devops: Vec<_> = log
            .iter()
            .filter(|r| r.service == emulator::Service::DevOps)
            .collect();
        let bytes: usize = devops.iter().map(|r| r.body.len()).sum();
        // The diff is paged (100 changes a page, folders included): pages
        // past the first are not the blobs' doing, so they are shown apart.
        let diff_pages = devops
            .iter()
            .filter(|r| r.path.ends_with("/diffs/commits"))
            .count();
        let blob_requests = devops.iter().filter(|r| r.path.contains("/blobs")).count();
        let target = match batch {
            Some(batch) => format!(
                "target <= 4 + ceil({k}/{batch}) = {} with a one-page diff",
                4 + k.div_ceil(batch)
            ),
            None => "one per file".to_owned(),
        };
        println!(
            "push touching {k:>4} files: {:>4} requests = {blob_requests} for blobs + {diff_pages} diff pages + {} others ({target}), {:>9} bytes (target <= {} = 2 x {changed_bytes} changed + 64 KiB), {:.2} s, hub CPU {cpu:.2} s",
            devops.len(),
            devops.len() - blob_requests - diff_pages,
            bytes,
            2 * changed_bytes + 65_536,
            elapsed.as_secs_f64()
        );
    }
    cpu_by_push
}

/// The facts the hub keeps for the replica's repository, waiting (up to 2
/// minutes) until there are `files` of them: rows and bytes.
async fn facts_kept(replica: &Replica, files: i64) -> (i64, i64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (rows, bytes) = replica
            .db
            .facts_stored(&replica.repo)
            .await
            .unwrap_or_else(|e| fail("facts", e));
        if rows >= files || Instant::now() > deadline {
            return (rows, bytes);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs a re-parse of the visible files and waits for it: wall and hub CPU
/// time.
async fn reparse(replica: &Replica) -> (f64, f64) {
    let cpu = replica.hub.cpu_seconds();
    let start = Instant::now();
    let job = request(replica, JobKind::Reparse).await;
    wait_job(replica, &job).await;
    (
        start.elapsed().as_secs_f64(),
        replica.hub.cpu_seconds() - cpu,
    )
}

/// Queues `kind` for the replica's repository, as the Repositories tab
/// does; the job's id.
async fn request(replica: &Replica, kind: JobKind) -> String {
    request_sync(
        &replica.db,
        &replica.clients,
        &replica.queue,
        &replica.repo,
        kind,
        None,
    )
    .await
    .unwrap_or_else(|e| fail("request", e))
}

async fn wait_job(replica: &Replica, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let jobs = replica
            .queue
            .jobs_for(&replica.repo)
            .await
            .unwrap_or_else(|e| fail("jobs", e));
        match jobs.iter().find(|j| j.id == id).map(|j| j.status) {
            Some(spicehub_core::sync::JobStatus::Succeeded) => return,
            Some(spicehub_core::sync::JobStatus::Failed) => fail("job", id),
            _ => {}
        }
        if Instant::now() > deadline {
            fail("job", "timeout");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn first_replication_vs_curl() {
    let (n, size) = if quick() {
        (1_000, 10_000)
    } else {
        (10_000, 10_000)
    };
    let dir = tempfile::tempdir().unwrap_or_else(|e| fail("tempdir", e));
    let emu = emulator_with(dir.path(), repo_files(n, size)).await;
    let head = emu
        .branch_head(ORG, PROJECT, "big", "main")
        .unwrap_or_else(|e| fail("head", e))
        .unwrap_or_else(|| fail("head", "none"));
    let repo_id = emu
        .repository_id(ORG, PROJECT, "big")
        .unwrap_or_else(|| fail("repo", "none"));

    // curl + unzip of the same archive, with a token from the same endpoint.
    let token: serde_json::Value = reqwest::Client::new()
        .post(emu.token_url(TENANT))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("scope", spicehub_azure::AZURE_DEVOPS_SCOPE),
        ])
        .send()
        .await
        .unwrap_or_else(|e| fail("token", e))
        .json()
        .await
        .unwrap_or_else(|e| fail("token json", e));
    let token = token["access_token"]
        .as_str()
        .unwrap_or_else(|| fail("token", "no access_token"))
        .to_owned();
    let url = format!(
        "{}/{ORG}/{PROJECT}/_apis/git/repositories/{repo_id}/items?scopePath=/&recursionLevel=full&versionDescriptor.version={head}&versionDescriptor.versionType=commit&$format=zip&download=true&api-version=7.1",
        emu.devops_url()
    );
    let out = dir.path().join("curl");
    let _ = std::fs::create_dir_all(&out);
    let script = format!(
        "curl -sf -H 'Authorization: Bearer {token}' -o '{zip}' '{url}' && unzip -q -o '{zip}' -d '{out}'",
        zip = out.join("a.zip").display(),
        out = out.join("tree").display()
    );
    let start = Instant::now();
    let status = Command::new("sh")
        .args(["-c", &script])
        .status()
        .unwrap_or_else(|e| fail("curl", e));
    let curl = start.elapsed();
    if !status.success() {
        fail("curl + unzip", status);
    }
    let archive = std::fs::metadata(out.join("a.zip"))
        .map(|m| m.len())
        .unwrap_or(0);

    let (replica, queued) = replicate(&emu, &[]).await;
    wait_commit(&replica, &head).await;
    let hub = queued.elapsed();
    println!(
        "\n== first replication: {n} files, {:.0} MB of Python, archive {:.1} MB",
        (n * size) as f64 / 1e6,
        archive as f64 / 1e6
    );
    println!("curl + unzip: {:.2} s", curl.as_secs_f64());
    println!(
        "hub first replication (download, unpack, store, parse, switch): {:.2} s = {:.2} x curl + unzip (issue 20 asks <= 1.2)",
        hub.as_secs_f64(),
        hub.as_secs_f64() / curl.as_secs_f64()
    );
    replica.db.close().await;
}

/// 4. Fifty first replications at once against a budget they exceed.
async fn governed_replication() {
    let repos = if quick() { 20 } else { 50 };
    let dir = tempfile::tempdir().unwrap_or_else(|e| fail("tempdir", e));
    let names: Vec<String> = (0..repos).map(|i| format!("repo{i:02}")).collect();
    let config = names.iter().fold(bench_org(dir.path()), |config, name| {
        config.with_seeded_repo(ORG, PROJECT, name, seed(repo_files(30, 2_000)))
    });
    let emu = emulator::start(
        config,
        "127.0.0.1:0".parse().unwrap_or_else(|e| fail("addr", e)),
    )
    .await
    .unwrap_or_else(|e| fail("emulator", e));
    // Azure DevOps' 200 TSTUs per 5 minutes and delays of up to 30 s, scaled
    // to 100 per 10 s and 1 s so a run takes a minute or two, not an hour.
    // Delays that short make the server's overdraft (up to 1.5 × the limit
    // before a 429) nearly free, which flatters the naive client:
    // SPICEHUB_BENCH_RATE_LIMIT takes another model as JSON (what
    // `PUT /_emulator/rate-limit` takes) to try it at a scale closer to
    // Microsoft's.
    let model = match std::env::var("SPICEHUB_BENCH_RATE_LIMIT") {
        Ok(json) => serde_json::from_str::<RateLimitModel>(&json)
            .unwrap_or_else(|e| fail("SPICEHUB_BENCH_RATE_LIMIT", e)),
        Err(_) => RateLimitModel {
            limit: 100,
            window_secs: 10,
            max_delay_ms: 1_000,
            ..RateLimitModel::default()
        },
    };
    println!(
        "\n== first replication of {repos} repositories of 30 files under a rate limit \
         (emulator: {} TSTUs per {} s, delays up to {} ms, 429 from {}x; costs: list {}, read {}, \
         diff {}, archive {}, other {})",
        model.limit,
        model.window_secs,
        model.max_delay_ms,
        model.block_factor,
        model.costs.list,
        model.costs.read,
        model.costs.diff,
        model.costs.archive,
        model.costs.default,
    );
    for governor in [true, false] {
        // A fresh budget for each run.
        emu.set_rate_limit(None)
            .unwrap_or_else(|e| fail("rate limit", e));
        emu.set_rate_limit(Some(model.clone()))
            .unwrap_or_else(|e| fail("rate limit", e));
        let hub = hub_for(
            &emu,
            &[
                ("SPICEHUB_AZURE_GOVERNOR", governor.to_string()),
                // A job refused by a 429 is retried a second later, not 30.
                ("SPICEHUB_SYNC_RETRY_DELAY", "1".into()),
            ],
        )
        .await;
        let start = Instant::now();
        for name in &names {
            hub.add(name).await;
        }
        let deadline = start + Duration::from_secs(900);
        let synced = loop {
            let rows = hub
                .db
                .repositories()
                .await
                .unwrap_or_else(|e| fail("read", e));
            let synced = rows.iter().filter(|r| r.state == RepoState::Synced).count();
            if synced == repos || Instant::now() > deadline {
                break synced;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let wall = start.elapsed();
        let usage = emu.rate_limit_usage();
        let sum = |f: fn(&ado_emulator::IdentityUsage) -> u64| usage.iter().map(f).sum::<u64>();
        println!(
            "governor {:<3}: {synced}/{repos} synced in {:.1} s; {} requests charged, {} answered 429, \
             {} delayed by the server ({:.1} s of delays in all)",
            if governor { "on" } else { "off" },
            wall.as_secs_f64(),
            sum(|u| u.requests_charged),
            sum(|u| u.requests_blocked),
            sum(|u| u.requests_delayed),
            sum(|u| u.total_delay_ms) as f64 / 1000.0,
        );
        hub.db.close().await;
    }
}
