//! Who is asking: the client address every later layer uses (the peer, or
//! what a trusted reverse proxy forwarded), put in the request's
//! extensions as `ClientAddr`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use spicehub_core::auth::ClientAddr;
use spicehub_core::config::Network;

pub async fn client_address(
    State(network): State<Arc<Network>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let forwarded: Vec<&str> = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let client = network.client_address(peer, forwarded.into_iter());
    request.extensions_mut().insert(ClientAddr(client));
    next.run(request).await
}
