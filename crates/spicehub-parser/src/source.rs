//! Where the files of a repository come from: a directory on disk, or files
//! held in memory (for example loaded from the hub's database).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Directory names whose whole subtree is third-party code installed into the
/// repository; parsing them would report other people's registries.
pub const VENDORED_DIRS: [&str; 3] = ["site-packages", ".venv", "node_modules"];

/// Directory names skipped without a diagnostic: they never hold the
/// repository's own Python sources.
pub const IGNORED_DIRS: [&str; 2] = [".git", "__pycache__"];

/// A set of files addressed by repository-relative, `/`-separated paths.
///
/// `Sync` because files are read from several threads at once.
pub trait SourceTree: Sync {
    /// Every file with its size in bytes. The order does not matter.
    fn paths(&self) -> Vec<(String, u64)>;

    /// The content of one file listed by [`SourceTree::paths`]; borrowed
    /// where the tree already holds it, so parsing copies nothing.
    fn read(&self, path: &str) -> io::Result<Cow<'_, [u8]>>;

    /// What the listing deliberately left out (vendored trees, entries that
    /// could not be read), so that the parser can report it.
    fn skipped(&self) -> Vec<SkippedPath> {
        Vec::new()
    }
}

/// A path a [`SourceTree`] did not list, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedPath {
    pub path: String,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// A `site-packages`, `.venv` or `node_modules` directory.
    Vendored,
    /// A symbolic link: following it could leave the repository or loop.
    Symlink,
    /// A name that is not valid UTF-8 cannot be given a repository path.
    NonUtf8Name,
    /// A directory or file whose metadata could not be read.
    Unreadable(String),
    /// Left out by whoever gathered the files, for the reason given (the sync
    /// engine: a Git LFS pointer, a file over the size limit).
    Noted(String),
}

/// True when a directory of this name is a vendored tree.
pub fn is_vendored_dir(name: &str) -> bool {
    VENDORED_DIRS.contains(&name)
}

/// Files held in memory.
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    files: BTreeMap<String, Vec<u8>>,
}

impl MemorySource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a file; `path` is repository-relative with `/` separators.
    pub fn insert(&mut self, path: impl Into<String>, content: impl Into<Vec<u8>>) {
        self.files.insert(path.into(), content.into());
    }

    pub fn with(mut self, path: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        self.insert(path, content);
        self
    }
}

impl<P: Into<String>, C: Into<Vec<u8>>> FromIterator<(P, C)> for MemorySource {
    fn from_iter<I: IntoIterator<Item = (P, C)>>(iter: I) -> Self {
        let mut source = MemorySource::new();
        for (path, content) in iter {
            source.insert(path, content);
        }
        source
    }
}

impl SourceTree for MemorySource {
    fn paths(&self) -> Vec<(String, u64)> {
        self.files
            .iter()
            .map(|(path, content)| (path.clone(), content.len() as u64))
            .collect()
    }

    fn read(&self, path: &str) -> io::Result<Cow<'_, [u8]>> {
        self.files
            .get(path)
            .map(|content| Cow::Borrowed(content.as_slice()))
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no file {path}")))
    }
}

/// A directory on disk. Listing walks it once, without following symbolic
/// links, and skips vendored trees and `.git`.
#[derive(Debug)]
pub struct DirSource {
    root: PathBuf,
    files: Vec<(String, u64)>,
    skipped: Vec<SkippedPath>,
}

impl DirSource {
    /// Walks `root`. Fails only when `root` itself cannot be listed; problems
    /// below it are recorded in [`SourceTree::skipped`].
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        let mut files = Vec::new();
        let mut skipped = Vec::new();
        // The root must be listable: that is the caller's error, not a diagnostic.
        let first = std::fs::read_dir(&root)?;
        // An explicit stack: directory depth is not bounded by anything we control.
        let mut pending: Vec<(String, std::fs::ReadDir)> = vec![(String::new(), first)];
        while let Some((prefix, entries)) = pending.pop() {
            for entry in entries {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(err) => {
                        skipped.push(SkippedPath {
                            path: prefix.trim_end_matches('/').to_owned(),
                            reason: SkipReason::Unreadable(err.to_string()),
                        });
                        continue;
                    }
                };
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    skipped.push(SkippedPath {
                        path: format!("{prefix}{}", entry.file_name().to_string_lossy()),
                        reason: SkipReason::NonUtf8Name,
                    });
                    continue;
                };
                let rel = format!("{prefix}{name}");
                let file_type = match entry.file_type() {
                    Ok(t) => t,
                    Err(err) => {
                        skipped.push(SkippedPath {
                            path: rel,
                            reason: SkipReason::Unreadable(err.to_string()),
                        });
                        continue;
                    }
                };
                if file_type.is_symlink() {
                    skipped.push(SkippedPath {
                        path: rel,
                        reason: SkipReason::Symlink,
                    });
                } else if file_type.is_dir() {
                    if IGNORED_DIRS.contains(&name.as_str()) {
                        continue;
                    }
                    if is_vendored_dir(&name) {
                        skipped.push(SkippedPath {
                            path: rel,
                            reason: SkipReason::Vendored,
                        });
                        continue;
                    }
                    match std::fs::read_dir(entry.path()) {
                        Ok(sub) => pending.push((format!("{rel}/"), sub)),
                        Err(err) => skipped.push(SkippedPath {
                            path: rel,
                            reason: SkipReason::Unreadable(err.to_string()),
                        }),
                    }
                } else if file_type.is_file() {
                    match entry.metadata() {
                        Ok(meta) => files.push((rel, meta.len())),
                        Err(err) => skipped.push(SkippedPath {
                            path: rel,
                            reason: SkipReason::Unreadable(err.to_string()),
                        }),
                    }
                }
            }
        }
        files.sort();
        skipped.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(DirSource {
            root,
            files,
            skipped,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl SourceTree for DirSource {
    fn paths(&self) -> Vec<(String, u64)> {
        self.files.clone()
    }

    fn read(&self, path: &str) -> io::Result<Cow<'_, [u8]>> {
        let rel = Path::new(path);
        // Paths are ours, but the trait is public: never read outside the root.
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a repository-relative path: {path}"),
            ));
        }
        let full = self.root.join(rel);
        let meta = std::fs::symlink_metadata(&full)?;
        if !meta.file_type().is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a regular file: {path}"),
            ));
        }
        std::fs::read(full).map(Cow::Owned)
    }

    fn skipped(&self) -> Vec<SkippedPath> {
        self.skipped.clone()
    }
}

