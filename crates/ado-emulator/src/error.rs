//! Errors of the emulator's Rust API (the HTTP side answers with Entra / Azure DevOps error bodies instead).

use thiserror::Error;

/// An error from starting, configuring or driving the emulator.
#[derive(Debug, Error)]
pub enum EmulatorError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("git {args} failed: {stderr}")]
    Git { args: String, stderr: String },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("JSON error: {0}")]
    Json(#[from] serde_json::Error),
    #[error("background task failed: {0}")]
    Task(String),
}

impl From<tokio::task::JoinError> for EmulatorError {
    fn from(error: tokio::task::JoinError) -> Self {
        EmulatorError::Task(error.to_string())
    }
}
