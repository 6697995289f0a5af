//! Which files of a repository the hub keeps, and how an archive of a
//! commit becomes snapshot rows. The hub keeps what the parser reads (Python
//! sources and the spice configuration) and a note for each path it left out
//! on purpose (vendored trees, symbolic links, Git LFS pointers, files over
//! the size limit), so a re-parse of the stored files gives the same graph
//! and the same diagnostics as the first parse.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Component, Path};

use crate::db::snapshots::{git_blob_id, FileRow};
use spicehub_parser::{is_vendored_dir, SkipReason, SkippedPath, SourceTree};

/// Notes stored in `repository_files.note`. The first two map back to the
/// parser's own skip reasons so diagnostics read as in `spicehub parse`.
pub const NOTE_VENDORED: &str = "vendored tree";
pub const NOTE_SYMLINK: &str = "symbolic link (not followed)";
pub const NOTE_LFS: &str =
    "Git LFS pointer (the file is stored in Git LFS and Azure DevOps did not resolve it)";
pub const NOTE_SUBMODULES: &str = "Git submodules are not replicated";

/// The first line of every Git LFS pointer (git-lfs `docs/spec.md`).
const LFS_VERSION_LINE: &str = "version https://git-lfs.github.com/spec/v1";
/// git-lfs reads nothing larger as a pointer.
const LFS_POINTER_MAX_BYTES: usize = 1024;

pub fn note_too_large(limit: u64) -> String {
    format!("larger than the {limit}-byte limit per file")
}

/// What to do with one path of a repository.
#[derive(Debug, PartialEq, Eq)]
pub enum Wanted<'a> {
    /// Not read by the parser: not stored.
    Ignore,
    /// Under a vendored tree: one note for the tree root.
    Vendored(&'a str),
    /// `.gitmodules`: the submodules' code is not in the archive.
    Submodules,
    /// Stored.
    Keep,
}

/// Decides for a repository-relative `/`-separated path.
pub fn wanted(path: &str) -> Wanted<'_> {
    let mut end = 0;
    let mut parts = path.split('/').peekable();
    while let Some(part) = parts.next() {
        let last = parts.peek().is_none();
        if !last {
            if spicehub_parser::IGNORED_DIRS.contains(&part) {
                return Wanted::Ignore;
            }
            if is_vendored_dir(part) {
                return Wanted::Vendored(&path[..end + part.len()]);
            }
        }
        end += part.len() + 1;
    }
    if path == ".gitmodules" {
        return Wanted::Submodules;
    }
    if path.ends_with(".py")
        || path == spicehub_parser::SPICE_TOML
        || path == spicehub_parser::PYPROJECT_TOML
    {
        Wanted::Keep
    } else {
        Wanted::Ignore
    }
}

/// True for a Git LFS pointer file (what Git stores instead of the
/// content), read as git-lfs reads one: under 1024 bytes, the version line
/// first, then `key value` lines among which `oid sha256:<64 hex digits>`
/// and `size <bytes>`. Anything less is not a pointer, only text that looks
/// like one (a Python file quoting the URL, a pointer cut short), and is
/// kept for the parser, which then says what is wrong with it.
pub fn is_lfs_pointer(content: &[u8]) -> bool {
    if content.len() >= LFS_POINTER_MAX_BYTES {
        return false;
    }
    let Ok(text) = std::str::from_utf8(content) else {
        return false;
    };
    // `lines` drops a `\r` before the `\n`, as git-lfs does (Go's
    // `bufio.ScanLines`): a pointer committed with CRLF is still one.
    let mut lines = text.lines();
    if lines.next() != Some(LFS_VERSION_LINE) {
        return false;
    }
    let (mut oid, mut size) = (false, false);
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((key, value)) = line.split_once(' ') else {
            return false;
        };
        let key_ok = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        if !key_ok {
            return false;
        }
        match key {
            "oid" => {
                oid = value.strip_prefix("sha256:").is_some_and(|hash| {
                    hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())
                });
            }
            "size" => {
                size = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
            }
            // Extensions (`ext-0-name sha256:...`) may come between them.
            _ => {}
        }
    }
    oid && size
}

/// A file ready to be staged: its row, and its content when kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    pub row: FileRow,
    pub content: Option<Vec<u8>>,
}

