//! Real Git repositories through the `git` command line (bare repositories, plumbing commands only).
//! Every function here blocks: call them from `tokio::task::spawn_blocking` (see [`blocking`]).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use time::OffsetDateTime;
use uuid::Uuid;

use crate::config::{FileChange, Signature};
use crate::EmulatorError;

/// 40 zeros: "no object" in ref updates.
pub const ZERO_ID: &str = "0000000000000000000000000000000000000000";

/// Runs blocking Git work off the async runtime.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, EmulatorError>
where
    F: FnOnce() -> Result<T, EmulatorError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await?
}

fn base_command() -> Command {
    let mut c = Command::new("git");
    c.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        // Paths from requests are never pathspec magic (`:(glob)`, `:!x`, ...).
        .env("GIT_LITERAL_PATHSPECS", "1")
        .env("LC_ALL", "C")
        .args([
            "-c",
            "core.quotepath=off",
            "-c",
            "gc.auto=0",
            "-c",
            "core.autocrlf=false",
        ]);
    c
}

fn command(dir: &Path) -> Command {
    let mut c = base_command();
    c.arg("--git-dir").arg(dir);
    c
}

struct Output {
    ok: bool,
    stdout: Vec<u8>,
    stderr: String,
}

fn exec(mut cmd: Command, args: &[&str], stdin: Option<&[u8]>) -> Result<Output, EmulatorError> {
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    if let Some(input) = stdin {
        if let Some(mut pipe) = child.stdin.take() {
            pipe.write_all(input)?;
        }
    }
    let out = child.wait_with_output()?;
    Ok(Output {
        ok: out.status.success(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Runs `git --git-dir DIR args...`; a non-zero exit is an error.
fn run(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>, EmulatorError> {
    let out = exec(command(dir), args, stdin)?;
    if out.ok {
        Ok(out.stdout)
    } else {
        Err(EmulatorError::Git {
            args: args.join(" "),
            stderr: out.stderr.trim().to_string(),
        })
    }
}

/// Like [`run`] but a non-zero exit is `None`.
fn run_opt(dir: &Path, args: &[&str]) -> Result<Option<Vec<u8>>, EmulatorError> {
    let out = exec(command(dir), args, None)?;
    Ok(if out.ok { Some(out.stdout) } else { None })
}

fn text(b: Vec<u8>) -> String {
    String::from_utf8_lossy(&b).into_owned()
}

/// Whether a bare repository exists at `dir`.
pub fn exists(dir: &Path) -> bool {
    dir.join("HEAD").is_file() && dir.join("objects").is_dir()
}

/// `git init --bare`.
pub fn init_bare(dir: &Path, initial_branch: &str) -> Result<(), EmulatorError> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let dir_s = dir.to_string_lossy().into_owned();
    let branch_arg = format!("--initial-branch={initial_branch}");
    let out = exec(
        base_command(),
        &["init", "--bare", "--quiet", &branch_arg, &dir_s],
        None,
    )?;
    if !out.ok {
        return Err(EmulatorError::Git {
            args: "init --bare".into(),
            stderr: out.stderr,
        });
    }
    Ok(())
}

/// `git clone --bare --mirror`-like copy of an existing repository.
pub fn clone_bare(src: &Path, dst: &Path) -> Result<(), EmulatorError> {
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let s = src.to_string_lossy().into_owned();
    let d = dst.to_string_lossy().into_owned();
    let out = exec(
        base_command(),
        &["clone", "--bare", "--quiet", "--no-local", &s, &d],
        None,
    )?;
    if !out.ok {
        return Err(EmulatorError::Git {
            args: format!("clone --bare {s}"),
            stderr: out.stderr,
        });
    }
    Ok(())
}

/// `git rev-parse --verify --quiet REV` (full id) or `None`.
pub fn rev_parse(dir: &Path, rev: &str) -> Result<Option<String>, EmulatorError> {
    if !exists(dir) || rev.starts_with('-') {
        return Ok(None);
    }
    Ok(run_opt(
        dir,
        &["rev-parse", "--verify", "--quiet", "--end-of-options", rev],
    )?
    .map(|o| text(o).trim().to_string())
    .filter(|s| s.len() == 40))
}

/// Type of an object (`blob`, `tree`, `commit`, `tag`) or `None`.
pub fn object_type(dir: &Path, id: &str) -> Result<Option<String>, EmulatorError> {
    if !exists(dir) || !is_hex(id) {
        return Ok(None);
    }
    Ok(run_opt(dir, &["cat-file", "-t", id])?.map(|o| text(o).trim().to_string()))
}

pub fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A ref and what it points to.
#[derive(Clone, Debug)]
pub struct GitRef {
    pub name: String,
    pub object_id: String,
    /// For annotated tags: the object the tag points to.
    pub peeled: Option<String>,
}

/// All branches and tags, sorted by name.
pub fn refs(dir: &Path) -> Result<Vec<GitRef>, EmulatorError> {
    if !exists(dir) {
        return Ok(Vec::new());
    }
    let out = run(
        dir,
        &[
            "for-each-ref",
            "--format=%(refname)%00%(objectname)%00%(*objectname)",
            "refs/heads",
            "refs/tags",
        ],
        None,
    )?;
    let mut v: Vec<GitRef> = text(out)
        .lines()
        .filter_map(|l| {
            let mut p = l.split('\0');
            let name = p.next()?.to_string();
            let object_id = p.next()?.to_string();
            let peeled = p.next().filter(|s| !s.is_empty()).map(str::to_string);
            Some(GitRef {
                name,
                object_id,
                peeled,
            })
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(v)
}

/// A person line of a commit.
#[derive(Clone, Debug)]
pub struct Person {
    pub name: String,
    pub email: String,
    pub time: OffsetDateTime,
}

/// A commit's metadata.
#[derive(Clone, Debug)]
pub struct CommitInfo {
    pub id: String,
    pub tree: String,
    pub parents: Vec<String>,
    pub author: Person,
    pub committer: Person,
    pub message: String,
}

const LOG_FORMAT: &str =
    "--format=%H%x1f%T%x1f%P%x1f%an%x1f%ae%x1f%at%x1f%cn%x1f%ce%x1f%ct%x1f%B%x1e";

fn parse_log(out: Vec<u8>) -> Vec<CommitInfo> {
    text(out)
        .split('\x1e')
        .filter_map(|rec| {
            let rec = rec.trim_start_matches('\n');
            if rec.is_empty() {
                return None;
            }
            let f: Vec<&str> = rec.splitn(10, '\x1f').collect();
            if f.len() < 10 {
                return None;
            }
            let t = |s: &str| {
                s.parse::<i64>()
                    .ok()
                    .and_then(|x| OffsetDateTime::from_unix_timestamp(x).ok())
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            };
            Some(CommitInfo {
                id: f[0].to_string(),
                tree: f[1].to_string(),
                parents: f[2].split_whitespace().map(str::to_string).collect(),
                author: Person {
                    name: f[3].to_string(),
                    email: f[4].to_string(),
                    time: t(f[5]),
                },
                committer: Person {
                    name: f[6].to_string(),
                    email: f[7].to_string(),
                    time: t(f[8]),
                },
                message: f[9].to_string(),
            })
        })
        .collect()
}

/// Metadata of the given commits (in the given order); unknown ids are skipped.
pub fn commits(dir: &Path, ids: &[String]) -> Result<Vec<CommitInfo>, EmulatorError> {
    if ids.is_empty() || !exists(dir) {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for id in ids {
        if !is_hex(id) {
            continue;
        }
        if let Some(o) = run_opt(dir, &["show", "-s", "--no-walk", LOG_FORMAT, id, "--"])? {
            out.extend(parse_log(o));
        }
    }
    Ok(out)
}

/// One commit's metadata.
pub fn commit(dir: &Path, id: &str) -> Result<Option<CommitInfo>, EmulatorError> {
    if object_type(dir, id)?.as_deref() != Some("commit") {
        return Ok(None);
    }
    Ok(commits(dir, &[id.to_string()])?.into_iter().next())
}

/// Filters for [`log`].
#[derive(Clone, Debug, Default)]
pub struct LogFilter {
    /// Commits reachable from these...
    pub include: Vec<String>,
    /// ...and not from these.
    pub exclude: Vec<String>,
    pub author: Option<String>,
    pub committer: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub path: Option<String>,
}

/// `git log` (newest first), unpaged.
pub fn log(dir: &Path, f: &LogFilter) -> Result<Vec<CommitInfo>, EmulatorError> {
    if !exists(dir) || f.include.is_empty() {
        return Ok(Vec::new());
    }
    let mut args: Vec<String> = vec!["log".into(), LOG_FORMAT.into()];
    if let Some(a) = &f.author {
        args.push(format!("--author={a}"));
    }
    if let Some(c) = &f.committer {
        args.push(format!("--committer={c}"));
    }
    if let Some(s) = f.since {
        args.push(format!("--since=@{s}"));
    }
    if let Some(u) = f.until {
        args.push(format!("--until=@{u}"));
    }
    args.push("--end-of-options".into());
    for i in &f.include {
        args.push(i.clone());
    }
    for e in &f.exclude {
        args.push(format!("^{e}"));
    }
    args.push("--".into());
    if let Some(p) = &f.path {
        args.push(p.clone());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Ok(parse_log(run(dir, &refs, None)?))
}

/// Commit ids reachable from `include` but not from `exclude`, newest first.
pub fn rev_list(
    dir: &Path,
    include: &[String],
    exclude: &[String],
) -> Result<Vec<String>, EmulatorError> {
    if !exists(dir) || include.is_empty() {
        return Ok(Vec::new());
    }
    let mut args: Vec<String> = vec!["rev-list".into(), "--end-of-options".into()];
    args.extend(include.iter().cloned());
    args.extend(exclude.iter().map(|e| format!("^{e}")));
    args.push("--".into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Ok(text(run(dir, &refs, None)?)
        .lines()
        .map(str::to_string)
        .collect())
}

/// `git merge-base A B`.
pub fn merge_base(dir: &Path, a: &str, b: &str) -> Result<Option<String>, EmulatorError> {
    Ok(run_opt(dir, &["merge-base", a, b])?
        .map(|o| text(o).trim().to_string())
        .filter(|s| !s.is_empty()))
}

/// `(ahead, behind)` of `target` relative to `base`.
pub fn ahead_behind(dir: &Path, base: &str, target: &str) -> Result<(u64, u64), EmulatorError> {
    let range = format!("{base}...{target}");
    let out = text(run(
        dir,
        &["rev-list", "--left-right", "--count", &range, "--"],
        None,
    )?);
    let mut it = out
        .split_whitespace()
        .map(|s| s.parse::<u64>().unwrap_or(0));
    let behind = it.next().unwrap_or(0);
    let ahead = it.next().unwrap_or(0);
    Ok((ahead, behind))
}

/// One entry of a raw diff.
#[derive(Clone, Debug)]
pub struct DiffEntry {
    /// `A`, `M`, `D`, `T`, `R` (with `similarity`), `C`.
    pub status: char,
    pub similarity: u32,
    pub old_mode: String,
    pub new_mode: String,
    pub old_id: String,
    pub new_id: String,
    pub path: String,
    pub old_path: Option<String>,
}

impl DiffEntry {
    pub fn is_tree(&self) -> bool {
        self.new_mode == "040000" || (self.new_mode == "000000" && self.old_mode == "040000")
    }
}

/// Raw diff `base → target` including folders (`-t`) and renames (`-M`); `base = None` diffs against the
/// empty tree.
pub fn diff_tree(
    dir: &Path,
    base: Option<&str>,
    target: &str,
) -> Result<Vec<DiffEntry>, EmulatorError> {
    let mut args = vec!["diff-tree", "-r", "-t", "-z", "--raw", "--no-abbrev", "-M"];
    let empty_tree;
    match base {
        Some(b) => {
            args.push(b);
            args.push(target);
        }
        None => {
            empty_tree = empty_tree_id(dir)?;
            args.push(&empty_tree);
            args.push(target);
        }
    }
    let out = run(dir, &args, None)?;
    Ok(parse_raw_diff(&out))
}

fn empty_tree_id(dir: &Path) -> Result<String, EmulatorError> {
    Ok(text(run(
        dir,
        &["hash-object", "-t", "tree", "-w", "--stdin"],
        Some(b""),
    )?)
    .trim()
    .to_string())
}

fn parse_raw_diff(out: &[u8]) -> Vec<DiffEntry> {
    let fields: Vec<String> = out
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    let mut v = Vec::new();
    let mut i = 0;
    while i < fields.len() {
        let head = &fields[i];
        if !head.starts_with(':') {
            i += 1;
            continue;
        }
        let parts: Vec<&str> = head[1..].split(' ').collect();
        if parts.len() < 5 {
            i += 1;
            continue;
        }
        let status_str = parts[4];
        let status = status_str.chars().next().unwrap_or('M');
        let similarity = status_str[1..].parse::<u32>().unwrap_or(0);
        if status == 'R' || status == 'C' {
            let (Some(src), Some(dst)) = (fields.get(i + 1), fields.get(i + 2)) else {
                break;
            };
            v.push(DiffEntry {
                status,
                similarity,
                old_mode: parts[0].to_string(),
                new_mode: parts[1].to_string(),
                old_id: parts[2].to_string(),
                new_id: parts[3].to_string(),
                path: dst.clone(),
                old_path: Some(src.clone()),
            });
            i += 3;
        } else {
            let Some(p) = fields.get(i + 1) else { break };
            v.push(DiffEntry {
                status,
                similarity,
                old_mode: parts[0].to_string(),
                new_mode: parts[1].to_string(),
                old_id: parts[2].to_string(),
                new_id: parts[3].to_string(),
                path: p.clone(),
                old_path: None,
            });
            i += 2;
        }
    }
    v
}

/// One entry of `git ls-tree -l`.
#[derive(Clone, Debug)]
pub struct TreeEntry {
    pub mode: String,
    /// `blob`, `tree` or `commit` (submodule).
    pub kind: String,
    pub id: String,
    pub size: Option<u64>,
    /// Path relative to the repository root (no leading `/`).
    pub path: String,
}

/// `git ls-tree -l [-r -t] TREEISH [-- PATHSPEC]`.
pub fn ls_tree(
    dir: &Path,
    treeish: &str,
    pathspec: Option<&str>,
    recursive: bool,
) -> Result<Vec<TreeEntry>, EmulatorError> {
    let mut args = vec!["ls-tree", "-z", "-l", "--full-tree"];
    if recursive {
        args.push("-r");
        args.push("-t");
    }
    args.push(treeish);
    if let Some(p) = pathspec {
        args.push("--");
        args.push(p);
    }
    let out = run(dir, &args, None)?;
    Ok(out
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .filter_map(|rec| {
            let rec = String::from_utf8_lossy(rec);
            let (meta, path) = rec.split_once('\t')?;
            let mut m = meta.split_whitespace();
            Some(TreeEntry {
                mode: m.next()?.to_string(),
                kind: m.next()?.to_string(),
                id: m.next()?.to_string(),
                size: m.next().and_then(|s| s.parse().ok()),
                path: path.to_string(),
            })
        })
        .collect())
}

/// Contents of a blob.
pub fn blob(dir: &Path, id: &str) -> Result<Option<Vec<u8>>, EmulatorError> {
    if object_type(dir, id)?.as_deref() != Some("blob") {
        return Ok(None);
    }
    Ok(Some(run(dir, &["cat-file", "blob", id], None)?))
}

/// Size of an object in bytes.
pub fn object_size(dir: &Path, id: &str) -> Result<Option<u64>, EmulatorError> {
    if !exists(dir) || !is_hex(id) {
        return Ok(None);
    }
    Ok(run_opt(dir, &["cat-file", "-s", id])?.and_then(|o| text(o).trim().parse().ok()))
}

/// Sizes of many objects at once (`git cat-file --batch-check`).
pub fn object_sizes(
    dir: &Path,
    ids: &[String],
) -> Result<std::collections::HashMap<String, u64>, EmulatorError> {
    let mut map = std::collections::HashMap::new();
    if ids.is_empty() || !exists(dir) {
        return Ok(map);
    }
    let input: String = ids
        .iter()
        .filter(|i| is_hex(i))
        .map(|i| format!("{i}\n"))
        .collect();
    let out = run(
        dir,
        &["cat-file", "--batch-check=%(objectname) %(objectsize)"],
        Some(input.as_bytes()),
    )?;
    for line in text(out).lines() {
        let mut p = line.split_whitespace();
        if let (Some(id), Some(size)) = (p.next(), p.next().and_then(|s| s.parse().ok())) {
            map.insert(id.to_string(), size);
        }
    }
    Ok(map)
}

/// `git archive --format=zip` of `treeish` (a commit, or `commit:sub/dir`), entries under `prefix`.
pub fn archive_zip(
    dir: &Path,
    treeish: &str,
    prefix: Option<&str>,
    pathspec: Option<&str>,
) -> Result<Vec<u8>, EmulatorError> {
    let prefix_arg = prefix.map(|p| format!("--prefix={p}"));
    let mut args = vec!["archive", "--format=zip"];
    if let Some(p) = &prefix_arg {
        args.push(p);
    }
    args.push(treeish);
    if let Some(p) = pathspec {
        args.push("--");
        args.push(p);
    }
    run(dir, &args, None)
}

/// Approximate repository size in bytes (`git count-objects -v`).
pub fn repo_size(dir: &Path) -> Result<u64, EmulatorError> {
    if !exists(dir) {
        return Ok(0);
    }
    let out = text(run(dir, &["count-objects", "-v"], None)?);
    let mut kib = 0u64;
    for line in out.lines() {
        if let Some(v) = line
            .strip_prefix("size: ")
            .or_else(|| line.strip_prefix("size-pack: "))
        {
            kib += v.trim().parse::<u64>().unwrap_or(0);
        }
    }
    Ok(kib * 1024)
}

/// `git merge-base --is-ancestor A B`.
pub fn is_ancestor(dir: &Path, a: &str, b: &str) -> Result<bool, EmulatorError> {
    Ok(run_opt(dir, &["merge-base", "--is-ancestor", a, b])?.is_some())
}

/// `git update-ref REF NEW [OLD]` (OLD = `Some(ZERO_ID)`: the ref must not exist).
pub fn update_ref(
    dir: &Path,
    name: &str,
    new: &str,
    old: Option<&str>,
) -> Result<(), EmulatorError> {
    let mut args = vec!["update-ref", "-m", "spicehub-emulator", name, new];
    if let Some(o) = old {
        args.push(o);
    }
    run(dir, &args, None).map(|_| ())
}

/// `git update-ref -d REF [OLD]`.
pub fn delete_ref(dir: &Path, name: &str, old: Option<&str>) -> Result<(), EmulatorError> {
    let mut args = vec!["update-ref", "-d", name];
    if let Some(o) = old {
        args.push(o);
    }
    run(dir, &args, None).map(|_| ())
}

/// Normalizes a repository path given by a caller (`/a/b.py` → `a/b.py`), refusing traversal.
pub fn clean_path(p: &str) -> Result<String, EmulatorError> {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if parts.is_empty()
        || parts
            .iter()
            .any(|s| *s == ".." || *s == ".git" || s.contains('\0'))
    {
        return Err(EmulatorError::Invalid(format!("invalid path {p:?}")));
    }
    Ok(parts.join("/"))
}

fn quote(p: &str) -> String {
    let mut s = String::with_capacity(p.len() + 2);
    s.push('"');
    for c in p.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// What a new commit consists of.
pub struct NewCommit<'a> {
    /// Parent commit (`None` = root commit).
    pub parent: Option<&'a str>,
    pub changes: &'a [FileChange],
    pub message: &'a str,
    pub author: &'a Signature,
    pub when: OffsetDateTime,
}

/// Checks that deleted / renamed paths exist (fast-import would silently ignore them).
fn validate_changes(
    dir: &Path,
    parent: Option<&str>,
    changes: &[FileChange],
) -> Result<(), EmulatorError> {
    if !changes
        .iter()
        .any(|c| matches!(c, FileChange::Delete { .. } | FileChange::Rename { .. }))
    {
        return Ok(());
    }
    let mut files: std::collections::BTreeSet<String> = match parent {
        Some(p) => ls_tree(dir, p, None, true)?
            .into_iter()
            .filter(|e| e.kind != "tree")
            .map(|e| e.path)
            .collect(),
        None => Default::default(),
    };
    let present = |files: &std::collections::BTreeSet<String>, p: &str| {
        let prefix = format!("{p}/");
        files.contains(p) || files.iter().any(|f| f.starts_with(&prefix))
    };
    for ch in changes {
        match ch {
            FileChange::Put { path, .. } => {
                files.insert(clean_path(path)?);
            }
            FileChange::Delete { path } => {
                let p = clean_path(path)?;
                if !present(&files, &p) {
                    return Err(EmulatorError::Invalid(format!(
                        "cannot delete {p}: no such file"
                    )));
                }
                let prefix = format!("{p}/");
                files.retain(|f| *f != p && !f.starts_with(&prefix));
            }
            FileChange::Rename { from, to } => {
                let (f, t) = (clean_path(from)?, clean_path(to)?);
                if !present(&files, &f) {
                    return Err(EmulatorError::Invalid(format!(
                        "cannot rename {f}: no such file"
                    )));
                }
                let prefix = format!("{f}/");
                let moved: Vec<String> = files
                    .iter()
                    .filter(|x| **x == f || x.starts_with(&prefix))
                    .cloned()
                    .collect();
                for m in moved {
                    files.remove(&m);
                    files.insert(format!("{t}{}", &m[f.len()..]));
                }
            }
        }
    }
    Ok(())
}

/// Creates a commit object (without moving any branch) with `git fast-import`; returns its id.
pub fn create_commit(dir: &Path, c: &NewCommit<'_>) -> Result<String, EmulatorError> {
    validate_changes(dir, c.parent, c.changes)?;
    let tmp_ref = format!("refs/emulator/tmp/{}", Uuid::new_v4().simple());
    let secs = c.when.unix_timestamp();
    let person = format!(
        "{} <{}> {secs} +0000",
        c.author.name.replace(['<', '>', '\n'], ""),
        c.author.email.replace(['<', '>', '\n'], "")
    );
    let mut s: Vec<u8> = Vec::new();
    s.extend_from_slice(
        format!("commit {tmp_ref}\nauthor {person}\ncommitter {person}\n").as_bytes(),
    );
    s.extend_from_slice(format!("data {}\n", c.message.len()).as_bytes());
    s.extend_from_slice(c.message.as_bytes());
    s.push(b'\n');
    if let Some(p) = c.parent {
        if !is_hex(p) {
            return Err(EmulatorError::Invalid(format!("invalid parent {p}")));
        }
        s.extend_from_slice(format!("from {p}\n").as_bytes());
    }
    for ch in c.changes {
        match ch {
            FileChange::Put { path, bytes } => {
                let p = clean_path(path)?;
                s.extend_from_slice(
                    format!("M 100644 inline {}\ndata {}\n", quote(&p), bytes.len()).as_bytes(),
                );
                s.extend_from_slice(bytes);
                s.push(b'\n');
            }
            FileChange::Delete { path } => {
                let p = clean_path(path)?;
                s.extend_from_slice(format!("D {}\n", quote(&p)).as_bytes());
            }
            FileChange::Rename { from, to } => {
                let (f, t) = (clean_path(from)?, clean_path(to)?);
                s.extend_from_slice(format!("R {} {}\n", quote(&f), quote(&t)).as_bytes());
            }
        }
    }
    s.extend_from_slice(b"\ndone\n");
    let out = exec(
        command(dir),
        &["fast-import", "--quiet", "--done"],
        Some(&s),
    )?;
    if !out.ok {
        let _ = delete_ref(dir, &tmp_ref, None);
        return Err(EmulatorError::Invalid(format!(
            "could not create the commit: {}",
            out.stderr
                .lines()
                .find(|l| l.starts_with("fatal"))
                .unwrap_or(out.stderr.trim())
        )));
    }
    let id = rev_parse(dir, &tmp_ref)?.ok_or_else(|| EmulatorError::Git {
        args: "fast-import".into(),
        stderr: "no commit created".into(),
    })?;
    delete_ref(dir, &tmp_ref, None)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_diff_parsing() {
        let out = b":100644 100644 aaaa bbbb M\0src/a.py\0:100644 100644 cccc cccc R100\0old.py\0new.py\0:000000 040000 0000 dddd A\0dir\0";
        let v = parse_raw_diff(out);
        assert_eq!(v.len(), 3);
        assert_eq!((v[0].status, v[0].path.as_str()), ('M', "src/a.py"));
        assert_eq!(
            (v[1].status, v[1].similarity, v[1].path.as_str()),
            ('R', 100, "new.py")
        );
        assert_eq!(v[1].old_path.as_deref(), Some("old.py"));
        assert!(v[2].is_tree());
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean_path("/a//b/./c.py").ok().as_deref(), Some("a/b/c.py"));
        assert!(clean_path("../etc/passwd").is_err());
        assert!(clean_path("a/.git/config").is_err());
        assert!(clean_path("/").is_err());
    }

    #[test]
    fn fast_import_quoting() {
        assert_eq!(quote("a \"b\"\\c"), "\"a \\\"b\\\"\\\\c\"");
    }
}
