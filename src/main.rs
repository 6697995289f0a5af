//! The `spicehub` binary. Everything it does lives in the library behind the
//! `ssr` feature; this file only hands control to the command line.

fn main() -> std::process::ExitCode {
    spicehub::cli::main()
}
