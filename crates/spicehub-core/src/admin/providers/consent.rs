//! The hub app's admin consent coming back: the single-use `state` names the
//! provider and the tenant the link was made for, and the tenant that
//! consented is recorded on the provider only when it is that tenant (a
//! consent link forwarded to another directory's admin must not move the
//! provider to that directory).

use super::valid_tenant;
use crate::Hub;

/// Admin consent came back: records the tenant on the provider the
/// `state` was made for. `Err` carries what to tell the admin.
pub async fn complete_consent(
    hub: &Hub,
    consent_state: &str,
    tenant: Option<&str>,
    error: Option<&str>,
) -> Result<(String, Option<String>), String> {
    let (provider_id, expected_tenant) = hub
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
    if let Some(expected) = expected_tenant.as_deref() {
        let authority = &hub.config.azure.authority_url;
        let expected_guid = hub
            .connections
            .tokens()
            .tenant_guid(authority, expected)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "admin consent: cannot look up the expected tenant");
                format!(
                    "The hub could not check which directory consented: {e}. Try the link again."
                )
            })?;
        if expected_guid != tenant {
            tracing::warn!(
                provider = %provider_id,
                expected = %expected_guid,
                answered = %tenant,
                "admin consent from another tenant refused"
            );
            return Err(format!(
                "The consent came from the directory {tenant}, but the link was made for {expected}. \
                 Ask an administrator of {expected} to open the provider's current link."
            ));
        }
    }
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
