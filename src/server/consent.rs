//! `GET /admin-consent/callback`: where Entra ID sends the tenant's admin
//! back after the admin-consent link (`{authority}/{tenant}/adminconsent`).
//! The `state` must be one the hub made for a provider, less than an hour
//! ago, and is accepted once; only a signed-in hub admin completes it.

use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::AppState;
use spicehub_core::auth::AuthUser;

pub use spicehub_routes::CONSENT_CALLBACK as PATH;

#[derive(Deserialize)]
pub struct ConsentAnswer {
    tenant: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn page(status: StatusCode, message: &str) -> Response {
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    (
        status,
        Html(format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Admin consent · spicehub</title>\
             <link rel=\"stylesheet\" href=\"/pkg/spicehub.css\"></head><body><main id=\"main\" class=\"narrow\">\
             <section class=\"error-panel\" role=\"alert\"><h1>Admin consent not recorded</h1><p>{escaped}</p>\
             <p><a href=\"/providers\">Back to Git Providers</a></p></section></main></body></html>"
        )),
    )
        .into_response()
}

pub async fn callback(
    State(state): State<AppState>,
    Query(answer): Query<ConsentAnswer>,
    request: Request,
) -> Response {
    match request.extensions().get::<AuthUser>() {
        Some(user) if user.is_admin() => {}
        _ => {
            return page(
                StatusCode::FORBIDDEN,
                "Only a hub admin can complete an admin consent. Sign in as an admin and open the link again.",
            )
        }
    }
    let Some(consent_state) = answer.state.as_deref().filter(|s| !s.is_empty()) else {
        return page(
            StatusCode::BAD_REQUEST,
            "The answer carries no state: open the provider and use its admin-consent link.",
        );
    };
    let error = answer
        .error
        .as_deref()
        .map(|e| match answer.error_description.as_deref() {
            Some(d) => format!("{e}: {d}"),
            None => e.to_owned(),
        });
    match spicehub_core::admin::providers::complete_consent(
        &state.hub,
        consent_state,
        answer.tenant.as_deref(),
        error.as_deref(),
    )
    .await
    {
        Ok((id, None)) => Redirect::to(&format!("/providers/{id}?consent=granted")).into_response(),
        Ok((id, Some(error))) => {
            let reason: String = url::form_urlencoded::byte_serialize(error.as_bytes()).collect();
            Redirect::to(&format!("/providers/{id}?consent=refused&reason={reason}"))
                .into_response()
        }
        Err(message) => page(StatusCode::BAD_REQUEST, &message),
    }
}
