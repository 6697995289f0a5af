//! Fault injection ("per run" through the configuration, "per request" through rules with `times`) and the
//! middleware that applies faults, logs every request and records token endpoint calls.
//!
//! Rule semantics: every rule whose scope matches a request is applied and consumes one of its `times`
//! (`None` = until cleared). `Delay`, `PageSize`, `CutBody` and `RetryAfterOn200` combine with each other and
//! with the normal answer; the first matching "answer" fault (`TokenError`, `SignInPage203`,
//! `RedirectToSignIn302`, `Unauthorized401`, `Throttle429`, `ServerError`) replaces the answer.
//! `TokenError` and `FicPropagation` only match token endpoint calls; `FicPropagation` changes what the token
//! endpoint sees (federated identity credentials younger than `secs` do not exist yet). Admin endpoints (`/_emulator/...`) are never faulted or logged.
//!
//! `Throttle429` and `RetryAfterOn200` send fixed rate-limit headers regardless of usage. Usage-based throttling
//! (TSTUs per identity) is [`crate::rate_limit`], charged after authentication in the DevOps router; the two are
//! independent, and a request answered by a fault here never reaches that charge.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Response, StatusCode};
use axum::middleware::Next;
use serde::{Deserialize, Serialize};

use crate::http;
use crate::state::{AuthKind, LoggedRequest, Service, Shared, TokenRequestRecord};
use crate::token;

/// Which requests a rule applies to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultScope {
    /// The token endpoint (`POST {authority}/{tenant}/oauth2/v2.0/token`).
    Token,
    /// Every Azure DevOps REST call (`{devops}/...`).
    DevOps,
    /// Any (non-admin) request whose `path?query` contains the string.
    PathContains(String),
}

/// What goes wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    /// Token endpoint answers the Entra error `AADSTS{aadsts}` (status/`error` as Entra uses for that code).
    TokenError { aadsts: u32 },
    /// `203` + HTML sign-in page.
    SignInPage203,
    /// `302` to the sign-in page.
    RedirectToSignIn302,
    /// `401` + TF400813 (DevOps) / `invalid_client` (token endpoint).
    Unauthorized401,
    /// `429` + `Retry-After` + `X-RateLimit-*` + TF400733.
    Throttle429 { retry_after_secs: u64 },
    /// Normal answer plus `Retry-After` / `X-RateLimit-*` headers (ADO delays instead of blocking).
    RetryAfterOn200 { secs: u64 },
    /// A 5xx (`502`–`504` as the front end's HTML page, others as ADO's JSON envelope).
    ServerError { status: u16 },
    /// Answer after a delay.
    Delay { ms: u64 },
    /// Announce the full `Content-Length`, send `after_bytes` bytes of the body, then drop the connection.
    CutBody { after_bytes: usize },
    /// Page size of paged lists (projects, refs, commits, pushes, diffs) capped at `n`.
    PageSize { n: usize },
    /// Entra's propagation delay after a federated identity credential is added: the token endpoint treats
    /// credentials whose `created_at` is less than `secs` seconds ago as not existing yet, and answers a
    /// matching assertion AADSTS70021 (Microsoft documents this for the first minutes and advises retrying).
    /// JSON: `{"FicPropagation":{"secs":120}}`.
    FicPropagation { secs: u64 },
}

impl Fault {
    fn replaces_answer(&self) -> bool {
        matches!(
            self,
            Fault::TokenError { .. }
                | Fault::SignInPage203
                | Fault::RedirectToSignIn302
                | Fault::Unauthorized401
                | Fault::Throttle429 { .. }
                | Fault::ServerError { .. }
        )
    }
}

/// A fault, where it applies, and how many times.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    pub scope: FaultScope,
    pub fault: Fault,
    /// `None` = until cleared; `Some(n)` = the next `n` matching requests.
    #[serde(default)]
    pub times: Option<u32>,
}

impl FaultRule {
    /// A rule active until cleared.
    pub fn new(scope: FaultScope, fault: Fault) -> Self {
        FaultRule {
            scope,
            fault,
            times: None,
        }
    }
    /// A rule for the next matching request only.
    pub fn once(scope: FaultScope, fault: Fault) -> Self {
        FaultRule {
            scope,
            fault,
            times: Some(1),
        }
    }
    /// A rule for the next `count` matching requests.
    pub fn times(scope: FaultScope, fault: Fault, count: u32) -> Self {
        FaultRule {
            scope,
            fault,
            times: Some(count),
        }
    }
}

