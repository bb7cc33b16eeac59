//! The native default key-value store: `MemoryKv` as a complete read cache over a table in the embedded database, so revocations, replay guards and usage outlive the process.
//!
//! - `set` and `set_if_absent` (revoked `jti`s and subjects, used client-assertion `jti`s) are
//!   written to `kv_entries` through the database's group-committing writer before they return,
//!   so they survive a crash at no extra fsync per burst; the cache makes them visible at once.
//! - At start the cache is loaded with every unexpired row, so reads never touch the database.
//! - Rate-limit windows stay in memory only: losing them on restart at worst re-opens one window.
//! - Usage counters are counted in memory and persisted into `usage_months` every
//!   [`FLUSH_INTERVAL`] and at shutdown (never lowering a persisted figure); at start the cache is
//!   seeded from `usage_months`, so counting continues where it stopped. A `kill -9` loses at most
//!   the last interval's counts.
//! - Expired rows are purged in bounded batches, so the table never outgrows the live entries.
//!
//! One process owns a data directory (the server locks it), so the cache is never stale; the
//! table write of `set_if_absent` is still conditional, so the table alone would also refuse a
//! second claim of a live key.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::usage::month_of;
use crate::platform::memory_kv::MemoryKv;
use crate::ports::kv::{Admission, AdmissionOutcome, KeyValue, KvError};
use crate::ports::runtime::Clock;
use crate::ports::sql::{Change, Database, DbError, Statement};
use crate::store::kv_keys::{self, API_CALLS, TOKENS_ISSUED, USAGE_COUNTER_TTL_SECONDS};
use crate::store::{kv_entries, usage};

/// How often usage counters are persisted: the most a `kill -9` can lose.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(10);
/// How often expired rows are purged. Entries live at most a token lifetime (one day), so a
/// minute of dead rows is noise.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);
/// Rows deleted per commit: each batch is one short job for the writer, never a long stall.
const PURGE_BATCH: i64 = 1000;

pub struct DurableKv {
    cache: MemoryKv,
    db: Arc<dyn Database>,
    clock: Arc<dyn Clock>,
    /// Counter keys incremented since the last flush.
    dirty_counters: Mutex<HashSet<String>>,
}

fn unavailable(e: DbError) -> KvError {
    KvError::Unavailable(format!("durable key-value table: {e}"))
}

/// Whole seconds from `now` until `expires_at` (milliseconds), rounded up so a reloaded entry
/// never expires early.
fn ttl_until(expires_at: i64, now: i64) -> u64 {
    u64::try_from((expires_at - now + 999) / 1000)
        .unwrap_or(1)
        .max(1)
}

impl DurableKv {
    /// Loads the unexpired entries and this and last month's usage into a fresh cache.
    pub async fn open(db: Arc<dyn Database>, clock: Arc<dyn Clock>) -> Result<Self, DbError> {
        let cache = MemoryKv::new(clock.clone());
        let now = clock.now_millis();
        let rows = kv_entries::live(db.as_ref(), now).await?;
        for entry in &rows {
            // The in-process store cannot fail.
            let _ = cache
                .set(&entry.key, &entry.value, ttl_until(entry.expires_at, now))
                .await;
        }
        let this_month = month_of(now);
        let last_month = month_of(this_month.start_millis - 1);
        let usage_rows = usage::since(db.as_ref(), &last_month.label).await?;
        for row in &usage_rows {
            for (counter, count) in [
                (TOKENS_ISSUED, row.tokens_issued),
                (API_CALLS, row.api_calls),
            ] {
                let key = kv_keys::usage_counter(&row.org_id, &row.month, counter);
                let _ = cache
                    .set(&key, &count.to_string(), USAGE_COUNTER_TTL_SECONDS)
                    .await;
            }
        }
        tracing::debug!(
            entries = rows.len(),
            usage_months = usage_rows.len(),
            "durable key-value store loaded"
        );
        Ok(DurableKv {
            cache,
            db,
            clock,
            dirty_counters: Mutex::new(HashSet::new()),
        })
    }

