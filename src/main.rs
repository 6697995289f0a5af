//! The `spicehub` binary: hands control to the command line.

/// Parsing allocates and frees millions of small syntax nodes across the
/// parser's threads; glibc's malloc was a fifth of the parse profile and
/// scales worse across cores (`benches/parser.rs` measures both).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    spicehub::cli::main()
}
