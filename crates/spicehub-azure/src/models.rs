//! Serde models of the Azure DevOps REST API 7.1 subset we use, and of the
//! `git.push` service-hook payload.
//!
//! Tolerance rules (the published examples are older and smaller than live 7.1
//! answers, and live answers grow fields over time):
//! * unknown fields are ignored (no `deny_unknown_fields`);
//! * anything not always present is an `Option` or defaults to empty;
//! * identifiers that are essential (repository `id`, commit `commitId`, ...) are
//!   required, so a wrong shape is still caught;
//! * dates stay strings (`0001-01-01T00:00:00` appears in real payloads);
//! * `changeType` is a flags set parsed from `"edit, rename"`-style strings;
//! * `changeCounts` keys are capitalised (`Add`, `Edit`, ...) and kept as a map.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `{"count": n, "value": [...]}` list wrapper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T> {
    /// Items on this page.
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    /// Number of items on this page (not the total).
    #[serde(default)]
    pub count: Option<u64>,
    /// Some APIs return the continuation token in the body instead of the header.
    #[serde(default, alias = "ContinuationToken")]
    pub continuation_token: Option<String>,
}

/// `{"href": "..."}` link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// Target.
    #[serde(default)]
    pub href: Option<String>,
}

/// `_links` object: name → link.
pub type Links = BTreeMap<String, Link>;

/// Project reference (`TeamProjectReference`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamProjectReference {
    /// GUID.
    pub id: String,
    /// Name (can be renamed; store the id).
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// API URL.
    #[serde(default)]
    pub url: Option<String>,
    /// `wellFormed`, `createPending`, ... (old answers send the enum's number, e.g. `1`).
    #[serde(default, deserialize_with = "string_or_number")]
    pub state: Option<String>,
    /// Revision.
    #[serde(default)]
    pub revision: Option<u64>,
    /// `private`, `public`, `organization`, `unchanged`.
    #[serde(default)]
    pub visibility: Option<String>,
    /// Last update.
    #[serde(default)]
    pub last_update_time: Option<String>,
}

/// Git repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitRepository {
    /// GUID.
    pub id: String,
    /// Name.
    pub name: String,
    /// API URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Owning project (absent in some minimal payloads).
    #[serde(default)]
    pub project: Option<TeamProjectReference>,
    /// `refs/heads/main`; **absent for an empty repository**.
    #[serde(default)]
    pub default_branch: Option<String>,
    /// Size in bytes.
    #[serde(default)]
    pub size: Option<u64>,
    /// Clone URL.
    #[serde(default)]
    pub remote_url: Option<String>,
    /// SSH clone URL.
    #[serde(default)]
    pub ssh_url: Option<String>,
    /// Web URL.
    #[serde(default)]
    pub web_url: Option<String>,
    /// Disabled repositories cannot be read.
    #[serde(default)]
    pub is_disabled: Option<bool>,
    /// Fork.
    #[serde(default)]
    pub is_fork: Option<bool>,
    /// Under maintenance.
    #[serde(default)]
    pub is_in_maintenance: Option<bool>,
    /// Links.
    #[serde(default, rename = "_links")]
    pub links: Option<Links>,
}

impl GitRepository {
    /// Default branch short name (`main` for `refs/heads/main`).
    pub fn default_branch_name(&self) -> Option<&str> {
        self.default_branch
            .as_deref()
            .map(|b| b.strip_prefix("refs/heads/").unwrap_or(b))
    }

    /// Empty repositories have no default branch; items and diffs fail on them.
    pub fn is_empty(&self) -> bool {
        self.default_branch.is_none()
    }

    /// True when marked disabled.
    pub fn disabled(&self) -> bool {
        self.is_disabled.unwrap_or(false)
    }
}

/// Identity reference (`IdentityRef`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityRef {
    /// Id (GUID, or `<guid>@Live.com` in old samples).
    #[serde(default)]
    pub id: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Unique name.
    #[serde(default)]
    pub unique_name: Option<String>,
    /// URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Avatar.
    #[serde(default)]
    pub image_url: Option<String>,
    /// Descriptor (`aad.…`).
    #[serde(default)]
    pub descriptor: Option<String>,
}

