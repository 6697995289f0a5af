//! Diagnosis of failures talking to Microsoft Entra ID and Azure DevOps.
//!
//! Every failure the hub can meet while authenticating or calling Azure DevOps is
//! mapped to one [`Diagnosis`]: a stable machine code (`code()`, used by the UI,
//! the CLI's `--json` output and logs), a short title, and a hint that tells the
//! admin what to change, plus the configuration [`Field`] it concerns. Codes that
//! we do not know keep the raw text from the server so that nothing is hidden.
//!
//! [`AzureError`] is the error type at the module boundary; it always carries a
//! diagnosis, plus an [`ErrorContext`] with the evidence (HTTP status, Entra trace
//! and correlation ids, Azure DevOps activity id) an admin may need to open a
//! support ticket. None of it ever contains a secret.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The configuration field a diagnosis points at (what the admin should look at).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// Directory (tenant) ID.
    Tenant,
    /// Application (client) ID.
    ClientId,
    /// Client secret.
    Secret,
    /// Certificate and its private key.
    Certificate,
    /// Legacy personal access token.
    Pat,
    /// A federated credential's Issuer (the hub's OpenID Connect issuer).
    FederatedIssuer,
    /// A federated credential's Subject.
    FederatedSubject,
    /// A federated credential's Audience.
    FederatedAudience,
    /// Azure DevOps organization (name, membership of the service principal).
    Organization,
    /// An Azure DevOps project.
    Project,
    /// A Git repository (existence, permissions, access level).
    Repository,
    /// Network path between the hub and Microsoft (DNS, proxy, firewall, outages, throttling).
    Network,
    /// Nothing the admin can change: a defect in the hub or an unexpected answer.
    Hub,
}

impl Field {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Tenant => "tenant",
            Field::ClientId => "client_id",
            Field::Secret => "secret",
            Field::Certificate => "certificate",
            Field::Pat => "pat",
            Field::FederatedIssuer => "federated_issuer",
            Field::FederatedSubject => "federated_subject",
            Field::FederatedAudience => "federated_audience",
            Field::Organization => "organization",
            Field::Project => "project",
            Field::Repository => "repository",
            Field::Network => "network",
            Field::Hub => "hub",
        }
    }
}

/// Why a call to Entra ID or Azure DevOps failed, in terms an admin can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diagnosis {
    // ---- Microsoft Entra ID (token endpoint) ----
    /// AADSTS90002: the tenant does not exist.
    UnknownTenant,
    /// AADSTS900023 (or rejected locally): the tenant identifier is not a GUID or domain.
    MalformedTenant,
    /// AADSTS700016: no application with this client ID in the tenant.
    UnknownClientId,
    /// AADSTS7000215: the secret is wrong (often the secret's ID pasted instead of its value).
    WrongClientSecret,
    /// AADSTS7000222: the client secret has expired.
    ExpiredClientSecret,
    /// AADSTS700024: the client assertion is outside its valid time range (clock skew).
    AssertionTimeInvalid,
    /// AADSTS700027 / 700023 / 700025 / 700026 and friends: the certificate was not accepted.
    CertificateRejected,
    /// The certificate or private key supplied by the admin cannot be used.
    InvalidCertificate {
        /// What is wrong with the files (never key material).
        detail: String,
    },
    /// AADSTS70021: no federated credential of the app matches the assertion's
    /// issuer, subject and audience; also what Entra answers for a few minutes
    /// after a federated credential was added.
    FederatedNoMatch,
    /// AADSTS700211: no federated credential has the assertion's issuer.
    FederatedIssuerMismatch,
    /// AADSTS700212: the audience does not match.
    FederatedAudienceMismatch,
    /// AADSTS700213: the subject does not match.
    FederatedSubjectMismatch,
    /// AADSTS700222: an Entra-issued token was presented as the external token.
    EntraTokenAsAssertion,
    /// AADSTS50027: the assertion is not a valid JWT (or uses an algorithm
    /// Entra does not accept: federated assertions must be RS256).
    InvalidAssertion,
    /// AADSTS50166 / AADSTS90061: Entra could not fetch the issuer's
    /// discovery document or keys.
    IssuerUnreachable,
    /// A federated assertion's signature failed: its key is not (yet) in the
    /// issuer's published keys as Entra sees them.
    FederatedKeyRejected,
    /// The hub's issuer has no key to sign with.
    IssuerCannotSign {
        /// Why.
        detail: String,
    },
    /// AADSTS7000112 / 7000122: the application is disabled.
    ApplicationDisabled,
    /// AADSTS500011: the Azure DevOps resource principal is not in the tenant.
    AzureDevOpsNotInTenant,
    /// AADSTS70011: the scope was rejected (a defect in the hub).
    InvalidScope,
    /// AADSTS7000218: the request carried no credential (a defect in the hub).
    CredentialMissing,
    /// Any other Entra error; keeps the raw text.
    EntraError {
        /// First entry of `error_codes` (or the AADSTS number in the description).
        code: Option<u64>,
        /// OAuth `error` value (`invalid_client`, ...).
        error: String,
        /// Raw `error_description` as Entra sent it.
        description: String,
    },

    // ---- Azure DevOps ----
    /// TF401444: the service principal was never added to the organization.
    ServicePrincipalNotInOrganization,
    /// 401 / TF400813: the identity is not authorized for this organization.
    NotAuthorized,
    /// HTTP 203, any 3xx, or a 2xx with an HTML body: Azure DevOps answered with a sign-in page.
    SignInPage {
        /// HTTP status of the answer.
        status: u16,
    },
    /// The organization does not exist (or the name is misspelled).
    OrganizationNotFound,
    /// The organization name contains characters that cannot be an organization.
    InvalidOrganizationName,
    /// TF200016 or 404 on a project URL: the project does not exist or is not visible.
    ProjectNotFound,
    /// The service principal sees no project in the organization.
    NoProjectsVisible,
    /// TF401019: the repository does not exist or the identity may not read it.
    RepositoryNotFound,
    /// Projects are visible but no repository is.
    NoRepositoriesVisible,
    /// HTTP 403 with a message we do not know.
    Forbidden {
        /// Raw message.
        message: String,
    },
    /// HTTP 429 / TF400733: Azure DevOps rate limits were hit.
    Throttled {
        /// What `Retry-After` asked for, if anything.
        retry_after: Option<Duration>,
    },
    /// A 4xx from Azure DevOps that we do not recognise; keeps the raw message.
    DevOpsError {
        /// HTTP status.
        status: u16,
        /// The `TFnnnnnn` code when the message has one.
        tf_code: Option<String>,
        /// Raw message from the JSON envelope or the body.
        message: String,
    },

    // ---- transport ----
    /// DNS, TCP, TLS or proxy failure.
    NetworkFailure {
        /// Error text from the HTTP stack.
        detail: String,
    },
    /// No answer within the configured timeout.
    Timeout,
    /// HTTP 5xx from Entra or Azure DevOps (transient on their side).
    ServerError {
        /// HTTP status.
        status: u16,
    },
    /// A body we could not decode (JSON shape, truncated download, wrong content type).
    UnexpectedResponse {
        /// What was unexpected.
        detail: String,
    },
    /// A file or archive is larger than the configured limit.
    TooLarge {
        /// Bytes seen or announced.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
}

