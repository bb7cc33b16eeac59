//! A deadline on outbound HTTP for the edge builds, whose fetch has none of its own: a webhook
//! endpoint that does not answer in time has failed, rather than holding a dispatcher's lease.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::ports::outbound::{Outbound, OutboundError, OutboundRequest, OutboundResponse};
use crate::ports::runtime::Timer;

pub struct TimeoutOutbound {
    inner: Arc<dyn Outbound>,
    timeout: Duration,
    timer: Arc<dyn Timer>,
}

impl TimeoutOutbound {
    pub fn new(inner: Arc<dyn Outbound>, timeout: Duration, timer: Arc<dyn Timer>) -> Self {
        TimeoutOutbound {
            inner,
            timeout,
            timer,
        }
    }
}

#[async_trait]
impl Outbound for TimeoutOutbound {
    async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        let url = request.url.clone();
        let call = std::pin::pin!(self.inner.send(request));
        match futures_util::future::select(call, self.timer.sleep(self.timeout)).await {
            futures_util::future::Either::Left((result, _)) => result,
            futures_util::future::Either::Right(((), _)) => Err(OutboundError::Timeout { url }),
        }
    }
}
