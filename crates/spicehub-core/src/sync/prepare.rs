//! Parsing while unpacking. A full sync used to store every file and only
//! then parse the snapshot, reading each file back from the database; the
//! parse was a whole second pass. The [`Preparer`] runs the parser's
//! per-file phase on the parser's threads as batches are stored, so the
//! parse overlaps the unpack and the writes, and the final parse only has
//! to resolve names across files (`parser::parse_tree_prepared`).

use std::collections::HashMap;

use rayon::prelude::*;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use spicehub_parser::{prepare_file, ParseOptions, PreparedFile};

/// Batches waiting for the parser threads: enough to keep them busy
/// without holding more than a few batches of contents in memory.
const QUEUE_DEPTH: usize = 2;

pub struct Preparer {
    tx: mpsc::Sender<Vec<(String, Vec<u8>)>>,
    handle: JoinHandle<HashMap<String, PreparedFile>>,
}

impl Preparer {
    pub fn start(options: ParseOptions) -> Preparer {
        let (tx, mut rx) = mpsc::channel::<Vec<(String, Vec<u8>)>>(QUEUE_DEPTH);
        let handle = tokio::task::spawn_blocking(move || {
            let mut prepared = HashMap::new();
            while let Some(batch) = rx.blocking_recv() {
                let facts: Vec<(String, PreparedFile)> = batch
                    .into_par_iter()
                    .map(|(path, content)| {
                        let facts = prepare_file(&path, &content, &options);
                        (path, facts)
                    })
                    .collect();
                // In order, so a path an archive holds twice ends with its
                // last copy, as the stored snapshot does.
                prepared.extend(facts);
            }
            prepared
        });
        Preparer { tx, handle }
    }

    /// Hands over the Python files of a stored batch (other paths are
    /// dropped). Waits while the parser threads are behind.
    pub async fn send(&self, files: Vec<(String, Vec<u8>)>) {
        let files: Vec<_> = files
            .into_iter()
            .filter(|(path, _)| path.ends_with(".py"))
            .collect();
        if !files.is_empty() {
            // Only fails if the thread died; `finish` then returns nothing
            // and the parse reads every file itself.
            let _ = self.tx.send(files).await;
        }
    }

    /// What was prepared. Never fails: anything missing is parsed from the
    /// stored files instead.
    pub async fn finish(self) -> HashMap<String, PreparedFile> {
        drop(self.tx);
        match self.handle.await {
            Ok(prepared) => prepared,
            Err(e) => {
                tracing::warn!(error = %e, "sync: parsing ahead stopped; parsing the stored files");
                HashMap::new()
            }
        }
    }
}
