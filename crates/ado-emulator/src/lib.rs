//! Emulator of Entra ID's v2.0 token endpoint and of the Azure DevOps REST subset spicehub uses, backed by real
//! Git repositories on disk, able to post `git.push` service-hook deliveries and to misbehave on request
//! (fault injection). Used by the tests and by `spicehub emulator` (demo).
//!
//! URL layout (one listener):
//! * `{base}/login/{tenant}/oauth2/v2.0/token` — Entra token endpoint (authority = `{base}/login`)
//! * `{base}/devops/{org}/...` — Azure DevOps (`{base}/devops` plays `https://dev.azure.com`)
//! * `{base}/_emulator/...` — private admin endpoints (see [`admin`])
//!
//! Misbehaviour comes two ways: injected faults ([`faults`], before authentication, per rule) and, when turned
//! on, Azure DevOps' TSTU rate limiting per identity ([`rate_limit`], after authentication: warning headers,
//! delayed answers, `429`).

pub mod admin;
pub mod cli;
pub mod config;
pub mod demo;
pub mod devops;
pub mod error;
pub mod faults;
pub mod git;
mod http;
pub mod lfs;
pub mod rate_limit;
mod repos;
pub mod state;
pub mod testkit;
pub mod token;
pub mod webhook;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{any, get, post};
use axum::Router;
use parking_lot::{Mutex, RwLock};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use cli::{run_cli, EmulatorArgs};
pub use config::{
    AccessLevel, ApiVersionPolicy, AppConfig, CertificateConfig, EmulatorConfig,
    FederatedCredentialConfig, FileChange, Identity, OrganizationConfig, ProjectConfig, RepoConfig,
    SecretConfig, SeedCommit, Signature, TenantConfig, Visibility, WebhookTarget,
};
pub use error::EmulatorError;
pub use faults::{Fault, FaultRule, FaultScope};
pub use rate_limit::{IdentityUsage, RateLimitError, RateLimitModel, RequestCosts, RequestKind};
pub use state::{AuthKind, LoggedRequest, PushRecord, RefUpdate, Service, TokenRequestRecord};
pub use webhook::{Subscription, SubscriptionStatus, WebhookDelivery};

use state::Shared;

/// A running emulator. Dropping it stops the server (use [`Emulator::shutdown`] to wait for that).
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown_tx: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// Starts the emulator on `bind` (use `127.0.0.1:0` in tests). Creates / seeds the repositories under
/// `config.data_dir` first.
pub async fn start(config: EmulatorConfig, bind: SocketAddr) -> Result<Emulator, EmulatorError> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir)?;
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let mut addr = listener.local_addr()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    }
    let base_url = config
        .public_base_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"))
        .trim_end_matches('/')
        .to_string();
    let cfg = config.clone();
    let orgs = git::blocking(move || repos::build_orgs(&cfg)).await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|error| EmulatorError::Config(format!("HTTP client: {error}")))?;
    let shared = Arc::new(Shared {
        base_url,
        settings: state::Settings::from_config(&config),
        tenants: config.tenants.clone(),
        apps: RwLock::new(config.apps.clone()),
        orgs,
        tokens: Mutex::new(Default::default()),
        token_requests: Mutex::new(Vec::new()),
        faults: Mutex::new(config.faults.clone()),
        request_log: Mutex::new(Vec::new()),
        webhook_target: RwLock::new(None),
        subscriptions: Mutex::new(Vec::new()),
        deliveries: Mutex::new(Vec::new()),
        http,
        runtime: tokio::runtime::Handle::current(),
        process_id: uuid::Uuid::new_v4().to_string(),
        background: Mutex::new(Vec::new()),
        rate_limit: rate_limit::RateLimiter::new(config.rate_limit.clone()),
    });
    webhook::set_config_target(&shared, config.webhook.as_ref());
    let app = router(shared.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
        if let Err(error) = result {
            tracing::error!(error = %error, "emulator server stopped");
        }
    });
    tracing::info!(base_url = %shared.base_url, "emulator listening");
    Ok(Emulator {
        shared,
        addr,
        shutdown_tx: Some(tx),
        server: Some(server),
    })
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/login/{tenant}/oauth2/v2.0/token",
            post(token::token_endpoint),
        )
        .route(
            "/login/{tenant}/v2.0/.well-known/openid-configuration",
            get(token::openid_configuration),
        )
        .route("/login/{tenant}/adminconsent", get(token::admin_consent))
        .route("/vssps/_signin", get(devops::signin_page))
        .route("/devops/{*rest}", any(devops::dispatch))
        .nest("/_emulator", admin::router())
        .fallback(faults::not_found)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            faults::middleware,
        ))
        .with_state(shared)
}

