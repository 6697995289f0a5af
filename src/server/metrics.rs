//! Prometheus metrics. A registry per server (not a process-global one), so
//! several servers in one test process do not share counters.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::AppState;
use secrecy::ExposeSecret;
use spicehub_core::auth::ClientAddr;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// One of the standard methods or `other`: hyper accepts any token as
    /// a method, and a label set is kept for the life of the process.
    pub method: &'static str,
    /// The route pattern, never the raw path, so ids do not explode the
    /// number of series.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: &'static str,
    pub route: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    /// Reads of the providers' webhook credentials from the database.
    pub webhook_credential_reads: Counter,
    /// Connections open now (bounded by `SPICEHUB_MAX_CONNECTIONS`).
    pub open_connections: Gauge,
    /// `dot` processes started (brought up to date when scraped).
    dot_runs: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        registry.register(
            "spicehub_http_requests",
            "HTTP requests answered",
            requests.clone(),
        );
        registry.register(
            "spicehub_http_request_duration_seconds",
            "Time to answer an HTTP request",
            latency.clone(),
        );
        let webhook_credential_reads = Counter::default();
        registry.register(
            "spicehub_webhook_credential_reads",
            "Reads of the webhook credentials from the database",
            webhook_credential_reads.clone(),
        );
        let open_connections = Gauge::default();
        registry.register(
            "spicehub_http_open_connections",
            "HTTP connections open now",
            open_connections.clone(),
        );
        let dot_runs = Counter::default();
        registry.register(
            "spicehub_graph_dot_runs",
            "Graphviz dot processes started to lay out graphs",
            dot_runs.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            webhook_credential_reads,
            open_connections,
            dot_runs,
        }
    }
}

/// The method as a label: the standard ones by name, anything else `other`.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(&Method, &str); 9] = [
        (&Method::GET, "GET"),
        (&Method::HEAD, "HEAD"),
        (&Method::POST, "POST"),
        (&Method::PUT, "PUT"),
        (&Method::DELETE, "DELETE"),
        (&Method::PATCH, "PATCH"),
        (&Method::OPTIONS, "OPTIONS"),
        (&Method::CONNECT, "CONNECT"),
        (&Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(m, _)| *m == method)
        .map_or("other", |(_, label)| label)
}

pub async fn record(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = match request.extensions().get::<MatchedPath>() {
        Some(p) => p.as_str().to_owned(),
        None if request.uri().path().starts_with("/pkg/") => "/pkg/{file}".to_owned(),
        None => "unmatched".to_owned(),
    };
    let response = next.run(request).await;
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route: route.clone(),
            status: response.status().as_u16(),
        })
        .inc();
    metrics
        .latency
        .get_or_create(&RouteLabels { method, route })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// `/metrics` shows traffic and routes: only the addresses in
/// `SPICEHUB_METRICS_ALLOW` or a holder of `SPICEHUB_METRICS_TOKEN` see it;
/// anyone else gets 404, as if there were nothing.
fn may_read(state: &AppState, client: Option<ClientAddr>, headers: &HeaderMap) -> bool {
    let network = &state.config.network;
    if client.is_some_and(|ClientAddr(ip)| network.may_read_metrics(ip)) {
        return true;
    }
    let Some(token) = &network.metrics_token else {
        return false;
    };
    let offered = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    subtle::ConstantTimeEq::ct_eq(offered.as_bytes(), token.expose_secret().as_bytes()).into()
}

pub async fn render(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
) -> Response {
    if !may_read(&state, client.map(|Extension(c)| c), &headers) {
        return StatusCode::NOT_FOUND.into_response();
    }
    // The graph code counts in a process-wide counter; caught up here.
    let dot_runs = &state.metrics.dot_runs;
    dot_runs.inc_by(spicehub_core::graph::dot_runs_total().saturating_sub(dot_runs.get()));
    let mut body = String::new();
    if encode(&mut body, &state.metrics.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
}