impl Diagnosis {
    /// The diagnosis of a stored code, for those that carry no data (a sync
    /// failure is stored as text ending in `[code]`; the UI shows its fix).
    pub fn from_code(code: &str) -> Option<Diagnosis> {
        Some(match code {
            "unknown_tenant" => Diagnosis::UnknownTenant,
            "malformed_tenant" => Diagnosis::MalformedTenant,
            "unknown_client_id" => Diagnosis::UnknownClientId,
            "wrong_client_secret" => Diagnosis::WrongClientSecret,
            "expired_client_secret" => Diagnosis::ExpiredClientSecret,
            "assertion_time_invalid" => Diagnosis::AssertionTimeInvalid,
            "certificate_rejected" => Diagnosis::CertificateRejected,
            "application_disabled" => Diagnosis::ApplicationDisabled,
            "azure_devops_not_in_tenant" => Diagnosis::AzureDevOpsNotInTenant,
            "service_principal_not_in_organization" => Diagnosis::ServicePrincipalNotInOrganization,
            "not_authorized" => Diagnosis::NotAuthorized,
            "organization_not_found" => Diagnosis::OrganizationNotFound,
            "invalid_organization_name" => Diagnosis::InvalidOrganizationName,
            "project_not_found" => Diagnosis::ProjectNotFound,
            "no_projects_visible" => Diagnosis::NoProjectsVisible,
            "repository_not_found" => Diagnosis::RepositoryNotFound,
            "no_repositories_visible" => Diagnosis::NoRepositoriesVisible,
            "timeout" => Diagnosis::Timeout,
            "federated_no_match" => Diagnosis::FederatedNoMatch,
            "federated_issuer_mismatch" => Diagnosis::FederatedIssuerMismatch,
            "federated_audience_mismatch" => Diagnosis::FederatedAudienceMismatch,
            "federated_subject_mismatch" => Diagnosis::FederatedSubjectMismatch,
            "entra_token_as_assertion" => Diagnosis::EntraTokenAsAssertion,
            "invalid_assertion" => Diagnosis::InvalidAssertion,
            "issuer_unreachable" => Diagnosis::IssuerUnreachable,
            "federated_key_rejected" => Diagnosis::FederatedKeyRejected,
            _ => return None,
        })
    }

