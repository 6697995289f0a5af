//! `spicehub azure check`: obtains a token, reads the organization, prints the
//! projects and repositories the service principal sees, or the diagnosis.
//!
//! Exit codes: 0 all is well, 2 a diagnosis was printed, 1 usage error (missing
//! credential option, environment variable not set, unreadable file, bad URL).
//! Secrets are read from environment variables or files only, never from argv
//! (argv is visible to every user of the machine through `ps`).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use secrecy::SecretString;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::client::{AzureClient, ClientConfig, RepositorySummary};
use crate::credentials::{Credential, CredentialKind};
use crate::diagnosis::{AzureError, Diagnosis, ErrorContext};
use crate::models::TeamProjectReference;
use crate::token::{ServicePrincipal, TokenManager, TokenManagerConfig};
use crate::{DEFAULT_AUTHORITY, DEFAULT_DEVOPS_URL};

/// Arguments of `spicehub azure check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Directory (tenant) ID: a GUID or a verified domain.
    #[arg(long)]
    pub tenant: String,
    /// Application (client) ID of the app registration.
    #[arg(long)]
    pub client_id: String,
    /// Azure DevOps organization name (as in https://dev.azure.com/{org}).
    #[arg(long)]
    pub org: String,
    /// Name of the environment variable holding the client secret's value.
    #[arg(long, value_name = "VAR")]
    pub client_secret_env: Option<String>,
    /// PEM file of the certificate uploaded to the app registration.
    #[arg(long, value_name = "PEM")]
    pub certificate: Option<PathBuf>,
    /// PEM file of the certificate's RSA private key.
    #[arg(long, value_name = "PEM")]
    pub private_key: Option<PathBuf>,
    /// Name of the environment variable holding a personal access token (deprecated).
    #[arg(long, value_name = "VAR")]
    pub pat_env: Option<String>,
    /// A federated credential: the assertion is signed by the hub's own
    /// OpenID Connect issuer, read from the hub's configuration in its
    /// environment (database, SPICEHUB_SECRET_KEY, SPICEHUB_PUBLIC_URL).
    #[arg(long)]
    pub federated: bool,
    /// The federated credential's Subject (default: the hub's own app,
    /// `spicehub:hub`; a provider's is shown on its page).
    #[arg(long, value_name = "SUBJECT", requires = "federated")]
    pub subject: Option<String>,
    /// Entra authority (sovereign clouds, test emulators).
    #[arg(long, value_name = "URL", default_value = DEFAULT_AUTHORITY)]
    pub authority_url: String,
    /// Azure DevOps base URL.
    #[arg(long, value_name = "URL", default_value = DEFAULT_DEVOPS_URL)]
    pub devops_url: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `token` part of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenReport {
    /// A token (or PAT) was obtained.
    pub ok: bool,
    /// Seconds of validity left (0 when unknown or failed).
    pub expires_in: u64,
}

/// `diagnosis` part of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiagnosisReport {
    /// Stable code.
    pub code: String,
    /// Title.
    pub title: String,
    /// Fix.
    pub hint: String,
}

/// One project and its repositories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectReport {
    /// GUID.
    pub id: String,
    /// Name.
    pub name: String,
    /// Repositories.
    pub repositories: Vec<RepositorySummary>,
}

/// What `--json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// Token step.
    pub token: TokenReport,
    /// First problem found, if any.
    pub diagnosis: Option<DiagnosisReport>,
    /// Projects read so far.
    pub projects: Vec<ProjectReport>,
}

/// Everything the text output shows beyond the JSON report.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    /// The JSON report.
    pub report: CheckReport,
    /// Full error behind the diagnosis (field, evidence).
    pub error: Option<AzureError>,
    /// Credential kind used.
    pub credential_kind: CredentialKind,
}

impl CheckOutcome {
    /// 0 when all is well, 2 when a diagnosis was found.
    pub fn exit_code(&self) -> i32 {
        if self.report.diagnosis.is_some() {
            2
        } else {
            0
        }
    }
}