    /// The entry's write: unconditional, or (`only_if_expired`) only if the key holds nothing live.
    fn upsert(&self, key: &str, value: &str, ttl_seconds: u64, only_if_expired: bool) -> Statement {
        let now = self.clock.now_millis();
        let ttl_millis = i64::try_from(ttl_seconds.max(1))
            .unwrap_or(i64::MAX / 2000)
            .saturating_mul(1000);
        let expires_at = now.saturating_add(ttl_millis);
        if only_if_expired {
            kv_entries::claim(key, value, expires_at, now)
        } else {
            kv_entries::put(key, value, expires_at)
        }
    }

    /// Persists the usage counters incremented since the last flush into `usage_months`.
    pub async fn flush_usage(&self) -> Result<(), DbError> {
        let keys: Vec<String> = {
            let mut dirty = self
                .dirty_counters
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            dirty.drain().collect()
        };
        if keys.is_empty() {
            return Ok(());
        }
        // The cache cannot fail; a key that expired meanwhile has nothing left to persist.
        let values = self.cache.get_many(&keys).await.unwrap_or_default();
        // (org, month) -> (tokens issued, api calls): both counters go into one row. A counter
        // not incremented since the last flush stays 0 here, and MAX keeps its stored figure.
        let mut months: BTreeMap<(&str, &str), (i64, i64)> = BTreeMap::new();
        for (key, value) in keys.iter().zip(&values) {
            let Some((org_id, month, counter)) = kv_keys::parse_usage_counter(key) else {
                continue;
            };
            let count = value.as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
            let row = months.entry((org_id, month)).or_default();
            match counter {
                TOKENS_ISSUED => row.0 = count,
                API_CALLS => row.1 = count,
                _ => {}
            }
        }
        let now = self.clock.now_millis();
        let mut change = Change::new();
        for ((org_id, month), (tokens, calls)) in months {
            change = change.statement(usage::raise(org_id, month, tokens, calls, now));
        }
        if let Err(e) = self.db.commit(change).await {
            // Counted again at the next flush rather than lost.
            let mut dirty = self
                .dirty_counters
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            dirty.extend(keys);
            return Err(e);
        }
        Ok(())
    }

    /// Deletes expired rows, a bounded batch per commit; returns how many.
    pub async fn purge_expired(&self) -> Result<u64, DbError> {
        let mut purged = 0;
        loop {
            let now = self.clock.now_millis();
            let deleted = self
                .db
                .commit(Change::new().statement(kv_entries::purge_expired(now, PURGE_BATCH)))
                .await?
                .first()
                .copied()
                .unwrap_or(0);
            purged += deleted;
            if deleted < PURGE_BATCH.unsigned_abs() {
                return Ok(purged);
            }
        }
    }

    /// Flushes usage and purges expired rows periodically, for as long as the runtime runs.
    pub fn spawn_maintenance(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let kv = Arc::clone(self);
        tokio::spawn(async move {
            let mut flush = tokio::time::interval(FLUSH_INTERVAL);
            let mut purge = tokio::time::interval(PURGE_INTERVAL);
            loop {
                tokio::select! {
                    _ = flush.tick() => {
                        if let Err(e) = kv.flush_usage().await {
                            tracing::warn!(error = %e, "persisting usage counters failed; retrying");
                        }
                    }
                    _ = purge.tick() => {
                        match kv.purge_expired().await {
                            Ok(0) => {}
                            Ok(n) => tracing::debug!(rows = n, "purged expired key-value rows"),
                            Err(e) => tracing::warn!(error = %e, "purging expired key-value rows failed"),
                        }
                    }
                }
            }
        })
    }
}

#[async_trait]
impl KeyValue for DurableKv {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, KvError> {
        self.cache.get_many(keys).await
    }

