//! Service hooks the hub creates itself ("Create the webhook for me"), and
//! their upkeep: Azure DevOps disables a subscription whose deliveries keep
//! failing (`disabledBySystem`) and an update cannot re-enable it, so
//! reconcile deletes it and creates a new one.

use url::Url;

use crate::connections::{ConnectionError, ProviderConnections};
use crate::crypto::SecretKey;
use crate::db::hooks::HookSubscription;
use crate::db::providers::{Organization, ProviderError};
use crate::db::repositories::Repository;
use crate::db::{Db, DbError};
use spicehub_azure::client::AzureClient;
use spicehub_azure::models::{Subscription, SubscriptionCreate, SubscriptionStatus};
use spicehub_azure::AzureError;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("no such repository")]
    UnknownRepository,
    #[error("the webhook password was saved before the hub kept it encrypted: generate a new webhook password for this provider first")]
    PasswordUnknown,
    #[error("{0}")]
    Azure(#[from] AzureError),
    #[error(transparent)]
    Client(#[from] ConnectionError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The URL Azure DevOps posts to.
pub fn webhook_url(public_url: &Url) -> String {
    let base = public_url.as_str().trim_end_matches('/');
    format!("{base}{}", spicehub_routes::WEBHOOK)
}

fn status_str(s: &Option<SubscriptionStatus>) -> Option<&'static str> {
    s.as_ref().map(|s| match s {
        SubscriptionStatus::Enabled => "enabled",
        SubscriptionStatus::OnProbation => "onProbation",
        SubscriptionStatus::DisabledByUser => "disabledByUser",
        SubscriptionStatus::DisabledBySystem => "disabledBySystem",
        SubscriptionStatus::DisabledByInactiveIdentity => "disabledByInactiveIdentity",
        SubscriptionStatus::Unknown => "unknown",
    })
}

/// The repository and the organization that holds it.
async fn repository_and_org(
    db: &Db,
    repository_id: &str,
) -> Result<(Repository, Organization), HookError> {
    let repo = db
        .repository(repository_id)
        .await?
        .ok_or(HookError::UnknownRepository)?;
    let org = db
        .organization(&repo.organization_id)
        .await?
        .ok_or(HookError::UnknownRepository)?;
    Ok((repo, org))
}

/// A client of the organization that holds the hook's repository.
async fn client_for(
    db: &Db,
    clients: &ProviderConnections,
    hook: &HookSubscription,
) -> Result<AzureClient, HookError> {
    let (_, org) = repository_and_org(db, &hook.repository_id).await?;
    Ok(clients.for_org(&org.provider_id, &org.name).await?)
}

/// The body of the hub's `git.push` subscription for a repository, with the
/// provider's current webhook password, and a client of its organization.
async fn hook_body(
    db: &Db,
    clients: &ProviderConnections,
    key: &SecretKey,
    public_url: &Url,
    repository_id: &str,
) -> Result<(AzureClient, SubscriptionCreate), HookError> {
    let (repo, org) = repository_and_org(db, repository_id).await?;
    let provider = db
        .provider(&org.provider_id)
        .await?
        .ok_or(HookError::UnknownRepository)?;
    let password = db
        .webhook_password(key, &provider.id)
        .await?
        .ok_or(HookError::PasswordUnknown)?;
    let client = clients.for_org(&provider.id, &org.name).await?;
    let branch = repo
        .tracked_branch
        .strip_prefix("refs/heads/")
        .unwrap_or(&repo.tracked_branch);
    let body = SubscriptionCreate::git_push_webhook(
        &repo.project_id,
        Some(&repo.id),
        Some(branch),
        &webhook_url(public_url),
        &provider.webhook_username,
        &password,
    );
    Ok((client, body))
}

async fn create_for(
    db: &Db,
    clients: &ProviderConnections,
    key: &SecretKey,
    public_url: &Url,
    repository_id: &str,
) -> Result<Subscription, HookError> {
    let (client, body) = hook_body(db, clients, key, public_url, repository_id).await?;
    Ok(client.create_subscription(&body).await?)
}

/// A status as the hub records it (`enabled`, `onProbation`, ...).
pub fn parse_status(recorded: &str) -> Option<SubscriptionStatus> {
    serde_json::from_value(serde_json::Value::String(recorded.to_owned())).ok()
}

/// What the hub does about a status: the Webhooks page's advice.
pub fn status_advice(status: Option<&SubscriptionStatus>) -> &'static str {
    match status {
        Some(SubscriptionStatus::Enabled) => "",
        Some(SubscriptionStatus::OnProbation | SubscriptionStatus::DisabledByUser) => {
            " Check the webhook sends it the current password again and re-enables it."
        }
        Some(SubscriptionStatus::DisabledBySystem) => {
            " The hub's reconcile re-creates it; Check the webhook does it now."
        }
        _ => " Check the webhook replaces it with a new one.",
    }
}