    /// Stable snake_case code. Never change an existing one: the UI and scripts match on it.
    pub fn code(&self) -> &'static str {
        match self {
            Diagnosis::UnknownTenant => "unknown_tenant",
            Diagnosis::MalformedTenant => "malformed_tenant",
            Diagnosis::UnknownClientId => "unknown_client_id",
            Diagnosis::WrongClientSecret => "wrong_client_secret",
            Diagnosis::ExpiredClientSecret => "expired_client_secret",
            Diagnosis::AssertionTimeInvalid => "assertion_time_invalid",
            Diagnosis::CertificateRejected => "certificate_rejected",
            Diagnosis::InvalidCertificate { .. } => "invalid_certificate",
            Diagnosis::FederatedNoMatch => "federated_no_match",
            Diagnosis::FederatedIssuerMismatch => "federated_issuer_mismatch",
            Diagnosis::FederatedAudienceMismatch => "federated_audience_mismatch",
            Diagnosis::FederatedSubjectMismatch => "federated_subject_mismatch",
            Diagnosis::EntraTokenAsAssertion => "entra_token_as_assertion",
            Diagnosis::InvalidAssertion => "invalid_assertion",
            Diagnosis::IssuerUnreachable => "issuer_unreachable",
            Diagnosis::FederatedKeyRejected => "federated_key_rejected",
            Diagnosis::IssuerCannotSign { .. } => "issuer_cannot_sign",
            Diagnosis::ApplicationDisabled => "application_disabled",
            Diagnosis::AzureDevOpsNotInTenant => "azure_devops_not_in_tenant",
            Diagnosis::InvalidScope => "invalid_scope",
            Diagnosis::CredentialMissing => "credential_missing",
            Diagnosis::EntraError { .. } => "entra_error",
            Diagnosis::ServicePrincipalNotInOrganization => "service_principal_not_in_organization",
            Diagnosis::NotAuthorized => "not_authorized",
            Diagnosis::SignInPage { .. } => "sign_in_page",
            Diagnosis::OrganizationNotFound => "organization_not_found",
            Diagnosis::InvalidOrganizationName => "invalid_organization_name",
            Diagnosis::ProjectNotFound => "project_not_found",
            Diagnosis::NoProjectsVisible => "no_projects_visible",
            Diagnosis::RepositoryNotFound => "repository_not_found",
            Diagnosis::NoRepositoriesVisible => "no_repositories_visible",
            Diagnosis::Forbidden { .. } => "forbidden",
            Diagnosis::Throttled { .. } => "throttled",
            Diagnosis::DevOpsError { .. } => "azure_devops_error",
            Diagnosis::NetworkFailure { .. } => "network_failure",
            Diagnosis::Timeout => "timeout",
            Diagnosis::ServerError { .. } => "server_error",
            Diagnosis::UnexpectedResponse { .. } => "unexpected_response",
            Diagnosis::TooLarge { .. } => "too_large",
        }
    }

    /// The configuration field concerned.
    pub fn field(&self) -> Field {
        match self {
            Diagnosis::UnknownTenant | Diagnosis::MalformedTenant => Field::Tenant,
            Diagnosis::AzureDevOpsNotInTenant => Field::Tenant,
            Diagnosis::UnknownClientId | Diagnosis::ApplicationDisabled => Field::ClientId,
            Diagnosis::WrongClientSecret | Diagnosis::ExpiredClientSecret => Field::Secret,
            Diagnosis::AssertionTimeInvalid
            | Diagnosis::CertificateRejected
            | Diagnosis::InvalidCertificate { .. } => Field::Certificate,
            Diagnosis::InvalidScope | Diagnosis::CredentialMissing => Field::Hub,
            Diagnosis::FederatedNoMatch | Diagnosis::FederatedSubjectMismatch => {
                Field::FederatedSubject
            }
            Diagnosis::FederatedIssuerMismatch
            | Diagnosis::IssuerUnreachable
            | Diagnosis::FederatedKeyRejected => Field::FederatedIssuer,
            Diagnosis::FederatedAudienceMismatch => Field::FederatedAudience,
            Diagnosis::EntraTokenAsAssertion
            | Diagnosis::InvalidAssertion
            | Diagnosis::IssuerCannotSign { .. } => Field::Hub,
            Diagnosis::EntraError { .. } => Field::ClientId,
            Diagnosis::ServicePrincipalNotInOrganization
            | Diagnosis::NotAuthorized
            | Diagnosis::OrganizationNotFound
            | Diagnosis::InvalidOrganizationName
            | Diagnosis::NoProjectsVisible => Field::Organization,
            // A sign-in page means Azure DevOps did not accept the token at all: most often
            // the organization is connected to a different Entra tenant than the app.
            Diagnosis::SignInPage { .. } => Field::Tenant,
            Diagnosis::ProjectNotFound => Field::Project,
            Diagnosis::RepositoryNotFound
            | Diagnosis::NoRepositoriesVisible
            | Diagnosis::Forbidden { .. } => Field::Repository,
            Diagnosis::DevOpsError { .. } => Field::Organization,
            Diagnosis::Throttled { .. }
            | Diagnosis::NetworkFailure { .. }
            | Diagnosis::Timeout
            | Diagnosis::ServerError { .. } => Field::Network,
            Diagnosis::UnexpectedResponse { .. } | Diagnosis::TooLarge { .. } => Field::Hub,
        }
    }

    /// One line saying what went wrong.
    pub fn title(&self) -> Cow<'static, str> {
        match self {
            Diagnosis::UnknownTenant => "Unknown tenant".into(),
            Diagnosis::MalformedTenant => "Tenant ID is malformed".into(),
            Diagnosis::UnknownClientId => "Unknown client ID in this tenant".into(),
            Diagnosis::WrongClientSecret => "Client secret is wrong".into(),
            Diagnosis::ExpiredClientSecret => "Client secret has expired".into(),
            Diagnosis::AssertionTimeInvalid => {
                "Signed assertion is outside its validity time".into()
            }
            Diagnosis::FederatedNoMatch => "No federated credential matches (yet)".into(),
            Diagnosis::FederatedIssuerMismatch => {
                "No federated credential has the hub's issuer".into()
            }
            Diagnosis::FederatedAudienceMismatch => {
                "The federated credential's audience is not the one the hub sends".into()
            }
            Diagnosis::FederatedSubjectMismatch => {
                "No federated credential has this provider's subject".into()
            }
            Diagnosis::EntraTokenAsAssertion => {
                "Entra ID refused one of its own tokens as the federated assertion".into()
            }
            Diagnosis::InvalidAssertion => "Entra ID could not read the signed assertion".into(),
            Diagnosis::IssuerUnreachable => "Entra ID could not fetch the hub's issuer keys".into(),
            Diagnosis::FederatedKeyRejected => {
                "Entra ID does not know the key that signed the assertion".into()
            }
            Diagnosis::IssuerCannotSign { .. } => "The hub's issuer has no signing key".into(),
            Diagnosis::CertificateRejected => "Certificate was not accepted".into(),
            Diagnosis::InvalidCertificate { .. } => {
                "Certificate or private key cannot be used".into()
            }
            Diagnosis::ApplicationDisabled => "Application is disabled".into(),
            Diagnosis::AzureDevOpsNotInTenant => {
                "Azure DevOps is not available in this tenant".into()
            }
            Diagnosis::InvalidScope => "Token scope rejected".into(),
            Diagnosis::CredentialMissing => "Token request carried no credential".into(),
            Diagnosis::EntraError {
                code: Some(code), ..
            } => format!("Microsoft Entra ID refused the token request (AADSTS{code})").into(),
            Diagnosis::EntraError {
                code: None, error, ..
            } => format!("Microsoft Entra ID refused the token request ({error})").into(),
            Diagnosis::ServicePrincipalNotInOrganization => {
                "Service principal is not a member of the organization".into()
            }
            Diagnosis::NotAuthorized => "Not authorized for this organization".into(),
            Diagnosis::SignInPage { status } => {
                format!("Azure DevOps answered with a sign-in page (HTTP {status}) instead of data")
                    .into()
            }
            Diagnosis::OrganizationNotFound => "Organization not found".into(),
            Diagnosis::InvalidOrganizationName => "Organization name is not valid".into(),
            Diagnosis::ProjectNotFound => "Project not found or not visible".into(),
            Diagnosis::NoProjectsVisible => "No project is visible to the service principal".into(),
            Diagnosis::RepositoryNotFound => "Repository not found or no permission".into(),
            Diagnosis::NoRepositoriesVisible => {
                "No repository is visible to the service principal".into()
            }
            Diagnosis::Forbidden { .. } => "Permission denied".into(),
            Diagnosis::Throttled { .. } => "Azure DevOps is throttling requests".into(),
            Diagnosis::DevOpsError {
                status,
                tf_code: Some(tf),
                ..
            } => format!("Azure DevOps error {tf} (HTTP {status})").into(),
            Diagnosis::DevOpsError {
                status,
                tf_code: None,
                ..
            } => format!("Azure DevOps error (HTTP {status})").into(),
            Diagnosis::NetworkFailure { .. } => "Network failure".into(),
            Diagnosis::Timeout => "Request timed out".into(),
            Diagnosis::ServerError { status } => format!("Server error (HTTP {status})").into(),
            Diagnosis::UnexpectedResponse { .. } => "Unexpected response".into(),
            Diagnosis::TooLarge { .. } => "Content too large".into(),
        }
    }

    /// What the admin should do, in their words.
    pub fn hint(&self) -> Cow<'static, str> {
        match self {
            Diagnosis::UnknownTenant => "No Microsoft Entra tenant has this ID. Copy the Directory (tenant) ID \
                from the app registration's Overview page in the Azure portal."
                .into(),
            Diagnosis::MalformedTenant => "The tenant must be the Directory (tenant) ID, a GUID such as \
                72f988bf-86f1-41af-91ab-2d7cd011db47, or a verified domain such as contoso.onmicrosoft.com."
                .into(),
            Diagnosis::UnknownClientId => "No application with this client ID exists in this tenant. Check the \
                Application (client) ID on the app registration's Overview page, and that the tenant ID is the \
                tenant where the app is registered."
                .into(),
            Diagnosis::WrongClientSecret => "The client secret is wrong. Did you paste the secret ID instead of its \
                value? In Certificates & secrets, create a new secret and copy the Value column right away (it is \
                shown only once)."
                .into(),
            Diagnosis::ExpiredClientSecret => "The client secret has expired. Create a new secret under \
                Certificates & secrets in the app registration, paste its value here and record its expiry date."
                .into(),
            Diagnosis::AssertionTimeInvalid => "Entra ID rejected the signed assertion's time range. Check that the \
                hub server's clock is correct (NTP) and retry."
                .into(),
            Diagnosis::FederatedNoMatch => "No federated credential of the app registration matches the issuer, \
                subject and audience the hub sends. If you added it in the last few minutes, this usually works \
                within a few minutes: the hub tries again by itself. Otherwise open the app registration > \
                Certificates & secrets > Federated credentials and check that one has exactly the Issuer, Subject \
                and Audience shown on this form."
                .into(),
            Diagnosis::FederatedIssuerMismatch => "No federated credential of the app registration has the hub's \
                Issuer. Copy the Issuer shown on this form into the federated credential exactly (no trailing \
                slash, no spaces)."
                .into(),
            Diagnosis::FederatedAudienceMismatch => "The federated credential's Audience must be \
                api://AzureADTokenExchange, as shown on this form. Edit the credential in the app registration."
                .into(),
            Diagnosis::FederatedSubjectMismatch => "A federated credential has the hub's Issuer but not this \
                provider's Subject. Copy the Subject shown on this form into it exactly: each provider has its own."
                .into(),
            Diagnosis::EntraTokenAsAssertion => "Entra ID does not accept its own tokens as federated assertions. \
                The hub's issuer must be its own public URL; check SPICEHUB_PUBLIC_URL. This is otherwise a defect \
                in the hub."
                .into(),
            Diagnosis::InvalidAssertion => "Entra ID could not read the signed assertion (federated assertions must \
                be RS256 JWTs). This is a defect in the hub; please report it with the trace ID."
                .into(),
            Diagnosis::IssuerUnreachable => "Entra ID fetches the hub's /.well-known/openid-configuration and keys \
                over the internet, through the hub's public URL. That URL must be HTTPS with a publicly trusted \
                certificate and reachable from the internet. Run `spicehub issuer check` to see what Entra sees, or \
                use a client secret or certificate instead."
                .into(),
            Diagnosis::FederatedKeyRejected => "The signature did not verify with the keys Entra ID read from the \
                hub's issuer. Entra keeps the keys it read for a while; if the hub's keys were just replaced, retry \
                later, and check `spicehub issuer check`."
                .into(),
            Diagnosis::IssuerCannotSign { detail } => format!(
                "The hub has no usable signing key ({detail}). Keys are created at start and rotated hourly; \
                 check the hub's log and that SPICEHUB_SECRET_KEY is the one the keys were sealed with."
            )
            .into(),
            Diagnosis::CertificateRejected => "Entra ID did not accept the certificate. Upload this certificate's \
                public part (.cer/.pem) under Certificates & secrets of the app registration, and make sure the \
                private key given to the hub belongs to it."
                .into(),
            Diagnosis::InvalidCertificate { detail } => format!(
                "The certificate or private key could not be read ({detail}). Supply a PEM certificate and its \
                 unencrypted RSA private key in PEM (PKCS#8 or PKCS#1)."
            )
            .into(),
            Diagnosis::ApplicationDisabled => "The application is disabled in this tenant. Enable it (Enterprise \
                applications > Properties > Enabled for users to sign-in) or use another app registration."
                .into(),
            Diagnosis::AzureDevOpsNotInTenant => "Azure DevOps is not known in this tenant. Make sure the tenant ID \
                is the tenant your Azure DevOps organization is connected to (Organization settings > Microsoft \
                Entra)."
                .into(),
            Diagnosis::InvalidScope => "The hub asked for a scope Entra ID rejected. This is a defect in the hub; \
                please report it with the trace ID."
                .into(),
            Diagnosis::CredentialMissing => "The token request carried no secret or certificate. This is a defect \
                in the hub; please report it."
                .into(),
            Diagnosis::EntraError { description, .. } => format!(
                "Microsoft Entra ID said: {description}. Look the AADSTS code up in Microsoft's error reference."
            )
            .into(),
            Diagnosis::ServicePrincipalNotInOrganization => "The app's service principal has not been added to this \
                Azure DevOps organization. In Organization settings > Users > Add users, search the app by its \
                display name, give it the Basic access level and add it to the projects it must read."
                .into(),
            Diagnosis::NotAuthorized => "Azure DevOps does not let this identity into the organization. Check that \
                the service principal was added under Organization settings > Users with the Basic access level, \
                and that the organization is connected to the same Entra tenant."
                .into(),
            Diagnosis::SignInPage { .. } => "Azure DevOps did not accept the token and sent a sign-in page. The \
                organization is probably connected to a different Microsoft Entra tenant than the app \
                registration (Organization settings > Microsoft Entra), or the token was revoked."
                .into(),
            Diagnosis::OrganizationNotFound => "No Azure DevOps organization has this name. Use the name as it \
                appears in https://dev.azure.com/{organization}."
                .into(),
            Diagnosis::InvalidOrganizationName => "An organization name contains only letters, digits and hyphens, \
                as in https://dev.azure.com/{organization}."
                .into(),
            Diagnosis::ProjectNotFound => "The project does not exist or the service principal is not a member. Add \
                the service principal to the project (for example to its Readers group)."
                .into(),
            Diagnosis::NoProjectsVisible => "The service principal is in the organization but sees no project. Add \
                it to the projects to replicate (for example to each project's Readers group)."
                .into(),
            Diagnosis::RepositoryNotFound => "The repository does not exist or the service principal may not read \
                it. Give it Read permission on the repository (Project settings > Repositories > Security), and \
                check its access level is Basic: Stakeholder cannot read code."
                .into(),
            Diagnosis::NoRepositoriesVisible => "Projects are visible but no repository is. Check the service \
                principal's access level is Basic (Stakeholder cannot read code) and that it has Read on the \
                repositories."
                .into(),
            Diagnosis::Forbidden { message } => format!(
                "Azure DevOps refused the operation: {message}. Grant the service principal the permission named."
            )
            .into(),
            Diagnosis::Throttled { retry_after } => match retry_after {
                Some(d) => format!(
                    "Azure DevOps asked the hub to wait {} s. The hub slows down by itself; if this persists, \
                     reduce the number of repositories synced at once.",
                    d.as_secs()
                )
                .into(),
                None => "Azure DevOps rate limits were reached. The hub slows down by itself; if this persists, \
                    reduce the number of repositories synced at once."
                    .into(),
            },
            Diagnosis::DevOpsError { message, .. } => format!("Azure DevOps said: {message}").into(),
            Diagnosis::NetworkFailure { detail } => format!(
                "The hub could not reach the server ({detail}). Check DNS, the proxy and firewall rules for \
                 login.microsoftonline.com and dev.azure.com."
            )
            .into(),
            Diagnosis::Timeout => "The server did not answer in time. The hub retries by itself; if this persists, \
                check the network path and Azure DevOps status."
                .into(),
            Diagnosis::ServerError { .. } => "The service had a temporary failure. The hub retries by itself; check \
                https://status.dev.azure.com if it persists."
                .into(),
            Diagnosis::UnexpectedResponse { detail } => format!(
                "The answer could not be understood ({detail}). Check the authority and Azure DevOps URLs; if they \
                 are right this is a defect in the hub."
            )
            .into(),
            Diagnosis::TooLarge { bytes, limit } => {
                format!("The content is {bytes} bytes, above the limit of {limit} bytes.").into()
            }
        }
    }

    /// Whether repeating the same request later may succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Diagnosis::Throttled { .. }
                | Diagnosis::NetworkFailure { .. }
                | Diagnosis::Timeout
                | Diagnosis::ServerError { .. }
        )
    }

    /// Maps an Entra error to a diagnosis. `code` is `error_codes[0]` (or the AADSTS
    /// number found in the description); unknown codes keep the raw description.
    pub fn from_entra(code: Option<u64>, error: &str, description: &str) -> Diagnosis {
        match code {
            Some(90002) => Diagnosis::UnknownTenant,
            Some(900023) | Some(90013) => Diagnosis::MalformedTenant,
            Some(700016) => Diagnosis::UnknownClientId,
            Some(7000215) => Diagnosis::WrongClientSecret,
            Some(7000222) => Diagnosis::ExpiredClientSecret,
            Some(700024) => Diagnosis::AssertionTimeInvalid,
            Some(700027) | Some(700023) | Some(700025) | Some(700026) | Some(700021)
            | Some(700022) => Diagnosis::CertificateRejected,
            Some(7000112) | Some(7000122) => Diagnosis::ApplicationDisabled,
            Some(500011) => Diagnosis::AzureDevOpsNotInTenant,
            Some(70011) => Diagnosis::InvalidScope,
            Some(7000218) => Diagnosis::CredentialMissing,
            Some(70021) => Diagnosis::FederatedNoMatch,
            Some(700211) => Diagnosis::FederatedIssuerMismatch,
            Some(700212) => Diagnosis::FederatedAudienceMismatch,
            Some(700213) => Diagnosis::FederatedSubjectMismatch,
            Some(700222) => Diagnosis::EntraTokenAsAssertion,
            Some(50027) => Diagnosis::InvalidAssertion,
            Some(50166) | Some(90061) | Some(501661) => Diagnosis::IssuerUnreachable,
            _ => Diagnosis::EntraError {
                code,
                error: error.to_string(),
                description: first_line(description).to_string(),
            },
        }
    }

    /// The same failure as a federated credential's: Entra answers a
    /// federated assertion's bad signature with the certificate codes.
    pub fn for_federated(self) -> Diagnosis {
        match self {
            Diagnosis::CertificateRejected => Diagnosis::FederatedKeyRejected,
            other => other,
        }
    }

    /// Maps an Azure DevOps error answer (status + body message) to a diagnosis.
    ///
    /// Order matters: the TF code in the message is the most precise evidence, then
    /// the status, then the kind of URL (organization, project, repository) asked for.
    pub fn from_devops(status: u16, message: Option<&str>, scope: ResourceScope) -> Diagnosis {
        let msg = message.unwrap_or("");
        let tf = tf_code(msg);
        match tf.as_deref() {
            Some("TF401444") => return Diagnosis::ServicePrincipalNotInOrganization,
            Some("TF400813") => return Diagnosis::NotAuthorized,
            Some("TF401019") => return Diagnosis::RepositoryNotFound,
            Some("TF200016") => return Diagnosis::ProjectNotFound,
            Some("TF400733") => return Diagnosis::Throttled { retry_after: None },
            _ => {}
        }
        match status {
            401 => Diagnosis::NotAuthorized,
            203 | 300..=399 => Diagnosis::SignInPage { status },
            429 => Diagnosis::Throttled { retry_after: None },
            404 => match scope {
                ResourceScope::Organization => Diagnosis::OrganizationNotFound,
                ResourceScope::Project => Diagnosis::ProjectNotFound,
                ResourceScope::Repository => Diagnosis::RepositoryNotFound,
                ResourceScope::Other => Diagnosis::DevOpsError {
                    status,
                    tf_code: tf,
                    message: first_line(msg).to_string(),
                },
            },
            403 => Diagnosis::Forbidden {
                message: if msg.is_empty() {
                    "HTTP 403".to_string()
                } else {
                    first_line(msg).to_string()
                },
            },
            500..=599 => Diagnosis::ServerError { status },
            _ => Diagnosis::DevOpsError {
                status,
                tf_code: tf,
                message: first_line(msg).to_string(),
            },
        }
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.title(), self.code())
    }
}