/// Git ref.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitRef {
    /// Full name: `refs/heads/main`.
    pub name: String,
    /// Commit (or tag object) SHA-1.
    pub object_id: String,
    /// Peeled commit of an annotated tag.
    #[serde(default)]
    pub peeled_object_id: Option<String>,
    /// Creator.
    #[serde(default)]
    pub creator: Option<IdentityRef>,
    /// Locked.
    #[serde(default)]
    pub is_locked: Option<bool>,
    /// Who locked it.
    #[serde(default)]
    pub is_locked_by: Option<IdentityRef>,
    /// URL.
    #[serde(default)]
    pub url: Option<String>,
}

/// Git object kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GitObjectType {
    /// Bad.
    Bad,
    /// Commit (also submodules in trees).
    Commit,
    /// Tree.
    Tree,
    /// Blob.
    Blob,
    /// Tag.
    Tag,
    /// Ext2.
    Ext2,
    /// OfsDelta.
    OfsDelta,
    /// RefDelta.
    RefDelta,
    /// Anything newer.
    #[serde(other)]
    Unknown,
}

/// Content metadata of an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileContentMetadata {
    /// File name.
    #[serde(default)]
    pub file_name: Option<String>,
    /// Extension.
    #[serde(default)]
    pub extension: Option<String>,
    /// Binary.
    #[serde(default)]
    pub is_binary: Option<bool>,
    /// Image.
    #[serde(default)]
    pub is_image: Option<bool>,
    /// Encoding code page.
    #[serde(default)]
    pub encoding: Option<i64>,
    /// Content type.
    #[serde(default)]
    pub content_type: Option<String>,
}

/// An item (file or folder) in a tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitItem {
    /// Path starting with `/`.
    pub path: String,
    /// Blob/tree id (absent in some change lists).
    #[serde(default)]
    pub object_id: Option<String>,
    /// Previous object id (diffs).
    #[serde(default)]
    pub original_object_id: Option<String>,
    /// Previous path of a renamed item (some answers nest it here).
    #[serde(default)]
    pub original_path: Option<String>,
    /// Kind.
    #[serde(default)]
    pub git_object_type: Option<GitObjectType>,
    /// Commit the item was read at.
    #[serde(default)]
    pub commit_id: Option<String>,
    /// Folder.
    #[serde(default)]
    pub is_folder: Option<bool>,
    /// Symlink.
    #[serde(default)]
    pub is_sym_link: Option<bool>,
    /// Content when asked with `includeContent=true`.
    #[serde(default)]
    pub content: Option<String>,
    /// Metadata when asked with `includeContentMetadata=true`.
    #[serde(default)]
    pub content_metadata: Option<FileContentMetadata>,
    /// URL.
    #[serde(default)]
    pub url: Option<String>,
}

impl GitItem {
    /// Old path of a renamed item when the server nests it in the item.
    pub fn original_path(&self) -> Option<&str> {
        self.original_path.as_deref()
    }

    /// True for folders (flag or tree type).
    pub fn folder(&self) -> bool {
        self.is_folder.unwrap_or(false) || self.git_object_type == Some(GitObjectType::Tree)
    }
}

bitflags::bitflags! {
    /// `VersionControlChangeType` flags.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct ChangeFlags: u32 {
        /// add
        const ADD = 1;
        /// edit
        const EDIT = 2;
        /// encoding
        const ENCODING = 4;
        /// rename
        const RENAME = 8;
        /// delete
        const DELETE = 16;
        /// undelete
        const UNDELETE = 32;
        /// branch
        const BRANCH = 64;
        /// merge
        const MERGE = 128;
        /// lock
        const LOCK = 256;
        /// rollback
        const ROLLBACK = 512;
        /// sourceRename
        const SOURCE_RENAME = 1024;
        /// targetRename
        const TARGET_RENAME = 2048;
        /// property
        const PROPERTY = 4096;
    }
}

/// A `changeType` value: the flags we know plus any names we do not (kept, not fatal).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangeType {
    /// Known flags.
    pub flags: ChangeFlags,
    /// Names we did not recognise, as sent.
    pub unknown: Vec<String>,
}