/// What a subscription's status means, and what the hub does about it, in
/// an admin's words.
pub fn status_meaning(status: Option<&SubscriptionStatus>) -> &'static str {
    match status {
        Some(SubscriptionStatus::Enabled) => "enabled: Azure DevOps delivers every push",
        Some(SubscriptionStatus::OnProbation) => {
            "on probation: deliveries failed, so Azure DevOps retries with growing delays and disables it if they keep failing"
        }
        Some(SubscriptionStatus::DisabledByUser) => "disabled by a person in Azure DevOps",
        Some(SubscriptionStatus::DisabledBySystem) => {
            "disabled by Azure DevOps after repeated failed deliveries (an update cannot re-enable it)"
        }
        Some(SubscriptionStatus::DisabledByInactiveIdentity) => {
            "disabled because the identity that created it is no longer active"
        }
        Some(SubscriptionStatus::Unknown) | None => "in a state the hub does not know",
    }
}

/// What [`create_webhook`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookOutcome {
    Created,
    /// The hub's subscription for this repository exists and is enabled:
    /// nothing was created (a second one would deliver every push twice).
    Kept,
    /// It was on probation or disabled by a person: its inputs (the
    /// current password) were sent again and it was re-enabled.
    Reenabled(SubscriptionStatus),
    /// It was disabled by the system or an inactive identity (`Some`), or
    /// deleted in Azure DevOps (`None`), and was replaced by a new one.
    Replaced(Option<SubscriptionStatus>),
}

/// Makes sure the repository has a working `git.push` subscription created
/// by the hub (needs "Edit subscriptions" on its project): creates one, or
/// checks the one already recorded and replaces it when Azure DevOps
/// disabled or deleted it.
pub async fn create_webhook(
    db: &Db,
    clients: &ProviderConnections,
    key: &SecretKey,
    public_url: &Url,
    repository_id: &str,
) -> Result<(HookSubscription, HookOutcome), HookError> {
    let Some(existing) = db.hook_subscriptions_of(repository_id).await?.pop() else {
        let created = create_for(db, clients, key, public_url, repository_id).await?;
        let hook = db
            .record_hook_subscription(repository_id, &created.id, status_str(&created.status))
            .await?;
        return Ok((hook, HookOutcome::Created));
    };
    let current = match subscription_of(db, clients, &existing).await {
        Ok(current) => Some(current),
        // Deleted in Azure DevOps (the hub's record outlived it).
        Err(e) if is_gone(&e) => None,
        Err(e) => return Err(e),
    };
    let outcome = match current.as_ref().and_then(|s| s.status.clone()) {
        Some(SubscriptionStatus::Enabled) => {
            db.update_hook_subscription(&existing.id, Some("enabled"), None)
                .await?;
            HookOutcome::Kept
        }
        // An update works for these: send the current inputs again (a
        // password that changed is the usual cause of probation) and
        // re-enable it, keeping its delivery history.
        Some(was @ (SubscriptionStatus::OnProbation | SubscriptionStatus::DisabledByUser)) => {
            match resend(db, clients, key, public_url, &existing, "enabled").await {
                Ok(updated) => {
                    db.update_hook_subscription(&existing.id, status_str(&updated.status), None)
                        .await?;
                    HookOutcome::Reenabled(was)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot update the subscription; replacing it");
                    replace(db, clients, key, public_url, &existing, true).await?;
                    HookOutcome::Replaced(Some(was))
                }
            }
        }
        was => {
            replace(db, clients, key, public_url, &existing, current.is_some()).await?;
            HookOutcome::Replaced(was)
        }
    };
    let hook = db
        .hook_subscriptions_of(repository_id)
        .await?
        .pop()
        .ok_or(HookError::UnknownRepository)?;
    Ok((hook, outcome))
}

