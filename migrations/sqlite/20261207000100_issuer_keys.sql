-- The hub as an OpenID Connect issuer for federated credentials: its RS256
-- signing keys, shared by every instance on the database. `generation`
-- numbers the keys; its uniqueness lets exactly one of several instances
-- create the next key. The private key (PKCS#1 DER) is sealed with
-- SPICEHUB_SECRET_KEY under `issuer:key:<kid>`; n and e are the public
-- part as the JWKS publishes it. A key is published from `created_at`,
-- signs from `signs_from` until `signs_until`, and stays published until
-- `publish_until`, when it is deleted.
CREATE TABLE issuer_keys (
    kid TEXT PRIMARY KEY,
    generation BIGINT NOT NULL UNIQUE,
    private_key_sealed TEXT NOT NULL,
    public_n TEXT NOT NULL,
    public_e TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    signs_from BIGINT NOT NULL,
    signs_until BIGINT NOT NULL,
    publish_until BIGINT NOT NULL
);


-- The federated credential kind. `credential_variant`'s CHECK cannot be
-- changed in place on SQLite, so the kinds added from here on have their
-- own column; a provider's kind is the first of credential_scheme,
-- credential_variant and credential_kind that is set.
ALTER TABLE providers ADD COLUMN credential_scheme TEXT
    CHECK (credential_scheme IN ('federated'));