impl ChangeType {
    /// Parses `"edit"`, `"edit, rename"`, `"Edit,Rename"`, `"all"`, `"none"`.
    pub fn parse(s: &str) -> ChangeType {
        let mut ct = ChangeType::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let flag = match part.to_ascii_lowercase().as_str() {
                "none" => Some(ChangeFlags::empty()),
                "add" => Some(ChangeFlags::ADD),
                "edit" => Some(ChangeFlags::EDIT),
                "encoding" => Some(ChangeFlags::ENCODING),
                "rename" => Some(ChangeFlags::RENAME),
                "delete" => Some(ChangeFlags::DELETE),
                "undelete" => Some(ChangeFlags::UNDELETE),
                "branch" => Some(ChangeFlags::BRANCH),
                "merge" => Some(ChangeFlags::MERGE),
                "lock" => Some(ChangeFlags::LOCK),
                "rollback" => Some(ChangeFlags::ROLLBACK),
                "sourcerename" => Some(ChangeFlags::SOURCE_RENAME),
                "targetrename" => Some(ChangeFlags::TARGET_RENAME),
                "property" => Some(ChangeFlags::PROPERTY),
                "all" => Some(ChangeFlags::all()),
                _ => None,
            };
            match flag {
                Some(f) => ct.flags |= f,
                None => ct.unknown.push(part.to_string()),
            }
        }
        ct
    }

    /// Contains the flag.
    pub fn contains(&self, f: ChangeFlags) -> bool {
        self.flags.contains(f)
    }

    /// File content appeared (add, undelete, branch) or changed (edit, encoding, merge, rollback)
    /// or moved (rename): the new path must be fetched.
    pub fn needs_fetch(&self) -> bool {
        !self.is_delete()
            && self.flags.intersects(
                ChangeFlags::ADD
                    | ChangeFlags::EDIT
                    | ChangeFlags::ENCODING
                    | ChangeFlags::RENAME
                    | ChangeFlags::UNDELETE
                    | ChangeFlags::BRANCH
                    | ChangeFlags::MERGE
                    | ChangeFlags::ROLLBACK
                    | ChangeFlags::TARGET_RENAME,
            )
    }

    /// The path is gone.
    pub fn is_delete(&self) -> bool {
        self.flags.contains(ChangeFlags::DELETE)
    }

    /// A rename (the old path must be removed).
    pub fn is_rename(&self) -> bool {
        self.flags.intersects(
            ChangeFlags::RENAME | ChangeFlags::SOURCE_RENAME | ChangeFlags::TARGET_RENAME,
        )
    }
}

impl fmt::Display for ChangeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: &[(ChangeFlags, &str)] = &[
            (ChangeFlags::ADD, "add"),
            (ChangeFlags::EDIT, "edit"),
            (ChangeFlags::ENCODING, "encoding"),
            (ChangeFlags::RENAME, "rename"),
            (ChangeFlags::DELETE, "delete"),
            (ChangeFlags::UNDELETE, "undelete"),
            (ChangeFlags::BRANCH, "branch"),
            (ChangeFlags::MERGE, "merge"),
            (ChangeFlags::LOCK, "lock"),
            (ChangeFlags::ROLLBACK, "rollback"),
            (ChangeFlags::SOURCE_RENAME, "sourceRename"),
            (ChangeFlags::TARGET_RENAME, "targetRename"),
            (ChangeFlags::PROPERTY, "property"),
        ];
        let mut parts: Vec<&str> = NAMES
            .iter()
            .filter(|(fl, _)| self.flags.contains(*fl))
            .map(|(_, n)| *n)
            .collect();
        parts.extend(self.unknown.iter().map(String::as_str));
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

impl<'de> Deserialize<'de> for ChangeType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Bits(u32),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Text(s) => ChangeType::parse(&s),
            // Older servers can send the numeric enum value.
            Raw::Bits(b) => ChangeType {
                flags: ChangeFlags::from_bits_truncate(b),
                unknown: Vec::new(),
            },
        })
    }
}

impl Serialize for ChangeType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// `changeCounts`: capitalised keys (`Add`, `Edit`, `Delete`, `Rename`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChangeCounts(pub BTreeMap<String, i64>);

impl ChangeCounts {
    /// Count for a key, case-insensitively (`"add"` finds `"Add"`).
    pub fn get(&self, key: &str) -> i64 {
        self.0
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| *v)
            .sum()
    }

    /// Sum of all counts.
    pub fn total(&self) -> i64 {
        self.0.values().sum()
    }
}

/// One change of a commit or a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitChange {
    /// The item (new path for renames). Absent in path-filtered commit listings,
    /// which only give `sourceServerItem`.
    #[serde(default)]
    pub item: Option<GitItem>,
    /// Flags.
    #[serde(default)]
    pub change_type: ChangeType,
    /// Old path for renames (one of the places Azure DevOps puts it).
    #[serde(default)]
    pub source_server_item: Option<String>,
    /// Old path for renames (another one).
    #[serde(default)]
    pub original_path: Option<String>,
    /// Change id.
    #[serde(default)]
    pub change_id: Option<i64>,
}

