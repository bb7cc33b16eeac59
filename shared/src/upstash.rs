//! Upstash Redis over its REST API (JSON command arrays, bearer token): the key-value store of the
//! edge builds. Written by hand over the platform's fetch because `upstash-redis-rs` is built on
//! `reqwest` 0.11, which cannot run on WASI.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value as Json;

use crate::kv::{KeyValue, KvError};
use crate::outbound::{body_excerpt, Outbound, OutboundRequest};

pub struct UpstashKv {
    http: Arc<dyn Outbound>,
    url: String,
    token: String,
}

impl UpstashKv {
    pub fn new(http: Arc<dyn Outbound>, url: &str, token: String) -> Self {
        UpstashKv {
            http,
            url: url.trim_end_matches('/').to_owned(),
            token,
        }
    }

    /// Runs one command; Upstash answers `{"result": ...}` or `{"error": "..."}`.
    pub async fn command(&self, command: &[&str]) -> Result<Json, KvError> {
        let body = serde_json::to_vec(command).map_err(|e| KvError::Unavailable(e.to_string()))?;
        let response = self
            .http
            .send(OutboundRequest::post_json(self.url.clone(), Some(&self.token), body))
            .await
            .map_err(|e| KvError::Unavailable(e.to_string()))?;
        let parsed: Json = serde_json::from_slice(&response.body).map_err(|_| {
            KvError::Unavailable(format!(
                "Upstash answered {} with a non-JSON body: {}",
                response.status,
                body_excerpt(&response.body)
            ))
        })?;
        if let Some(error) = parsed.get("error").and_then(Json::as_str) {
            return Err(KvError::Unavailable(format!("Upstash error: {error}")));
        }
        if !(200..300).contains(&response.status) {
            return Err(KvError::Unavailable(format!("Upstash answered {}", response.status)));
        }
        Ok(parsed.get("result").cloned().unwrap_or(Json::Null))
    }
}

#[async_trait]
impl KeyValue for UpstashKv {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, KvError> {
        let mut command = vec!["MGET"];
        command.extend(keys.iter().map(String::as_str));
        match self.command(&command).await? {
            Json::Array(values) if values.len() == keys.len() => Ok(values
                .into_iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect()),
            other => Err(KvError::Unavailable(format!("unexpected MGET result {other}"))),
        }
    }

    async fn set(&self, key: &str, value: &str, ttl_seconds: u64) -> Result<(), KvError> {
        let ttl = ttl_seconds.max(1).to_string();
        self.command(&["SET", key, value, "EX", &ttl]).await.map(|_| ())
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl_seconds: u64) -> Result<bool, KvError> {
        let ttl = ttl_seconds.max(1).to_string();
        let result = self.command(&["SET", key, value, "NX", "EX", &ttl]).await?;
        Ok(result.as_str() == Some("OK"))
    }
}