/// The row for a kept path and its content (or a note when the content is
/// an LFS pointer or too large).
pub fn stage_content(path: &str, content: Vec<u8>, max_file_bytes: u64) -> Staged {
    let size = i64::try_from(content.len()).unwrap_or(i64::MAX);
    if content.len() as u64 > max_file_bytes {
        return noted(path, size, note_too_large(max_file_bytes));
    }
    if is_lfs_pointer(&content) {
        return noted(path, size, NOTE_LFS.to_owned());
    }
    Staged {
        row: FileRow {
            path: path.to_owned(),
            object_id: Some(git_blob_id(&content)),
            size,
            note: None,
        },
        content: Some(content),
    }
}

pub fn noted(path: &str, size: i64, note: String) -> Staged {
    Staged {
        row: FileRow {
            path: path.to_owned(),
            object_id: None,
            size,
            note: Some(note),
        },
        content: None,
    }
}

/// Bounds on what a repository's snapshot may hold. A full sync enforces
/// them while it unpacks the archive, an incremental one while it applies
/// the diff (`engine`), with the same errors.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveLimits {
    /// Files in the tree, kept or not (directories do not count).
    pub max_entries: usize,
    pub max_file_bytes: u64,
    /// Bytes of kept files, all together.
    pub max_total_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Not a readable zip (cut short, corrupt): downloading again may help.
    #[error("the repository archive is damaged: {0}")]
    Corrupt(String),
    #[error("the repository has more than {limit} files (SPICEHUB_SYNC_MAX_ENTRIES)")]
    TooManyEntries { limit: usize },
    #[error(
        "the repository's Python files exceed {limit} bytes together (SPICEHUB_SYNC_MAX_TOTAL_BYTES)"
    )]
    TooLarge { limit: u64 },
    #[error("cannot read the repository archive: {0}")]
    Io(#[from] std::io::Error),
    /// The receiver of the staged files went away (the job was stopped).
    #[error("stopped")]
    Stopped,
}

impl ArchiveError {
    /// Whether downloading the archive again may help.
    pub fn retryable(&self) -> bool {
        matches!(self, ArchiveError::Corrupt(_) | ArchiveError::Io(_))
    }
}

/// What unpacking saw, for the sync note and the logs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UnpackStats {
    /// Files in the archive (directories do not count).
    pub entries: usize,
    pub kept: usize,
    pub noted: usize,
    pub kept_bytes: u64,
    /// Entries whose name would land outside the repository root.
    pub unsafe_paths: usize,
}

/// Reads a zip of a commit's tree and hands its kept files to `emit` in
/// batches of about `batch_bytes`, so memory stays bounded by one batch and
/// the largest file. Runs on a blocking thread.
pub fn unpack_zip(
    archive: &Path,
    limits: ArchiveLimits,
    batch_bytes: usize,
    entries: &std::sync::atomic::AtomicUsize,
    mut emit: impl FnMut(Vec<Staged>) -> Result<(), ArchiveError>,
) -> Result<UnpackStats, ArchiveError> {
    let file = std::fs::File::open(archive)?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
    // Files, as an incremental sync counts them from diffs (the central
    // directory is already read: this costs no I/O).
    let files = zip.file_names().filter(|n| !n.ends_with('/')).count();
    // Known before the first file is read: the progress can say "of N".
    entries.store(files, std::sync::atomic::Ordering::Relaxed);
    if files > limits.max_entries {
        return Err(ArchiveError::TooManyEntries {
            limit: limits.max_entries,
        });
    }
    let mut stats = UnpackStats {
        entries: files,
        ..UnpackStats::default()
    };
    let mut vendored: BTreeSet<String> = BTreeSet::new();
    let mut batch: Vec<Staged> = Vec::new();
    let mut batch_size = 0usize;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
        if entry.is_dir() {
            continue;
        }
        // Only names that stay inside the root; `..`, absolute paths and
        // drive prefixes are refused.
        let Some(path) = entry.enclosed_name().and_then(|p| repo_path(&p)) else {
            stats.unsafe_paths += 1;
            continue;
        };
        let declared = entry.size();
        let staged = match wanted(&path) {
            Wanted::Ignore => None,
            Wanted::Vendored(root) => vendored
                .insert(root.to_owned())
                .then(|| noted(root, 0, NOTE_VENDORED.to_owned())),
            Wanted::Submodules => Some(noted(&path, 0, NOTE_SUBMODULES.to_owned())),
            Wanted::Keep if entry.is_symlink() => Some(noted(
                &path,
                i64::try_from(declared).unwrap_or(i64::MAX),
                NOTE_SYMLINK.to_owned(),
            )),
            Wanted::Keep if declared > limits.max_file_bytes => Some(noted(
                &path,
                i64::try_from(declared).unwrap_or(i64::MAX),
                note_too_large(limits.max_file_bytes),
            )),
            Wanted::Keep => {
                // The declared size can lie: read at most one byte past the limit.
                let mut content = Vec::with_capacity(declared.min(1 << 20) as usize);
                (&mut entry)
                    .take(limits.max_file_bytes + 1)
                    .read_to_end(&mut content)
                    .map_err(|e| ArchiveError::Corrupt(format!("{path}: {e}")))?;
                Some(stage_content(&path, content, limits.max_file_bytes))
            }
        };
        let Some(staged) = staged else {
            continue;
        };
        match &staged.content {
            Some(c) => {
                stats.kept += 1;
                stats.kept_bytes += c.len() as u64;
                if stats.kept_bytes > limits.max_total_bytes {
                    return Err(ArchiveError::TooLarge {
                        limit: limits.max_total_bytes,
                    });
                }
                batch_size += c.len();
            }
            None => stats.noted += 1,
        }
        batch.push(staged);
        if batch_size >= batch_bytes || batch.len() >= 500 {
            emit(std::mem::take(&mut batch))?;
            batch_size = 0;
        }
    }
    if !batch.is_empty() {
        emit(batch)?;
    }
    Ok(stats)
}