/// A usage error: exit code 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn load_credential(args: &CheckArgs) -> Result<Result<Credential, AzureError>, UsageError> {
    let chosen = [
        args.client_secret_env.is_some(),
        args.certificate.is_some() || args.private_key.is_some(),
        args.pat_env.is_some(),
        args.federated,
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if chosen != 1 {
        return Err(UsageError(
            "give exactly one credential: --client-secret-env VAR, --certificate PEM --private-key PEM, --federated, or --pat-env VAR"
                .into(),
        ));
    }
    if let Some(var) = &args.client_secret_env {
        let value = read_env(var)?;
        return Ok(Credential::client_secret(value));
    }
    if args.federated {
        return Err(UsageError(
            "--federated signs with the hub's issuer: run it as `spicehub azure check --federated`"
                .into(),
        ));
    }
    if let Some(var) = &args.pat_env {
        let value = read_env(var)?;
        return Ok(Credential::personal_access_token(value));
    }
    let (Some(cert), Some(key)) = (&args.certificate, &args.private_key) else {
        return Err(UsageError(
            "--certificate and --private-key go together".into(),
        ));
    };
    let cert_pem = std::fs::read(cert)
        .map_err(|e| UsageError(format!("cannot read {}: {e}", cert.display())))?;
    let key_pem = std::fs::read_to_string(key)
        .map_err(|e| UsageError(format!("cannot read {}: {e}", key.display())))?;
    Ok(Credential::certificate_from_pem(
        &cert_pem,
        &SecretString::from(key_pem),
    ))
}

fn read_env(var: &str) -> Result<SecretString, UsageError> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(SecretString::from(v)),
        Ok(_) => Err(UsageError(format!("environment variable {var} is empty"))),
        Err(_) => Err(UsageError(format!("environment variable {var} is not set"))),
    }
}

fn usage_or_diagnosis<T>(r: Result<T, AzureError>) -> Result<Result<T, AzureError>, UsageError> {
    match r {
        Err(AzureError::InvalidArgument(m)) => Err(UsageError(m)),
        other => Ok(other),
    }
}

/// Runs the check with default client settings.
pub async fn check(args: &CheckArgs) -> Result<CheckOutcome, UsageError> {
    check_with(args, TokenManagerConfig::default(), ClientConfig::default()).await
}

/// Runs the check with explicit settings (tests use fast retries).
pub async fn check_with(
    args: &CheckArgs,
    token_config: TokenManagerConfig,
    client_config: ClientConfig,
) -> Result<CheckOutcome, UsageError> {
    let credential = load_credential(args)?;
    check_credential(args, credential, token_config, client_config).await
}

/// Runs the check with a credential made by the caller (the hub's command
/// line makes the federated one, which signs with the hub's issuer).
pub async fn check_credential(
    args: &CheckArgs,
    credential: Result<Credential, AzureError>,
    token_config: TokenManagerConfig,
    mut client_config: ClientConfig,
) -> Result<CheckOutcome, UsageError> {
    let report = CheckReport {
        token: TokenReport {
            ok: false,
            expires_in: 0,
        },
        diagnosis: None,
        projects: Vec::new(),
    };
    let kind = match &credential {
        Ok(c) => c.kind(),
        Err(_) => CredentialKind::Certificate,
    };
    let fail = |mut report: CheckReport, e: AzureError| {
        report.diagnosis = Some(diagnosis_report(&e));
        Ok(CheckOutcome {
            report,
            error: Some(e),
            credential_kind: kind,
        })
    };
    let credential = match credential {
        Ok(c) => c,
        Err(e) => return fail(report, e),
    };
    let principal = match usage_or_diagnosis(ServicePrincipal::with_authority(
        &args.authority_url,
        &args.tenant,
        &args.client_id,
        credential,
    ))? {
        Ok(p) => p,
        Err(e) => return fail(report, e),
    };
    let tokens = TokenManager::new(token_config).map_err(|e| UsageError(e.to_string()))?;
    client_config.devops_url = args.devops_url.clone();
    let client = match usage_or_diagnosis(AzureClient::new(
        client_config,
        tokens,
        principal,
        &args.org,
    ))? {
        Ok(c) => c,
        Err(e) => return fail(report, e),
    };

    let (report, error) = check_client(&client).await;
    Ok(CheckOutcome {
        report,
        error,
        credential_kind: kind,
    })
}

