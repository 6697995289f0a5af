//! Git providers as the admin pages handle them: the Azure DevOps form
//! (validated field by field), **Test connection** (the steps of `spicehub
//! azure check`, run as the saved provider), the providers' health, the
//! admin-consent link of the hub's own app, and the repository picker.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{AdminError, DiagnosisRecord, FieldError};
use crate::connections::{credential_from_sealed, ConnectionError};
use crate::db::providers::{
    valid_password, valid_username, CredentialKind, NewProvider, Provider, ProviderError,
    ProviderUpdate, MIN_WEBHOOK_PASSWORD,
};
use crate::db::DbError;
use crate::Hub;
use spicehub_azure::is_guid;

/// The Azure DevOps form as posted (every secret optional: empty means
/// "keep the stored one"). No `Debug`: it holds secrets.
#[derive(Clone, Default)]
pub struct ProviderInput {
    pub id: Option<String>,
    pub display_name: String,
    /// `app_registration` (default) or `hub_app`.
    pub onboarding: String,
    pub tenant_id: String,
    pub client_id: String,
    /// `client_secret` (default), `certificate` or `pat`.
    pub credential_kind: String,
    pub client_secret: Option<String>,
    pub certificate: Option<String>,
    pub private_key: Option<String>,
    pub pat: Option<String>,
    /// `YYYY-MM-DD`.
    pub secret_expires: Option<String>,
    pub organization: String,
    pub webhook_username: String,
    pub webhook_password: Option<String>,
}

/// The form once every field is valid.
struct Valid {
    display_name: String,
    kind: CredentialKind,
    tenant_id: String,
    client_id: String,
    credential: Option<Vec<u8>>,
    secret_expires_at: Option<i64>,
    organization: String,
    webhook_username: String,
    webhook_password: Option<String>,
}

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

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A GUID or a verified domain name (`contoso.onmicrosoft.com`), not one
/// of the multi-tenant aliases the client-credentials flow refuses.
pub fn valid_tenant(t: &str) -> bool {
    t.parse::<spicehub_azure::TenantId>().is_ok()
}

/// As in `https://dev.azure.com/{organization}`.
pub fn valid_organization(o: &str) -> bool {
    o.parse::<spicehub_azure::OrganizationName>().is_ok()
}

fn parse_date(raw: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw, format)
        .ok()
        .map(|d| d.midnight().assume_utc().unix_timestamp())
}

fn validate(
    input: &ProviderInput,
    existing: Option<&Provider>,
    hub_app: Option<&crate::config::HubApp>,
) -> Result<Valid, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut err = |field: &str, message: &str| {
        errors.push(FieldError {
            field: field.to_owned(),
            message: message.to_owned(),
        })
    };
    let display_name = input.display_name.trim().to_owned();
    if display_name.is_empty() || display_name.chars().count() > 100 {
        err(
            "display_name",
            "Give the provider a name of 1 to 100 characters, for example your company's name.",
        );
    }
    let hub = input.onboarding == "hub_app";
    let kind = if hub {
        CredentialKind::HubApp
    } else {
        match input.credential_kind.as_str() {
            "certificate" => CredentialKind::Certificate,
            "pat" => CredentialKind::Pat,
            _ => CredentialKind::ClientSecret,
        }
    };
    if hub && hub_app.is_none() {
        err(
            "onboarding",
            "This hub has no multi-tenant app configured (SPICEHUB_HUB_CLIENT_ID and SPICEHUB_HUB_CLIENT_SECRET): use your own app registration.",
        );
    }
    let tenant_id = input.tenant_id.trim().to_ascii_lowercase();
    if !valid_tenant(&tenant_id) {
        err(
            "tenant_id",
            "Enter the Directory (tenant) ID: a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47, or a verified domain such as contoso.onmicrosoft.com.",
        );
    }
    let client_id = match (hub, hub_app) {
        (true, Some(h)) => h.client_id.clone(),
        (true, None) => String::new(),
        (false, _) => {
            let c = input.client_id.trim().to_ascii_lowercase();
            if !is_guid(&c) {
                err(
                    "client_id",
                    "Enter the Application (client) ID, a GUID shown on the app registration's Overview page.",
                );
            }
            c
        }
    };
    let needed = existing.is_none_or(|p| p.credential_kind != kind);
    let credential = match kind {
        CredentialKind::HubApp => needed.then(Vec::new),
        CredentialKind::ClientSecret => match non_empty(&input.client_secret) {
            Some(s) if is_guid(s) => {
                err(
                    "client_secret",
                    "This looks like the secret's ID (a GUID), not its value. In Certificates & secrets, copy the Value column of the secret (it is shown only once; create a new secret if it is hidden).",
                );
                None
            }
            Some(s) if s.chars().any(char::is_whitespace) => {
                err(
                    "client_secret",
                    "A client secret has no spaces: paste the Value column exactly.",
                );
                None
            }
            Some(s) => Some(s.as_bytes().to_vec()),
            None if needed => {
                err(
                    "client_secret",
                    "Paste the client secret's Value (Certificates & secrets in the app registration).",
                );
                None
            }
            None => None,
        },
        CredentialKind::Certificate => {
            match (non_empty(&input.certificate), non_empty(&input.private_key)) {
                (Some(cert), Some(key)) => {
                    let bundle = format!("{cert}\n{key}\n").into_bytes();
                    match credential_from_sealed(CredentialKind::Certificate, bundle.clone()) {
                        Ok(_) => Some(bundle),
                        Err(e) => {
                            let hint = e
                                .diagnosis()
                                .map(|d| d.hint().into_owned())
                                .unwrap_or_else(|| e.to_string());
                            err("certificate", &hint);
                            None
                        }
                    }
                }
                (None, None) if !needed => None,
                _ => {
                    err(
                        "certificate",
                        "Paste both the certificate (PEM, the public part uploaded to the app registration) and its private key (PEM).",
                    );
                    None
                }
            }
        }
        CredentialKind::Pat => match non_empty(&input.pat) {
            Some(p) => Some(p.as_bytes().to_vec()),
            None if needed => {
                err("pat", "Paste the personal access token.");
                None
            }
            None => None,
        },
    };
    let secret_expires_at = match non_empty(&input.secret_expires) {
        None => None,
        Some(raw) => match parse_date(raw) {
            Some(t) => Some(t),
            None => {
                err(
                    "secret_expires",
                    "Enter the expiry date as YYYY-MM-DD (Entra shows it next to the secret).",
                );
                None
            }
        },
    };
    let organization = input.organization.trim().to_owned();
    if !valid_organization(&organization) {
        err(
            "organization",
            "Enter the organization's name as in https://dev.azure.com/{organization}: letters, digits and hyphens.",
        );
    }
    let webhook_username = input.webhook_username.trim().to_owned();
    if !valid_username(&webhook_username) {
        err(
            "webhook_username",
            "The webhook user name is 1 to 256 characters, without spaces or ':'.",
        );
    }
    let webhook_password = match input.webhook_password.as_deref().filter(|p| !p.is_empty()) {
        Some(p) if valid_password(p) => Some(p.to_owned()),
        Some(_) => {
            err(
                "webhook_password",
                &format!(
                    "The webhook password needs {MIN_WEBHOOK_PASSWORD} to 256 characters without spaces: use Generate."
                ),
            );
            None
        }
        None if existing.is_none() => {
            err(
                "webhook_password",
                &format!(
                    "Set a webhook password: use Generate, or type {MIN_WEBHOOK_PASSWORD} to 256 characters without spaces."
                ),
            );
            None
        }
        None => None,
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Valid {
        display_name,
        kind,
        tenant_id,
        client_id,
        credential,
        secret_expires_at,
        organization,
        webhook_username,
        webhook_password,
    })
}