impl GitChange {
    /// The path the change applies to (the new path for renames).
    pub fn path(&self) -> Option<&str> {
        self.item
            .as_ref()
            .map(|i| i.path.as_str())
            .or(self.source_server_item.as_deref())
    }

    /// The old path of a rename, wherever the server put it (`sourceServerItem` is
    /// only an old path when it differs from the item's path).
    pub fn old_path(&self) -> Option<&str> {
        let new_path = self.item.as_ref().map(|i| i.path.as_str());
        self.original_path
            .as_deref()
            .or(self.item.as_ref().and_then(|i| i.original_path()))
            .or(self
                .source_server_item
                .as_deref()
                .filter(|s| Some(*s) != new_path && new_path.is_some()))
    }
}

/// `{name, email, date}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitUserDate {
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// ISO 8601.
    #[serde(default)]
    pub date: Option<String>,
}

/// Push reference inside a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitPushRef {
    /// Push id.
    #[serde(default)]
    pub push_id: Option<i64>,
    /// Date.
    #[serde(default)]
    pub date: Option<String>,
    /// Who.
    #[serde(default)]
    pub pushed_by: Option<IdentityRef>,
    /// URL.
    #[serde(default)]
    pub url: Option<String>,
}

/// Commit (`GitCommitRef`; `GitCommit` adds `treeId`, and `changes` with `changeCount`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitCommitRef {
    /// SHA-1.
    pub commit_id: String,
    /// Author.
    #[serde(default)]
    pub author: Option<GitUserDate>,
    /// Committer.
    #[serde(default)]
    pub committer: Option<GitUserDate>,
    /// Message (may be truncated).
    #[serde(default)]
    pub comment: Option<String>,
    /// Message truncated.
    #[serde(default)]
    pub comment_truncated: Option<bool>,
    /// Counts.
    #[serde(default)]
    pub change_counts: Option<ChangeCounts>,
    /// Changes (with `changeCount` or path queries).
    #[serde(default)]
    pub changes: Option<Vec<GitChange>>,
    /// Parent SHA-1s.
    #[serde(default)]
    pub parents: Option<Vec<String>>,
    /// Tree SHA-1.
    #[serde(default)]
    pub tree_id: Option<String>,
    /// Push.
    #[serde(default)]
    pub push: Option<GitPushRef>,
    /// URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Web URL.
    #[serde(default)]
    pub remote_url: Option<String>,
    /// Links.
    #[serde(default, rename = "_links")]
    pub links: Option<Links>,
}

/// A single commit (same shape).
pub type GitCommit = GitCommitRef;

/// `commits/{id}/changes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitCommitChanges {
    /// Counts.
    #[serde(default)]
    pub change_counts: Option<ChangeCounts>,
    /// Changes.
    #[serde(default)]
    pub changes: Vec<GitChange>,
}

/// `diffs/commits` answer (one page, or all pages merged by the client).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitCommitDiffs {
    /// All changes are in this answer (paging finished).
    #[serde(default)]
    pub all_changes_included: Option<bool>,
    /// Counts (for the whole diff).
    #[serde(default)]
    pub change_counts: Option<ChangeCounts>,
    /// Changes on this page.
    #[serde(default)]
    pub changes: Vec<GitChange>,
    /// Merge base.
    #[serde(default)]
    pub common_commit: Option<String>,
    /// Base commit.
    #[serde(default)]
    pub base_commit: Option<String>,
    /// Target commit.
    #[serde(default)]
    pub target_commit: Option<String>,
    /// Commits in target not in base.
    #[serde(default)]
    pub ahead_count: Option<i64>,
    /// Commits in base not in target.
    #[serde(default)]
    pub behind_count: Option<i64>,
}

/// Ref update of a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitRefUpdate {
    /// `refs/heads/main`.
    pub name: String,
    /// Before (40 zeros on creation).
    #[serde(default)]
    pub old_object_id: Option<String>,
    /// After (40 zeros on deletion).
    #[serde(default)]
    pub new_object_id: Option<String>,
    /// Repository.
    #[serde(default)]
    pub repository_id: Option<String>,
}

