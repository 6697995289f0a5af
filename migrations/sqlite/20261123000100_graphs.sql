-- Parsed spice graphs, one snapshot per (repository, commit), and the
-- layouts computed from them. repository_id is the id of the repositories
-- table that the sync issue adds; it is not a foreign key yet. Every child
-- row carries the snapshot key, so that a snapshot is replaced or read with
-- one indexed range per table. `position` keeps the parser's array order,
-- so a loaded graph is identical to the stored one.
CREATE TABLE graph_snapshots (
    repository_id TEXT NOT NULL,
    commit_id TEXT NOT NULL,
    stored_at BIGINT NOT NULL,
    PRIMARY KEY (repository_id, commit_id)
);

CREATE TABLE graph_registries (
    repository_id TEXT NOT NULL,
    commit_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    registry_id TEXT NOT NULL,
    label TEXT NOT NULL,
    file TEXT NOT NULL,
    line BIGINT NOT NULL,
    PRIMARY KEY (repository_id, commit_id, position),
    FOREIGN KEY (repository_id, commit_id)
        REFERENCES graph_snapshots (repository_id, commit_id) ON DELETE CASCADE
);
CREATE INDEX graph_registries_id ON graph_registries (repository_id, commit_id, registry_id);

CREATE TABLE graph_entries (
    repository_id TEXT NOT NULL,
    commit_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    registry_id TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('function', 'class', 'object')),
    target TEXT NOT NULL,
    file TEXT NOT NULL,
    line BIGINT NOT NULL,
    doc TEXT,
    PRIMARY KEY (repository_id, commit_id, position),
    FOREIGN KEY (repository_id, commit_id)
        REFERENCES graph_snapshots (repository_id, commit_id) ON DELETE CASCADE
);
CREATE INDEX graph_entries_registry ON graph_entries (repository_id, commit_id, registry_id);

-- from_name/to_name: "from" and "to" are SQL keywords.
CREATE TABLE graph_edges (
    repository_id TEXT NOT NULL,
    commit_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    registry_id TEXT NOT NULL,
    from_name TEXT NOT NULL,
    to_name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('explicit', 'parameter')),
    dangling BIGINT NOT NULL CHECK (dangling IN (0, 1)),
    PRIMARY KEY (repository_id, commit_id, position),
    FOREIGN KEY (repository_id, commit_id)
        REFERENCES graph_snapshots (repository_id, commit_id) ON DELETE CASCADE
);
CREATE INDEX graph_edges_registry ON graph_edges (repository_id, commit_id, registry_id);

CREATE TABLE graph_diagnostics (
    repository_id TEXT NOT NULL,
    commit_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    file TEXT NOT NULL,
    line BIGINT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('error', 'warning', 'info')),
    message TEXT NOT NULL,
    PRIMARY KEY (repository_id, commit_id, position),
    FOREIGN KEY (repository_id, commit_id)
        REFERENCES graph_snapshots (repository_id, commit_id) ON DELETE CASCADE
);
CREATE INDEX graph_diagnostics_file ON graph_diagnostics (repository_id, commit_id, file);

-- Layouts are a cache: `layout` is the JSON of graph::Layout, and view_key
-- names the view and the layout format version, so a new format misses.
CREATE TABLE graph_layouts (
    repository_id TEXT NOT NULL,
    commit_id TEXT NOT NULL,
    registry_id TEXT NOT NULL,
    view_key TEXT NOT NULL,
    layout TEXT NOT NULL,
    computed_at BIGINT NOT NULL,
    PRIMARY KEY (repository_id, commit_id, registry_id, view_key),
    FOREIGN KEY (repository_id, commit_id)
        REFERENCES graph_snapshots (repository_id, commit_id) ON DELETE CASCADE
);
