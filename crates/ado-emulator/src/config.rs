//! Configuration of the emulator: tenants, app registrations and their credentials, organizations with
//! their members, projects and repositories. Everything is serde (de)serializable so the same JSON works in a
//! config file (`spicehub emulator --config emulator.json`) and through the admin endpoints.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::faults::FaultRule;
use crate::rate_limit::RateLimitModel;

/// Namespace for the deterministic GUIDs the emulator derives from names (projects, repositories,
/// service principal object ids) when the configuration gives none.
pub const ID_NAMESPACE: Uuid = Uuid::from_u128(0x5b1c_e4b0_0c2a_4e55_9d6e_3f0a_7e21_c0de);

/// Azure DevOps' resource (application) id: the only scope the token endpoint accepts is `{this}/.default`.
pub const AZURE_DEVOPS_RESOURCE: &str = "499b84ac-1321-427f-aa17-267ca6975798";

/// Derives a stable GUID from a name (uuid v5).
pub fn derived_id(kind: &str, name: &str) -> String {
    Uuid::new_v5(
        &ID_NAMESPACE,
        format!("{kind}:{}", name.to_lowercase()).as_bytes(),
    )
    .to_string()
}

fn default_token_lifetime() -> u64 {
    3599
}
fn default_scale() -> f64 {
    1.0
}
fn default_skew() -> u64 {
    300
}
fn default_branch() -> String {
    "main".to_string()
}
fn default_true() -> bool {
    true
}
fn default_webhook_timeout_ms() -> u64 {
    20_000
}
fn default_max_push_commits() -> usize {
    100
}

/// How the DevOps side treats a missing `api-version`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiVersionPolicy {
    /// Every DevOps REST call must carry `api-version` (query or `Accept: application/json;api-version=...`),
    /// or it gets ADO's `400 VssVersionNotSpecifiedException`. This is what ADO does for writes; the emulator
    /// does it for reads too so a client that forgets it is caught. [INFER: live ADO serves GETs without it.]
    #[default]
    Strict,
    /// Like live ADO: GETs without `api-version` are served, writes are refused.
    Lenient,
}

/// Full emulator configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EmulatorConfig {
    #[serde(default)]
    pub tenants: Vec<TenantConfig>,
    #[serde(default)]
    pub apps: Vec<AppConfig>,
    #[serde(default)]
    pub organizations: Vec<OrganizationConfig>,
    /// `expires_in` of issued tokens (Entra: 60–90 min, 3599 in the docs).
    #[serde(default = "default_token_lifetime")]
    pub token_lifetime_secs: u64,
    /// Webhook target that behaves like a service-hook subscription created by hand in every organization
    /// (all projects, all repositories, all branches).
    #[serde(default)]
    pub webhook: Option<WebhookTarget>,
    /// Where the bare Git repositories live (`{data_dir}/{org}/{project id}/{repo id}.git`).
    pub data_dir: PathBuf,
    /// Multiplies every webhook retry / probation delay (1.0 = Azure DevOps' real schedule; 0.001 in tests).
    #[serde(default = "default_scale")]
    pub retry_time_scale: f64,
    /// Clock skew tolerated on `nbf`/`exp` of client assertions.
    #[serde(default = "default_skew")]
    pub assertion_clock_skew_secs: u64,
    #[serde(default)]
    pub api_version_policy: ApiVersionPolicy,
    /// Faults active from the start ("per run").
    #[serde(default)]
    pub faults: Vec<FaultRule>,
    /// Timeout of one webhook delivery attempt.
    #[serde(default = "default_webhook_timeout_ms")]
    pub webhook_timeout_ms: u64,
    /// At most this many commits are listed in a `git.push` payload's `resource.commits` (newest first).
    #[serde(default = "default_max_push_commits")]
    pub max_push_commits: usize,
    /// Base URL used in every URL the emulator returns; default `http://{bound address}`.
    #[serde(default)]
    pub public_base_url: Option<String>,
    /// Most blob ids one "Get Blobs Zip" (`POST .../blobs`) may ask for; more get a 400. `None`: no limit.
    /// [INFER] Azure DevOps documents no limit; this one lets clients' split-and-retry path be tested.
    #[serde(default)]
    pub max_blobs_per_zip: Option<usize>,
    /// Azure DevOps' TSTU rate limiting per identity, from the start; `None` (the default): off.
    /// See [`crate::rate_limit`].
    #[serde(default)]
    pub rate_limit: Option<RateLimitModel>,
}