/// A push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitPush {
    /// Id.
    pub push_id: i64,
    /// Date.
    #[serde(default)]
    pub date: Option<String>,
    /// Who.
    #[serde(default)]
    pub pushed_by: Option<IdentityRef>,
    /// Ref updates (with `includeRefUpdates`).
    #[serde(default)]
    pub ref_updates: Option<Vec<GitRefUpdate>>,
    /// Commits (with `includeCommits`).
    #[serde(default)]
    pub commits: Option<Vec<GitCommitRef>>,
    /// Repository.
    #[serde(default)]
    pub repository: Option<GitRepository>,
    /// URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Links.
    #[serde(default, rename = "_links")]
    pub links: Option<Links>,
}

/// Blob metadata (JSON form of `blobs/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitBlobRef {
    /// SHA-1.
    pub object_id: String,
    /// Size.
    #[serde(default)]
    pub size: Option<u64>,
    /// URL.
    #[serde(default)]
    pub url: Option<String>,
}

/// Tree entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitTreeEntryRef {
    /// SHA-1.
    pub object_id: String,
    /// Path relative to the tree.
    pub relative_path: String,
    /// Mode (`100644`, `040000`, `160000` for submodules).
    #[serde(default)]
    pub mode: Option<String>,
    /// Kind.
    #[serde(default)]
    pub git_object_type: Option<GitObjectType>,
    /// Size.
    #[serde(default)]
    pub size: Option<u64>,
    /// URL.
    #[serde(default)]
    pub url: Option<String>,
}

/// Tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitTreeRef {
    /// SHA-1.
    pub object_id: String,
    /// Entries.
    #[serde(default)]
    pub tree_entries: Vec<GitTreeEntryRef>,
    /// Size.
    #[serde(default)]
    pub size: Option<u64>,
    /// URL.
    #[serde(default)]
    pub url: Option<String>,
}

/// Service-hook subscription status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SubscriptionStatus {
    /// Enabled.
    Enabled,
    /// On probation after failures ("Enabled (restricted)").
    OnProbation,
    /// Disabled by a user.
    DisabledByUser,
    /// Disabled by Azure DevOps after repeated failures: re-create it.
    DisabledBySystem,
    /// Creator left.
    DisabledByInactiveIdentity,
    /// Anything newer.
    #[serde(other)]
    Unknown,
}

/// Service-hook subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// GUID.
    pub id: String,
    /// URL.
    #[serde(default)]
    pub url: Option<String>,
    /// `tfs`.
    #[serde(default)]
    pub publisher_id: Option<String>,
    /// `git.push`.
    #[serde(default)]
    pub event_type: Option<String>,
    /// `1.0` (may be null).
    #[serde(default)]
    pub resource_version: Option<String>,
    /// `webHooks`.
    #[serde(default)]
    pub consumer_id: Option<String>,
    /// `httpRequest`.
    #[serde(default)]
    pub consumer_action_id: Option<String>,
    /// Status (absent in old samples).
    #[serde(default)]
    pub status: Option<SubscriptionStatus>,
    /// Publisher inputs (`projectId`, `repository`, `branch`, ...).
    #[serde(default)]
    pub publisher_inputs: BTreeMap<String, String>,
    /// Consumer inputs (secrets come back masked).
    #[serde(default)]
    pub consumer_inputs: BTreeMap<String, String>,
    /// Probation retries.
    #[serde(default)]
    pub probation_retries: Option<i64>,
    /// Description.
    #[serde(default)]
    pub event_description: Option<String>,
    /// Description.
    #[serde(default)]
    pub action_description: Option<String>,
    /// Creator.
    #[serde(default)]
    pub created_by: Option<IdentityRef>,
    /// Created.
    #[serde(default)]
    pub created_date: Option<String>,
    /// Modifier.
    #[serde(default)]
    pub modified_by: Option<IdentityRef>,
    /// Modified.
    #[serde(default)]
    pub modified_date: Option<String>,
}

/// Body of `POST _apis/hooks/subscriptions`. Its `Debug` masks the
/// consumer inputs that are secrets (the Basic Auth password).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionCreate {
    /// `tfs`.
    pub publisher_id: String,
    /// `git.push`.
    pub event_type: String,
    /// `1.0`.
    pub resource_version: String,
    /// `webHooks`.
    pub consumer_id: String,
    /// `httpRequest`.
    pub consumer_action_id: String,
    /// `projectId`, `repository`, `branch`.
    pub publisher_inputs: BTreeMap<String, String>,
    /// `url`, `basicAuthUsername`, `basicAuthPassword`, `resourceDetailsToSend`, ...
    pub consumer_inputs: BTreeMap<String, String>,
}

