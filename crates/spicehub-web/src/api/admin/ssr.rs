//! The admin pages' server half: who may call, where the hub is, and the
//! view models the pages show, built from the domain values of
//! `spicehub_core::admin` (formatted times, labels, sizes). Errors of the
//! core's commands are mapped here, once, to what the admin reads.

pub use crate::api::format::{fmt_date, fmt_time};
use std::collections::{HashMap, HashSet};

use spicehub_azure::{AzureError, Diagnosis};
use spicehub_core::admin::providers::{client_error, valid_organization, CheckRecord};
use spicehub_core::admin::repositories::{active_jobs, request_sync};
use spicehub_core::admin::{AdminError as CoreError, DiagnosisRecord};
use spicehub_core::db::providers::{CredentialKind, Provider};
use spicehub_core::db::{now, Db, DbError};
use spicehub_core::issuer::provider_subject;
use spicehub_core::sync::hooks::webhook_url;
use spicehub_core::sync::JobKind;
use spicehub_core::Hub;

use super::*;

impl From<DiagnosisRecord> for DiagnosisView {
    fn from(d: DiagnosisRecord) -> Self {
        DiagnosisView {
            code: d.code,
            title: d.title,
            hint: d.hint,
            field: d.field,
        }
    }
}

impl From<CoreError> for AdminError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Message(m) => AdminError::Message(m),
            CoreError::Fields(list) => AdminError::Fields(
                list.into_iter()
                    .map(|f| FieldError {
                        field: f.field,
                        message: f.message,
                    })
                    .collect(),
            ),
            CoreError::Diagnosed(d) => AdminError::Diagnosed(d.into()),
            CoreError::Azure(e) => AdminError::Diagnosed(error_view(&e)),
            CoreError::Connection(spicehub_core::connections::ConnectionError::Azure(e)) => {
                AdminError::Diagnosed(error_view(&e))
            }
            CoreError::Db(e) => internal(e),
            CoreError::Queue(e) => internal(e),
            CoreError::Provider(e) => internal(e),
            other => AdminError::Message(other.to_string()),
        }
    }
}

fn check_view(at: i64, r: CheckRecord) -> CheckView {
    CheckView {
        at: fmt_time(at),
        ok: r.ok,
        token_ok: r.token_ok,
        organization: r.organization,
        projects: r.projects,
        repositories: r.repositories,
        diagnosis: r.diagnosis.map(Into::into),
    }
}

/// **Test connection** as the page shows it.
pub async fn test_connection(hub: &Hub, id: &str) -> Result<CheckView, DbError> {
    let record =
        spicehub_core::admin::providers::test_connection(&hub.db, &hub.connections, id, None)
            .await?;
    Ok(check_view(now(), record))
}

/// **Test connection** of the form as typed (nothing stored).
pub async fn test_form(
    hub: &Hub,
    input: &spicehub_core::admin::providers::ProviderInput,
) -> Result<CheckView, AdminError> {
    let record = spicehub_core::admin::providers::test_form(hub, input).await?;
    Ok(check_view(now(), record))
}

use super::AdminError;
use spicehub_core::auth::AuthUser;

pub fn require_admin() -> Result<AuthUser, AdminError> {
    match crate::api::session::request_user() {
        Some(user) if user.is_admin() => Ok(user),
        Some(_) => {
            crate::api::session::set_status(http::StatusCode::FORBIDDEN.as_u16());
            Err(AdminError::Message("This is for hub admins only.".into()))
        }
        None => {
            crate::api::session::set_status(http::StatusCode::UNAUTHORIZED.as_u16());
            Err(AdminError::Message(
                "Your session has ended: sign in again.".into(),
            ))
        }
    }
}

pub fn state() -> Result<Hub, AdminError> {
    leptos::prelude::use_context::<Hub>()
        .ok_or_else(|| AdminError::Message("The hub is not fully started yet.".into()))
}

/// Logged in full, shown to the admin without internals.
pub fn internal(e: impl std::fmt::Display) -> AdminError {
    tracing::error!(error = %e, "admin action failed");
    crate::api::session::set_status(http::StatusCode::INTERNAL_SERVER_ERROR.as_u16());
    AdminError::Message(
        "The hub could not do this (database error). Try again; the hub's log has the details."
            .into(),
    )
}

/// A diagnosis as the pages show it.
pub fn diagnosis_view(d: &Diagnosis) -> DiagnosisView {
    DiagnosisRecord::of(d).into()
}

/// An Azure error as the pages show it (its diagnosis, or its text).
pub fn error_view(e: &AzureError) -> DiagnosisView {
    DiagnosisRecord::of_error(e).into()
}