/// An Entra ID tenant (directory).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TenantConfig {
    /// Tenant id (GUID).
    pub id: String,
    /// Verified domain names (`contoso.onmicrosoft.com`, `contoso.com`); any of them works in the token URL.
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub display_name: String,
}

/// An app registration (application object) and its credentials.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AppConfig {
    /// Application (client) id, a GUID.
    pub client_id: String,
    pub display_name: String,
    /// Home tenant (GUID) of the registration.
    pub tenant: String,
    /// Multi-tenant app: usable in other tenants once an admin consented (`consented_tenants` or the
    /// `{authority}/{tenant}/adminconsent` flow).
    #[serde(default)]
    pub multi_tenant: bool,
    #[serde(default)]
    pub consented_tenants: Vec<String>,
    #[serde(default)]
    pub secrets: Vec<SecretConfig>,
    #[serde(default)]
    pub certificates: Vec<CertificateConfig>,
    /// Federated identity credentials (workload identity federation): tokens of an external OpenID Connect
    /// issuer accepted as client assertions. At most [`MAX_FEDERATED_CREDENTIALS`].
    #[serde(default)]
    pub federated_credentials: Vec<FederatedCredentialConfig>,
    /// Object id of the service principal per tenant (`tenant GUID -> object id`); derived when absent.
    #[serde(default)]
    pub service_principal_ids: BTreeMap<String, String>,
}

impl AppConfig {
    /// Object id of this app's service principal in `tenant`.
    pub fn service_principal_id(&self, tenant: &str) -> String {
        self.service_principal_ids
            .get(&tenant.to_lowercase())
            .cloned()
            .unwrap_or_else(|| derived_id("sp", &format!("{}/{}", tenant, self.client_id)))
    }
}

/// A client secret (password credential).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SecretConfig {
    /// The secret's *ID* (Entra shows it next to the value; pasting it instead of the value is a classic mistake).
    #[serde(default)]
    pub id: Option<String>,
    /// The secret's *Value*.
    pub value: String,
    /// End date; a secret past it answers AADSTS7000222.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// A certificate credential (public certificate uploaded to the app registration).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CertificateConfig {
    /// PEM of the X.509 certificate (`-----BEGIN CERTIFICATE-----`).
    pub pem: String,
    /// End date of the key credential; defaults to the certificate's `notAfter`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// The audience Entra documents for federated identity credentials (public cloud).
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
/// The token exchange audiences of the public, US Government and China clouds.
pub const TOKEN_EXCHANGE_AUDIENCES: [&str; 3] = [
    TOKEN_EXCHANGE_AUDIENCE,
    "api://AzureADTokenExchangeUSGov",
    "api://AzureADTokenExchangeChina",
];
/// Most federated identity credentials one app registration may hold (Entra's limit).
pub const MAX_FEDERATED_CREDENTIALS: usize = 20;