/// Consumer inputs whose values are secrets.
const SECRET_CONSUMER_INPUTS: &[&str] = &["basicAuthPassword", "password", "httpHeaders"];

impl std::fmt::Debug for SubscriptionCreate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let consumer_inputs: BTreeMap<&str, &str> = self
            .consumer_inputs
            .iter()
            .map(|(k, v)| {
                let shown = if SECRET_CONSUMER_INPUTS.contains(&k.as_str()) {
                    "***"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("SubscriptionCreate")
            .field("publisher_id", &self.publisher_id)
            .field("event_type", &self.event_type)
            .field("resource_version", &self.resource_version)
            .field("consumer_id", &self.consumer_id)
            .field("consumer_action_id", &self.consumer_action_id)
            .field("publisher_inputs", &self.publisher_inputs)
            .field("consumer_inputs", &consumer_inputs)
            .finish()
    }
}

impl SubscriptionCreate {
    /// A `git.push` web hook with Basic Auth, full resource details and no messages.
    pub fn git_push_webhook(
        project_id: &str,
        repository_id: Option<&str>,
        branch: Option<&str>,
        url: &str,
        basic_user: &str,
        basic_password: &str,
    ) -> Self {
        let mut publisher_inputs = BTreeMap::new();
        publisher_inputs.insert("projectId".to_string(), project_id.to_string());
        if let Some(r) = repository_id {
            publisher_inputs.insert("repository".to_string(), r.to_string());
        }
        if let Some(b) = branch {
            // The filter takes the short branch name.
            publisher_inputs.insert(
                "branch".to_string(),
                b.strip_prefix("refs/heads/").unwrap_or(b).to_string(),
            );
        }
        let mut consumer_inputs = BTreeMap::new();
        consumer_inputs.insert("url".to_string(), url.to_string());
        consumer_inputs.insert("basicAuthUsername".to_string(), basic_user.to_string());
        consumer_inputs.insert("basicAuthPassword".to_string(), basic_password.to_string());
        consumer_inputs.insert("resourceDetailsToSend".to_string(), "all".to_string());
        consumer_inputs.insert("messagesToSend".to_string(), "none".to_string());
        consumer_inputs.insert("detailedMessagesToSend".to_string(), "none".to_string());
        SubscriptionCreate {
            publisher_id: "tfs".to_string(),
            event_type: "git.push".to_string(),
            resource_version: "1.0".to_string(),
            consumer_id: "webHooks".to_string(),
            consumer_action_id: "httpRequest".to_string(),
            publisher_inputs,
            consumer_inputs,
        }
    }
}

// ---------------------------------------------------------------- webhook payload

/// `{text, html, markdown}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMessage {
    /// Text.
    #[serde(default)]
    pub text: Option<String>,
    /// HTML.
    #[serde(default)]
    pub html: Option<String>,
    /// Markdown.
    #[serde(default)]
    pub markdown: Option<String>,
}

/// `{id, baseUrl}` of `resourceContainers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceContainer {
    /// GUID.
    #[serde(default)]
    pub id: Option<String>,
    /// `https://dev.azure.com/{org}/`.
    #[serde(default)]
    pub base_url: Option<String>,
}

/// `resourceContainers`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResourceContainers {
    /// Collection.
    #[serde(default)]
    pub collection: Option<ResourceContainer>,
    /// Account = organization.
    #[serde(default)]
    pub account: Option<ResourceContainer>,
    /// Project.
    #[serde(default)]
    pub project: Option<ResourceContainer>,
}

/// Commit inside a push event (no file list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushEventCommit {
    /// SHA-1 (or placeholder in doc samples).
    pub commit_id: String,
    /// Author.
    #[serde(default)]
    pub author: Option<GitUserDate>,
    /// Committer.
    #[serde(default)]
    pub committer: Option<GitUserDate>,
    /// Message.
    #[serde(default)]
    pub comment: Option<String>,
    /// URL.
    #[serde(default)]
    pub url: Option<String>,
}

