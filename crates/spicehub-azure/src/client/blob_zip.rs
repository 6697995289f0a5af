//! Reading back an answer of "Get Blobs Zip" (`POST .../blobs`), trusting
//! nothing but the content: Microsoft documents neither how the archive's
//! entries are named nor how many blobs one request may ask for, so an entry
//! counts as blob X only when its bytes hash to X (`SHA-1("blob {len}\0" +
//! content)`, Git's own id). Every requested id must come back exactly once
//! and nothing else may; a caller that sees any of these errors can ask again
//! for fewer blobs (or one at a time) rather than store what it did not ask for.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use sha1::{Digest, Sha1};

use crate::diagnosis::{AzureError, Diagnosis};

/// Bounds on one archive's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobZipLimits {
    /// Largest blob accepted at all: the limit the client puts on one blob
    /// fetched alone, so a batch accepts exactly what single requests do.
    pub max_blob_bytes: u64,
    /// Blobs up to this size come back with their content; larger ones are
    /// hashed as they are read and come back with their size only, so one
    /// batch holds at most this much per blob in memory.
    pub keep_bytes: u64,
}

/// One blob of a verified archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipBlob {
    /// Lower-case hex Git blob id.
    pub id: String,
    pub size: u64,
    /// `None` when the blob is larger than [`BlobZipLimits::keep_bytes`].
    pub content: Option<Vec<u8>>,
}

/// Why an archive of blobs was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobZipError {
    #[error("the archive of blobs is not a readable zip: {0}")]
    Corrupt(String),
    #[error("the archive of blobs lacks blob {0}")]
    Missing(String),
    #[error("the archive of blobs holds blob {0} more than once")]
    Duplicate(String),
    /// The entry is named after a requested blob but its bytes are another one.
    #[error(
        "entry {name} of the archive of blobs is not that blob (its content is blob {actual})"
    )]
    Mismatch { name: String, actual: String },
    #[error("entry {name} of the archive of blobs is blob {actual}, which was not asked for")]
    Unexpected { name: String, actual: String },
    #[error("entry {name} of the archive of blobs has {bytes} bytes, above the limit of {limit}")]
    TooLarge {
        name: String,
        bytes: u64,
        limit: u64,
    },
    /// The downloaded file itself could not be opened: a local problem, not
    /// the server's answer.
    #[error("cannot read the downloaded archive of blobs {path}: {message}")]
    Io { path: String, message: String },
}

impl BlobZipError {
    /// Whether the answer was wrong (asking again for fewer blobs may help),
    /// rather than this machine failing to read what it saved.
    pub fn is_bad_answer(&self) -> bool {
        !matches!(self, BlobZipError::Io { .. })
    }
}

impl From<BlobZipError> for AzureError {
    fn from(e: BlobZipError) -> Self {
        match e {
            BlobZipError::Io { path, message } => AzureError::Io { path, message },
            BlobZipError::TooLarge { bytes, limit, .. } => {
                AzureError::diagnosed(Diagnosis::TooLarge { bytes, limit })
            }
            other => AzureError::diagnosed(Diagnosis::UnexpectedResponse {
                detail: other.to_string(),
            }),
        }
    }
}

/// Git's blob id of `content`.
pub fn git_blob_id(content: &[u8]) -> String {
    let mut hasher = blob_hasher(content.len() as u64);
    hasher.update(content);
    hex(&hasher.finalize())
}

