//! One emulator organization, one provider, a hub pointed at the emulator.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ado_emulator::{
    start, AccessLevel, Emulator, EmulatorConfig, FileChange, LoggedRequest, SeedCommit,
    WebhookTarget,
};
use spicehub_core::admin::repositories::{add_repository, AddRepository};
use spicehub_core::config::AzureArgs;
use spicehub_core::connections::ProviderConnections;
use spicehub_core::crypto::SecretKey;
use spicehub_core::db::providers::{CredentialKind, NewProvider};
use spicehub_core::db::repositories::Repository;
use spicehub_core::db::Db;
use spicehub_core::sync::{Job, JobStatus, Queue, QueueConfig};

use crate::common::{data_dir, Hub, HubOptions, TestDb};

pub const TENANT: &str = "11111111-2222-4333-8444-555555555555";
pub const CLIENT: &str = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
pub const SECRET: &str = "good~secret.Value-0123456789";
pub const ORG: &str = "acme";
pub const ORG_GUID: &str = "0a0a0a0a-1b1b-4c2c-8d3d-4e4e4e4e4e4e";
pub const PROJECT: &str = "Alpha";
pub const HOOK_USER: &str = "hook-user";
pub const HOOK_PASSWORD: &str = "Zx8-webhook-password-0123456789";

pub fn seed(message: &str, changes: Vec<FileChange>) -> SeedCommit {
    SeedCommit {
        branch: None,
        from_branch: None,
        message: message.into(),
        author: None,
        date: None,
        changes,
        tags: Vec::new(),
    }
}

pub fn base_config(dir: PathBuf) -> EmulatorConfig {
    EmulatorConfig::new(dir)
        .with_tenant(TENANT, &["contoso.test"])
        .with_app(TENANT, CLIENT, "spicehub sync")
        .with_secret(CLIENT, SECRET, None)
        .with_org(ORG, ORG_GUID, TENANT)
        .with_member(ORG, CLIENT, AccessLevel::Basic)
        .with_project(ORG, PROJECT)
        .with_retry_time_scale(0.001)
}

pub struct Setup {
    pub emu: Emulator,
    pub db: Db,
    pub hub: Option<Hub>,
    pub data: PathBuf,
    pub provider_id: String,
    pub clients: ProviderConnections,
    pub queue: Queue,
    pub label: &'static str,
    pub env: Vec<(&'static str, String)>,
    _emu_dir: tempfile::TempDir,
    _data_dir: tempfile::TempDir,
}

/// Hub settings for tests: fast polling, quick retries, a short lease, no
/// periodic reconcile unless a test asks for it.
pub fn hub_env(emu: &Emulator) -> Vec<(&'static str, String)> {
    vec![
        ("SPICEHUB_AUTHORITY_URL", emu.authority_url()),
        ("SPICEHUB_DEVOPS_URL", emu.devops_url()),
        ("SPICEHUB_SYNC_POLL_MS", "50".into()),
        ("SPICEHUB_SYNC_RETRY_DELAY", "1".into()),
        ("SPICEHUB_SYNC_LEASE", "10".into()),
        ("SPICEHUB_RECONCILE_INTERVAL", "0".into()),
    ]
}

impl Setup {
    /// The emulator's base organization as `build` extends it, a database
    /// with one provider, no hub yet.
    pub async fn new(
        test_db: &TestDb,
        build: impl FnOnce(EmulatorConfig) -> EmulatorConfig,
    ) -> Setup {
        Self::with_secret(test_db, build, SECRET).await
    }

