//! Token manager: OAuth 2.0 client credentials against Microsoft Entra ID.
//!
//! * Endpoint `{authority}/{tenant}/oauth2/v2.0/token`, scope
//!   `499b84ac-1321-427f-aa17-267ca6975798/.default` (Azure DevOps).
//! * Secret (form post) or certificate (`private_key_jwt` client assertion); the legacy
//!   PAT kind needs no token request and yields a `Basic` authorization.
//! * Cache per (authority, tenant, client ID, credential fingerprint).
//! * Renewal a safety margin before expiry: `min(5 min, lifetime / 10)`. Entra's
//!   lifetimes are random between 60 and 90 minutes and can be configured down to
//!   10 minutes, so a fixed margin is wrong at one end or the other: a 10-minute
//!   margin on a 10-minute token would renew on every call, and a tiny margin on a
//!   90-minute token leaves no room for clock skew between us and Azure DevOps or
//!   for a slow request. `lifetime / 10` uses at least 90 % of every token; the
//!   5-minute cap bounds the skew we defend against. Expiry is computed from the
//!   instant the request was *sent*, so network latency only makes us earlier.
//! * Single flight: one refresh lock per key. On a cold or expired cache, concurrent
//!   callers wait on the lock and the first one makes the only request; the others
//!   find the fresh token (or share the failure of that one attempt). Inside the
//!   safety margin, the token is still valid, so one caller refreshes while the
//!   others keep using the current token without waiting.
//! * Entra's error details (`error_codes`, `error_description`, `trace_id`,
//!   `correlation_id`) are kept through a custom oauth2 `ErrorResponse` type.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use std::future::Future;
use std::pin::Pin;

use backon::BackoffBuilder as _;
use oauth2::basic::{
    BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenResponse,
    BasicTokenType,
};
use oauth2::{
    AsyncHttpClient, AuthType, ClientId, ClientSecret, HttpClientError, HttpRequest, HttpResponse,
    RequestTokenError, Scope, StandardRevocableToken, TokenResponse, TokenUrl,
};
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::credentials::{Credential, CredentialKind, CLIENT_ASSERTION_TYPE};
use crate::diagnosis::{aadsts_code, first_line, AzureError, Diagnosis, ErrorContext};
use crate::retry::RetryPolicy;
use crate::{AZURE_DEVOPS_SCOPE, DEFAULT_AUTHORITY, USER_AGENT};

/// When Entra omits `expires_in` (it should not), assume this lifetime: short, so we
/// renew early rather than present an expired token.
pub const ASSUMED_LIFETIME_WITHOUT_EXPIRES_IN: Duration = Duration::from_secs(300);

/// An app registration acting in one tenant, with its credential.
#[derive(Clone)]
pub struct ServicePrincipal {
    authority: String,
    tenant: String,
    client_id: String,
    credential: Credential,
    key: Arc<str>,
}

impl ServicePrincipal {
    /// With the public-cloud authority `https://login.microsoftonline.com`.
    pub fn new(tenant: &str, client_id: &str, credential: Credential) -> Result<Self, AzureError> {
        Self::with_authority(DEFAULT_AUTHORITY, tenant, client_id, credential)
    }

    /// With an explicit authority (sovereign clouds, the emulator).
    pub fn with_authority(
        authority: &str,
        tenant: &str,
        client_id: &str,
        credential: Credential,
    ) -> Result<Self, AzureError> {
        let authority = normalize_base_url(authority)?;
        let tenant = tenant.trim();
        if !valid_tenant(tenant) {
            return Err(AzureError::diagnosed(Diagnosis::MalformedTenant));
        }
        let client_id = client_id.trim();
        if client_id.is_empty()
            || !client_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(AzureError::diagnosed(Diagnosis::UnknownClientId));
        }
        // Tenant and client IDs are case-insensitive at Entra; the key is normalised so
        // that "ABC" and "abc" share one cached token.
        let key = format!(
            "{}\n{}\n{}\n{}",
            authority.to_ascii_lowercase(),
            tenant.to_ascii_lowercase(),
            client_id.to_ascii_lowercase(),
            credential.fingerprint()
        );
        Ok(ServicePrincipal {
            authority,
            tenant: tenant.to_string(),
            client_id: client_id.to_string(),
            credential,
            key: key.into(),
        })
    }

    /// Authority base URL, without trailing slash.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Tenant (GUID or verified domain).
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Application (client) ID.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The credential.
    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// `{authority}/{tenant}/oauth2/v2.0/token`.
    pub fn token_endpoint(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.authority, self.tenant)
    }
}

