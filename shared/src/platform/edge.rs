//! What both edge adapters share: building the state from configuration over the platform's fetch,
//! caching the application per instance, and bridging request and response bodies.

use std::cell::RefCell;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{Response, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use tower::ServiceExt;

use crate::config::{self, Config, ConfigError, ConfigSource};
use crate::domain::sealed::{Kek, Keks};
use crate::http::app::application;
use crate::http::error::ApiError;
use crate::http::extract::ClientIp;
use crate::http::observe::observed;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::platform::hrana::HranaDatabase;
use crate::platform::kv_timeout::TimeoutKv;
use crate::platform::metrics_log;
use crate::platform::observed as counted;
use crate::platform::outbound_timeout::TimeoutOutbound;
use crate::platform::system::OsEntropy;
use crate::platform::upstash::UpstashKv;
use crate::ports::outbound::Outbound;
use crate::ports::runtime::{Background, Clock, Timer};
use crate::state::{AppState, Platform};
use crate::store::migrations;

/// Largest request body an edge instance buffers; endpoints enforce their own smaller limits.
const MAX_EDGE_BODY_BYTES: usize = 1024 * 1024;

fn misconfigured(ConfigError { variable, reason }: ConfigError) -> ApiError {
    tracing::error!(variable, reason = %reason, "edge configuration error");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "configuration_error",
        format!("the deployment is misconfigured: {variable} {reason}"),
    )
    .with("variable", variable)
}

/// What an edge platform provides to the shared core.
pub struct EdgePlatform {
    pub outbound: Arc<dyn Outbound>,
    pub clock: Arc<dyn Clock>,
    pub timer: Arc<dyn Timer>,
    pub background: Arc<dyn Background>,
    /// Where a warning an operator must see goes (the runtime's log).
    pub warn: fn(&str),
}

/// A webhook endpoint (or a trusted issuer's key set) has this long to answer; the platforms'
/// fetch has no deadline of its own.
const WORLD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// The state of an edge instance: libSQL over HTTP and Upstash REST, both required, because an
/// instance-local store would make revocation and replay checks silently per-instance.
async fn build_state(
    source: &dyn ConfigSource,
    platform: EdgePlatform,
) -> Result<AppState, ApiError> {
    let EdgePlatform {
        outbound,
        clock,
        timer,
        background,
        warn,
    } = platform;
    let config = Config::load(source, None).map_err(misconfigured)?;
    if config.webhooks.allow_loopback {
        warn("DEVELOPMENT SWITCH ON: AGENTIDP_DEV_WEBHOOKS_ALLOW_LOOPBACK=on lets webhooks target loopback addresses over plain HTTP. Never use it in production.");
    }
    if config.webhooks.time_travel {
        warn("DEVELOPMENT SWITCH ON: AGENTIDP_DEV_TIME_TRAVEL=on lets dispatchers choose the time they dispatch at. Never use it in production.");
    }
    // Requests to the world (issuers' keys, webhook endpoints) get a deadline; the platform
    // follows no redirects. It resolves names itself: tenants' URLs were checked before sending.
    let world: Arc<dyn Outbound> = Arc::new(TimeoutOutbound::new(
        outbound.clone(),
        WORLD_TIMEOUT,
        timer.clone(),
    ));
    let db = HranaDatabase::new(
        outbound.clone(),
        &config::DATABASE_URL
            .required(source)
            .map_err(misconfigured)?,
        config::DATABASE_AUTH_TOKEN.text(source),
    );
    let kv = UpstashKv::new(
        outbound.clone(),
        &config::UPSTASH_URL
            .required(source)
            .map_err(misconfigured)?,
        config::UPSTASH_TOKEN
            .required(source)
            .map_err(misconfigured)?,
    );
    // A store that does not answer in time has failed; the failure policies take over.
    let timeout = std::time::Duration::from_millis(config.kv_timeout_ms.unsigned_abs());
    let kv = TimeoutKv::new(Arc::new(kv), timeout, timer);
    let kek = config::KEY_ENCRYPTION_KEY
        .required(source)
        .map_err(misconfigured)?;
    let kek = Kek::parse(&kek).map_err(|reason| {
        misconfigured(ConfigError {
            variable: config::KEY_ENCRYPTION_KEY.name,
            reason,
        })
    })?;
    // Idempotent and cheap once applied: one read of schema_migrations per new instance.
    migrations::apply(&db, clock.as_ref()).await?;
    // Metrics go to structured log lines: a per-instance scrape would mean nothing here.
    metrics_log::install(clock.clone());
    let platform = Platform {
        db: counted::database(Arc::new(db)),
        kv: counted::key_value(Arc::new(kv)),
        clock,
        entropy: Arc::new(OsEntropy),
        outbound: world,
        es256_accelerator: crate::platform::es256_accelerator(),
        background,
        keks: Arc::new(Keks::new(kek, Vec::new())),
    };
    Ok(AppState::new(config, platform))
}

