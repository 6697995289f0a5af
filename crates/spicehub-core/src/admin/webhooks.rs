//! The webhook deliveries page: what Azure DevOps sent lately, the values
//! to paste into a service hook, and **Create the webhook for me**.

use super::{AdminError, DiagnosisRecord};
use crate::connections::ConnectionError;
use crate::sync::hooks::{create_webhook, status_meaning, HookError, HookOutcome};
use crate::Hub;

/// Creates the `git.push` service hook of one repository as the service
/// principal; when it may not, the diagnosis says why.
pub async fn create_webhook_for(hub: &Hub, repository_id: &str) -> Result<String, AdminError> {
    let created = create_webhook(
        &hub.db,
        &hub.connections,
        &hub.config.secret_key,
        &hub.config.public_url,
        repository_id,
    )
    .await;
    let azure = |e: &spicehub_azure::AzureError| {
        let mut view = DiagnosisRecord::of_error(e);
        if view.code == "forbidden" || view.code == "not_authorized" {
            view = DiagnosisRecord {
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
                HookOutcome::Created => "Service hook created".to_owned(),
                HookOutcome::Kept => format!(
                    "The service hook the hub created is in place and {}; nothing to do",
                    status_meaning(Some(&spicehub_azure::models::SubscriptionStatus::Enabled))
                ),
                HookOutcome::Reenabled(was) => format!(
                    "The service hook was {}. The hub sent it the current webhook password again and re-enabled it",
                    status_meaning(Some(&was))
                ),
                HookOutcome::Replaced(Some(was)) => format!(
                    "The service hook was {}. The hub deleted it and created a new one",
                    status_meaning(Some(&was))
                ),
                HookOutcome::Replaced(None) => {
                    "The service hook had been deleted in Azure DevOps; the hub created a new one"
                        .to_owned()
                }
            };
            Ok(format!(
                "{what} (subscription {}, {}).",
                hook.devops_subscription_id,
                hook.status.as_deref().unwrap_or("status unknown")
            ))
        }
        Err(HookError::Azure(e)) | Err(HookError::Client(ConnectionError::Azure(e))) => {
            Err(azure(&e))
        }
        Err(HookError::Db(e)) | Err(HookError::Client(ConnectionError::Db(e))) => {
            tracing::error!(error = %e, "create webhook: database error");
            Err(AdminError::Message(
                "The hub could not record the hook (database error). Try again.".into(),
            ))
        }
        Err(other) => Err(AdminError::Message(other.to_string())),
    }
}
