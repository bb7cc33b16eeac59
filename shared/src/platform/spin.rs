//! Spin adapter (WASI Preview 3 HTTP): configuration from the component's environment, outbound over
//! `wasi:http`, the WASI wall clock, after-response work as a task the component keeps running once
//! it has answered. Uses no Spin-only interface, so `wasmtime serve` runs it too.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::{Body, Bytes};
use axum::http::Response;
use axum::Router;

use crate::platform::edge::{self, AssertSend, EdgePlatform};
use crate::platform::system::SystemClock;
use crate::ports::outbound::{Outbound, OutboundError, OutboundRequest, OutboundResponse};
use crate::ports::runtime::{Background, BackgroundWork};
use crate::state::AppState;

/// WASI Preview 3 lets a component keep running after it has returned its response: a task
/// spawned while handling a request is polled to completion within that request's component-model
/// task (wit-bindgen's "execution after returning"), so the answer is not held back by it.
pub struct AfterReturn;

impl Background for AfterReturn {
    fn spawn(&self, work: BackgroundWork) {
        spin_sdk::wasip3::spawn(work);
    }
}

fn warn(message: &str) {
    eprintln!("{message}");
}

/// The WASI monotonic clock, for deadlines on remote stores.
pub struct SpinTimer;

impl crate::ports::runtime::Timer for SpinTimer {
    fn sleep(
        &self,
        duration: std::time::Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Box::pin(AssertSend(
            spin_sdk::wasip3::clocks::monotonic_clock::wait_for(nanos),
        ))
    }
}

pub struct SpinOutbound;

async fn send(request: OutboundRequest) -> Result<OutboundResponse, OutboundError> {
    let url = request.url.clone();
    let failed = |reason: String| OutboundError::Transport {
        url: url.clone(),
        reason,
    };
    let mut builder = axum::http::Request::builder()
        .method(request.method)
        .uri(&request.url);
    for (name, value) in &request.headers {
        builder = builder.header(*name, value);
    }
    // Without it the body goes out chunked, which some receivers do not read; GET has none.
    if !matches!(request.method, "GET" | "HEAD") {
        builder = builder.header("content-length", request.body.len());
    }
    let outgoing = builder
        .body(http_body_util::Full::new(Bytes::from(request.body)))
        .map_err(|e| failed(e.to_string()))?;
    let response = spin_sdk::http::send(outgoing)
        .await
        .map_err(|e| failed(format!("{e:?}")))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = edge::collect_body(response.into_body())
        .await
        .map_err(|_| failed("response body too large".into()))?;
    Ok(OutboundResponse {
        status,
        headers,
        body: body.to_vec(),
    })
}

#[async_trait]
impl Outbound for SpinOutbound {
    async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        AssertSend(send(request)).await
    }
}

/// Serves one request of a Spin (or `wasmtime serve`) component with a function's routes.
pub async fn serve(
    routes: fn() -> Router<AppState>,
    request: spin_sdk::http::Request,
) -> Response<Body> {
    let source = |name: &str| std::env::var(name).ok();
    edge::respond(
        routes,
        &source,
        EdgePlatform {
            outbound: Arc::new(SpinOutbound),
            clock: Arc::new(SystemClock),
            timer: Arc::new(SpinTimer),
            background: Arc::new(AfterReturn),
            warn,
        },
        request,
        |headers| {
            let address = headers.get("spin-client-addr")?.to_str().ok()?;
            // `ip:port`, an IPv6 address in brackets (`[::1]:80`).
            address
                .rsplit_once(':')
                .map(|(ip, _)| ip.trim_start_matches('[').trim_end_matches(']').to_owned())
        },
    )
    .await
}
