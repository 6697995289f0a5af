//! `spicehub parse PATH --format json|dot [--output FILE]`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::{output, parse_dir_with, ParseError, ParseOptions};

/// Below this many files a parse is over before a progress line helps.
const LARGE_TREE_FILES: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    #[default]
    Json,
    Dot,
}

#[derive(Debug, thiserror::Error)]
pub enum ParseCliError {
    /// The PATH could not be read (the main crate maps this to exit code 1).
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("cannot write {}: {source}", path.display())]
    WriteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write to standard output: {0}")]
    Stdout(#[source] std::io::Error),
}

/// Parses `path` and writes the graph as JSON or DOT to `output` (a file) or
/// to standard output. Diagnostics are part of the document, so a repository
/// with problems is still a success.
pub fn run_parse_cli(
    path: &Path,
    format: OutputFormat,
    output: Option<&Path>,
) -> Result<(), ParseCliError> {
    let mut options = ParseOptions::default();
    let interactive = std::io::stderr().is_terminal();
    if interactive {
        options.progress = Some(progress_printer());
    }
    let graph = parse_dir_with(path, &options)?;
    let text = match format {
        OutputFormat::Json => output::to_json(&graph),
        OutputFormat::Dot => output::to_dot(&graph),
    };
    match output {
        Some(file) => std::fs::write(file, text).map_err(|source| ParseCliError::WriteFile {
            path: file.to_owned(),
            source,
        }),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(ParseCliError::Stdout)
        }
    }
}

/// A `\r`-rewritten progress line, only for large trees, at most once per percent.
pub(crate) fn progress_printer() -> Arc<crate::ProgressFn> {
    let last_percent = AtomicUsize::new(usize::MAX);
    Arc::new(move |done: usize, total: usize| {
        if total < LARGE_TREE_FILES {
            return;
        }
        let percent = done * 100 / total;
        if last_percent.swap(percent, Ordering::Relaxed) == percent {
            return;
        }
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\rparsing: {done}/{total} files ({percent}%)");
        if done == total {
            let _ = writeln!(stderr);
        }
        let _ = stderr.flush();
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_json_and_dot_files() -> Result<(), Box<dyn std::error::Error>> {
        let repo = tempfile::tempdir()?;
        std::fs::write(
            repo.path().join("regs.py"),
            "from spice import Registry\nR = Registry('r')\n@R.register\ndef a(): pass\n",
        )?;
        let out = tempfile::tempdir()?;
        let json_path = out.path().join("g.json");
        run_parse_cli(repo.path(), OutputFormat::Json, Some(&json_path))?;
        let graph = crate::from_json(&std::fs::read_to_string(&json_path)?)?;
        assert_eq!(graph.entries.len(), 1);
        let dot_path = out.path().join("g.dot");
        run_parse_cli(repo.path(), OutputFormat::Dot, Some(&dot_path))?;
        assert!(std::fs::read_to_string(&dot_path)?.contains("cluster_regs.R"));
        Ok(())
    }

    #[test]
    fn unreadable_path_is_an_error() {
        let result = run_parse_cli(
            Path::new("/nonexistent/spicehub/path"),
            OutputFormat::Json,
            None,
        );
        assert!(matches!(
            result,
            Err(ParseCliError::Parse(ParseError::UnreadableRoot { .. }))
        ));
    }

    #[test]
    fn unwritable_output_is_an_error() -> Result<(), Box<dyn std::error::Error>> {
        let repo = tempfile::tempdir()?;
        let result = run_parse_cli(
            repo.path(),
            OutputFormat::Json,
            Some(Path::new("/nonexistent/dir/out.json")),
        );
        assert!(matches!(result, Err(ParseCliError::WriteFile { .. })));
        Ok(())
    }
}
