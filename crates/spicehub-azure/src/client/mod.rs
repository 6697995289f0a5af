//! Azure DevOps REST client (API 7.1 subset), on reqwest with rustls.
//!
//! The client is split by job so that each concern can be read (and changed) alone:
//! this file holds the settings, the public request/result types and the
//! construction of an [`AzureClient`] bound to one organization; `transport` is
//! the single path every request takes (auth, throttling, classification, retries,
//! body reading); the endpoint files (`projects`, `git`, `hooks`) only name
//! Azure DevOps endpoints, build their URLs with `urls` and walk their pages.

mod blob_zip;
pub use blob_zip::{git_blob_id, read_blobs_zip, BlobZipError, BlobZipLimits, ZipBlob};
mod git;
mod hooks;
mod projects;
mod transport;
pub use transport::DownloadProgress;
mod urls;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::diagnosis::{AzureError, Diagnosis};
use crate::models::GitRepository;
use crate::retry::{
    Budget, GateReport, OrgGate, Priority, RetryPolicy, ThrottleCause, ThrottleEvent,
    DEFAULT_INTERACTIVE_CONCURRENCY, DEFAULT_ORG_CONCURRENCY,
};
use crate::token::{normalize_base_url, ServicePrincipal, TokenManager};
use crate::{DEFAULT_DEVOPS_URL, USER_AGENT};

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Azure DevOps base URL (`https://dev.azure.com`); the organization is appended.
    pub devops_url: String,
    /// User-Agent.
    pub user_agent: String,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout for API calls (JSON, single files).
    pub request_timeout: Duration,
    /// Whole-request timeout for archive downloads.
    pub download_timeout: Duration,
    /// Longest silence while reading a body (catches stalled downloads early).
    pub read_timeout: Duration,
    /// Concurrent background requests per organization.
    pub max_concurrency_per_org: usize,
    /// Concurrent interactive requests per organization: a lane of their own, so
    /// that a saturated background lane never makes an admin wait.
    pub interactive_concurrency_per_org: usize,
    /// The rate-limit governor (default on): pauses fed by `Retry-After` and the
    /// `X-RateLimit-*` headers on every answer, pacing when the budget runs low.
    ///
    /// **Measurement only.** `false` makes the client behave as a naive client:
    /// it ignores the rate-limit headers and `Retry-After` on successful answers
    /// and only waits on a 429/503 (its `Retry-After`, else backoff), each request
    /// for itself. It exists so that the benchmark can show what the governor
    /// saves; a hub must never run with it, since it walks an identity into
    /// Azure DevOps' delays and 429s (TF400733).
    pub governor: bool,
    /// Backoff for transient failures.
    pub retry: RetryPolicy,
    /// `$top` for project pages (Azure DevOps default is 100).
    pub projects_page_size: u32,
    /// `$top` for refs pages.
    pub refs_page_size: u32,
    /// `$top` for `diffs/commits` pages (Azure DevOps default is 100).
    pub diff_page_size: u32,
    /// Largest single file / blob returned in memory.
    pub max_item_bytes: u64,
    /// Largest archive written to disk (None: unlimited).
    pub max_download_bytes: Option<u64>,
    /// Safety valve against paging loops.
    pub max_pages: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            devops_url: DEFAULT_DEVOPS_URL.to_string(),
            user_agent: USER_AGENT.to_string(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            download_timeout: Duration::from_secs(30 * 60),
            read_timeout: Duration::from_secs(60),
            max_concurrency_per_org: DEFAULT_ORG_CONCURRENCY,
            interactive_concurrency_per_org: DEFAULT_INTERACTIVE_CONCURRENCY,
            governor: true,
            retry: RetryPolicy::default(),
            projects_page_size: 100,
            refs_page_size: 1000,
            diff_page_size: 100,
            max_item_bytes: 50 * 1024 * 1024,
            max_download_bytes: Some(2 * 1024 * 1024 * 1024),
            max_pages: 10_000,
        }
    }
}

/// A version of a repository (`versionDescriptor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitVersion {
    /// Branch short name (`main`, not `refs/heads/main`).
    Branch(String),
    /// Commit SHA-1.
    Commit(String),
    /// Tag name.
    Tag(String),
}

