//! Static parser for spice registries (`shared/spec/registries.md`).
//!
//! Pure: no database, no network, and user code is never imported or run.
//! A repository is parsed in two phases:
//! 1. per file, in parallel ([`extract`]): parse with Ruff, keep the facts the
//!    rules need, drop the syntax tree;
//! 2. per repository ([`resolve`]): resolve names across files and build the
//!    [`Graph`].

mod cli;
mod config;
pub mod diff;
mod diff_cli;
mod extract;
mod model;
mod nesting;
mod output;
mod resolve;
mod ruff;
mod source;
mod syntax;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rayon::prelude::*;

pub use cli::{run_parse_cli, OutputFormat, ParseCliError};
pub use config::{Config, DecoratorRegistry, PYPROJECT_TOML, SPICE_TOML};
pub use diff_cli::{
    diff_json, load_graph, run_diff_cli, DiffCliError, DiffFormat, DiffOutcome, MAX_GRAPH_JSON_SIZE,
};
pub use model::{Diagnostic, Edge, EdgeKind, Entry, EntryKind, Graph, Registry, Severity};
pub use output::{from_json, to_dot, to_json};
pub use source::{
    is_vendored_dir, module_name, DirSource, MemorySource, SkipReason, SkippedPath, SourceTree,
    IGNORED_DIRS, VENDORED_DIRS,
};

/// Default per-file size limit: generated Python can be huge, and a file
/// bigger than this is data rather than a place where registries are declared.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 2 * 1024 * 1024;

/// Deepest nesting parsed in a file; a deeper file is skipped with a
/// diagnostic before Ruff's parser sees it.
///
/// With the size limit this is the parser's budget per file:
/// - **Depth**: one linear pre-scan (`nesting`) counts what makes Ruff's
///   recursive-descent parser recurse: open brackets (f-string replacement
///   fields among them), open f/t-strings, indented blocks, and pending
///   operators (unary `-` `+` `~` `not` `await`, `*`, `lambda`, `yield`,
///   `:=`, `**` chains, rising operator precedences, `else` branches). Ruff
///   takes about 2 KiB of stack per level in a release build (up to 6 KiB in
///   a debug build), so 256 levels need at most about 0.5 MiB (1.5 MiB): the
///   whole parse stays within the 2 MiB stack of the parser's threads (rayon
///   workers, tokio blocking threads), including the recursion Ruff does not
///   move to the heap. The walks over Ruff's tree are iterative and the
///   tree is torn down iteratively (`ruff`), so they add nothing deep.
///   Python itself refuses more than 200 nested brackets or 100 indented
///   blocks; the deepest of 50,000 real files counts 52.
/// - **Size**: [`ParseOptions::max_file_size`] (by default
///   [`DEFAULT_MAX_FILE_SIZE`], 2 MiB), checked before a file is read.
/// - **Time and memory**: with the depth bounded, the scan, Ruff's lexer and
///   parser, and the per-file digest are linear in the file's size, and one
///   file is held at a time per thread. Ruff's tree is the largest thing
///   held: under 100 bytes per byte of source (a 2 MiB file of `1+1+...`
///   peaks at 155 MiB), typically a tenth of that, dropped before the next
///   file. Time is that of Ruff's parse, about 100 MB/s on real code and
///   0.3 s for the worst 2 MiB file found, in a release build; the scan
///   adds about a seventh.
pub const MAX_NESTING_DEPTH: u32 = 256;

/// Called with `(files done, files to parse)`, from any of the worker threads.
pub type ProgressFn = dyn Fn(usize, usize) + Send + Sync;

#[derive(Clone)]
pub struct ParseOptions {
    /// Files larger than this many bytes are skipped with a diagnostic.
    pub max_file_size: u64,
    pub progress: Option<Arc<ProgressFn>>,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            progress: None,
        }
    }
}

impl fmt::Debug for ParseOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParseOptions")
            .field("max_file_size", &self.max_file_size)
            .field("progress", &self.progress.as_ref().map(|_| "<callback>"))
            .finish()
    }
}

/// The only failure of a parse: the root itself cannot be read. Everything
/// below the root becomes a [`Diagnostic`] instead.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("cannot read {}: {source}", path.display())]
    UnreadableRoot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a directory", path.display())]
    NotADirectory { path: PathBuf },
}

/// Parses a directory on disk with the default options.
pub fn parse_dir(path: &Path) -> Result<Graph, ParseError> {
    parse_dir_with(path, &ParseOptions::default())
}

