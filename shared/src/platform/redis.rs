//! Native key-value store on a real Redis over RESP, selected by `REDIS_URL`.

use async_trait::async_trait;
use redis::aio::ConnectionManager;

use crate::kv::{KeyValue, KvError};

pub struct RedisKv {
    connection: ConnectionManager,
}

impl RedisKv {
    pub async fn connect(url: &str) -> Result<Self, KvError> {
        let client = redis::Client::open(url).map_err(|e| KvError::Unavailable(e.to_string()))?;
        let connection = ConnectionManager::new(client)
            .await
            .map_err(|e| KvError::Unavailable(format!("connecting to Redis: {e}")))?;
        Ok(RedisKv { connection })
    }
}

fn unavailable(e: redis::RedisError) -> KvError {
    KvError::Unavailable(format!("Redis: {e}"))
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

    async fn set_if_absent(&self, key: &str, value: &str, ttl_seconds: u64) -> Result<bool, KvError> {
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
}
