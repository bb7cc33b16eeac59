-- Workload identity federation: trust policies say which CI workflows (by their OIDC claims) may act
-- as which agent, or register agents; registrations record which policy registered which agent, so
-- each policy's cap is counted inside the transaction that registers.

CREATE TABLE IF NOT EXISTS trust_policies (
    id                   TEXT PRIMARY KEY,
    org_id               TEXT NOT NULL REFERENCES orgs(id),
    provider             TEXT NOT NULL,
    repository           TEXT NOT NULL,              -- owner/name, or owner/<pattern>
    repository_owner     TEXT NOT NULL,              -- lowercased owner, for registration look-ups
    repository_id        TEXT,                       -- immutable; pinned on first use when absent
    repository_owner_id  TEXT,                       -- immutable; pinned on first use
    branch               TEXT,
    environment          TEXT,
    job_workflow_ref     TEXT,
    event_names          TEXT,                       -- JSON array, or NULL
    runner_environment   TEXT,
    agent_id             TEXT REFERENCES agents(id),
    allow_registration   INTEGER NOT NULL DEFAULT 0,
    max_registrations    INTEGER,
    scopes               TEXT,                       -- JSON array, or NULL
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    -- A policy names an agent or allows registration, never both.
    CHECK ((agent_id IS NULL) <> (allow_registration = 0))
);
CREATE INDEX IF NOT EXISTS trust_policies_org_page ON trust_policies(org_id, created_at, id);
CREATE INDEX IF NOT EXISTS trust_policies_agent ON trust_policies(org_id, agent_id);
CREATE INDEX IF NOT EXISTS trust_policies_registration
    ON trust_policies(provider, repository_owner) WHERE allow_registration = 1;

CREATE TABLE IF NOT EXISTS trust_policy_registrations (
    policy_id   TEXT NOT NULL,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    agent_id    TEXT NOT NULL REFERENCES agents(id),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (policy_id, agent_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS trust_policy_registrations_agent
    ON trust_policy_registrations(org_id, agent_id);
