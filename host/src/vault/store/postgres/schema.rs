//! The PostgreSQL schema, as versioned migrations applied at open (and by `claribi-host migrate`).
//!
//! The tables are those of the SQLite store (migrations 1–9 there), in PostgreSQL's types: `BIGINT`
//! for every integer (the host reads them as `i64`), `BYTEA` for nonces and ciphertexts. A sealed row
//! is the same on both backends: same AEAD, same associated data, same key ids, so a secret sealed by
//! one replica is opened by any other that holds the key.
//!
//! Two replicas starting at once do not both migrate: each migration runs in one transaction that
//! first takes a transaction-scoped advisory lock and reads the version again.

/// Migration 1: everything the SQLite store reached in its versions 1–9.
const V1: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS connections (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    plugin_digest TEXT NOT NULL,
    connector_id TEXT NOT NULL,
    connector_name TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    auth_method TEXT NOT NULL,
    scopes TEXT NOT NULL,
    options TEXT NOT NULL,
    policy TEXT NOT NULL,
    account TEXT,
    granted_scopes TEXT NOT NULL,
    status TEXT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    oauth TEXT NOT NULL DEFAULT '{}',
    api_key_header TEXT,
    warnings TEXT NOT NULL DEFAULT '[]',
    tools_pinned_at BIGINT
);
CREATE TABLE IF NOT EXISTS secrets (
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    key_id TEXT NOT NULL,
    nonce BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    updated_at BIGINT NOT NULL,
    format BIGINT NOT NULL DEFAULT 2,
    kind TEXT,
    placeholder TEXT,
    binding TEXT,
    PRIMARY KEY (connection_id, name)
);
CREATE UNIQUE INDEX IF NOT EXISTS secrets_by_placeholder ON secrets (connection_id, placeholder);
CREATE TABLE IF NOT EXISTS state (
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (connection_id, key)
);
CREATE TABLE IF NOT EXISTS tool_cache (
    connection_id TEXT PRIMARY KEY REFERENCES connections(id) ON DELETE CASCADE,
    listed_at BIGINT NOT NULL,
    listing TEXT NOT NULL,
    blocked TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS shared_state (
    connector_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (connector_id, key)
);
CREATE TABLE IF NOT EXISTS pins (
    id TEXT PRIMARY KEY,
    seq BIGSERIAL,
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    arguments TEXT NOT NULL,
    chart TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS pins_by_connection ON pins (connection_id);
CREATE TABLE IF NOT EXISTS tool_pins (
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    tool TEXT NOT NULL,
    digest TEXT NOT NULL,
    definition TEXT NOT NULL,
    approved_at BIGINT NOT NULL,
    approved_by TEXT NOT NULL,
    PRIMARY KEY (connection_id, tool)
);
CREATE TABLE IF NOT EXISTS tool_reviews (
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    tool TEXT NOT NULL,
    kind TEXT NOT NULL,
    digest TEXT NOT NULL,
    definition TEXT NOT NULL,
    detail TEXT NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (connection_id, tool)
);
CREATE TABLE IF NOT EXISTS tool_approvals (
    seq BIGSERIAL PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    tool TEXT NOT NULL,
    digest TEXT NOT NULL,
    approved_at BIGINT NOT NULL,
    approved_by TEXT NOT NULL,
    how TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tool_approvals_by_connection ON tool_approvals (connection_id);
CREATE TABLE IF NOT EXISTS engine_tokens (
    name TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE TABLE IF NOT EXISTS audit (
    id BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    engine TEXT NOT NULL,
    connection TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments_sha256 TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    replica TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit (at_ms);
CREATE INDEX IF NOT EXISTS audit_by_connection ON audit (connection, at_ms);
CREATE TABLE IF NOT EXISTS rate_budgets (
    scope TEXT PRIMARY KEY,
    lim BIGINT NOT NULL,
    remaining BIGINT NOT NULL,
    reset_at_ms BIGINT NOT NULL,
    window_ms BIGINT NOT NULL,
    learned BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS continuations (
    cursor_sha256 TEXT PRIMARY KEY,
    expires_at_ms BIGINT NOT NULL,
    connection TEXT NOT NULL,
    source TEXT NOT NULL,
    key_id TEXT NOT NULL,
    nonce BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS continuations_by_expiry ON continuations (expires_at_ms);
CREATE INDEX IF NOT EXISTS continuations_by_connection ON continuations (connection);
";

/// Migration 2: the generation counter (see `super::super::generation`), bumped by row triggers
/// deferred to the writing transaction's commit: a replica that reads a new number also reads what
/// changed, and the counter's row is always the last lock a transaction takes, so two writers never
/// wait for each other in a cycle through it.
const V2: &str = "
CREATE TABLE IF NOT EXISTS generation (id BIGINT PRIMARY KEY CHECK (id = 1), n BIGINT NOT NULL);
INSERT INTO generation (id, n) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
CREATE OR REPLACE FUNCTION claribi_bump_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE generation SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER generation_connections AFTER INSERT OR UPDATE OR DELETE ON connections
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION claribi_bump_generation();
CREATE CONSTRAINT TRIGGER generation_tool_cache AFTER INSERT OR UPDATE OR DELETE ON tool_cache
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION claribi_bump_generation();
CREATE CONSTRAINT TRIGGER generation_tool_pins AFTER INSERT OR UPDATE OR DELETE ON tool_pins
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION claribi_bump_generation();
CREATE CONSTRAINT TRIGGER generation_tool_reviews AFTER INSERT OR UPDATE OR DELETE ON tool_reviews
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION claribi_bump_generation();
";

/// Migration 3: connector components by digest, so every replica loads the same pinned code.
const V3: &str = "
CREATE TABLE IF NOT EXISTS components (
    digest TEXT PRIMARY KEY,
    bytes BYTEA NOT NULL,
    stored_at BIGINT NOT NULL
);
";

/// Migration 4: the replicas in service and the master key each seals with, so that `rotate-key`
/// finishes only when the whole fleet seals with the new key.
const V4: &str = "
CREATE TABLE IF NOT EXISTS replicas (
    id TEXT PRIMARY KEY,
    sealing_key_id TEXT NOT NULL,
    key_ids TEXT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    seen_at_ms BIGINT NOT NULL
);
";

/// The versioned migrations of a PostgreSQL store, applied in order at open.
pub const MIGRATIONS: &[(u32, &str, &str)] = &[
    (1, "connections, sealed secrets, state, listings, pins, approvals, engine tokens, audit trail, rate budgets, continuations", V1),
    (2, "a generation counter every write a call prepares from changes (triggers deferred to commit)", V2),
    (3, "connector components by digest, for every replica", V3),
    (4, "the replicas in service and the master key each seals with", V4),
];

/// The advisory lock every migration transaction takes first (any constant both replicas agree on).
pub(super) const MIGRATION_LOCK: i64 = 0x636c_6172_6962_6901;
