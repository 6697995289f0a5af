//! The admin pages' server half: who may call, where the hub is, and the
//! view models the pages show, built from the domain values of
//! `spicehub_core::admin` (formatted times, labels, sizes). Errors of the
//! core's commands are mapped here, once, to what the admin reads.

use std::collections::{HashMap, HashSet};

use spicehub_azure::{AzureError, Diagnosis};
use spicehub_core::admin::providers::{client_error, valid_organization, CheckRecord};
use spicehub_core::admin::repositories::{active_jobs, request_sync};
use spicehub_core::admin::{AdminError as CoreError, DiagnosisRecord};
use spicehub_core::db::providers::{CredentialKind, Provider};
use spicehub_core::db::{now, Db, DbError};
use spicehub_core::sync::hooks::webhook_url;
use spicehub_core::sync::JobKind;
use spicehub_core::Hub;

use super::*;

impl From<DiagnosisRecord> for DiagnosisView {
    fn from(d: DiagnosisRecord) -> Self {
        DiagnosisView {
            code: d.code,
            title: d.title,
            hint: d.hint,
            field: d.field,
        }
    }
}

impl From<CoreError> for AdminError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Message(m) => AdminError::Message(m),
            CoreError::Fields(list) => AdminError::Fields(
                list.into_iter()
                    .map(|f| FieldError {
                        field: f.field,
                        message: f.message,
                    })
                    .collect(),
            ),
            CoreError::Diagnosed(d) => AdminError::Diagnosed(d.into()),
            CoreError::Azure(e) => AdminError::Diagnosed(error_view(&e)),
            CoreError::Connection(spicehub_core::connections::ConnectionError::Azure(e)) => {
                AdminError::Diagnosed(error_view(&e))
            }
            CoreError::Db(e) => internal(e),
            CoreError::Queue(e) => internal(e),
            CoreError::Provider(e) => internal(e),
            other => AdminError::Message(other.to_string()),
        }
    }
}

fn check_view(at: i64, r: CheckRecord) -> CheckView {
    CheckView {
        at: fmt_time(at),
        ok: r.ok,
        token_ok: r.token_ok,
        organization: r.organization,
        projects: r.projects,
        repositories: r.repositories,
        diagnosis: r.diagnosis.map(Into::into),
    }
}

/// **Test connection** as the page shows it.
pub async fn test_connection(hub: &Hub, id: &str) -> Result<CheckView, DbError> {
    let record =
        spicehub_core::admin::providers::test_connection(&hub.db, &hub.connections, id, None)
            .await?;
    Ok(check_view(now(), record))
}

use super::AdminError;
use spicehub_core::auth::AuthUser;

pub fn require_admin() -> Result<AuthUser, AdminError> {
    match crate::api::session::request_user() {
        Some(user) if user.is_admin() => Ok(user),
        Some(_) => {
            crate::api::session::set_status(http::StatusCode::FORBIDDEN.as_u16());
            Err(AdminError::Message("This is for hub admins only.".into()))
        }
        None => {
            crate::api::session::set_status(http::StatusCode::UNAUTHORIZED.as_u16());
            Err(AdminError::Message(
                "Your session has ended: sign in again.".into(),
            ))
        }
    }
}

pub fn state() -> Result<Hub, AdminError> {
    leptos::prelude::use_context::<Hub>()
        .ok_or_else(|| AdminError::Message("The hub is not fully started yet.".into()))
}

/// Logged in full, shown to the admin without internals.
pub fn internal(e: impl std::fmt::Display) -> AdminError {
    tracing::error!(error = %e, "admin action failed");
    crate::api::session::set_status(http::StatusCode::INTERNAL_SERVER_ERROR.as_u16());
    AdminError::Message(
        "The hub could not do this (database error). Try again; the hub's log has the details."
            .into(),
    )
}

/// `2026-11-23 18:04 UTC`: times are shown in UTC, formatted on the server
/// so the hydrated page renders the same text.
pub fn fmt_time(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// `2026-11-23`.
pub fn fmt_date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!("[year]-[month]-[day]"))
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// A diagnosis as the pages show it.
pub fn diagnosis_view(d: &Diagnosis) -> DiagnosisView {
    DiagnosisRecord::of(d).into()
}

