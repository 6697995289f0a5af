//! The repository picker's action: add the repositories (and whole
//! projects) an admin ticked, each looked up as the service principal.

use std::collections::BTreeMap;

use super::{client_error, internal};
use crate::admin::repositories::{add_repository, AddRepository};
use crate::admin::{AdminError, DiagnosisRecord};
use crate::Hub;

/// Adds the chosen repositories and every available one of the chosen
/// projects; returns how many were added.
pub async fn add_selected(
    hub: &Hub,
    provider_id: &str,
    organization: &str,
    repos: &BTreeMap<String, String>,
    projects: &BTreeMap<String, String>,
) -> Result<usize, AdminError> {
    let organization = organization.trim();
    if repos.is_empty() && projects.is_empty() {
        return Err(AdminError::Message(
            "Select at least one repository.".into(),
        ));
    }
    // (project, repository) pairs, each once.
    let key = |k: &str| k.strip_prefix("id-").unwrap_or(k).to_ascii_lowercase();
    let mut chosen: Vec<(String, String)> = repos
        .iter()
        .map(|(repo, project)| (project.clone(), key(repo)))
        .collect();
    if !projects.is_empty() {
        let client = hub
            .connections
            .for_org(provider_id, organization)
            .await
            .map_err(client_error)?
            .with_priority(spicehub_azure::Priority::Interactive);
        for project in projects.keys().map(|k| key(k)) {
            let listed = client
                .list_repositories(&project)
                .await
                .map_err(|e| AdminError::Diagnosed(DiagnosisRecord::of_error(&e)))?;
            for r in listed {
                let id = r.id.to_ascii_lowercase();
                if !r.disabled()
                    && r.default_branch.is_some()
                    && !chosen.iter().any(|(_, c)| *c == id)
                {
                    chosen.push((project.clone(), id));
                }
            }
        }
    }
    let mut added = 0;
    let mut failures = Vec::new();
    for (project, repository) in &chosen {
        match add_repository(
            &hub.db,
            &hub.connections,
            &hub.queue,
            &AddRepository {
                provider_id,
                organization,
                project,
                repository,
                branch: None,
            },
        )
        .await
        {
            Ok(_) => added += 1,
            Err(AdminError::AlreadyAdded) => {}
            Err(AdminError::Azure(e)) => {
                let d = DiagnosisRecord::of_error(&e);
                failures.push(format!("{repository}: {}. {}", d.title, d.hint));
            }
            Err(AdminError::Connection(e)) => failures.push(format!("{repository}: {e}")),
            Err(AdminError::Db(e)) => return Err(internal(e)),
            Err(e) => failures.push(format!("{repository}: {e}")),
        }
    }
    if !failures.is_empty() {
        return Err(AdminError::Message(format!(
            "Added {added} repositor{}. Could not add: {}",
            if added == 1 { "y" } else { "ies" },
            failures.join(" · ")
        )));
    }
    Ok(added)
}
