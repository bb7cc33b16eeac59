//! The admission as a Lua script, so Redis and Upstash run it atomically in one round trip: the
//! key-value store's equivalent of a stored procedure, and the decoding of its reply.

use crate::ports::kv::{Admission, AdmissionOutcome, KvError, WindowState};

/// The admission as a Lua script, so Redis and Upstash run it atomically in one round trip.
/// KEYS: windows... reads... counters...; ARGV: now, hit id, counter TTL, window count, read count,
/// peek, the issue time of the token whose revocation entries the reads are (its `jti`, then
/// cut-offs; or empty),
/// then each window's length in ms and limit.
/// Rejected hits are not logged, so a caller hammering past the limit does not extend its own ban;
/// nor are the calls of a revoked token, which are refused anyway.
pub const ADMISSION_SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local windows = tonumber(ARGV[4])
local reads = tonumber(ARGV[5])
local record = ARGV[6] ~= '1'
if ARGV[7] ~= '' then
  local issued = tonumber(ARGV[7])
  local revoked = redis.call('GET', KEYS[windows + 1])
  for i = windows + 2, windows + reads do
    local cutoff = tonumber(redis.call('GET', KEYS[i]) or '')
    if cutoff and issued <= cutoff then revoked = true end
  end
  if revoked then
    record = false
    windows = 0
  end
end
local admitted = 1
local counts = {}
for i = 1, windows do
  local length = tonumber(ARGV[6 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - length)
  counts[i] = redis.call('ZCARD', KEYS[i])
  if counts[i] >= tonumber(ARGV[7 + 2 * i]) then admitted = 0 end
end
local states = {}
for i = 1, windows do
  if admitted == 1 and record then
    redis.call('ZADD', KEYS[i], now, ARGV[2])
    redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[6 + 2 * i]))
    counts[i] = counts[i] + 1
  end
  local oldest = now
  local head = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
  if head[2] then oldest = tonumber(head[2]) end
  states[#states + 1] = counts[i]
  states[#states + 1] = oldest
end
local first = tonumber(ARGV[4])
local values = {}
for i = first + 1, first + reads do
  values[#values + 1] = redis.call('GET', KEYS[i])
end
if admitted == 1 and record then
  for i = first + reads + 1, #KEYS do
    redis.call('INCR', KEYS[i])
    redis.call('EXPIRE', KEYS[i], ARGV[3])
  end
end
return {admitted, states, values}
";

/// The script's KEYS and ARGV for this admission.
pub fn script_arguments(admission: &Admission) -> (Vec<String>, Vec<String>) {
    let mut keys = Vec::with_capacity(
        admission.windows.len() + admission.reads.len() + admission.counters.len(),
    );
    keys.extend(admission.windows.iter().map(|w| w.key.clone()));
    keys.extend(admission.reads.iter().cloned());
    keys.extend(admission.counters.iter().cloned());
    let mut args = vec![
        admission.now_millis.to_string(),
        admission.hit_id.clone(),
        admission.counter_ttl_seconds.max(1).to_string(),
        admission.windows.len().to_string(),
        admission.reads.len().to_string(),
        if admission.peek { "1" } else { "0" }.to_owned(),
        admission
            .unless_revoked
            .map_or_else(String::new, |issued_at| issued_at.to_string()),
    ];
    for window in &admission.windows {
        args.push(window.window_millis.max(1).to_string());
        args.push(window.limit.to_string());
    }
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

/// Decodes `{admitted, {count, oldest}..., values}`; anything else is a store failure, not a panic.
pub fn decode_reply(reply: ScriptValue, reads: usize) -> Result<AdmissionOutcome, KvError> {
    let bad = || KvError::Unavailable("unexpected admission script reply".into());
    let ScriptValue::List(items) = reply else {
        return Err(bad());
    };
    let [admitted, states, values] = <[ScriptValue; 3]>::try_from(items).map_err(|_| bad())?;
    // Lua drops an empty table to an empty array, but be lenient with a nil too.
    let list = |value: ScriptValue| match value {
        ScriptValue::List(items) => Ok(items),
        ScriptValue::Nil => Ok(Vec::new()),
        _ => Err(bad()),
    };
    let values: Vec<Option<String>> = list(values)?
        .into_iter()
        .map(|v| match v {
            ScriptValue::Text(t) => Some(t),
            ScriptValue::Int(i) => Some(i.to_string()),
            _ => None,
        })
        .collect();
    let states = list(states)?;
    if values.len() != reads || states.len() % 2 != 0 {
        return Err(bad());
    }
    let number = |v: &ScriptValue| v.as_i64().ok_or_else(bad);
    let windows = states
        .chunks(2)
        .map(|pair| {
            Ok(WindowState {
                in_window: u64::try_from(number(&pair[0])?).unwrap_or(0),
                oldest_millis: number(&pair[1])?,
            })
        })
        .collect::<Result<Vec<_>, KvError>>()?;
    Ok(AdmissionOutcome {
        admitted: number(&admitted)? == 1,
        windows,
        values,
    })
}