/// A federated identity credential of an app registration: a token whose `iss` equals `issuer` and `sub`
/// equals `subject` (both compared exactly, case-sensitively) and whose `aud` holds `audiences[0]`, signed by
/// a key the issuer publishes (OpenID Connect discovery + JWKS), is accepted as the app's client assertion.
///
/// JSON: `{"name":"github-main","issuer":"https://token.actions.githubusercontent.com",
/// "subject":"repo:contoso/app:ref:refs/heads/main","audiences":["api://AzureADTokenExchange"],
/// "created_at":"2026-01-01T00:00:00Z"}` (`created_at` optional: absent = long propagated).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederatedCredentialConfig {
    /// 3–120 characters: ASCII letters, digits, `-` and `_`, starting with a letter or digit; unique per app
    /// (case-insensitively).
    pub name: String,
    /// The external issuer's URL, exactly as the token's `iss` (≤ 600 characters).
    pub issuer: String,
    /// The token's `sub`, exactly (≤ 600 characters).
    pub subject: String,
    /// Exactly one audience, normally [`TOKEN_EXCHANGE_AUDIENCE`].
    pub audiences: Vec<String>,
    /// When the credential was added (the admin API records it); used by the `FicPropagation` fault.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
}

impl FederatedCredentialConfig {
    /// A credential for `issuer` + `subject` with the public cloud audience, propagated long ago.
    pub fn new(name: &str, issuer: &str, subject: &str) -> Self {
        FederatedCredentialConfig {
            name: name.to_string(),
            issuer: issuer.to_string(),
            subject: subject.to_string(),
            audiences: vec![TOKEN_EXCHANGE_AUDIENCE.to_string()],
            created_at: None,
        }
    }

    /// Checks the fields as Entra does (the reason when refused). Uniqueness and the per-app limit are checked
    /// by [`check_federated_credential_addition`].
    ///
    /// Name rule from Microsoft's docs ("3–120 characters, URL friendly"); the exact character set
    /// (letters, digits, `-`, `_`, first a letter or digit) follows the managed identity FIC docs. [INFER]
    pub fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        let name_ok = (3..=120).contains(&name.chars().count())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && name.starts_with(|c: char| c.is_ascii_alphanumeric());
        if !name_ok {
            return Err(format!(
                "federated identity credential name {name:?} is invalid: 3 to 120 characters, letters, digits, '-' or '_', starting with a letter or digit"
            ));
        }
        let text_field = |label: &str, value: &str| -> Result<(), String> {
            if value.is_empty() {
                return Err(format!("{label} must not be empty"));
            }
            if value.chars().count() > 600 {
                return Err(format!("{label} is longer than 600 characters"));
            }
            if value.trim() != value {
                return Err(format!("{label} must not start or end with whitespace"));
            }
            Ok(())
        };
        text_field("issuer", &self.issuer)?;
        text_field("subject", &self.subject)?;
        match self.audiences.as_slice() {
            [audience] => text_field("audience", audience),
            _ => Err(format!(
                "audiences must hold exactly one value (normally '{TOKEN_EXCHANGE_AUDIENCE}'), got {}",
                self.audiences.len()
            )),
        }
    }
}

/// Whether `candidate` may be added next to `existing`: its fields, a unique name, a unique issuer + subject
/// pair, at most [`MAX_FEDERATED_CREDENTIALS`] in all.
pub fn check_federated_credential_addition(
    existing: &[FederatedCredentialConfig],
    candidate: &FederatedCredentialConfig,
) -> Result<(), String> {
    candidate.validate()?;
    if existing
        .iter()
        .any(|other| other.name.eq_ignore_ascii_case(&candidate.name))
    {
        return Err(format!(
            "a federated identity credential named {:?} already exists",
            candidate.name
        ));
    }
    if existing
        .iter()
        .any(|other| other.issuer == candidate.issuer && other.subject == candidate.subject)
    {
        return Err(format!(
            "a federated identity credential with issuer {:?} and subject {:?} already exists",
            candidate.issuer, candidate.subject
        ));
    }
    if existing.len() >= MAX_FEDERATED_CREDENTIALS {
        return Err(format!(
            "an application holds at most {MAX_FEDERATED_CREDENTIALS} federated identity credentials"
        ));
    }
    Ok(())
}