impl fmt::Debug for ServicePrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServicePrincipal")
            .field("authority", &self.authority)
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("credential", &self.credential)
            .finish()
    }
}

fn valid_tenant(t: &str) -> bool {
    t.parse::<crate::TenantId>().is_ok()
}

pub(crate) fn normalize_base_url(raw: &str) -> Result<String, AzureError> {
    let trimmed = raw.trim().trim_end_matches('/');
    let url = url::Url::parse(trimmed)
        .map_err(|e| AzureError::InvalidArgument(format!("URL {trimmed:?}: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(AzureError::InvalidArgument(format!(
            "URL {trimmed:?} must be http(s)://host[/path]"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(AzureError::InvalidArgument(format!(
            "URL {trimmed:?} must not have a query or fragment"
        )));
    }
    Ok(trimmed.to_string())
}

/// A usable authorization. Cheap to clone; never prints its value.
#[derive(Clone)]
pub struct AccessToken {
    header_value: SecretString,
    kind: CredentialKind,
    obtained_at: Instant,
    expires_at: Option<Instant>,
    refresh_at: Option<Instant>,
    lifetime: Option<Duration>,
    generation: u64,
}

impl AccessToken {
    /// The `Authorization` header value (`Bearer …` or `Basic …`), marked sensitive so
    /// that hyper/reqwest never log it.
    pub fn authorization_header(&self) -> Result<HeaderValue, AzureError> {
        let mut v = HeaderValue::from_str(self.header_value.expose_secret()).map_err(|_| {
            AzureError::diagnosed(Diagnosis::UnexpectedResponse {
                detail: "the access token contains characters not allowed in a header".into(),
            })
        })?;
        v.set_sensitive(true);
        Ok(v)
    }

    /// The raw header value (for callers that need the secret itself; handle with care).
    pub fn authorization(&self) -> &SecretString {
        &self.header_value
    }

    /// Credential kind that produced it.
    pub fn kind(&self) -> CredentialKind {
        self.kind
    }

    /// Time left before expiry (None for a PAT: unknown to us).
    pub fn expires_in(&self) -> Option<Duration> {
        self.expires_at
            .map(|e| e.saturating_duration_since(Instant::now()))
    }

    /// Lifetime announced by Entra (`expires_in` at issue time).
    pub fn lifetime(&self) -> Option<Duration> {
        self.lifetime
    }

    /// When it was requested.
    pub fn obtained_at(&self) -> Instant {
        self.obtained_at
    }

    /// Identity of this issuance (increases with every token the manager obtains).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// True once past the renewal point (the safety margin has started).
    pub fn needs_refresh(&self, now: Instant) -> bool {
        self.refresh_at.is_some_and(|r| now >= r)
    }

    /// True once expired.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|e| now >= e)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("kind", &self.kind)
            .field("expires_in", &self.expires_in())
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// Entra's error body. oauth2's `BasicErrorResponse` would drop `error_codes`,
/// `trace_id` and `correlation_id`, which admins need for support tickets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntraErrorResponse {
    /// OAuth error (`invalid_client`, `invalid_request`, ...).
    #[serde(default)]
    pub error: String,
    /// Human text; starts with `AADSTSnnnn:`.
    #[serde(default)]
    pub error_description: Option<String>,
    /// AADSTS numbers.
    #[serde(default)]
    pub error_codes: Vec<u64>,
    /// Server time.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// Trace ID for Microsoft support.
    #[serde(default)]
    pub trace_id: Option<String>,
    /// Correlation ID for Microsoft support.
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// Link to the error page.
    #[serde(default)]
    pub error_uri: Option<String>,
}

impl fmt::Display for EntraErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}",
            self.error,
            first_line(self.error_description.as_deref().unwrap_or(""))
        )
    }
}

