//! `ado-emulator`: the Entra ID + Azure DevOps emulator as a process, for
//! the local demo (`scripts/run`), the browser tests and the benches. Logs
//! go to standard error.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "ado-emulator",
    version,
    about = "Entra ID + Azure DevOps emulator (tests and the local demo; never in production)"
)]
struct Cli {
    #[command(flatten)]
    args: ado_emulator::EmulatorArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ado-emulator: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(ado_emulator::run_cli(cli.args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ado-emulator: {error}");
            ExitCode::FAILURE
        }
    }
}
