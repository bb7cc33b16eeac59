-- Append-only, per-organization hash-chained audit trail. The database itself refuses updates and deletes.

CREATE TABLE IF NOT EXISTS audit_events (
    org_id       TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    id           TEXT NOT NULL UNIQUE,
    occurred_at  INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    agent_id     TEXT,
    target       TEXT,
    outcome      TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),
    details      TEXT NOT NULL DEFAULT '{}',
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL,
    PRIMARY KEY (org_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS audit_events_agent ON audit_events(org_id, agent_id, seq);
CREATE INDEX IF NOT EXISTS audit_events_action ON audit_events(org_id, action, seq);

CREATE TRIGGER IF NOT EXISTS audit_events_no_update
BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;

CREATE TRIGGER IF NOT EXISTS audit_events_no_delete
BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;
