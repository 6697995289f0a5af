//! The hub as an OpenID Connect issuer, for Entra ID: the discovery
//! document and the keys (`spicehub_core::issuer`). Anonymous, small,
//! answered from memory or one cached database read, and cacheable by
//! whoever fetches them: a key is published a day before it signs, so a
//! few minutes of caching never hides one that is in use.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::AppState;

const CACHE: HeaderValue = HeaderValue::from_static("public, max-age=300");

pub async fn discovery(State(state): State<AppState>) -> Response {
    let mut response = Json(state.hub.issuer.discovery()).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, CACHE);
    response
}

pub async fn jwks(State(state): State<AppState>) -> Response {
    match state.hub.issuer.jwks().await {
        Ok(keys) => {
            let mut response = Json(keys.as_ref().clone()).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, CACHE);
            response
        }
        Err(error) => {
            tracing::error!(%error, "the issuer's keys could not be read");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "The issuer's keys cannot be read right now; try again.\n",
            )
                .into_response()
        }
    }
}
