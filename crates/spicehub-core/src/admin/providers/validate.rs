//! The Azure DevOps form, checked field by field before anything is stored:
//! every problem is reported at once, next to its field, in an admin's words.

use super::ProviderInput;
use crate::admin::FieldError;
use crate::connections::credential_from_sealed;
use crate::db::providers::{
    valid_password, valid_username, CredentialKind, Provider, MIN_WEBHOOK_PASSWORD,
};
use spicehub_azure::is_guid;

/// The form once every field is valid.
pub(super) struct Valid {
    pub(super) display_name: String,
    pub(super) kind: CredentialKind,
    pub(super) tenant_id: String,
    pub(super) client_id: String,
    pub(super) credential: Option<Vec<u8>>,
    pub(super) secret_expires_at: Option<i64>,
    pub(super) organization: String,
    pub(super) webhook_username: String,
    pub(super) webhook_password: Option<String>,
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

/// The organization's name from what an admin pasted: the name itself, or
/// any URL of it copied from the browser (`https://dev.azure.com/ORG/...`,
/// `https://ORG.visualstudio.com/...`, with or without the scheme).
/// Anything else comes back trimmed, for the validation to name.
pub fn organization_name(raw: &str) -> String {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else if raw.starts_with("dev.azure.com/") || raw.contains(".visualstudio.com") {
        format!("https://{raw}")
    } else {
        return raw.to_owned();
    };
    let Ok(url) = url::Url::parse(&with_scheme) else {
        return raw.to_owned();
    };
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let from_url = if host == "dev.azure.com" {
        url.path_segments()
            .and_then(|mut s| s.next())
            .map(str::to_owned)
    } else {
        host.strip_suffix(".visualstudio.com")
            .filter(|o| !o.is_empty() && !o.contains('.'))
            .map(str::to_owned)
    };
    match from_url.filter(|o| !o.is_empty()) {
        // Percent-decoding is not needed: a valid name is letters, digits
        // and hyphens, and anything else is refused by the validation.
        Some(o) => o,
        None => raw.to_owned(),
    }
}

/// What the form is checked for: storing it, or only testing the
/// connection (the name and the webhook fields do not matter then).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    Save,
    Test,
}

fn parse_date(raw: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw, format)
        .ok()
        .map(|d| d.midnight().assume_utc().unix_timestamp())
}

pub(super) fn validate(
    input: &ProviderInput,
    existing: Option<&Provider>,
    hub_app: Option<&crate::config::HubApp>,
    purpose: Purpose,
) -> Result<Valid, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut err = |field: &str, message: &str| {
        let connection_field = !matches!(
            field,
            "display_name" | "webhook_username" | "webhook_password" | "secret_expires"
        );
        if purpose == Purpose::Save || connection_field {
            errors.push(FieldError {
                field: field.to_owned(),
                message: message.to_owned(),
            })
        }
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
            "federated" => CredentialKind::Federated,
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
        CredentialKind::Federated => match non_empty(&input.federated_subject) {
            Some(s) if crate::issuer::is_provider_subject(s) => Some(s.as_bytes().to_vec()),
            Some(_) => {
                err(
                    "federated_subject",
                    "The Subject is the value this form shows (spicehub:provider: and an ID): reload the form and copy it again.",
                );
                None
            }
            None if needed => {
                err(
                    "federated_subject",
                    "The form lost its Subject: reload it and copy the values shown into the federated credential.",
                );
                None
            }
            None => None,
        },
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
    let organization = organization_name(&input.organization);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::providers::ProviderInput;

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
        assert!(validate(&input(), None, None, Purpose::Save).is_ok());
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
            fields(validate(&i, None, None, Purpose::Save)),
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
        assert_eq!(
            fields(validate(&i, None, None, Purpose::Save)),
            ["onboarding"]
        );
    }

    #[test]
    fn a_test_checks_only_what_the_connection_needs() {
        let mut i = input();
        i.display_name = String::new();
        i.webhook_username = "a b".into();
        i.webhook_password = None;
        assert!(validate(&i, None, None, Purpose::Test).is_ok());
        i.client_secret = None;
        assert_eq!(
            fields(validate(&i, None, None, Purpose::Test)),
            ["client_secret"]
        );
    }

    #[test]
    fn a_pasted_url_gives_the_organization() {
        for (raw, org) in [
            ("contoso", "contoso"),
            ("  contoso ", "contoso"),
            ("https://dev.azure.com/contoso", "contoso"),
            ("https://dev.azure.com/contoso/", "contoso"),
            (
                "https://dev.azure.com/contoso/Commerce/_git/ml-models?path=/x",
                "contoso",
            ),
            ("dev.azure.com/contoso/Commerce", "contoso"),
            (
                "https://contoso.visualstudio.com/Commerce/_git/ml-models",
                "contoso",
            ),
            ("contoso.visualstudio.com", "contoso"),
            ("HTTPS://Contoso.VisualStudio.com/", "contoso"),
        ] {
            assert_eq!(organization_name(raw), org, "{raw}");
            let mut i = input();
            i.organization = raw.into();
            assert!(validate(&i, None, None, Purpose::Save).is_ok(), "{raw}");
        }
        // Not an Azure DevOps URL: kept, so the validation names it.
        for raw in [
            "https://github.com/contoso",
            "https://dev.azure.com/",
            "https://evil.example/contoso",
        ] {
            assert_eq!(organization_name(raw), raw);
            let mut i = input();
            i.organization = raw.into();
            assert!(validate(&i, None, None, Purpose::Save).is_err(), "{raw}");
        }
    }
}