impl oauth2::ErrorResponse for EntraErrorResponse {}

impl EntraErrorResponse {
    /// The most specific AADSTS code available.
    pub fn code(&self) -> Option<u64> {
        self.error_codes
            .first()
            .copied()
            .or_else(|| self.error_description.as_deref().and_then(aadsts_code))
    }
}

type EntraClient = oauth2::Client<
    EntraErrorResponse,
    BasicTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
>;

/// Token manager settings.
#[derive(Debug, Clone)]
pub struct TokenManagerConfig {
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout for a token request.
    pub request_timeout: Duration,
    /// User-Agent sent to Entra.
    pub user_agent: String,
    /// Upper bound of the renewal margin.
    pub max_refresh_margin: Duration,
    /// The margin is `lifetime / refresh_margin_divisor`, capped by `max_refresh_margin`.
    pub refresh_margin_divisor: u32,
    /// Retries of transient token-endpoint failures (network, 5xx, 429).
    pub retry: RetryPolicy,
}

impl Default for TokenManagerConfig {
    fn default() -> Self {
        TokenManagerConfig {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            user_agent: USER_AGENT.to_string(),
            max_refresh_margin: Duration::from_secs(300),
            refresh_margin_divisor: 10,
            retry: RetryPolicy {
                max_retries: 3,
                ..RetryPolicy::default()
            },
        }
    }
}

impl TokenManagerConfig {
    /// The renewal margin for a token of `lifetime`.
    pub fn refresh_margin(&self, lifetime: Duration) -> Duration {
        (lifetime / self.refresh_margin_divisor.max(1)).min(self.max_refresh_margin)
    }
}

/// Health of one cached credential, for the admin UI.
#[derive(Debug, Clone)]
pub struct TokenStatus {
    /// A token is cached and not expired.
    pub valid: bool,
    /// Time left on the cached token.
    pub expires_in: Option<Duration>,
    /// Wall-clock time of the last successful token request.
    pub last_obtained: Option<SystemTime>,
    /// Error of the last failed attempt, cleared by a success.
    pub last_error: Option<AzureError>,
}

/// Why a tenant's GUID could not be found.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TenantLookupError {
    #[error("Entra ID could not be reached to look up the tenant: {0}")]
    Unreachable(String),
    #[error("Entra ID does not know the tenant `{0}`")]
    Unknown(String),
    #[error("Entra ID's answer about the tenant could not be read")]
    Malformed,
}

/// Shared token cache. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct TokenManager {
    inner: Arc<ManagerInner>,
}

struct ManagerInner {
    http: reqwest::Client,
    config: TokenManagerConfig,
    slots: RwLock<HashMap<Arc<str>, Arc<Slot>>>,
    token_requests: Arc<AtomicU64>,
    generation: AtomicU64,
}

#[derive(Default)]
struct Slot {
    current: RwLock<Option<AccessToken>>,
    refresh: tokio::sync::Mutex<()>,
    attempts: AtomicU64,
    last_error: Mutex<Option<AzureError>>,
    last_obtained: Mutex<Option<SystemTime>>,
}

impl Slot {
    fn current(&self) -> Option<AccessToken> {
        // A poisoned lock only means another thread panicked mid-write of an Option:
        // treat as empty so the next caller fetches a new token.
        self.current.read().ok().and_then(|g| g.clone())
    }
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManager")
            .field(
                "cached",
                &self.inner.slots.read().map(|s| s.len()).unwrap_or(0),
            )
            .field("token_requests", &self.token_requests())
            .finish()
    }
}

