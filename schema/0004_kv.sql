-- Key-value entries that must outlive the process when no Redis is configured: revoked token ids,
-- revoked subjects and used client-assertion ids. The native server keeps them in memory as a read
-- cache and writes each one here before acknowledging it; expired rows are purged in batches.
-- Expiry is in Unix milliseconds. Rate-limit windows and usage counters are not stored here.

CREATE TABLE IF NOT EXISTS kv_entries (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
-- The purge walks expired rows oldest first without scanning live ones.
CREATE INDEX IF NOT EXISTS kv_entries_expiry ON kv_entries(expires_at);
