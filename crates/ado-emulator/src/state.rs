//! Shared, concurrency-safe state of a running emulator.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::{
    AccessLevel, ApiVersionPolicy, AppConfig, EmulatorConfig, Identity, TenantConfig, Visibility,
    WebhookTarget,
};
use crate::faults::FaultRule;
use crate::webhook::{Subscription, WebhookDelivery};

/// Which service a request was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    /// `POST {authority}/{tenant}/oauth2/v2.0/token`
    Token,
    /// Other `/login/...` pages (discovery, admin consent).
    Login,
    /// Azure DevOps REST (`/devops/...`) and its sign-in pages.
    DevOps,
    /// Anything else.
    Other,
}

/// Kind of `Authorization` header a request carried (never its value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    None,
    Bearer,
    Basic,
    Other,
}

impl AuthKind {
    pub fn of(value: Option<&str>) -> AuthKind {
        match value {
            None => AuthKind::None,
            Some(value) => {
                let scheme = value
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase();
                match scheme.as_str() {
                    "bearer" => AuthKind::Bearer,
                    "basic" => AuthKind::Basic,
                    _ => AuthKind::Other,
                }
            }
        }
    }
}

/// One request the emulator answered (admin endpoints excluded).
#[derive(Clone, Debug, Serialize)]
pub struct LoggedRequest {
    pub method: String,
    /// Path as received (percent-encoded).
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    pub status: u16,
    pub content_type: Option<String>,
    /// Full response body as generated (before any `CutBody` fault truncated it on the wire).
    #[serde(skip)]
    pub body: Vec<u8>,
    pub auth: AuthKind,
    /// Whether an `Authorization` header was present.
    pub has_authorization: bool,
    pub service: Service,
    /// When the request arrived.
    #[serde(with = "system_time_rfc3339")]
    pub received_at: SystemTime,
    /// Monotonic arrival time, for measuring gaps between requests.
    #[serde(skip)]
    pub received_instant: Instant,
    /// Time spent answering (including injected delays).
    pub elapsed_ms: u64,
    /// Faults applied to this request (`Debug` of each).
    pub faults: Vec<String>,
}

impl LoggedRequest {
    /// `path?query`
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(query) => format!("{}?{}", self.path, query),
            None => self.path.clone(),
        }
    }
    /// The body as (lossy) text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One call of the token endpoint, with the form fields minus secrets.
#[derive(Clone, Debug, Serialize)]
pub struct TokenRequestRecord {
    pub tenant: String,
    /// Form fields; `client_secret` and `client_assertion` values are replaced by `<redacted>`.
    pub fields: BTreeMap<String, String>,
    /// Whether the client authenticated with HTTP Basic.
    pub basic_auth: bool,
    pub status: u16,
    /// `error_codes[0]` of an error answer.
    pub error_code: Option<u32>,
    #[serde(with = "system_time_rfc3339")]
    pub received_at: SystemTime,
}

pub(crate) mod system_time_rfc3339 {
    use serde::Serializer;
    use std::time::SystemTime;
    use time::format_description::well_known::Rfc3339;
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
        let odt = OffsetDateTime::from(*time);
        serializer.serialize_str(&odt.format(&Rfc3339).unwrap_or_default())
    }
}

/// A token the emulator issued.
#[derive(Clone, Debug)]
pub(crate) struct IssuedToken {
    pub tenant_id: String,
    pub client_id: String,
    pub sp_object_id: String,
    pub expires_at: OffsetDateTime,
}

/// Runtime view of an app registration (consents can change at run time).
pub(crate) type Apps = RwLock<Vec<AppConfig>>;

/// One push as Azure DevOps records it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PushRecord {
    pub push_id: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub date: OffsetDateTime,
    pub pushed_by: Identity,
    pub ref_updates: Vec<RefUpdate>,
    /// Commits the push introduced, newest first.
    pub commits: Vec<String>,
}

/// One ref update of a push.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RefUpdate {
    pub name: String,
    pub old_object_id: String,
    pub new_object_id: String,
}

/// A repository of a running emulator.
#[derive(Debug)]
pub(crate) struct RepoState {
    pub id: String,
    pub name: String,
    pub project_id: String,
    pub project_name: String,
    pub path: PathBuf,
    pub disabled: bool,
    pub visible_to: Option<Vec<String>>,
    /// `refs/heads/x`; `None` until the first branch is pushed.
    pub default_branch: RwLock<Option<String>>,
    /// Serializes writes (commits, ref updates).
    pub write_lock: Mutex<()>,
    pub pushes: Mutex<Vec<PushRecord>>,
    /// Size in bytes, refreshed after each push.
    pub size: AtomicU64,
    /// commit id -> change counts (immutable per commit).
    pub change_count_cache: Mutex<HashMap<String, BTreeMap<String, u64>>>,
}

impl RepoState {
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }
    pub fn default_branch(&self) -> Option<String> {
        self.default_branch.read().clone()
    }
    pub fn pushes_file(&self) -> PathBuf {
        self.path.with_extension("pushes.json")
    }
    pub fn is_visible_to(&self, client_id: &str) -> bool {
        match &self.visible_to {
            None => true,
            Some(list) => list
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(client_id)),
        }
    }
}

