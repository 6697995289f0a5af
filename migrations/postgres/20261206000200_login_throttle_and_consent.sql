-- Sign-in throttling keyed by a SHA-256 of the account or address (so an
-- attacker's input is never stored, and every key has the same size), with
-- an increasing lock instead of a fixed window. Old counters are dropped:
-- at worst someone gets five fresh guesses once.
DROP TABLE login_failures;

CREATE TABLE login_throttle (
    key_hash TEXT PRIMARY KEY NOT NULL,
    failures BIGINT NOT NULL,
    last_failure BIGINT NOT NULL,
    locked_until BIGINT NOT NULL
);

-- An admin-consent answer must come from the tenant the link was made for.
-- NULL for requests made before this column (they expire within the hour).
ALTER TABLE consent_requests ADD COLUMN expected_tenant TEXT;