/// The subscription as Azure DevOps has it now.
async fn subscription_of(
    db: &Db,
    clients: &ProviderConnections,
    hook: &HookSubscription,
) -> Result<Subscription, HookError> {
    let client = client_for(db, clients, hook).await?;
    Ok(client
        .get_subscription(&hook.devops_subscription_id)
        .await?)
}

/// Deletes the hub's subscription (if it still exists) and records a new one
/// in its place. "Update subscription does not work for disabled
/// subscriptions."
async fn replace(
    db: &Db,
    clients: &ProviderConnections,
    key: &SecretKey,
    public_url: &Url,
    hook: &HookSubscription,
    exists: bool,
) -> Result<Subscription, HookError> {
    if exists {
        let client = client_for(db, clients, hook).await?;
        if let Err(e) = client
            .delete_subscription(&hook.devops_subscription_id)
            .await
        {
            tracing::warn!(error = %e, "cannot delete a disabled subscription; creating a new one anyway");
        }
    }
    let created = create_for(db, clients, key, public_url, &hook.repository_id).await?;
    db.update_hook_subscription(&hook.id, status_str(&created.status), Some(&created.id))
        .await?;
    tracing::info!(
        repository = %hook.repository_id,
        old = %hook.devops_subscription_id,
        new = %created.id,
        "re-created a service hook subscription that Azure DevOps had disabled or deleted"
    );
    Ok(created)
}

/// Sends the subscription the repository's current inputs (URL, user
/// name, password, branch filter) with `status`.
async fn resend(
    db: &Db,
    clients: &ProviderConnections,
    key: &SecretKey,
    public_url: &Url,
    hook: &HookSubscription,
    status: &str,
) -> Result<Subscription, HookError> {
    let (client, body) = hook_body(db, clients, key, public_url, &hook.repository_id).await?;
    Ok(client
        .replace_subscription(&hook.devops_subscription_id, &body, status)
        .await?)
}

/// The status to send with new inputs: a person's "disabled" is kept,
/// anything else that an update can reach becomes enabled.
fn kept_status(current: &Option<SubscriptionStatus>) -> &'static str {
    match current {
        Some(SubscriptionStatus::DisabledByUser) => "disabledByUser",
        _ => "enabled",
    }
}

/// Azure DevOps no longer has the subscription.
fn is_gone(e: &HookError) -> bool {
    matches!(e, HookError::Azure(e) if e.context().and_then(|c| c.status) == Some(404))
}