impl GitVersion {
    fn parts(&self) -> (&str, &str) {
        match self {
            GitVersion::Branch(b) => (b.strip_prefix("refs/heads/").unwrap_or(b), "branch"),
            GitVersion::Commit(c) => (c, "commit"),
            GitVersion::Tag(t) => (t.strip_prefix("refs/tags/").unwrap_or(t), "tag"),
        }
    }
}

/// `recursionLevel` of an items listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecursionLevel {
    /// Only the item.
    None,
    /// The item and its direct children.
    OneLevel,
    /// Everything below.
    Full,
}

impl RecursionLevel {
    fn as_str(self) -> &'static str {
        match self {
            RecursionLevel::None => "none",
            RecursionLevel::OneLevel => "oneLevel",
            RecursionLevel::Full => "full",
        }
    }
}

/// Commit search (one page).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitQuery {
    /// Commits reachable from this version.
    pub item_version: Option<GitVersion>,
    /// ... and not from this one.
    pub compare_version: Option<GitVersion>,
    /// Only commits touching this path.
    pub item_path: Option<String>,
    /// Page size.
    pub top: Option<u32>,
    /// Offset.
    pub skip: Option<u32>,
}

/// Push search (one page).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushQuery {
    /// `refs/heads/main`.
    pub ref_name: Option<String>,
    /// Include ref updates.
    pub include_ref_updates: bool,
    /// Page size.
    pub top: Option<u32>,
    /// Offset.
    pub skip: Option<u32>,
}

/// An archive written to disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipDownload {
    /// Where it is.
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// The commit it was pinned to.
    pub commit: String,
}

/// An archive of blobs written to disk (`POST .../blobs`), not yet verified:
/// [`read_blobs_zip`] checks it against the ids asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobsZipDownload {
    /// Where it is.
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
}

/// Azure DevOps client bound to one organization. Cheap to clone.
///
/// Each handle carries a [`Priority`] (default [`Priority::Background`]); see
/// [`AzureClient::with_priority`].
#[derive(Clone)]
pub struct AzureClient {
    shared: Arc<Shared>,
    org: Arc<str>,
    gate: Arc<OrgGate>,
    priority: Priority,
}

/// What every organization's client has in common: one HTTP pool, one token cache and
/// one gate per organization, so that binding another organization costs nothing and
/// a throttle seen by one handle is obeyed by all.
struct Shared {
    http: reqwest::Client,
    config: ClientConfig,
    tokens: TokenManager,
    principal: ServicePrincipal,
    devops_url: url::Url,
    gates: Mutex<HashMap<String, Arc<OrgGate>>>,
    requests: AtomicU64,
}

impl fmt::Debug for AzureClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureClient")
            .field("devops_url", &self.shared.devops_url.as_str())
            .field("organization", &&*self.org)
            .field("principal", &self.shared.principal)
            .field("priority", &self.priority)
            .finish()
    }
}

fn valid_org(org: &str) -> bool {
    org.parse::<crate::OrganizationName>().is_ok()
}