/// What kind of resource a URL addresses; disambiguates a bare 404.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceScope {
    /// `{org}/_apis/...` (projects list, org-wide repositories, hooks).
    Organization,
    /// `{org}/{project}/_apis/...` without a repository.
    Project,
    /// `.../_apis/git/repositories/{id}/...`.
    Repository,
    /// Anything else (a 404 there is not evidence about org/project/repo).
    Other,
}

/// Evidence attached to an error (never secrets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorContext {
    /// HTTP status of the answer, if there was one.
    pub status: Option<u16>,
    /// `METHOD path` of the request (no query string: it may carry continuation tokens, not secrets,
    /// but it is noise).
    pub request: Option<String>,
    /// Raw server message (first line of `error_description` or the ADO `message`).
    pub message: Option<String>,
    /// Entra `trace_id`.
    pub trace_id: Option<String>,
    /// Entra `correlation_id`.
    pub correlation_id: Option<String>,
    /// Azure DevOps `ActivityId` / `X-VSS-E2EID` header.
    pub activity_id: Option<String>,
}

impl ErrorContext {
    fn suffix(&self) -> String {
        let mut parts = Vec::new();
        if let Some(r) = &self.request {
            parts.push(r.clone());
        }
        if let Some(s) = self.status {
            parts.push(format!("HTTP {s}"));
        }
        if let Some(m) = &self.message {
            parts.push(format!("message: {m}"));
        }
        if let Some(t) = &self.trace_id {
            parts.push(format!("trace id {t}"));
        }
        if let Some(c) = &self.correlation_id {
            parts.push(format!("correlation id {c}"));
        }
        if let Some(a) = &self.activity_id {
            parts.push(format!("activity id {a}"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join("; "))
        }
    }
}

/// The error type of everything under `crate`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AzureError {
    /// A diagnosed failure of Entra ID, Azure DevOps, the network or the admin's configuration.
    #[error("{diagnosis}{}", context.suffix())]
    Service {
        /// What went wrong and what to do about it.
        diagnosis: Diagnosis,
        /// Evidence.
        context: Box<ErrorContext>,
    },
    /// A local file could not be read or written.
    #[error("local I/O error on {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The OS error text.
        message: String,
    },
    /// Invalid arguments from the calling code (a defect, not an admin error).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl AzureError {
    /// A diagnosed error without further evidence.
    pub fn diagnosed(diagnosis: Diagnosis) -> Self {
        AzureError::Service {
            diagnosis,
            context: Box::default(),
        }
    }

    /// A diagnosed error with evidence.
    pub fn with_context(diagnosis: Diagnosis, context: ErrorContext) -> Self {
        AzureError::Service {
            diagnosis,
            context: Box::new(context),
        }
    }

    /// The diagnosis, when this error has one (I/O and argument errors do not).
    pub fn diagnosis(&self) -> Option<&Diagnosis> {
        match self {
            AzureError::Service { diagnosis, .. } => Some(diagnosis),
            _ => None,
        }
    }

    /// The evidence, when there is some.
    pub fn context(&self) -> Option<&ErrorContext> {
        match self {
            AzureError::Service { context, .. } => Some(context),
            _ => None,
        }
    }

    /// Stable code: the diagnosis code, or `io_error` / `invalid_argument`.
    pub fn code(&self) -> &'static str {
        match self {
            AzureError::Service { diagnosis, .. } => diagnosis.code(),
            AzureError::Io { .. } => "io_error",
            AzureError::InvalidArgument(_) => "invalid_argument",
        }
    }

    /// Whether an automatic retry may help (throttling, network, 5xx, timeouts).
    pub fn is_transient(&self) -> bool {
        self.diagnosis().is_some_and(Diagnosis::is_transient)
    }

    /// See [`Diagnosis::for_federated`].
    pub fn for_federated(self) -> Self {
        match self {
            AzureError::Service { diagnosis, context } => AzureError::Service {
                diagnosis: diagnosis.for_federated(),
                context,
            },
            other => other,
        }
    }

    pub(crate) fn io(path: &std::path::Path, err: &std::io::Error) -> Self {
        AzureError::Io {
            path: path.display().to_string(),
            message: err.to_string(),
        }
    }
}