/// Access level of a member (Azure DevOps license).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessLevel {
    /// Can read code.
    #[serde(alias = "basic")]
    Basic,
    /// Cannot read code in private projects: repositories answer 404 TF401019.
    #[serde(alias = "stakeholder")]
    Stakeholder,
}

/// An identity shown as pusher / creator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub id: String,
    pub display_name: String,
    pub unique_name: String,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            id: "d291b0c4-a05c-4ea6-8df1-4b41d5f39eff".into(),
            display_name: "Jamal Hartnett".into(),
            unique_name: "jamal.hartnett@contoso.com".into(),
        }
    }
}

/// An Azure DevOps organization (a "collection"), connected to one Entra tenant.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OrganizationConfig {
    pub name: String,
    /// Collection / host id (GUID) (`resourceContainers.collection.id`, `connectionData.instanceId`).
    pub id: String,
    /// Account id (GUID) (`resourceContainers.account.id`); derived from the name when absent.
    #[serde(default)]
    pub account_id: Option<String>,
    /// Tenant (GUID) the organization is connected to.
    pub tenant: String,
    /// Service principals added to the organization: client id -> access level.
    #[serde(default)]
    pub members: BTreeMap<String, AccessLevel>,
    /// Client ids allowed to create / delete service-hook subscriptions (`None` = every Basic member).
    #[serde(default)]
    pub hook_managers: Option<Vec<String>>,
    /// Personal access tokens accepted with HTTP Basic (legacy credential kind); each acts as a Basic member.
    #[serde(default)]
    pub personal_access_tokens: Vec<String>,
    /// Who pushes the commits made through the emulator's API.
    #[serde(default)]
    pub pusher: Identity,
    #[serde(default)]
    pub projects: Vec<ProjectConfig>,
}

impl OrganizationConfig {
    pub fn account_id(&self) -> String {
        self.account_id
            .clone()
            .unwrap_or_else(|| derived_id("account", &self.name))
    }
}

/// Project visibility.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    #[default]
    Private,
    Public,
}

/// A team project.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProjectConfig {
    pub name: String,
    /// GUID; derived from org + name when absent.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub visibility: Visibility,
    #[serde(default)]
    pub repos: Vec<RepoConfig>,
}

/// A Git repository (a real bare repository on disk).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RepoConfig {
    pub name: String,
    /// GUID; derived from org + project + name when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// Branch the seed commits go to (and so the default branch), unless a seed commit names another.
    #[serde(default = "default_branch")]
    pub default_branch: String,
    /// `isDisabled: true`: listed, but every Git read answers 404 TF401019.
    #[serde(default)]
    pub disabled: bool,
    /// Client ids that may read this repository (`None` = every Basic member). Others get 404 TF401019 and do
    /// not see it in listings.
    #[serde(default)]
    pub visible_to: Option<Vec<String>>,
    /// Commits made at start, in order (none = an empty repository without `defaultBranch`).
    #[serde(default)]
    pub seed: Vec<SeedCommit>,
    /// Alternatively, clone an existing repository (all branches and tags) at start.
    #[serde(default)]
    pub import_from: Option<PathBuf>,
    /// Reuse an existing bare repository under `data_dir` instead of recreating it from `seed`.
    #[serde(default = "default_true")]
    pub keep_existing: bool,
}

impl RepoConfig {
    pub fn new(name: impl Into<String>) -> Self {
        RepoConfig {
            name: name.into(),
            id: None,
            default_branch: default_branch(),
            disabled: false,
            visible_to: None,
            seed: Vec::new(),
            import_from: None,
            keep_existing: true,
        }
    }
}

/// A commit author / committer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub name: String,
    pub email: String,
}

impl Default for Signature {
    fn default() -> Self {
        Signature {
            name: "Jamal Hartnett".into(),
            email: "jamal.hartnett@contoso.com".into(),
        }
    }
}

