//! Azure DevOps REST client (API 7.1 subset), on reqwest with rustls.
//!
//! Every call goes through one path ([`AzureClient::send_once`] inside a `backon`
//! retry loop) that:
//! 1. takes a permit of the organization's [`OrgGate`] (concurrency limit, default 4)
//!    and waits out any pause the server asked for (`Retry-After` on any status,
//!    `X-RateLimit-Remaining: 0` until `X-RateLimit-Reset`);
//! 2. gets a token from the [`TokenManager`] (cached, single flight);
//! 3. sends with redirects **off**, `api-version=7.1`, an explicit `Accept`, and
//!    `X-TFS-FedAuthRedirect: Suppress` (asks Azure DevOps for a 401 rather than a
//!    sign-in redirect; harmless where ignored);
//! 4. classifies the answer: any 203, any 3xx and any 2xx with an HTML body mean
//!    "not authenticated" (Azure DevOps answers a rejected token with a sign-in page);
//!    on that or a 401 the token is dropped and the call retried once with a new one;
//! 5. maps failures to a [`Diagnosis`]; 429, 5xx, timeouts and network errors are
//!    retried with jittered, capped exponential backoff.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::BackoffBuilder as _;
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::OwnedSemaphorePermit;

use crate::diagnosis::{first_line, AzureError, Diagnosis, ErrorContext, ResourceScope};
use crate::models::{
    DevOpsErrorEnvelope, GitBlobRef, GitCommit, GitCommitDiffs, GitCommitRef, GitItem, GitPush,
    GitRef, GitRepository, ListResponse, Subscription, SubscriptionCreate, TeamProjectReference,
};
use crate::retry::{GateWait, OrgGate, RetryPolicy, ThrottleEvent, DEFAULT_ORG_CONCURRENCY};
use crate::token::{error_chain, normalize_base_url, ServicePrincipal, TokenManager};
use crate::{API_VERSION, DEFAULT_DEVOPS_URL, USER_AGENT};

const ACCEPT_JSON: &str = "application/json";
const ACCEPT_OCTET: &str = "application/octet-stream";
const ACCEPT_ZIP: &str = "application/zip";
/// Bytes of an error body we read to find the message (error bodies are small; an
/// HTML sign-in page is not worth more).
const ERROR_BODY_LIMIT: usize = 64 * 1024;

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
    /// Concurrent requests per organization.
    pub max_concurrency_per_org: usize,
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

/// Azure DevOps client bound to one organization. Cheap to clone.
#[derive(Clone)]
pub struct AzureClient {
    shared: Arc<Shared>,
    org: Arc<str>,
    gate: Arc<OrgGate>,
}

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
            .finish()
    }
}

/// What an answer means before looking at its body.
enum Outcome {
    Success,
    /// 401, 203, 3xx or HTML 2xx: the token was not accepted.
    NotAuthenticated,
    Failure,
}

fn classify(status: u16, content_type: Option<&str>) -> Outcome {
    let html = content_type.is_some_and(|ct| ct.to_ascii_lowercase().contains("text/html"));
    match status {
        203 | 300..=399 | 401 => Outcome::NotAuthenticated,
        200..=299 if html => Outcome::NotAuthenticated,
        200..=299 => Outcome::Success,
        _ => Outcome::Failure,
    }
}

struct Call {
    method: Method,
    url: url::Url,
    accept: &'static str,
    body: Option<serde_json::Value>,
    scope: ResourceScope,
    timeout: Option<Duration>,
}

impl Call {
    fn describe(&self) -> String {
        format!("{} {}", self.method, self.url.path())
    }
}

/// Query-string builder that keeps `$top`/`$skip` readable (form encoding would turn
/// `$` into `%24`; both are valid, the literal is what Microsoft documents).
#[derive(Default)]
struct Query(Vec<(String, String)>);

impl Query {
    fn new() -> Self {
        Query::default()
    }

    fn push(mut self, k: &str, v: impl ToString) -> Self {
        self.0.push((k.to_string(), v.to_string()));
        self
    }

    fn push_opt(self, k: &str, v: Option<impl ToString>) -> Self {
        match v {
            Some(v) => self.push(k, v),
            None => self,
        }
    }

    fn version(self, prefix: &str, v: &GitVersion) -> Self {
        let (version, kind) = v.parts();
        self.push(&format!("{prefix}.version"), version)
            .push(&format!("{prefix}.versionType"), kind)
    }