/// An Azure error as the pages show it (its diagnosis, or its text).
pub fn error_view(e: &AzureError) -> DiagnosisView {
    DiagnosisRecord::of_error(e).into()
}

/// The diagnosis behind a stored failure message ending in `[code]`.
pub fn diagnosis_in_message(message: &str) -> Option<DiagnosisView> {
    let start = message.rfind('[')?;
    let end = start + message[start..].find(']')?;
    Diagnosis::from_code(&message[start + 1..end]).map(|d| diagnosis_view(&d))
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

fn credential_label(kind: CredentialKind) -> &'static str {
    match kind {
        CredentialKind::ClientSecret => "Client secret",
        CredentialKind::Certificate => "Certificate",
        CredentialKind::Pat => "Personal access token (deprecated)",
        CredentialKind::HubApp => "The hub's multi-tenant app (admin consent)",
    }
}

const DAY: i64 = 86_400;

/// The warning shown from 30 days before a secret's expiry date.
pub fn expiry_warning(expires_at: Option<i64>, at: i64) -> Option<String> {
    let expires = expires_at?;
    if expires <= at {
        return Some(format!(
            "The credential expired on {}: create a new one in the app registration and paste it here.",
            fmt_date(expires)
        ));
    }
    let days = (expires - at) / DAY;
    (expires - at <= 30 * DAY).then(|| {
        format!(
            "The credential expires on {} (in {days} day{}): create a new one and paste it here before then.",
            fmt_date(expires),
            if days == 1 { "" } else { "s" }
        )
    })
}

fn public_base(hub: &Hub) -> String {
    hub.config
        .public_url
        .as_str()
        .trim_end_matches('/')
        .to_owned()
}

pub fn provider_defaults(hub: &Hub) -> ProviderDefaults {
    ProviderDefaults {
        webhook_url: webhook_url(&hub.config.public_url),
        webhook_username: spicehub_core::admin::providers::default_webhook_username(),
        hub_app_client_id: hub.config.hub_app.as_ref().map(|h| h.client_id.clone()),
        consent_redirect_uri: format!("{}{}", public_base(hub), spicehub_routes::CONSENT_CALLBACK),
    }
}

async fn build_view(
    hub: &Hub,
    p: Provider,
    with_consent_link: bool,
) -> Result<ProviderView, DbError> {
    let db = &hub.db;
    let orgs = db.organizations(&p.id).await?;
    let org_ids: HashSet<&str> = orgs.iter().map(|o| o.id.as_str()).collect();
    let repositories = db
        .repositories()
        .await?
        .iter()
        .filter(|r| org_ids.contains(r.organization_id.as_str()))
        .count();
    let record: Option<CheckRecord> = p
        .last_check
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok());
    let last_check = match (&record, p.last_check_at) {
        (Some(r), Some(at)) => Some(check_view(at, r.clone())),
        _ => None,
    };
    let live = hub.connections.token_status(&p.id);
    let live_obtained = live
        .as_ref()
        .and_then(|s| s.last_obtained)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64);
    let last_token = match (p.last_token_at, live_obtained) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    // A token error seen by the sync engine since the last test is news.
    let last_check = match (last_check, live.and_then(|s| s.last_error)) {
        (Some(mut c), Some(e)) if c.ok => {
            c.ok = false;
            c.diagnosis = Some(error_view(&e));
            Some(c)
        }
        (c, _) => c,
    };
    let organization = match &record {
        Some(r) if !r.organization.is_empty() => r.organization.clone(),
        _ => orgs.first().map(|o| o.name.clone()).unwrap_or_default(),
    };
    let hub_app = p.credential_kind == CredentialKind::HubApp;
    let consent_link = match (&hub.config.hub_app, hub_app && p.consented_at.is_none()) {
        (Some(app), true) if with_consent_link => {
            let consent_state = db.create_consent_request(&p.id, &p.tenant_id).await?;
            let redirect = format!("{}{}", public_base(hub), spicehub_routes::CONSENT_CALLBACK);
            let enc = |v: &str| -> String {
                url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
            };
            Some(format!(
                "{}/{}/adminconsent?client_id={}&redirect_uri={}&state={}",
                hub.config.azure.authority_url.trim_end_matches('/'),
                enc(&p.tenant_id),
                enc(&app.client_id),
                enc(&redirect),
                enc(&consent_state),
            ))
        }
        _ => None,
    };
    Ok(ProviderView {
        onboarding: if hub_app {
            "hub_app"
        } else {
            "app_registration"
        }
        .into(),
        credential_kind: p.credential_kind.as_str().into(),
        credential_label: credential_label(p.credential_kind).into(),
        deprecated: p.credential_kind == CredentialKind::Pat,
        credential_set: (!hub_app)
            .then_some(p.credential_set_at)
            .flatten()
            .map(|t| format!("set on {}", fmt_date(t))),
        secret_expires: p.secret_expires_at.map(fmt_date),
        expiry_warning: expiry_warning(p.secret_expires_at, now()),
        last_token: last_token.map(fmt_time),
        last_check,
        organization,
        organizations: orgs.into_iter().map(|o| o.name).collect(),
        repositories,
        webhook_url: webhook_url(&hub.config.public_url),
        consented: p.consented_at.map(fmt_time),
        consent_link,
        id: p.id,
        display_name: p.display_name,
        tenant_id: p.tenant_id,
        client_id: p.client_id,
        webhook_username: p.webhook_username,
    })
}