/// A commit made at start.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedCommit {
    /// Branch (short name) the commit goes to; the repository's default branch when absent.
    #[serde(default)]
    pub branch: Option<String>,
    /// Start the branch from this other branch's head when the branch does not exist yet.
    #[serde(default)]
    pub from_branch: Option<String>,
    pub message: String,
    #[serde(default)]
    pub author: Option<Signature>,
    /// Author and committer date (fixed dates make the commit ids deterministic).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub date: Option<OffsetDateTime>,
    #[serde(default)]
    pub changes: Vec<FileChange>,
    /// Lightweight tags pointing at this commit.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// One change of a commit.
///
/// JSON: `{"op":"put","path":"src/a.py","content":"print(1)\n"}` (content as text, or
/// `"content":{"base64":"..."}` for binary), `{"op":"delete","path":"x"}`, `{"op":"rename","from":"a","to":"b"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum FileChange {
    Put {
        path: String,
        #[serde(rename = "content", with = "content_serde")]
        bytes: Vec<u8>,
    },
    Delete {
        path: String,
    },
    Rename {
        from: String,
        to: String,
    },
}

impl FileChange {
    pub fn put(path: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        FileChange::Put {
            path: path.into(),
            bytes: bytes.into(),
        }
    }
    pub fn delete(path: impl Into<String>) -> Self {
        FileChange::Delete { path: path.into() }
    }
    pub fn rename(from: impl Into<String>, to: impl Into<String>) -> Self {
        FileChange::Rename {
            from: from.into(),
            to: to.into(),
        }
    }
}

