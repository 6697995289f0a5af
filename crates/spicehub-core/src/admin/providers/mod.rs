//! Git providers as the admin pages and the command line handle them:
//! saving the Azure DevOps form (`save`, after `validate` checks it field by
//! field), **Test connection** and the provider's health (`connection`),
//! the repository picker (`picker`) and the hub app's admin consent
//! (`consent`).

mod connection;
mod consent;
mod picker;
mod removal;
mod validate;

pub use connection::{client_error, primary_organization, test_connection, test_form, CheckRecord};
pub use consent::complete_consent;
pub use picker::add_selected;
pub use removal::{removal_plan, remove_provider, ProviderRemoval, ProviderRemovalPlan};
pub use validate::{organization_name, valid_organization, valid_tenant};

use super::{AdminError, FieldError};
use crate::db::providers::{NewProvider, ProviderError, ProviderUpdate};
use crate::db::DbError;
use crate::Hub;
use validate::{validate, Purpose};

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
    /// The federated kind's Subject, as the form showed it to be entered in
    /// the portal (`spicehub:provider:<uuid>`).
    pub federated_subject: Option<String>,
    /// `YYYY-MM-DD`.
    pub secret_expires: Option<String>,
    pub organization: String,
    pub webhook_username: String,
    pub webhook_password: Option<String>,
}

pub(super) fn internal(e: impl std::fmt::Display) -> AdminError {
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

/// The provider the form edits (`None` for a new one).
async fn existing_provider(
    db: &crate::db::Db,
    id: Option<&str>,
) -> Result<Option<crate::db::providers::Provider>, AdminError> {
    match id {
        Some(id) => {
            Ok(Some(db.provider(id).await.map_err(internal)?.ok_or_else(
                || AdminError::Message("No such Git provider.".into()),
            )?))
        }
        None => Ok(None),
    }
}

/// Creates or updates a provider from the form. The
/// organization named in the form is recorded with it.
pub async fn save(hub: &Hub, input: &ProviderInput) -> Result<Saved, AdminError> {
    let db = &hub.db;
    let key = &hub.config.secret_key;
    let existing = existing_provider(db, input.id.as_deref()).await?;
    let valid = validate(
        input,
        existing.as_ref(),
        hub.config.hub_app.as_ref(),
        Purpose::Save,
    )
    .map_err(AdminError::Fields)?;
    let mut password_rotated = false;
    let id = match &existing {
        Some(p) => {
            let updated = db
                .update_provider(
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
                        webhook_password_overlap: i64::try_from(
                            hub.config.webhook_password_overlap.as_secs(),
                        )
                        .unwrap_or(i64::MAX / 2),
                        secret_expires_at: valid.secret_expires_at,
                    },
                )
                .await
                .map_err(provider_error)?;
            password_rotated = updated.webhook_password_changed;
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
    // A new password goes to the hooks the hub created at once.
    let notes = if password_rotated {
        password_changed(hub, &id).await
    } else {
        Vec::new()
    };
    Ok(Saved { id, notes })
}

/// What [`save`] did.
#[derive(Clone, Debug)]
pub struct Saved {
    pub id: String,
    /// A changed webhook password: what happened to each hook the hub
    /// created, and what to do for hooks made by hand.
    pub notes: Vec<String>,
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
    let record = CheckRecord::of(&p);
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

/// After a provider's webhook password changed: sends it to every service
/// hook the hub created, and says what happened, one line per hook, plus
/// what the admin must do for hooks made by hand.
async fn password_changed(hub: &Hub, id: &str) -> Vec<String> {
    use crate::sync::hooks::{push_password, PasswordUpdated};
    let mut notes = Vec::new();
    match push_password(
        &hub.db,
        &hub.connections,
        &hub.config.secret_key,
        &hub.config.public_url,
        id,
    )
    .await
    {
        Ok(updates) => {
            for u in updates {
                notes.push(match u.result {
                    Ok(PasswordUpdated::Updated) => format!(
                        "The service hook of {} now sends the new password.",
                        u.repository
                    ),
                    Ok(PasswordUpdated::Replaced) => format!(
                        "The service hook of {} had been disabled by Azure DevOps: a new one with the new password replaced it.",
                        u.repository
                    ),
                    Ok(PasswordUpdated::Gone) => format!(
                        "The service hook of {} no longer exists in Azure DevOps: create it again on the Webhooks page.",
                        u.repository
                    ),
                    Err(e) => format!(
                        "The service hook of {} could not be updated ({e}): paste the new password into it by hand (Project settings › Service hooks).",
                        u.repository
                    ),
                });
            }
        }
        Err(e) => notes.push(format!(
            "The hub could not update its service hooks ({e}): paste the new password into them by hand."
        )),
    }
    let until = hub
        .db
        .provider(id)
        .await
        .ok()
        .flatten()
        .and_then(|p| p.previous_password_until);
    notes.push(match until {
        Some(until) => format!(
            "Service hooks made by hand: paste the new password into them. The previous password is still accepted until {}, or until the first delivery with the new one.",
            time::OffsetDateTime::from_unix_timestamp(until)
                .ok()
                .and_then(|t| t
                    .format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC"))
                    .ok())
                .unwrap_or_else(|| until.to_string())
        ),
        None => "Service hooks made by hand: paste the new password into them now; the previous one is no longer accepted.".into(),
    });
    notes
}