impl Emulator {
    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }
    /// `{base}/login`; the token endpoint is `{authority}/{tenant}/oauth2/v2.0/token`.
    pub fn authority_url(&self) -> String {
        self.shared.authority_url()
    }
    /// `{base}/devops`; an organization's URL is `{devops}/{org}`.
    pub fn devops_url(&self) -> String {
        self.shared.devops_url()
    }
    /// `{authority}/{tenant}/oauth2/v2.0/token`
    pub fn token_url(&self, tenant: &str) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.shared.authority_url(),
            tenant
        )
    }
    /// `{devops}/{org}`
    pub fn org_url(&self, org: &str) -> String {
        format!("{}/{}", self.shared.devops_url(), state::enc_segment(org))
    }
    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds a fault rule.
    pub fn add_fault(&self, rule: FaultRule) {
        self.shared.faults.lock().push(rule);
    }
    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.shared.faults.lock().clear();
    }
    /// The active fault rules.
    pub fn faults(&self) -> Vec<FaultRule> {
        self.shared.faults.lock().clone()
    }

    /// Turns the TSTU rate-limit model on (or replaces it; usage so far is kept), or off with `None`
    /// (usage is forgotten). See [`crate::rate_limit`].
    pub fn set_rate_limit(&self, model: Option<RateLimitModel>) -> Result<(), RateLimitError> {
        self.shared.rate_limit.set(model)
    }
    /// The active rate-limit model, if any.
    pub fn rate_limit(&self) -> Option<RateLimitModel> {
        self.shared.rate_limit.model()
    }
    /// Usage and counters (charged, delayed, blocked) per identity; empty when the model is off.
    pub fn rate_limit_usage(&self) -> Vec<IdentityUsage> {
        self.shared.rate_limit.report()
    }

    /// Every request answered so far (admin endpoints excluded), oldest first.
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.shared.request_log.lock().clone()
    }
    pub fn clear_request_log(&self) {
        self.shared.request_log.lock().clear();
        self.shared.token_requests.lock().clear();
    }
    /// Number of token endpoint calls (successful or not).
    pub fn token_requests(&self) -> usize {
        self.shared.token_requests.lock().len()
    }
    /// Token endpoint calls with their form fields (secrets redacted).
    pub fn token_request_log(&self) -> Vec<TokenRequestRecord> {
        self.shared.token_requests.lock().clone()
    }
    /// Makes every token issued so far expired (DevOps then answers 203 + sign-in page).
    pub fn expire_tokens(&self) {
        let past = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
        for token in self.shared.tokens.lock().values_mut() {
            token.expires_at = past;
        }
    }

    fn locate(
        &self,
        org: &str,
        project: &str,
        repo: &str,
    ) -> Result<(Arc<state::OrgState>, Arc<state::RepoState>), EmulatorError> {
        self.shared
            .find_repo(org, project, repo)
            .ok_or_else(|| EmulatorError::NotFound(format!("repository {org}/{project}/{repo}")))
    }

    /// Commits `changes` on `branch` (created if missing), records the push and fires the `git.push` webhook.
    /// Returns the commit id. Runs `git` synchronously (a few milliseconds); the webhook is posted in the
    /// background on the emulator's runtime.
    pub fn commit(
        &self,
        org: &str,
        project: &str,
        repo: &str,
        branch: &str,
        changes: Vec<FileChange>,
        message: &str,
    ) -> Result<String, EmulatorError> {
        self.commit_as(
            org,
            project,
            repo,
            branch,
            changes,
            message,
            &Signature::default(),
        )
    }

    /// [`Emulator::commit`] with an explicit author.
    #[allow(clippy::too_many_arguments)]
    pub fn commit_as(
        &self,
        org: &str,
        project: &str,
        repo: &str,
        branch: &str,
        changes: Vec<FileChange>,
        message: &str,
        author: &Signature,
    ) -> Result<String, EmulatorError> {
        let (org_state, repo_state) = self.locate(org, project, repo)?;
        let spec = repos::CommitSpec {
            changes: &changes,
            message,
            author,
        };
        repos::commit(
            &self.shared,
            &org_state,
            &repo_state,
            branch,
            repos::Base::BranchHead,
            &spec,
        )
        .map(|(id, _)| id)
    }

    /// Rewrites history: makes a commit with `changes` on top of `base` (`None` = a root commit) and force-moves
    /// `branch` to it (the webhook's `oldObjectId` is then not an ancestor). Returns the new commit id.
    #[allow(clippy::too_many_arguments)]
    pub fn force_push(
        &self,
        org: &str,
        project: &str,
        repo: &str,
        branch: &str,
        base: Option<&str>,
        changes: Vec<FileChange>,
        message: &str,
    ) -> Result<String, EmulatorError> {
        let (org_state, repo_state) = self.locate(org, project, repo)?;
        let author = Signature::default();
        let spec = repos::CommitSpec {
            changes: &changes,
            message,
            author: &author,
        };
        repos::commit(
            &self.shared,
            &org_state,
            &repo_state,
            branch,
            repos::Base::Force(base),
            &spec,
        )
        .map(|(id, _)| id)
    }

    /// Points `branch` at an existing commit (creating the branch), or deletes it (`None`); fires the webhook.
    pub fn set_branch(
        &self,
        org: &str,
        project: &str,
        repo: &str,
        branch: &str,
        target: Option<&str>,
    ) -> Result<(), EmulatorError> {
        let (org_state, repo_state) = self.locate(org, project, repo)?;
        repos::set_branch(&self.shared, &org_state, &repo_state, branch, target).map(|_| ())
    }

    /// Makes an existing branch the repository's default branch.
    pub fn set_default_branch(
        &self,
        org: &str,
        project: &str,
        repo: &str,
        branch: &str,
    ) -> Result<(), EmulatorError> {
        let (_, repo_state) = self.locate(org, project, repo)?;
        repos::set_default_branch(&repo_state, branch)
    }

    /// Head commit of a branch.
    pub fn branch_head(
        &self,
        org: &str,
        project: &str,
        repo: &str,
        branch: &str,
    ) -> Result<Option<String>, EmulatorError> {
        let (_, repo_state) = self.locate(org, project, repo)?;
        git::rev_parse(&repo_state.path, &format!("refs/heads/{branch}"))
    }

    /// GUID of a repository.
    pub fn repository_id(&self, org: &str, project: &str, repo: &str) -> Option<String> {
        self.shared
            .find_repo(org, project, repo)
            .map(|(_, repo)| repo.id.clone())
    }
    /// GUID of a project.
    pub fn project_id(&self, org: &str, project: &str) -> Option<String> {
        self.shared
            .org(org)?
            .project(project)
            .map(|project| project.id.clone())
    }
    /// Directory of a repository's bare Git repository (may not exist yet for an empty repository).
    pub fn repository_path(&self, org: &str, project: &str, repo: &str) -> Option<PathBuf> {
        self.shared
            .find_repo(org, project, repo)
            .map(|(_, repo)| repo.path.clone())
    }
    /// Pushes recorded for a repository, oldest first.
    pub fn pushes(&self, org: &str, project: &str, repo: &str) -> Vec<PushRecord> {
        self.shared
            .find_repo(org, project, repo)
            .map(|(_, repo)| repo.pushes.lock().clone())
            .unwrap_or_default()
    }

    /// Sets (or removes) the webhook target that receives every `git.push` of every organization.
    pub fn set_webhook(&self, target: Option<WebhookTarget>) {
        webhook::set_config_target(&self.shared, target.as_ref());
    }
    /// Every delivery attempt so far.
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        self.shared.deliveries.lock().clone()
    }
    /// Every service-hook subscription (API-created and the configured target's).
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.shared.subscriptions.lock().clone()
    }
    /// Sets a subscription's status, as Azure DevOps does on its own (for
    /// example `DisabledBySystem` after deliveries kept failing). False when
    /// there is no such subscription.
    pub fn set_subscription_status(&self, id: &str, status: SubscriptionStatus) -> bool {
        let mut subs = self.shared.subscriptions.lock();
        match subs.iter_mut().find(|subscription| subscription.id == id) {
            Some(subscription) => {
                subscription.status = status;
                true
            }
            None => false,
        }
    }
    /// Deletes a subscription, as a person can in the project settings.
    /// False when there is no such subscription.
    pub fn remove_subscription(&self, id: &str) -> bool {
        let mut subs = self.shared.subscriptions.lock();
        let before = subs.len();
        subs.retain(|subscription| subscription.id != id);
        subs.len() != before
    }
    /// Waits until at least `count` delivery attempts were made (or `timeout`), returns them.
    pub async fn wait_for_deliveries(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Vec<WebhookDelivery> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let deliveries = self.webhook_deliveries();
            if deliveries.len() >= count || tokio::time::Instant::now() >= deadline {
                return deliveries;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the server and pending webhook deliveries.
    pub async fn shutdown(mut self) {
        self.stop_background();
        if let Some(tx) = self.shutdown_tx.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.server.take() {
            let abort = handle.abort_handle();
            if tokio::time::timeout(Duration::from_secs(3), handle)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    fn stop_background(&self) {
        for handle in self.shared.background.lock().drain(..) {
            handle.abort();
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop_background();
        if let Some(tx) = self.shutdown_tx.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.server.take() {
            handle.abort();
        }
    }
}