/// What happened to one hub-created hook when the webhook password changed.
#[derive(Debug)]
pub struct PasswordUpdate {
    pub repository: String,
    pub result: Result<PasswordUpdated, HookError>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordUpdated {
    /// The subscription now holds the new password.
    Updated,
    /// Azure DevOps had disabled it for good: a new one holds the password.
    Replaced,
    /// It no longer exists in Azure DevOps (nothing to update).
    Gone,
}

/// Sends a provider's new webhook password to every subscription the hub
/// created for its repositories, so none keeps posting the old one (Azure
/// DevOps would put it on probation, then disable it). A subscription a
/// person disabled keeps that status; one the system disabled cannot be
/// updated and is re-created. One failure does not stop the others.
pub async fn push_password(
    db: &Db,
    clients: &ProviderConnections,
    key: &SecretKey,
    public_url: &Url,
    provider_id: &str,
) -> Result<Vec<PasswordUpdate>, HookError> {
    let mut out = Vec::new();
    for (repo, _) in db.repositories_of_provider(provider_id).await? {
        for hook in db.hook_subscriptions_of(&repo.id).await? {
            let result = push_one(db, clients, key, public_url, &hook).await;
            if let Err(e) = &result {
                tracing::warn!(repository = %repo.id, error = %e, "cannot send the new webhook password to a service hook");
            }
            out.push(PasswordUpdate {
                repository: repo.name.clone(),
                result,
            });
        }
    }
    Ok(out)
}

async fn push_one(
    db: &Db,
    clients: &ProviderConnections,
    key: &SecretKey,
    public_url: &Url,
    hook: &HookSubscription,
) -> Result<PasswordUpdated, HookError> {
    let current = match subscription_of(db, clients, hook).await {
        Ok(s) => s,
        Err(e) if is_gone(&e) => return Ok(PasswordUpdated::Gone),
        Err(e) => return Err(e),
    };
    if current.status == Some(SubscriptionStatus::DisabledBySystem) {
        replace(db, clients, key, public_url, hook, true).await?;
        return Ok(PasswordUpdated::Replaced);
    }
    let updated = resend(
        db,
        clients,
        key,
        public_url,
        hook,
        kept_status(&current.status),
    )
    .await?;
    db.update_hook_subscription(&hook.id, status_str(&updated.status), None)
        .await?;
    Ok(PasswordUpdated::Updated)
}

/// Checks every subscription the hub created; re-creates those Azure DevOps
/// disabled. Returns how many were re-created. One failure does not stop
/// the others (it is logged and retried at the next pass).
pub async fn recreate_disabled(
    db: &Db,
    clients: &ProviderConnections,
    key: &SecretKey,
    public_url: &Url,
) -> Result<usize, HookError> {
    let mut recreated = 0;
    for hook in db.hook_subscriptions().await? {
        match check_one(db, clients, key, public_url, &hook).await {
            Ok(true) => recreated += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(
                repository = %hook.repository_id,
                error = %e,
                "reconcile: cannot check a service hook subscription"
            ),
        }
    }
    Ok(recreated)
}

async fn check_one(
    db: &Db,
    clients: &ProviderConnections,
    key: &SecretKey,
    public_url: &Url,
    hook: &HookSubscription,
) -> Result<bool, HookError> {
    let current = subscription_of(db, clients, hook).await?;
    if current.status != Some(SubscriptionStatus::DisabledBySystem) {
        // The tracked branch moved (an admin picked another, or the
        // default branch changed in Azure DevOps): the filter follows it.
        let current = match follow_branch(db, clients, key, public_url, hook, &current).await {
            Ok(Some(updated)) => updated,
            Ok(None) => current,
            Err(e) => {
                tracing::warn!(
                    repository = %hook.repository_id,
                    error = %e,
                    "reconcile: cannot move a service hook's branch filter"
                );
                current
            }
        };
        db.update_hook_subscription(&hook.id, status_str(&current.status), None)
            .await?;
        return Ok(false);
    }
    replace(db, clients, key, public_url, hook, true).await?;
    Ok(true)
}

/// The branch a `git.push` subscription filters on (short name), if any.
fn branch_filter(inputs: &std::collections::BTreeMap<String, String>) -> Option<&str> {
    inputs
        .get("branch")
        .map(|b| b.strip_prefix("refs/heads/").unwrap_or(b))
        .filter(|b| !b.is_empty())
}

/// Sends the hub's subscription the repository's current inputs when its
/// branch filter is not the tracked branch, keeping a status a person set.
/// `None` when the filter already matched, or when the subscription cannot
/// be updated (disabled by the system or an inactive identity: replacing
/// it, at reconcile or with "Check the webhook", gives it the new branch).
async fn follow_branch(
    db: &Db,
    clients: &ProviderConnections,
    key: &SecretKey,
    public_url: &Url,
    hook: &HookSubscription,
    current: &Subscription,
) -> Result<Option<Subscription>, HookError> {
    if matches!(
        current.status,
        Some(SubscriptionStatus::DisabledBySystem | SubscriptionStatus::DisabledByInactiveIdentity)
    ) {
        return Ok(None);
    }
    let (repo, _) = repository_and_org(db, &hook.repository_id).await?;
    let tracked = repo
        .tracked_branch
        .strip_prefix("refs/heads/")
        .unwrap_or(&repo.tracked_branch);
    if branch_filter(&current.publisher_inputs) == Some(tracked) {
        return Ok(None);
    }
    let updated = resend(
        db,
        clients,
        key,
        public_url,
        hook,
        kept_status(&current.status),
    )
    .await?;
    tracing::info!(
        repository = %hook.repository_id,
        subscription = %hook.devops_subscription_id,
        was = branch_filter(&current.publisher_inputs).unwrap_or("(none)"),
        branch = %tracked,
        "service hook: branch filter moved to the tracked branch"
    );
    Ok(Some(updated))
}

/// What changing the tracked branch did to one hub-created hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BranchFilterUpdate {
    /// The subscription now filters on the new branch.
    Updated,
    /// It already did.
    Unchanged,
    /// Deleted in Azure DevOps, or disabled for good: nothing to update
    /// here; reconcile (or "Check the webhook") replaces it, and a new one
    /// is created with the new branch.
    LeftToReconcile,
}

