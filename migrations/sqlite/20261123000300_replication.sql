-- The replicated files of each repository and the atomic switch between
-- commits. A sync stages a complete new snapshot next to the visible one,
-- then one transaction points the repository at it (visible_snapshot), so a
-- reader sees the old commit's files or the new one's, never a mix.

-- File contents, deduplicated per repository by Git blob id (SHA-1 of
-- "blob <len>\0<content>"), so a rename or an unchanged file costs nothing.
CREATE TABLE file_blobs (
    repository_id TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    object_id TEXT NOT NULL,
    content BLOB NOT NULL,
    PRIMARY KEY (repository_id, object_id)
);

CREATE TABLE repository_snapshots (
    id TEXT PRIMARY KEY NOT NULL,
    repository_id TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    commit_id TEXT NOT NULL,
    -- The job that staged it (a crashed job's snapshot is dropped on retry).
    job_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX repository_snapshots_repository ON repository_snapshots (repository_id);

-- One row per file the parser reads (Python sources and spice configuration)
-- and per path left out with a note (symbolic link, LFS pointer, too large).
CREATE TABLE repository_files (
    snapshot_id TEXT NOT NULL REFERENCES repository_snapshots (id) ON DELETE CASCADE,
    repository_id TEXT NOT NULL,
    path TEXT NOT NULL,
    -- NULL when the content is not stored (see note).
    object_id TEXT,
    size BIGINT NOT NULL,
    note TEXT,
    PRIMARY KEY (snapshot_id, path)
);
CREATE INDEX repository_files_objects ON repository_files (repository_id, object_id);

ALTER TABLE repositories ADD COLUMN visible_snapshot TEXT;
ALTER TABLE repositories ADD COLUMN last_synced_at BIGINT;
-- Why the last sync did what it did ("full sync: history was rewritten").
ALTER TABLE repositories ADD COLUMN last_sync_note TEXT;
ALTER TABLE repositories ADD COLUMN file_count BIGINT;

-- The webhook password, sealed (context "provider:<id>:webhook"), so the hub
-- can create or re-create service hook subscriptions with it. Verification
-- still uses the verifier.
ALTER TABLE providers ADD COLUMN webhook_password_sealed TEXT;

-- Service hook subscriptions the hub created (reconcile re-creates them when
-- Azure DevOps disables them).
CREATE TABLE hook_subscriptions (
    id TEXT PRIMARY KEY NOT NULL,
    repository_id TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    devops_subscription_id TEXT NOT NULL,
    status TEXT,
    recreated_count BIGINT NOT NULL DEFAULT 0,
    last_checked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX hook_subscriptions_repository ON hook_subscriptions (repository_id);

-- Periodic tasks shared by every instance: the one whose conditional UPDATE
-- moves next_run_at wins the turn.
CREATE TABLE schedules (
    name TEXT PRIMARY KEY NOT NULL,
    next_run_at BIGINT NOT NULL
);
