//! The in-process key-value store: the native server's default, sharing nothing between processes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::domain::revocation::revoked_by;
use crate::ports::kv::{Admission, AdmissionOutcome, KeyValue, KvError, Window, WindowState};
use crate::ports::runtime::Clock;

/// In-process store: the default of the native server, sharing nothing between processes.
pub struct MemoryKv {
    clock: Arc<dyn Clock>,
    entries: Mutex<MemoryEntries>,
}

#[derive(Default)]
struct MemoryEntries {
    map: HashMap<String, (String, i64)>,
    /// Sliding-window logs: admitted hit times, oldest first, and the window length.
    windows: HashMap<String, (VecDeque<i64>, i64)>,
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
            self.windows
                .retain(|_, (hits, window)| hits.back().is_some_and(|t| *t > now - *window));
            self.writes_since_sweep = 0;
        }
    }
}

fn window_state(hits: &VecDeque<i64>, now: i64) -> WindowState {
    WindowState {
        in_window: hits.len() as u64,
        oldest_millis: hits.front().copied().unwrap_or(now),
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

    async fn admit(&self, admission: &Admission) -> Result<AdmissionOutcome, KvError> {
        let now = admission.now_millis;
        let clock_now = self.clock.now_millis();
        let mut entries = self.lock();
        let values: Vec<Option<String>> = admission
            .reads
            .iter()
            .map(|k| {
                entries
                    .map
                    .get(k)
                    .filter(|(_, expires)| *expires > clock_now)
                    .map(|(v, _)| v.clone())
            })
            .collect();
        // Same rule as the script: a revoked token's call counts nowhere.
        let revoked = admission
            .unless_revoked
            .is_some_and(|issued_at| revoked_by(issued_at, &values));
        let windows: &[Window] = if revoked { &[] } else { &admission.windows };
        let mut admitted = true;
        for window in windows {
            let span = window.window_millis.max(1);
            // A peek at a log that does not exist leaves none behind, as a sorted set would.
            if let Some((hits, length)) = entries.windows.get_mut(&window.key) {
                *length = span;
                // Same bound as the script's ZREMRANGEBYSCORE: a hit exactly `span` ago has left.
                while hits.front().is_some_and(|t| *t <= now - span) {
                    hits.pop_front();
                }
                admitted &= (hits.len() as u64) < window.limit;
            } else {
                admitted &= window.limit > 0;
            }
        }
        let record = admitted && !admission.peek && !revoked;
        let mut states = Vec::with_capacity(windows.len());
        for window in windows {
            let span = window.window_millis.max(1);
            let state = if record {
                let (hits, _) = entries
                    .windows
                    .entry(window.key.clone())
                    .or_insert_with(|| (VecDeque::new(), span));
                // Keep the log sorted even if the clock steps back, as a sorted set would.
                let at = hits.partition_point(|t| *t <= now);
                hits.insert(at, now);
                window_state(hits, now)
            } else {
                entries
                    .windows
                    .get(&window.key)
                    .map_or(window_state(&VecDeque::new(), now), |(hits, _)| {
                        window_state(hits, now)
                    })
            };
            states.push(state);
        }
        if record {
            let expires = self.expiry(admission.counter_ttl_seconds);
            for key in &admission.counters {
                let current = entries
                    .map
                    .get(key)
                    .filter(|(_, e)| *e > clock_now)
                    .and_then(|(v, _)| v.parse::<i64>().ok())
                    .unwrap_or(0);
                entries.map.insert(
                    key.clone(),
                    (current.saturating_add(1).to_string(), expires),
                );
            }
        }
        entries.after_write(clock_now);
        Ok(AdmissionOutcome {
            admitted,
            windows: states,
            values,
        })
    }
}
