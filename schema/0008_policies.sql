-- Organization policies in Cedar (validated at upload against the published schema), and one row per
-- organization that ever had a policy: its policy set's version, bumped in the transaction of every
-- policy change and read with the credential at issuance, so each instance recompiles exactly when
-- the set changed.

CREATE TABLE IF NOT EXISTS policies (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    cedar        TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    version      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS policies_org_page ON policies(org_id, created_at, id);

CREATE TABLE IF NOT EXISTS policy_sets (
    org_id   TEXT PRIMARY KEY REFERENCES orgs(id),
    version  INTEGER NOT NULL
);
