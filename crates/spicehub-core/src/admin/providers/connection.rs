//! **Test connection**: a token, then the organization's projects and
//! repositories, as the saved provider; the outcome is stored with the
//! provider as its health and read back by the pages.

use serde::{Deserialize, Serialize};

use super::internal;
use crate::admin::{AdminError, DiagnosisRecord};
use crate::connections::ConnectionError;
use crate::db::providers::Provider;
use crate::db::DbError;

/// What a connection test found, stored with the provider as JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckRecord {
    pub ok: bool,
    pub token_ok: bool,
    pub organization: String,
    pub projects: usize,
    pub repositories: usize,
    pub diagnosis: Option<DiagnosisRecord>,
}

/// The organization a provider is tested against: the one its form names.
pub async fn primary_organization(db: &crate::db::Db, p: &Provider) -> Result<String, DbError> {
    let record: Option<CheckRecord> = p
        .last_check
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok());
    if let Some(r) = record.filter(|r| !r.organization.is_empty()) {
        return Ok(r.organization);
    }
    Ok(db
        .organizations(&p.id)
        .await?
        .into_iter()
        .next()
        .map(|o| o.name)
        .unwrap_or_default())
}

/// **Test connection**: a token, then the organization's projects and
/// repositories, as the saved provider, against `organization` if given,
/// else the provider's own. The outcome is stored with the provider (its
/// health) and returned.
pub async fn test_connection(
    db: &crate::db::Db,
    clients: &crate::connections::ProviderConnections,
    id: &str,
    organization: Option<&str>,
) -> Result<CheckRecord, DbError> {
    let Some(provider) = db.provider(id).await? else {
        return Err(DbError::Sqlx(sqlx::Error::RowNotFound));
    };
    let organization = match organization {
        Some(o) => o.to_owned(),
        None => primary_organization(db, &provider).await?,
    };
    clients.forget(id);
    let mut record = CheckRecord {
        ok: false,
        token_ok: false,
        organization: organization.clone(),
        projects: 0,
        repositories: 0,
        diagnosis: None,
    };
    match clients.for_org(id, &organization).await {
        Ok(client) => {
            let (report, error) = spicehub_azure::check::check_client(&client).await;
            record.ok = error.is_none();
            record.token_ok = report.token.ok;
            record.projects = report.projects.len();
            record.repositories = report.projects.iter().map(|p| p.repositories.len()).sum();
            record.diagnosis = error.as_ref().map(DiagnosisRecord::of_error);
        }
        Err(ConnectionError::Azure(e)) => record.diagnosis = Some(DiagnosisRecord::of_error(&e)),
        Err(ConnectionError::Db(e)) => return Err(e),
        Err(other) => {
            record.diagnosis = Some(DiagnosisRecord {
                code: "hub_configuration".into(),
                title: "The hub cannot use this provider's credential".into(),
                hint: other.to_string(),
                field: "hub".into(),
            })
        }
    }
    let json = serde_json::to_string(&record).unwrap_or_default();
    db.record_provider_check(id, record.ok, &json, record.token_ok)
        .await?;
    tracing::info!(
        provider = %id,
        ok = record.ok,
        diagnosis = record.diagnosis.as_ref().map(|d| d.code.as_str()).unwrap_or("-"),
        "provider connection tested"
    );
    Ok(record)
}

pub fn client_error(e: ConnectionError) -> AdminError {
    match e {
        ConnectionError::Azure(e) => AdminError::Diagnosed(DiagnosisRecord::of_error(&e)),
        ConnectionError::Db(e) => internal(e),
        other => AdminError::Message(other.to_string()),
    }
}
