//! The admin pages' server functions and the views they return. Every
//! function checks that the caller is an admin, then hands over to
//! `spicehub_core::admin`, where the logic lives (shared with the command line).
//! Secrets go in (a client secret, a webhook password) but never come back
//! out, except a freshly generated webhook password, returned once to the
//! browser that asked for it.

// The Azure DevOps form is one server function with one argument per field
// (so it is also a plain HTML form post).
#![allow(clippy::too_many_arguments)]

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// A form field with a problem, by the field's `name`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// A diagnosis as the pages show it: what went wrong, what to do, and the
/// form field it concerns (`tenant`, `client_id`, `secret`, `certificate`,
/// `pat`, `organization`, `project`, `repository`, `network`, `hub`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DiagnosisView {
    pub code: String,
    pub title: String,
    pub hint: String,
    pub field: String,
}

/// Why an admin call failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Message(String),
    #[error("Some fields need attention.")]
    Fields(Vec<FieldError>),
    #[error("{}: {}", .0.title, .0.hint)]
    Diagnosed(DiagnosisView),
}

impl AdminError {
    /// The message for one field, if it has one.
    pub fn field(&self, name: &str) -> Option<String> {
        match self {
            AdminError::Fields(list) => list
                .iter()
                .find(|f| f.field == name)
                .map(|f| f.message.clone()),
            _ => None,
        }
    }
}

impl FromServerFnError for AdminError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AdminError::Message(match value {
            ServerFnErrorErr::ServerError(m) => m,
            other => format!(
                "The hub could not be reached ({other}). Check your connection and try again."
            ),
        })
    }
}

/// The outcome of the last **Test connection**.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckView {
    /// When, formatted (UTC).
    pub at: String,
    pub ok: bool,
    pub token_ok: bool,
    pub organization: String,
    pub projects: usize,
    pub repositories: usize,
    pub diagnosis: Option<DiagnosisView>,
}

/// A provider without its secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderView {
    pub id: String,
    pub display_name: String,
    /// `app_registration` or `hub_app`.
    pub onboarding: String,
    pub tenant_id: String,
    pub client_id: String,
    /// `client_secret`, `certificate`, `pat` or `hub_app`.
    pub credential_kind: String,
    /// "Client secret", "Certificate", ...
    pub credential_label: String,
    pub deprecated: bool,
    /// "set on 2026-11-23" (the value itself is never shown).
    pub credential_set: Option<String>,
    /// `YYYY-MM-DD`.
    pub secret_expires: Option<String>,
    /// Set from 30 days before the expiry date.
    pub expiry_warning: Option<String>,
    pub last_token: Option<String>,
    pub last_check: Option<CheckView>,
    pub organization: String,
    pub organizations: Vec<String>,
    pub repositories: usize,
    pub webhook_username: String,
    pub webhook_url: String,
    /// `hub_app`: when the tenant's admin consented.
    pub consented: Option<String>,
    /// `hub_app` without consent yet: the link to send to the tenant's admin.
    pub consent_link: Option<String>,
}

/// What the new-provider form starts with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderDefaults {
    pub webhook_url: String,
    pub webhook_username: String,
    /// The hub's multi-tenant app is configured (admin-consent model).
    pub hub_app_client_id: Option<String>,
    /// Where the admin-consent flow returns (to register on the hub's app).
    pub consent_redirect_uri: String,
}

/// One repository as the service principal sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteRepo {
    pub id: String,
    pub name: String,
    pub default_branch: Option<String>,
    /// "1.2 MB".
    pub size: Option<String>,
    /// Why it cannot be added (empty, disabled), if so.
    pub unavailable: Option<String>,
    pub added: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteProject {
    pub id: String,
    pub name: String,
    pub repositories: Vec<RemoteRepo>,
    pub diagnosis: Option<DiagnosisView>,
}

/// An organization's projects and repositories, for the picker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgListing {
    pub organization: String,
    pub projects: Vec<RemoteProject>,
}

/// One row of the Repositories tab.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RepoRow {
    pub id: String,
    pub provider_id: String,
    pub organization: String,
    pub project: String,
    pub name: String,
    /// `main` (short name).
    pub branch: String,
    pub commit: Option<String>,
    pub commit_short: Option<String>,
    pub commit_url: Option<String>,
    pub web_url: Option<String>,
    pub last_synced: Option<String>,
    /// `queued`, `syncing`, `in_sync`, `failed`, `disabled`.
    pub state: String,
    pub state_label: String,
    /// What a running job is doing ("downloading", "parsing", ...).
    pub phase: Option<String>,
    pub progress_done: Option<i64>,
    pub progress_total: Option<i64>,
    pub error: Option<String>,
    pub diagnosis: Option<DiagnosisView>,
    pub note: Option<String>,
    pub last_webhook: Option<String>,
}