/// `a/b.py` from an enclosed path; `None` for a name that is not UTF-8.
fn repo_path(p: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// A snapshot's files as the parser reads them: kept files by content,
/// noted paths as skipped paths. Contents are read on demand through
/// `read`, so memory stays bounded by the files being parsed at once.
pub struct SnapshotTree<F> {
    rows: Vec<FileRow>,
    read: F,
}

impl<F> SnapshotTree<F>
where
    F: Fn(&str) -> std::io::Result<Vec<u8>> + Sync,
{
    pub fn new(rows: Vec<FileRow>, read: F) -> Self {
        Self { rows, read }
    }
}

impl<F> SourceTree for SnapshotTree<F>
where
    F: Fn(&str) -> std::io::Result<Vec<u8>> + Sync,
{
    fn paths(&self) -> Vec<(String, u64)> {
        self.rows
            .iter()
            .filter(|r| r.note.is_none())
            .map(|r| (r.path.clone(), r.size.max(0) as u64))
            .collect()
    }

    fn read(&self, path: &str) -> std::io::Result<std::borrow::Cow<'_, [u8]>> {
        (self.read)(path).map(std::borrow::Cow::Owned)
    }

    fn skipped(&self) -> Vec<SkippedPath> {
        self.rows
            .iter()
            .filter_map(|r| {
                let note = r.note.as_deref()?;
                let reason = match note {
                    NOTE_VENDORED => SkipReason::Vendored,
                    NOTE_SYMLINK => SkipReason::Symlink,
                    other => SkipReason::Noted(other.to_owned()),
                };
                Some(SkippedPath {
                    path: r.path.clone(),
                    reason,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use zip::write::SimpleFileOptions;

    use super::*;

    /// A pointer as `git lfs track` writes it.
    const POINTER: &[u8] = b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n";

    fn limits() -> ArchiveLimits {
        ArchiveLimits {
            max_entries: 100,
            max_file_bytes: 1000,
            max_total_bytes: 10_000,
        }
    }

    fn write_zip(
        dir: &Path,
        build: impl FnOnce(&mut zip::ZipWriter<std::fs::File>),
    ) -> std::path::PathBuf {
        let path = dir.join("a.zip");
        let mut w = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        build(&mut w);
        w.finish().unwrap();
        path
    }

    fn unpack_all(
        path: &Path,
        limits: ArchiveLimits,
    ) -> Result<(Vec<Staged>, UnpackStats), ArchiveError> {
        let mut out = Vec::new();
        let stats = unpack_zip(path, limits, 64, &Default::default(), |b| {
            out.extend(b);
            Ok(())
        })?;
        Ok((out, stats))
    }

    #[test]
    fn the_entry_count_is_known_before_the_first_batch() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SimpleFileOptions::default();
        let zip = write_zip(dir.path(), |w| {
            w.add_directory("pkg/", opts).unwrap();
            for i in 0..5 {
                w.start_file(format!("pkg/m{i}.py"), opts).unwrap();
                w.write_all(b"A = 1\n").unwrap();
            }
        });
        let entries = std::sync::atomic::AtomicUsize::new(0);
        let mut seen_at_first_batch = None;
        unpack_zip(&zip, limits(), 1, &entries, |_| {
            seen_at_first_batch.get_or_insert(entries.load(std::sync::atomic::Ordering::Relaxed));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen_at_first_batch, Some(5), "files, not the directory");
    }

    #[test]
    fn keeps_python_and_config_and_notes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SimpleFileOptions::default();
        let zip = write_zip(dir.path(), |w| {
            w.add_directory("pkg/", opts).unwrap();
            w.start_file("pkg/a.py", opts).unwrap();
            w.write_all(b"A = 1\n").unwrap();
            w.start_file("README.md", opts).unwrap();
            w.write_all(b"# readme").unwrap();
            w.start_file("spice.toml", opts).unwrap();
            w.write_all(b"[registries]\n").unwrap();
            w.start_file(".venv/lib/x.py", opts).unwrap();
            w.write_all(b"X = 1").unwrap();
            w.start_file(".venv/lib/y.py", opts).unwrap();
            w.write_all(b"Y = 1").unwrap();
            w.start_file("big.py", opts).unwrap();
            w.write_all(&[b'#'; 1500]).unwrap();
            w.start_file("model.py", opts).unwrap();
            w.write_all(POINTER).unwrap();
            w.add_symlink("link.py", "pkg/a.py", opts).unwrap();
            w.start_file("__pycache__/a.py", opts).unwrap();
            w.write_all(b"cached").unwrap();
            w.start_file(".gitmodules", opts).unwrap();
            w.write_all(b"[submodule \"x\"]").unwrap();
            w.start_file("../escape.py", opts).unwrap();
            w.write_all(b"E = 1").unwrap();
        });
        let (files, stats) = unpack_all(&zip, limits()).unwrap();
        let by_path = |p: &str| files.iter().find(|f| f.row.path == p).cloned();
        let a = by_path("pkg/a.py").expect("kept");
        assert_eq!(a.content.as_deref(), Some(&b"A = 1\n"[..]));
        assert_eq!(
            a.row.object_id.as_deref(),
            Some(git_blob_id(b"A = 1\n").as_str())
        );
        assert!(by_path("spice.toml").unwrap().content.is_some());
        assert!(by_path("README.md").is_none());
        assert!(by_path("__pycache__/a.py").is_none());
        assert_eq!(
            by_path(".venv").unwrap().row.note.as_deref(),
            Some(NOTE_VENDORED)
        );
        assert!(by_path(".venv/lib/x.py").is_none());
        assert_eq!(
            by_path("big.py").unwrap().row.note,
            Some(note_too_large(1000))
        );
        assert_eq!(
            by_path("model.py").unwrap().row.note.as_deref(),
            Some(NOTE_LFS)
        );
        assert_eq!(
            by_path("link.py").unwrap().row.note.as_deref(),
            Some(NOTE_SYMLINK)
        );
        assert_eq!(
            by_path(".gitmodules").unwrap().row.note.as_deref(),
            Some(NOTE_SUBMODULES)
        );
        assert!(files.iter().all(|f| !f.row.path.contains("escape")));
        assert_eq!(stats.unsafe_paths, 1);
        assert_eq!(stats.kept, 2);
    }

    #[test]
    fn limits_and_damage_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SimpleFileOptions::default();
        let zip = write_zip(dir.path(), |w| {
            for i in 0..20 {
                w.start_file(format!("m{i}.py"), opts).unwrap();
                w.write_all(&[b'#'; 900]).unwrap();
            }
        });
        let few = ArchiveLimits {
            max_entries: 10,
            ..limits()
        };
        assert!(matches!(
            unpack_all(&zip, few),
            Err(ArchiveError::TooManyEntries { limit: 10 })
        ));
        assert!(matches!(
            unpack_all(&zip, limits()),
            Err(ArchiveError::TooLarge { limit: 10_000 })
        ));

        // A download cut in the middle has no central directory.
        let bytes = std::fs::read(&zip).unwrap();
        let cut = dir.path().join("cut.zip");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let err = unpack_all(&cut, limits()).unwrap_err();
        assert!(matches!(err, ArchiveError::Corrupt(_)), "{err}");
        assert!(err.retryable());
    }

    #[test]
    fn files_count_against_the_entry_limit_directories_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SimpleFileOptions::default();
        let zip = write_zip(dir.path(), |w| {
            for i in 0..10 {
                w.add_directory(format!("d{i}/"), opts).unwrap();
                w.start_file(format!("d{i}/README.md"), opts).unwrap();
                w.write_all(b"not kept, still a file").unwrap();
            }
        });
        let ten = ArchiveLimits {
            max_entries: 10,
            ..limits()
        };
        let (_, stats) = unpack_all(&zip, ten).unwrap();
        assert_eq!(stats.entries, 10);
        let nine = ArchiveLimits {
            max_entries: 9,
            ..limits()
        };
        assert!(matches!(
            unpack_all(&zip, nine),
            Err(ArchiveError::TooManyEntries { limit: 9 })
        ));
    }

    #[test]
    fn lfs_pointers_are_recognised_as_git_lfs_reads_them() {
        assert!(is_lfs_pointer(POINTER));
        let crlf = String::from_utf8_lossy(POINTER).replace('\n', "\r\n");
        assert!(is_lfs_pointer(crlf.as_bytes()));
        let with_extension = b"version https://git-lfs.github.com/spec/v1\next-0-foo sha256:0000000000000000000000000000000000000000000000000000000000000000\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 0\n";
        assert!(is_lfs_pointer(with_extension));
    }

    #[test]
    fn text_that_only_looks_like_an_lfs_pointer_is_kept() {
        // Python that talks about pointers, even starting with the version line.
        let mentions = b"# Reads pointers: version https://git-lfs.github.com/spec/v1\nSPEC = 'version https://git-lfs.github.com/spec/v1'\n";
        assert!(!is_lfs_pointer(mentions));
        let starts_with_it = b"version https://git-lfs.github.com/spec/v1\nimport os\n";
        assert!(!is_lfs_pointer(starts_with_it));
        // Cut short: no size line, or the hash cut in the middle.
        let cut = POINTER.len() - b"size 12345\n".len();
        assert!(!is_lfs_pointer(&POINTER[..cut]));
        assert!(!is_lfs_pointer(&POINTER[..60]));
        assert!(!is_lfs_pointer(
            b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 12\n"
        ));
        // Another spec version, and a pointer padded past git-lfs' limit.
        let v2 = String::from_utf8_lossy(POINTER).replace("spec/v1", "spec/v2");
        assert!(!is_lfs_pointer(v2.as_bytes()));
        let mut padded = POINTER.to_vec();
        padded.resize(1023, b'\n');
        assert!(is_lfs_pointer(&padded));
        padded.push(b'\n');
        assert!(!is_lfs_pointer(&padded));
    }

    #[test]
    fn an_lfs_pointer_is_staged_as_a_note_and_anything_else_as_content() {
        let pointer = stage_content("assets/model.py", POINTER.to_vec(), 1000);
        assert_eq!(pointer.content, None);
        assert_eq!(pointer.row.note.as_deref(), Some(NOTE_LFS));
        assert_eq!(pointer.row.size, POINTER.len() as i64);
        let cut = stage_content("assets/model.py", POINTER[..60].to_vec(), 1000);
        assert_eq!(cut.content.as_deref(), Some(&POINTER[..60]));
        assert_eq!(cut.row.note, None);
    }

    #[test]
    fn paths_are_classified() {
        assert_eq!(wanted("a/b.py"), Wanted::Keep);
        assert_eq!(wanted("pyproject.toml"), Wanted::Keep);
        assert_eq!(wanted("sub/pyproject.toml"), Wanted::Ignore);
        assert_eq!(
            wanted("x/site-packages/y/z.py"),
            Wanted::Vendored("x/site-packages")
        );
        assert_eq!(
            wanted("node_modules/a.js"),
            Wanted::Vendored("node_modules")
        );
        assert_eq!(wanted(".git/config"), Wanted::Ignore);
        assert_eq!(wanted("venv.py"), Wanted::Keep);
        assert_eq!(wanted(".gitmodules"), Wanted::Submodules);
    }
}