pub async fn provider_views(hub: &Hub) -> Result<Vec<ProviderView>, DbError> {
    let mut out = Vec::new();
    for p in hub.db.providers().await? {
        out.push(build_view(hub, p, false).await?);
    }
    Ok(out)
}

pub async fn provider_view(hub: &Hub, id: &str) -> Result<Option<ProviderView>, DbError> {
    match hub.db.provider(id).await? {
        Some(p) => Ok(Some(build_view(hub, p, true).await?)),
        None => Ok(None),
    }
}

/// The projects and repositories the service principal sees.
pub async fn browse(
    hub: &Hub,
    provider_id: &str,
    organization: &str,
) -> Result<OrgListing, AdminError> {
    let organization = organization.trim();
    if !valid_organization(organization) {
        return Err(AdminError::Fields(vec![FieldError {
            field: "organization".into(),
            message: "Enter the organization's name as in https://dev.azure.com/{organization}: letters, digits and hyphens.".into(),
        }]));
    }
    let client = hub
        .connections
        .for_org(provider_id, organization)
        .await
        .map_err(|e| AdminError::from(client_error(e)))?;
    let mut projects = client
        .list_projects()
        .await
        .map_err(|e| AdminError::Diagnosed(error_view(&e)))?;
    if projects.is_empty() {
        return Err(AdminError::Diagnosed(diagnosis_view(
            &Diagnosis::NoProjectsVisible,
        )));
    }
    projects.sort_by_key(|p| p.name.to_lowercase());
    let added: HashSet<String> = hub
        .db
        .repositories()
        .await
        .map_err(internal)?
        .into_iter()
        .map(|r| r.id)
        .collect();
    let mut out = Vec::new();
    for p in projects {
        let (repositories, diagnosis) = match client.list_repositories(&p.id).await {
            Ok(mut repos) => {
                repos.sort_by_key(|r| r.name.to_lowercase());
                let list = repos
                    .iter()
                    .map(|r| RemoteRepo {
                        id: r.id.to_ascii_lowercase(),
                        name: r.name.clone(),
                        default_branch: r
                            .default_branch
                            .as_deref()
                            .map(|b| b.strip_prefix("refs/heads/").unwrap_or(b).to_owned()),
                        size: r.size.map(human_size),
                        unavailable: if r.disabled() {
                            Some("Disabled in Azure DevOps".into())
                        } else if r.default_branch.is_none() {
                            Some("Empty: no commit yet".into())
                        } else {
                            None
                        },
                        added: added.contains(&r.id.to_ascii_lowercase()),
                    })
                    .collect();
                (list, None)
            }
            Err(e) => (Vec::new(), Some(error_view(&e))),
        };
        out.push(RemoteProject {
            id: p.id,
            name: p.name,
            repositories,
            diagnosis,
        });
    }
    if out
        .iter()
        .all(|p| p.repositories.is_empty() && p.diagnosis.is_none())
    {
        return Err(AdminError::Diagnosed(diagnosis_view(
            &Diagnosis::NoRepositoriesVisible,
        )));
    }
    Ok(OrgListing {
        organization: organization.to_owned(),
        projects: out,
    })
}

