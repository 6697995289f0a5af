-- Users, sessions and sign-in throttling. Times are unix seconds.
CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    created_at BIGINT NOT NULL
);

-- id is the SHA-256 of the session cookie: a database reader cannot sign in.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    data TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- One row per throttled key ("account:<email>" or "address:<ip>").
CREATE TABLE login_failures (
    key TEXT PRIMARY KEY NOT NULL,
    failures BIGINT NOT NULL,
    window_start BIGINT NOT NULL
);
