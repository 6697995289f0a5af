//! Azure DevOps integration: the hub acts as an *application* (a Microsoft Entra ID
//! service principal using the OAuth 2.0 client-credentials flow) to list and
//! replicate Git repositories.
//!
//! * [`token`]: token manager (cache, renewal margin, single flight).
//! * [`credentials`]: client secret, certificate (signed client assertion), legacy PAT.
//! * [`client`]: Azure DevOps REST 7.1 client (paging, zip streaming, throttling).
//! * [`models`]: tolerant serde models, including the `git.push` webhook payload.
//! * [`diagnosis`]: every failure mapped to an admin-actionable [`Diagnosis`].
//! * [`retry`]: backoff policy and per-organization throttle gate.
//! * [`check`]: the `spicehub azure check` command.

pub mod check;
pub mod client;
pub mod credentials;
pub mod diagnosis;
pub mod ids;
pub mod models;
pub mod retry;
pub mod token;

pub use client::{
    AzureClient, BlobZipError, BlobZipLimits, BlobsZipDownload, ClientConfig, CommitQuery,
    GitVersion, PushQuery, RecursionLevel, ZipBlob, ZipDownload,
};
pub use credentials::{AssertionAlgorithm, Credential, CredentialKind};
pub use diagnosis::{AzureError, Diagnosis, ErrorContext, Field};
pub use ids::{is_guid, Guid, IdError, OrganizationName, TenantId};
pub use retry::{Budget, GateReport, Priority, RetryPolicy, ThrottleCause, ThrottleEvent};
pub use token::{AccessToken, ServicePrincipal, TokenManager, TokenManagerConfig};

/// OAuth scope of Azure DevOps: its application ID plus `/.default` (not its URI).
pub const AZURE_DEVOPS_SCOPE: &str = "499b84ac-1321-427f-aa17-267ca6975798/.default";

/// Public-cloud Entra authority.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

/// Azure DevOps Services base URL.
pub const DEFAULT_DEVOPS_URL: &str = "https://dev.azure.com";

/// REST API version used for every call.
pub const API_VERSION: &str = "7.1";

/// User-Agent of every request.
pub const USER_AGENT: &str = concat!(
    "spicehub/",
    env!("CARGO_PKG_VERSION"),
    " (+azure-devops-client)"
);
