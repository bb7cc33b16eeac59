-- Usage per organization per calendar month (UTC). The key-value store counts in real time; these
-- rows persist the counters whenever usage is read, so a store that loses its data (eviction, an
-- in-process store restarting) never makes a month's figures go backwards.

CREATE TABLE IF NOT EXISTS usage_months (
    org_id          TEXT NOT NULL REFERENCES orgs(id),
    month           TEXT NOT NULL,  -- YYYY-MM, UTC
    tokens_issued   INTEGER NOT NULL DEFAULT 0,
    api_calls       INTEGER NOT NULL DEFAULT 0,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (org_id, month)
);