/// The steps of the check with a client already built: a token, the
/// organization's projects, and every project's repositories. Returns the
/// report and the first problem found. The admin pages' **Test
/// connection** runs exactly this.
pub async fn check_client(client: &AzureClient) -> (CheckReport, Option<AzureError>) {
    let mut report = CheckReport {
        token: TokenReport {
            ok: false,
            expires_in: 0,
        },
        diagnosis: None,
        projects: Vec::new(),
    };
    let fail = |mut report: CheckReport, e: AzureError| {
        report.diagnosis = Some(diagnosis_report(&e));
        (report, Some(e))
    };
    match client.tokens().get(client.principal()).await {
        Ok(t) => {
            report.token = TokenReport {
                ok: true,
                expires_in: t.expires_in().map(|d| d.as_secs()).unwrap_or(0),
            };
        }
        Err(e) => return fail(report, e),
    }

    let projects = match client.list_projects().await {
        Ok(p) => p,
        Err(e) => return fail(report, e),
    };
    if projects.is_empty() {
        return fail(report, AzureError::diagnosed(Diagnosis::NoProjectsVisible));
    }

    // Repositories of all projects, concurrently; the client's per-organization gate
    // bounds how many requests are actually in flight.
    let mut set: JoinSet<(usize, Result<Vec<RepositorySummary>, AzureError>)> = JoinSet::new();
    for (i, p) in projects.iter().enumerate() {
        let client = client.clone();
        let project_id = p.id.clone();
        set.spawn(async move {
            let r = client
                .list_repositories(&project_id)
                .await
                .map(|repos| repos.iter().map(RepositorySummary::from).collect());
            (i, r)
        });
    }
    let mut results: Vec<Option<Result<Vec<RepositorySummary>, AzureError>>> =
        vec![None; projects.len()];
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, r)) => {
                if let Some(slot) = results.get_mut(i) {
                    *slot = Some(r);
                }
            }
            Err(e) => {
                return fail(
                    report,
                    AzureError::with_context(
                        Diagnosis::UnexpectedResponse {
                            detail: format!("task failed: {e}"),
                        },
                        ErrorContext::default(),
                    ),
                );
            }
        }
    }
    let mut first_error: Option<AzureError> = None;
    for (p, r) in projects.iter().zip(results) {
        match r {
            Some(Ok(repos)) => report.projects.push(project_report(p, repos)),
            Some(Err(e)) => {
                report.projects.push(project_report(p, Vec::new()));
                first_error.get_or_insert(e);
            }
            None => report.projects.push(project_report(p, Vec::new())),
        }
    }
    if let Some(e) = first_error {
        return fail(report, e);
    }
    if report.projects.iter().all(|p| p.repositories.is_empty()) {
        return fail(
            report,
            AzureError::diagnosed(Diagnosis::NoRepositoriesVisible),
        );
    }
    (report, None)
}

fn project_report(p: &TeamProjectReference, repositories: Vec<RepositorySummary>) -> ProjectReport {
    ProjectReport {
        id: p.id.clone(),
        name: p.name.clone(),
        repositories,
    }
}

/// Code, title and hint of an error (its diagnosis, or its text).
pub fn diagnosis_report(e: &AzureError) -> DiagnosisReport {
    match e.diagnosis() {
        Some(d) => DiagnosisReport {
            code: d.code().to_string(),
            title: d.title().into_owned(),
            hint: d.hint().into_owned(),
        },
        None => DiagnosisReport {
            code: e.code().to_string(),
            title: e.to_string(),
            hint: String::new(),
        },
    }
}

/// `spicehub azure check`: prints to stdout/stderr and returns the exit code.
pub async fn run_check(args: CheckArgs) -> i32 {
    // The report is written once the check is done. Holding the stdout or
    // stderr lock across the check would deadlock: the tasks that list
    // repositories run on other threads, and their log lines need stderr.
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_check_to(&args, &mut out, &mut err).await;
    let _ = std::io::stdout().write_all(&out);
    let _ = std::io::stderr().write_all(&err);
    code
}

/// As [`run_check`], writing to the given streams.
pub async fn run_check_to(args: &CheckArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    run_check_with(
        args,
        TokenManagerConfig::default(),
        ClientConfig::default(),
        out,
        err,
    )
    .await
}

/// As [`run_check_to`], with explicit settings.
pub async fn run_check_with(
    args: &CheckArgs,
    token_config: TokenManagerConfig,
    client_config: ClientConfig,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let outcome = check_with(args, token_config, client_config).await;
    report_outcome(args, outcome, out, err)
}

/// `spicehub azure check --federated`: as [`run_check`], with the
/// federated credential the hub made.
pub async fn run_check_credential(
    args: CheckArgs,
    credential: Result<Credential, AzureError>,
) -> i32 {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let outcome = check_credential(
        &args,
        credential,
        TokenManagerConfig::default(),
        ClientConfig::default(),
    )
    .await;
    let code = report_outcome(&args, outcome, &mut out, &mut err);
    let _ = std::io::stdout().write_all(&out);
    let _ = std::io::stderr().write_all(&err);
    code
}

