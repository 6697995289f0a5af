//! Git providers as the admin pages handle them: the Azure DevOps form
//! (validated field by field), **Test connection** (the steps of `spicehub
//! azure check`, run as the saved provider), the providers' health, the
//! admin-consent link of the hub's own app, and the repository picker.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::{diagnosis_view, error_view, fmt_date, fmt_time, human_size};
use crate::api::admin::{
    AdminError, CheckView, DiagnosisView, FieldError, OrgListing, ProviderDefaults, ProviderView,
    RemoteProject, RemoteRepo,
};
use crate::azure::Diagnosis;
use crate::config::is_guid;
use crate::db::providers::{
    valid_password, valid_username, CredentialKind, NewProvider, Provider, ProviderError,
    ProviderUpdate, MIN_WEBHOOK_PASSWORD,
};
use crate::db::{now, DbError};
use crate::server::AppState;
use crate::sync::clients::{credential_from_sealed, ClientError};

/// Where the admin-consent flow comes back to.
pub const CONSENT_CALLBACK_PATH: &str = "/admin-consent/callback";

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
    pub diagnosis: Option<DiagnosisView>,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A GUID or a domain name (`contoso.onmicrosoft.com`), not one of the
/// multi-tenant aliases the client-credentials flow refuses.
pub fn valid_tenant(t: &str) -> bool {
    is_guid(t)
        || (t.contains('.')
            && t.len() <= 253
            && !t.starts_with('.')
            && !t.ends_with('.')
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
}

/// As in `https://dev.azure.com/{organization}`.
pub fn valid_organization(o: &str) -> bool {
    !o.is_empty()
        && o.len() <= 50
        && o.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !o.starts_with('-')
        && !o.ends_with('-')
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
pub async fn save(state: &AppState, input: &ProviderInput) -> Result<String, AdminError> {
    let db = &state.db;
    let key = &state.config.secret_key;
    let existing = match &input.id {
        Some(id) => Some(
            db.provider(id)
                .await
                .map_err(internal)?
                .ok_or_else(|| AdminError::Message("No such Git provider.".into()))?,
        ),
        None => None,
    };
    let valid = validate(input, existing.as_ref(), state.config.hub_app.as_ref())
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
    state.clients.forget(&id);
    Ok(id)
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
/// repositories, as the saved provider. The outcome is stored with the
/// provider (its health) and returned.
pub async fn test(state: &AppState, id: &str) -> Result<CheckView, DbError> {
    test_with(&state.db, &state.clients, id, None).await
}

/// [`test`] without a running server (`spicehub provider check`), against
/// `organization` if given, else the provider's own.
pub async fn test_with(
    db: &crate::db::Db,
    clients: &crate::sync::clients::Clients,
    id: &str,
    organization: Option<&str>,
) -> Result<CheckView, DbError> {
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
            let (report, error) = crate::azure::check::check_client(&client).await;
            record.ok = error.is_none();
            record.token_ok = report.token.ok;
            record.projects = report.projects.len();
            record.repositories = report.projects.iter().map(|p| p.repositories.len()).sum();
            record.diagnosis = error.as_ref().map(error_view);
        }
        Err(ClientError::Azure(e)) => record.diagnosis = Some(error_view(&e)),
        Err(ClientError::Db(e)) => return Err(e),
        Err(other) => {
            record.diagnosis = Some(DiagnosisView {
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
    Ok(CheckView {
        at: fmt_time(now()),
        ok: record.ok,
        token_ok: record.token_ok,
        organization: record.organization,
        projects: record.projects,
        repositories: record.repositories,
        diagnosis: record.diagnosis,
    })
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

fn public_base(state: &AppState) -> String {
    state
        .config
        .public_url
        .as_str()
        .trim_end_matches('/')
        .to_owned()
}

pub fn defaults(state: &AppState) -> ProviderDefaults {
    use rand::Rng;
    let suffix: String = rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(6)
        .map(|c| char::from(c).to_ascii_lowercase())
        .collect();
    ProviderDefaults {
        webhook_url: crate::sync::hooks::webhook_url(&state.config.public_url),
        webhook_username: format!("spicehub-{suffix}"),
        hub_app_client_id: state.config.hub_app.as_ref().map(|h| h.client_id.clone()),
        consent_redirect_uri: format!("{}{CONSENT_CALLBACK_PATH}", public_base(state)),
    }
}

async fn build_view(
    state: &AppState,
    p: Provider,
    with_consent_link: bool,
) -> Result<ProviderView, DbError> {
    let db = &state.db;
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
        (Some(r), Some(at)) => Some(CheckView {
            at: fmt_time(at),
            ok: r.ok,
            token_ok: r.token_ok,
            organization: r.organization.clone(),
            projects: r.projects,
            repositories: r.repositories,
            diagnosis: r.diagnosis.clone(),
        }),
        _ => None,
    };
    let live = state.clients.token_status(&p.id);
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
    let hub = p.credential_kind == CredentialKind::HubApp;
    let consent_link = match (&state.config.hub_app, hub && p.consented_at.is_none()) {
        (Some(app), true) if with_consent_link => {
            let consent_state = db.create_consent_request(&p.id).await?;
            let redirect = format!("{}{CONSENT_CALLBACK_PATH}", public_base(state));
            let enc = |v: &str| -> String {
                url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
            };
            Some(format!(
                "{}/{}/adminconsent?client_id={}&redirect_uri={}&state={}",
                state.config.azure.authority_url.trim_end_matches('/'),
                enc(&p.tenant_id),
                enc(&app.client_id),
                enc(&redirect),
                enc(&consent_state),
            ))
        }
        _ => None,
    };
    Ok(ProviderView {
        onboarding: if hub { "hub_app" } else { "app_registration" }.into(),
        credential_kind: p.credential_kind.as_str().into(),
        credential_label: credential_label(p.credential_kind).into(),
        deprecated: p.credential_kind == CredentialKind::Pat,
        credential_set: (!hub)
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
        webhook_url: crate::sync::hooks::webhook_url(&state.config.public_url),
        consented: p.consented_at.map(fmt_time),
        consent_link,
        id: p.id,
        display_name: p.display_name,
        tenant_id: p.tenant_id,
        client_id: p.client_id,
        webhook_username: p.webhook_username,
    })
}

pub async fn views(state: &AppState) -> Result<Vec<ProviderView>, DbError> {
    let mut out = Vec::new();
    for p in state.db.providers().await? {
        out.push(build_view(state, p, false).await?);
    }
    Ok(out)
}

pub async fn view(state: &AppState, id: &str) -> Result<Option<ProviderView>, DbError> {
    match state.db.provider(id).await? {
        Some(p) => Ok(Some(build_view(state, p, true).await?)),
        None => Ok(None),
    }
}

fn client_error(e: ClientError) -> AdminError {
    match e {
        ClientError::Azure(e) => AdminError::Diagnosed(error_view(&e)),
        ClientError::Db(e) => internal(e),
        other => AdminError::Message(other.to_string()),
    }
}

/// The projects and repositories the service principal sees.
pub async fn browse(
    state: &AppState,
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
    let client = state
        .clients
        .for_org(provider_id, organization)
        .await
        .map_err(client_error)?;
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
    let added: HashSet<String> = state
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

/// Adds the chosen repositories and every available one of the chosen
/// projects; returns how many were added.
pub async fn add_selected(
    state: &AppState,
    provider_id: &str,
    organization: &str,
    repos: &BTreeMap<String, String>,
    projects: &BTreeMap<String, String>,
) -> Result<usize, AdminError> {
    use super::repositories::{add_repository, AddRepository, AdminError as RepoError};
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
        let client = state
            .clients
            .for_org(provider_id, organization)
            .await
            .map_err(client_error)?;
        for project in projects.keys().map(|k| key(k)) {
            let listed = client
                .list_repositories(&project)
                .await
                .map_err(|e| AdminError::Diagnosed(error_view(&e)))?;
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
            &state.db,
            &state.clients,
            &state.queue,
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
            Err(RepoError::AlreadyAdded) => {}
            Err(RepoError::Azure(e)) => {
                let d = error_view(&e);
                failures.push(format!("{repository}: {}. {}", d.title, d.hint));
            }
            Err(RepoError::Client(e)) => failures.push(format!("{repository}: {e}")),
            Err(RepoError::Db(e)) => return Err(internal(e)),
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
    state: &AppState,
    consent_state: &str,
    tenant: Option<&str>,
    error: Option<&str>,
) -> Result<(String, Option<String>), String> {
    let provider_id = state
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
    state
        .db
        .record_consent(&provider_id, &tenant)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "admin consent: database error");
            "The hub could not record the consent (database error). Try again.".to_owned()
        })?;
    state.clients.forget(&provider_id);
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
