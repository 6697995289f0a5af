-- Registries through time: the graph of each synced commit a repository
-- keeps. Synced commits are numbered per repository in the order they were
-- made visible (`seq`). Every version of a registry, entry, edge or
-- diagnostic is one history_items row, valid from from_seq up to, not
-- including, to_seq (NULL while the newest kept commit still has it), so
-- an item that did not change across a hundred syncs is one row, and a
-- push that changes one entry adds one row and closes another.
CREATE TABLE history_commits (
    repository_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    commit_id TEXT NOT NULL,
    -- From Azure DevOps; NULL when it did not say (a graph stored by a test).
    author TEXT,
    authored_at BIGINT,
    message TEXT,
    synced_at BIGINT NOT NULL,
    -- JSON (db::history::Changes): the previous kept commit and, per
    -- registry that changed since, what was added, removed and changed.
    changes TEXT NOT NULL,
    PRIMARY KEY (repository_id, seq)
);
CREATE INDEX history_commits_commit ON history_commits (repository_id, commit_id);

CREATE TABLE history_items (
    id INTEGER PRIMARY KEY,
    repository_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('registry', 'entry', 'edge', 'diagnostic')),
    -- '' for diagnostics, which belong to files, not registries.
    registry_id TEXT NOT NULL,
    item_key TEXT NOT NULL,
    from_seq BIGINT NOT NULL,
    to_seq BIGINT,
    -- The item as the parser's JSON (spec section 6).
    data TEXT NOT NULL
);
CREATE INDEX history_items_open ON history_items (repository_id, kind, registry_id, item_key)
    WHERE to_seq IS NULL;
CREATE INDEX history_items_at ON history_items (repository_id, registry_id, from_seq);
CREATE INDEX history_items_closed ON history_items (repository_id, to_seq);

-- A synced commit's author and message come from the push that named it.
CREATE INDEX webhook_deliveries_commit ON webhook_deliveries (repository_id, new_commit);

CREATE TRIGGER repositories_delete_history AFTER DELETE ON repositories
BEGIN
    DELETE FROM history_items WHERE repository_id = OLD.id;
    DELETE FROM history_commits WHERE repository_id = OLD.id;
END;
