//! What an admin does, as commands shared by the command line and the admin
//! pages' server functions, so neither duplicates logic. They return domain
//! values; the pages' view models are built in the web crate's server half.
//! adding repositories and asking for synchronizations (`repositories`),
//! setting up and testing Git providers and picking repositories from an
//! organization (`providers`), and the webhook deliveries page with
//! "Create the webhook for me" (`webhooks`).

pub mod providers;
pub mod repositories;
pub mod webhooks;

use spicehub_azure::{AzureError, Diagnosis};

/// A diagnosis as it is stored with a provider's last connection test (its
/// code, what went wrong, what to do, and the form field it concerns).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DiagnosisRecord {
    pub code: String,
    pub title: String,
    pub hint: String,
    pub field: String,
}

impl DiagnosisRecord {
    pub fn of(d: &Diagnosis) -> Self {
        DiagnosisRecord {
            code: d.code().to_owned(),
            title: d.title().into_owned(),
            hint: d.hint().into_owned(),
            field: d.field().as_str().to_owned(),
        }
    }

    /// An Azure error's diagnosis, or its text.
    pub fn of_error(e: &AzureError) -> Self {
        match e.diagnosis() {
            Some(d) => Self::of(d),
            None => DiagnosisRecord {
                code: e.code().to_owned(),
                title: "The request to Azure could not be made".into(),
                hint: e.to_string(),
                field: "hub".into(),
            },
        }
    }
}

/// A form field with a problem, by the field's `name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// Why an admin command failed. The command line prints it; the web layer
/// maps it once to what a page shows.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Message(String),
    #[error("Some fields need attention.")]
    Fields(Vec<FieldError>),
    #[error("{}: {}", .0.title, .0.hint)]
    Diagnosed(DiagnosisRecord),
    #[error("no Git provider is named `{0}`")]
    UnknownProvider(String),
    #[error("no such repository in the hub")]
    UnknownRepository,
    #[error("this repository is already replicated")]
    AlreadyAdded,
    #[error("the repository is disabled in Azure DevOps")]
    Disabled,
    #[error("the repository is empty: add it after its first push")]
    Empty,
    #[error("`{0}` is not a commit hash (7 to 40 hexadecimal characters)")]
    BadCommit(String),
    #[error("no commit of the branch `{branch}` starts with `{prefix}` (among its latest {searched} commits)")]
    UnknownCommit {
        prefix: String,
        branch: String,
        searched: usize,
    },
    #[error("`{prefix}` is ambiguous: {} commits start with it ({}); type more characters", .matches.len(), .matches.join(", "))]
    AmbiguousCommit {
        prefix: String,
        matches: Vec<String>,
    },
    #[error("the branch `{0}` does not exist in this repository in Azure DevOps")]
    UnknownBranch(String),
    #[error("{0}")]
    Azure(#[from] AzureError),
    #[error(transparent)]
    Connection(#[from] crate::connections::ConnectionError),
    #[error(transparent)]
    Provider(#[from] crate::db::providers::ProviderError),
    #[error(transparent)]
    Queue(#[from] crate::sync::QueueError),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
}

impl From<crate::db::repositories::RepositoryError> for AdminError {
    fn from(e: crate::db::repositories::RepositoryError) -> Self {
        match e {
            crate::db::repositories::RepositoryError::Exists => AdminError::AlreadyAdded,
            crate::db::repositories::RepositoryError::Db(e) => AdminError::Db(e),
        }
    }
}