impl TokenManager {
    /// A manager with its own HTTP client (redirects off, rustls).
    pub fn new(config: TokenManagerConfig) -> Result<Self, AzureError> {
        let http = reqwest::Client::builder()
            // The token endpoint never redirects legitimately; following a redirect
            // could post the secret to another host.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| AzureError::InvalidArgument(format!("HTTP client: {e}")))?;
        Ok(TokenManager {
            inner: Arc::new(ManagerInner {
                http,
                config,
                slots: RwLock::new(HashMap::new()),
                token_requests: Arc::new(AtomicU64::new(0)),
                generation: AtomicU64::new(0),
            }),
        })
    }

    /// The directory (tenant) GUID that `tenant` names: itself when it is a
    /// GUID, else (a verified domain such as `contoso.onmicrosoft.com`) read
    /// from the tenant's OpenID configuration, whose `issuer` is
    /// `{authority}/{guid}/v2.0`. Needed to compare a domain with the GUID
    /// Entra ID sends back after admin consent.
    pub async fn tenant_guid(
        &self,
        authority: &str,
        tenant: &str,
    ) -> Result<String, TenantLookupError> {
        let tenant = tenant.trim();
        if crate::is_guid(tenant) {
            return Ok(tenant.to_ascii_lowercase());
        }
        let url = format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            authority.trim_end_matches('/'),
            tenant
        );
        let response = self
            .inner
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| TenantLookupError::Unreachable(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(TenantLookupError::Unknown(tenant.to_owned()));
        }
        // A discovery document is a few KiB; refuse anything large.
        let bytes = response
            .bytes()
            .await
            .map_err(|e| TenantLookupError::Unreachable(e.without_url().to_string()))?;
        if bytes.len() > 64 * 1024 {
            return Err(TenantLookupError::Malformed);
        }
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
        }
        let discovery: Discovery =
            serde_json::from_slice(&bytes).map_err(|_| TenantLookupError::Malformed)?;
        discovery
            .issuer
            .split('/')
            .find(|segment| crate::is_guid(segment))
            .map(str::to_ascii_lowercase)
            .ok_or(TenantLookupError::Malformed)
    }

    /// The configuration.
    pub fn config(&self) -> &TokenManagerConfig {
        &self.inner.config
    }

    /// HTTP requests made to token endpoints so far (not counting PATs, which need none).
    pub fn token_requests(&self) -> u64 {
        self.inner.token_requests.load(Ordering::Relaxed)
    }

    fn slot(&self, sp: &ServicePrincipal) -> Arc<Slot> {
        let existing = self
            .inner
            .slots
            .read()
            .ok()
            .and_then(|slots| slots.get(&sp.key).cloned());
        if let Some(s) = existing {
            return s;
        }
        match self.inner.slots.write() {
            Ok(mut slots) => slots.entry(sp.key.clone()).or_default().clone(),
            // Poisoned map: serve from a fresh, uncached slot rather than fail.
            Err(_) => Arc::new(Slot::default()),
        }
    }

    /// A valid authorization for `sp`, from the cache or a new token request.
    pub async fn get(&self, sp: &ServicePrincipal) -> Result<AccessToken, AzureError> {
        let slot = self.slot(sp);
        let now = Instant::now();
        if let Some(t) = slot.current() {
            if !t.needs_refresh(now) && !t.is_expired(now) {
                return Ok(t);
            }
            if !t.is_expired(now) {
                // Inside the safety margin: the token still works. One caller renews, the
                // rest carry on with the current token instead of queueing.
                let Ok(_guard) = slot.refresh.try_lock() else {
                    return Ok(t);
                };
                if let Some(t2) = slot
                    .current()
                    .filter(|t2| !t2.needs_refresh(Instant::now()))
                {
                    return Ok(t2);
                }
                return match self.fetch_and_store(sp, &slot).await {
                    Ok(fresh) => Ok(fresh),
                    Err(e) => {
                        // Keep serving the still-valid token; the error stays visible in
                        // `status()` and is retried by the next caller.
                        tracing::warn!(tenant = sp.tenant(), client_id = sp.client_id(), error = %e,
                            "token renewal failed; the current token is still valid");
                        Ok(t)
                    }
                };
            }
        }
        // Cold or expired: everybody waits for the one request.
        let seen_attempts = slot.attempts.load(Ordering::Acquire);
        let _guard = slot.refresh.lock().await;
        if let Some(t) = slot.current().filter(|t| !t.is_expired(Instant::now())) {
            return Ok(t);
        }
        let shared_failure = if slot.attempts.load(Ordering::Acquire) != seen_attempts {
            slot.last_error.lock().ok().and_then(|e| e.clone())
        } else {
            None
        };
        if let Some(err) = shared_failure {
            // The attempt we were waiting for failed: share its answer instead of
            // hammering Entra with N identical failing requests.
            return Err(err);
        }
        self.fetch_and_store(sp, &slot).await
    }

    /// Forgets `token` if it is still the cached one (after Azure DevOps rejected it).
    pub fn invalidate(&self, sp: &ServicePrincipal, token: &AccessToken) {
        let slot = self.slot(sp);
        let Ok(mut cur) = slot.current.write() else {
            return;
        };
        // Only the token that was rejected: a concurrent caller may already have
        // stored a fresh one, which must survive.
        let rejected_is_current = cur
            .as_ref()
            .is_some_and(|c| c.generation == token.generation);
        if rejected_is_current {
            *cur = None;
        }
    }

    /// Drops everything cached for `sp` (credential rotated or provider deleted).
    pub fn forget(&self, sp: &ServicePrincipal) {
        if let Ok(mut slots) = self.inner.slots.write() {
            slots.remove(&sp.key);
        }
    }

    /// Health of the cached entry for `sp`.
    pub fn status(&self, sp: &ServicePrincipal) -> TokenStatus {
        let slot = self.slot(sp);
        let cur = slot.current();
        TokenStatus {
            valid: cur.as_ref().is_some_and(|t| !t.is_expired(Instant::now())),
            expires_in: cur.as_ref().and_then(AccessToken::expires_in),
            last_obtained: slot.last_obtained.lock().ok().and_then(|g| *g),
            last_error: slot.last_error.lock().ok().and_then(|g| g.clone()),
        }
    }

    async fn fetch_and_store(
        &self,
        sp: &ServicePrincipal,
        slot: &Slot,
    ) -> Result<AccessToken, AzureError> {
        let result = self.fetch(sp).await;
        match &result {
            Ok(t) => {
                if let Ok(mut cur) = slot.current.write() {
                    *cur = Some(t.clone());
                }
                if let Ok(mut e) = slot.last_error.lock() {
                    *e = None;
                }
                if let Ok(mut o) = slot.last_obtained.lock() {
                    *o = Some(SystemTime::now());
                }
            }
            Err(e) => {
                if let Ok(mut le) = slot.last_error.lock() {
                    *le = Some(e.clone());
                }
            }
        }
        slot.attempts.fetch_add(1, Ordering::Release);
        result
    }

    fn next_generation(&self) -> u64 {
        self.inner.generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    async fn fetch(&self, sp: &ServicePrincipal) -> Result<AccessToken, AzureError> {
        if let Some(basic) = sp.credential.pat_basic_value() {
            // A PAT is sent as is; its expiry is not known to us (Azure DevOps tells by 401).
            return Ok(AccessToken {
                header_value: basic,
                kind: CredentialKind::PersonalAccessToken,
                obtained_at: Instant::now(),
                expires_at: None,
                refresh_at: None,
                lifetime: None,
                generation: self.next_generation(),
            });
        }
        // Transient failures (network, 5xx, 429) are retried along backon's jittered,
        // capped exponential delays; Entra's 4xx answers are final.
        let mut delays = self.inner.config.retry.backoff().build();
        let (tr, sent_at) = loop {
            match self.request_token_once(sp).await {
                Ok(v) => break v,
                Err(e) if e.is_transient() => match delays.next() {
                    Some(d) => {
                        tracing::info!(tenant = sp.tenant(), error = %e, delay = ?d, "retrying token request");
                        tokio::time::sleep(d).await;
                    }
                    None => return Err(e),
                },
                Err(e) => return Err(e),
            }
        };
        let lifetime = tr
            .expires_in()
            .unwrap_or(ASSUMED_LIFETIME_WITHOUT_EXPIRES_IN);
        let margin = self.inner.config.refresh_margin(lifetime);
        let secret = tr.access_token().secret();
        if secret.is_empty() {
            return Err(AzureError::diagnosed(Diagnosis::UnexpectedResponse {
                detail: "the token endpoint returned an empty access_token".into(),
            }));
        }
        tracing::debug!(tenant = sp.tenant(), client_id = sp.client_id(), lifetime = ?lifetime, "obtained token");
        Ok(AccessToken {
            header_value: SecretString::from(format!("Bearer {secret}")),
            kind: sp.credential.kind(),
            obtained_at: sent_at,
            expires_at: Some(sent_at + lifetime),
            refresh_at: Some(sent_at + lifetime - margin),
            lifetime: Some(lifetime),
            generation: self.next_generation(),
        })
    }

    async fn request_token_once(
        &self,
        sp: &ServicePrincipal,
    ) -> Result<(BasicTokenResponse, Instant), AzureError> {
        let endpoint = sp.token_endpoint();
        let token_url = TokenUrl::new(endpoint.clone())
            .map_err(|e| AzureError::InvalidArgument(format!("token URL: {e}")))?;
        let client: EntraClient = oauth2::Client::new(ClientId::new(sp.client_id.clone()));
        let mut client = client
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(token_url);
        if let Some(secret) = sp.credential.secret() {
            client =
                client.set_client_secret(ClientSecret::new(secret.expose_secret().to_string()));
        }
        let mut request = client
            .exchange_client_credentials()
            .add_scope(Scope::new(AZURE_DEVOPS_SCOPE.to_string()));
        let assertion = match sp.credential.kind() {
            CredentialKind::Certificate => {
                Some(sp.credential.client_assertion(&sp.client_id, &endpoint)?)
            }
            // Signed afresh for every request (never cached), so one that
            // Entra refused is not sent again.
            CredentialKind::Federated => Some(sp.credential.federated_assertion()?),
            CredentialKind::ClientSecret | CredentialKind::PersonalAccessToken => None,
        };
        if let Some(assertion) = assertion {
            request = request
                .add_extra_param("client_assertion_type", CLIENT_ASSERTION_TYPE)
                .add_extra_param("client_assertion", assertion.expose_secret().to_string());
        }

        // oauth2 hands back a parse error without the HTTP status; we record it on the
        // way through so that a 5xx HTML page is diagnosed as a server error.
        let status = Arc::new(AtomicU16::new(0));
        let http_client = RecordingHttp {
            http: self.inner.http.clone(),
            counter: self.inner.token_requests.clone(),
            status: status.clone(),
        };
        let sent_at = Instant::now();
        let result = request.request_async(&http_client).await;
        let status = status.load(Ordering::Relaxed);
        match result {
            Ok(tr) => {
                if *tr.token_type() != BasicTokenType::Bearer {
                    return Err(AzureError::diagnosed(Diagnosis::UnexpectedResponse {
                        detail: format!("token type {:?} instead of Bearer", tr.token_type()),
                    }));
                }
                Ok((tr, sent_at))
            }
            Err(e) => {
                let error = map_token_error(e, status, &endpoint);
                Err(if sp.credential.kind() == CredentialKind::Federated {
                    error.for_federated()
                } else {
                    error
                })
            }
        }
    }
}