/// The diagnosis behind a stored failure message ending in `[code]`.
pub fn diagnosis_in_message(message: &str) -> Option<DiagnosisView> {
    let start = message.rfind('[')?;
    let end = start + message[start..].find(']')?;
    Diagnosis::from_code(&message[start + 1..end]).map(|d| diagnosis_view(&d))
}

fn credential_label(kind: CredentialKind) -> &'static str {
    match kind {
        CredentialKind::ClientSecret => "Client secret",
        CredentialKind::Certificate => "Certificate",
        CredentialKind::Pat => "Personal access token (deprecated)",
        CredentialKind::HubApp => "The hub's multi-tenant app (admin consent)",
        CredentialKind::Federated => "Federated credential (no secret)",
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

fn public_base(hub: &Hub) -> String {
    hub.config
        .public_url
        .as_str()
        .trim_end_matches('/')
        .to_owned()
}

pub fn provider_defaults(hub: &Hub) -> ProviderDefaults {
    ProviderDefaults {
        webhook_url: webhook_url(&hub.config.public_url),
        webhook_username: spicehub_core::admin::providers::default_webhook_username(),
        hub_app_client_id: hub.config.hub_app.as_ref().map(|h| h.client_id.clone()),
        consent_redirect_uri: format!("{}{}", public_base(hub), spicehub_routes::CONSENT_CALLBACK),
        public_url_warnings: public_url_warnings(&hub.config.public_url),
        issuer: hub.issuer.url().to_owned(),
        federated_audience: spicehub_azure::credentials::FEDERATED_AUDIENCE.to_owned(),
        new_federated_subject: provider_subject(&uuid::Uuid::new_v4().to_string()),
        federated_recommended: hub.issuer.reachability_problem().is_none(),
        federated_problem: hub.issuer.reachability_problem().map(str::to_owned),
    }
}

/// The Subject a provider's federated credential names: the stored one for
/// a federated provider (`None` if it cannot be read), else the one it
/// would get, derived from its id so that it stays the same between loads.
async fn federated_subject(hub: &Hub, p: &Provider) -> Option<String> {
    if p.credential_kind != CredentialKind::Federated {
        return Some(provider_subject(&p.id));
    }
    match hub
        .db
        .provider_credential(&hub.config.secret_key, &p.id)
        .await
    {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(subject) => Some(subject),
            Err(_) => {
                tracing::warn!(provider = %p.id, "the stored federated subject is not UTF-8");
                None
            }
        },
        Err(e) => {
            tracing::warn!(provider = %p.id, error = %e, "the stored federated subject cannot be read");
            None
        }
    }
}

/// What is wrong with the public URL for a webhook: Azure DevOps posts from
/// the internet, and Basic Auth over http carries the password in clear.
pub fn public_url_warnings(url: &url::Url) -> Vec<String> {
    let mut warnings = Vec::new();
    if spicehub_core::config::is_local_host(url) {
        warnings.push(format!(
            "The hub's public URL is {url}, a local address: Azure DevOps cannot reach it, so its deliveries will fail. \
             Set SPICEHUB_PUBLIC_URL to the address the internet reaches."
        ));
    }
    if url.scheme() != "https" {
        warnings.push(
            "The hub's public URL uses http: Basic Auth would send the webhook password in clear. \
             Serve the hub over HTTPS and set SPICEHUB_PUBLIC_URL to its https address."
                .to_owned(),
        );
    }
    warnings
}

