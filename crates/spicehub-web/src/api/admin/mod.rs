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
    /// `client_secret`, `certificate`, `pat`, `federated` or `hub_app`.
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
    /// After a change of webhook password: until when the previous one is
    /// still accepted.
    pub previous_password_until: Option<String>,
    /// The Subject of the provider's federated credential: the stored one
    /// for a `federated` provider; for the other kinds the one the provider
    /// would get (`spicehub:provider:<provider id>`), so that switching to
    /// a federated credential shows a value that stays the same from one
    /// load of the form to the next. `None` only when a federated
    /// provider's stored subject could not be read (the form then offers
    /// a fresh one).
    pub federated_subject: Option<String>,
    /// What this hub has seen of the identity's Azure DevOps rate limit,
    /// one per organization it talked to since it started.
    pub rate_limits: Vec<RateLimitView>,
}

/// An identity's Azure DevOps budget in one organization, in words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitView {
    pub organization: String,
    /// "142 of 200 TSTUs left ..." or why there is no figure yet.
    pub budget: String,
    /// When and why the hub last slowed its requests down.
    pub slowed: Option<String>,
    /// Waits, their total, 429 answers, answers.
    pub counts: String,
}

/// One step of a provider's setup checklist, ticked by what the hub observed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupStep {
    /// Stable name for tests and styles (`token`, `member`, ...).
    pub key: String,
    /// The step in the portal's own words.
    pub title: String,
    pub done: bool,
    /// What the hub saw (or what is missing), in words.
    pub detail: String,
    /// Where in the portal to do it: (link text, URL).
    pub link: Option<(String, String)>,
}

/// What the provider page polls: the consent (hub app) and the checklist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupProgress {
    pub consented: Option<String>,
    pub tenant_id: String,
    /// The name and client ID to search for in Azure DevOps › Users.
    pub app_name: String,
    pub client_id: String,
    pub steps: Vec<SetupStep>,
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
    /// Why Azure DevOps cannot reach the hub's public URL, or would send
    /// the webhook password in clear over it (http, localhost).
    pub public_url_warnings: Vec<String>,
    /// A federated credential's Issuer: the hub's OpenID Connect issuer
    /// (its public URL without the trailing slash).
    pub issuer: String,
    /// A federated credential's Audience (`api://AzureADTokenExchange`).
    pub federated_audience: String,
    /// A fresh Subject (`spicehub:provider:<uuid>`) for a new provider,
    /// made anew at each load of the form.
    pub new_federated_subject: String,
    /// The public URL is HTTPS on a public host: Entra ID can fetch the
    /// hub's keys, so the federated credential is offered first.
    pub federated_recommended: bool,
    /// Why Entra ID could not reach the issuer from this public URL.
    pub federated_problem: Option<String>,
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

/// A project of the organization, listed before its repositories.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectHead {
    pub id: String,
    pub name: String,
}

/// An organization's projects, for the picker; each project's repositories
/// arrive separately ([`browse_project`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectList {
    pub organization: String,
    pub projects: Vec<ProjectHead>,
    /// What to show when every project turns out to hold no repository the
    /// service principal can see.
    pub none_visible: DiagnosisView,
}

/// One project's repositories, or why they could not be listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectRepos {
    pub repositories: Vec<RemoteRepo>,
    pub diagnosis: Option<DiagnosisView>,
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
    /// What the last synced commit changed (a diff, or its timeline entry).
    #[serde(default)]
    pub changes: Option<String>,
    pub last_webhook: Option<String>,
    /// The branch is Azure DevOps' default branch and moves with it.
    pub follows_default: bool,
    /// The last sync failed because the tracked branch is gone: the row
    /// points to "Change tracked branch…".
    pub branch_missing: bool,
}

/// What "Change tracked branch…" offers for one repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchChoicesView {
    pub id: String,
    /// `organization/project/repository`.
    pub repository: String,
    /// The tracked branch now (short name).
    pub branch: String,
    pub follows_default: bool,
    /// Azure DevOps' default branch now, if the repository has one.
    pub default_branch: Option<String>,
    /// Every branch in Azure DevOps (short names), sorted.
    pub branches: Vec<String>,
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
    /// What the pushed commit changed, once it is synced and kept.
    #[serde(default)]
    pub changes: Option<String>,
}

/// A repository's service hook, as the deliveries page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookRepo {
    pub id: String,
    pub organization: String,
    pub project: String,
    pub name: String,
    pub branch: String,
    /// The subscription the hub created, and what its status means, if any.
    pub hook_status: Option<String>,
    /// That subscription is enabled.
    pub hook_enabled: bool,
}

