//! The transport pipeline of the Azure DevOps client: the one path every request
//! takes, kept apart from the endpoint catalogue so that authentication, throttling,
//! retries and body handling are decided in a single place and no endpoint can skip
//! them.
//!
//! Every call goes through one path ([`AzureClient::send_once`] inside a `backon`
//! retry loop) that:
//! 1. takes a permit of the organization's [`OrgGate`](crate::retry::OrgGate) in the
//!    handle's [`Priority`](crate::retry::Priority) lane (background: default 4,
//!    interactive: default 4) and waits out the pauses that priority obeys
//!    (`Retry-After` on any status and `X-RateLimit-Remaining: 0` until
//!    `X-RateLimit-Reset` for all; the server's delay and low-budget pacing for
//!    background requests only);
//! 2. gets a token from the [`TokenManager`](crate::token::TokenManager) (cached, single flight);
//! 3. sends with redirects **off**, `api-version=7.1`, an explicit `Accept`, and
//!    `X-TFS-FedAuthRedirect: Suppress` (asks Azure DevOps for a 401 rather than a
//!    sign-in redirect; harmless where ignored);
//! 4. classifies the answer: any 203, any 3xx and any 2xx with an HTML body mean
//!    "not authenticated" (Azure DevOps answers a rejected token with a sign-in page);
//!    on that or a 401 the token is dropped and the call retried once with a new one;
//! 5. maps failures to a [`Diagnosis`]; 429, 5xx, timeouts and network errors are
//!    retried with jittered, capped exponential backoff.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use backon::BackoffBuilder as _;
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, Response};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::OwnedSemaphorePermit;

use super::AzureClient;
use crate::diagnosis::{first_line, AzureError, Diagnosis, ErrorContext, ResourceScope};
use crate::models::DevOpsErrorEnvelope;
use crate::retry::{GateWait, ThrottleCause};
use crate::token::error_chain;

const ACCEPT_JSON: &str = "application/json";
const ACCEPT_OCTET: &str = "application/octet-stream";
const ACCEPT_ZIP: &str = "application/zip";
/// Bytes of an error body we read to find the message (error bodies are small; an
/// HTML sign-in page is not worth more).
const ERROR_BODY_LIMIT: usize = 64 * 1024;

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

/// A failed attempt and the pause its answer asked for (status, wait): the naive
/// mode sleeps it per request, where the governor holds the whole organization.
struct Failed {
    error: AzureError,
    server_wait: Option<(u16, Duration)>,
}

impl From<AzureError> for Failed {
    fn from(error: AzureError) -> Self {
        Failed {
            error,
            server_wait: None,
        }
    }
}

