//! Deleting a Git provider: what it would remove (for the confirmation
//! page and the command line's prompt), then the removal itself. The
//! service hooks the hub created in Azure DevOps go first, while the
//! provider's credential can still reach Azure DevOps; after that its
//! repositories (files, graphs, jobs), its deliveries and the provider row,
//! which holds the sealed client credential and the webhook password's
//! verifier.

use crate::admin::repositories::{delete_hooks_of, HookLeft};
use crate::admin::AdminError;
use crate::Hub;

/// What deleting a provider would remove.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProviderRemovalPlan {
    pub id: String,
    pub display_name: String,
    /// `organization/project/repository`, sorted.
    pub repositories: Vec<String>,
    /// Service hooks the hub created for those repositories.
    pub hooks: usize,
}

/// What deleting a provider did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProviderRemoval {
    pub id: String,
    pub display_name: String,
    pub repositories_removed: usize,
    /// Hub-created subscriptions deleted in Azure DevOps (or already gone).
    pub hooks_deleted: usize,
    /// Those Azure DevOps refused to delete: the admin deletes them by hand.
    pub hooks_left: Vec<HookLeft>,
}

fn unknown(id: &str) -> AdminError {
    AdminError::UnknownProvider(id.to_owned())
}

/// What [`remove_provider`] would remove, for a confirmation.
pub async fn removal_plan(hub: &Hub, provider_id: &str) -> Result<ProviderRemovalPlan, AdminError> {
    let provider = hub
        .db
        .provider(provider_id)
        .await?
        .ok_or_else(|| unknown(provider_id))?;
    let mut repositories = Vec::new();
    let mut hooks = 0;
    for (repo, org) in hub.db.repositories_of_provider(&provider.id).await? {
        hooks += hub.db.hook_subscriptions_of(&repo.id).await?.len();
        repositories.push(format!("{}/{}/{}", org.name, repo.project_name, repo.name));
    }
    Ok(ProviderRemovalPlan {
        id: provider.id,
        display_name: provider.display_name,
        repositories,
        hooks,
    })
}

/// Deletes a provider: the service hooks the hub created for its
/// repositories (best effort: one Azure DevOps refuses is reported in
/// `hooks_left`, and does not stop the removal, since a provider being
/// deleted often has a credential that no longer works), then everything
/// the hub holds for it (`Db::delete_provider`: repositories with their
/// snapshots, blobs, graphs and jobs; deliveries; organizations; the row
/// with the sealed credential). Its webhook credentials stop being
/// accepted at once on this instance (the delete empties the webhook
/// cache) and within the cache's TTL on the others.
pub async fn remove_provider(hub: &Hub, provider_id: &str) -> Result<ProviderRemoval, AdminError> {
    let provider = hub
        .db
        .provider(provider_id)
        .await?
        .ok_or_else(|| unknown(provider_id))?;
    let mut hooks_deleted = 0;
    let mut hooks_left = Vec::new();
    let repositories = hub.db.repositories_of_provider(&provider.id).await?;
    for (repo, org) in &repositories {
        let (deleted, left) = delete_hooks_of(hub, repo, Some(org)).await?;
        hooks_deleted += deleted;
        hooks_left.extend(left);
    }
    if !hub.db.delete_provider(&provider.id).await? {
        return Err(unknown(provider_id));
    }
    // Drops the opened credential and the cached token with it.
    hub.connections.forget(&provider.id);
    Ok(ProviderRemoval {
        id: provider.id,
        display_name: provider.display_name,
        repositories_removed: repositories.len(),
        hooks_deleted,
        hooks_left,
    })
}
