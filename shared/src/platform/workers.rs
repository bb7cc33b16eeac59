//! Cloudflare Workers adapter: configuration from vars and secrets, outbound over `fetch`, the clock
//! from `Date.now()`.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::Response;
use axum::Router;

use crate::platform::edge::{self, AssertSend, EdgePlatform};
use crate::ports::outbound::{Outbound, OutboundError, OutboundRequest, OutboundResponse};
use crate::ports::runtime::Clock;
use crate::state::AppState;

pub struct WorkersClock;

impl Clock for WorkersClock {
    fn now_millis(&self) -> i64 {
        worker::Date::now().as_millis() as i64
    }
}

/// `setTimeout`, for deadlines on remote stores.
pub struct WorkersTimer;

impl crate::ports::runtime::Timer for WorkersTimer {
    fn sleep(
        &self,
        duration: std::time::Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(AssertSend(worker::Delay::from(duration)))
    }
}

pub struct WorkersOutbound;

async fn fetch(request: OutboundRequest) -> Result<OutboundResponse, OutboundError> {
    let url = request.url.clone();
    let failed = |e: worker::Error| OutboundError::Transport {
        url: url.clone(),
        reason: e.to_string(),
    };
    let headers = worker::Headers::new();
    for (name, value) in &request.headers {
        headers.set(name, value).map_err(failed)?;
    }
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::from(request.method.to_owned()))
        .with_headers(headers);
    // fetch() refuses any body on GET and HEAD, even an empty one.
    if !request.body.is_empty() {
        init.with_body(Some(
            worker::js_sys::Uint8Array::from(request.body.as_slice()).into(),
        ));
    }
    let outgoing = worker::Request::new_with_init(&request.url, &init).map_err(failed)?;
    let mut response = worker::Fetch::Request(outgoing)
        .send()
        .await
        .map_err(failed)?;
    let status = response.status_code();
    let headers = response
        .headers()
        .entries()
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .collect();
    let body = response.bytes().await.map_err(failed)?;
    Ok(OutboundResponse {
        status,
        headers,
        body,
    })
}

#[async_trait]
impl Outbound for WorkersOutbound {
    async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        AssertSend(fetch(request)).await
    }
}

/// Serves one Worker request with a function's routes.
pub async fn serve(
    routes: fn() -> Router<AppState>,
    request: worker::HttpRequest,
    env: worker::Env,
) -> Response<Body> {
    let source = move |name: &str| {
        env.var(name)
            .map(|v| v.to_string())
            .or_else(|_| env.secret(name).map(|s| s.to_string()))
            .ok()
    };
    edge::respond(
        routes,
        &source,
        EdgePlatform {
            outbound: Arc::new(WorkersOutbound),
            clock: Arc::new(WorkersClock),
            timer: Arc::new(WorkersTimer),
        },
        request,
        |headers| {
            let ip = headers.get("cf-connecting-ip")?.to_str().ok()?;
            Some(ip.to_owned())
        },
    )
    .await
}
