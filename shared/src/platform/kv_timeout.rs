//! Deadline for key-value calls on every platform: a store that does not answer in time has failed, and the
//! callers' failure policies (limits open, revocation closed) take over instead of the request hanging.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::ports::kv::{Admission, AdmissionOutcome, KeyValue, KvError};
use crate::ports::runtime::Timer;

pub struct TimeoutKv {
    inner: Arc<dyn KeyValue>,
    timeout: Duration,
    timer: Arc<dyn Timer>,
}

impl TimeoutKv {
    pub fn new(inner: Arc<dyn KeyValue>, timeout: Duration, timer: Arc<dyn Timer>) -> Self {
        TimeoutKv {
            inner,
            timeout,
            timer,
        }
    }

    async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, KvError>>,
    ) -> Result<T, KvError> {
        let call = std::pin::pin!(call);
        match futures_util::future::select(call, self.timer.sleep(self.timeout)).await {
            futures_util::future::Either::Left((result, _)) => result,
            futures_util::future::Either::Right(((), _)) => Err(KvError::Unavailable(format!(
                "no answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }
}

#[async_trait]
impl KeyValue for TimeoutKv {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, KvError> {
        self.bounded(self.inner.get_many(keys)).await
    }

    async fn set(&self, key: &str, value: &str, ttl_seconds: u64) -> Result<(), KvError> {
        self.bounded(self.inner.set(key, value, ttl_seconds)).await
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl_seconds: u64,
    ) -> Result<bool, KvError> {
        self.bounded(self.inner.set_if_absent(key, value, ttl_seconds))
            .await
    }

    async fn admit(&self, admission: &Admission) -> Result<AdmissionOutcome, KvError> {
        self.bounded(self.inner.admit(admission)).await
    }
}
