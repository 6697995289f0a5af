//! Benchmarks (harness = false): token cache hits per second, and listing 1,000
//! repositories across 100 projects against the emulator. Prints figures.
//!
//! `cargo bench --bench azure`

use std::time::{Duration, Instant};

use ado_emulator::{self as emulator, AccessLevel, EmulatorConfig, Service};
use secrecy::SecretString;
use spicehub_azure::{
    AzureClient, ClientConfig, Credential, ServicePrincipal, TokenManager, TokenManagerConfig,
};

const TENANT: &str = "3f4e1a52-6c1d-4b8e-9a27-5d0c7e1b2a90";
const CLIENT: &str = "0c6f8e2a-4d3b-4f7e-9b1a-2e5d7c9a1b30";
const SECRET: &str = "Xq48Q~bench.Spicehub_Secret.Value0";
const ORG: &str = "bench";

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("bench setup failed: {what}: {e}");
    std::process::exit(1)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail("runtime", e));
    rt.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| fail("tempdir", e));
    let config = EmulatorConfig::new(dir.path().join("data"))
        .with_tenant(TENANT, &["contoso.onmicrosoft.com"])
        .with_app(TENANT, CLIENT, "spicehub-bench")
        .with_secret(CLIENT, SECRET, None)
        .with_org(ORG, "b8a1f2c4-7e3d-4c59-8f6a-1d2e3c4b5a60", TENANT)
        .with_member(ORG, CLIENT, AccessLevel::Basic)
        .with_bulk_projects(ORG, "proj", 100, 10);
    let addr = "127.0.0.1:0".parse().unwrap_or_else(|e| fail("addr", e));
    let emu = emulator::start(config, addr)
        .await
        .unwrap_or_else(|e| fail("emulator", e));
    let cred = Credential::client_secret(SecretString::from(SECRET))
        .unwrap_or_else(|e| fail("credential", e));
    let sp = ServicePrincipal::with_authority(&emu.authority_url(), TENANT, CLIENT, cred)
        .unwrap_or_else(|e| fail("sp", e));

    // ---------------------------------------------------------------- token cache hits
    let tokens =
        TokenManager::new(TokenManagerConfig::default()).unwrap_or_else(|e| fail("tokens", e));
    tokens
        .get(&sp)
        .await
        .unwrap_or_else(|e| fail("first token", e));
    const HITS: u32 = 1_000_000;
    let start = Instant::now();
    for _ in 0..HITS {
        if tokens.get(&sp).await.is_err() {
            fail("cache hit", "error");
        }
    }
    let single = start.elapsed();
    let tasks = 8u32;
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let tokens = tokens.clone();
        let sp = sp.clone();
        set.spawn(async move {
            for _ in 0..HITS / tasks {
                let _ = tokens.get(&sp).await;
            }
        });
    }
    while set.join_next().await.is_some() {}
    let multi = start.elapsed();
    println!(
        "token cache: {HITS} hits on one task in {single:?} = {:.0} hits/s",
        HITS as f64 / single.as_secs_f64()
    );
    println!(
        "token cache: {HITS} hits on {tasks} tasks (2 worker threads) in {multi:?} = {:.0} hits/s",
        HITS as f64 / multi.as_secs_f64()
    );
    println!(
        "token cache: token endpoint requests during the run: {}",
        emu.token_requests()
    );

    // ---------------------------------------------------------------- listing 1,000 repositories
    let mut per_project = Vec::new();
    let mut org_wide = Vec::new();
    for round in 0..3 {
        emu.clear_request_log();
        let client_cfg = ClientConfig {
            devops_url: emu.devops_url(),
            ..ClientConfig::default()
        };
        let client = AzureClient::new(client_cfg, tokens.clone(), sp.clone(), ORG)
            .unwrap_or_else(|e| fail("client", e));

        let start = Instant::now();
        let projects = client
            .list_projects()
            .await
            .unwrap_or_else(|e| fail("projects", e));
        let mut set = tokio::task::JoinSet::new();
        for p in &projects {
            let c = client.clone();
            let id = p.id.clone();
            set.spawn(async move { c.list_repositories(&id).await.map(|r| r.len()) });
        }
        let mut repos = 0usize;
        while let Some(r) = set.join_next().await {
            repos += r
                .unwrap_or_else(|e| fail("join", e))
                .unwrap_or_else(|e| fail("repositories", e));
        }
        let elapsed = start.elapsed();
        let sent = client.requests_sent();
        let seen = emu
            .request_log()
            .iter()
            .filter(|r| r.service == Service::DevOps)
            .count();
        if repos != 1000 || projects.len() != 100 {
            fail(
                "listing",
                format!("{} projects, {repos} repositories", projects.len()),
            );
        }
        println!(
            "listing round {round}: {} projects, {repos} repositories, {sent} requests sent ({seen} seen by the emulator), {elapsed:?} (per project, concurrency 4)",
            projects.len()
        );
        per_project.push(elapsed);

        let before = client.requests_sent();
        let start = Instant::now();
        let all = client
            .list_all_repositories()
            .await
            .unwrap_or_else(|e| fail("org-wide", e));
        let elapsed = start.elapsed();
        println!(
            "listing round {round}: org-wide call: {} repositories, {} request(s), {elapsed:?}",
            all.len(),
            client.requests_sent() - before
        );
        org_wide.push(elapsed);
    }
    println!(
        "listing: per-project best {:?}, org-wide best {:?}",
        min(&per_project),
        min(&org_wide)
    );
    emu.shutdown().await;
}

fn min(v: &[Duration]) -> Duration {
    v.iter().copied().min().unwrap_or_default()
}