/// One row per replicated repository, with its live state.
pub async fn repository_rows(db: &Db) -> Result<Vec<RepoRow>, DbError> {
    use spicehub_core::db::repositories::RepoState;
    let repos = db.repositories().await?;
    let jobs = active_jobs(db).await?;
    let mut orgs: std::collections::HashMap<String, (String, String)> = Default::default();
    let mut out = Vec::with_capacity(repos.len());
    for r in repos {
        if !orgs.contains_key(&r.organization_id) {
            let o = db.organization(&r.organization_id).await?;
            orgs.insert(
                r.organization_id.clone(),
                o.map(|o| (o.name, o.provider_id)).unwrap_or_default(),
            );
        }
        let (organization, provider_id) = orgs.get(&r.organization_id).cloned().unwrap_or_default();
        let active = jobs.get(&r.id);
        let running = active.and_then(|j| j.iter().find(|j| j.running));
        let pending = active.is_some_and(|j| j.iter().any(|j| !j.running));
        let (state, label) = match (running, r.state) {
            (_, RepoState::Disabled) => ("disabled", "Disabled"),
            (Some(_), _) => ("syncing", "Syncing"),
            (None, _) if pending && r.state == RepoState::Syncing => ("queued", "Waiting to retry"),
            (None, _) if pending => ("queued", "Queued"),
            (None, RepoState::Pending) => ("queued", "Queued"),
            (None, RepoState::Syncing) => ("syncing", "Syncing"),
            (None, RepoState::Synced) => ("in_sync", "In sync"),
            (None, RepoState::Error) => ("failed", "Failed"),
        };
        let error = r.last_error.clone();
        out.push(RepoRow {
            diagnosis: error.as_deref().and_then(diagnosis_in_message),
            error,
            commit_short: r
                .last_synced_commit
                .as_ref()
                .map(|c| c.chars().take(8).collect()),
            commit_url: match (&r.web_url, &r.last_synced_commit) {
                (Some(w), Some(c)) => Some(format!("{}/commit/{c}", w.trim_end_matches('/'))),
                _ => None,
            },
            commit: r.last_synced_commit.clone(),
            web_url: r.web_url.clone(),
            last_synced: r.last_synced_at.map(fmt_time),
            state: state.into(),
            state_label: label.into(),
            phase: running.and_then(|j| j.phase.clone()),
            progress_done: running.and_then(|j| j.done),
            progress_total: running.and_then(|j| j.total),
            note: r.last_sync_note.clone(),
            last_webhook: r.last_webhook_at.map(fmt_time),
            branch: r
                .tracked_branch
                .strip_prefix("refs/heads/")
                .unwrap_or(&r.tracked_branch)
                .to_owned(),
            id: r.id,
            provider_id,
            organization,
            project: r.project_name,
            name: r.name,
        });
    }
    Ok(out)
}

/// A manual action from the Repositories tab: `entire`, `recent`,
/// `from_commit` (with a commit hash) or `reparse`.
pub async fn repository_action(
    hub: &Hub,
    id: &str,
    action: &str,
    commit: Option<&str>,
) -> Result<String, AdminError> {
    let (kind, label) = match action {
        "entire" => (JobKind::EntireRepository, "Synchronize entire repository"),
        "recent" => (JobKind::RecentChanges, "Synchronize recent changes"),
        "from_commit" => (JobKind::FromCommit, "Synchronize from commit hash"),
        "reparse" => (JobKind::Reparse, "Re-parse"),
        _ => return Err(AdminError::Message(format!("Unknown action `{action}`."))),
    };
    let name = hub
        .db
        .repository(id)
        .await
        .ok()
        .flatten()
        .map(|r| r.name)
        .unwrap_or_default();
    match request_sync(&hub.db, &hub.queue, id, kind, commit).await {
        Ok(_) => Ok(format!("{label}: queued for {name}.")),
        Err(CoreError::BadCommit(c)) => Err(AdminError::Fields(vec![FieldError {
            field: "commit".into(),
            message: if c.is_empty() {
                "Enter the commit hash to synchronize from (40 hexadecimal characters).".into()
            } else {
                format!("`{c}` is not a commit hash: it has 40 hexadecimal characters (0-9, a-f).")
            },
        }])),
        Err(CoreError::UnknownRepository) => Err(AdminError::Message(
            "This repository is no longer replicated.".into(),
        )),
        Err(e) => {
            tracing::error!(error = %e, "manual sync could not be queued");
            Err(AdminError::Message(
                "The hub could not queue this (database error). Try again.".into(),
            ))
        }
    }
}