/// Parses a directory on disk.
pub fn parse_dir_with(path: &Path, options: &ParseOptions) -> Result<Graph, ParseError> {
    let unreadable = |source| ParseError::UnreadableRoot {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if !meta.is_dir() {
        return Err(ParseError::NotADirectory {
            path: path.to_owned(),
        });
    }
    let source = DirSource::new(path).map_err(unreadable)?;
    Ok(parse_tree(&source, options))
}

/// Parses ruff's syntax only and returns the number of syntax errors; for
/// measuring the parser on its own (see `benches/parser.rs`).
pub fn syntax_error_count(source: &str) -> usize {
    ruff::parse_only(source)
}

/// The per-file phase of one file: the facts the repository phase needs,
/// made ahead of the parse by a caller that already holds the content (the
/// sync engine, while it unpacks an archive, so that parsing overlaps the
/// download), or kept from an earlier parse of the same content (an
/// incremental sync extracts only the files a push changed). Cloning shares
/// the facts.
#[derive(Clone)]
pub struct PreparedFile(Arc<extract::FileFacts>);

impl fmt::Debug for PreparedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PreparedFile").field(&self.0.path).finish()
    }
}

/// Stored facts that cannot be read back (damaged, or written by another
/// build whose [`facts_version`] is the same by accident).
#[derive(Debug, thiserror::Error)]
#[error("stored parser facts cannot be read: {0}")]
pub struct FactsDecodeError(#[from] postcard::Error);

impl PreparedFile {
    /// The path the facts were made for; facts describe one path's
    /// content (the module name comes from the path).
    pub fn path(&self) -> &str {
        &self.0.path
    }

    /// A compact encoding for storage, read back by [`PreparedFile::from_bytes`]
    /// by a parser of the same [`facts_version`].
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain structs into a vector cannot fail; an empty
        // vector would only make the next parse extract the file again.
        postcard::to_stdvec(&*self.0).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<PreparedFile, FactsDecodeError> {
        Ok(PreparedFile(Arc::new(postcard::from_bytes(bytes)?)))
    }
}

/// Runs the per-file phase on content the caller read. Any path may be
/// prepared: the parse uses it only if the repository's configuration
/// selects the file.
pub fn prepare_file(path: &str, content: &[u8], options: &ParseOptions) -> PreparedFile {
    PreparedFile(Arc::new(extract::extract_bytes(
        path,
        content,
        file_limits(options),
    )))
}

/// Names what stored facts depend on besides a file's path and content:
/// the per-file phase's code (its sources, hashed at build time, so any
/// change to the parser makes earlier facts unusable rather than stale) and
/// the per-file limits. A caller keeps facts under this and reuses only
/// those stored under the same value.
pub fn facts_version(options: &ParseOptions) -> String {
    format!(
        "{:016x}-{}-{}",
        facts_code_hash(),
        options.max_file_size,
        MAX_NESTING_DEPTH
    )
}

/// FNV-1a over the parser's own sources and the pinned Ruff version: what
/// decides the facts a file gives.
fn facts_code_hash() -> u64 {
    static HASH: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *HASH.get_or_init(|| {
        const SOURCES: [&str; 9] = [
            env!("CARGO_PKG_VERSION"),
            include_str!("extract.rs"),
            include_str!("syntax.rs"),
            include_str!("ruff.rs"),
            include_str!("nesting.rs"),
            include_str!("source.rs"),
            include_str!("model.rs"),
            include_str!("lib.rs"),
            // The Ruff crates are pinned there (`=x.y.z`).
            include_str!("../../../Cargo.toml"),
        ];
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for source in SOURCES {
            for &b in source.as_bytes().iter().chain(&[0xff]) {
                hash ^= u64::from(b);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        hash
    })
}

/// Parses every Python file of a tree and returns its sorted graph.
pub fn parse_tree(tree: &dyn SourceTree, options: &ParseOptions) -> Graph {
    parse_tree_prepared(tree, options, HashMap::new())
}

/// [`parse_tree`], taking the per-file phase of the files in `prepared` as
/// done (keyed by path; they must hold the tree's current content). The
/// result is the same as [`parse_tree`]'s.
pub fn parse_tree_prepared(
    tree: &dyn SourceTree,
    options: &ParseOptions,
    prepared: HashMap<String, PreparedFile>,
) -> Graph {
    let parsed = parse_tree_keeping(tree, options, prepared);
    // Thousands of small allocations: freed on all the parser's threads.
    parsed.facts.into_par_iter().for_each(drop);
    parsed.graph
}

/// A parse, with the facts of every file it parsed, to be kept for the
/// next parse of the same contents.
pub struct Parsed {
    pub graph: Graph,
    /// Every file the configuration selected, by path, with its facts;
    /// `true` when the facts were made by this parse rather than given.
    pub facts: Vec<(PreparedFile, bool)>,
}

/// [`parse_tree_prepared`], handing back every file's facts.
pub fn parse_tree_keeping(
    tree: &dyn SourceTree,
    options: &ParseOptions,
    mut prepared: HashMap<String, PreparedFile>,
) -> Parsed {
    let mut diagnostics = Vec::new();
    let listed: BTreeMap<String, u64> = tree.paths().into_iter().collect();

    for skipped in tree.skipped() {
        diagnostics.push(skipped_diagnostic(skipped));
    }

    let (config, config_diagnostics) = config::load(|file| {
        listed
            .contains_key(file)
            .then(|| tree.read(file).map(|c| c.into_owned()))
    });
    diagnostics.extend(config_diagnostics);

    // Sources other than `DirSource` may list vendored files: one diagnostic per tree.
    let mut vendored = BTreeSet::new();
    let mut files: Vec<(&str, u64, Option<PreparedFile>)> = Vec::new();
    for (path, &size) in &listed {
        if let Some(root) = vendored_root(path) {
            vendored.insert(root.to_owned());
            continue;
        }
        if path
            .split('/')
            .any(|part| source::IGNORED_DIRS.contains(&part))
        {
            continue;
        }
        if path.ends_with(".py") && config.selects(path) {
            // Facts made for another path describe another module.
            let given = prepared.remove(path.as_str()).filter(|p| p.path() == path);
            files.push((path, size, given));
        }
    }
    for root in vendored {
        diagnostics.push(skipped_diagnostic(SkippedPath {
            path: root,
            reason: SkipReason::Vendored,
        }));
    }

    let limits = file_limits(options);
    let total = files.len();
    let done = AtomicUsize::new(0);
    // Indexed parallel iteration keeps the file order, so the result does not
    // depend on thread scheduling.
    let facts: Vec<(PreparedFile, bool)> = files
        .into_par_iter()
        .map(|(path, size, prepared)| {
            let facts = match prepared {
                Some(given) => (given, false),
                None => (
                    PreparedFile(Arc::new(extract::extract_file(tree, path, size, limits))),
                    true,
                ),
            };
            if let Some(progress) = &options.progress {
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            }
            facts
        })
        .collect();

    let refs: Vec<&extract::FileFacts> = facts.iter().map(|(f, _)| &*f.0).collect();
    let mut graph = resolve::resolve(&refs, &config);
    graph.diagnostics.extend(diagnostics);
    graph.sort();
    Parsed { graph, facts }
}

fn file_limits(options: &ParseOptions) -> extract::FileLimits {
    extract::FileLimits {
        max_file_size: options.max_file_size,
        max_nesting: MAX_NESTING_DEPTH,
    }
}

/// `a/.venv/lib/x.py` → `a/.venv`.
fn vendored_root(path: &str) -> Option<&str> {
    let mut end = 0;
    let mut parts = path.split('/').peekable();
    while let Some(part) = parts.next() {
        end += part.len();
        // The last component is the file name, not a directory.
        if parts.peek().is_some() && is_vendored_dir(part) {
            return Some(&path[..end]);
        }
        end += 1;
    }
    None
}

fn skipped_diagnostic(skipped: SkippedPath) -> Diagnostic {
    let (severity, message) = match skipped.reason {
        SkipReason::Vendored => (Severity::Info, "skipped: vendored tree".to_owned()),
        SkipReason::Symlink => (
            Severity::Info,
            "skipped: symbolic link (not followed)".to_owned(),
        ),
        SkipReason::NonUtf8Name => (
            Severity::Warning,
            "skipped: file name is not valid UTF-8".to_owned(),
        ),
        SkipReason::Unreadable(err) => (Severity::Warning, format!("skipped: cannot read: {err}")),
        SkipReason::Noted(why) => (Severity::Warning, format!("skipped: {why}")),
    };
    Diagnostic::new(skipped.path, 0, severity, message)
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
