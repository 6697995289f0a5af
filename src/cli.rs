//! The command line: `serve` (default), `admin create`, `migrate`, `parse`,
//! `diff`, `provider add|list|check|remove`, `repository add|list|sync`, `azure check`.
//! Logs go to standard error: standard output carries only what a command
//! prints for its caller (JSON, DOT, tables), so scripts can parse it.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use spicehub_core::admin::AdminError;
use spicehub_core::config::{Config, DatabaseArgs, ServeArgs};
use spicehub_core::db::users::{Role, UserError};
use spicehub_core::db::Db;
use spicehub_core::Hub;

#[derive(Parser, Debug)]
#[command(
    name = "spicehub",
    version,
    about = "Spice registries of your Azure DevOps repositories, as graphs"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the hub (the default).
    Serve(ServeArgs),
    /// Manage local accounts.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
    /// Print the spice registries of a local checkout (JSON or Graphviz DOT).
    /// Exit 0 even when the code has problems (they are in the output as
    /// diagnostics); 1 only when PATH cannot be read.
    Parse {
        path: std::path::PathBuf,
        #[arg(long, value_enum, default_value = "json")]
        format: spicehub_parser::OutputFormat,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// What changed in the spice registries between two versions of a
    /// repository, each a local checkout or a file written by `spicehub
    /// parse`. Exit 0 when no registry changed, 1 when some did, 2 on errors
    /// (as diff(1)).
    Diff {
        /// The earlier version: a directory, or `spicehub parse` JSON.
        old: std::path::PathBuf,
        /// The later version: a directory, or `spicehub parse` JSON.
        new: std::path::PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: spicehub_parser::DiffFormat,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// Git providers (Azure DevOps connections as an Entra ID application).
    Provider {
        #[command(subcommand)]
        command: ProviderCommand,
    },
    /// Replicated repositories.
    Repository {
        #[command(subcommand)]
        command: RepositoryCommand,
    },
    /// Azure DevOps connection tools.
    Azure {
        #[command(subcommand)]
        command: AzureCommand,
    },
    /// The hub as an OpenID Connect issuer (federated credentials).
    Issuer {
        #[command(subcommand)]
        command: IssuerCommand,
    },
}

#[derive(Subcommand, Debug)]
enum IssuerCommand {
    /// Fetch the discovery document and keys through the public URL and
    /// check them as Entra ID does (HTTPS, a host reachable from the
    /// internet, `issuer` exactly the public URL, RS256, the signing key
    /// published). Exit 0 when Entra could use it, 2 otherwise.
    Check {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        hub: ServeArgs,
    },
}

/// The hub's configuration from its environment only, for commands whose
/// own flags would clash with the server's.
#[derive(Parser)]
struct HubFromEnv {
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum AzureCommand {
    /// Obtain a token as the service principal, read the organization and
    /// list what it can see, or say what is wrong and how to fix it.
    /// Exit 0 when all is well, 2 with a diagnosis, 1 on usage errors.
    Check(spicehub_azure::check::CheckArgs),
}

#[derive(Subcommand, Debug)]
enum ProviderCommand {
    /// Add an Azure DevOps provider authenticating with a client secret,
    /// validated exactly as the admin page's form. The secret's value is
    /// read from a prompt or the first line of standard input. A webhook
    /// password is generated and printed once.
    Add {
        /// Display name.
        #[arg(long)]
        name: String,
        /// Directory (tenant) ID or a verified domain.
        #[arg(long)]
        tenant: String,
        /// Application (client) ID.
        #[arg(long)]
        client_id: String,
        /// The Azure DevOps organization, as in https://dev.azure.com/{organization}.
        #[arg(long)]
        organization: String,
        /// Basic Auth user name Azure DevOps posts webhooks with (default:
        /// `spicehub-` and six random letters or digits).
        #[arg(long)]
        webhook_username: Option<String>,
        /// When the client secret expires (YYYY-MM-DD), for the warnings.
        #[arg(long)]
        secret_expires: Option<String>,
        #[command(flatten)]
        hub: ServeArgs,
    },
    /// List providers.
    List {
        #[command(flatten)]
        hub: ServeArgs,
    },
    /// Delete a provider: first the service hooks the hub created in Azure
    /// DevOps (best effort), then its repositories with their files and
    /// graphs, its deliveries and its sealed credential. Asks for
    /// confirmation on a terminal; elsewhere pass --yes. Exit 0 when done,
    /// 2 when done but some service hooks could not be deleted (they are
    /// listed with their project's Service hooks page), 1 on errors.
    Remove {
        /// Provider display name or id.
        #[arg(long)]
        provider: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Print the outcome as JSON on standard output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        hub: ServeArgs,
    },
    /// Test a saved provider's connection as the admin page's "Test
    /// connection" does (a token, then its organization's projects and
    /// repositories) and record the outcome as its health. Exit 0 when all
    /// is well, 2 with a diagnosis, 1 on usage errors.
    Check {
        /// Provider display name or id.
        provider: String,
        /// The organization to test (default: the provider's own, as the
        /// admin page saved it or a repository added).
        #[arg(long)]
        organization: Option<String>,
        #[command(flatten)]
        hub: ServeArgs,
    },
}

#[derive(Subcommand, Debug)]
enum RepositoryCommand {
    /// Add a repository (looked up as the provider's service principal) and
    /// queue its first replication; a running hub picks it up.
    Add {
        /// Provider display name or id.
        #[arg(long)]
        provider: String,
        #[arg(long)]
        organization: String,
        /// Project name or GUID.
        #[arg(long)]
        project: String,
        /// Repository name or GUID.
        #[arg(long)]
        repository: String,
        /// Tracked branch, kept when the default branch changes (default:
        /// follow the repository's default branch in Azure DevOps).
        #[arg(long)]
        branch: Option<String>,
        #[command(flatten)]
        hub: ServeArgs,
    },
    /// List repositories with their sync state.
    List {
        #[command(flatten)]
        hub: ServeArgs,
    },
    /// Queue a synchronization of one repository (by GUID).
    Sync {
        repository: String,
        #[arg(long, value_parser = ["entire", "recent", "from-commit", "reparse"], default_value = "recent")]
        kind: String,
        /// The commit for `--kind from-commit`.
        #[arg(long)]
        commit: Option<String>,
        #[command(flatten)]
        hub: ServeArgs,
    },
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Create an account. The password is read from a prompt, or from the
    /// first line of standard input when it is not a terminal; never from
    /// the command line, where other users could see it.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = ["admin", "viewer"], default_value = "admin")]
        role: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    let done = match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Parse {
            path,
            format,
            output,
        }) => {
            // Parsing is CPU-bound work on rayon's pool, off the async runtime.
            tokio::task::spawn_blocking(move || {
                spicehub_parser::run_parse_cli(&path, format, output.as_deref())
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
        }
        Some(Command::Diff {
            old,
            new,
            format,
            output,
        }) => return Ok(diff(old, new, format, output).await),
        Some(Command::Azure {
            command: AzureCommand::Check(args),
        }) => {
            let code = if args.federated {
                let serve = HubFromEnv::try_parse_from(["spicehub"])
                    .map_err(|e| e.to_string())?
                    .serve;
                let hub = open_hub(serve).await?;
                hub.issuer
                    .rotate(spicehub_core::db::now())
                    .await
                    .map_err(|e| e.to_string())?;
                let subject = args
                    .subject
                    .clone()
                    .unwrap_or_else(|| spicehub_core::issuer::HUB_SUBJECT.to_owned());
                eprintln!(
                    "federated credential: issuer {}, subject {subject}, audience {}",
                    hub.issuer.url(),
                    spicehub_azure::credentials::FEDERATED_AUDIENCE
                );
                let credential = hub
                    .connections
                    .federated_credential(&subject)
                    .map_err(|e| e.to_string())?;
                spicehub_azure::check::run_check_credential(args, Ok(credential)).await
            } else {
                spicehub_azure::check::run_check(args).await
            };
            return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
        }
        Some(Command::Issuer {
            command: IssuerCommand::Check { json, hub },
        }) => return issuer_check(json, hub).await,
        Some(Command::Migrate(database)) => {
            spicehub_core::config::ensure_dir(&database.data_dir).map_err(|e| e.to_string())?;
            let db = Db::connect(&database.url())
                .await
                .map_err(|e| e.to_string())?;
            db.migrate().await.map_err(|e| e.to_string())?;
            println!("database is up to date");
            Ok(())
        }
        Some(Command::Provider { command }) => return provider_command(command).await,
        Some(Command::Repository { command }) => repository_command(command).await,
        Some(Command::Admin {
            command:
                AdminCommand::Create {
                    email,
                    role,
                    database,
                },
        }) => create_admin(&email, &role, &database).await,
    };
    done.map(|()| ExitCode::SUCCESS)
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let config = Config::from_args(args).map_err(|e| e.to_string())?;
    crate::server::serve(config)
        .await
        .map_err(|e| e.to_string())
}

/// `spicehub diff`, with diff(1)'s exit codes so a pipeline can act on
/// them: 0 unchanged, 1 changed, and 2 (not 1) when it cannot compare.
async fn diff(
    old: std::path::PathBuf,
    new: std::path::PathBuf,
    format: spicehub_parser::DiffFormat,
    output: Option<std::path::PathBuf>,
) -> ExitCode {
    // Parsing is CPU-bound work on rayon's pool, off the async runtime.
    let outcome = tokio::task::spawn_blocking(move || {
        spicehub_parser::run_diff_cli(&old, &new, format, output.as_deref())
    })
    .await;
    match outcome {
        Ok(Ok(outcome)) => ExitCode::from(outcome.exit_code()),
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The provider and repository commands open the hub as `serve` does, so
/// they validate, seal and connect exactly as the admin pages.
async fn open_hub(args: ServeArgs) -> Result<Hub, String> {
    let config = Config::from_args(args).map_err(|e| e.to_string())?;
    let hub = Hub::open(config).await.map_err(|e| e.to_string())?;
    // A federated provider signs with the keys `serve` keeps; read them.
    hub.issuer.load().await.map_err(|e| e.to_string())?;
    Ok(hub)
}

async fn issuer_check(json: bool, hub: ServeArgs) -> Result<ExitCode, String> {
    let hub = open_hub(hub).await?;
    let kid = hub.issuer.signing_kid(spicehub_core::db::now());
    let report = spicehub_core::issuer::check::check_issuer(
        hub.issuer.url(),
        kid.as_deref(),
        hub.issuer.reachability_problem(),
    )
    .await;
    if json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| e.to_string())?
        );
    } else {
        println!("issuer: {}", report.issuer);
        for finding in &report.findings {
            let mark = if finding.ok { "ok  " } else { "FAIL" };
            println!("{mark} {}: {}", finding.check, finding.detail);
        }
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// A refused form, in the command line's words: each field as its flag.
fn admin_error(e: AdminError) -> String {
    match e {
        AdminError::Fields(fields) => fields
            .iter()
            .map(|f| {
                let flag = match f.field.as_str() {
                    "display_name" => "--name",
                    "tenant_id" => "--tenant",
                    "client_id" => "--client-id",
                    "client_secret" => "the client secret (standard input)",
                    "secret_expires" => "--secret-expires",
                    "organization" => "--organization",
                    "webhook_username" => "--webhook-username",
                    other => other,
                };
                format!("{flag}: {}", f.message)
            })
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

fn read_secret(prompt: &str) -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt).map_err(|e| e.to_string())
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        Ok(line.trim_end_matches(['\n', '\r']).to_owned())
    }
}

async fn provider_command(command: ProviderCommand) -> Result<ExitCode, String> {
    use spicehub_core::admin::providers::{default_webhook_username, save, ProviderInput};
    use spicehub_core::db::providers::generate_webhook_password;
    match command {
        ProviderCommand::Add {
            name,
            tenant,
            client_id,
            organization,
            webhook_username,
            secret_expires,
            hub,
        } => {
            let secret = read_secret("Client secret value: ")?;
            let hub = open_hub(hub).await?;
            let password = generate_webhook_password();
            let input = ProviderInput {
                display_name: name,
                onboarding: "app_registration".into(),
                tenant_id: tenant,
                client_id,
                credential_kind: "client_secret".into(),
                client_secret: Some(secret),
                secret_expires,
                organization,
                webhook_username: webhook_username.unwrap_or_else(default_webhook_username),
                webhook_password: Some(password.clone()),
                ..ProviderInput::default()
            };
            let id = save(&hub, &input).await.map_err(admin_error)?.id;
            let provider = hub
                .db
                .provider(&id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("the provider vanished right after it was saved")?;
            println!("provider {} created ({id})", provider.display_name);
            println!("webhook user name: {}", provider.webhook_username);
            println!("webhook password (shown once, store it in the service hook): {password}");
            Ok(ExitCode::SUCCESS)
        }
        ProviderCommand::Check {
            provider,
            organization,
            hub,
        } => check_provider(&provider, organization.as_deref(), hub).await,
        ProviderCommand::Remove {
            provider,
            yes,
            json,
            hub,
        } => remove_provider(&provider, yes, json, hub).await,
        ProviderCommand::List { hub } => {
            use spicehub_core::admin::providers::primary_organization;
            let hub = open_hub(hub).await?;
            for p in hub.db.providers().await.map_err(|e| e.to_string())? {
                let organization = primary_organization(&hub.db, &p)
                    .await
                    .map_err(|e| e.to_string())?;
                println!(
                    "{}\t{}\ttenant {}\tclient {}\t{}\torganization {}",
                    p.id,
                    p.display_name,
                    p.tenant_id,
                    p.client_id,
                    p.credential_kind.as_str(),
                    if organization.is_empty() {
                        "-"
                    } else {
                        organization.as_str()
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn check_provider(
    provider: &str,
    organization: Option<&str>,
    hub: ServeArgs,
) -> Result<ExitCode, String> {
    use spicehub_core::admin::repositories::find_provider;
    let hub = open_hub(hub).await?;
    let id = find_provider(&hub.db, provider)
        .await
        .map_err(|e| e.to_string())?;
    let check = spicehub_core::admin::providers::test_connection(
        &hub.db,
        &hub.connections,
        &id,
        organization,
    )
    .await
    .map_err(|e| e.to_string())?;
    let organization = if check.organization.is_empty() {
        "(no organization saved)".to_owned()
    } else {
        check.organization.clone()
    };
    println!(
        "token: {}",
        if check.token_ok {
            "obtained"
        } else {
            "not obtained"
        }
    );
    println!("organization: {organization}");
    match &check.diagnosis {
        None => {
            println!(
                "OK: {} projects, {} repositories visible",
                check.projects, check.repositories
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(d) => {
            println!("FAILED: {}", d.title);
            println!("what to do: {}", d.hint);
            println!("code: {}", d.code);
            Ok(ExitCode::from(2))
        }
    }
}

async fn remove_provider(
    provider: &str,
    yes: bool,
    json: bool,
    hub: ServeArgs,
) -> Result<ExitCode, String> {
    use spicehub_core::admin::providers::{removal_plan, remove_provider};
    use spicehub_core::admin::repositories::find_provider;
    let hub = open_hub(hub).await?;
    let id = find_provider(&hub.db, provider)
        .await
        .map_err(|e| e.to_string())?;
    if !yes {
        let plan = removal_plan(&hub, &id).await.map_err(admin_error)?;
        // The question goes to standard error: standard output is the
        // caller's (JSON with --json).
        let what = format!(
            "{} repositories (with their files and graphs) and {} service hooks the hub created in Azure DevOps",
            plan.repositories.len(),
            plan.hooks
        );
        if !std::io::stdin().is_terminal() {
            return Err(format!(
                "deleting {} removes {what}: pass --yes to confirm",
                plan.display_name
            ));
        }
        eprint!("Delete provider {} with {what}? [y/N] ", plan.display_name);
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| format!("cannot read the answer: {e}"))?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            return Err("not deleted".into());
        }
    }
    let removed = remove_provider(&hub, &id).await.map_err(admin_error)?;
    if json {
        println!(
            "{}",
            serde_json::to_string(&removed).map_err(|e| e.to_string())?
        );
    } else {
        println!(
            "provider {} deleted ({}): {} repositories removed, {} service hooks deleted in Azure DevOps",
            removed.display_name,
            removed.id,
            removed.repositories_removed,
            removed.hooks_deleted
        );
        for left in &removed.hooks_left {
            println!(
                "service hook {} of {} is still in Azure DevOps ({}): delete it at {}",
                left.subscription_id, left.repository, left.reason, left.service_hooks_url
            );
        }
    }
    Ok(if removed.hooks_left.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

async fn repository_command(command: RepositoryCommand) -> Result<(), String> {
    use spicehub_core::admin::repositories::{
        add_repository, find_provider, request_sync, AddRepository,
    };
    use spicehub_core::sync::JobKind;
    match command {
        RepositoryCommand::Add {
            provider,
            organization,
            project,
            repository,
            branch,
            hub,
        } => {
            let hub = open_hub(hub).await?;
            let provider_id = find_provider(&hub.db, &provider)
                .await
                .map_err(|e| e.to_string())?;
            let repo = add_repository(
                &hub.db,
                &hub.connections,
                &hub.queue,
                &AddRepository {
                    provider_id: &provider_id,
                    organization: &organization,
                    project: &project,
                    repository: &repository,
                    branch: branch.as_deref(),
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            println!(
                "repository {}/{} added ({}), tracking {}; first replication queued",
                repo.project_name, repo.name, repo.id, repo.tracked_branch
            );
            Ok(())
        }
        RepositoryCommand::List { hub } => {
            let hub = open_hub(hub).await?;
            for r in hub.db.repositories().await.map_err(|e| e.to_string())? {
                println!(
                    "{}\t{}/{}\t{}\t{}\t{}",
                    r.id,
                    r.project_name,
                    r.name,
                    r.state.as_str(),
                    r.last_synced_commit.as_deref().unwrap_or("-"),
                    r.last_error.as_deref().unwrap_or("")
                );
            }
            Ok(())
        }
        RepositoryCommand::Sync {
            repository,
            kind,
            commit,
            hub,
        } => {
            let hub = open_hub(hub).await?;
            let kind = match kind.as_str() {
                "entire" => JobKind::EntireRepository,
                "from-commit" => JobKind::FromCommit,
                "reparse" => JobKind::Reparse,
                _ => JobKind::RecentChanges,
            };
            let job = request_sync(
                &hub.db,
                &hub.connections,
                &hub.queue,
                &repository,
                kind,
                commit.as_deref(),
            )
            .await
            .map_err(|e| e.to_string())?;
            println!("queued job {job}");
            Ok(())
        }
    }
}

async fn create_admin(email: &str, role: &str, database: &DatabaseArgs) -> Result<(), String> {
    let role = Role::parse(role).ok_or("role must be admin or viewer")?;
    if !email.contains('@') || email.trim().len() < 3 {
        return Err(format!("`{email}` is not an e-mail address"));
    }
    let password = read_password()?;
    let hash = spicehub_core::auth::password::hash(&password).map_err(|e| e.to_string())?;
    spicehub_core::config::ensure_dir(&database.data_dir).map_err(|e| e.to_string())?;
    let db = Db::connect(&database.url())
        .await
        .map_err(|e| e.to_string())?;
    db.migrate().await.map_err(|e| e.to_string())?;
    match db.create_user(email, &hash, role).await {
        Ok(user) => {
            println!("created {} ({})", user.email, user.role.as_str());
            Ok(())
        }
        Err(UserError::Exists) => Err(format!("a user {email} already exists")),
        Err(UserError::Db(e)) => Err(e.to_string()),
    }
}

fn read_password() -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("Repeat password: ").map_err(|e| e.to_string())?;
        if first != again {
            return Err("the passwords differ".into());
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
        let password = line.trim_end_matches(['\n', '\r']).to_owned();
        if password.is_empty() {
            return Err("no password on standard input".into());
        }
        Ok(password)
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_sessions=warn")
    });
    // Colour codes only for people: logs piped to files or collectors stay plain.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