/// The values to paste into Azure DevOps for one provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookSetup {
    pub provider_id: String,
    pub display_name: String,
    pub url: String,
    pub username: String,
    pub repositories: Vec<HookRepo>,
    /// Deliveries with this user name refused for a wrong password.
    pub refused: Option<RefusalView>,
}

/// Refused webhook deliveries, in aggregate (`db::refusals`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalView {
    pub count: i64,
    pub first_at: String,
    pub last_at: String,
    pub last_address: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookOverview {
    pub setups: Vec<HookSetup>,
    pub deliveries: Vec<DeliveryRow>,
    pub last_test: Option<String>,
    /// Refused deliveries with no credentials or a user name no provider uses.
    pub unknown_refused: Option<RefusalView>,
}

/// A service hook the hub created that a removal could not delete in Azure
/// DevOps, with the project's Service hooks page to delete it by hand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookLeftView {
    /// `organization/project/repository`.
    pub repository: String,
    pub subscription_id: String,
    pub reason: String,
    pub service_hooks_url: String,
}

/// What a removal did (one repository, or a provider with its repositories).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovalView {
    pub repositories: usize,
    pub hooks_deleted: usize,
    pub hooks_left: Vec<HookLeftView>,
}

/// What deleting a provider would remove, for its confirmation page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRemovalPlanView {
    pub id: String,
    pub display_name: String,
    /// `organization/project/repository`.
    pub repositories: Vec<String>,
    /// Service hooks the hub created for them.
    pub hooks: usize,
}

/// `1.2 MB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
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

/// The live setup checklist of a provider (and its consent), polled by its
/// page: cheap reads only, and no consent link is made here.
#[server(prefix = "/api", endpoint = "admin/setup_progress")]
pub async fn get_setup_progress(id: String) -> Result<SetupProgress, AdminError> {
    ssr::require_admin()?;
    let state = ssr::state()?;
    match ssr::setup_progress(&state, &id).await {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(AdminError::Message("No such Git provider.".into())),
        Err(e) => Err(ssr::internal(e)),
    }
}

#[server(prefix = "/api", endpoint = "admin/provider_defaults")]
pub async fn get_provider_defaults() -> Result<ProviderDefaults, AdminError> {
    ssr::require_admin()?;
    let state = ssr::state()?;
    Ok(ssr::provider_defaults(&state))
}

/// What the Azure DevOps form's buttons did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormOutcome {
    /// Save: the provider's id (it was stored).
    pub saved: Option<String>,
    /// Test connection: what the values in the form gave (nothing stored).
    pub check: Option<CheckView>,
    /// Save: what else it did (a new webhook password sent to the hooks).
    pub notes: Vec<String>,
}

/// The Azure DevOps form's two buttons. `intent` = `save` stores it (a new
/// provider when `id` is empty); `intent` = `test` runs **Test connection**
/// with the values as typed and stores nothing, so trying a secret cannot
/// overwrite the working one.
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
    federated_subject: Option<String>,
    secret_expires: Option<String>,
    organization: String,
    webhook_username: String,
    webhook_password: Option<String>,
    intent: Option<String>,
) -> Result<FormOutcome, AdminError> {
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
        federated_subject,
        secret_expires,
        organization,
        webhook_username,
        webhook_password,
    };
    if intent.as_deref() == Some("test") {
        let check = ssr::test_form(&state, &input).await?;
        return Ok(FormOutcome {
            saved: None,
            check: Some(check),
            notes: Vec::new(),
        });
    }
    let created = input.id.is_none();
    let saved = save(&state, &input).await?;
    tracing::info!(user = %user.email, provider = %saved.id, created, "provider saved");
    if created {
        leptos_axum::redirect(&format!("/providers/{}", saved.id));
    }
    Ok(FormOutcome {
        saved: Some(saved.id),
        check: None,
        notes: saved.notes,
    })
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

/// What deleting a provider would remove (its confirmation page).
#[server(prefix = "/api", endpoint = "admin/provider_removal")]
pub async fn provider_removal_plan(id: String) -> Result<ProviderRemovalPlanView, AdminError> {
    ssr::require_admin()?;
    let state = ssr::state()?;
    ssr::provider_removal_plan(&state, &id).await
}

