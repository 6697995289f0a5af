//! Git LFS, as far as Azure DevOps' `resolveLfs=true` shows it (Items – Get
//! and Blobs – Get): a file kept in LFS is committed as a small pointer, and
//! only a request that asks for resolution gets the object it names; zips
//! and every other answer hold the pointer.
//!
//! The emulator's LFS server is one store for the whole process, keyed by
//! the object's SHA-256 as LFS keys it: two repositories or two tests can
//! only ever store the same content under the same id, so sharing it is
//! safe, and seeding a repository needs nothing but [`FileChange::lfs`].

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use axum::body::Body;
use axum::response::Response;
use parking_lot::RwLock;
use sha2::{Digest, Sha256};

use crate::config::FileChange;
use crate::devops::parse_bool;

const VERSION_LINE: &str = "version https://git-lfs.github.com/spec/v1";
/// git-lfs never reads anything larger as a pointer.
const MAX_POINTER_BYTES: usize = 1024;

static OBJECTS: LazyLock<RwLock<HashMap<String, Arc<[u8]>>>> = LazyLock::new(Default::default);

/// Stores `content` as an LFS object and returns the pointer git-lfs would
/// commit in its place (git-lfs `docs/spec.md`).
pub fn track(content: &[u8]) -> Vec<u8> {
    let oid: String = Sha256::digest(content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let pointer = format!("{VERSION_LINE}\noid sha256:{oid}\nsize {}\n", content.len());
    OBJECTS.write().insert(oid, Arc::from(content));
    pointer.into_bytes()
}

impl FileChange {
    /// A file kept in Git LFS: the commit holds its pointer, the emulator's
    /// LFS store its content.
    pub fn lfs(path: impl Into<String>, content: impl AsRef<[u8]>) -> Self {
        FileChange::put(path, track(content.as_ref()))
    }
}

/// The LFS object a pointer names, when the store holds it.
fn object_of(pointer: &[u8]) -> Option<Arc<[u8]>> {
    if pointer.len() >= MAX_POINTER_BYTES {
        return None;
    }
    let text = std::str::from_utf8(pointer).ok()?;
    let mut lines = text.lines();
    if lines.next()? != VERSION_LINE {
        return None;
    }
    let oid = lines.find_map(|line| line.strip_prefix("oid sha256:"))?;
    OBJECTS.read().get(oid).cloned()
}

/// A blob's raw bytes as Azure DevOps answers them, given the request's
/// `resolveLfs` value: the object for a pointer when resolution is asked
/// for and the object exists, else the bytes unchanged. A value that is
/// not a boolean is refused as every boolean parameter is.
// The error side is the finished error answer, as the handlers return theirs.
#[allow(clippy::result_large_err)]
pub(crate) fn answer(resolve_lfs: Option<&str>, bytes: Vec<u8>) -> Result<Vec<u8>, Response<Body>> {
    if parse_bool("resolveLfs", resolve_lfs)? != Some(true) {
        return Ok(bytes);
    }
    Ok(object_of(&bytes).map_or(bytes, |object| object.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tracked_file_resolves_only_when_asked() {
        let content = b"from reg import R\nR.register('lfs', func=print)\n";
        let pointer = track(content);
        assert!(pointer.starts_with(VERSION_LINE.as_bytes()));
        assert!(String::from_utf8_lossy(&pointer).ends_with(&format!("\nsize {}\n", content.len())));
        let resolved = answer(Some("true"), pointer.clone()).map_err(|_| "refused");
        assert_eq!(resolved.as_deref(), Ok(&content[..]));
        let kept = answer(Some("false"), pointer.clone()).map_err(|_| "refused");
        assert_eq!(kept.as_deref(), Ok(&pointer[..]));
        let kept = answer(None, pointer.clone()).map_err(|_| "refused");
        assert_eq!(kept.as_deref(), Ok(&pointer[..]));
        assert!(answer(Some("maybe"), pointer).is_err());
    }

    #[test]
    fn unknown_objects_and_plain_files_stay_as_they_are() {
        let unknown = format!("{VERSION_LINE}\noid sha256:{}\nsize 3\n", "0".repeat(64));
        let kept = answer(Some("true"), unknown.clone().into_bytes()).map_err(|_| "refused");
        assert_eq!(kept.as_deref(), Ok(unknown.as_bytes()));
        let plain = b"print('hello')\n".to_vec();
        let kept = answer(Some("true"), plain.clone()).map_err(|_| "refused");
        assert_eq!(kept, Ok(plain));
    }
}
