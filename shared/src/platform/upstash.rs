//! Upstash Redis over its REST API (JSON command arrays, bearer token): the key-value store of the
//! edge builds. Written by hand over the platform's fetch because `upstash-redis-rs` is built on
//! `reqwest` 0.11, which cannot run on WASI.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value as Json;

use crate::ports::kv::{Admission, AdmissionOutcome, KeyValue, KvError};
use crate::ports::outbound::{body_excerpt, Outbound, OutboundRequest};
use crate::store::admission_script::{
    decode_reply, script_arguments, ScriptValue, ADMISSION_SCRIPT,
};

pub struct UpstashKv {
    http: Arc<dyn Outbound>,
    url: String,
    token: String,
    /// SHA1 of the admission script once `SCRIPT LOAD`ed, so each admission sends only `EVALSHA`.
    admission_sha: Mutex<Option<String>>,
}

impl UpstashKv {
    pub fn new(http: Arc<dyn Outbound>, url: &str, token: String) -> Self {
        UpstashKv {
            http,
            url: url.trim_end_matches('/').to_owned(),
            token,
            admission_sha: Mutex::new(None),
        }
    }

    /// Runs one command; Upstash answers `{"result": ...}` or `{"error": "..."}`.
    pub async fn command(&self, command: &[&str]) -> Result<Json, KvError> {
        self.command_or_redis_error(command)
            .await?
            .map_err(|error| KvError::Unavailable(format!("Upstash error: {error}")))
    }

    /// Like `command`, but hands back the error Redis itself answered (e.g. `NOSCRIPT`).
    async fn command_or_redis_error(
        &self,
        command: &[&str],
    ) -> Result<Result<Json, String>, KvError> {
        let body = serde_json::to_vec(command).map_err(|e| KvError::Unavailable(e.to_string()))?;
        let response = self
            .http
            .send(OutboundRequest::post_json(
                self.url.clone(),
                Some(&self.token),
                body,
            ))
            .await
            .map_err(|e| KvError::Unavailable(e.to_string()))?;
        decode_response(response.status, &response.body)
    }

    fn cached_sha(&self) -> Option<String> {
        self.admission_sha
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn cache_sha(&self, sha: Option<String>) {
        *self.admission_sha.lock().unwrap_or_else(|p| p.into_inner()) = sha;
    }
}

/// One command's HTTP answer: Upstash's `{"result": ...}`, the error Redis answered
/// (`{"error": "..."}`), or why the answer is unusable.
pub fn decode_response(status: u16, body: &[u8]) -> Result<Result<Json, String>, KvError> {
    let parsed: Json = serde_json::from_slice(body).map_err(|_| {
        KvError::Unavailable(format!(
            "Upstash answered {status} with a non-JSON body: {}",
            body_excerpt(body)
        ))
    })?;
    if let Some(error) = parsed.get("error").and_then(Json::as_str) {
        return Ok(Err(error.to_owned()));
    }
    if !(200..300).contains(&status) {
        return Err(KvError::Unavailable(format!("Upstash answered {status}")));
    }
    Ok(Ok(parsed.get("result").cloned().unwrap_or(Json::Null)))
}

/// An `MGET` result: one value (or nil) per key asked for.
pub fn decode_mget(result: Json, key_count: usize) -> Result<Vec<Option<String>>, KvError> {
    match result {
        Json::Array(values) if values.len() == key_count => Ok(values
            .into_iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect()),
        other => Err(KvError::Unavailable(format!(
            "unexpected MGET result {other}"
        ))),
    }
}

/// A script's JSON result as the admission decoder reads Redis replies.
pub fn script_value(value: Json) -> ScriptValue {
    match value {
        Json::Number(n) => n.as_i64().map_or(ScriptValue::Nil, ScriptValue::Int),
        Json::String(s) => ScriptValue::Text(s),
        Json::Array(items) => ScriptValue::List(items.into_iter().map(script_value).collect()),
        _ => ScriptValue::Nil,
    }
}

impl UpstashKv {
    /// `EVALSHA` when the script is known to be loaded; after a `NOSCRIPT` (a flushed script cache)
    /// one `EVAL` runs it and the next admission loads it again.
    async fn run_admission(&self, keys: &[String], args: &[String]) -> Result<Json, KvError> {
        let sha = match self.cached_sha() {
            Some(sha) => sha,
            None => {
                let loaded = self.command(&["SCRIPT", "LOAD", ADMISSION_SCRIPT]).await?;
                let sha = loaded
                    .as_str()
                    .ok_or_else(|| KvError::Unavailable("SCRIPT LOAD returned no SHA".into()))?
                    .to_owned();
                self.cache_sha(Some(sha.clone()));
                sha
            }
        };
        let key_count = keys.len().to_string();
        let tail = || keys.iter().chain(args.iter()).map(String::as_str);
        let mut command = vec!["EVALSHA", sha.as_str(), key_count.as_str()];
        command.extend(tail());
        match self.command_or_redis_error(&command).await? {
            Ok(result) => Ok(result),
            // Upstash answers `NOSCRIPT ...`; other front ends may spell the kind differently.
            Err(error) if error.to_ascii_uppercase().contains("NOSCRIPT") => {
                self.cache_sha(None);
                let mut command = vec!["EVAL", ADMISSION_SCRIPT, key_count.as_str()];
                command.extend(tail());
                self.command(&command).await
            }
            Err(error) => Err(KvError::Unavailable(format!("Upstash error: {error}"))),
        }
    }
}

#[async_trait]
impl KeyValue for UpstashKv {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, KvError> {
        let mut command = vec!["MGET"];
        command.extend(keys.iter().map(String::as_str));
        decode_mget(self.command(&command).await?, keys.len())
    }

    async fn set(&self, key: &str, value: &str, ttl_seconds: u64) -> Result<(), KvError> {
        let ttl = ttl_seconds.max(1).to_string();
        self.command(&["SET", key, value, "EX", &ttl])
            .await
            .map(|_| ())
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl_seconds: u64,
    ) -> Result<bool, KvError> {
        let ttl = ttl_seconds.max(1).to_string();
        let result = self.command(&["SET", key, value, "NX", "EX", &ttl]).await?;
        Ok(result.as_str() == Some("OK"))
    }

    async fn admit(&self, admission: &Admission) -> Result<AdmissionOutcome, KvError> {
        let (keys, args) = script_arguments(admission);
        let result = self.run_admission(&keys, &args).await?;
        decode_reply(script_value(result), admission.reads.len())
    }
}