/// What the Test button's sample delivery is recorded with.
const TEST_REASON_PREFIX: &str = "Azure DevOps test notification";

pub async fn webhook_overview(hub: &Hub) -> Result<WebhookOverview, DbError> {
    let db = &hub.db;
    let providers = db.providers().await?;
    let names: HashMap<String, String> = providers
        .iter()
        .map(|p| (p.id.clone(), p.display_name.clone()))
        .collect();
    let repos = db.repositories().await?;
    let repo_names: HashMap<String, String> = repos
        .iter()
        .map(|r| (r.id.clone(), format!("{}/{}", r.project_name, r.name)))
        .collect();
    let mut orgs = HashMap::new();
    for p in &providers {
        for o in db.organizations(&p.id).await? {
            orgs.insert(o.id.clone(), o);
        }
    }
    let hooks = db.hook_subscriptions().await?;
    let url = webhook_url(&hub.config.public_url);
    let setups = providers
        .iter()
        .map(|p| HookSetup {
            provider_id: p.id.clone(),
            display_name: p.display_name.clone(),
            url: url.clone(),
            username: p.webhook_username.clone(),
            repositories: repos
                .iter()
                .filter_map(|r| {
                    let org = orgs.get(&r.organization_id)?;
                    (org.provider_id == p.id).then(|| HookRepo {
                        id: r.id.clone(),
                        organization: org.name.clone(),
                        project: r.project_name.clone(),
                        name: r.name.clone(),
                        branch: r
                            .tracked_branch
                            .strip_prefix("refs/heads/")
                            .unwrap_or(&r.tracked_branch)
                            .to_owned(),
                        hook_status: hooks.iter().rev().find(|h| h.repository_id == r.id).map(
                            |h| {
                                format!(
                                    "created by the hub ({})",
                                    h.status.as_deref().unwrap_or("status unknown")
                                )
                            },
                        ),
                    })
                })
                .collect(),
        })
        .collect();
    let recent = db.recent_deliveries(200).await?;
    let last_test = recent
        .iter()
        .find(|d| {
            d.reason
                .as_deref()
                .is_some_and(|r| r.starts_with(TEST_REASON_PREFIX))
        })
        .map(|d| fmt_time(d.received_at));
    let deliveries = recent
        .into_iter()
        .take(50)
        .map(|d| DeliveryRow {
            at: fmt_time(d.received_at),
            provider: names.get(&d.provider_id).cloned().unwrap_or_default(),
            event: d.event_type.unwrap_or_else(|| "(none)".into()),
            repository: d
                .repository_id
                .as_ref()
                .map(|id| repo_names.get(id).cloned().unwrap_or_else(|| id.clone())),
            result: d.status,
            reason: d.reason,
        })
        .collect();
    Ok(WebhookOverview {
        setups,
        deliveries,
        last_test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(fmt_date(86_400), "1970-01-02");
        assert_eq!(human_size(10), "10 bytes");
        assert_eq!(human_size(1536), "1.5 KB");
        let d = diagnosis_in_message("Client secret is wrong [wrong_client_secret]").unwrap();
        assert_eq!(d.field, "secret");
        assert!(diagnosis_in_message("no code here").is_none());
    }

    #[test]
    fn expiry_warns_from_thirty_days() {
        let now = 1_000 * DAY;
        assert!(expiry_warning(Some(now + 40 * DAY), now).is_none());
        assert!(expiry_warning(Some(now + 29 * DAY), now)
            .unwrap()
            .contains("in 29 days"));
        assert!(expiry_warning(Some(now - DAY), now)
            .unwrap()
            .contains("expired"));
        assert!(expiry_warning(None, now).is_none());
    }
}