/// One webhook delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub at: String,
    pub provider: String,
    pub event: String,
    pub repository: Option<String>,
    /// `queued` or `ignored`.
    pub result: String,
    pub reason: Option<String>,
}

/// A repository's service hook, as the deliveries page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookRepo {
    pub id: String,
    pub organization: String,
    pub project: String,
    pub name: String,
    pub branch: String,
    /// The subscription the hub created, and its status, if any.
    pub hook_status: Option<String>,
}

/// The values to paste into Azure DevOps for one provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookSetup {
    pub provider_id: String,
    pub display_name: String,
    pub url: String,
    pub username: String,
    pub repositories: Vec<HookRepo>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookOverview {
    pub setups: Vec<HookSetup>,
    pub deliveries: Vec<DeliveryRow>,
    pub last_test: Option<String>,
}

#[cfg(feature = "ssr")]
pub mod ssr;

#[server(prefix = "/api", endpoint = "admin/providers")]
pub async fn list_providers() -> Result<Vec<ProviderView>, AdminError> {
    ssr::require_admin()?;
    let state = ssr::state()?;
    ssr::provider_views(&state).await.map_err(ssr::internal)
}

#[server(prefix = "/api", endpoint = "admin/provider")]
pub async fn get_provider(id: String) -> Result<ProviderView, AdminError> {
    ssr::require_admin()?;
    let state = ssr::state()?;
    match ssr::provider_view(&state, &id).await {
        Ok(Some(v)) => Ok(v),
        Ok(None) => {
            crate::api::session::set_status(http::StatusCode::NOT_FOUND.as_u16());
            Err(AdminError::Message("No such Git provider.".into()))
        }
        Err(e) => Err(ssr::internal(e)),
    }
}

#[server(prefix = "/api", endpoint = "admin/provider_defaults")]
pub async fn get_provider_defaults() -> Result<ProviderDefaults, AdminError> {
    ssr::require_admin()?;
    let state = ssr::state()?;
    Ok(ssr::provider_defaults(&state))
}

/// Saves the Azure DevOps form (a new provider when `id` is empty). With
/// `intent` = `test`, runs **Test connection** right after saving; its
/// outcome is stored with the provider and shown by the form.
#[server(prefix = "/api", endpoint = "admin/save_provider")]
pub async fn save_provider(
    id: Option<String>,
    display_name: String,
    onboarding: Option<String>,
    tenant_id: String,
    client_id: Option<String>,
    credential_kind: Option<String>,
    client_secret: Option<String>,
    certificate: Option<String>,
    private_key: Option<String>,
    pat: Option<String>,
    secret_expires: Option<String>,
    organization: String,
    webhook_username: String,
    webhook_password: Option<String>,
    intent: Option<String>,
) -> Result<Option<CheckView>, AdminError> {
    use spicehub_core::admin::providers::{save, ProviderInput};
    let user = ssr::require_admin()?;
    let state = ssr::state()?;
    let input = ProviderInput {
        id: id.filter(|s| !s.trim().is_empty()),
        display_name,
        onboarding: onboarding.unwrap_or_default(),
        tenant_id,
        client_id: client_id.unwrap_or_default(),
        credential_kind: credential_kind.unwrap_or_default(),
        client_secret,
        certificate,
        private_key,
        pat,
        secret_expires,
        organization,
        webhook_username,
        webhook_password,
    };
    let created = input.id.is_none();
    let saved = save(&state, &input).await?;
    tracing::info!(user = %user.email, provider = %saved, created, "provider saved");
    let check = if intent.as_deref() == Some("test") {
        Some(
            ssr::test_connection(&state, &saved)
                .await
                .map_err(ssr::internal)?,
        )
    } else {
        None
    };
    if created {
        leptos_axum::redirect(&format!("/providers/{saved}"));
    }
    Ok(check)
}

/// Runs **Test connection** for a saved provider.
#[server(prefix = "/api", endpoint = "admin/test_provider")]
pub async fn test_provider(id: String) -> Result<CheckView, AdminError> {
    ssr::require_admin()?;
    let state = ssr::state()?;
    ssr::test_connection(&state, &id)
        .await
        .map_err(ssr::internal)
}