/// The Python module name of a repository file (spec §6): without `.py`,
/// `/` as `.`, `__init__` dropped, a leading `src/` dropped.
/// Returns `None` for files that are not Python sources.
pub fn module_name(path: &str) -> Option<String> {
    let stem = path.strip_suffix(".py")?;
    let stem = stem.strip_prefix("src/").unwrap_or(stem);
    let mut parts: Vec<&str> = stem.split('/').collect();
    if parts.last() == Some(&"__init__") {
        parts.pop();
    }
    Some(parts.join("."))
}

/// True for `__init__.py` files, whose module is a package.
pub fn is_package_file(path: &str) -> bool {
    path == "__init__.py" || path.ends_with("/__init__.py")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_follow_spec_section_6() {
        assert_eq!(
            module_name("src/shop/orders.py").as_deref(),
            Some("shop.orders")
        );
        assert_eq!(module_name("shop/__init__.py").as_deref(), Some("shop"));
        assert_eq!(module_name("src/shop/__init__.py").as_deref(), Some("shop"));
        assert_eq!(module_name("setup.py").as_deref(), Some("setup"));
        assert_eq!(module_name("lib/src/x.py").as_deref(), Some("lib.src.x"));
        assert_eq!(module_name("README.md"), None);
        assert_eq!(module_name("__init__.py").as_deref(), Some(""));
    }

    #[test]
    fn memory_source_lists_and_reads() {
        let src = MemorySource::new()
            .with("a.py", "x = 1\n")
            .with("b/c.py", "");
        assert_eq!(
            src.paths(),
            vec![("a.py".to_owned(), 6), ("b/c.py".to_owned(), 0)]
        );
        assert_eq!(src.read("a.py").ok().as_deref(), Some(&b"x = 1\n"[..]));
        assert!(src.read("missing.py").is_err());
    }

    #[test]
    fn dir_source_skips_vendored_trees_and_git() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        for sub in [
            "pkg",
            ".git/objects",
            ".venv/lib",
            "env/lib/site-packages/x",
            "web/node_modules/y",
        ] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        std::fs::write(root.join("pkg/a.py"), "A = 1\n")?;
        std::fs::write(root.join(".git/objects/x.py"), "")?;
        std::fs::write(root.join(".venv/lib/v.py"), "")?;
        std::fs::write(root.join("env/lib/site-packages/x/s.py"), "")?;
        std::fs::write(root.join("web/node_modules/y/n.py"), "")?;
        let src = DirSource::new(root)?;
        assert_eq!(src.paths(), vec![("pkg/a.py".to_owned(), 6)]);
        let skipped: Vec<_> = src
            .skipped()
            .into_iter()
            .map(|s| (s.path, s.reason))
            .collect();
        assert_eq!(
            skipped,
            vec![
                (".venv".to_owned(), SkipReason::Vendored),
                ("env/lib/site-packages".to_owned(), SkipReason::Vendored),
                ("web/node_modules".to_owned(), SkipReason::Vendored),
            ]
        );
        assert!(src.read("../etc/passwd").is_err());
        assert!(src.read("/etc/passwd").is_err());
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn dir_source_does_not_follow_symlinks() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let outside = tempfile::tempdir()?;
        std::fs::write(outside.path().join("secret.py"), "S = 1\n")?;
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link"))?;
        let src = DirSource::new(dir.path())?;
        assert!(src.paths().is_empty());
        assert_eq!(src.skipped()[0].reason, SkipReason::Symlink);
        Ok(())
    }
}