thread_local! {
    /// Wasm instances are single-threaded; the state and app live as long as the instance.
    static APP: RefCell<Option<(AppState, Router)>> = const { RefCell::new(None) };
}

/// The instance's state and app, built on its first request (or scheduled event).
pub async fn instance(
    routes: fn() -> Router<AppState>,
    source: &dyn ConfigSource,
    platform: EdgePlatform,
) -> Result<(AppState, Router), ApiError> {
    if let Some(instance) = APP.with(|cell| cell.borrow().clone()) {
        return Ok(instance);
    }
    let state = build_state(source, platform).await?;
    let app = observed(application(routes(), state.clone()));
    APP.with(|cell| *cell.borrow_mut() = Some((state.clone(), app.clone())));
    Ok((state, app))
}

/// Buffers a platform body, refusing more than the edge limit.
pub(crate) async fn collect_body<B>(body: B) -> Result<Bytes, ApiError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(body, MAX_EDGE_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body exceeds {MAX_EDGE_BODY_BYTES} bytes"),
        )),
    }
}

/// A refusal made before the routes run (the body over the limit, an instance that could not be
/// built), in the format the path's clients read: RFC 6749 errors under `/oauth2/`.
fn refused_before_routing(path: &str, problem: ApiError) -> Response<Body> {
    if !path.starts_with("/oauth2/") {
        return problem.into_response();
    }
    let code = match problem.status {
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::RequestTooLarge,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::TemporarilyUnavailable,
        _ => ErrorCode::ServerError,
    };
    OAuthError {
        code,
        description: problem.detail,
    }
    .into_response()
}

/// Runs one platform request through the function's routes. `client_ip` reads the caller's address
/// from the headers the platform sets.
pub async fn respond<B>(
    routes: fn() -> Router<AppState>,
    source: &dyn ConfigSource,
    platform: EdgePlatform,
    request: axum::http::Request<B>,
    client_ip: fn(&axum::http::HeaderMap) -> Option<String>,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = request.into_parts();
    let body = match collect_body(body).await {
        Ok(body) => body,
        Err(problem) => return refused_before_routing(parts.uri.path(), problem),
    };
    let app = match instance(routes, source, platform).await {
        Ok((_, app)) => app,
        Err(problem) => return refused_before_routing(parts.uri.path(), problem),
    };
    let ip = client_ip(&parts.headers);
    let mut request = axum::http::Request::from_parts(parts, Body::from(body));
    if let Some(ip) = ip {
        request.extensions_mut().insert(ClientIp(ip));
    }
    match app.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// Lets a platform future that is not `Send` cross into the `Send` world of the handlers.
/// Sound only because these wasm targets run one thread: nothing can move it across threads.
pub struct AssertSend<F>(pub F);

// SAFETY: wasm32-unknown-unknown (Workers) and wasm32-wasip2 components are single-threaded.
unsafe impl<F> Send for AssertSend<F> {}

impl<F: std::future::Future> std::future::Future for AssertSend<F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        // SAFETY: structural pinning of the only field; it is never moved out.
        unsafe { self.map_unchecked_mut(|s| &mut s.0) }.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn answer(path: &str, problem: ApiError) -> (StatusCode, serde_json::Value) {
        let response = refused_before_routing(path, problem);
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_refusal_before_routing_speaks_rfc_6749_under_oauth2_only() {
        let newer = || {
            ApiError::from(crate::ports::sql::DbError::SchemaNewer {
                database: "9999_next".into(),
                binary: "0011_now".into(),
            })
        };
        let (status, body) = answer("/oauth2/token", newer()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"], "temporarily_unavailable", "{body}");
        assert!(body["error_description"]
            .as_str()
            .unwrap()
            .contains("9999_next"));
        let (status, body) = answer("/v1/agents", newer()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["code"], "schema_newer_than_binary", "{body}");
        let too_large = || ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "big");
        let (status, body) = answer("/oauth2/introspect", too_large()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, Some("invalid_request"))
        );
        let (status, body) = answer(
            "/oauth2/revoke",
            misconfigured(ConfigError {
                variable: "AGENTIDP_DATABASE_URL",
                reason: "is missing".into(),
            }),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::INTERNAL_SERVER_ERROR, Some("server_error"))
        );
    }
}
