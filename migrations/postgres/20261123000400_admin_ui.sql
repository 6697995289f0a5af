-- The admin pages: more credential kinds, when the credential was set, the
-- last connection test, and pending admin-consent requests.
--
-- `credential_variant` extends credential_kind without touching its CHECK
-- (SQLite cannot alter one in place, and rebuilding the table would cascade
-- to its children): 'pat' is a legacy personal access token, 'hub_app' the
-- hub's own multi-tenant app after admin consent (nothing stored). Such
-- rows keep credential_kind = 'client_secret'. db::providers reads both.
ALTER TABLE providers ADD COLUMN credential_variant TEXT
    CHECK (credential_variant IN ('pat', 'hub_app'));
ALTER TABLE providers ADD COLUMN credential_set_at BIGINT;
UPDATE providers SET credential_set_at = updated_at;
ALTER TABLE providers ADD COLUMN last_check_at BIGINT;
ALTER TABLE providers ADD COLUMN last_check_ok BIGINT;
-- JSON: the diagnosis (code, title, hint, field) and what was seen.
ALTER TABLE providers ADD COLUMN last_check TEXT;
ALTER TABLE providers ADD COLUMN last_token_at BIGINT;
ALTER TABLE providers ADD COLUMN consented_at BIGINT;

-- An admin-consent link's state, by SHA-256; the callback must show it.
CREATE TABLE consent_requests (
    state_hash TEXT PRIMARY KEY NOT NULL,
    provider_id TEXT NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);
