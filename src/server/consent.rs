//! `GET /admin-consent/callback`: where Entra ID sends the tenant's admin
//! back after the admin-consent link (`{authority}/{tenant}/adminconsent`).
//! The `state` must be one the hub made for a provider, less than an hour
//! ago, and is accepted once. Whoever holds it completes it (the tenant's
//! admin has no hub account); a signed-in hub admin is taken back to the
//! provider, anyone else gets a plain page.

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

/// A page of its own (not the app's shell): the tenant's admin who lands
/// here usually has no hub account, so it links back to the hub only for a
/// signed-in hub admin.
fn page(status: StatusCode, heading: &str, message: &str, hub_admin: bool) -> Response {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let (heading, message) = (escape(heading), escape(message));
    let (class, role) = if status.is_success() {
        ("card", "status")
    } else {
        ("error-panel", "alert")
    };
    let back = if hub_admin {
        "<p><a href=\"/providers\">Back to Git Providers</a></p>"
    } else {
        ""
    };
    (
        status,
        Html(format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{heading} · spicehub</title>\
             <link rel=\"stylesheet\" href=\"/pkg/spicehub.css\"></head><body><main id=\"main\" class=\"narrow\">\
             <section class=\"{class}\" role=\"{role}\"><h1>{heading}</h1><p>{message}</p>{back}</section></main></body></html>"
        )),
    )
        .into_response()
}

const NOT_RECORDED: &str = "Admin consent not recorded";

/// Completes for whoever consented: the customer's tenant admin is not a
/// hub user. The single-use `state` (bound to one provider and the tenant
/// the link was made for, valid one hour) is the authority, not a session.
pub async fn callback(
    State(state): State<AppState>,
    Query(answer): Query<ConsentAnswer>,
    request: Request,
) -> Response {
    let hub_admin = request
        .extensions()
        .get::<AuthUser>()
        .is_some_and(|u| u.is_admin());
    let Some(consent_state) = answer.state.as_deref().filter(|s| !s.is_empty()) else {
        return page(
            StatusCode::BAD_REQUEST,
            NOT_RECORDED,
            "The answer carries no state: use the admin-consent link your hub administrator sent.",
            hub_admin,
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
        Ok((id, None)) if hub_admin => {
            Redirect::to(&format!("/providers/{id}?consent=granted")).into_response()
        }
        Ok((_, None)) => page(
            StatusCode::OK,
            "Consent recorded",
            "Thank you: the consent was recorded, and your hub administrator can continue. You can close this page.",
            false,
        ),
        Ok((id, Some(error))) if hub_admin => {
            let reason: String = url::form_urlencoded::byte_serialize(error.as_bytes()).collect();
            Redirect::to(&format!("/providers/{id}?consent=refused&reason={reason}"))
                .into_response()
        }
        Ok((_, Some(error))) => page(
            StatusCode::OK,
            "Consent not granted",
            &format!(
                "Microsoft Entra ID answered: {error}. Nothing was recorded; your hub administrator can send a new link."
            ),
            false,
        ),
        Err(message) => page(StatusCode::BAD_REQUEST, NOT_RECORDED, &message, hub_admin),
    }
}