/// Extracts `TFnnnnnn` from the start of an Azure DevOps message.
pub fn tf_code(message: &str) -> Option<String> {
    let m = message.trim_start();
    let rest = m.strip_prefix("TF")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        None
    } else {
        Some(format!("TF{digits}"))
    }
}

/// Extracts the number of the first `AADSTSnnnn` in a description.
pub fn aadsts_code(description: &str) -> Option<u64> {
    let idx = description.find("AADSTS")?;
    let digits: String = description[idx + 6..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// First line of a message, trimmed (Entra descriptions append trace ids on later lines).
pub fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entra_codes_map_to_causes() {
        let cases: &[(u64, &str, Field)] = &[
            (90002, "unknown_tenant", Field::Tenant),
            (900023, "malformed_tenant", Field::Tenant),
            (700016, "unknown_client_id", Field::ClientId),
            (7000215, "wrong_client_secret", Field::Secret),
            (7000222, "expired_client_secret", Field::Secret),
            (700024, "assertion_time_invalid", Field::Certificate),
            (700027, "certificate_rejected", Field::Certificate),
            (500011, "azure_devops_not_in_tenant", Field::Tenant),
            (70011, "invalid_scope", Field::Hub),
            (7000218, "credential_missing", Field::Hub),
            (70021, "federated_no_match", Field::FederatedSubject),
            (700211, "federated_issuer_mismatch", Field::FederatedIssuer),
            (
                700212,
                "federated_audience_mismatch",
                Field::FederatedAudience,
            ),
            (
                700213,
                "federated_subject_mismatch",
                Field::FederatedSubject,
            ),
            (700222, "entra_token_as_assertion", Field::Hub),
            (50027, "invalid_assertion", Field::Hub),
            (50166, "issuer_unreachable", Field::FederatedIssuer),
            (90061, "issuer_unreachable", Field::FederatedIssuer),
        ];
        for (code, expected, field) in cases {
            let d = Diagnosis::from_entra(Some(*code), "invalid_client", "AADSTS: whatever");
            assert_eq!(d.code(), *expected, "AADSTS{code}");
            assert_eq!(d.field(), *field, "AADSTS{code}");
            assert!(!d.title().is_empty() && !d.hint().is_empty());
        }
    }

    #[test]
    fn federated_failures_are_told_apart_from_certificate_ones() {
        // Entra answers a federated assertion's unknown key with the
        // certificate code; for a federated credential it means the issuer's
        // keys, and the stored codes read back.
        let d = Diagnosis::from_entra(Some(700027), "invalid_client", "").for_federated();
        assert_eq!(d.code(), "federated_key_rejected");
        assert_eq!(d.field(), Field::FederatedIssuer);
        for code in [
            "federated_no_match",
            "federated_subject_mismatch",
            "issuer_unreachable",
        ] {
            assert_eq!(Diagnosis::from_code(code).map(|d| d.code()), Some(code));
        }
        let propagating = Diagnosis::FederatedNoMatch.hint();
        assert!(
            propagating.contains("within a few minutes"),
            "{propagating}"
        );
        assert!(!Diagnosis::FederatedNoMatch.is_transient());
    }

    #[test]
    fn wrong_secret_hint_mentions_secret_id() {
        let d = Diagnosis::from_entra(Some(7000215), "invalid_client", "");
        assert!(
            d.hint().contains("secret ID instead of its value"),
            "{}",
            d.hint()
        );
    }

    #[test]
    fn unknown_entra_code_keeps_raw_description() {
        let desc = "AADSTS53003: Access has been blocked by Conditional Access policies.\r\nTrace ID: x\r\nCorrelation ID: y";
        let d = Diagnosis::from_entra(aadsts_code(desc), "access_denied", desc);
        assert_eq!(d.code(), "entra_error");
        assert!(d.title().contains("AADSTS53003"));
        assert!(
            d.hint().contains("blocked by Conditional Access"),
            "{}",
            d.hint()
        );
        assert!(
            !d.hint().contains("Trace ID"),
            "only the first line is kept in the hint"
        );
    }

    #[test]
    fn aadsts_and_tf_codes_are_extracted() {
        assert_eq!(
            aadsts_code("AADSTS7000215: Invalid client secret provided."),
            Some(7000215)
        );
        assert_eq!(aadsts_code("no code"), None);
        assert_eq!(
            tf_code("TF401444: Please sign-in at least once").as_deref(),
            Some("TF401444")
        );
        assert_eq!(tf_code("  TF400813: The user").as_deref(), Some("TF400813"));
        assert_eq!(tf_code("The TF401019 in the middle"), None);
        assert_eq!(tf_code("TFS"), None);
    }

    #[test]
    fn devops_answers_map_to_causes() {
        use ResourceScope::*;
        let cases: &[(u16, Option<&str>, ResourceScope, &str)] = &[
            (
                401,
                Some("TF401444: Please sign-in at least once as t\\t\\o in a web browser"),
                Organization,
                "service_principal_not_in_organization",
            ),
            (
                401,
                Some("TF400813: The user 'x' is not authorized to access this resource."),
                Organization,
                "not_authorized",
            ),
            (401, None, Repository, "not_authorized"),
            (
                404,
                Some(
                    "TF401019: The Git repository with name or identifier r does not exist or you do not have permissions",
                ),
                Repository,
                "repository_not_found",
            ),
            (
                404,
                Some("TF200016: The following project does not exist: p."),
                Project,
                "project_not_found",
            ),
            (404, None, Organization, "organization_not_found"),
            (404, None, Project, "project_not_found"),
            (404, None, Repository, "repository_not_found"),
            (
                429,
                Some("TF400733: The request has been canceled: Request was blocked"),
                Organization,
                "throttled",
            ),
            (203, None, Organization, "sign_in_page"),
            (302, None, Repository, "sign_in_page"),
            (500, None, Repository, "server_error"),
            (503, Some("Service Unavailable"), Repository, "server_error"),
            (
                403,
                Some("TF401027: You need the Git 'Read' permission"),
                Repository,
                "forbidden",
            ),
            (
                400,
                Some("TF999999: brand new error"),
                Repository,
                "azure_devops_error",
            ),
        ];
        for (status, msg, scope, expected) in cases {
            let d = Diagnosis::from_devops(*status, *msg, *scope);
            assert_eq!(d.code(), *expected, "{status} {msg:?}");
        }
        let d = Diagnosis::from_devops(
            400,
            Some("TF999999: brand new error\nsecond line"),
            ResourceScope::Other,
        );
        assert!(d.hint().contains("brand new error"));
        assert!(d.title().contains("TF999999"));
    }

    #[test]
    fn repository_not_found_mentions_stakeholder() {
        assert!(Diagnosis::RepositoryNotFound.hint().contains("Stakeholder"));
    }

    #[test]
    fn every_code_is_snake_case_and_unique() {
        let all = [
            Diagnosis::UnknownTenant,
            Diagnosis::MalformedTenant,
            Diagnosis::UnknownClientId,
            Diagnosis::WrongClientSecret,
            Diagnosis::ExpiredClientSecret,
            Diagnosis::AssertionTimeInvalid,
            Diagnosis::CertificateRejected,
            Diagnosis::InvalidCertificate {
                detail: String::new(),
            },
            Diagnosis::ApplicationDisabled,
            Diagnosis::AzureDevOpsNotInTenant,
            Diagnosis::InvalidScope,
            Diagnosis::CredentialMissing,
            Diagnosis::EntraError {
                code: None,
                error: "e".into(),
                description: "d".into(),
            },
            Diagnosis::ServicePrincipalNotInOrganization,
            Diagnosis::NotAuthorized,
            Diagnosis::SignInPage { status: 203 },
            Diagnosis::OrganizationNotFound,
            Diagnosis::InvalidOrganizationName,
            Diagnosis::ProjectNotFound,
            Diagnosis::NoProjectsVisible,
            Diagnosis::RepositoryNotFound,
            Diagnosis::NoRepositoriesVisible,
            Diagnosis::Forbidden {
                message: String::new(),
            },
            Diagnosis::Throttled { retry_after: None },
            Diagnosis::DevOpsError {
                status: 400,
                tf_code: None,
                message: String::new(),
            },
            Diagnosis::NetworkFailure {
                detail: String::new(),
            },
            Diagnosis::Timeout,
            Diagnosis::ServerError { status: 500 },
            Diagnosis::UnexpectedResponse {
                detail: String::new(),
            },
            Diagnosis::TooLarge { bytes: 2, limit: 1 },
        ];
        let mut seen = std::collections::HashSet::new();
        for d in &all {
            let c = d.code();
            assert!(
                c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'),
                "{c}"
            );
            assert!(seen.insert(c), "duplicate code {c}");
            assert!(!d.title().is_empty());
            assert!(!d.hint().is_empty());
            let _ = d.field().as_str();
        }
    }

    #[test]
    fn error_display_carries_evidence_but_is_one_line() {
        let e = AzureError::with_context(
            Diagnosis::WrongClientSecret,
            ErrorContext {
                status: Some(401),
                trace_id: Some("trace-1".into()),
                correlation_id: Some("corr-1".into()),
                ..Default::default()
            },
        );
        let s = e.to_string();
        assert!(
            s.contains("wrong_client_secret") && s.contains("trace-1") && s.contains("corr-1"),
            "{s}"
        );
        assert_eq!(e.code(), "wrong_client_secret");
        assert!(!e.is_transient());
        assert!(AzureError::diagnosed(Diagnosis::Timeout).is_transient());
    }
}