/// `resource` of a `git.push` event. Everything is optional because with
/// `resourceDetailsToSend = minimal` only `id`, `url` and `name` are sent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushEventResource {
    /// Commits, newest first.
    #[serde(default)]
    pub commits: Vec<PushEventCommit>,
    /// Ref updates.
    #[serde(default)]
    pub ref_updates: Vec<GitRefUpdate>,
    /// Repository.
    #[serde(default)]
    pub repository: Option<GitRepository>,
    /// Who pushed.
    #[serde(default)]
    pub pushed_by: Option<IdentityRef>,
    /// Push id.
    #[serde(default)]
    pub push_id: Option<i64>,
    /// Date.
    #[serde(default)]
    pub date: Option<String>,
    /// URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Minimal form.
    #[serde(default)]
    pub id: Option<serde_json::Value>,
    /// Minimal form.
    #[serde(default)]
    pub name: Option<String>,
}

/// A `git.push` ("Code pushed") service-hook delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushEvent {
    /// Event id: the dedupe key.
    pub id: String,
    /// `git.push`.
    pub event_type: String,
    /// `tfs` (one doc revision says `azure-devops`).
    #[serde(default)]
    pub publisher_id: Option<String>,
    /// Subscription (real deliveries).
    #[serde(default)]
    pub subscription_id: Option<String>,
    /// Per-subscription counter (real deliveries).
    #[serde(default)]
    pub notification_id: Option<i64>,
    /// `all`.
    #[serde(default)]
    pub scope: Option<String>,
    /// Display text; do not parse.
    #[serde(default)]
    pub message: Option<EventMessage>,
    /// Display text; do not parse.
    #[serde(default)]
    pub detailed_message: Option<EventMessage>,
    /// The push.
    #[serde(default)]
    pub resource: PushEventResource,
    /// `1.0`.
    #[serde(default)]
    pub resource_version: Option<String>,
    /// Organization/project ids.
    #[serde(default)]
    pub resource_containers: ResourceContainers,
    /// When.
    #[serde(default)]
    pub created_date: Option<String>,
}

impl PushEvent {
    /// The ref update of the repository's default branch, if this push touched it.
    pub fn default_branch_update(&self) -> Option<&GitRefUpdate> {
        let default = self
            .resource
            .repository
            .as_ref()?
            .default_branch
            .as_deref()?;
        self.resource.ref_updates.iter().find(|u| u.name == default)
    }

    /// Organization id (`resourceContainers.account.id`, else `collection.id`).
    pub fn organization_id(&self) -> Option<&str> {
        self.resource_containers
            .account
            .as_ref()
            .and_then(|a| a.id.as_deref())
            .or_else(|| {
                self.resource_containers
                    .collection
                    .as_ref()
                    .and_then(|c| c.id.as_deref())
            })
    }
}

/// Azure DevOps JSON error envelope.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DevOpsErrorEnvelope {
    /// `TFnnnnnn: ...`.
    #[serde(default, alias = "Message")]
    pub message: Option<String>,
    /// .NET type name.
    #[serde(default)]
    pub type_name: Option<String>,
    /// Short type key (`UnauthorizedRequestException`, ...).
    #[serde(default)]
    pub type_key: Option<String>,
    /// Error code.
    #[serde(default)]
    pub error_code: Option<i64>,
    /// Event id.
    #[serde(default)]
    pub event_id: Option<i64>,
}

