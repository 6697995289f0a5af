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

async fn create_for(
    db: &Db,
    clients: &ProviderConnections,
    key: &SecretKey,
    public_url: &Url,
    repository_id: &str,
) -> Result<(Subscription, String), HookError> {
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
    let created = client.create_subscription(&body).await?;
    Ok((created, org.name))
}

/// What [`create_webhook`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookOutcome {
    Created,
    /// The hub's subscription for this repository exists and is active:
    /// nothing was created (a second one would deliver every push twice).
    Kept,
    /// The hub's subscription was disabled or deleted in Azure DevOps and
    /// was replaced.
    Replaced,
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
        let (created, _) = create_for(db, clients, key, public_url, repository_id).await?;
        let hook = db
            .record_hook_subscription(repository_id, &created.id, status_str(&created.status))
            .await?;
        return Ok((hook, HookOutcome::Created));
    };
    let current = match subscription_of(db, clients, &existing).await {
        Ok(current) => Some(current),
        // Deleted in Azure DevOps (the hub's record outlived it).
        Err(HookError::Azure(e)) if e.context().and_then(|c| c.status) == Some(404) => None,
        Err(e) => return Err(e),
    };
    let outcome = match current {
        Some(s)
            if matches!(
                s.status,
                Some(SubscriptionStatus::Enabled | SubscriptionStatus::OnProbation)
            ) =>
        {
            db.update_hook_subscription(&existing.id, status_str(&s.status), None)
                .await?;
            HookOutcome::Kept
        }
        current => {
            replace(db, clients, key, public_url, &existing, current.is_some()).await?;
            HookOutcome::Replaced
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
    let (created, _) = create_for(db, clients, key, public_url, &hook.repository_id).await?;
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
        db.update_hook_subscription(&hook.id, status_str(&current.status), None)
            .await?;
        return Ok(false);
    }
    replace(db, clients, key, public_url, hook, true).await?;
    Ok(true)
}