impl AzureClient {
    async fn send_once(
        &self,
        call: &Call,
        auth_retried: &AtomicBool,
    ) -> Result<(Response, Option<OwnedSemaphorePermit>), Failed> {
        let permit = self.gate.permit(self.priority).await;
        if let GateWait::TooLong(d) = self
            .gate
            .wait_turn(self.priority, self.shared.config.retry.max_server_wait)
            .await
        {
            return Err(Failed::from(AzureError::with_context(
                Diagnosis::Throttled {
                    retry_after: Some(d),
                },
                ErrorContext {
                    request: Some(call.describe()),
                    ..Default::default()
                },
            )));
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
                    return Err(Failed {
                        error: error_from_response(resp, call, requested_wait).await,
                        server_wait: requested_wait.map(|d| (status, d)),
                    });
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
        let governor = self.shared.config.governor;
        let mut delays = self.shared.config.retry.backoff().build();
        let auth_retried = AtomicBool::new(false);
        loop {
            let (result, server_wait) = match self.send_once(call, &auth_retried).await {
                // The permit is held while the body is read: a streaming download
                // counts against the organization's concurrency until it is finished.
                Ok((resp, _permit)) => (read_body(resp, call, &mode).await, None),
                Err(failed) => (Err(failed.error), failed.server_wait),
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
            match server_wait {
                // The naive mode: no gate holds the pause, so this request sleeps
                // it alone (on a 429 or a 503 only: the gate returns nothing else).
                Some((status, wait)) if !governor => {
                    if wait > max_server_wait {
                        return Err(err);
                    }
                    delay = wait;
                    self.gate
                        .record_wait(ThrottleCause::RetryAfter, wait, status);
                }
                _ => {
                    if let Some(Diagnosis::Throttled {
                        retry_after: Some(_),
                    }) = err.diagnosis()
                    {
                        // The gate already sleeps what the server asked for; backing
                        // off on top would wait twice.
                        delay = Duration::ZERO;
                    }
                }
            }
            tracing::info!(org = %self.org, request = %call.describe(), error = %err, delay = ?delay, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    // The verbs below are all the endpoint files may use: each builds one [`Call`] and
    // hands it to [`AzureClient::run`], so no endpoint can bypass the pipeline.

    /// GET a JSON document; the headers come back for paging (`x-ms-continuationtoken`).
    pub(super) async fn get_json<T: DeserializeOwned>(
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

    /// POST/PUT/PATCH a JSON body and decode the JSON answer.
    pub(super) async fn send_json<T: DeserializeOwned>(
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

    /// GET raw bytes in memory, at most `max_item_bytes`.
    pub(super) async fn get_bytes(
        &self,
        url: url::Url,
        scope: ResourceScope,
    ) -> Result<Vec<u8>, AzureError> {
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

    /// DELETE, ignoring whatever body comes back.
    pub(super) async fn delete(
        &self,
        url: url::Url,
        scope: ResourceScope,
    ) -> Result<(), AzureError> {
        let call = Call {
            method: Method::DELETE,
            url,
            accept: ACCEPT_JSON,
            body: None,
            scope,
            timeout: None,
        };
        self.run(&call, ReadMode::Discard).await.map(|_| ())
    }

    /// GET a zip archive streamed to `dest` (under the download timeout and size limit,
    /// not the API ones); returns its size in bytes and hex SHA-256.
    pub(super) async fn get_zip(
        &self,
        url: url::Url,
        scope: ResourceScope,
        dest: &Path,
        progress: Option<DownloadProgress>,
    ) -> Result<(u64, String), AzureError> {
        let call = Call {
            method: Method::GET,
            url,
            accept: ACCEPT_ZIP,
            body: None,
            scope,
            timeout: Some(self.shared.config.download_timeout),
        };
        let mode = ReadMode::File {
            dest: dest.to_path_buf(),
            limit: self.shared.config.max_download_bytes,
            progress,
        };
        match self.run(&call, mode).await? {
            Body::File { bytes, sha256 } => Ok((bytes, sha256)),
            _ => Err(internal_mode_error()),
        }
    }
}

impl AzureClient {
    /// POST a JSON body whose answer is a zip archive, streamed to `dest` as
    /// [`Self::get_zip`] streams one (same timeout, size limit and checks).
    pub(super) async fn post_zip(
        &self,
        url: url::Url,
        scope: ResourceScope,
        body: serde_json::Value,
        dest: &Path,
    ) -> Result<(u64, String), AzureError> {
        let call = Call {
            method: Method::POST,
            url,
            accept: ACCEPT_ZIP,
            body: Some(body),
            scope,
            timeout: Some(self.shared.config.download_timeout),
        };
        let mode = ReadMode::File {
            dest: dest.to_path_buf(),
            limit: self.shared.config.max_download_bytes,
            progress: None,
        };
        match self.run(&call, mode).await? {
            Body::File { bytes, sha256 } => Ok((bytes, sha256)),
            _ => Err(internal_mode_error()),
        }
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
    /// Streamed to a file, telling `progress` how far it got.
    File {
        dest: PathBuf,
        limit: Option<u64>,
        progress: Option<DownloadProgress>,
    },
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
        ReadMode::File {
            dest,
            limit,
            progress,
        } => stream_to_file(resp, call, dest, *limit, progress.as_ref())
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

/// Bytes of a download so far, and its length when the server declared it.
/// A watch channel: the reader sees the latest value whenever it looks, and
/// the download never waits for it.
pub type DownloadProgress = tokio::sync::watch::Sender<(u64, Option<u64>)>;

async fn stream_to_file(
    mut resp: Response,
    call: &Call,
    dest: &Path,
    limit: Option<u64>,
    progress: Option<&DownloadProgress>,
) -> Result<(u64, String), AzureError> {
    let expected = declared_length(resp.headers());
    if let Some(p) = progress {
        p.send_replace((0, expected));
    }
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
            if let Some(p) = progress {
                p.send_replace((written, expected));
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::RetryPolicy;

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