fn blob_hasher(len: u64) -> Sha1 {
    let mut hasher = Sha1::new();
    hasher.update(format!("blob {len}\0").as_bytes());
    hasher
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The blob id an entry's name claims, if it claims one: its last path
/// segment up to the first dot, when that is 40 hex digits.
fn named_id(name: &str) -> Option<String> {
    let last = name.rsplit('/').next()?;
    let stem = last.split('.').next()?;
    (stem.len() == 40 && stem.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| stem.to_ascii_lowercase())
}

/// Reads the archive at `path` and gives back the blobs of `ids`, in that
/// order (ids are compared case-insensitively; a repeated id is asked for
/// once). Blocking: run it on a blocking thread.
pub fn read_blobs_zip(
    path: &Path,
    ids: &[String],
    limits: BlobZipLimits,
) -> Result<Vec<ZipBlob>, BlobZipError> {
    let mut order: Vec<String> = Vec::with_capacity(ids.len());
    let mut wanted: HashSet<String> = HashSet::with_capacity(ids.len());
    for id in ids {
        let id = id.to_ascii_lowercase();
        if wanted.insert(id.clone()) {
            order.push(id);
        }
    }
    let file = std::fs::File::open(path).map_err(|e| BlobZipError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let corrupt = |e: &dyn std::fmt::Display| BlobZipError::Corrupt(e.to_string());
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| corrupt(&e))?;
    let mut found: HashMap<String, ZipBlob> = HashMap::with_capacity(order.len());
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| corrupt(&e))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().to_owned();
        let declared = entry.size();
        if declared > limits.max_blob_bytes {
            return Err(BlobZipError::TooLarge {
                name,
                bytes: declared,
                limit: limits.max_blob_bytes,
            });
        }
        // The declared size goes into the hash's header; a body of another
        // length then fails below, and the zip reader checks its CRC too.
        let mut hasher = blob_hasher(declared);
        let mut content = (declared <= limits.keep_bytes)
            .then(|| Vec::with_capacity(usize::try_from(declared).unwrap_or(0)));
        let mut read: u64 = 0;
        let mut buf = vec![0u8; 64 * 1024];
        let mut body = (&mut entry).take(declared.saturating_add(1));
        loop {
            let n = body.read(&mut buf).map_err(|e| corrupt(&e))?;
            if n == 0 {
                break;
            }
            read += n as u64;
            hasher.update(&buf[..n]);
            if let Some(c) = content.as_mut() {
                c.extend_from_slice(&buf[..n]);
            }
        }
        if read != declared {
            return Err(BlobZipError::Corrupt(format!(
                "entry {name} declares {declared} bytes but holds {}",
                if read > declared {
                    "more".to_owned()
                } else {
                    read.to_string()
                }
            )));
        }
        let actual = hex(&hasher.finalize());
        if !wanted.contains(&actual) {
            return Err(match named_id(&name) {
                Some(claimed) if wanted.contains(&claimed) => {
                    BlobZipError::Mismatch { name, actual }
                }
                _ => BlobZipError::Unexpected { name, actual },
            });
        }
        if found.contains_key(&actual) {
            return Err(BlobZipError::Duplicate(actual));
        }
        found.insert(
            actual.clone(),
            ZipBlob {
                id: actual,
                size: declared,
                content,
            },
        );
    }
    order
        .into_iter()
        .map(|id| found.remove(&id).ok_or(BlobZipError::Missing(id)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const LIMITS: BlobZipLimits = BlobZipLimits {
        max_blob_bytes: 1024,
        keep_bytes: 100,
    };

    fn zip_of(entries: &[(&str, &[u8])]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        {
            let mut zip = zip::ZipWriter::new(file.as_file_mut());
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            for (name, content) in entries {
                zip.start_file(*name, options).expect("entry");
                zip.write_all(content).expect("write");
            }
            zip.finish().expect("finish");
        }
        file
    }

    fn ids(contents: &[&[u8]]) -> Vec<String> {
        contents.iter().map(|c| git_blob_id(c)).collect()
    }

    #[test]
    fn blob_ids_are_gits() {
        // `git hash-object` of an empty file and of "hello\n".
        assert_eq!(git_blob_id(b""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
        assert_eq!(
            git_blob_id(b"hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
    }

    #[test]
    fn a_complete_archive_gives_every_blob_in_the_order_asked() {
        let (a, b, c): (&[u8], &[u8], &[u8]) = (b"A = 1\n", b"", b"B = 2\n");
        let want = ids(&[a, b, c]);
        // Entries in another order, under names that are not ids: only the
        // content decides.
        let file = zip_of(&[("x/c.py", c), ("a", a), (want[1].as_str(), b)]);
        let got = read_blobs_zip(file.path(), &want, LIMITS).expect("verified");
        let got_ids: Vec<&str> = got.iter().map(|blob| blob.id.as_str()).collect();
        assert_eq!(got_ids, want.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(got[0].content.as_deref(), Some(a));
        assert_eq!(got[1].content.as_deref(), Some(b));
        assert_eq!(got[2].size, c.len() as u64);
    }

    #[test]
    fn a_missing_id_is_refused() {
        let (a, b): (&[u8], &[u8]) = (b"A = 1\n", b"B = 2\n");
        let want = ids(&[a, b]);
        let file = zip_of(&[(want[0].as_str(), a)]);
        assert_eq!(
            read_blobs_zip(file.path(), &want, LIMITS),
            Err(BlobZipError::Missing(want[1].clone()))
        );
    }

    #[test]
    fn a_duplicate_entry_is_refused() {
        let a: &[u8] = b"A = 1\n";
        let want = ids(&[a]);
        let file = zip_of(&[(want[0].as_str(), a), ("again", a)]);
        assert_eq!(
            read_blobs_zip(file.path(), &want, LIMITS),
            Err(BlobZipError::Duplicate(want[0].clone()))
        );
    }

    #[test]
    fn wrong_content_under_a_requested_name_is_refused() {
        let (a, b): (&[u8], &[u8]) = (b"A = 1\n", b"B = 2\n");
        let want = ids(&[a, b]);
        let tampered: &[u8] = b"A = 666\n";
        let file = zip_of(&[(want[0].as_str(), tampered), (want[1].as_str(), b)]);
        assert_eq!(
            read_blobs_zip(file.path(), &want, LIMITS),
            Err(BlobZipError::Mismatch {
                name: want[0].clone(),
                actual: git_blob_id(tampered),
            })
        );
    }

    #[test]
    fn an_extra_entry_is_refused() {
        let (a, other): (&[u8], &[u8]) = (b"A = 1\n", b"OTHER = 1\n");
        let want = ids(&[a]);
        let file = zip_of(&[(want[0].as_str(), a), ("other.py", other)]);
        assert_eq!(
            read_blobs_zip(file.path(), &want, LIMITS),
            Err(BlobZipError::Unexpected {
                name: "other.py".into(),
                actual: git_blob_id(other),
            })
        );
    }

    #[test]
    fn sizes_are_bounded() {
        let big = vec![b'x'; 500];
        let huge = vec![b'y'; 2000];
        // Above the kept size: verified, size only.
        let want = ids(&[big.as_slice()]);
        let file = zip_of(&[(want[0].as_str(), big.as_slice())]);
        let got = read_blobs_zip(file.path(), &want, LIMITS).expect("verified");
        assert_eq!((got[0].size, got[0].content.is_none()), (500, true));
        // Above the blob limit: refused before it is read.
        let want = ids(&[huge.as_slice()]);
        let file = zip_of(&[(want[0].as_str(), huge.as_slice())]);
        assert!(matches!(
            read_blobs_zip(file.path(), &want, LIMITS),
            Err(BlobZipError::TooLarge {
                bytes: 2000,
                limit: 1024,
                ..
            })
        ));
    }

    #[test]
    fn a_file_that_is_not_a_zip_is_a_bad_answer_and_a_missing_file_is_not() {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(b"{\"message\":\"no\"}").expect("write");
        let err = read_blobs_zip(file.path(), &ids(&[b"x"]), LIMITS).expect_err("not a zip");
        assert!(matches!(err, BlobZipError::Corrupt(_)) && err.is_bad_answer());
        let err =
            read_blobs_zip(Path::new("/nonexistent/blobs.zip"), &[], LIMITS).expect_err("no file");
        assert!(!err.is_bad_answer());
        assert_eq!(AzureError::from(err).code(), "io_error");
    }
}
