//! The command line: `serve` (default), `admin create`, `migrate`, `parse`,
//! `azure check`, `emulator`.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, DatabaseArgs, ServeArgs};
use crate::db::users::{Role, UserError};
use crate::db::Db;

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
        format: crate::parser::OutputFormat,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// Run the Entra ID + Azure DevOps emulator (tests and the local demo).
    Emulator(crate::emulator::EmulatorArgs),
    /// Azure DevOps connection tools.
    Azure {
        #[command(subcommand)]
        command: AzureCommand,
    },
}

#[derive(Subcommand, Debug)]
enum AzureCommand {
    /// Obtain a token as the service principal, read the organization and
    /// list what it can see, or say what is wrong and how to fix it.
    /// Exit 0 when all is well, 2 with a diagnosis, 1 on usage errors.
    Check(crate::azure::check::CheckArgs),
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
                crate::parser::run_parse_cli(&path, format, output.as_deref())
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
        }
        Some(Command::Azure {
            command: AzureCommand::Check(args),
        }) => {
            let code = crate::azure::check::run_check(args).await;
            return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
        }
        Some(Command::Migrate(database)) => {
            crate::config::ensure_dir(&database.data_dir).map_err(|e| e.to_string())?;
            let db = Db::connect(&database.url())
                .await
                .map_err(|e| e.to_string())?;
            db.migrate().await.map_err(|e| e.to_string())?;
            println!("database is up to date");
            Ok(())
        }
        Some(Command::Emulator(args)) => crate::emulator::run_cli(args)
            .await
            .map_err(|e| e.to_string()),
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

async fn create_admin(email: &str, role: &str, database: &DatabaseArgs) -> Result<(), String> {
    let role = Role::parse(role).ok_or("role must be admin or viewer")?;
    if !email.contains('@') || email.trim().len() < 3 {
        return Err(format!("`{email}` is not an e-mail address"));
    }
    let password = read_password()?;
    let hash = crate::auth::password::hash(&password).map_err(|e| e.to_string())?;
    crate::config::ensure_dir(&database.data_dir).map_err(|e| e.to_string())?;
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
        .with_ansi(std::io::stdout().is_terminal())
        .try_init();
}
