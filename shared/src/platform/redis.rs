//! Native key-value store on a real Redis over RESP, selected by `REDIS_URL`.

use async_trait::async_trait;
use redis::aio::ConnectionManager;

use crate::ports::kv::{Admission, AdmissionOutcome, KeyValue, KvError};
use crate::store::admission_script::{
    decode_reply, script_arguments, ScriptValue, ADMISSION_SCRIPT,
};

pub struct RedisKv {
    connection: ConnectionManager,
    /// Sent as `EVALSHA`, falling back to `EVAL` (which also loads it) after a `SCRIPT FLUSH`.
    admission: redis::Script,
}

impl RedisKv {
    pub async fn connect(url: &str) -> Result<Self, KvError> {
        let client = redis::Client::open(url).map_err(|e| KvError::Unavailable(e.to_string()))?;
        let connection = ConnectionManager::new(client)
            .await
            .map_err(|e| KvError::Unavailable(format!("connecting to Redis: {e}")))?;
        Ok(RedisKv {
            connection,
            admission: redis::Script::new(ADMISSION_SCRIPT),
        })
    }
}

fn unavailable(e: redis::RedisError) -> KvError {
    KvError::Unavailable(format!("Redis: {e}"))
}

fn script_value(value: redis::Value) -> ScriptValue {
    match value {
        redis::Value::Int(i) => ScriptValue::Int(i),
        redis::Value::BulkString(b) => ScriptValue::Text(String::from_utf8_lossy(&b).into_owned()),
        redis::Value::SimpleString(s) => ScriptValue::Text(s),
        redis::Value::Okay => ScriptValue::Text("OK".into()),
        redis::Value::Array(items) => {
            ScriptValue::List(items.into_iter().map(script_value).collect())
        }
        _ => ScriptValue::Nil,
    }
}

#[async_trait]
impl KeyValue for RedisKv {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, KvError> {
        let mut connection = self.connection.clone();
        redis::cmd("MGET")
            .arg(keys)
            .query_async(&mut connection)
            .await
            .map_err(unavailable)
    }

    async fn set(&self, key: &str, value: &str, ttl_seconds: u64) -> Result<(), KvError> {
        let mut connection = self.connection.clone();
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("EX")
            .arg(ttl_seconds.max(1))
            .query_async::<()>(&mut connection)
            .await
            .map_err(unavailable)
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl_seconds: u64,
    ) -> Result<bool, KvError> {
        let mut connection = self.connection.clone();
        let reply: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("NX")
            .arg("EX")
            .arg(ttl_seconds.max(1))
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(reply.is_some())
    }

    async fn admit(&self, admission: &Admission) -> Result<AdmissionOutcome, KvError> {
        let mut connection = self.connection.clone();
        let (keys, args) = script_arguments(admission);
        let mut invocation = self.admission.prepare_invoke();
        invocation.key(keys).arg(args);
        let reply: redis::Value = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;
        decode_reply(script_value(reply), admission.reads.len())
    }
}
