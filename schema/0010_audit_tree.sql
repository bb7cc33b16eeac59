-- The audit trail as verifiable logs (RFC 9162 Merkle trees, one per organization, over the chain
-- hashes), their signed checkpoints, and retention.

-- Nodes of perfect subtrees at level 4 and above, written as each completes in the transaction of
-- the event completing it; lower levels are recomputed from the events of their 16-event block.
CREATE TABLE IF NOT EXISTS audit_tree_nodes (
    org_id  TEXT NOT NULL,
    level   INTEGER NOT NULL CHECK (level >= 4),
    idx     INTEGER NOT NULL,
    hash    BLOB NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (org_id, level, idx)
) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS audit_tree_nodes_no_update
BEFORE UPDATE ON audit_tree_nodes
BEGIN
    SELECT RAISE(ABORT, 'audit tree nodes are append-only');
END;

-- Signed checkpoints (C2SP tlog-checkpoint notes), one per organization and tree size.
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    org_id      TEXT NOT NULL,
    size        INTEGER NOT NULL CHECK (size >= 0),
    root        BLOB NOT NULL CHECK (length(root) = 32),
    note        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, size)
) WITHOUT ROWID;

-- The deployment's one checkpoint signing key (an Ed25519 seed), separate from token keys.
CREATE TABLE IF NOT EXISTS audit_checkpoint_key (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    seed        BLOB NOT NULL CHECK (length(seed) = 32),
    created_at  INTEGER NOT NULL
);

-- How far retention may remove an organization's events: only whole 16-event blocks, and only
-- events a stored checkpoint covers, so what remains still proves inclusion and consistency.
CREATE TABLE IF NOT EXISTS audit_retention (
    org_id             TEXT PRIMARY KEY,
    removable_through  INTEGER NOT NULL CHECK (removable_through >= 0 AND removable_through % 16 = 0),
    removed_at         INTEGER NOT NULL
);

CREATE TRIGGER IF NOT EXISTS audit_retention_covered_insert
BEFORE INSERT ON audit_retention
WHEN NEW.removable_through > COALESCE((SELECT MAX(size) FROM audit_checkpoints WHERE org_id = NEW.org_id), 0)
BEGIN
    SELECT RAISE(ABORT, 'audit events can only be removed behind a checkpoint');
END;

CREATE TRIGGER IF NOT EXISTS audit_retention_covered_update
BEFORE UPDATE ON audit_retention
WHEN NEW.removable_through > COALESCE((SELECT MAX(size) FROM audit_checkpoints WHERE org_id = NEW.org_id), 0)
  OR NEW.removable_through < OLD.removable_through
BEGIN
    SELECT RAISE(ABORT, 'audit events can only be removed behind a checkpoint');
END;

-- Events stay append-only except those retention has released.
DROP TRIGGER IF EXISTS audit_events_no_delete;
CREATE TRIGGER IF NOT EXISTS audit_events_delete_only_released
BEFORE DELETE ON audit_events
WHEN OLD.seq > COALESCE((SELECT removable_through FROM audit_retention WHERE org_id = OLD.org_id), 0)
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;

-- Token counters kept as events are written: one row per organization, hour, agent, grant and
-- outcome, so analytics never scan the audit table.
CREATE TABLE IF NOT EXISTS token_counts (
    org_id    TEXT NOT NULL,
    hour      INTEGER NOT NULL,
    agent_id  TEXT NOT NULL,
    grant_type TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (org_id, hour, agent_id, grant_type, outcome)
) WITHOUT ROWID;