/// oauth2's reqwest integration, plus a request counter and the last HTTP status.
/// Owns its parts (cheap `Arc` clones): a borrowed variant makes oauth2's
/// `AsyncHttpClient<'c>` bound higher-ranked and the token future non-`Send`.
struct RecordingHttp {
    http: reqwest::Client,
    counter: Arc<AtomicU64>,
    status: Arc<AtomicU16>,
}

impl<'c> AsyncHttpClient<'c> for RecordingHttp {
    type Error = HttpClientError<reqwest::Error>;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Self::Error>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            self.counter.fetch_add(1, Ordering::Relaxed);
            let resp: HttpResponse = AsyncHttpClient::call(&self.http, request).await?;
            self.status.store(resp.status().as_u16(), Ordering::Relaxed);
            Ok(resp)
        })
    }
}

fn map_token_error(
    err: RequestTokenError<HttpClientError<reqwest::Error>, EntraErrorResponse>,
    status: u16,
    endpoint: &str,
) -> AzureError {
    let request = Some(format!("POST {}", endpoint_path(endpoint)));
    let status_opt = (status != 0).then_some(status);
    let base_ctx = ErrorContext {
        status: status_opt,
        request,
        ..Default::default()
    };
    match err {
        RequestTokenError::ServerResponse(body) => {
            let diagnosis = match status {
                429 => Diagnosis::Throttled { retry_after: None },
                500..=599 => Diagnosis::ServerError { status },
                _ => Diagnosis::from_entra(
                    body.code(),
                    &body.error,
                    body.error_description.as_deref().unwrap_or(""),
                ),
            };
            AzureError::with_context(
                diagnosis,
                ErrorContext {
                    message: body
                        .error_description
                        .as_deref()
                        .map(|d| first_line(d).to_string()),
                    trace_id: body.trace_id.clone(),
                    correlation_id: body.correlation_id.clone(),
                    ..base_ctx
                },
            )
        }
        RequestTokenError::Request(e) => {
            let diagnosis = match &e {
                HttpClientError::Reqwest(re) if re.is_timeout() => Diagnosis::Timeout,
                HttpClientError::Reqwest(re) => Diagnosis::NetworkFailure {
                    detail: error_chain(re.as_ref()),
                },
                other => Diagnosis::NetworkFailure {
                    detail: error_chain(other),
                },
            };
            AzureError::with_context(diagnosis, base_ctx)
        }
        RequestTokenError::Parse(e, body) => {
            let diagnosis = match status {
                429 => Diagnosis::Throttled { retry_after: None },
                500..=599 => Diagnosis::ServerError { status },
                // A 200 we could not parse may contain a token: never echo its body.
                200 => Diagnosis::UnexpectedResponse {
                    detail: format!("token response not understood: {e}"),
                },
                _ => Diagnosis::UnexpectedResponse {
                    detail: format!(
                        "the token endpoint answered HTTP {status} with {} (is the authority URL right?)",
                        describe_body(&body)
                    ),
                },
            };
            AzureError::with_context(diagnosis, base_ctx)
        }
        RequestTokenError::Other(msg) => {
            let diagnosis = match status {
                429 => Diagnosis::Throttled { retry_after: None },
                500..=599 => Diagnosis::ServerError { status },
                _ => Diagnosis::UnexpectedResponse {
                    detail: format!(
                        "token endpoint answered HTTP {status}: {msg} (is the authority URL right?)"
                    ),
                },
            };
            AzureError::with_context(diagnosis, base_ctx)
        }
    }
}