/// Accepts a string, a number or null (old answers send enums as numbers).
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_body_never_shows_its_password_in_debug() {
        let body = SubscriptionCreate::git_push_webhook(
            "p",
            Some("r"),
            Some("refs/heads/main"),
            "https://hub.example/gateway/public/sync",
            "spicehub",
            "hook-password-123",
        );
        let shown = format!("{body:?}");
        assert!(!shown.contains("hook-password-123"), "{shown}");
        assert!(shown.contains("basicAuthUsername") && shown.contains("spicehub"));
        // The wire form keeps it, of course.
        assert!(serde_json::to_string(&body)
            .unwrap()
            .contains("hook-password-123"));
    }

    #[test]
    fn change_type_parses_flag_lists() {
        let ct = ChangeType::parse("edit, rename");
        assert!(ct.contains(ChangeFlags::EDIT) && ct.contains(ChangeFlags::RENAME));
        assert!(ct.is_rename() && ct.needs_fetch() && !ct.is_delete());
        assert!(ct.unknown.is_empty());
        assert_eq!(ct.to_string(), "edit, rename");

        let ct = ChangeType::parse("Delete,SourceRename");
        assert!(ct.is_delete() && ct.contains(ChangeFlags::SOURCE_RENAME) && !ct.needs_fetch());

        let ct = ChangeType::parse("add");
        assert_eq!(ct.flags, ChangeFlags::ADD);
        assert_eq!(ChangeType::parse("none").flags, ChangeFlags::empty());
        assert_eq!(ChangeType::parse("all").flags, ChangeFlags::all());

        let ct = ChangeType::parse("edit, teleport");
        assert_eq!(ct.flags, ChangeFlags::EDIT);
        assert_eq!(ct.unknown, vec!["teleport".to_string()]);
    }

    #[test]
    fn change_type_deserializes_from_string_and_number() {
        #[derive(Deserialize)]
        struct W {
            #[serde(rename = "changeType")]
            change_type: ChangeType,
        }
        let w: W = serde_json::from_str(r#"{"changeType":"edit, rename"}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.change_type.flags, ChangeFlags::EDIT | ChangeFlags::RENAME);
        let w: W = serde_json::from_str(r#"{"changeType":10}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.change_type.flags, ChangeFlags::EDIT | ChangeFlags::RENAME);
        let back = serde_json::to_string(&w.change_type).unwrap_or_default();
        assert_eq!(back, "\"edit, rename\"");
    }

    #[test]
    fn change_counts_capitalised_keys() {
        let c: ChangeCounts =
            serde_json::from_str(r#"{"Add":24,"Edit":6}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.get("add"), 24);
        assert_eq!(c.get("Edit"), 6);
        assert_eq!(c.get("Delete"), 0);
        assert_eq!(c.total(), 30);
    }

    #[test]
    fn empty_repository_has_no_default_branch() {
        let r: GitRepository =
            serde_json::from_str(r#"{"id":"x","name":"Empty","somethingNew":{"a":1}}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(r.is_empty());
        assert_eq!(r.default_branch_name(), None);
        let r: GitRepository = serde_json::from_str(
            r#"{"id":"x","name":"R","defaultBranch":"refs/heads/main","isDisabled":true}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.default_branch_name(), Some("main"));
        assert!(r.disabled());
        // A repository without an id is not a repository.
        assert!(serde_json::from_str::<GitRepository>(r#"{"name":"R"}"#).is_err());
    }

    #[test]
    fn unknown_enum_values_are_tolerated() {
        let s: Subscription = serde_json::from_str(
            r#"{"id":"s","status":"somethingNew","publisherInputs":{"a":"b"}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.status, Some(SubscriptionStatus::Unknown));
        let i: GitItem = serde_json::from_str(r#"{"path":"/x","gitObjectType":"hologram"}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(i.git_object_type, Some(GitObjectType::Unknown));
    }

    #[test]
    fn change_paths_and_renames() {
        let c: GitChange =
            serde_json::from_str(r#"{"sourceServerItem":"/debug.log","changeType":"add"}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.path(), Some("/debug.log"));
        assert_eq!(c.old_path(), None);
        let c: GitChange = serde_json::from_str(
            r#"{"item":{"path":"/new.py"},"changeType":"edit, rename","sourceServerItem":"/old.py"}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.path(), Some("/new.py"));
        assert_eq!(c.old_path(), Some("/old.py"));
        let c: GitChange = serde_json::from_str(
            r#"{"item":{"path":"/n.py","originalPath":"/o.py"},"changeType":"rename"}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.old_path(), Some("/o.py"));
    }

    #[test]
    fn project_state_may_be_a_number() {
        let p: TeamProjectReference = serde_json::from_str(r#"{"id":"p","name":"P","state":1}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.state.as_deref(), Some("1"));
        let p: TeamProjectReference = serde_json::from_str(r#"{"id":"p","name":"P","state":null}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.state, None);
    }

    #[test]
    fn webhook_subscription_body() {
        let b = SubscriptionCreate::git_push_webhook(
            "p",
            Some("r"),
            Some("refs/heads/main"),
            "https://h/x",
            "u",
            "pw",
        );
        let v = serde_json::to_value(&b).unwrap_or_default();
        assert_eq!(v["publisherInputs"]["branch"], "main");
        assert_eq!(v["consumerActionId"], "httpRequest");
        assert_eq!(v["consumerInputs"]["basicAuthUsername"], "u");
    }
}