/// A project of a running emulator.
#[derive(Debug)]
pub(crate) struct ProjectState {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub visibility: Visibility,
    pub revision: u64,
    pub last_update_time: OffsetDateTime,
    pub repos: Vec<Arc<RepoState>>,
}

/// An organization of a running emulator.
#[derive(Debug)]
pub(crate) struct OrgState {
    pub name: String,
    pub id: String,
    pub account_id: String,
    pub tenant_id: String,
    pub members: HashMap<String, AccessLevel>,
    pub hook_managers: Option<Vec<String>>,
    pub pats: Vec<String>,
    pub pusher: Identity,
    pub projects: Vec<ProjectState>,
}

impl OrgState {
    pub fn project(&self, name_or_id: &str) -> Option<&ProjectState> {
        self.projects.iter().find(|project| {
            project.id.eq_ignore_ascii_case(name_or_id)
                || project.name.eq_ignore_ascii_case(name_or_id)
        })
    }
    pub fn all_repos(&self) -> impl Iterator<Item = (&ProjectState, &Arc<RepoState>)> {
        self.projects
            .iter()
            .flat_map(|project| project.repos.iter().map(move |repo| (project, repo)))
    }
    pub fn repo_by_id(&self, id: &str) -> Option<(&ProjectState, &Arc<RepoState>)> {
        self.all_repos()
            .find(|(_, repo)| repo.id.eq_ignore_ascii_case(id))
    }
}

/// Runtime settings copied from the configuration.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub token_lifetime_secs: u64,
    pub retry_time_scale: f64,
    pub assertion_clock_skew_secs: u64,
    pub api_version_policy: ApiVersionPolicy,
    pub webhook_timeout_ms: u64,
    pub max_push_commits: usize,
    pub max_blobs_per_zip: Option<usize>,
}

impl Settings {
    pub fn from_config(config: &EmulatorConfig) -> Self {
        Settings {
            token_lifetime_secs: config.token_lifetime_secs,
            retry_time_scale: config.retry_time_scale,
            assertion_clock_skew_secs: config.assertion_clock_skew_secs,
            api_version_policy: config.api_version_policy,
            webhook_timeout_ms: config.webhook_timeout_ms,
            max_push_commits: config.max_push_commits,
            max_blobs_per_zip: config.max_blobs_per_zip,
        }
    }
}

/// Everything the handlers share.
pub(crate) struct Shared {
    pub base_url: String,
    pub settings: Settings,
    pub tenants: Vec<TenantConfig>,
    pub apps: Apps,
    pub orgs: Vec<Arc<OrgState>>,
    pub tokens: Mutex<HashMap<String, IssuedToken>>,
    pub token_requests: Mutex<Vec<TokenRequestRecord>>,
    pub faults: Mutex<Vec<FaultRule>>,
    pub request_log: Mutex<Vec<LoggedRequest>>,
    pub webhook_target: RwLock<Option<WebhookTarget>>,
    pub subscriptions: Mutex<Vec<Subscription>>,
    pub deliveries: Mutex<Vec<WebhookDelivery>>,
    pub http: reqwest::Client,
    pub runtime: tokio::runtime::Handle,
    /// `X-TFS-ProcessId` of this "server".
    pub process_id: String,
    /// Background tasks (webhook deliveries) to abort at shutdown.
    pub background: Mutex<Vec<tokio::task::AbortHandle>>,
    /// TSTU accounting (off unless a model is set).
    pub rate_limit: crate::rate_limit::RateLimiter,
}

impl Shared {
    pub fn authority_url(&self) -> String {
        format!("{}/login", self.base_url)
    }
    pub fn devops_url(&self) -> String {
        format!("{}/devops", self.base_url)
    }
    pub fn org_url(&self, org: &OrgState) -> String {
        format!("{}/{}", self.devops_url(), enc_segment(&org.name))
    }
    pub fn org(&self, name: &str) -> Option<Arc<OrgState>> {
        self.orgs
            .iter()
            .find(|org| org.name.eq_ignore_ascii_case(name))
            .cloned()
    }
    /// A tenant by GUID or verified domain.
    pub fn tenant(&self, key: &str) -> Option<&TenantConfig> {
        let key = key.to_lowercase();
        self.tenants
            .iter()
            .find(|tenant| tenant.id == key || tenant.domains.contains(&key))
    }
    /// Finds a repository by org/project/name (names or ids).
    pub fn find_repo(
        &self,
        org: &str,
        project: &str,
        repo: &str,
    ) -> Option<(Arc<OrgState>, Arc<RepoState>)> {
        let org_state = self.org(org)?;
        let project_state = org_state.project(project)?;
        let repo_state = project_state
            .repos
            .iter()
            .find(|candidate| {
                candidate.id.eq_ignore_ascii_case(repo) || candidate.name.eq_ignore_ascii_case(repo)
            })?
            .clone();
        Some((org_state.clone(), repo_state))
    }
}

/// Percent-encodes one URL path segment.
pub(crate) fn enc_segment(segment: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
    const SEGMENT: &AsciiSet = &CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'<')
        .add(b'>')
        .add(b'?')
        .add(b'`')
        .add(b'{')
        .add(b'}')
        .add(b'/')
        .add(b'%');
    utf8_percent_encode(segment, SEGMENT).to_string()
}

/// Percent-encodes a query value.
pub(crate) fn enc_query(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