fn report_outcome(
    args: &CheckArgs,
    outcome: Result<CheckOutcome, UsageError>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let outcome = match outcome {
        Ok(o) => o,
        Err(usage) => {
            let _ = writeln!(err, "error: {usage}");
            return 1;
        }
    };
    // Write errors (closed pipe) cannot be reported anywhere useful; the exit code
    // still tells the result.
    if args.json {
        match serde_json::to_string(&outcome.report) {
            Ok(s) => {
                let _ = writeln!(out, "{s}");
            }
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                return 1;
            }
        }
    } else {
        let _ = write_text(args, &outcome, out);
    }
    if outcome.credential_kind == CredentialKind::PersonalAccessToken {
        let _ = writeln!(
            err,
            "warning: personal access tokens are deprecated for spicehub; switch to a client secret or certificate"
        );
    }
    outcome.exit_code()
}

fn write_text(args: &CheckArgs, o: &CheckOutcome, out: &mut dyn Write) -> std::io::Result<()> {
    let r = &o.report;
    if r.token.ok {
        if o.credential_kind == CredentialKind::PersonalAccessToken {
            writeln!(out, "Credential: personal access token (deprecated)")?;
        } else {
            writeln!(out, "Token: OK (expires in {} s)", r.token.expires_in)?;
        }
    } else {
        writeln!(out, "Token: not obtained")?;
    }
    if !r.projects.is_empty() {
        let repos: usize = r.projects.iter().map(|p| p.repositories.len()).sum();
        writeln!(
            out,
            "Organization {}: {} project(s), {} repositories",
            args.org,
            r.projects.len(),
            repos
        )?;
        for p in &r.projects {
            writeln!(out, "  {} ({})", p.name, p.id)?;
            for repo in &p.repositories {
                let branch = repo.default_branch.as_deref().unwrap_or("(empty)");
                let size = repo.size.map(|s| format!("{s} bytes")).unwrap_or_default();
                let disabled = if repo.is_disabled { " [disabled]" } else { "" };
                writeln!(
                    out,
                    "    - {}  {}  {}{}  {}",
                    repo.name, branch, size, disabled, repo.id
                )?;
            }
        }
    }
    if let Some(d) = &r.diagnosis {
        writeln!(out, "Problem: {} [{}]", d.title, d.code)?;
        if let Some(diag) = o.error.as_ref().and_then(AzureError::diagnosis) {
            writeln!(out, "  Field: {}", diag.field().as_str())?;
        }
        writeln!(out, "  Fix: {}", d.hint)?;
        if let Some(e) = &o.error {
            writeln!(out, "  Details: {e}")?;
        }
    } else {
        writeln!(out, "All good.")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        check: CheckArgs,
    }

    #[test]
    fn parses_flags() {
        let cli = Cli::try_parse_from([
            "check",
            "--tenant",
            "t",
            "--client-id",
            "c",
            "--org",
            "o",
            "--client-secret-env",
            "SECRET",
            "--json",
        ]);
        let cli = cli.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cli.check.client_secret_env.as_deref(), Some("SECRET"));
        assert!(cli.check.json);
        assert_eq!(cli.check.authority_url, DEFAULT_AUTHORITY);
        assert_eq!(cli.check.devops_url, DEFAULT_DEVOPS_URL);
        // There is deliberately no flag that takes a secret value.
        assert!(Cli::try_parse_from([
            "check",
            "--tenant",
            "t",
            "--client-id",
            "c",
            "--org",
            "o",
            "--client-secret",
            "x"
        ])
        .is_err());
    }

    fn args(secret_env: Option<&str>) -> CheckArgs {
        CheckArgs {
            tenant: "t".into(),
            client_id: "c".into(),
            org: "o".into(),
            client_secret_env: secret_env.map(str::to_string),
            certificate: None,
            private_key: None,
            pat_env: None,
            federated: false,
            subject: None,
            authority_url: "http://127.0.0.1:9".into(),
            devops_url: "http://127.0.0.1:9".into(),
            json: true,
        }
    }

    #[tokio::test]
    async fn missing_env_var_is_a_usage_error() {
        let a = args(Some("SPICEHUB_TEST_VAR_THAT_IS_NOT_SET_4711"));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(run_check_to(&a, &mut out, &mut err).await, 1);
        assert!(String::from_utf8_lossy(&err).contains("SPICEHUB_TEST_VAR_THAT_IS_NOT_SET_4711"));
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn no_credential_is_a_usage_error() {
        let a = args(None);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(run_check_to(&a, &mut out, &mut err).await, 1);
    }

    #[tokio::test]
    async fn two_credentials_is_a_usage_error() {
        let mut a = args(Some("PATH"));
        a.pat_env = Some("PATH".into());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(run_check_to(&a, &mut out, &mut err).await, 1);
    }
}
