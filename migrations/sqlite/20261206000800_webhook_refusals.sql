-- Webhook deliveries refused for their credentials, in aggregate: one row
-- per provider whose user name was sent with a wrong password, plus one
-- (`unknown`) for user names no provider uses and for no credentials at
-- all, so a flood of made-up names cannot add rows. Neither the password
-- nor the body is kept. The hub adds counts every few seconds (an upsert),
-- so several instances sharing the database add up.
CREATE TABLE webhook_refusals (
    bucket TEXT PRIMARY KEY NOT NULL,
    provider_id TEXT REFERENCES providers (id) ON DELETE CASCADE,
    attempts BIGINT NOT NULL,
    first_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    last_address TEXT NOT NULL
);
