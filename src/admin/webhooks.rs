//! The webhook deliveries page: what Azure DevOps sent lately, the values
//! to paste into a service hook, and **Create the webhook for me**.

use std::collections::HashMap;

use super::{error_view, fmt_time};
use crate::api::admin::{
    AdminError, DeliveryRow, DiagnosisView, HookRepo, HookSetup, WebhookOverview,
};
use crate::db::DbError;
use crate::server::AppState;
use crate::sync::clients::ClientError;
use crate::sync::hooks::{create_webhook, webhook_url, HookError, HookOutcome};

/// What the Test button's sample delivery is recorded with.
const TEST_REASON_PREFIX: &str = "Azure DevOps test notification";

pub async fn overview(state: &AppState) -> Result<WebhookOverview, DbError> {
    let db = &state.db;
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
    let url = webhook_url(&state.config.public_url);
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

/// Creates the `git.push` service hook of one repository as the service
/// principal; when it may not, the diagnosis says why.
pub async fn create(state: &AppState, repository_id: &str) -> Result<String, AdminError> {
    let created = create_webhook(
        &state.db,
        &state.clients,
        &state.config.secret_key,
        &state.config.public_url,
        repository_id,
    )
    .await;
    let azure = |e: &crate::azure::AzureError| {
        let mut view = error_view(e);
        if view.code == "forbidden" || view.code == "not_authorized" {
            view = DiagnosisView {
                title: "The service principal may not create service hooks".into(),
                hint: format!(
                    "{} Creating a service hook needs the \"Edit subscriptions\" permission on the project (in practice: Project Administrators). Grant it, or create the hook by hand with the steps on this page.",
                    view.hint
                ),
                ..view
            };
        }
        AdminError::Diagnosed(view)
    };
    match created {
        Ok((hook, outcome)) => {
            let what = match outcome {
                HookOutcome::Created => "Service hook created",
                HookOutcome::Kept => "The service hook the hub created is in place; nothing to do",
                HookOutcome::Replaced => {
                    "The service hook had been disabled or deleted in Azure DevOps; a new one was created"
                }
            };
            Ok(format!(
                "{what} (subscription {}, {}).",
                hook.devops_subscription_id,
                hook.status.as_deref().unwrap_or("status unknown")
            ))
        }
        Err(HookError::Azure(e)) | Err(HookError::Client(ClientError::Azure(e))) => Err(azure(&e)),
        Err(HookError::Db(e)) | Err(HookError::Client(ClientError::Db(e))) => {
            tracing::error!(error = %e, "create webhook: database error");
            Err(AdminError::Message(
                "The hub could not record the hook (database error). Try again.".into(),
            ))
        }
        Err(other) => Err(AdminError::Message(other.to_string())),
    }
}
