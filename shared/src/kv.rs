//! The key-value seam (revocation entries, replay guards, rate-limit windows, usage counters) and
//! its in-process store.

use std::collections::{HashMap, VecDeque};
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

    /// Runs one [`Admission`] atomically in one round trip.
    async fn admit(&self, admission: &Admission) -> Result<AdmissionOutcome, KvError>;
}

/// One rate-limited request in a single round trip: read some keys (revocation entries), record a
/// hit in a sliding-window log unless the window is full, and bump usage counters if admitted.
#[derive(Clone, Debug)]
pub struct Admission {
    /// The window to record the hit in; `None` admits unconditionally (limits off).
    pub window: Option<Window>,
    /// Keys read in the same round trip, answered in order like `get_many`.
    pub reads: Vec<String>,
    /// Counters incremented by one when the request is admitted.
    pub counters: Vec<String>,
    /// Lifetime of the counters, refreshed on every increment.
    pub counter_ttl_seconds: u64,
    /// The caller's clock: every instance must agree on it to within the precision that matters.
    pub now_millis: i64,
    /// Unique per hit, so two hits in the same millisecond are two entries of the log.
    pub hit_id: String,
}

/// An exact sliding window: at most `limit` admitted hits in any `window_millis` interval.
#[derive(Clone, Debug)]
pub struct Window {
    pub key: String,
    pub limit: u64,
    pub window_millis: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionOutcome {
    pub admitted: bool,
    /// Hits in the window after this request (including it when admitted).
    pub in_window: u64,
    /// When the oldest hit still in the window was recorded (`now` for an empty window).
    pub oldest_millis: i64,
    /// The values of `reads`, in order.
    pub values: Vec<Option<String>>,
}

/// The admission as a Lua script, so Redis and Upstash run it atomically in one round trip.
/// KEYS: [window] reads... counters...; ARGV: now, window ms, limit, hit id, counter TTL, reads, has window.
/// Rejected hits are not logged, so a caller hammering past the limit does not extend its own ban.
pub const ADMISSION_SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local first = 1
local admitted, count, oldest = 1, 0, now
if ARGV[7] == '1' then
  local key = KEYS[1]
  local window = tonumber(ARGV[2])
  first = 2
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  count = redis.call('ZCARD', key)
  if count < tonumber(ARGV[3]) then
    redis.call('ZADD', key, now, ARGV[4])
    redis.call('PEXPIRE', key, window)
    count = count + 1
  else
    admitted = 0
  end
  local head = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if head[2] then oldest = tonumber(head[2]) end
end
local reads = tonumber(ARGV[6])
local values = {}
for i = first, first + reads - 1 do
  values[#values + 1] = redis.call('GET', KEYS[i])
end
if admitted == 1 then
  for i = first + reads, #KEYS do
    redis.call('INCR', KEYS[i])
    redis.call('EXPIRE', KEYS[i], ARGV[5])
  end
end
return {admitted, count, oldest, values}
";

impl Admission {
    /// The script's KEYS and ARGV for this admission.
    pub fn script_arguments(&self) -> (Vec<String>, Vec<String>) {
        let mut keys = Vec::with_capacity(1 + self.reads.len() + self.counters.len());
        let (window_millis, limit) = match &self.window {
            Some(w) => {
                keys.push(w.key.clone());
                (w.window_millis.max(1), w.limit)
            }
            None => (1, 0),
        };
        keys.extend(self.reads.iter().cloned());
        keys.extend(self.counters.iter().cloned());
        let args = vec![
            self.now_millis.to_string(),
            window_millis.to_string(),
            limit.to_string(),
            self.hit_id.clone(),
            self.counter_ttl_seconds.max(1).to_string(),
            self.reads.len().to_string(),
            if self.window.is_some() { "1" } else { "0" }.to_owned(),
        ];
        (keys, args)
    }
}

/// A script reply element, as either client library decodes it.
#[derive(Debug)]
pub enum ScriptValue {
    Int(i64),
    Text(String),
    Nil,
    List(Vec<ScriptValue>),
}

impl ScriptValue {
    fn as_i64(&self) -> Option<i64> {
        match self {
            ScriptValue::Int(i) => Some(*i),
            ScriptValue::Text(t) => t.parse().ok(),
            _ => None,
        }
    }
}

impl AdmissionOutcome {
    /// Decodes `{admitted, count, oldest, values}`; anything else is a store failure, not a panic.
    pub fn from_script(reply: ScriptValue, reads: usize) -> Result<Self, KvError> {
        let bad = || KvError::Unavailable("unexpected admission script reply".into());
        let ScriptValue::List(mut items) = reply else {
            return Err(bad());
        };
        if items.len() != 4 {
            return Err(bad());
        }
        let values = match items.pop() {
            Some(ScriptValue::List(values)) => values,
            // Lua drops an empty table to an empty array, but be lenient with a nil too.
            Some(ScriptValue::Nil) => Vec::new(),
            _ => return Err(bad()),
        };
        let values: Vec<Option<String>> = values
            .into_iter()
            .map(|v| match v {
                ScriptValue::Text(t) => Some(t),
                ScriptValue::Int(i) => Some(i.to_string()),
                _ => None,
            })
            .collect();
        if values.len() != reads {
            return Err(bad());
        }
        let number = |v: &ScriptValue| v.as_i64().ok_or_else(bad);
        Ok(AdmissionOutcome {
            admitted: number(&items[0])? == 1,
            in_window: u64::try_from(number(&items[1])?).unwrap_or(0),
            oldest_millis: number(&items[2])?,
            values,
        })
    }
}

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
        let mut entries = self.lock();
        let (admitted, in_window, oldest_millis) = match &admission.window {
            None => (true, 0, now),
            Some(window) => {
                let span = window.window_millis.max(1);
                let (hits, length) = entries
                    .windows
                    .entry(window.key.clone())
                    .or_insert_with(|| (VecDeque::new(), span));
                *length = span;
                // Same bound as the script's ZREMRANGEBYSCORE: a hit exactly `span` ago has left.
                while hits.front().is_some_and(|t| *t <= now - span) {
                    hits.pop_front();
                }
                let admitted = (hits.len() as u64) < window.limit;
                if admitted {
                    // Keep the log sorted even if the clock steps back, as a sorted set would.
                    let at = hits.partition_point(|t| *t <= now);
                    hits.insert(at, now);
                }
                let oldest = hits.front().copied().unwrap_or(now);
                (admitted, hits.len() as u64, oldest)
            }
        };
        let clock_now = self.clock.now_millis();
        let values = admission
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
        if admitted {
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
            in_window,
            oldest_millis,
            values,
        })
    }
}
