//! `/healthz`: is the hub able to serve, i.e. does its database answer and
//! is the webhook writer running (without it every delivery gets 503).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;

pub async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let database = match state.db.ping().await {
        Ok(()) => "ok",
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            "unreachable"
        }
    };
    let writer = state.ingest.health();
    let webhook_writer = if writer.running() { "ok" } else { "restarting" };
    let healthy = database == "ok" && webhook_writer == "ok";
    (
        if healthy {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(json!({
            "status": if healthy { "ok" } else { "unavailable" },
            "database": database,
            "webhook_writer": webhook_writer,
            "webhook_writer_restarts": writer.restarts(),
        })),
    )
}
