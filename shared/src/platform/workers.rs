//! Cloudflare Workers adapter: configuration from vars and secrets, outbound over `fetch`, the clock
//! from `Date.now()`, after-response work through `ctx.waitUntil`, and the Cron Trigger's dispatcher.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::Response;
use axum::Router;

use crate::http::app::RequestBackground;
use crate::platform::edge::{self, AssertSend, EdgePlatform};
use crate::ports::outbound::{Outbound, OutboundError, OutboundRequest, OutboundResponse};
use crate::ports::runtime::{Background, BackgroundWork, Clock};
use crate::services::webhooks::{self, Scope};
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

/// Most of one response read (libSQL query results are the largest).
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// `ctx.waitUntil` of one request: the work finishes after the response, within the request's
/// lifetime as Workers extends it.
struct WaitUntil(worker::Context);

impl Background for WaitUntil {
    fn spawn(&self, work: BackgroundWork) {
        self.0.wait_until(work);
    }
}

/// Outside a request (never used by requests, which carry their own `WaitUntil`): the work runs on
/// the event loop as long as the isolate lives; the outbox keeps whatever it does not finish.
struct Detached;

impl Background for Detached {
    fn spawn(&self, work: BackgroundWork) {
        worker::wasm_bindgen_futures::spawn_local(work);
    }
}

fn warn(message: &str) {
    worker::console_warn!("{message}");
}

fn platform() -> EdgePlatform {
    EdgePlatform {
        outbound: Arc::new(WorkersOutbound),
        clock: Arc::new(WorkersClock),
        timer: Arc::new(WorkersTimer),
        background: Arc::new(Detached),
        warn,
    }
}

fn config_source(env: worker::Env) -> impl Fn(&str) -> Option<String> {
    move |name: &str| {
        env.var(name)
            .map(|v| v.to_string())
            .or_else(|_| env.secret(name).map(|s| s.to_string()))
            .ok()
    }
}

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
        .with_headers(headers)
        // A redirect is an answer like any other, never followed (it could lead anywhere).
        .with_redirect(worker::RequestRedirect::Manual);
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
    // Read at most MAX_RESPONSE_BYTES: an endpoint cannot exhaust the isolate's memory.
    let mut body = Vec::new();
    let mut stream = response.stream().map_err(failed)?;
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        let chunk = chunk.map_err(failed)?;
        let room = MAX_RESPONSE_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if chunk.len() >= room {
            break;
        }
    }
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

/// Serves one Worker request with a function's routes; what the request leaves behind runs in its
/// `ctx.waitUntil`.
pub async fn serve(
    routes: fn() -> Router<AppState>,
    mut request: worker::HttpRequest,
    env: worker::Env,
    context: worker::Context,
) -> Response<Body> {
    let source = config_source(env);
    request
        .extensions_mut()
        .insert(RequestBackground(Arc::new(WaitUntil(context))));
    edge::respond(routes, &source, platform(), request, |headers| {
        let ip = headers.get("cf-connecting-ip")?.to_str().ok()?;
        Some(ip.to_owned())
    })
    .await
}

/// The Cron Trigger (`[env.webhooks.triggers] crons` in `wrangler.toml`): delivers every
/// organization's due webhooks, then checkpoints the audit logs that grew and runs one pass of
/// audit retention. The scheduled event lasts until this returns.
pub async fn dispatch_on_schedule(routes: fn() -> Router<AppState>, env: worker::Env) {
    let source = config_source(env);
    let state = match edge::instance(routes, &source, platform()).await {
        Ok((state, _)) => state,
        Err(problem) => {
            warn(&format!("scheduled dispatch: {}", problem.detail));
            return;
        }
    };
    let now = state.now_millis();
    match webhooks::dispatch(&state, Scope::Everyone, now).await {
        Ok(report) => worker::console_log!(
            "scheduled dispatch: {} attempted, {} delivered, {} retrying, {} failed",
            report.attempted,
            report.delivered,
            report.retrying,
            report.failed
        ),
        Err(e) => warn(&format!("scheduled dispatch failed: {e}")),
    }
    match crate::services::retention::upkeep(&state, now).await {
        Ok(done) => worker::console_log!(
            "scheduled audit upkeep: {} checkpoints, {} events removed",
            done.checkpoints,
            done.removed
        ),
        Err(e) => warn(&format!("scheduled audit upkeep failed: {e}")),
    }
}
