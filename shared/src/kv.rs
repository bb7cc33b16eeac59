//! The key-value seam (revocation entries, replay guards, later rate limits) and its in-process store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::runtime::Clock;

#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("key-value store unavailable: {0}")]
    Unavailable(String),
}

/// What a platform provides for short-lived shared state. TTLs are in whole seconds (at least 1).
#[async_trait]
pub trait KeyValue: Send + Sync + 'static {
    /// Reads several keys in one round trip; absent or expired keys are `None`.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, KvError>;

    /// Sets a key that expires after `ttl_seconds`.
    async fn set(&self, key: &str, value: &str, ttl_seconds: u64) -> Result<(), KvError>;

    /// Sets a key only if absent; `true` when this call set it (single-use values such as `jti`s).
    async fn set_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl_seconds: u64,
    ) -> Result<bool, KvError>;
}

/// In-process store: the default of the native server, sharing nothing between processes.
pub struct MemoryKv {
    clock: Arc<dyn Clock>,
    entries: Mutex<MemoryEntries>,
}

#[derive(Default)]
struct MemoryEntries {
    map: HashMap<String, (String, i64)>,
    writes_since_sweep: usize,
}

impl MemoryKv {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        MemoryKv {
            clock,
            entries: Mutex::new(MemoryEntries::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryEntries> {
        // A panic while holding the lock cannot leave the map half-written, so poisoning is moot.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn expiry(&self, ttl_seconds: u64) -> i64 {
        let ttl_ms = i64::try_from(ttl_seconds.max(1)).unwrap_or(i64::MAX / 2) * 1000;
        self.clock.now_millis().saturating_add(ttl_ms)
    }
}

impl MemoryEntries {
    /// Expired entries are dropped in amortised sweeps so the map never outgrows live entries for long.
    fn after_write(&mut self, now: i64) {
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= 1024 && self.writes_since_sweep >= self.map.len() / 2 {
            self.map.retain(|_, (_, expires)| *expires > now);
            self.writes_since_sweep = 0;
        }
    }
}

#[async_trait]
impl KeyValue for MemoryKv {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, KvError> {
        let now = self.clock.now_millis();
        let entries = self.lock();
        Ok(keys
            .iter()
            .map(|k| {
                entries
                    .map
                    .get(k)
                    .filter(|(_, expires)| *expires > now)
                    .map(|(v, _)| v.clone())
            })
            .collect())
    }

    async fn set(&self, key: &str, value: &str, ttl_seconds: u64) -> Result<(), KvError> {
        let now = self.clock.now_millis();
        let expires = self.expiry(ttl_seconds);
        let mut entries = self.lock();
        entries
            .map
            .insert(key.to_owned(), (value.to_owned(), expires));
        entries.after_write(now);
        Ok(())
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl_seconds: u64,
    ) -> Result<bool, KvError> {
        let now = self.clock.now_millis();
        let expires = self.expiry(ttl_seconds);
        let mut entries = self.lock();
        let live = entries.map.get(key).is_some_and(|(_, e)| *e > now);
        if live {
            return Ok(false);
        }
        entries
            .map
            .insert(key.to_owned(), (value.to_owned(), expires));
        entries.after_write(now);
        Ok(true)
    }
}