async fn build_view(
    hub: &Hub,
    p: Provider,
    with_consent_link: bool,
) -> Result<ProviderView, DbError> {
    let db = &hub.db;
    let orgs = db.organizations(&p.id).await?;
    let org_ids: HashSet<&str> = orgs.iter().map(|o| o.id.as_str()).collect();
    let repositories = db
        .repositories()
        .await?
        .iter()
        .filter(|r| org_ids.contains(r.organization_id.as_str()))
        .count();
    let record = CheckRecord::of(&p);
    let last_check = match (&record, p.last_check_at) {
        (Some(r), Some(at)) => Some(check_view(at, r.clone())),
        _ => None,
    };
    let live = hub.connections.token_status(&p.id);
    let last_token = last_token_at(&p, live.as_ref());
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
    let hub_app = p.credential_kind == CredentialKind::HubApp;
    let consent_link = match (&hub.config.hub_app, hub_app && p.consented_at.is_none()) {
        (Some(app), true) if with_consent_link => {
            let consent_state = db.create_consent_request(&p.id, &p.tenant_id).await?;
            let redirect = format!("{}{}", public_base(hub), spicehub_routes::CONSENT_CALLBACK);
            let enc = |v: &str| -> String {
                url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
            };
            Some(format!(
                "{}/{}/adminconsent?client_id={}&redirect_uri={}&state={}",
                hub.config.azure.authority_url.trim_end_matches('/'),
                enc(&p.tenant_id),
                enc(&app.client_id),
                enc(&redirect),
                enc(&consent_state),
            ))
        }
        _ => None,
    };
    let federated_subject = federated_subject(hub, &p).await;
    let rate_limits = hub
        .connections
        .rate_limits(&p.id)
        .into_iter()
        .map(|(_, report)| rate_limit_view(&report))
        .collect();
    Ok(ProviderView {
        rate_limits,
        federated_subject,
        onboarding: if hub_app {
            "hub_app"
        } else {
            "app_registration"
        }
        .into(),
        credential_kind: p.credential_kind.as_str().into(),
        credential_label: credential_label(p.credential_kind).into(),
        deprecated: p.credential_kind == CredentialKind::Pat,
        credential_set: (!hub_app)
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
        webhook_url: webhook_url(&hub.config.public_url),
        consented: p.consented_at.map(fmt_time),
        consent_link,
        previous_password_until: p.previous_password_until.map(fmt_time),
        id: p.id,
        display_name: p.display_name,
        tenant_id: p.tenant_id,
        client_id: p.client_id,
        webhook_username: p.webhook_username,
    })
}

