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
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, EmulatorError>
where
    F: FnOnce() -> Result<T, EmulatorError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work).await?
}

fn base_command() -> Command {
    let mut cmd = Command::new("git");
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
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
    cmd
}

fn command(dir: &Path) -> Command {
    let mut cmd = base_command();
    cmd.arg("--git-dir").arg(dir);
    cmd
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

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
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
    let src_arg = src.to_string_lossy().into_owned();
    let dst_arg = dst.to_string_lossy().into_owned();
    let out = exec(
        base_command(),
        &[
            "clone",
            "--bare",
            "--quiet",
            "--no-local",
            &src_arg,
            &dst_arg,
        ],
        None,
    )?;
    if !out.ok {
        return Err(EmulatorError::Git {
            args: format!("clone --bare {src_arg}"),
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
    .map(|output| text(output).trim().to_string())
    .filter(|id| id.len() == 40))
}

/// Type of an object (`blob`, `tree`, `commit`, `tag`) or `None`.
pub fn object_type(dir: &Path, id: &str) -> Result<Option<String>, EmulatorError> {
    if !exists(dir) || !is_hex(id) {
        return Ok(None);
    }
    Ok(run_opt(dir, &["cat-file", "-t", id])?.map(|output| text(output).trim().to_string()))
}

pub fn is_hex(candidate: &str) -> bool {
    !candidate.is_empty()
        && candidate.len() <= 40
        && candidate.bytes().all(|b| b.is_ascii_hexdigit())
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
    let mut found: Vec<GitRef> = text(out)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\0');
            let name = fields.next()?.to_string();
            let object_id = fields.next()?.to_string();
            let peeled = fields
                .next()
                .filter(|peeled| !peeled.is_empty())
                .map(str::to_string);
            Some(GitRef {
                name,
                object_id,
                peeled,
            })
        })
        .collect();
    found.sort_by(|left, right| left.name.cmp(&right.name));
    Ok(found)
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
            let fields: Vec<&str> = rec.splitn(10, '\x1f').collect();
            if fields.len() < 10 {
                return None;
            }
            let parse_time = |seconds: &str| {
                seconds
                    .parse::<i64>()
                    .ok()
                    .and_then(|timestamp| OffsetDateTime::from_unix_timestamp(timestamp).ok())
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            };
            Some(CommitInfo {
                id: fields[0].to_string(),
                tree: fields[1].to_string(),
                parents: fields[2].split_whitespace().map(str::to_string).collect(),
                author: Person {
                    name: fields[3].to_string(),
                    email: fields[4].to_string(),
                    time: parse_time(fields[5]),
                },
                committer: Person {
                    name: fields[6].to_string(),
                    email: fields[7].to_string(),
                    time: parse_time(fields[8]),
                },
                message: fields[9].to_string(),
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
        if let Some(output) = run_opt(dir, &["show", "-s", "--no-walk", LOG_FORMAT, id, "--"])? {
            out.extend(parse_log(output));
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
pub fn log(dir: &Path, filter: &LogFilter) -> Result<Vec<CommitInfo>, EmulatorError> {
    if !exists(dir) || filter.include.is_empty() {
        return Ok(Vec::new());
    }
    let mut args: Vec<String> = vec!["log".into(), LOG_FORMAT.into()];
    if let Some(author) = &filter.author {
        args.push(format!("--author={author}"));
    }
    if let Some(committer) = &filter.committer {
        args.push(format!("--committer={committer}"));
    }
    if let Some(since) = filter.since {
        args.push(format!("--since=@{since}"));
    }
    if let Some(until) = filter.until {
        args.push(format!("--until=@{until}"));
    }
    args.push("--end-of-options".into());
    for include in &filter.include {
        args.push(include.clone());
    }
    for excluded in &filter.exclude {
        args.push(format!("^{excluded}"));
    }
    args.push("--".into());
    if let Some(path) = &filter.path {
        args.push(path.clone());
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
    args.extend(exclude.iter().map(|excluded| format!("^{excluded}")));
    args.push("--".into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Ok(text(run(dir, &refs, None)?)
        .lines()
        .map(str::to_string)
        .collect())
}

/// `git merge-base A B`.
pub fn merge_base(dir: &Path, first: &str, second: &str) -> Result<Option<String>, EmulatorError> {
    Ok(run_opt(dir, &["merge-base", first, second])?
        .map(|output| text(output).trim().to_string())
        .filter(|base| !base.is_empty()))
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
        .map(|count| count.parse::<u64>().unwrap_or(0));
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
        Some(base) => {
            args.push(base);
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
        .split(|byte| *byte == 0)
        .map(|field| String::from_utf8_lossy(field).into_owned())
        .collect();
    let mut entries = Vec::new();
    let mut index = 0;
    while index < fields.len() {
        let head = &fields[index];
        if !head.starts_with(':') {
            index += 1;
            continue;
        }
        let parts: Vec<&str> = head[1..].split(' ').collect();
        if parts.len() < 5 {
            index += 1;
            continue;
        }
        let status_str = parts[4];
        let status = status_str.chars().next().unwrap_or('M');
        let similarity = status_str[1..].parse::<u32>().unwrap_or(0);
        if status == 'R' || status == 'C' {
            let (Some(src), Some(dst)) = (fields.get(index + 1), fields.get(index + 2)) else {
                break;
            };
            entries.push(DiffEntry {
                status,
                similarity,
                old_mode: parts[0].to_string(),
                new_mode: parts[1].to_string(),
                old_id: parts[2].to_string(),
                new_id: parts[3].to_string(),
                path: dst.clone(),
                old_path: Some(src.clone()),
            });
            index += 3;
        } else {
            let Some(path) = fields.get(index + 1) else {
                break;
            };
            entries.push(DiffEntry {
                status,
                similarity,
                old_mode: parts[0].to_string(),
                new_mode: parts[1].to_string(),
                old_id: parts[2].to_string(),
                new_id: parts[3].to_string(),
                path: path.clone(),
                old_path: None,
            });
            index += 2;
        }
    }
    entries
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
    if let Some(pathspec) = pathspec {
        args.push("--");
        args.push(pathspec);
    }
    let out = run(dir, &args, None)?;
    Ok(out
        .split(|byte| *byte == 0)
        .filter(|record| !record.is_empty())
        .filter_map(|rec| {
            let rec = String::from_utf8_lossy(rec);
            let (meta, path) = rec.split_once('\t')?;
            let mut fields = meta.split_whitespace();
            Some(TreeEntry {
                mode: fields.next()?.to_string(),
                kind: fields.next()?.to_string(),
                id: fields.next()?.to_string(),
                size: fields.next().and_then(|size| size.parse().ok()),
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

/// Contents of many blobs at once (`git cat-file --batch`), in the order of `ids`; `None` for an id that is
/// not a blob of the repository. One process for the lot: a batch of a thousand costs one spawn, not a thousand.
pub fn blobs(dir: &Path, ids: &[String]) -> Result<Vec<Option<Vec<u8>>>, EmulatorError> {
    if ids.is_empty() || !exists(dir) {
        return Ok(vec![None; ids.len()]);
    }
    let input: String = ids
        .iter()
        .map(|id| {
            if is_hex(id) && id.len() == 40 {
                format!("{id}\n")
            } else {
                // Never a valid name, so git answers "missing" and the order holds.
                "0\n".to_string()
            }
        })
        .collect();
    let mut cmd = command(dir);
    cmd.args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    // Written from another thread: git answers as it reads, and a full stdout pipe would otherwise stop both.
    let writer = child.stdin.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        })
    });
    let out = child.wait_with_output()?;
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    if !out.status.success() {
        return Err(EmulatorError::Git {
            args: "cat-file --batch".into(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let malformed = || EmulatorError::Git {
        args: "cat-file --batch".into(),
        stderr: "output not understood".into(),
    };
    let mut rest: &[u8] = &out.stdout;
    let mut found = Vec::with_capacity(ids.len());
    for _ in ids {
        let end = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(malformed)?;
        let header = String::from_utf8_lossy(&rest[..end]).into_owned();
        rest = &rest[end + 1..];
        let fields: Vec<&str> = header.split(' ').collect();
        match fields.as_slice() {
            [_, kind, size] => {
                let size: usize = size.parse().map_err(|_| malformed())?;
                let body = rest.get(..size).ok_or_else(malformed)?;
                found.push((*kind == "blob").then(|| body.to_vec()));
                rest = rest.get(size + 1..).ok_or_else(malformed)?;
            }
            _ => found.push(None),
        }
    }
    Ok(found)
}

/// Size of an object in bytes.
pub fn object_size(dir: &Path, id: &str) -> Result<Option<u64>, EmulatorError> {
    if !exists(dir) || !is_hex(id) {
        return Ok(None);
    }
    Ok(run_opt(dir, &["cat-file", "-s", id])?.and_then(|output| text(output).trim().parse().ok()))
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
        .filter(|id| is_hex(id))
        .map(|id| format!("{id}\n"))
        .collect();
    let out = run(
        dir,
        &["cat-file", "--batch-check=%(objectname) %(objectsize)"],
        Some(input.as_bytes()),
    )?;
    for line in text(out).lines() {
        let mut fields = line.split_whitespace();
        if let (Some(id), Some(size)) = (
            fields.next(),
            fields.next().and_then(|raw| raw.parse().ok()),
        ) {
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
    let prefix_arg = prefix.map(|prefix| format!("--prefix={prefix}"));
    let mut args = vec!["archive", "--format=zip"];
    if let Some(arg) = &prefix_arg {
        args.push(arg);
    }
    args.push(treeish);
    if let Some(pathspec) = pathspec {
        args.push("--");
        args.push(pathspec);
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
        if let Some(size) = line
            .strip_prefix("size: ")
            .or_else(|| line.strip_prefix("size-pack: "))
        {
            kib += size.trim().parse::<u64>().unwrap_or(0);
        }
    }
    Ok(kib * 1024)
}

/// `git merge-base --is-ancestor A B`.
pub fn is_ancestor(dir: &Path, ancestor: &str, descendant: &str) -> Result<bool, EmulatorError> {
    Ok(run_opt(dir, &["merge-base", "--is-ancestor", ancestor, descendant])?.is_some())
}

/// `git update-ref REF NEW [OLD]` (OLD = `Some(ZERO_ID)`: the ref must not exist).
pub fn update_ref(
    dir: &Path,
    name: &str,
    new: &str,
    old: Option<&str>,
) -> Result<(), EmulatorError> {
    let mut args = vec!["update-ref", "-m", "spicehub-emulator", name, new];
    if let Some(old) = old {
        args.push(old);
    }
    run(dir, &args, None).map(|_| ())
}

/// `git update-ref -d REF [OLD]`.
pub fn delete_ref(dir: &Path, name: &str, old: Option<&str>) -> Result<(), EmulatorError> {
    let mut args = vec!["update-ref", "-d", name];
    if let Some(old) = old {
        args.push(old);
    }
    run(dir, &args, None).map(|_| ())
}

/// Normalizes a repository path given by a caller (`/a/b.py` → `a/b.py`), refusing traversal.
pub fn clean_path(path: &str) -> Result<String, EmulatorError> {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    if parts.is_empty()
        || parts
            .iter()
            .any(|part| *part == ".." || *part == ".git" || part.contains('\0'))
    {
        return Err(EmulatorError::Invalid(format!("invalid path {path:?}")));
    }
    Ok(parts.join("/"))
}

fn quote(path: &str) -> String {
    let mut quoted = String::with_capacity(path.len() + 2);
    quoted.push('"');
    for ch in path.chars() {
        match ch {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            ch => quoted.push(ch),
        }
    }
    quoted.push('"');
    quoted
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
    if !changes.iter().any(|change| {
        matches!(
            change,
            FileChange::Delete { .. } | FileChange::Rename { .. }
        )
    }) {
        return Ok(());
    }
    let mut files: std::collections::BTreeSet<String> = match parent {
        Some(parent) => ls_tree(dir, parent, None, true)?
            .into_iter()
            .filter(|entry| entry.kind != "tree")
            .map(|entry| entry.path)
            .collect(),
        None => Default::default(),
    };
    let present = |files: &std::collections::BTreeSet<String>, path: &str| {
        let prefix = format!("{path}/");
        files.contains(path) || files.iter().any(|file| file.starts_with(&prefix))
    };
    for change in changes {
        match change {
            FileChange::Put { path, .. } => {
                files.insert(clean_path(path)?);
            }
            FileChange::Delete { path } => {
                let cleaned = clean_path(path)?;
                if !present(&files, &cleaned) {
                    return Err(EmulatorError::Invalid(format!(
                        "cannot delete {cleaned}: no such file"
                    )));
                }
                let prefix = format!("{cleaned}/");
                files.retain(|file| *file != cleaned && !file.starts_with(&prefix));
            }
            FileChange::Rename { from, to } => {
                let (from_path, to_path) = (clean_path(from)?, clean_path(to)?);
                if !present(&files, &from_path) {
                    return Err(EmulatorError::Invalid(format!(
                        "cannot rename {from_path}: no such file"
                    )));
                }
                let prefix = format!("{from_path}/");
                let moved: Vec<String> = files
                    .iter()
                    .filter(|file| **file == from_path || file.starts_with(&prefix))
                    .cloned()
                    .collect();
                for moved_path in moved {
                    files.remove(&moved_path);
                    files.insert(format!("{to_path}{}", &moved_path[from_path.len()..]));
                }
            }
        }
    }
    Ok(())
}

/// Creates a commit object (without moving any branch) with `git fast-import`; returns its id.
pub fn create_commit(dir: &Path, new_commit: &NewCommit<'_>) -> Result<String, EmulatorError> {
    validate_changes(dir, new_commit.parent, new_commit.changes)?;
    let tmp_ref = format!("refs/emulator/tmp/{}", Uuid::new_v4().simple());
    let secs = new_commit.when.unix_timestamp();
    let person = format!(
        "{} <{}> {secs} +0000",
        new_commit.author.name.replace(['<', '>', '\n'], ""),
        new_commit.author.email.replace(['<', '>', '\n'], "")
    );
    let mut script: Vec<u8> = Vec::new();
    script.extend_from_slice(
        format!("commit {tmp_ref}\nauthor {person}\ncommitter {person}\n").as_bytes(),
    );
    script.extend_from_slice(format!("data {}\n", new_commit.message.len()).as_bytes());
    script.extend_from_slice(new_commit.message.as_bytes());
    script.push(b'\n');
    if let Some(parent) = new_commit.parent {
        if !is_hex(parent) {
            return Err(EmulatorError::Invalid(format!("invalid parent {parent}")));
        }
        script.extend_from_slice(format!("from {parent}\n").as_bytes());
    }
    for change in new_commit.changes {
        match change {
            FileChange::Put { path, bytes } => {
                let cleaned = clean_path(path)?;
                script.extend_from_slice(
                    format!(
                        "M 100644 inline {}\ndata {}\n",
                        quote(&cleaned),
                        bytes.len()
                    )
                    .as_bytes(),
                );
                script.extend_from_slice(bytes);
                script.push(b'\n');
            }
            FileChange::Delete { path } => {
                let cleaned = clean_path(path)?;
                script.extend_from_slice(format!("D {}\n", quote(&cleaned)).as_bytes());
            }
            FileChange::Rename { from, to } => {
                let (from_path, to_path) = (clean_path(from)?, clean_path(to)?);
                script.extend_from_slice(
                    format!("R {} {}\n", quote(&from_path), quote(&to_path)).as_bytes(),
                );
            }
        }
    }
    script.extend_from_slice(b"\ndone\n");
    let out = exec(
        command(dir),
        &["fast-import", "--quiet", "--done"],
        Some(&script),
    )?;
    if !out.ok {
        let _ = delete_ref(dir, &tmp_ref, None);
        return Err(EmulatorError::Invalid(format!(
            "could not create the commit: {}",
            out.stderr
                .lines()
                .find(|line| line.starts_with("fatal"))
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
        let entries = parse_raw_diff(out);
        assert_eq!(entries.len(), 3);
        assert_eq!(
            (entries[0].status, entries[0].path.as_str()),
            ('M', "src/a.py")
        );
        assert_eq!(
            (
                entries[1].status,
                entries[1].similarity,
                entries[1].path.as_str()
            ),
            ('R', 100, "new.py")
        );
        assert_eq!(entries[1].old_path.as_deref(), Some("old.py"));
        assert!(entries[2].is_tree());
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