    pub async fn with_secret(
        test_db: &TestDb,
        build: impl FnOnce(EmulatorConfig) -> EmulatorConfig,
        secret: &str,
    ) -> Setup {
        let emu_dir = tempfile::tempdir().expect("tempdir");
        let config = build(base_config(emu_dir.path().to_path_buf()));
        let emu = start(config, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("emulator");
        let (data_dir_guard, data) = data_dir();
        let db = Db::connect(&test_db.url).await.expect("connect");
        db.migrate().await.expect("migrate");
        let key = SecretKey::load_or_generate(&data.join("secret.key")).expect("key");
        let provider = db
            .create_provider(
                &key,
                &NewProvider {
                    display_name: "Contoso",
                    tenant_id: TENANT,
                    client_id: CLIENT,
                    credential_kind: CredentialKind::ClientSecret,
                    credential: secret.as_bytes(),
                    webhook_username: HOOK_USER,
                    webhook_password: HOOK_PASSWORD,
                    secret_expires_at: None,
                },
            )
            .await
            .expect("provider");
        let clients = ProviderConnections::new(
            db.clone(),
            key,
            AzureArgs {
                authority_url: emu.authority_url(),
                devops_url: emu.devops_url(),
            },
            Default::default(),
        )
        .expect("clients");
        let queue = Queue::new(db.clone(), QueueConfig::default());
        let env = hub_env(&emu);
        Setup {
            emu,
            db,
            hub: None,
            data,
            provider_id: provider.id,
            clients,
            queue,
            label: test_db.label,
            env,
            _emu_dir: emu_dir,
            _data_dir: data_dir_guard,
        }
    }

    pub fn start_hub(&mut self, test_db: &TestDb) {
        let hub = Hub::start_with(HubOptions {
            db: test_db,
            data_dir: &self.data,
            env: self.env.clone(),
        });
        self.emu.set_webhook(Some(WebhookTarget::new(
            format!("{}/gateway/public/sync", hub.url),
            HOOK_USER,
            HOOK_PASSWORD,
        )));
        self.hub = Some(hub);
    }

    pub fn logs(&self) -> String {
        self.hub.as_ref().map(Hub::logs).unwrap_or_default()
    }

    pub async fn add(&self, repo: &str) -> Repository {
        add_repository(
            &self.db,
            &self.clients,
            &self.queue,
            &AddRepository {
                provider_id: &self.provider_id,
                organization: ORG,
                project: PROJECT,
                repository: repo,
                branch: None,
            },
        )
        .await
        .expect("add repository")
    }

    pub fn head(&self, repo: &str) -> String {
        self.emu
            .branch_head(ORG, PROJECT, repo, "main")
            .expect("head")
            .expect("branch")
    }

    pub fn commit(&self, repo: &str, changes: Vec<FileChange>, message: &str) -> String {
        self.emu
            .commit(ORG, PROJECT, repo, "main", changes, message)
            .expect("commit")
    }

    /// Waits until the repository shows `commit`, in sync.
    pub async fn wait_synced(&self, repo_id: &str, commit: &str) -> Repository {
        let start = Instant::now();
        let (ok, r) = loop {
            let r = self.db.repository(repo_id).await.unwrap().unwrap();
            if r.last_synced_commit.as_deref() == Some(commit)
                && r.state == spicehub_core::db::repositories::RepoState::Synced
            {
                break (true, r);
            }
            if start.elapsed() > Duration::from_secs(90) {
                break (false, r);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            ok,
            "{}: repository did not reach {commit}: state {:?}, commit {:?}, error {:?}\njobs: {:#?}\nlogs:\n{}",
            self.label,
            r.state,
            r.last_synced_commit,
            r.last_error,
            self.queue.jobs_for(repo_id).await.unwrap(),
            self.logs()
        );
        r
    }

    /// Waits until every job of the repository is finished.
    pub async fn wait_jobs_done(&self, repo_id: &str) -> Vec<Job> {
        let start = Instant::now();
        let (ok, jobs) = loop {
            let jobs = self.queue.jobs_for(repo_id).await.unwrap();
            if jobs
                .iter()
                .all(|j| !matches!(j.status, JobStatus::Pending | JobStatus::Running))
            {
                break (true, jobs);
            }
            if start.elapsed() > Duration::from_secs(90) {
                break (false, jobs);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            ok,
            "{}: jobs still running: {jobs:#?}\n{}",
            self.label,
            self.logs()
        );
        jobs
    }

    /// Queues a re-parse of the stored files, as the Repositories tab
    /// does, and waits until every job of the repository is finished.
    pub async fn reparse(&self, repo_id: &str) -> Vec<Job> {
        spicehub_core::admin::repositories::request_sync(
            &self.db,
            &self.clients,
            &self.queue,
            repo_id,
            spicehub_core::sync::JobKind::Reparse,
            None,
        )
        .await
        .expect("re-parse");
        self.wait_jobs_done(repo_id).await
    }

    /// What readers see: the commit and each path with its content (None for noted paths).
    pub async fn visible(
        &self,
        repo_id: &str,
    ) -> Option<(String, BTreeMap<String, Option<Vec<u8>>>)> {
        self.db
            .visible_files(repo_id)
            .await
            .expect("visible files")
            .map(|(commit, files)| {
                (
                    commit,
                    files.into_iter().map(|f| (f.row.path, f.content)).collect(),
                )
            })
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.emu.request_log()
    }
}

pub async fn wait_for<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < timeout {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

pub fn is_zip(r: &LoggedRequest) -> bool {
    r.path.ends_with("/items")
        && r.query
            .as_deref()
            .is_some_and(|q| q.contains("%24format=zip") || q.contains("$format=zip"))
}

/// One blob fetched alone (`GET .../blobs/{id}`).
pub fn is_blob(r: &LoggedRequest) -> bool {
    r.path.contains("/blobs/")
}

/// A batch of blobs ("Get Blobs Zip", `POST .../blobs`).
pub fn is_blobs_zip(r: &LoggedRequest) -> bool {
    r.method == "POST" && r.path.ends_with("/blobs")
}

pub fn text(files: &BTreeMap<String, Option<Vec<u8>>>, path: &str) -> Option<String> {
    files
        .get(path)
        .and_then(|c| c.as_ref())
        .map(|c| String::from_utf8_lossy(c).into_owned())
}