fn internal(e: impl std::fmt::Display) -> AdminError {
    tracing::error!(error = %e, "admin: database error");
    AdminError::Message(
        "The hub could not save this (database error). Try again; the hub's log has the details."
            .into(),
    )
}

fn provider_error(e: ProviderError) -> AdminError {
    match e {
        ProviderError::WebhookUsernameTaken => AdminError::Fields(vec![FieldError {
            field: "webhook_username".into(),
            message: "Another provider already uses this webhook user name: choose another.".into(),
        }]),
        ProviderError::WeakWebhookPassword => AdminError::Fields(vec![FieldError {
            field: "webhook_password".into(),
            message: e.to_string(),
        }]),
        ProviderError::BadWebhookUsername => AdminError::Fields(vec![FieldError {
            field: "webhook_username".into(),
            message: e.to_string(),
        }]),
        ProviderError::NotFound => AdminError::Message("No such Git provider.".into()),
        other => internal(other),
    }
}

/// Creates or updates a provider from the form; returns its id. The
/// organization named in the form is recorded with it.
pub async fn save(hub: &Hub, input: &ProviderInput) -> Result<String, AdminError> {
    let db = &hub.db;
    let key = &hub.config.secret_key;
    let existing = match &input.id {
        Some(id) => Some(
            db.provider(id)
                .await
                .map_err(internal)?
                .ok_or_else(|| AdminError::Message("No such Git provider.".into()))?,
        ),
        None => None,
    };
    let valid = validate(input, existing.as_ref(), hub.config.hub_app.as_ref())
        .map_err(AdminError::Fields)?;
    let id = match &existing {
        Some(p) => {
            db.update_provider(
                key,
                &p.id,
                &ProviderUpdate {
                    display_name: &valid.display_name,
                    tenant_id: &valid.tenant_id,
                    client_id: &valid.client_id,
                    credential_kind: valid.kind,
                    credential: valid.credential.as_deref(),
                    webhook_username: &valid.webhook_username,
                    webhook_password: valid.webhook_password.as_deref(),
                    secret_expires_at: valid.secret_expires_at,
                },
            )
            .await
            .map_err(provider_error)?;
            p.id.clone()
        }
        None => {
            let created = db
                .create_provider(
                    key,
                    &NewProvider {
                        display_name: &valid.display_name,
                        tenant_id: &valid.tenant_id,
                        client_id: &valid.client_id,
                        credential_kind: valid.kind,
                        credential: valid.credential.as_deref().unwrap_or_default(),
                        webhook_username: &valid.webhook_username,
                        webhook_password: valid.webhook_password.as_deref().unwrap_or_default(),
                        secret_expires_at: valid.secret_expires_at,
                    },
                )
                .await
                .map_err(provider_error)?;
            created.id
        }
    };
    db.ensure_organization(&id, &valid.organization, None)
        .await
        .map_err(provider_error)?;
    set_primary_organization(db, &id, &valid.organization)
        .await
        .map_err(internal)?;
    hub.connections.forget(&id);
    Ok(id)
}

