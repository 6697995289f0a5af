-- Providers, organizations, repositories, the sync job queue and webhook
-- deliveries. Times are unix seconds; ids are TEXT.

-- One Azure DevOps connection: an Entra ID application (tenant + client id)
-- and the Basic Auth credentials its service hooks post with.
CREATE TABLE providers (
    id TEXT PRIMARY KEY NOT NULL,
    display_name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('azure_devops')),
    tenant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    credential_kind TEXT NOT NULL CHECK (credential_kind IN ('client_secret', 'certificate')),
    -- crypto::SecretKey::seal, context "provider:<id>:credential".
    credential_sealed TEXT NOT NULL,
    webhook_username TEXT NOT NULL UNIQUE,
    -- "sha256:<hex>" of "<id>:<password>"; the password itself is not kept
    -- (see db::providers for why a fast hash is enough here).
    webhook_password_verifier TEXT NOT NULL,
    secret_expires_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE organizations (
    id TEXT PRIMARY KEY NOT NULL,
    provider_id TEXT NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- Azure DevOps' organization GUID (resourceContainers.account.id), once known.
    devops_id TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (provider_id, name)
);

-- id is Azure DevOps' repository GUID (lower case), as webhooks name it.
CREATE TABLE repositories (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    project_name TEXT NOT NULL,
    name TEXT NOT NULL,
    -- Full ref name, e.g. refs/heads/main.
    tracked_branch TEXT NOT NULL,
    web_url TEXT,
    last_synced_commit TEXT,
    state TEXT NOT NULL CHECK (state IN ('pending', 'syncing', 'synced', 'error', 'disabled')),
    last_error TEXT,
    last_webhook_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX repositories_organization ON repositories (organization_id);

CREATE TABLE sync_jobs (
    id TEXT PRIMARY KEY NOT NULL,
    repository_id TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('first_replication', 'recent_changes', 'entire_repository',
                                       'from_commit', 'reparse', 'reconcile')),
    target_commit TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'superseded')),
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    -- Not before this time; for a running job, when it may be retried if its
    -- lease runs out (lease end + backoff).
    run_after BIGINT NOT NULL,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    phase TEXT,
    progress_done BIGINT,
    progress_total BIGINT,
    last_error TEXT,
    delivery_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT
);
-- Coalescing: one pending job per repository and kind (enqueue upserts it).
CREATE UNIQUE INDEX sync_jobs_one_pending ON sync_jobs (repository_id, kind) WHERE status = 'pending';
-- One job at a time per repository, enforced by the database so that two
-- instances racing to claim cannot both win.
CREATE UNIQUE INDEX sync_jobs_one_running ON sync_jobs (repository_id) WHERE status = 'running';
CREATE INDEX sync_jobs_claimable ON sync_jobs (status, run_after);

-- Every authenticated delivery, processed or ignored.
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    provider_id TEXT NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
    -- The event id (dedupe key); NULL for the Test button's sample payload,
    -- which Azure DevOps sends with the same id every time.
    event_id TEXT,
    event_type TEXT,
    repository_id TEXT,
    ref_name TEXT,
    new_commit TEXT,
    status TEXT NOT NULL CHECK (status IN ('queued', 'ignored')),
    reason TEXT,
    job_id TEXT,
    body TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    UNIQUE (provider_id, event_id)
);
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at);
