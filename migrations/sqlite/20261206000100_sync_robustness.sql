-- A removed repository's graph goes with it, and pruning has its indexes.
--
-- The graph tables are keyed by repository id without a foreign key to
-- `repositories` (tests and tools store graphs for checkouts the hub does
-- not replicate). Deleting a repositories row, by `delete_repository` or by
-- the cascade from its provider, now deletes its graph in the same
-- statement (the child tables cascade from graph_snapshots), and the sync's
-- switch refuses to write a graph for a repository that has no row.

-- Graphs left behind by repositories removed before this migration (a
-- sync that switched after the removal brought them back).
DELETE FROM graph_layouts WHERE NOT EXISTS
    (SELECT 1 FROM repositories r WHERE r.id = graph_layouts.repository_id);
DELETE FROM graph_diagnostics WHERE NOT EXISTS
    (SELECT 1 FROM repositories r WHERE r.id = graph_diagnostics.repository_id);
DELETE FROM graph_edges WHERE NOT EXISTS
    (SELECT 1 FROM repositories r WHERE r.id = graph_edges.repository_id);
DELETE FROM graph_entries WHERE NOT EXISTS
    (SELECT 1 FROM repositories r WHERE r.id = graph_entries.repository_id);
DELETE FROM graph_registries WHERE NOT EXISTS
    (SELECT 1 FROM repositories r WHERE r.id = graph_registries.repository_id);
DELETE FROM graph_snapshots WHERE NOT EXISTS
    (SELECT 1 FROM repositories r WHERE r.id = graph_snapshots.repository_id);

CREATE TRIGGER repositories_delete_graphs AFTER DELETE ON repositories
BEGIN
    DELETE FROM graph_layouts WHERE repository_id = OLD.id;
    DELETE FROM graph_diagnostics WHERE repository_id = OLD.id;
    DELETE FROM graph_edges WHERE repository_id = OLD.id;
    DELETE FROM graph_entries WHERE repository_id = OLD.id;
    DELETE FROM graph_registries WHERE repository_id = OLD.id;
    DELETE FROM graph_snapshots WHERE repository_id = OLD.id;
END;

-- Files in the snapshot's tree (every file, kept or not), as the full sync
-- counted them in the archive; an incremental sync carries the count
-- forward through its diff, so both enforce SPICEHUB_SYNC_MAX_ENTRIES.
-- NULL for snapshots stored before this migration.
ALTER TABLE repository_snapshots ADD COLUMN tree_files BIGINT;

-- Pruning: the newest deliveries per provider, each repository's latest job.
CREATE INDEX webhook_deliveries_provider ON webhook_deliveries (provider_id, received_at);
CREATE INDEX sync_jobs_repository ON sync_jobs (repository_id, created_at);
CREATE INDEX consent_requests_created ON consent_requests (created_at);
