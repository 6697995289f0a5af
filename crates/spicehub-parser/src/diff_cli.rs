//! `spicehub diff OLD NEW [--format text|json] [--output FILE]`: what changed
//! in the registries between two versions of a repository, each a local
//! checkout (parsed as `spicehub parse` does) or a file of `spicehub parse`
//! JSON. The caller maps the outcome to diff(1)'s exit codes.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::diff::{ChangeCounts, GraphDiff, RegistryDiff};
use crate::{from_json, parse_dir_with, Graph, ParseError, ParseOptions};

/// Largest `spicehub parse` JSON file read. An entry takes a few hundred
/// bytes of it, so this is room for about a million entries.
pub const MAX_GRAPH_JSON_SIZE: u64 = 256 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DiffFormat {
    /// One block per changed registry, for people.
    #[default]
    Text,
    /// One JSON document, for scripts.
    Json,
}

/// Whether some registry changed: diff(1)'s exit codes 0 and 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffOutcome {
    Unchanged,
    Changed,
}

impl DiffOutcome {
    /// 0 when no registry changed, 1 when some did (an error is 2).
    pub fn exit_code(self) -> u8 {
        match self {
            DiffOutcome::Unchanged => 0,
            DiffOutcome::Changed => 1,
        }
    }
}

/// Why `spicehub diff` could not compare (the main crate exits 2).
#[derive(Debug, thiserror::Error)]
pub enum DiffCliError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A directory that could not be parsed.
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(
        "{} is neither a directory nor `spicehub parse` JSON: it is larger than {limit} bytes",
        path.display()
    )]
    TooLarge { path: PathBuf, limit: u64 },
    #[error(
        "{} is neither a directory nor `spicehub parse` JSON: it is not UTF-8 text",
        path.display()
    )]
    NotUtf8 { path: PathBuf },
    #[error(
        "{} is neither a directory nor `spicehub parse` JSON: {source}",
        path.display()
    )]
    NotGraphJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    WriteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write to standard output: {0}")]
    Stdout(#[source] std::io::Error),
}

/// Compares `old` with `new` and writes the differences as text or JSON to
/// `output` (a file) or to standard output. Parse diagnostics are not
/// compared: only registries, entries and edges.
pub fn run_diff_cli(
    old: &Path,
    new: &Path,
    format: DiffFormat,
    output: Option<&Path>,
) -> Result<DiffOutcome, DiffCliError> {
    let interactive = std::io::stderr().is_terminal();
    let options = || {
        let mut options = ParseOptions::default();
        if interactive {
            options.progress = Some(crate::cli::progress_printer());
        }
        options
    };
    let old_graph = load_graph(old, &options())?;
    let new_graph = load_graph(new, &options())?;
    let diff = crate::diff::diff(&old_graph, &new_graph);
    let text = match format {
        DiffFormat::Text => diff.to_text(),
        DiffFormat::Json => diff_json(&old.to_string_lossy(), &new.to_string_lossy(), &diff),
    };
    match output {
        Some(file) => std::fs::write(file, text).map_err(|source| DiffCliError::WriteFile {
            path: file.to_owned(),
            source,
        })?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(DiffCliError::Stdout)?;
        }
    }
    Ok(if diff.is_empty() {
        DiffOutcome::Unchanged
    } else {
        DiffOutcome::Changed
    })
}

/// One side of a diff: a directory is parsed with `options`; anything else
/// is read as `spicehub parse` JSON, at most [`MAX_GRAPH_JSON_SIZE`] bytes.
pub fn load_graph(path: &Path, options: &ParseOptions) -> Result<Graph, DiffCliError> {
    let meta = std::fs::metadata(path).map_err(|source| DiffCliError::Read {
        path: path.to_owned(),
        source,
    })?;
    if meta.is_dir() {
        return Ok(parse_dir_with(path, options)?);
    }
    read_graph_json(path, MAX_GRAPH_JSON_SIZE)
}

fn read_graph_json(path: &Path, limit: u64) -> Result<Graph, DiffCliError> {
    let read_error = |source| DiffCliError::Read {
        path: path.to_owned(),
        source,
    };
    let too_large = || DiffCliError::TooLarge {
        path: path.to_owned(),
        limit,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    // The size is checked before reading, and the read is bounded anyway:
    // a pipe or device has no size, and a file may grow.
    let size = file.metadata().map_err(read_error)?.len();
    if size > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Err(too_large());
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| DiffCliError::NotUtf8 {
        path: path.to_owned(),
    })?;
    from_json(text).map_err(|source| DiffCliError::NotGraphJson {
        path: path.to_owned(),
        source,
    })
}

/// The JSON document of `spicehub diff --format json`.
#[derive(Serialize)]
struct DiffDocument<'a> {
    /// OLD and NEW as given on the command line.
    old: &'a str,
    new: &'a str,
    /// Whether some registry changed (the exit code says the same).
    changed: bool,
    registries: Vec<RegistryDocument<'a>>,
}

/// A [`RegistryDiff`] with its counts, for a caller that wants a summary.
#[derive(Serialize)]
struct RegistryDocument<'a> {
    #[serde(flatten)]
    diff: &'a RegistryDiff,
    counts: ChangeCounts,
}

