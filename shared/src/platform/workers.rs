//! Cloudflare Workers adapter: configuration from vars and secrets, outbound over `fetch`, the clock
//! from `Date.now()`, after-response work through `ctx.waitUntil`, and the Cron Trigger's dispatcher.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;

use crate::http::app::RequestBackground;
use crate::http::cache::is_fresh;
use crate::http::error::ApiError;
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
/// `ctx.waitUntil`. Public marketplace listings go through the Cache API first.
pub async fn serve(
    routes: fn() -> Router<AppState>,
    mut request: worker::HttpRequest,
    env: worker::Env,
    context: worker::Context,
) -> Response<Body> {
    let source = config_source(env);
    let background = Arc::new(WaitUntil(context));
    let cache_key = match is_public_listing(&request) {
        true => listing_cache_key(routes, &source, request.uri()).await,
        false => None,
    };
    if let Some(key) = &cache_key {
        if let Some(hit) = cached_listing(key, request.headers()).await {
            return hit;
        }
    }
    request
        .extensions_mut()
        .insert(RequestBackground(background.clone()));
    let response = edge::respond(routes, &source, platform(), request, |headers| {
        let ip = headers.get("cf-connecting-ip")?.to_str().ok()?;
        Some(ip.to_owned())
    })
    .await;
    match cache_key {
        Some(key) => store_listing(key, response, &background).await,
        None => response,
    }
}

/// What a response the Cache API served (`hit`) or has just been given (`miss`) says about it, so
/// an operator, and the edge tests, can tell the two apart.
const CACHE_STATUS: &str = "x-agentidp-cache";

/// The marketplace's listing and search: the only answers the Cache API keeps.
const LISTING_PATH: &str = "/v1/marketplace/agents";

/// Headers about one request rather than the listing (its rate-limit state): never stored.
const PER_REQUEST: [&str; 4] = [
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "retry-after",
];

/// An anonymous `GET` of the listing or a search. With credentials it is not the public document
/// (and a cache must not answer for a caller it does not know).
fn is_public_listing(request: &worker::HttpRequest) -> bool {
    request.method() == Method::GET
        && request.uri().path() == LISTING_PATH
        && !request.headers().contains_key(header::AUTHORIZATION)
}

/// The cache key of this listing at the marketplace's current version. Why the version lives in
/// the database rather than in the key-value store: triggers bump it inside the very transaction
/// that publishes, withdraws or edits a listed agent, so no commit can change a listing without
/// changing the key (a key-value counter would be a second write after the commit, which a crash
/// or a failed call could skip, leaving the old listing served for its whole max-age). Reading it
/// is one single-row query on a miss and the only database call on a hit. `None` (no caching) when
/// the version cannot be read: the request then fails or succeeds exactly as without a cache.
async fn listing_cache_key(
    routes: fn() -> Router<AppState>,
    source: &dyn crate::config::ConfigSource,
    uri: &Uri,
) -> Option<String> {
    let (state, _) = edge::instance(routes, source, platform()).await.ok()?;
    let version = crate::services::marketplace::version(&state).await.ok()?;
    let scheme = uri.scheme_str().unwrap_or("https");
    let authority = uri.authority().map_or("localhost", |a| a.as_str());
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    Some(format!(
        "{scheme}://{authority}/.agentidp-cache/marketplace/v{version}/agents{query}"
    ))
}

/// The stored listing, as the handler answered it (`304` when the request's `If-None-Match` names
/// its ETag, as the handler would); `None` on a miss or any failure of the cache.
async fn cached_listing(key: &str, request: &HeaderMap) -> Option<Response<Body>> {
    let mut stored = worker::Cache::default().get(key, false).await.ok()??;
    if stored.status_code() != 200 {
        return None;
    }
    let body = stored.bytes().await.ok()?;
    let mut response = (StatusCode::OK, body).into_response();
    for (name, value) in stored.headers().entries() {
        // The cache's own headers and the body's length describe the stored copy, not the listing.
        if name.eq_ignore_ascii_case("content-length")
            || name.to_ascii_lowercase().starts_with("cf-")
        {
            continue;
        }
        let (Ok(name), Ok(value)) = (
            header::HeaderName::try_from(name),
            HeaderValue::try_from(value),
        ) else {
            continue;
        };
        response.headers_mut().insert(name, value);
    }
    let etag = response
        .headers()
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if etag.is_some_and(|etag| is_fresh(request, &etag)) {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        *response.body_mut() = Body::empty();
        response.headers_mut().remove(header::CONTENT_TYPE);
    }
    response
        .headers_mut()
        .insert(CACHE_STATUS, HeaderValue::from_static("hit"));
    Some(response)
}

/// Puts a `200` public listing in the cache, after the response (`ctx.waitUntil`), and answers it.
async fn store_listing(
    key: String,
    response: Response<Body>,
    background: &WaitUntil,
) -> Response<Body> {
    let public = response
        .headers()
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("public"));
    if response.status() != StatusCode::OK || !public {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match http_body_util::BodyExt::collect(body).await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let headers = worker::Headers::new();
    for (name, value) in &parts.headers {
        if PER_REQUEST.contains(&name.as_str()) {
            continue;
        }
        if let Ok(value) = value.to_str() {
            let _ = headers.set(name.as_str(), value);
        }
    }
    if let Ok(stored) = worker::Response::from_bytes(bytes.to_vec()) {
        let stored = stored.with_headers(headers);
        background.0.wait_until(async move {
            if let Err(e) = worker::Cache::default().put(key, stored).await {
                warn(&format!("marketplace listing not cached: {e}"));
            }
        });
    }
    parts
        .headers
        .insert(CACHE_STATUS, HeaderValue::from_static("miss"));
    Response::from_parts(parts, Body::from(bytes))
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