    fn apply(self, url: &mut url::Url) {
        let enc =
            |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
        let mut parts: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k).replace("%24", "$"), enc(v)))
            .collect();
        parts.push(format!("api-version={API_VERSION}"));
        url.set_query(Some(&parts.join("&")));
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

    /// The same client (HTTP pool, tokens, gates) for another organization.
    pub fn for_organization(&self, organization: &str) -> Result<Self, AzureError> {
        Self::bind(self.shared.clone(), organization)
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
                    Arc::new(OrgGate::new(org, shared.config.max_concurrency_per_org))
                })
                .clone()
        };
        Ok(AzureClient {
            shared,
            org: org.into(),
            gate,
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

    /// Server-imposed waits of this organization so far.
    pub fn throttle_events(&self) -> Vec<ThrottleEvent> {
        self.gate.events()
    }

    /// The organization's gate.
    pub fn gate(&self) -> &OrgGate {
        &self.gate
    }

    // ------------------------------------------------------------------ URLs

    fn url(&self, segments: &[&str], query: Query) -> Result<url::Url, AzureError> {
        let mut url = self.shared.devops_url.clone();
        {
            let mut path = url.path_segments_mut().map_err(|_| {
                AzureError::InvalidArgument("Azure DevOps URL cannot be a base".into())
            })?;
            path.pop_if_empty();
            path.push(&self.org);
            for s in segments.iter().filter(|s| !s.is_empty()) {
                path.push(s);
            }
        }
        query.apply(&mut url);
        Ok(url)
    }

    fn repo_url(
        &self,
        project: &str,
        repo: &str,
        tail: &[&str],
        query: Query,
    ) -> Result<url::Url, AzureError> {
        let mut segs = vec![project, "_apis", "git", "repositories", repo];
        segs.extend_from_slice(tail);
        self.url(&segs, query)
    }

    // ------------------------------------------------------------------ core

    async fn send_once(
        &self,
        call: &Call,
        auth_retried: &AtomicBool,
    ) -> Result<(Response, Option<OwnedSemaphorePermit>), AzureError> {
        let permit = self.gate.permit().await;
        if let GateWait::TooLong(d) = self
            .gate
            .wait_turn(self.shared.config.retry.max_server_wait)
            .await
        {
            return Err(AzureError::with_context(
                Diagnosis::Throttled {
                    retry_after: Some(d),
                },
                ErrorContext {
                    request: Some(call.describe()),
                    ..Default::default()
                },
            ));
        }
        loop {
            let token = self.shared.tokens.get(&self.shared.principal).await?;
            let mut rb = self
                .shared
                .http
                .request(call.method.clone(), call.url.clone())
                .header(AUTHORIZATION, token.authorization_header()?)
                .header(ACCEPT, call.accept)
                .header("X-TFS-FedAuthRedirect", "Suppress");
            if let Some(body) = &call.body {
                rb = rb.json(body);
            }
            if let Some(t) = call.timeout {
                rb = rb.timeout(t);
            }
            self.shared.requests.fetch_add(1, Ordering::Relaxed);
            let resp = rb.send().await.map_err(|e| transport_error(&e, call))?;
            let status = resp.status().as_u16();
            let requested_wait = self.gate.observe(status, resp.headers());
            let content_type = resp
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            match classify(status, content_type) {
                Outcome::Success => return Ok((resp, permit)),
                Outcome::NotAuthenticated if !auth_retried.swap(true, Ordering::SeqCst) => {
                    // The token may have been revoked or be from before a permission
                    // change: drop it and try once more with a fresh one.
                    tracing::info!(org = %self.org, status, request = %call.describe(),
                        "Azure DevOps rejected the token; retrying once with a new token");
                    self.shared
                        .tokens
                        .invalidate(&self.shared.principal, &token);
                    continue;
                }
                Outcome::NotAuthenticated | Outcome::Failure => {
                    return Err(error_from_response(resp, call, requested_wait).await);
                }
            }
        }
    }

    async fn run(&self, call: &Call, mode: ReadMode) -> Result<Body, AzureError> {
        // A plain loop over backon's delay iterator (jittered, capped exponential):
        // the loop makes explicit that a throttled attempt's delay is the gate's
        // `Retry-After` wait, not backoff on top of it, and that the "new token once"
        // state spans all attempts. Bodies are read inside the loop so that a body
        // cut short is retried like any other transient failure.
        let max_server_wait = self.shared.config.retry.max_server_wait;
        let mut delays = self.shared.config.retry.backoff().build();
        let auth_retried = AtomicBool::new(false);
        loop {
            let result = match self.send_once(call, &auth_retried).await {
                // The permit is held while the body is read: a streaming download
                // counts against the organization's concurrency until it is finished.
                Ok((resp, _permit)) => read_body(resp, call, &mode).await,
                Err(e) => Err(e),
            };
            let err = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if !should_retry(&err, max_server_wait) {
                return Err(err);
            }
            let Some(mut delay) = delays.next() else {
                return Err(err);
            };
            if let Some(Diagnosis::Throttled {
                retry_after: Some(_),
            }) = err.diagnosis()
            {
                // The gate already sleeps what the server asked for; backing off on top
                // would wait twice.
                delay = Duration::ZERO;
            }
            tracing::info!(org = %self.org, request = %call.describe(), error = %err, delay = ?delay, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        url: url::Url,
        scope: ResourceScope,
    ) -> Result<(T, HeaderMap), AzureError> {
        let call = Call {
            method: Method::GET,
            url,
            accept: ACCEPT_JSON,
            body: None,
            scope,
            timeout: None,
        };
        match self.run(&call, ReadMode::Json).await? {
            Body::Json(bytes, headers) => Ok((decode_json(&bytes, &call)?, headers)),
            _ => Err(internal_mode_error()),
        }
    }

    async fn send_json<T: DeserializeOwned>(
        &self,
        method: Method,
        url: url::Url,
        body: &serde_json::Value,
        scope: ResourceScope,
    ) -> Result<T, AzureError> {
        let call = Call {
            method,
            url,
            accept: ACCEPT_JSON,
            body: Some(body.clone()),
            scope,
            timeout: None,
        };
        match self.run(&call, ReadMode::Json).await? {
            Body::Json(bytes, _) => decode_json(&bytes, &call),
            _ => Err(internal_mode_error()),
        }
    }

    async fn get_bytes(&self, url: url::Url, scope: ResourceScope) -> Result<Vec<u8>, AzureError> {
        let call = Call {
            method: Method::GET,
            url,
            accept: ACCEPT_OCTET,
            body: None,
            scope,
            timeout: None,
        };
        match self
            .run(&call, ReadMode::Bytes(self.shared.config.max_item_bytes))
            .await?
        {
            Body::Bytes(b) => Ok(b),
            _ => Err(internal_mode_error()),
        }
    }

    // ------------------------------------------------------------------ projects

    /// All projects visible to the service principal (every page).
    pub async fn list_projects(&self) -> Result<Vec<TeamProjectReference>, AzureError> {
        let top = self.shared.config.projects_page_size.max(1);
        let mut out: Vec<TeamProjectReference> = Vec::new();
        let mut ids: HashSet<String> = HashSet::new();
        let mut seen_tokens: HashSet<String> = HashSet::new();
        let mut token: Option<String> = None;
        for _ in 0..self.shared.config.max_pages {
            let mut q = Query::new().push("$top", top);
            q = match &token {
                Some(t) => q.push("continuationToken", t),
                None if !out.is_empty() => q.push("$skip", out.len()),
                None => q,
            };
            let url = self.url(&["_apis", "projects"], q)?;
            let (page, headers): (ListResponse<TeamProjectReference>, _) =
                self.get_json(url, ResourceScope::Organization).await?;
            let n = page.value.len();
            let mut new_items = 0usize;
            for p in page.value {
                if ids.insert(p.id.clone()) {
                    out.push(p);
                    new_items += 1;
                }
            }
            // The token is a response header; some APIs put it in the body instead.
            let next =
                continuation_token(&headers).or(page.continuation_token.filter(|t| !t.is_empty()));
            match next {
                Some(t) if new_items > 0 && seen_tokens.insert(t.clone()) => token = Some(t),
                // No token: continue by offset only after a full page of new items
                // (a server that ignores `$top` returns everything at once).
                None if n >= top as usize && new_items > 0 => token = None,
                _ => break,
            }
        }
        Ok(out)
    }

    // ------------------------------------------------------------------ repositories

    /// Repositories of one project (project id or name).
    pub async fn list_repositories(&self, project: &str) -> Result<Vec<GitRepository>, AzureError> {
        let url = self.url(&[project, "_apis", "git", "repositories"], Query::new())?;
        let (page, _): (ListResponse<GitRepository>, _) =
            self.get_json(url, ResourceScope::Project).await?;
        Ok(page.value)
    }

    /// Repositories of the whole organization.
    pub async fn list_all_repositories(&self) -> Result<Vec<GitRepository>, AzureError> {
        let url = self.url(&["_apis", "git", "repositories"], Query::new())?;
        let (page, _): (ListResponse<GitRepository>, _) =
            self.get_json(url, ResourceScope::Organization).await?;
        Ok(page.value)
    }

    /// One repository by id (or name, with its project).
    pub async fn get_repository(
        &self,
        project: &str,
        repository: &str,
    ) -> Result<GitRepository, AzureError> {
        let url = self.repo_url(project, repository, &[], Query::new())?;
        Ok(self.get_json(url, ResourceScope::Repository).await?.0)
    }

    // ------------------------------------------------------------------ refs

    /// Refs whose name starts with `filter` (e.g. `heads/` or `heads/main`), every page.
    pub async fn list_refs(
        &self,
        project: &str,
        repository: &str,
        filter: Option<&str>,
    ) -> Result<Vec<GitRef>, AzureError> {
        let top = self.shared.config.refs_page_size.max(1);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut seen_tokens: HashSet<String> = HashSet::new();
        for _ in 0..self.shared.config.max_pages {
            let q = Query::new()
                .push_opt("filter", filter)
                .push("$top", top)
                .push_opt("continuationToken", token.as_ref());
            let url = self.repo_url(project, repository, &["refs"], q)?;
            let (page, headers): (ListResponse<GitRef>, _) =
                self.get_json(url, ResourceScope::Repository).await?;
            let n = page.value.len();
            out.extend(page.value);
            match continuation_token(&headers).or(page.continuation_token.filter(|t| !t.is_empty()))
            {
                Some(t) if n > 0 && seen_tokens.insert(t.clone()) => token = Some(t),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Head commit of a branch (`main` or `refs/heads/main`); `None` if the branch does not exist.
    pub async fn branch_head(
        &self,
        project: &str,
        repository: &str,
        branch: &str,
    ) -> Result<Option<String>, AzureError> {
        let short = branch.strip_prefix("refs/heads/").unwrap_or(branch);
        let full = format!("refs/heads/{short}");
        // `filter` is a prefix match: `heads/main` also returns `heads/main-old`.
        let refs = self
            .list_refs(project, repository, Some(&format!("heads/{short}")))
            .await?;
        Ok(refs
            .into_iter()
            .find(|r| r.name == full)
            .map(|r| r.object_id))
    }

    // ------------------------------------------------------------------ items

    /// Raw bytes of one file at `version`.
    pub async fn get_file(
        &self,
        project: &str,
        repository: &str,
        path: &str,
        version: &GitVersion,
    ) -> Result<Vec<u8>, AzureError> {
        let q = Query::new()
            .push("path", path)
            .version("versionDescriptor", version)
            .push("download", "true");
        let url = self.repo_url(project, repository, &["items"], q)?;
        self.get_bytes(url, ResourceScope::Repository).await
    }

    /// Items under `scope_path` at `version`.
    pub async fn list_items(
        &self,
        project: &str,
        repository: &str,
        scope_path: &str,
        recursion: RecursionLevel,
        version: &GitVersion,
    ) -> Result<Vec<GitItem>, AzureError> {
        let q = Query::new()
            .push("scopePath", scope_path)
            .push("recursionLevel", recursion.as_str())
            .version("versionDescriptor", version)
            .push("$format", "json");
        let url = self.repo_url(project, repository, &["items"], q)?;
        let (page, _): (ListResponse<GitItem>, _) =
            self.get_json(url, ResourceScope::Repository).await?;
        Ok(page.value)
    }

    /// Streams a zip of the whole tree at `commit` to `dest` (never held in memory).
    /// The file appears at `dest` only when complete (written to a temporary file in
    /// the same folder, then renamed).
    pub async fn download_zip(
        &self,
        project: &str,
        repository: &str,
        commit: &str,
        dest: &Path,
    ) -> Result<ZipDownload, AzureError> {
        let q = Query::new()
            .push("scopePath", "/")
            .push("recursionLevel", "full")
            .version("versionDescriptor", &GitVersion::Commit(commit.to_string()))
            .push("$format", "zip")
            .push("download", "true")
            .push("zipForUnix", "true");
        let url = self.repo_url(project, repository, &["items"], q)?;
        let call = Call {
            method: Method::GET,
            url,
            accept: ACCEPT_ZIP,
            body: None,
            scope: ResourceScope::Repository,
            timeout: Some(self.shared.config.download_timeout),
        };
        let mode = ReadMode::File {
            dest: dest.to_path_buf(),
            limit: self.shared.config.max_download_bytes,
        };
        match self.run(&call, mode).await? {
            Body::File { bytes, sha256 } => Ok(ZipDownload {
                path: dest.to_path_buf(),
                bytes,
                sha256,
                commit: commit.to_string(),
            }),
            _ => Err(internal_mode_error()),
        }
    }

    // ------------------------------------------------------------------ diffs, commits, pushes, blobs

    /// All changes between two commits (`diffs/commits`, every `$top`/`$skip` page).
    pub async fn diff_commits(
        &self,
        project: &str,
        repository: &str,
        base_commit: &str,
        target_commit: &str,
    ) -> Result<GitCommitDiffs, AzureError> {
        let top = self.shared.config.diff_page_size.max(1);
        let mut merged: Option<GitCommitDiffs> = None;
        let mut skip: usize = 0;
        for _ in 0..self.shared.config.max_pages {
            let q = Query::new()
                .push("baseVersion", base_commit)
                .push("baseVersionType", "commit")
                .push("targetVersion", target_commit)
                .push("targetVersionType", "commit")
                .push("$top", top)
                .push("$skip", skip);
            let url = self.repo_url(project, repository, &["diffs", "commits"], q)?;
            let (page, _): (GitCommitDiffs, _) =
                self.get_json(url, ResourceScope::Repository).await?;
            let n = page.changes.len();
            let done = page.all_changes_included.unwrap_or(false) || n < top as usize;
            skip += n;
            match merged.as_mut() {
                None => merged = Some(page),
                Some(m) => m.changes.extend(page.changes),
            }
            if done || n == 0 {
                break;
            }
        }
        let mut merged = merged.unwrap_or_default();
        merged.all_changes_included = Some(true);
        Ok(merged)
    }

    /// One page of commits.
    pub async fn list_commits(
        &self,
        project: &str,
        repository: &str,
        query: &CommitQuery,
    ) -> Result<Vec<GitCommitRef>, AzureError> {
        let mut q = Query::new();
        if let Some(v) = &query.item_version {
            q = q.version("searchCriteria.itemVersion", v);
        }
        if let Some(v) = &query.compare_version {
            q = q.version("searchCriteria.compareVersion", v);
        }
        let q = q
            .push_opt("searchCriteria.itemPath", query.item_path.as_ref())
            .push_opt("searchCriteria.$top", query.top)
            .push_opt("searchCriteria.$skip", query.skip);
        let url = self.repo_url(project, repository, &["commits"], q)?;
        let (page, _): (ListResponse<GitCommitRef>, _) =
            self.get_json(url, ResourceScope::Repository).await?;
        Ok(page.value)
    }

    /// One commit; with `change_count`, up to that many changes are included.
    pub async fn get_commit(
        &self,
        project: &str,
        repository: &str,
        commit_id: &str,
        change_count: Option<u32>,
    ) -> Result<GitCommit, AzureError> {
        let q = Query::new().push_opt("changeCount", change_count);
        let url = self.repo_url(project, repository, &["commits", commit_id], q)?;
        Ok(self.get_json(url, ResourceScope::Repository).await?.0)
    }

    /// One page of pushes.
    pub async fn list_pushes(
        &self,
        project: &str,
        repository: &str,
        query: &PushQuery,
    ) -> Result<Vec<GitPush>, AzureError> {
        let q = Query::new()
            .push_opt("searchCriteria.refName", query.ref_name.as_ref())
            .push_opt(
                "searchCriteria.includeRefUpdates",
                query.include_ref_updates.then_some("true"),
            )
            .push_opt("$top", query.top)
            .push_opt("$skip", query.skip);
        let url = self.repo_url(project, repository, &["pushes"], q)?;
        let (page, _): (ListResponse<GitPush>, _) =
            self.get_json(url, ResourceScope::Repository).await?;
        Ok(page.value)
    }

    /// One push with its ref updates and up to `include_commits` commits.
    pub async fn get_push(
        &self,
        project: &str,
        repository: &str,
        push_id: i64,
        include_commits: Option<u32>,
    ) -> Result<GitPush, AzureError> {
        let q = Query::new()
            .push_opt("includeCommits", include_commits)
            .push("includeRefUpdates", "true");
        let url = self.repo_url(project, repository, &["pushes", &push_id.to_string()], q)?;
        Ok(self.get_json(url, ResourceScope::Repository).await?.0)
    }

    /// Raw bytes of a blob.
    pub async fn get_blob(
        &self,
        project: &str,
        repository: &str,
        object_id: &str,
    ) -> Result<Vec<u8>, AzureError> {
        let q = Query::new().push("$format", "octetstream");
        let url = self.repo_url(project, repository, &["blobs", object_id], q)?;
        self.get_bytes(url, ResourceScope::Repository).await
    }

    /// Blob metadata (size) without content.
    pub async fn get_blob_metadata(
        &self,
        project: &str,
        repository: &str,
        object_id: &str,
    ) -> Result<GitBlobRef, AzureError> {
        let q = Query::new().push("$format", "json");
        let url = self.repo_url(project, repository, &["blobs", object_id], q)?;
        Ok(self.get_json(url, ResourceScope::Repository).await?.0)
    }

    // ------------------------------------------------------------------ service hooks

    /// Subscriptions, optionally filtered (`publisherId`, `eventType`, `consumerId`, `consumerActionId`).
    pub async fn list_subscriptions(
        &self,
        publisher_id: Option<&str>,
        event_type: Option<&str>,
    ) -> Result<Vec<Subscription>, AzureError> {
        let q = Query::new()
            .push_opt("publisherId", publisher_id)
            .push_opt("eventType", event_type);
        let url = self.url(&["_apis", "hooks", "subscriptions"], q)?;
        let (page, _): (ListResponse<Subscription>, _) =
            self.get_json(url, ResourceScope::Organization).await?;
        Ok(page.value)
    }

    /// One subscription.
    pub async fn get_subscription(&self, id: &str) -> Result<Subscription, AzureError> {
        let url = self.url(&["_apis", "hooks", "subscriptions", id], Query::new())?;
        Ok(self.get_json(url, ResourceScope::Other).await?.0)
    }

    /// Creates a subscription (needs "Edit subscriptions" on the project).
    pub async fn create_subscription(
        &self,
        body: &SubscriptionCreate,
    ) -> Result<Subscription, AzureError> {
        let url = self.url(&["_apis", "hooks", "subscriptions"], Query::new())?;
        let value =
            serde_json::to_value(body).map_err(|e| AzureError::InvalidArgument(e.to_string()))?;
        self.send_json(Method::POST, url, &value, ResourceScope::Organization)
            .await
    }

    /// Deletes a subscription.
    pub async fn delete_subscription(&self, id: &str) -> Result<(), AzureError> {
        let url = self.url(&["_apis", "hooks", "subscriptions", id], Query::new())?;
        let call = Call {
            method: Method::DELETE,
            url,
            accept: ACCEPT_JSON,
            body: None,
            scope: ResourceScope::Other,
            timeout: None,
        };
        self.run(&call, ReadMode::Discard).await.map(|_| ())
    }
}

fn should_retry(e: &AzureError, max_server_wait: Duration) -> bool {
    match e.diagnosis() {
        Some(Diagnosis::Throttled {
            retry_after: Some(d),
        }) => *d <= max_server_wait,
        Some(d) => d.is_transient(),
        None => false,
    }
}

fn continuation_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-ms-continuationtoken")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

fn transport_error(e: &reqwest::Error, call: &Call) -> AzureError {
    let diagnosis = if e.is_timeout() {
        Diagnosis::Timeout
    } else {
        Diagnosis::NetworkFailure {
            detail: error_chain(e),
        }
    };
    AzureError::with_context(
        diagnosis,
        ErrorContext {
            request: Some(call.describe()),
            ..Default::default()
        },
    )
}

fn activity_id(headers: &HeaderMap) -> Option<String> {
    ["activityid", "x-vss-e2eid", "x-tfs-session"]
        .iter()
        .find_map(|h| {
            headers
                .get(*h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
}

async fn error_from_response(
    resp: Response,
    call: &Call,
    requested_wait: Option<Duration>,
) -> AzureError {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let body = read_limited(resp, ERROR_BODY_LIMIT)
        .await
        .unwrap_or_default();
    let envelope = if content_type.contains("json") || body.first() == Some(&b'{') {
        serde_json::from_slice::<DevOpsErrorEnvelope>(strip_bom(&body)).ok()
    } else {
        None
    };
    let message = match &envelope {
        Some(e) => e.message.clone(),
        None if content_type.contains("text/plain") => {
            Some(String::from_utf8_lossy(&body).trim().to_string()).filter(|s| !s.is_empty())
        }
        None => None,
    };
    let mut diagnosis = match classify(status, Some(&content_type)) {
        Outcome::NotAuthenticated if status != 401 => Diagnosis::SignInPage { status },
        // Inside an existing organization every 404 is an Azure DevOps JSON envelope
        // (TF401019, TF200016, VS403404...). A bare 404 page comes from the front end:
        // the organization itself does not exist, whatever the URL below it.
        _ if status == 404 && envelope.is_none() => Diagnosis::OrganizationNotFound,
        _ => Diagnosis::from_devops(status, message.as_deref(), call.scope),
    };
    if let Diagnosis::Throttled { retry_after } = &mut diagnosis {
        *retry_after = requested_wait;
    }
    AzureError::with_context(
        diagnosis,
        ErrorContext {
            status: Some(status),
            request: Some(call.describe()),
            message: message.as_deref().map(|m| first_line(m).to_string()),
            activity_id: activity_id(&headers),
            ..Default::default()
        },
    )
}

/// Reads up to `limit` bytes; used for error bodies only.
async fn read_limited(mut resp: Response, limit: usize) -> Result<Vec<u8>, reqwest::Error> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = limit.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= limit {
            break;
        }
    }
    Ok(buf)
}

fn strip_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(&[0xEF, 0xBB, 0xBF][..]).unwrap_or(b)
}

fn body_error(e: &reqwest::Error, call: &Call) -> AzureError {
    // A body cut short, a reset connection or a stalled read: all transient.
    let diagnosis = if e.is_timeout() {
        Diagnosis::Timeout
    } else {
        Diagnosis::NetworkFailure {
            detail: format!("reading the body: {}", error_chain(e)),
        }
    };
    AzureError::with_context(
        diagnosis,
        ErrorContext {
            request: Some(call.describe()),
            ..Default::default()
        },
    )
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn short_body(got: u64, expected: u64, call: &Call) -> AzureError {
    AzureError::with_context(
        Diagnosis::NetworkFailure {
            detail: format!("body cut short: {got} of {expected} bytes"),
        },
        ErrorContext {
            request: Some(call.describe()),
            ..Default::default()
        },
    )
}

/// How to consume a successful answer's body.
enum ReadMode {
    /// Whole body in memory, decoded by the caller.
    Json,
    /// Whole body in memory, at most this many bytes.
    Bytes(u64),
    /// Streamed to a file.
    File { dest: PathBuf, limit: Option<u64> },
    /// Ignored.
    Discard,
}

enum Body {
    Json(bytes::Bytes, HeaderMap),
    Bytes(Vec<u8>),
    File { bytes: u64, sha256: String },
    Empty,
}

fn internal_mode_error() -> AzureError {
    AzureError::InvalidArgument("internal: body read in the wrong mode".into())
}

async fn read_body(resp: Response, call: &Call, mode: &ReadMode) -> Result<Body, AzureError> {
    match mode {
        ReadMode::Json => {
            let headers = resp.headers().clone();
            let bytes = resp.bytes().await.map_err(|e| body_error(&e, call))?;
            Ok(Body::Json(bytes, headers))
        }
        ReadMode::Bytes(limit) => read_bytes(resp, call, *limit).await.map(Body::Bytes),
        ReadMode::File { dest, limit } => stream_to_file(resp, call, dest, *limit)
            .await
            .map(|(bytes, sha256)| Body::File { bytes, sha256 }),
        ReadMode::Discard => {
            // Drain so the connection can be reused; errors do not matter here.
            let _ = resp.bytes().await;
            Ok(Body::Empty)
        }
    }
}

fn decode_json<T: DeserializeOwned>(bytes: &[u8], call: &Call) -> Result<T, AzureError> {
    serde_json::from_slice::<T>(strip_bom(bytes)).map_err(|e| {
        AzureError::with_context(
            Diagnosis::UnexpectedResponse {
                detail: format!("JSON not understood: {e}"),
            },
            ErrorContext {
                request: Some(call.describe()),
                ..Default::default()
            },
        )
    })
}

async fn read_bytes(mut resp: Response, call: &Call, limit: u64) -> Result<Vec<u8>, AzureError> {
    let expected = declared_length(resp.headers());
    if let Some(len) = expected.filter(|len| *len > limit) {
        return Err(AzureError::diagnosed(Diagnosis::TooLarge {
            bytes: len,
            limit,
        }));
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| body_error(&e, call))? {
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(AzureError::diagnosed(Diagnosis::TooLarge {
                bytes: (buf.len() + chunk.len()) as u64,
                limit,
            }));
        }
        buf.extend_from_slice(&chunk);
    }
    if let Some(len) = expected.filter(|len| *len != buf.len() as u64) {
        return Err(short_body(buf.len() as u64, len, call));
    }
    Ok(buf)
}

async fn stream_to_file(
    mut resp: Response,
    call: &Call,
    dest: &Path,
    limit: Option<u64>,
) -> Result<(u64, String), AzureError> {
    let expected = declared_length(resp.headers());
    if let Some((len, limit)) = expected.zip(limit).filter(|(len, limit)| len > limit) {
        return Err(AzureError::diagnosed(Diagnosis::TooLarge {
            bytes: len,
            limit,
        }));
    }
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".into());
    let tmp = dir.join(format!(".{name}.{}.part", uuid::Uuid::new_v4().simple()));
    let result = async {
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| AzureError::io(&tmp, &e))?;
        let mut hasher = Sha256::new();
        let mut written: u64 = 0;
        let mut head: Vec<u8> = Vec::with_capacity(4);
        while let Some(chunk) = resp.chunk().await.map_err(|e| body_error(&e, call))? {
            written += chunk.len() as u64;
            if let Some(limit) = limit.filter(|limit| written > *limit) {
                return Err(AzureError::diagnosed(Diagnosis::TooLarge {
                    bytes: written,
                    limit,
                }));
            }
            if head.len() < 4 {
                head.extend(chunk.iter().take(4 - head.len()));
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| AzureError::io(&tmp, &e))?;
        }
        if let Some(len) = expected.filter(|len| *len != written) {
            return Err(short_body(written, len, call));
        }
        // Local file headers start with PK\x03\x04; an empty archive is only the end
        // record PK\x05\x06. Anything else is not a zip (an error page, say).
        if !(head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06")) {
            return Err(AzureError::with_context(
                Diagnosis::UnexpectedResponse {
                    detail: "the archive is not a zip file".into(),
                },
                ErrorContext {
                    request: Some(call.describe()),
                    ..Default::default()
                },
            ));
        }
        file.flush().await.map_err(|e| AzureError::io(&tmp, &e))?;
        file.sync_all()
            .await
            .map_err(|e| AzureError::io(&tmp, &e))?;
        drop(file);
        tokio::fs::rename(&tmp, dest)
            .await
            .map_err(|e| AzureError::io(dest, &e))?;
        Ok((written, hex(&hasher.finalize())))
    }
    .await;
    if result.is_err() {
        // Best effort: a leftover temp file is harmless but untidy.
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
    fn classification_rule() {
        assert!(matches!(
            classify(200, Some("application/json; charset=utf-8")),
            Outcome::Success
        ));
        assert!(matches!(
            classify(200, Some("text/html; charset=utf-8")),
            Outcome::NotAuthenticated
        ));
        assert!(matches!(
            classify(203, Some("application/json")),
            Outcome::NotAuthenticated
        ));
        assert!(matches!(classify(302, None), Outcome::NotAuthenticated));
        assert!(matches!(classify(401, None), Outcome::NotAuthenticated));
        assert!(matches!(classify(404, Some("text/html")), Outcome::Failure));
        assert!(matches!(classify(204, None), Outcome::Success));
    }

    #[test]
    fn query_keeps_dollar_and_encodes_values() {
        let mut u = url::Url::parse("https://dev.azure.com/org/_apis/projects")
            .unwrap_or_else(|e| panic!("{e}"));
        Query::new()
            .push("$top", 5)
            .push("path", "/a b/c+d.py")
            .apply(&mut u);
        assert_eq!(
            u.query(),
            Some("$top=5&path=%2Fa+b%2Fc%2Bd.py&api-version=7.1")
        );
    }

    #[test]
    fn organization_names() {
        assert!(valid_org("fabrikam"));
        assert!(valid_org("my-org-2"));
        assert!(!valid_org(""));
        assert!(!valid_org("a/b"));
        assert!(!valid_org("https://dev.azure.com/x"));
        assert!(!valid_org("two words"));
    }

    #[test]
    fn retry_decisions() {
        let p = RetryPolicy::default().max_server_wait;
        assert!(should_retry(
            &AzureError::diagnosed(Diagnosis::ServerError { status: 503 }),
            p
        ));
        assert!(should_retry(&AzureError::diagnosed(Diagnosis::Timeout), p));
        assert!(should_retry(
            &AzureError::diagnosed(Diagnosis::Throttled {
                retry_after: Some(Duration::from_secs(3))
            }),
            p
        ));
        assert!(!should_retry(
            &AzureError::diagnosed(Diagnosis::Throttled {
                retry_after: Some(Duration::from_secs(3600))
            }),
            p
        ));
        assert!(!should_retry(
            &AzureError::diagnosed(Diagnosis::RepositoryNotFound),
            p
        ));
        assert!(!should_retry(&AzureError::InvalidArgument("x".into()), p));
    }
}