/// Deletes a provider: the service hooks the hub created in Azure DevOps
/// (those it could not delete are returned, with where to delete them by
/// hand), then its repositories' data, its credential and the provider.
/// Goes back to the providers list when nothing was left behind.
#[server(prefix = "/api", endpoint = "admin/delete_provider")]
pub async fn delete_provider(id: String) -> Result<RemovalView, AdminError> {
    let user = ssr::require_admin()?;
    let state = ssr::state()?;
    let removed = spicehub_core::admin::providers::remove_provider(&state, &id).await;
    let removed = ssr::not_found_status(removed)?;
    tracing::info!(
        user = %user.email,
        provider = %removed.id,
        repositories = removed.repositories_removed,
        hooks_deleted = removed.hooks_deleted,
        hooks_left = removed.hooks_left.len(),
        "provider removed"
    );
    if removed.hooks_left.is_empty() {
        leptos_axum::redirect("/providers");
    }
    Ok(RemovalView {
        repositories: removed.repositories_removed,
        hooks_deleted: removed.hooks_deleted,
        hooks_left: ssr::hooks_left(removed.hooks_left),
    })
}

/// The projects the provider's service principal sees in an organization.
#[server(prefix = "/api", endpoint = "admin/browse_projects")]
pub async fn browse_projects(
    provider_id: String,
    organization: String,
) -> Result<ProjectList, AdminError> {
    ssr::require_admin()?;
    let state = ssr::state()?;
    ssr::browse_projects(&state, &provider_id, &organization).await
}

/// The repositories of one project, as the provider's service principal
/// sees them.
#[server(prefix = "/api", endpoint = "admin/browse_project")]
pub async fn browse_project(
    provider_id: String,
    organization: String,
    project_id: String,
) -> Result<ProjectRepos, AdminError> {
    ssr::require_admin()?;
    let state = ssr::state()?;
    ssr::browse_project(&state, &provider_id, &organization, &project_id).await
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
    let message = ssr::repository_action(&state, &id, &action, commit.as_deref())
        .await
        .inspect_err(|e| {
            // A refused field (a hash no commit has) is the caller's
            // mistake, not a server failure.
            if matches!(e, AdminError::Fields(_)) {
                crate::api::session::set_status(http::StatusCode::UNPROCESSABLE_ENTITY.as_u16());
            }
        })?;
    tracing::info!(user = %user.email, repository = %id, %action, "manual sync queued");
    Ok(message)
}

/// The repository's branches, listed from Azure DevOps, for "Change
/// tracked branch…".
#[server(prefix = "/api", endpoint = "admin/repository_branches")]
pub async fn repository_branches(id: String) -> Result<BranchChoicesView, AdminError> {
    ssr::require_admin()?;
    let state = ssr::state()?;
    ssr::branch_choices(&state, &id).await
}

/// Sets the tracked branch: `branch` empty (or absent) follows Azure
/// DevOps' default branch, otherwise that branch is kept whatever the
/// default. Queues a full sync of it and moves the branch filter of the
/// hub's service hooks. Goes back to the Repositories tab, unless a hook
/// could not be updated (then the message says which, on this page).
#[server(prefix = "/api", endpoint = "admin/set_tracked_branch")]
pub async fn set_tracked_branch(id: String, branch: Option<String>) -> Result<String, AdminError> {
    let user = ssr::require_admin()?;
    let state = ssr::state()?;
    let (message, all_hooks_moved) =
        ssr::change_tracked_branch(&state, &id, branch.as_deref()).await?;
    tracing::info!(user = %user.email, repository = %id, "tracked branch changed");
    if all_hooks_moved {
        leptos_axum::redirect("/repositories");
    }
    Ok(message)
}

/// Removes a repository: first the service hook the hub created for it in
/// Azure DevOps, then its data. A hook Azure DevOps refused to delete does
/// not stop the removal; it is returned (no redirect) so the page can say
/// where to delete it by hand.
#[server(prefix = "/api", endpoint = "admin/remove_repository")]
pub async fn remove_repository(id: String) -> Result<RemovalView, AdminError> {
    use spicehub_core::admin::AdminError as CoreError;
    let user = ssr::require_admin()?;
    let state = ssr::state()?;
    let removed = match spicehub_core::admin::repositories::remove_repository(&state, &id).await {
        Ok(removed) => removed,
        Err(CoreError::UnknownRepository) => {
            return Err(AdminError::Message(
                "This repository was already removed.".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(
        user = %user.email,
        repository = %removed.id,
        hooks_deleted = removed.hooks_deleted,
        hooks_left = removed.hooks_left.len(),
        "repository removed"
    );
    if removed.hooks_left.is_empty() {
        leptos_axum::redirect("/repositories");
    }
    Ok(RemovalView {
        repositories: 1,
        hooks_deleted: removed.hooks_deleted,
        hooks_left: ssr::hooks_left(removed.hooks_left),
    })
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
