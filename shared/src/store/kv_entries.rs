//! The `kv_entries` table: the embedded default's durable copy of key-value entries (revocations,
//! replay guards), each with the moment it expires.

use crate::ports::sql::{Database, DbError, Statement};

/// A stored entry.
pub struct Entry {
    pub key: String,
    pub value: String,
    pub expires_at: i64,
}

/// Every entry still live at `now`.
pub async fn live(db: &dyn Database, now_millis: i64) -> Result<Vec<Entry>, DbError> {
    let statement =
        Statement::new("SELECT key, value, expires_at FROM kv_entries WHERE expires_at > ?1")
            .bind(now_millis);
    db.query(statement)
        .await?
        .iter()
        .map(|row| {
            Ok(Entry {
                key: row.get("key")?,
                value: row.get("value")?,
                expires_at: row.get("expires_at")?,
            })
        })
        .collect()
}

/// Writes an entry, replacing whatever the key held.
pub fn put(key: &str, value: &str, expires_at: i64) -> Statement {
    Statement::new(
        "INSERT INTO kv_entries (key, value, expires_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
    )
    .bind(key)
    .bind(value)
    .bind(expires_at)
}

/// Writes an entry only if the key holds nothing live at `now`: one row changed means claimed.
pub fn claim(key: &str, value: &str, expires_at: i64, now_millis: i64) -> Statement {
    Statement::new(
        "INSERT INTO kv_entries (key, value, expires_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at \
         WHERE kv_entries.expires_at <= ?4",
    )
    .bind(key)
    .bind(value)
    .bind(expires_at)
    .bind(now_millis)
}

/// Deletes up to `batch` entries expired at `now`, oldest first.
pub fn purge_expired(now_millis: i64, batch: i64) -> Statement {
    Statement::new(
        "DELETE FROM kv_entries WHERE key IN (SELECT key FROM kv_entries \
         WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)",
    )
    .bind(now_millis)
    .bind(batch)
}