/// `{"old", "new", "changed", "registries": [RegistryDiff + "counts"]}`,
/// pretty printed with a trailing newline. Registries are ordered by id and
/// their lists as in spec §6, so equal inputs give identical bytes.
pub fn diff_json(old: &str, new: &str, diff: &GraphDiff) -> String {
    let document = DiffDocument {
        old,
        new,
        changed: !diff.is_empty(),
        registries: diff
            .registries
            .iter()
            .map(|r| RegistryDocument {
                diff: r,
                counts: r.counts(),
            })
            .collect(),
    };
    // Serialising plain structs of strings and numbers cannot fail; fall
    // back to an empty document rather than panic if serde ever disagrees.
    let mut out = serde_json::to_string_pretty(&document).unwrap_or_else(|_| "{}".to_owned());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "from spice import Registry\nR = Registry('r')\n\
                       @R.register\ndef a(): pass\n";
    const NEW: &str = "from spice import Registry\nR = Registry('r')\n\
                       @R.register\ndef a(): pass\n@R.register\ndef b(a): pass\n";

    fn checkout(source: &str) -> Result<tempfile::TempDir, std::io::Error> {
        let repo = tempfile::tempdir()?;
        std::fs::write(repo.path().join("regs.py"), source)?;
        Ok(repo)
    }

    #[test]
    fn a_directory_and_its_parse_json_are_the_same_version(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let old = checkout(OLD)?;
        let new = checkout(NEW)?;
        let out = tempfile::tempdir()?;
        let json = out.path().join("old.json");
        crate::run_parse_cli(old.path(), crate::OutputFormat::Json, Some(&json))?;

        let text = out.path().join("same.txt");
        let same = run_diff_cli(&json, old.path(), DiffFormat::Text, Some(&text))?;
        assert_eq!(same, DiffOutcome::Unchanged);
        assert_eq!(same.exit_code(), 0);
        assert_eq!(std::fs::read_to_string(&text)?, "no registry changed\n");

        let doc_path = out.path().join("diff.json");
        let changed = run_diff_cli(&json, new.path(), DiffFormat::Json, Some(&doc_path))?;
        assert_eq!(changed, DiffOutcome::Changed);
        assert_eq!(changed.exit_code(), 1);
        let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&doc_path)?)?;
        assert_eq!(doc["changed"], true);
        assert_eq!(doc["old"], json.to_string_lossy().as_ref());
        let registry = &doc["registries"][0];
        assert_eq!(registry["registry"], "regs.R");
        assert_eq!(registry["status"], "changed");
        assert_eq!(registry["entries_added"][0]["name"], "b");
        assert_eq!(registry["edges_added"][0]["from"], "a");
        assert_eq!(registry["counts"]["entries_added"], 1);
        assert_eq!(registry["counts"]["edges_added"], 1);
        Ok(())
    }

    #[test]
    fn the_json_document_is_stable_when_nothing_changed() {
        assert_eq!(
            diff_json("a", "b", &GraphDiff::default()),
            "{\n  \"old\": \"a\",\n  \"new\": \"b\",\n  \"changed\": false,\n  \"registries\": []\n}\n"
        );
    }

    #[test]
    fn a_missing_path_is_named() {
        let missing = Path::new("/nonexistent/spicehub/old");
        let err = load_graph(missing, &ParseOptions::default()).err();
        assert!(matches!(err, Some(DiffCliError::Read { .. })), "{err:?}");
        let message = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.starts_with("cannot read /nonexistent/spicehub/old: "),
            "{message}"
        );
    }

    #[test]
    fn a_file_that_is_not_parse_json_is_named() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let cases: [(&str, &[u8]); 4] = [
            ("notes.txt", b"not json at all\n"),
            ("other.json", b"{\"name\": \"x\"}"),
            ("binary.bin", b"\xff\xfe\x00{"),
            ("empty.json", b""),
        ];
        for (name, content) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, content)?;
            let err = match load_graph(&path, &ParseOptions::default()) {
                Ok(graph) => panic!("{name} read as {graph:?}"),
                Err(err) => err,
            };
            assert!(
                matches!(
                    err,
                    DiffCliError::NotGraphJson { .. } | DiffCliError::NotUtf8 { .. }
                ),
                "{name}: {err:?}"
            );
            let message = err.to_string();
            assert!(
                message.starts_with(&format!(
                    "{} is neither a directory nor `spicehub parse` JSON",
                    path.display()
                )),
                "{message}"
            );
        }
        Ok(())
    }

    #[test]
    fn a_file_over_the_limit_is_not_read() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("big.json");
        std::fs::write(&path, crate::to_json(&Graph::default()))?;
        assert!(read_graph_json(&path, 1024).is_ok());
        let err = read_graph_json(&path, 10).err();
        assert!(
            matches!(err, Some(DiffCliError::TooLarge { limit: 10, .. })),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn an_unwritable_output_is_an_error() -> Result<(), Box<dyn std::error::Error>> {
        let repo = checkout(OLD)?;
        let result = run_diff_cli(
            repo.path(),
            repo.path(),
            DiffFormat::Json,
            Some(Path::new("/nonexistent/dir/out.json")),
        );
        assert!(matches!(result, Err(DiffCliError::WriteFile { .. })));
        Ok(())
    }
}