    async fn set(&self, key: &str, value: &str, ttl_seconds: u64) -> Result<(), KvError> {
        // Cached first, so the entry (a revocation) takes effect at once even if the write fails.
        self.cache.set(key, value, ttl_seconds).await?;
        let statement = self.upsert(key, value, ttl_seconds, false);
        self.db
            .commit(Change::new().statement(statement))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl_seconds: u64,
    ) -> Result<bool, KvError> {
        // The cache decides races within the process atomically; only the winner writes.
        if !self.cache.set_if_absent(key, value, ttl_seconds).await? {
            return Ok(false);
        }
        // A failed write leaves the key claimed in the cache: the caller gets an error and the
        // single-use value stays used, which fails closed.
        let statement = self.upsert(key, value, ttl_seconds, true);
        let changed = self
            .db
            .commit(Change::new().statement(statement))
            .await
            .map_err(unavailable)?;
        Ok(changed.first().copied() == Some(1))
    }

    async fn admit(&self, admission: &Admission) -> Result<AdmissionOutcome, KvError> {
        let outcome = self.cache.admit(admission).await?;
        if outcome.admitted && !admission.counters.is_empty() {
            let mut dirty = self
                .dirty_counters
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            dirty.extend(admission.counters.iter().cloned());
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::native::{Durability, EmbeddedDatabase};
    use std::sync::atomic::{AtomicI64, Ordering};

    struct PinnedClock(AtomicI64);

    impl Clock for PinnedClock {
        fn now_millis(&self) -> i64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    async fn database(name: &str) -> (Arc<dyn Database>, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("agentidp-kv-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = EmbeddedDatabase::open(&dir.join("kv.db"), Durability::Normal)
            .await
            .unwrap();
        crate::store::migrations::apply(&db, &PinnedClock(AtomicI64::new(0)))
            .await
            .unwrap();
        (Arc::new(db), dir)
    }

    #[tokio::test]
    async fn entries_outlive_the_cache_until_they_expire() {
        let (db, dir) = database("reload").await;
        let clock = Arc::new(PinnedClock(AtomicI64::new(1_000_000)));
        let kv = DurableKv::open(db.clone(), clock.clone()).await.unwrap();
        kv.set("revoked:jti:a", "1", 60).await.unwrap();
        kv.set("revoked:jti:short", "1", 1).await.unwrap();
        assert!(kv.set_if_absent("assertion:c:j", "1", 300).await.unwrap());
        assert!(!kv.set_if_absent("assertion:c:j", "1", 300).await.unwrap());
        drop(kv);

        // A new cache over the same table: what has not expired is back, the rest is not loaded.
        clock.0.store(1_030_000, Ordering::SeqCst);
        let kv = DurableKv::open(db.clone(), clock.clone()).await.unwrap();
        let keys = ["revoked:jti:a", "revoked:jti:short", "assertion:c:j"].map(String::from);
        assert_eq!(
            kv.get_many(&keys).await.unwrap(),
            vec![Some("1".into()), None, Some("1".into())]
        );
        assert!(!kv.set_if_absent("assertion:c:j", "1", 300).await.unwrap());

        // Expired rows are purged; live ones stay.
        assert_eq!(kv.purge_expired().await.unwrap(), 1);
        clock.0.store(2_000_000, Ordering::SeqCst);
        assert_eq!(kv.purge_expired().await.unwrap(), 2);
        assert!(kv.set_if_absent("assertion:c:j", "1", 300).await.unwrap());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn the_table_refuses_a_live_key_the_cache_does_not_know() {
        let (db, dir) = database("conditional").await;
        let clock = Arc::new(PinnedClock(AtomicI64::new(5_000_000)));
        let first = DurableKv::open(db.clone(), clock.clone()).await.unwrap();
        let second = DurableKv::open(db.clone(), clock.clone()).await.unwrap();
        assert!(first.set_if_absent("assertion:c:x", "1", 60).await.unwrap());
        assert!(!second
            .set_if_absent("assertion:c:x", "1", 60)
            .await
            .unwrap());
        let _ = std::fs::remove_dir_all(dir);
    }
}