/// Whole unix seconds, as the database keeps times; None before 1970.
fn unix_secs(t: std::time::SystemTime) -> Option<i64> {
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn unix(t: std::time::SystemTime) -> i64 {
    unix_secs(t).unwrap_or(0)
}

/// A gate's report in an admin's words.
fn rate_limit_view(r: &spicehub_azure::GateReport) -> RateLimitView {
    use spicehub_azure::ThrottleCause;
    let budget = match &r.budget {
        Some(b) => format!(
            "{:.0}{} TSTUs left{} as of {}; usage back to zero by {} if requests stopped",
            b.remaining,
            b.limit.map(|l| format!(" of {l:.0}")).unwrap_or_default(),
            b.resource
                .as_deref()
                .map(|res| format!(" ({res})"))
                .unwrap_or_default(),
            fmt_time(unix(b.observed_at)),
            fmt_time(unix(b.reset)),
        ),
        None => {
            "No figures from Azure DevOps yet: it sends them only as usage nears the limit.".into()
        }
    };
    let slowed = r.last_slowed.map(|s| {
        let why = match s.cause {
            ThrottleCause::RetryAfter => "Azure DevOps asked the hub to wait (Retry-After)",
            ThrottleCause::RateLimitReset => {
                "the budget was used up, so the hub waited for it to refill"
            }
            ThrottleCause::RateLimitDelay => {
                "Azure DevOps was delaying requests, so the hub spaced them out"
            }
            ThrottleCause::RateLimitPacing => {
                "the budget was running low, so the hub spread its requests out"
            }
        };
        format!("Last slowed down {}: {why}.", fmt_time(unix(s.at)))
    });
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let counts = format!(
        "{} ({:.1} s in all), {}, {} since the hub started",
        plural(r.waits, "wait", "waits"),
        r.total_wait_ms as f64 / 1000.0,
        plural(r.responses_429, "429 answer", "429 answers"),
        plural(r.answers, "answer", "answers"),
    );
    RateLimitView {
        organization: r.organization.clone(),
        budget,
        slowed,
        counts,
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// When a token was last obtained for the provider: by a stored test, or
/// by this hub since it started (the token cache's view).
fn last_token_at(p: &Provider, live: Option<&spicehub_azure::token::TokenStatus>) -> Option<i64> {
    let live = live.and_then(|s| s.last_obtained).and_then(unix_secs);
    live.max(p.last_token_at)
}

/// The checklist of a provider's setup, in the order an admin does it.
pub async fn setup_progress(hub: &Hub, id: &str) -> Result<Option<SetupProgress>, DbError> {
    let Some(p) = hub.db.provider(id).await? else {
        return Ok(None);
    };
    let facts = hub.db.setup_facts(id).await?;
    let record = CheckRecord::of(&p).filter(|_| p.last_check_at.is_some());
    let organization = match &record {
        Some(r) if !r.organization.is_empty() => r.organization.clone(),
        _ => spicehub_core::admin::providers::primary_organization(&hub.db, &p).await?,
    };
    let hub_app = p.credential_kind == CredentialKind::HubApp;
    let (app_name, client_id) = match (&hub.config.hub_app, hub_app) {
        (Some(app), true) => ("spicehub (the hub's app)".to_owned(), app.client_id.clone()),
        _ => ("your app registration".to_owned(), p.client_id.clone()),
    };
    let devops = hub.config.azure.devops_url.trim_end_matches('/').to_owned();
    let code = record
        .as_ref()
        .and_then(|r| r.diagnosis.as_ref())
        .map(|d| d.code.as_str())
        .unwrap_or_default();
    let token_at = last_token_at(&p, hub.connections.token_status(&p.id).as_ref());
    let token_ok = token_at.is_some() || record.as_ref().is_some_and(|r| r.token_ok);
    // A member that sees no repository still reads the organization: the
    // check fails later, at "no repositories visible".
    let member = record
        .as_ref()
        .is_some_and(|r| r.ok || code == "no_repositories_visible");
    let visible = record.as_ref().map(|r| r.repositories).unwrap_or(0);
    let step =
        |key: &str, title: &str, done: bool, detail: String, link: Option<(&str, String)>| {
            SetupStep {
                key: key.into(),
                title: title.into(),
                done,
                detail,
                link: link.map(|(t, u)| (t.to_owned(), u)),
            }
        };
    let mut steps = Vec::new();
    if hub_app {
        steps.push(step(
            "consent",
            "An administrator of your tenant grants admin consent to the hub's app",
            p.consented_at.is_some(),
            match p.consented_at {
                Some(at) => format!("Consent recorded on {}.", fmt_time(at)),
                None => "Waiting: send the admin-consent link on this page to a Global, Application or Cloud Application Administrator of the tenant.".into(),
            },
            None,
        ));
    } else if p.credential_kind == CredentialKind::Federated {
        // Saving stores only the Subject: the credential in the portal is
        // seen to be there when Entra ID hands out a token for it.
        steps.push(step(
            "app",
            "Register an application in Microsoft Entra ID and add a federated credential (Certificates & secrets › Federated credentials, scenario \"Other issuer\") with the Issuer, Subject and Audience shown above",
            p.credential_set_at.is_some() && token_ok,
            if token_ok {
                format!("Application (client) ID {}; Entra ID accepted the hub's assertion.", p.client_id)
            } else {
                format!("Application (client) ID {}; no token yet: add the federated credential, then press Test connection.", p.client_id)
            },
            Some((
                "Open the app's federated credentials",
                format!(
                    "https://portal.azure.com/#view/Microsoft_AAD_RegisteredApps/ApplicationMenuBlade/~/Credentials/appId/{}",
                    p.client_id
                ),
            )),
        ));
    } else {
        steps.push(step(
            "app",
            "Register an application in Microsoft Entra ID and add a client secret (Certificates & secrets)",
            p.credential_set_at.is_some(),
            format!("Application (client) ID {}.", p.client_id),
            Some((
                "Open the app registration",
                format!(
                    "https://portal.azure.com/#view/Microsoft_AAD_RegisteredApps/ApplicationMenuBlade/~/Overview/appId/{}",
                    p.client_id
                ),
            )),
        ));
    }
    steps.push(step(
        "token",
        "The hub obtains a token as the application",
        token_ok,
        match token_at {
            Some(at) => format!("Last token obtained on {}.", fmt_time(at)),
            None if token_ok => "A token was obtained by the last test.".into(),
            None => "Not yet: press Test connection.".into(),
        },
        None,
    ));
    // Names go into the path as segments (a project name may hold spaces).
    let portal = |segments: &[&str]| -> Option<String> {
        let mut url = url::Url::parse(&devops).ok()?;
        url.path_segments_mut()
            .ok()?
            .pop_if_empty()
            .extend(segments);
        Some(url.to_string())
    };
    let users = (!organization.is_empty())
        .then(|| portal(&[&organization, "_settings", "users"]))
        .flatten();
    steps.push(step(
        "member",
        "Add the application's service principal to the organization (Organization settings › Users › Add users), access level Basic",
        member,
        if member {
            format!("The service principal reads the organization {organization}.")
        } else {
            format!("Search for {app_name} (client ID {client_id}) in Add users, with the Basic access level, then test again.")
        },
        users.map(|u| ("Organization settings › Users", u)),
    ));
    steps.push(step(
        "repositories",
        "Give it access to the projects whose repositories the hub reads (add it to each project's Readers group)",
        visible > 0,
        if visible > 0 {
            format!("{visible} repositories visible at the last test.")
        } else {
            "No repository visible yet.".into()
        },
        None,
    ));
    steps.push(step(
        "replication",
        "Add repositories; the hub replicates them",
        facts.first_replication_at.is_some(),
        match facts.first_replication_at {
            Some(at) => format!("First replication done on {}.", fmt_time(at)),
            None => "None replicated yet: Add repositories.".into(),
        },
        Some((
            "Open the repository picker",
            format!("/providers/{}/repositories", p.id),
        )),
    ));
    let hooks_page = facts
        .first_project
        .as_ref()
        .and_then(|(org, project)| portal(&[org, project, "_settings", "serviceHooks"]));
    steps.push(step(
        "delivery",
        "Create a service hook (Project settings › Service hooks › Web Hooks, event Code pushed) with the hub's URL and Basic Auth",
        facts.first_delivery_at.is_some(),
        match facts.first_delivery_at {
            Some(at) => format!("First delivery received on {}.", fmt_time(at)),
            None => "No delivery received yet: create the hook (or let the hub create it on the Webhooks page), then press its Test button.".into(),
        },
        hooks_page.clone().map(|u| ("Project settings › Service hooks", u)),
    ));
    steps.push(step(
        "hook_enabled",
        "The service hook is enabled in Azure DevOps",
        facts.hooks > 0 && facts.hooks_enabled == facts.hooks,
        match (facts.hooks, facts.hooks_enabled) {
            (0, _) => {
                "The hub has not created a service hook for this provider (see the Webhooks page)."
                    .into()
            }
            (n, e) if n == e => format!("{n} service hook(s) enabled."),
            (n, e) => format!("{e} of {n} service hooks enabled: see the Webhooks page."),
        },
        Some(("Webhooks", "/webhooks".to_owned())),
    ));
    Ok(Some(SetupProgress {
        consented: p.consented_at.map(fmt_time),
        tenant_id: p.tenant_id,
        app_name,
        client_id,
        steps,
    }))
}

pub async fn provider_views(hub: &Hub) -> Result<Vec<ProviderView>, DbError> {
    let mut out = Vec::new();
    for p in hub.db.providers().await? {
        out.push(build_view(hub, p, false).await?);
    }
    Ok(out)
}

pub async fn provider_view(hub: &Hub, id: &str) -> Result<Option<ProviderView>, DbError> {
    match hub.db.provider(id).await? {
        Some(p) => Ok(Some(build_view(hub, p, true).await?)),
        None => Ok(None),
    }
}

/// The organization's projects as the service principal sees them (one
/// request): the picker shows them at once and asks for each project's
/// repositories separately ([`browse_project`]), so the first projects are
/// on screen before the last are listed.
pub async fn browse_projects(
    hub: &Hub,
    provider_id: &str,
    organization: &str,
) -> Result<ProjectList, AdminError> {
    let organization = spicehub_core::admin::providers::organization_name(organization);
    let client = picker_client(hub, provider_id, &organization).await?;
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
    Ok(ProjectList {
        organization,
        projects: projects
            .into_iter()
            .map(|p| ProjectHead {
                id: p.id,
                name: p.name,
            })
            .collect(),
        none_visible: diagnosis_view(&Diagnosis::NoRepositoriesVisible),
    })
}

/// One project's repositories for the picker. A failure to list them is
/// the project's diagnosis, not an error of the page: the other projects
/// stay usable.
pub async fn browse_project(
    hub: &Hub,
    provider_id: &str,
    organization: &str,
    project_id: &str,
) -> Result<ProjectRepos, AdminError> {
    let organization = spicehub_core::admin::providers::organization_name(organization);
    let client = picker_client(hub, provider_id, &organization).await?;
    let listed = client.list_repositories(project_id).await;
    let mut repos = match listed {
        Ok(repos) => repos,
        Err(e) => {
            return Ok(ProjectRepos {
                repositories: Vec::new(),
                diagnosis: Some(error_view(&e)),
            })
        }
    };
    // Only this provider's repositories can be "already added" here.
    let added: HashSet<String> = hub
        .db
        .repositories_of_provider(provider_id)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|(r, _)| r.id)
        .collect();
    repos.sort_by_key(|r| r.name.to_lowercase());
    let repositories = repos
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
    Ok(ProjectRepos {
        repositories,
        diagnosis: None,
    })
}

async fn picker_client(
    hub: &Hub,
    provider_id: &str,
    organization: &str,
) -> Result<spicehub_azure::AzureClient, AdminError> {
    if !valid_organization(organization) {
        return Err(AdminError::Fields(vec![FieldError {
            field: "organization".into(),
            message: "Enter the organization's name as in https://dev.azure.com/{organization}: letters, digits and hyphens.".into(),
        }]));
    }
    // The picker: an admin waits on every listing, ahead of any sync.
    hub.connections
        .for_org(provider_id, organization)
        .await
        .map(|c| c.with_priority(spicehub_azure::Priority::Interactive))
        .map_err(|e| AdminError::from(client_error(e)))
}

/// One row per replicated repository, with its live state.
pub async fn repository_rows(db: &Db) -> Result<Vec<RepoRow>, DbError> {
    use spicehub_core::db::repositories::RepoState;
    let repos = db.repositories().await?;
    let jobs = active_jobs(db).await?;
    let synced: Vec<(String, String)> = repos
        .iter()
        .filter_map(|r| Some((r.id.clone(), r.last_synced_commit.clone()?)))
        .collect();
    let kept = db.history_records(&synced).await?;
    let mut orgs: std::collections::HashMap<String, (String, String)> = Default::default();
    let mut out = Vec::with_capacity(repos.len());
    for r in repos {
        if !orgs.contains_key(&r.organization_id) {
            let o = db.organization(&r.organization_id).await?;
            orgs.insert(
                r.organization_id.clone(),
                o.map(|o| (o.name, o.provider_id)).unwrap_or_default(),
            );
        }
        let (organization, provider_id) = orgs.get(&r.organization_id).cloned().unwrap_or_default();
        let active = jobs.get(&r.id);
        let running = active.and_then(|j| j.iter().find(|j| j.running));
        let pending = active.is_some_and(|j| j.iter().any(|j| !j.running));
        let (state, label) = match (running, r.state) {
            (_, RepoState::Disabled) => ("disabled", "Disabled"),
            (Some(_), _) => ("syncing", "Syncing"),
            (None, _) if pending && r.state == RepoState::Syncing => ("queued", "Waiting to retry"),
            (None, _) if pending => ("queued", "Queued"),
            (None, RepoState::Pending) => ("queued", "Queued"),
            (None, RepoState::Syncing) => ("syncing", "Syncing"),
            (None, RepoState::Synced) => ("in_sync", "In sync"),
            (None, RepoState::Error) => ("failed", "Failed"),
        };
        let error = r.last_error.clone();
        out.push(RepoRow {
            follows_default: r.follow_default_branch,
            branch_missing: r.state == RepoState::Error
                && error
                    .as_deref()
                    .is_some_and(spicehub_core::sync::engine::is_branch_missing),
            diagnosis: error.as_deref().and_then(diagnosis_in_message),
            error,
            commit_short: r
                .last_synced_commit
                .as_ref()
                .map(|c| c.chars().take(8).collect()),
            commit_url: match (&r.web_url, &r.last_synced_commit) {
                (Some(w), Some(c)) => Some(format!("{}/commit/{c}", w.trim_end_matches('/'))),
                _ => None,
            },
            commit: r.last_synced_commit.clone(),
            web_url: r.web_url.clone(),
            last_synced: r.last_synced_at.map(fmt_time),
            state: state.into(),
            state_label: label.into(),
            phase: running.and_then(|j| j.phase.clone()),
            progress_done: running.and_then(|j| j.done),
            progress_total: running.and_then(|j| j.total),
            note: r.last_sync_note.clone(),
            changes: r
                .last_synced_commit
                .as_ref()
                .and_then(|c| kept.get(&(r.id.clone(), c.clone())))
                .map(|h| crate::api::viewer::commits::push_changes_link(&r.id, h)),
            last_webhook: r.last_webhook_at.map(fmt_time),
            branch: r
                .tracked_branch
                .strip_prefix("refs/heads/")
                .unwrap_or(&r.tracked_branch)
                .to_owned(),
            id: r.id,
            provider_id,
            organization,
            project: r.project_name,
            name: r.name,
        });
    }
    Ok(out)
}

/// A manual action from the Repositories tab: `entire`, `recent`,
/// `from_commit` (with a commit hash) or `reparse`.
pub async fn repository_action(
    hub: &Hub,
    id: &str,
    action: &str,
    commit: Option<&str>,
) -> Result<String, AdminError> {
    let (kind, label) = match action {
        "entire" => (JobKind::EntireRepository, "Synchronize entire repository"),
        "recent" => (JobKind::RecentChanges, "Synchronize recent changes"),
        "from_commit" => (JobKind::FromCommit, "Synchronize from commit hash"),
        "reparse" => (JobKind::Reparse, "Re-parse"),
        _ => return Err(AdminError::Message(format!("Unknown action `{action}`."))),
    };
    let name = hub
        .db
        .repository(id)
        .await
        .ok()
        .flatten()
        .map(|r| r.name)
        .unwrap_or_default();
    match request_sync(&hub.db, &hub.connections, &hub.queue, id, kind, commit).await {
        Ok(_) => Ok(format!("{label}: queued for {name}.")),
        Err(CoreError::BadCommit(c)) => Err(AdminError::Fields(vec![FieldError {
            field: "commit".into(),
            message: if c.is_empty() {
                "Enter the commit hash to synchronize from (7 to 40 hexadecimal characters).".into()
            } else {
                format!("`{c}` is not a commit hash: type 7 to 40 of its hexadecimal characters (0-9, a-f).")
            },
        }])),
        Err(e @ (CoreError::UnknownCommit { .. } | CoreError::AmbiguousCommit { .. })) => {
            Err(AdminError::Fields(vec![FieldError {
                field: "commit".into(),
                message: format!("{}.", capitalize(&e.to_string())),
            }]))
        }
        Err(CoreError::UnknownRepository) => Err(AdminError::Message(
            "This repository is no longer replicated.".into(),
        )),
        Err(e) => {
            tracing::error!(error = %e, "manual sync could not be queued");
            Err(AdminError::Message(
                "The hub could not queue this (database error). Try again.".into(),
            ))
        }
    }
}

/// "Change tracked branch…": the repository's branches in Azure DevOps.
pub async fn branch_choices(hub: &Hub, id: &str) -> Result<BranchChoicesView, AdminError> {
    use spicehub_core::admin::repositories::{branch_choices, short_branch};
    let c = match branch_choices(hub, id).await {
        Err(CoreError::UnknownRepository) => {
            crate::api::session::set_status(http::StatusCode::NOT_FOUND.as_u16());
            return Err(AdminError::Message(
                "This repository is no longer replicated.".into(),
            ));
        }
        other => other?,
    };
    Ok(BranchChoicesView {
        id: c.repository.id.clone(),
        repository: format!(
            "{}/{}/{}",
            c.organization, c.repository.project_name, c.repository.name
        ),
        branch: short_branch(&c.repository.tracked_branch).to_owned(),
        follows_default: c.repository.follow_default_branch,
        default_branch: c.default_branch,
        branches: c.branches,
    })
}

/// Saves the branch an admin picked (`None` or empty: follow the default
/// branch). Returns what it did, in words, and whether every service hook
/// the hub created now filters on the new branch (or is left to
/// reconcile); when not, the page stays to say so.
pub async fn change_tracked_branch(
    hub: &Hub,
    id: &str,
    branch: Option<&str>,
) -> Result<(String, bool), AdminError> {
    use spicehub_core::admin::repositories::{change_tracked_branch, BranchChoice};
    use spicehub_core::sync::hooks::BranchFilterUpdate;
    let choice = match branch.map(str::trim).filter(|b| !b.is_empty()) {
        None => BranchChoice::FollowDefault,
        Some(b) => BranchChoice::Branch(b),
    };
    let change = match change_tracked_branch(hub, id, choice).await {
        Ok(change) => change,
        Err(CoreError::UnknownBranch(b)) => {
            return Err(AdminError::Fields(vec![FieldError {
                field: "branch".into(),
                message: format!(
                    "There is no branch `{b}` in this repository in Azure DevOps (any more). Pick one from the list."
                ),
            }]))
        }
        Err(CoreError::UnknownRepository) => {
            return Err(AdminError::Message(
                "This repository is no longer replicated.".into(),
            ))
        }
        Err(CoreError::Empty) => {
            return Err(AdminError::Message(
                "The repository has no default branch yet (no commit): pick a branch once it has one."
                    .into(),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let mut message = if change.follows_default {
        format!(
            "{} now follows the default branch ({}).",
            change.repository, change.to
        )
    } else {
        format!("{} now tracks {}.", change.repository, change.to)
    };
    if change.sync_queued {
        message.push_str(&format!(
            " Synchronize entire repository: queued from {}.",
            change.to
        ));
    }
    let mut all_moved = true;
    for hook in &change.hooks {
        match hook {
            Ok(BranchFilterUpdate::Updated) => message.push_str(&format!(
                " The service hook the hub created now sends pushes to {}.",
                change.to
            )),
            Ok(BranchFilterUpdate::Unchanged) => {}
            Ok(BranchFilterUpdate::LeftToReconcile) => message.push_str(
                " The service hook the hub created is deleted or disabled in Azure DevOps; \
                 \"Check the webhook\" on the Webhooks page replaces it with one for the new branch.",
            ),
            Err(e) => {
                all_moved = false;
                message.push_str(&format!(
                    " The service hook the hub created could not be updated ({e}); it still sends pushes to {} until the next reconcile or \"Check the webhook\" on the Webhooks page.",
                    change.from
                ));
            }
        }
    }
    Ok((message, all_moved))
}

/// What the Test button's sample delivery is recorded with.
const TEST_REASON_PREFIX: &str = "Azure DevOps test notification";

pub async fn webhook_overview(hub: &Hub) -> Result<WebhookOverview, DbError> {
    let db = &hub.db;
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
    let refusals = db.webhook_refusals().await?;
    let refusal_view = |provider: Option<&str>| {
        refusals
            .iter()
            .find(|r| r.provider_id.as_deref() == provider)
            .map(|r| RefusalView {
                count: r.attempts,
                first_at: fmt_time(r.first_at),
                last_at: fmt_time(r.last_at),
                last_address: r.last_address.clone(),
            })
    };
    let url = webhook_url(&hub.config.public_url);
    let setups = providers
        .iter()
        .map(|p| HookSetup {
            provider_id: p.id.clone(),
            display_name: p.display_name.clone(),
            url: url.clone(),
            username: p.webhook_username.clone(),
            refused: refusal_view(Some(&p.id)),
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
                                use spicehub_core::sync::hooks::{
                                    parse_status, status_advice, status_meaning,
                                };
                                let status = h.status.as_deref().and_then(parse_status);
                                format!(
                                    "Created by the hub; {}.{}",
                                    status_meaning(status.as_ref()),
                                    status_advice(status.as_ref())
                                )
                            },
                        ),
                        hook_enabled: hooks
                            .iter()
                            .rev()
                            .find(|h| h.repository_id == r.id)
                            .is_some_and(|h| h.status.as_deref() == Some("enabled")),
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
    let pushed: Vec<(String, String)> = recent
        .iter()
        .take(50)
        .filter_map(|d| Some((d.repository_id.clone()?, d.new_commit.clone()?)))
        .collect();
    let kept = db.history_records(&pushed).await?;
    let deliveries = recent
        .into_iter()
        .take(50)
        .map(|d| DeliveryRow {
            changes: d
                .repository_id
                .as_ref()
                .zip(d.new_commit.as_ref())
                .and_then(|(r, c)| {
                    kept.get(&(r.clone(), c.clone()))
                        .map(|h| crate::api::viewer::commits::push_changes_link(r, h))
                }),
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
        unknown_refused: refusal_view(None),
    })
}

/// The service hooks a removal left in Azure DevOps, as the pages show them.
pub fn hooks_left(left: Vec<spicehub_core::admin::repositories::HookLeft>) -> Vec<HookLeftView> {
    left.into_iter()
        .map(|h| HookLeftView {
            repository: h.repository,
            subscription_id: h.subscription_id,
            reason: h.reason,
            service_hooks_url: h.service_hooks_url,
        })
        .collect()
}

/// A command's result, with 404 when it names no provider.
pub fn not_found_status<T>(r: Result<T, CoreError>) -> Result<T, AdminError> {
    match r {
        Ok(v) => Ok(v),
        Err(CoreError::UnknownProvider(_)) => {
            crate::api::session::set_status(http::StatusCode::NOT_FOUND.as_u16());
            Err(AdminError::Message("No such Git provider.".into()))
        }
        Err(e) => Err(e.into()),
    }
}

/// What deleting a provider would remove (its confirmation page).
pub async fn provider_removal_plan(
    hub: &Hub,
    id: &str,
) -> Result<ProviderRemovalPlanView, AdminError> {
    let plan = not_found_status(spicehub_core::admin::providers::removal_plan(hub, id).await)?;
    Ok(ProviderRemovalPlanView {
        id: plan.id,
        display_name: plan.display_name,
        repositories: plan.repositories,
        hooks: plan.hooks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(fmt_date(86_400), "1970-01-02");
        assert_eq!(human_size(10), "10 bytes");
        assert_eq!(human_size(1536), "1.5 KB");
        let d = diagnosis_in_message("Client secret is wrong [wrong_client_secret]").unwrap();
        assert_eq!(d.field, "secret");
        assert!(diagnosis_in_message("no code here").is_none());
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

#[cfg(test)]
mod public_url_tests {
    use super::public_url_warnings;

    #[test]
    fn http_and_local_addresses_are_named() {
        let count = |u: &str| public_url_warnings(&url::Url::parse(u).unwrap()).len();
        assert_eq!(count("https://hub.contoso.com"), 0);
        assert_eq!(count("https://hub.contoso.com:8443/spice/"), 0);
        assert_eq!(count("http://hub.contoso.com"), 1);
        assert_eq!(count("https://localhost:3000"), 1);
        assert_eq!(count("https://10.1.2.3"), 1);
        assert_eq!(count("https://[::1]:3000"), 1);
        assert_eq!(count("https://build-box"), 1);
        assert_eq!(count("http://127.0.0.1:3000"), 2);
    }
}
