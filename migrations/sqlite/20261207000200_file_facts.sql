-- What the parser's per-file phase found in a file (spicehub_parser's
-- PreparedFile, encoded), kept by path and Git blob id like the contents
-- in file_blobs: an incremental sync extracts only the files a push
-- changed and resolves names over these. `version` is the parser's
-- facts_version (its code and per-file limits); facts of another version
-- are never read. Rows whose path and blob no snapshot holds are deleted
-- with the blobs.
CREATE TABLE file_facts (
    repository_id TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    object_id TEXT NOT NULL,
    version TEXT NOT NULL,
    facts BLOB NOT NULL,
    PRIMARY KEY (repository_id, path, object_id)
);
