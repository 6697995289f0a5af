//! The accept loop. `axum::serve` has no header-read timeout and no cap on
//! connections, so a few thousand clients that open a connection and send
//! one byte a minute would hold the hub. Here every connection gets a
//! bounded time to send its headers (`SPICEHUB_HEADER_TIMEOUT_SECS`), and
//! at most `SPICEHUB_MAX_CONNECTIONS` are served at once: further clients
//! wait in the kernel's listen queue until one ends. Shutdown stops
//! accepting and lets the connections in flight finish their requests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use spicehub_core::config::Network;

/// How long connections in flight get to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

pub async fn serve(
    listener: TcpListener,
    app: Router,
    network: &Network,
    open_connections: Gauge,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(network.header_timeout);
    let slots = Arc::new(Semaphore::new(network.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A slot first, then accept: past the cap, clients wait in the
        // listen queue instead of holding memory here.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = app
            .clone()
            .map_request(move |mut request: axum::http::Request<Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
                request
            });
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        let open = open_connections.clone();
        open.inc();
        tokio::spawn(async move {
            // Errors here are the client's (reset, timeout): nothing to do.
            let _ = connection.await;
            open.dec();
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open {DRAIN:?} after shutdown; closing them");
    }
}