/// The request log keeps the last requests only (the oldest tenth is dropped when full).
pub(crate) const MAX_LOGGED: usize = 5000;

/// Faults that handlers must honour themselves (inserted as a request extension).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RequestFaults {
    pub page_size: Option<usize>,
    /// `FicPropagation`: federated identity credentials younger than this many seconds are not seen yet.
    pub fic_propagation_secs: Option<u64>,
}

pub(crate) fn classify(path: &str) -> Option<Service> {
    if path == "/_emulator" || path.starts_with("/_emulator/") {
        return None;
    }
    if path.starts_with("/login/") {
        if path.ends_with("/oauth2/v2.0/token") || path.ends_with("/oauth2/token") {
            return Some(Service::Token);
        }
        return Some(Service::Login);
    }
    if path.starts_with("/devops/") || path == "/devops" || path.starts_with("/vssps/") {
        return Some(Service::DevOps);
    }
    Some(Service::Other)
}

fn take_matching(shared: &Shared, service: Service, path_q: &str) -> Vec<Fault> {
    let mut rules = shared.faults.lock();
    let mut out = Vec::new();
    for rule in rules.iter_mut() {
        if rule.times == Some(0) {
            continue;
        }
        let scope_ok = match &rule.scope {
            FaultScope::Token => service == Service::Token,
            FaultScope::DevOps => service == Service::DevOps,
            FaultScope::PathContains(needle) => path_q.contains(needle.as_str()),
        };
        let applicable = match rule.fault {
            Fault::TokenError { .. } | Fault::FicPropagation { .. } => service == Service::Token,
            _ => true,
        };
        if scope_ok && applicable {
            out.push(rule.fault.clone());
            if let Some(remaining) = rule.times.as_mut() {
                *remaining = remaining.saturating_sub(1);
            }
        }
    }
    rules.retain(|rule| rule.times != Some(0));
    out
}