/// Moves the branch filter of every hook the hub created for a repository
/// to its tracked branch (after an admin changed it). One result per hook;
/// one failure does not stop the others.
pub async fn push_branch(
    db: &Db,
    clients: &ProviderConnections,
    key: &SecretKey,
    public_url: &Url,
    repository_id: &str,
) -> Result<Vec<Result<BranchFilterUpdate, HookError>>, HookError> {
    let mut out = Vec::new();
    for hook in db.hook_subscriptions_of(repository_id).await? {
        let result = async {
            let current = match subscription_of(db, clients, &hook).await {
                Ok(current) => current,
                Err(e) if is_gone(&e) => return Ok(BranchFilterUpdate::LeftToReconcile),
                Err(e) => return Err(e),
            };
            if matches!(
                current.status,
                Some(
                    SubscriptionStatus::DisabledBySystem
                        | SubscriptionStatus::DisabledByInactiveIdentity
                )
            ) {
                return Ok(BranchFilterUpdate::LeftToReconcile);
            }
            match follow_branch(db, clients, key, public_url, &hook, &current).await? {
                Some(updated) => {
                    db.update_hook_subscription(&hook.id, status_str(&updated.status), None)
                        .await?;
                    Ok(BranchFilterUpdate::Updated)
                }
                None => Ok(BranchFilterUpdate::Unchanged),
            }
        }
        .await;
        if let Err(e) = &result {
            tracing::warn!(repository = %repository_id, error = %e, "cannot move a service hook's branch filter");
        }
        out.push(result);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_recorded_status_is_explained_with_what_the_hub_does() {
        for (recorded, meaning, advice) in [
            ("enabled", "delivers every push", ""),
            ("onProbation", "on probation", "re-enables it"),
            ("disabledByUser", "by a person", "re-enables it"),
            (
                "disabledBySystem",
                "repeated failed deliveries",
                "re-creates it",
            ),
            (
                "disabledByInactiveIdentity",
                "no longer active",
                "replaces it",
            ),
        ] {
            let status = parse_status(recorded);
            assert!(status.is_some(), "{recorded}");
            assert!(
                status_meaning(status.as_ref()).contains(meaning),
                "{recorded}"
            );
            assert!(
                status_advice(status.as_ref()).contains(advice),
                "{recorded}"
            );
        }
        assert!(status_meaning(parse_status("somethingNew").as_ref()).contains("does not know"));
    }
}