/// A fresh webhook password for the form (shown once, in the browser that
/// asked; the hub keeps it only once the form is saved).
#[server(prefix = "/api", endpoint = "admin/generate_password")]
pub async fn generate_password() -> Result<String, AdminError> {
    ssr::require_admin()?;
    Ok(spicehub_core::db::providers::generate_webhook_password())
}

#[server(prefix = "/api", endpoint = "admin/delete_provider")]
pub async fn delete_provider(id: String) -> Result<(), AdminError> {
    let user = ssr::require_admin()?;
    let state = ssr::state()?;
    state.db.delete_provider(&id).await.map_err(ssr::internal)?;
    state.connections.forget(&id);
    tracing::info!(user = %user.email, provider = %id, "provider removed");
    leptos_axum::redirect("/providers");
    Ok(())
}

/// The projects and repositories the provider's service principal sees in
/// an organization.
#[server(prefix = "/api", endpoint = "admin/browse")]
pub async fn browse_organization(
    provider_id: String,
    organization: String,
) -> Result<OrgListing, AdminError> {
    ssr::require_admin()?;
    let state = ssr::state()?;
    ssr::browse(&state, &provider_id, &organization).await
}

/// Adds the chosen repositories (`repo[id-<repository id>]` = project id) and
/// every available repository of the chosen projects (`project[id-<id>]`;
/// the `id-` prefix keeps a GUID that starts with digits from being read
/// as an array index),
/// queues their first replication, and goes to the Repositories tab.
#[server(prefix = "/api", endpoint = "admin/add_repositories")]
pub async fn add_repositories(
    provider_id: String,
    organization: String,
    repo: Option<BTreeMap<String, String>>,
    project: Option<BTreeMap<String, String>>,
) -> Result<usize, AdminError> {
    let user = ssr::require_admin()?;
    let state = ssr::state()?;
    let added = spicehub_core::admin::providers::add_selected(
        &state,
        &provider_id,
        &organization,
        &repo.unwrap_or_default(),
        &project.unwrap_or_default(),
    )
    .await?;
    tracing::info!(user = %user.email, provider = %provider_id, added, "repositories added");
    leptos_axum::redirect("/repositories");
    Ok(added)
}

#[server(prefix = "/api", endpoint = "admin/repositories")]
pub async fn list_repositories() -> Result<Vec<RepoRow>, AdminError> {
    ssr::require_admin()?;
    let state = ssr::state()?;
    ssr::repository_rows(&state.db).await.map_err(ssr::internal)
}

/// A manual action on a repository: `entire`, `recent`, `from_commit`
/// (with `commit`) or `reparse`. Returns what was queued, in words.
#[server(prefix = "/api", endpoint = "admin/repository_action")]
pub async fn repository_action(
    id: String,
    action: String,
    commit: Option<String>,
) -> Result<String, AdminError> {
    let user = ssr::require_admin()?;
    let state = ssr::state()?;
    let message = ssr::repository_action(&state, &id, &action, commit.as_deref()).await?;
    tracing::info!(user = %user.email, repository = %id, %action, "manual sync queued");
    Ok(message)
}

#[server(prefix = "/api", endpoint = "admin/remove_repository")]
pub async fn remove_repository(id: String) -> Result<(), AdminError> {
    let user = ssr::require_admin()?;
    let state = ssr::state()?;
    let removed = state
        .db
        .delete_repository(&id)
        .await
        .map_err(ssr::internal)?;
    if !removed {
        return Err(AdminError::Message(
            "This repository was already removed.".into(),
        ));
    }
    tracing::info!(user = %user.email, repository = %id, "repository removed");
    leptos_axum::redirect("/repositories");
    Ok(())
}

#[server(prefix = "/api", endpoint = "admin/webhooks")]
pub async fn get_webhook_overview() -> Result<WebhookOverview, AdminError> {
    ssr::require_admin()?;
    let state = ssr::state()?;
    ssr::webhook_overview(&state).await.map_err(ssr::internal)
}

/// **Create the webhook for me**: the service hook subscription of one
/// repository, created as the service principal.
#[server(prefix = "/api", endpoint = "admin/create_webhook")]
pub async fn create_webhook(repository_id: String) -> Result<String, AdminError> {
    let user = ssr::require_admin()?;
    let state = ssr::state()?;
    let message =
        spicehub_core::admin::webhooks::create_webhook_for(&state, &repository_id).await?;
    tracing::info!(user = %user.email, repository = %repository_id, "service hook created");
    Ok(message)
}
