//! **Test connection**: a token, then the organization's projects and
//! repositories, as the saved provider; the outcome is stored with the
//! provider as its health and read back by the pages.

use serde::{Deserialize, Serialize};

use super::validate::{validate, Purpose};
use super::{internal, ProviderInput};
use crate::admin::{AdminError, DiagnosisRecord};
use crate::connections::{credential_from_sealed, ConnectionError};
use crate::db::providers::{CredentialKind, Provider};
use crate::db::DbError;
use crate::Hub;

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

impl CheckRecord {
    /// The provider's last test, as stored with it.
    pub fn of(p: &Provider) -> Option<CheckRecord> {
        p.last_check
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok())
    }
}

/// The organization a provider is tested against: the one its form names.
pub async fn primary_organization(db: &crate::db::Db, p: &Provider) -> Result<String, DbError> {
    if let Some(r) = CheckRecord::of(p).filter(|r| !r.organization.is_empty()) {
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
    let record = test_connection_once(db, clients, id, organization).await?;
    let propagating = record
        .diagnosis
        .as_ref()
        .is_some_and(|d| d.code == "federated_no_match");
    if propagating {
        retry_while_propagating(
            db.clone(),
            clients.clone(),
            id.to_owned(),
            record.organization.clone(),
        );
    }
    Ok(record)
}

/// How often, and how long, a federated credential Entra does not know
/// yet is tried again: Microsoft says a new one can take a few minutes.
const PROPAGATION_RETRY: std::time::Duration = std::time::Duration::from_secs(30);
const PROPAGATION_TRIES: u32 = 20;

/// Tests the provider again in the background while Entra still answers
/// AADSTS70021, so its health turns green by itself once the federated
/// credential has propagated. One such task per provider.
fn retry_while_propagating(
    db: crate::db::Db,
    clients: crate::connections::ProviderConnections,
    id: String,
    organization: String,
) {
    static RUNNING: std::sync::OnceLock<parking_lot::Mutex<std::collections::HashSet<String>>> =
        std::sync::OnceLock::new();
    let running = RUNNING.get_or_init(Default::default);
    if !running.lock().insert(id.clone()) {
        return;
    }
    tokio::spawn(async move {
        for _ in 0..PROPAGATION_TRIES {
            tokio::time::sleep(PROPAGATION_RETRY).await;
            match test_connection_once(&db, &clients, &id, Some(&organization)).await {
                Ok(r)
                    if r.diagnosis
                        .as_ref()
                        .is_some_and(|d| d.code == "federated_no_match") => {}
                Ok(_) => break,
                // The provider was deleted, or the database is away.
                Err(_) => break,
            }
        }
        running.lock().remove(&id);
    });
}

async fn test_connection_once(
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
    let hub_app = provider.credential_kind == CredentialKind::HubApp;
    let record = check(
        // An admin waits on the answer: ahead of any sync of the provider.
        clients
            .for_org(id, &organization)
            .await
            .map(|c| c.with_priority(spicehub_azure::Priority::Interactive)),
        organization,
        hub_app,
    )
    .await?;
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

/// Runs the checks with a client (or records why there is none).
async fn check(
    client: Result<spicehub_azure::client::AzureClient, ConnectionError>,
    organization: String,
    hub_app: bool,
) -> Result<CheckRecord, DbError> {
    let mut record = CheckRecord {
        ok: false,
        token_ok: false,
        organization,
        projects: 0,
        repositories: 0,
        diagnosis: None,
    };
    match client {
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
    // For the hub's app, "no such application in this tenant" means nobody
    // there has consented yet: say that, not "check the client ID" (a
    // field this model does not have).
    if hub_app
        && record
            .diagnosis
            .as_ref()
            .is_some_and(|d| d.code == "unknown_client_id")
    {
        record.diagnosis = Some(DiagnosisRecord {
            code: "admin_consent_missing".into(),
            title: "No admin of this tenant has consented to the hub's app yet".into(),
            hint: "Save, then send the admin-consent link shown here to an administrator of the tenant (a Global, Application or Cloud Application Administrator). This page shows their consent as soon as it arrives; then test again.".into(),
            field: "hub".into(),
        });
    }
    Ok(record)
}

/// **Test connection** of the form as typed, without storing any of it: a
/// wrong secret tried here must not replace the working one (only Save
/// stores). An empty secret field means the stored one. The outcome becomes
/// the provider's health only when the form holds exactly what is stored.
pub async fn test_form(hub: &Hub, input: &ProviderInput) -> Result<CheckRecord, AdminError> {
    let db = &hub.db;
    let existing = super::existing_provider(db, input.id.as_deref()).await?;
    let valid = validate(
        input,
        existing.as_ref(),
        hub.config.hub_app.as_ref(),
        Purpose::Test,
    )
    .map_err(AdminError::Fields)?;
    let clients = &hub.connections;
    let credential = match (&valid.credential, &existing) {
        (_, _) if valid.kind == CredentialKind::HubApp => clients.hub_app_credential(),
        (Some(bytes), _) if valid.kind == CredentialKind::Federated => {
            String::from_utf8(bytes.clone())
                .map_err(|_| ConnectionError::Sealed)
                .and_then(|subject| clients.federated_credential(&subject))
                .map(|c| (valid.client_id.clone(), c))
        }
        (Some(bytes), _) => credential_from_sealed(valid.kind, bytes.clone())
            .map(|c| (valid.client_id.clone(), c))
            .map_err(ConnectionError::Azure),
        // The field was left empty: the stored credential, with the
        // client ID typed in the form.
        (None, Some(p)) => clients
            .stored_credential(p)
            .await
            .map(|(_, c)| (valid.client_id.clone(), c)),
        (None, None) => Err(ConnectionError::ProviderMissing),
    };
    let client = credential.and_then(|(client_id, credential)| {
        clients
            .unsaved(
                &valid.tenant_id,
                &client_id,
                credential,
                &valid.organization,
            )
            .map(|c| c.with_priority(spicehub_azure::Priority::Interactive))
    });
    let tried = client.as_ref().ok().cloned();
    let hub_app = valid.kind == CredentialKind::HubApp;
    let record = check(client, valid.organization.clone(), hub_app)
        .await
        .map_err(internal)?;
    if let Some(c) = tried {
        clients.forget_client(&c);
    }
    if let Some(p) = existing.as_ref() {
        let organization = primary_organization(db, p).await.map_err(internal)?;
        // A federated form always carries its subject (it is shown, not
        // secret): the same subject as stored is the stored credential.
        let same_credential = match &valid.credential {
            None => true,
            Some(subject) if valid.kind == CredentialKind::Federated => db
                .provider_credential(&hub.config.secret_key, &p.id)
                .await
                .is_ok_and(|stored| &stored == subject),
            Some(_) => false,
        };
        let as_stored = same_credential
            && valid.kind == p.credential_kind
            && valid.tenant_id == p.tenant_id
            && valid.client_id == p.client_id
            && valid.organization == organization;
        if as_stored {
            let json = serde_json::to_string(&record).unwrap_or_default();
            db.record_provider_check(&p.id, record.ok, &json, record.token_ok)
                .await
                .map_err(internal)?;
            if record
                .diagnosis
                .as_ref()
                .is_some_and(|d| d.code == "federated_no_match")
            {
                retry_while_propagating(
                    db.clone(),
                    hub.connections.clone(),
                    p.id.clone(),
                    organization,
                );
            }
        }
    }
    tracing::info!(
        provider = input.id.as_deref().unwrap_or("(new)"),
        ok = record.ok,
        diagnosis = record
            .diagnosis
            .as_ref()
            .map(|d| d.code.as_str())
            .unwrap_or("-"),
        "form connection tested (nothing stored)"
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
