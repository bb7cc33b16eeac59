-- Core identity tables: organizations, agents, credentials, signing keys, and the guard used by transactions.
-- Timestamps are integer Unix milliseconds (UTC); JSON columns hold compact JSON text.

CREATE TABLE IF NOT EXISTS orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    tier        TEXT NOT NULL DEFAULT 'free',
    created_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS agents (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs(id),
    name            TEXT NOT NULL,
    email           TEXT,
    agent_type      TEXT NOT NULL,
    version         TEXT,
    capabilities    TEXT NOT NULL DEFAULT '[]',
    owner           TEXT,
    deployment_env  TEXT NOT NULL DEFAULT 'development',
    metadata        TEXT NOT NULL DEFAULT '{}',
    visibility      TEXT NOT NULL DEFAULT 'private' CHECK (visibility IN ('private', 'public')),
    status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'decommissioned')),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_auth_at    INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS agents_org_email ON agents(org_id, email) WHERE email IS NOT NULL;
CREATE INDEX IF NOT EXISTS agents_org_page ON agents(org_id, created_at, id);
CREATE INDEX IF NOT EXISTS agents_marketplace ON agents(visibility, status, created_at, id);

-- Decommissioning is terminal: the database refuses to bring an agent back.
CREATE TRIGGER IF NOT EXISTS agents_decommission_is_terminal
BEFORE UPDATE OF status ON agents
WHEN OLD.status = 'decommissioned' AND NEW.status <> 'decommissioned'
BEGIN
    SELECT RAISE(ABORT, 'agentidp_guard: decommissioned agents cannot change status');
END;

-- A credential authenticates one client: an organization's admin (agent_id NULL) or one agent.
-- Secrets are stored only as SHA-256 hashes; a rotated secret stays valid until previous_secret_expires_at.
CREATE TABLE IF NOT EXISTS credentials (
    id                          TEXT PRIMARY KEY,
    org_id                      TEXT NOT NULL REFERENCES orgs(id),
    agent_id                    TEXT REFERENCES agents(id),
    role                        TEXT NOT NULL CHECK (role IN ('admin', 'agent')),
    kind                        TEXT NOT NULL CHECK (kind IN ('client_secret', 'private_key_jwt')),
    client_id                   TEXT NOT NULL UNIQUE,
    secret_hash                 BLOB,
    previous_secret_hash        BLOB,
    previous_secret_expires_at  INTEGER,
    public_jwk                  TEXT,
    status                      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at                  INTEGER NOT NULL,
    rotated_at                  INTEGER,
    revoked_at                  INTEGER,
    last_used_at                INTEGER
);
CREATE INDEX IF NOT EXISTS credentials_agent ON credentials(org_id, agent_id, created_at);

-- Token signing keys. The newest unretired key signs; retired keys stay published until their tokens expire.
CREATE TABLE IF NOT EXISTS signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL CHECK (alg IN ('ES256', 'EdDSA')),
    private_key  BLOB NOT NULL,
    public_jwk   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    retired_at   INTEGER
);

-- Transaction guards: inserting a row here aborts the surrounding transaction. A guard statement inserts
-- only when its condition is violated, so a check and the writes it protects commit atomically
-- on the embedded database and over the HTTP protocol alike.
CREATE TABLE IF NOT EXISTS guard_failures (code TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS guard_failures_abort
BEFORE INSERT ON guard_failures
BEGIN
    SELECT RAISE(ABORT, 'agentidp_guard');
END;
