//! The admission as a Lua script, so Redis and Upstash run it atomically in one round trip: the
//! key-value store's equivalent of a stored procedure, and the decoding of its reply.

use crate::ports::kv::{Admission, AdmissionOutcome, KvError};

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

/// The script's KEYS and ARGV for this admission.
pub fn script_arguments(admission: &Admission) -> (Vec<String>, Vec<String>) {
    let mut keys = Vec::with_capacity(1 + admission.reads.len() + admission.counters.len());
    let (window_millis, limit) = match &admission.window {
        Some(w) => {
            keys.push(w.key.clone());
            (w.window_millis.max(1), w.limit)
        }
        None => (1, 0),
    };
    keys.extend(admission.reads.iter().cloned());
    keys.extend(admission.counters.iter().cloned());
    let args = vec![
        admission.now_millis.to_string(),
        window_millis.to_string(),
        limit.to_string(),
        admission.hit_id.clone(),
        admission.counter_ttl_seconds.max(1).to_string(),
        admission.reads.len().to_string(),
        if admission.window.is_some() { "1" } else { "0" }.to_owned(),
    ];
    (keys, args)
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

/// Decodes `{admitted, count, oldest, values}`; anything else is a store failure, not a panic.
pub fn decode_reply(reply: ScriptValue, reads: usize) -> Result<AdmissionOutcome, KvError> {
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