fn endpoint_path(endpoint: &str) -> String {
    url::Url::parse(endpoint)
        .map(|u| u.path().to_string())
        .unwrap_or_else(|_| endpoint.to_string())
}

fn describe_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let t = text.trim_start();
    if t.starts_with('<') {
        "an HTML page".to_string()
    } else {
        let snippet: String = t.chars().take(120).collect();
        format!("{snippet:?}")
    }
}

/// `Display` of an error and its sources, one line.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(src) = cur {
        let t = src.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = src.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_is_a_tenth_capped_at_five_minutes() {
        let c = TokenManagerConfig::default();
        assert_eq!(
            c.refresh_margin(Duration::from_secs(3599)),
            Duration::from_secs(300)
        );
        assert_eq!(
            c.refresh_margin(Duration::from_secs(5400)),
            Duration::from_secs(300)
        );
        assert_eq!(
            c.refresh_margin(Duration::from_secs(600)),
            Duration::from_secs(60)
        );
        assert_eq!(
            c.refresh_margin(Duration::from_secs(10)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn tenant_validation() {
        let cred =
            Credential::client_secret(SecretString::from("x")).unwrap_or_else(|e| panic!("{e}"));
        for bad in ["", "common", "Organizations", "a/b", "x y", "t?x"] {
            let r =
                ServicePrincipal::new(bad, "00000000-0000-0000-0000-000000000001", cred.clone());
            assert_eq!(
                r.err().map(|e| e.code()),
                Some("malformed_tenant"),
                "{bad:?}"
            );
        }
        for good in [
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "contoso.onmicrosoft.com",
        ] {
            assert!(
                ServicePrincipal::new(good, "c", cred.clone()).is_ok(),
                "{good}"
            );
        }
    }

    #[test]
    fn token_endpoint_and_authority_normalisation() {
        let cred =
            Credential::client_secret(SecretString::from("x")).unwrap_or_else(|e| panic!("{e}"));
        let sp = ServicePrincipal::with_authority(
            "http://127.0.0.1:9/login/",
            "t1.example",
            "c1",
            cred.clone(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            sp.token_endpoint(),
            "http://127.0.0.1:9/login/t1.example/oauth2/v2.0/token"
        );
        assert!(
            ServicePrincipal::with_authority("ftp://x", "t1.example", "c1", cred.clone()).is_err()
        );
        let dbg = format!("{sp:?}");
        assert!(
            dbg.contains("t1.example") && !dbg.contains("\"x\""),
            "{dbg}"
        );
    }

    #[test]
    fn entra_error_body_keeps_details() {
        let body = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: t\r\nCorrelation ID: c","error_codes":[7000215],"timestamp":"2024-01-01 00:00:00Z","trace_id":"tr-1","correlation_id":"co-1","error_uri":"https://login.microsoftonline.com/error?code=7000215"}"#;
        let e: EntraErrorResponse = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.code(), Some(7000215));
        let err = map_token_error(
            RequestTokenError::ServerResponse(e),
            401,
            "https://x/t/oauth2/v2.0/token",
        );
        assert_eq!(err.code(), "wrong_client_secret");
        let ctx = err.context().cloned().unwrap_or_default();
        assert_eq!(ctx.trace_id.as_deref(), Some("tr-1"));
        assert_eq!(ctx.correlation_id.as_deref(), Some("co-1"));
        assert_eq!(ctx.status, Some(401));
        // Codes only in the description are still found.
        let e: EntraErrorResponse =
            serde_json::from_str(r#"{"error":"invalid_request","error_description":"AADSTS90002: Tenant 'x' not found."}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.code(), Some(90002));
    }

    #[test]
    fn html_from_token_endpoint_is_not_echoed() {
        let err = map_token_error(
            RequestTokenError::Other("unexpected response Content-Type".into()),
            502,
            "https://x/t/oauth2/v2.0/token",
        );
        assert_eq!(err.code(), "server_error");
        assert!(err.is_transient());
    }
}