mod content_serde {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Content {
        Text(String),
        Binary { base64: String },
    }

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Content::Text(text.to_string()).serialize(serializer),
            Err(_) => Content::Binary {
                base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            }
            .serialize(serializer),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        match Content::deserialize(deserializer)? {
            Content::Text(text) => Ok(text.into_bytes()),
            Content::Binary { base64 } => base64::engine::general_purpose::STANDARD
                .decode(base64.as_bytes())
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Where (and with which Basic Auth) webhook deliveries go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookTarget {
    pub url: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Extra `Key:value` headers (the `httpHeaders` consumer input), one per line.
    #[serde(default)]
    pub http_headers: Option<String>,
}

impl WebhookTarget {
    pub fn new(
        url: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        WebhookTarget {
            url: url.into(),
            username: Some(username.into()),
            password: Some(password.into()),
            http_headers: None,
        }
    }
}

/// Builders: chainable; those naming an app / organization / project / repository panic when it was not added
/// first (a mistake in a test's setup, never request data).
impl EmulatorConfig {
    /// An empty configuration (no tenant, no organization).
    pub fn new(data_dir: PathBuf) -> Self {
        EmulatorConfig {
            tenants: Vec::new(),
            apps: Vec::new(),
            organizations: Vec::new(),
            token_lifetime_secs: default_token_lifetime(),
            webhook: None,
            data_dir,
            retry_time_scale: default_scale(),
            assertion_clock_skew_secs: default_skew(),
            api_version_policy: ApiVersionPolicy::Strict,
            faults: Vec::new(),
            webhook_timeout_ms: default_webhook_timeout_ms(),
            max_push_commits: default_max_push_commits(),
            public_base_url: None,
            max_blobs_per_zip: None,
            rate_limit: None,
        }
    }

    /// The demo dataset (see [`crate::demo`]).
    pub fn demo(data_dir: PathBuf) -> Self {
        crate::demo::demo_config(data_dir)
    }

    /// Reads a JSON configuration file.
    pub fn from_json_file(path: &std::path::Path) -> Result<Self, crate::EmulatorError> {
        let text = std::fs::read_to_string(path)?;
        Ok(serde_json::from_str(&text)?)
    }

    fn app_mut(&mut self, client_id: &str) -> &mut AppConfig {
        match self
            .apps
            .iter()
            .position(|app| app.client_id.eq_ignore_ascii_case(client_id))
        {
            Some(index) => &mut self.apps[index],
            None => panic!("unknown app {client_id}: call with_app first"),
        }
    }

    fn org_mut(&mut self, org: &str) -> &mut OrganizationConfig {
        match self
            .organizations
            .iter()
            .position(|existing| existing.name.eq_ignore_ascii_case(org))
        {
            Some(index) => &mut self.organizations[index],
            None => panic!("unknown organization {org}: call with_org first"),
        }
    }

    fn project_mut(&mut self, org: &str, project: &str) -> &mut ProjectConfig {
        let org_config = self.org_mut(org);
        match org_config
            .projects
            .iter()
            .position(|existing| existing.name.eq_ignore_ascii_case(project))
        {
            Some(index) => &mut org_config.projects[index],
            None => panic!("unknown project {org}/{project}: call with_project first"),
        }
    }

    fn repo_mut(&mut self, org: &str, project: &str, repo: &str) -> &mut RepoConfig {
        let project_config = self.project_mut(org, project);
        match project_config
            .repos
            .iter()
            .position(|existing| existing.name.eq_ignore_ascii_case(repo))
        {
            Some(index) => &mut project_config.repos[index],
            None => panic!("unknown repository {org}/{project}/{repo}: call with_repo first"),
        }
    }

    /// Adds a tenant (`id` GUID, verified domains).
    pub fn with_tenant(mut self, id: &str, domains: &[&str]) -> Self {
        self.tenants.push(TenantConfig {
            id: id.to_lowercase(),
            domains: domains.iter().map(|domain| domain.to_lowercase()).collect(),
            display_name: domains
                .first()
                .map(|domain| domain.to_string())
                .unwrap_or_default(),
        });
        self
    }

    /// Adds a single-tenant app registration in `tenant`.
    pub fn with_app(mut self, tenant: &str, client_id: &str, display_name: &str) -> Self {
        self.apps.push(AppConfig {
            client_id: client_id.to_lowercase(),
            display_name: display_name.to_string(),
            tenant: tenant.to_lowercase(),
            multi_tenant: false,
            consented_tenants: Vec::new(),
            secrets: Vec::new(),
            certificates: Vec::new(),
            federated_credentials: Vec::new(),
            service_principal_ids: BTreeMap::new(),
        });
        self
    }

    /// Marks an app as multi-tenant, consented in `consented_tenants`.
    pub fn with_multi_tenant(mut self, client_id: &str, consented_tenants: &[&str]) -> Self {
        let app = self.app_mut(client_id);
        app.multi_tenant = true;
        app.consented_tenants = consented_tenants
            .iter()
            .map(|tenant| tenant.to_lowercase())
            .collect();
        self
    }

    /// Adds a client secret (value) to an app; `expires_at = None` never expires.
    pub fn with_secret(
        mut self,
        client_id: &str,
        value: &str,
        expires_at: Option<OffsetDateTime>,
    ) -> Self {
        self.app_mut(client_id).secrets.push(SecretConfig {
            id: Some(Uuid::new_v4().to_string()),
            value: value.to_string(),
            expires_at,
        });
        self
    }

    /// Adds a client secret that expired yesterday (AADSTS7000222).
    pub fn with_expired_secret(self, client_id: &str, value: &str) -> Self {
        let yesterday = OffsetDateTime::now_utc() - time::Duration::days(1);
        self.with_secret(client_id, value, Some(yesterday))
    }

    /// Adds a certificate credential (PEM of the public certificate) to an app.
    pub fn with_certificate(mut self, client_id: &str, cert_pem: &str) -> Self {
        self.app_mut(client_id)
            .certificates
            .push(CertificateConfig {
                pem: cert_pem.to_string(),
                expires_at: None,
            });
        self
    }

    /// Registers an app that authenticates with a certificate only (REQUESTS.md R1).
    pub fn with_certificate_client(self, tenant: &str, client_id: &str, cert_pem: &str) -> Self {
        self.with_app(tenant, client_id, "certificate client")
            .with_certificate(client_id, cert_pem)
    }

    /// Adds a federated identity credential to an app (checked when the emulator starts).
    pub fn with_federated_credential(
        mut self,
        client_id: &str,
        credential: FederatedCredentialConfig,
    ) -> Self {
        self.app_mut(client_id)
            .federated_credentials
            .push(credential);
        self
    }

    /// Adds an organization connected to `tenant`.
    pub fn with_org(mut self, name: &str, id: &str, tenant: &str) -> Self {
        self.organizations.push(OrganizationConfig {
            name: name.to_string(),
            id: id.to_lowercase(),
            account_id: None,
            tenant: tenant.to_lowercase(),
            members: BTreeMap::new(),
            hook_managers: None,
            personal_access_tokens: Vec::new(),
            pusher: Identity::default(),
            projects: Vec::new(),
        });
        self
    }

    /// Adds a service principal (by client id) to an organization with an access level.
    pub fn with_member(mut self, org: &str, client_id: &str, level: AccessLevel) -> Self {
        self.org_mut(org)
            .members
            .insert(client_id.to_lowercase(), level);
        self
    }

    /// Adds a project (id derived from the names).
    pub fn with_project(mut self, org: &str, name: &str) -> Self {
        self.org_mut(org).projects.push(ProjectConfig {
            name: name.to_string(),
            id: None,
            description: None,
            visibility: Visibility::Private,
            repos: Vec::new(),
        });
        self
    }

    /// Adds an empty repository (no commits, so no `defaultBranch`).
    pub fn with_repo(mut self, org: &str, project: &str, name: &str) -> Self {
        self.project_mut(org, project)
            .repos
            .push(RepoConfig::new(name));
        self
    }

    /// Adds a repository made of `seed` commits.
    pub fn with_seeded_repo(
        mut self,
        org: &str,
        project: &str,
        name: &str,
        seed: Vec<SeedCommit>,
    ) -> Self {
        let mut repo = RepoConfig::new(name);
        repo.seed = seed;
        self.project_mut(org, project).repos.push(repo);
        self
    }

    /// Marks a repository as disabled.
    pub fn with_disabled_repo(mut self, org: &str, project: &str, name: &str) -> Self {
        self.repo_mut(org, project, name).disabled = true;
        self
    }

    /// Restricts a repository to the given client ids (others: 404 TF401019, hidden from listings).
    pub fn with_repo_visible_to(
        mut self,
        org: &str,
        project: &str,
        name: &str,
        client_ids: &[&str],
    ) -> Self {
        self.repo_mut(org, project, name).visible_to = Some(
            client_ids
                .iter()
                .map(|client_id| client_id.to_lowercase())
                .collect(),
        );
        self
    }

    /// Adds `projects` projects named `{prefix}-{i:03}`, each with `repos_per_project` empty repositories
    /// (no Git work at all until something is committed) — for paging and scale tests (REQUESTS.md R5).
    pub fn with_bulk_projects(
        mut self,
        org: &str,
        prefix: &str,
        projects: usize,
        repos_per_project: usize,
    ) -> Self {
        let org_config = self.org_mut(org);
        for i in 0..projects {
            let mut project_config = ProjectConfig {
                name: format!("{prefix}-{i:03}"),
                id: None,
                description: Some(format!("Bulk project {i}")),
                visibility: Visibility::Private,
                repos: Vec::new(),
            };
            for j in 0..repos_per_project {
                project_config
                    .repos
                    .push(RepoConfig::new(format!("{prefix}-{i:03}-repo-{j:02}")));
            }
            org_config.projects.push(project_config);
        }
        self
    }

    /// Webhook target (Basic Auth) that receives every `git.push`.
    pub fn with_webhook(mut self, url: &str, username: &str, password: &str) -> Self {
        self.webhook = Some(WebhookTarget::new(url, username, password));
        self
    }

    pub fn with_token_lifetime(mut self, secs: u64) -> Self {
        self.token_lifetime_secs = secs;
        self
    }

    /// Refuses "Get Blobs Zip" requests for more than `max` ids (400, as Azure DevOps refuses bad arguments).
    pub fn with_max_blobs_per_zip(mut self, max: usize) -> Self {
        self.max_blobs_per_zip = Some(max);
        self
    }

    pub fn with_retry_time_scale(mut self, scale: f64) -> Self {
        self.retry_time_scale = scale;
        self
    }

    pub fn with_faults(mut self, faults: Vec<FaultRule>) -> Self {
        self.faults = faults;
        self
    }
    /// Turns TSTU rate limiting on from the start.
    pub fn with_rate_limit(mut self, model: RateLimitModel) -> Self {
        self.rate_limit = Some(model);
        self
    }

    pub fn with_api_version_policy(mut self, policy: ApiVersionPolicy) -> Self {
        self.api_version_policy = policy;
        self
    }

    /// Checks ids and references; called by `start`.
    pub fn validate(&self) -> Result<(), crate::EmulatorError> {
        use crate::EmulatorError::Config;
        let is_guid = |id: &str| Uuid::parse_str(id).is_ok();
        for tenant in &self.tenants {
            if !is_guid(&tenant.id) {
                return Err(Config(format!("tenant id {} is not a GUID", tenant.id)));
            }
        }
        for app in &self.apps {
            if !is_guid(&app.client_id) {
                return Err(Config(format!("client id {} is not a GUID", app.client_id)));
            }
            if !self
                .tenants
                .iter()
                .any(|tenant| tenant.id.eq_ignore_ascii_case(&app.tenant))
            {
                return Err(Config(format!(
                    "app {} names unknown tenant {}",
                    app.client_id, app.tenant
                )));
            }
            for (index, credential) in app.federated_credentials.iter().enumerate() {
                check_federated_credential_addition(
                    &app.federated_credentials[..index],
                    credential,
                )
                .map_err(|why| Config(format!("app {}: {why}", app.client_id)))?;
            }
        }
        let mut names = std::collections::HashSet::new();
        for org in &self.organizations {
            if !names.insert(org.name.to_lowercase()) {
                return Err(Config(format!("organization {} defined twice", org.name)));
            }
            if org.name.is_empty() || org.name.starts_with('_') || org.name.contains('/') {
                return Err(Config(format!("invalid organization name {:?}", org.name)));
            }
            if !is_guid(&org.id) {
                return Err(Config(format!("organization id {} is not a GUID", org.id)));
            }
            if !self
                .tenants
                .iter()
                .any(|tenant| tenant.id.eq_ignore_ascii_case(&org.tenant))
            {
                return Err(Config(format!(
                    "organization {} names unknown tenant {}",
                    org.name, org.tenant
                )));
            }
            let mut pnames = std::collections::HashSet::new();
            for project in &org.projects {
                if !pnames.insert(project.name.to_lowercase()) {
                    return Err(Config(format!(
                        "project {}/{} defined twice",
                        org.name, project.name
                    )));
                }
                let mut rnames = std::collections::HashSet::new();
                for repo in &project.repos {
                    if !rnames.insert(repo.name.to_lowercase()) {
                        return Err(Config(format!(
                            "repository {}/{}/{} defined twice",
                            org.name, project.name, repo.name
                        )));
                    }
                }
            }
        }
        if !(self.retry_time_scale.is_finite() && self.retry_time_scale >= 0.0) {
            return Err(Config(
                "retry_time_scale must be a finite number >= 0".into(),
            ));
        }
        if let Some(model) = &self.rate_limit {
            model
                .validate()
                .map_err(|error| Config(error.to_string()))?;
        }
        Ok(())
    }
}