fn answer_fault(
    shared: &Shared,
    service: Service,
    fault: &Fault,
    path: &str,
    original_url: &str,
) -> Response<Body> {
    if service == Service::Token {
        return token::fault_response(shared, fault);
    }
    let org = path
        .strip_prefix("/devops/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|name| shared.org(&percent_decode(name)));
    let mut response = match fault {
        Fault::SignInPage203 => http::sign_in_203(shared),
        Fault::RedirectToSignIn302 => http::redirect_to_sign_in(shared, original_url),
        Fault::Unauthorized401 => http::unauthorized(
            shared,
            org.as_deref(),
            "TF400813: Resource not available for anonymous access. Client authentication required.",
        ),
        Fault::Throttle429 { retry_after_secs } => http::throttled(*retry_after_secs),
        Fault::ServerError { status } => http::server_error(*status),
        _ => http::server_error(500),
    };
    if service == Service::DevOps {
        http::add_ado_headers(shared, response.headers_mut());
    }
    response
}

pub(crate) fn percent_decode(encoded: &str) -> String {
    percent_encoding::percent_decode_str(encoded)
        .decode_utf8_lossy()
        .into_owned()
}

/// Applies faults, logs the exchange, records token endpoint calls.
pub(crate) async fn middleware(
    State(shared): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let Some(service) = classify(&path) else {
        return next.run(req).await;
    };
    let received_at = SystemTime::now();
    let received_instant = Instant::now();
    let query = req.uri().query().map(str::to_string);
    let path_q = match &query {
        Some(query) => format!("{path}?{query}"),
        None => path.clone(),
    };
    let original_url = format!("{}{}", shared.base_url, path_q);
    let method = req.method().to_string();
    let auth_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let auth = AuthKind::of(auth_header.as_deref());

    // Token endpoint: keep the (small) form body to record the call without its secrets.
    let (req, token_fields) = if service == Service::Token {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20)
            .await
            .unwrap_or_default();
        let fields = redacted_form(&bytes);
        (Request::from_parts(parts, Body::from(bytes)), Some(fields))
    } else {
        (req, None)
    };

    let faults = take_matching(&shared, service, &path_q);
    let mut delay_ms = 0u64;
    let mut page_size: Option<usize> = None;
    let mut cut: Option<usize> = None;
    let mut retry_after_200: Option<u64> = None;
    let mut fic_propagation_secs: Option<u64> = None;
    let mut answer: Option<&Fault> = None;
    for fault in &faults {
        match fault {
            Fault::Delay { ms } => delay_ms = delay_ms.saturating_add(*ms),
            Fault::PageSize { n: cap } => {
                page_size = Some(page_size.map_or(*cap, |current| current.min(*cap)).max(1))
            }
            Fault::CutBody { after_bytes } => {
                cut = Some(cut.map_or(*after_bytes, |current| current.min(*after_bytes)))
            }
            Fault::RetryAfterOn200 { secs } => retry_after_200 = Some(*secs),
            Fault::FicPropagation { secs } => {
                fic_propagation_secs = Some(fic_propagation_secs.unwrap_or(0).max(*secs))
            }
            other if other.replaces_answer() && answer.is_none() => answer = Some(other),
            _ => {}
        }
    }
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }

    let mut resp = match answer {
        Some(fault) => answer_fault(&shared, service, fault, &path, &original_url),
        None => {
            let mut req = req;
            req.extensions_mut().insert(RequestFaults {
                page_size,
                fic_propagation_secs,
            });
            next.run(req).await
        }
    };
    if let Some(secs) = retry_after_200 {
        if resp.status().is_success() {
            http::add_rate_limit_headers(resp.headers_mut(), secs, true);
        }
    }

    let (mut parts, body) = resp.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let status = parts.status.as_u16();

    if let Some(fields) = token_fields {
        let (basic_auth, fields) = (auth == AuthKind::Basic, fields);
        let error_code = if status >= 400 {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|body| {
                    body.get("error_codes")
                        .and_then(|codes| codes.get(0))
                        .and_then(|code| code.as_u64())
                })
                .map(|code| code as u32)
        } else {
            None
        };
        let mut records = shared.token_requests.lock();
        if records.len() >= MAX_LOGGED {
            records.drain(..MAX_LOGGED / 10);
        }
        records.push(TokenRequestRecord {
            tenant: path
                .strip_prefix("/login/")
                .and_then(|rest| rest.split('/').next())
                .map(percent_decode)
                .unwrap_or_default(),
            fields,
            basic_auth,
            status,
            error_code,
            received_at,
        });
    }

    let mut log = shared.request_log.lock();
    if log.len() >= MAX_LOGGED {
        log.drain(..MAX_LOGGED / 10);
    }
    log.push(LoggedRequest {
        method,
        path: path.clone(),
        query,
        status,
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string),
        body: bytes.to_vec(),
        auth,
        has_authorization: auth_header.is_some(),
        service,
        received_at,
        received_instant,
        elapsed_ms: received_instant.elapsed().as_millis() as u64,
        faults: faults.iter().map(|fault| format!("{fault:?}")).collect(),
    });
    drop(log);
    tracing::debug!(status, path = %path, faults = faults.len(), "emulator answered");

    match cut {
        Some(cut_at) if cut_at < bytes.len() => {
            let total = bytes.len();
            let head = bytes.slice(0..cut_at);
            // Let hyper flush the headers and the first bytes before the connection is dropped.
            let stream = futures_util::StreamExt::chain(
                futures_util::stream::iter(vec![Ok::<Bytes, std::io::Error>(head)]),
                futures_util::stream::once(async {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "emulator: connection dropped (CutBody fault)",
                    ))
                }),
            );
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(total));
            Response::from_parts(parts, Body::from_stream(stream))
        }
        _ => Response::from_parts(parts, Body::from(bytes)),
    }
}

fn redacted_form(bytes: &[u8]) -> BTreeMap<String, String> {
    form_urlencoded::parse(bytes)
        .map(|(key, value)| {
            let value = match key.as_ref() {
                "client_secret" | "client_assertion" | "password" | "refresh_token" => {
                    "<redacted>".to_string()
                }
                _ => value.into_owned(),
            };
            (key.into_owned(), value)
        })
        .collect()
}

/// 404 for anything the emulator does not serve.
pub(crate) async fn not_found() -> Response<Body> {
    http::response(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        "The resource cannot be found.",
    )
}