/// A fresh default webhook user name (`spicehub-` and six letters or
/// digits), for the form and for `spicehub provider add`.
pub fn default_webhook_username() -> String {
    use rand::Rng;
    let suffix: String = rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(6)
        .map(|c| char::from(c).to_ascii_lowercase())
        .collect();
    format!("spicehub-{suffix}")
}

/// The organization the form names (Test connection uses it) is kept in
/// the last check record until a test runs.
async fn set_primary_organization(
    db: &crate::db::Db,
    id: &str,
    organization: &str,
) -> Result<(), DbError> {
    let Some(p) = db.provider(id).await? else {
        return Ok(());
    };
    let record: Option<CheckRecord> = p
        .last_check
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok());
    if record
        .as_ref()
        .is_some_and(|r| r.organization == organization)
    {
        return Ok(());
    }
    sqlx::query("UPDATE providers SET last_check = $2, last_check_at = NULL, last_check_ok = NULL WHERE id = $1")
        .bind(id)
        .bind(
            serde_json::to_string(&CheckRecord {
                ok: false,
                token_ok: false,
                organization: organization.to_owned(),
                projects: 0,
                repositories: 0,
                diagnosis: None,
            })
            .unwrap_or_default(),
        )
        .execute(db.pool())
        .await?;
    Ok(())
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

/// Adds the chosen repositories and every available one of the chosen
/// projects; returns how many were added.
pub async fn add_selected(
    hub: &Hub,
    provider_id: &str,
    organization: &str,
    repos: &BTreeMap<String, String>,
    projects: &BTreeMap<String, String>,
) -> Result<usize, AdminError> {
    use super::repositories::{add_repository, AddRepository};
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
            .map_err(client_error)?;
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

/// Admin consent came back: records the tenant on the provider the
/// `state` was made for. `Err` carries what to tell the admin.
pub async fn complete_consent(
    hub: &Hub,
    consent_state: &str,
    tenant: Option<&str>,
    error: Option<&str>,
) -> Result<(String, Option<String>), String> {
    let provider_id = hub
        .db
        .take_consent_request(consent_state)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "admin consent: database error");
            "The hub could not check the consent (database error). Try again.".to_owned()
        })?
        .ok_or_else(|| {
            "This admin-consent answer does not match a link the hub made, or the link is older than an hour or was used already. Open the provider and use its current link.".to_owned()
        })?;
    if let Some(error) = error {
        return Ok((provider_id, Some(error.to_owned())));
    }
    let tenant = tenant
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| valid_tenant(t))
        .ok_or_else(|| "The consent answer carries no valid tenant.".to_owned())?;
    hub.db
        .record_consent(&provider_id, &tenant)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "admin consent: database error");
            "The hub could not record the consent (database error). Try again.".to_owned()
        })?;
    hub.connections.forget(&provider_id);
    tracing::info!(provider = %provider_id, tenant = %tenant, "admin consent granted");
    Ok((provider_id, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ProviderInput {
        ProviderInput {
            display_name: "Contoso".into(),
            tenant_id: "contoso.onmicrosoft.com".into(),
            client_id: "0c6f8e2a-4d3b-4f7e-9b1a-2e5d7c9a1b30".into(),
            client_secret: Some("Xq48Q~demo.value".into()),
            organization: "contoso".into(),
            webhook_username: "spicehub-abc".into(),
            webhook_password: Some("a".repeat(30)),
            ..Default::default()
        }
    }

    fn fields(r: Result<Valid, Vec<FieldError>>) -> Vec<String> {
        match r {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|f| f.field).collect(),
        }
    }

    #[test]
    fn a_complete_form_is_valid() {
        assert!(validate(&input(), None, None).is_ok());
    }

    #[test]
    fn each_field_is_checked() {
        let mut i = input();
        i.tenant_id = "common".into();
        i.client_id = "not-a-guid".into();
        i.client_secret = Some("7d1e5b2c-9a4f-4c3e-8b6d-2f0a1c3e5d70".into());
        i.organization = "has space".into();
        i.webhook_username = "a b".into();
        i.webhook_password = Some("short".into());
        i.secret_expires = Some("31/12/2026".into());
        i.display_name = " ".into();
        assert_eq!(
            fields(validate(&i, None, None)),
            [
                "display_name",
                "tenant_id",
                "client_id",
                "client_secret",
                "secret_expires",
                "organization",
                "webhook_username",
                "webhook_password"
            ]
        );
        let mut i = input();
        i.onboarding = "hub_app".into();
        assert_eq!(fields(validate(&i, None, None)), ["onboarding"]);
    }
}