impl AzureClient {
    /// A client for `organization`, authenticating as `principal` with tokens from `tokens`.
    pub fn new(
        config: ClientConfig,
        tokens: TokenManager,
        principal: ServicePrincipal,
        organization: &str,
    ) -> Result<Self, AzureError> {
        let base = normalize_base_url(&config.devops_url)?;
        let devops_url = url::Url::parse(&base)
            .map_err(|e| AzureError::InvalidArgument(format!("Azure DevOps URL: {e}")))?;
        let http = reqwest::Client::builder()
            // Azure DevOps answers an unauthenticated call with a redirect to a sign-in
            // page; following it would turn an auth failure into a confusing HTML 200.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .timeout(config.request_timeout)
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| AzureError::InvalidArgument(format!("HTTP client: {e}")))?;
        let shared = Arc::new(Shared {
            http,
            config,
            tokens,
            principal,
            devops_url,
            gates: Mutex::new(HashMap::new()),
            requests: AtomicU64::new(0),
        });
        Self::bind(shared, organization)
    }

    /// The same client (HTTP pool, tokens, gates, priority) for another organization.
    pub fn for_organization(&self, organization: &str) -> Result<Self, AzureError> {
        Self::bind(self.shared.clone(), organization).map(|c| c.with_priority(self.priority))
    }

    /// The same client with requests of `priority`: it shares everything (HTTP
    /// pool, tokens, gates, budget), only the lane and the pauses obeyed differ.
    /// Use [`Priority::Interactive`] for what an admin waits on (the repository
    /// picker, "Test connection"), never for syncs: interactive requests skip
    /// the hub's voluntary pacing.
    pub fn with_priority(&self, priority: Priority) -> AzureClient {
        AzureClient {
            priority,
            ..self.clone()
        }
    }

    /// This handle's priority.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    fn bind(shared: Arc<Shared>, organization: &str) -> Result<Self, AzureError> {
        let org = organization.trim();
        if !valid_org(org) {
            return Err(AzureError::diagnosed(Diagnosis::InvalidOrganizationName));
        }
        let key = org.to_ascii_lowercase();
        let gate = {
            let mut gates = shared
                .gates
                .lock()
                .map_err(|_| AzureError::InvalidArgument("gate registry poisoned".into()))?;
            gates
                .entry(key)
                .or_insert_with(|| {
                    Arc::new(
                        OrgGate::new(org, shared.config.max_concurrency_per_org)
                            .with_interactive_concurrency(
                                shared.config.interactive_concurrency_per_org,
                            )
                            .with_governor(shared.config.governor),
                    )
                })
                .clone()
        };
        Ok(AzureClient {
            shared,
            org: org.into(),
            gate,
            priority: Priority::Background,
        })
    }

    /// Organization name.
    pub fn organization(&self) -> &str {
        &self.org
    }

    /// The service principal.
    pub fn principal(&self) -> &ServicePrincipal {
        &self.shared.principal
    }

    /// The token manager.
    pub fn tokens(&self) -> &TokenManager {
        &self.shared.tokens
    }

    /// HTTP requests sent to Azure DevOps by this client family (all organizations).
    pub fn requests_sent(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Server-imposed waits of this organization, the last
    /// [`EVENT_HISTORY`](crate::retry::EVENT_HISTORY) of them.
    pub fn throttle_events(&self) -> Vec<ThrottleEvent> {
        self.gate.events()
    }

    /// The organization's gate.
    pub fn gate(&self) -> &OrgGate {
        &self.gate
    }

    /// The identity's rate-limit budget in this organization, as last reported.
    pub fn budget(&self) -> Option<Budget> {
        self.gate.budget()
    }

    /// When this organization's gate last made a request wait, and why.
    pub fn last_slowed(&self) -> Option<(SystemTime, ThrottleCause)> {
        self.gate.last_slowed()
    }

    /// This organization's gate, summarized.
    pub fn gate_report(&self) -> GateReport {
        self.gate.report()
    }

    /// Every organization's gate of this client family (one identity), sorted by
    /// organization: what the Providers page shows per identity.
    pub fn gates(&self) -> Vec<(String, GateReport)> {
        // Clone the Arcs out so that no report is built under the registry lock.
        let gates: Vec<Arc<OrgGate>> = match self.shared.gates.lock() {
            Ok(g) => g.values().cloned().collect(),
            Err(poisoned) => poisoned.get_ref().values().cloned().collect(),
        };
        let mut out: Vec<(String, GateReport)> = gates
            .iter()
            .map(|g| (g.organization().to_string(), g.report()))
            .collect();
        out.sort_by_key(|(org, _)| org.to_ascii_lowercase());
        out
    }
}

/// Serializable summary of a repository for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepositorySummary {
    /// GUID.
    pub id: String,
    /// Name.
    pub name: String,
    /// `refs/heads/main` or null for an empty repository.
    pub default_branch: Option<String>,
    /// Bytes.
    pub size: Option<u64>,
    /// Disabled.
    pub is_disabled: bool,
}

impl From<&GitRepository> for RepositorySummary {
    fn from(r: &GitRepository) -> Self {
        RepositorySummary {
            id: r.id.clone(),
            name: r.name.clone(),
            default_branch: r.default_branch.clone(),
            size: r.size,
            is_disabled: r.disabled(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organization_names() {
        assert!(valid_org("fabrikam"));
        assert!(valid_org("my-org-2"));
        assert!(!valid_org(""));
        assert!(!valid_org("a/b"));
        assert!(!valid_org("https://dev.azure.com/x"));
        assert!(!valid_org("two words"));
    }
}
