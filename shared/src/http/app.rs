//! What every function serves besides its own routes (health, the OpenAPI document, fallbacks),
//! and the response helpers for caching.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::{Json, Router};
use serde_json::json;

use crate::domain::authz::Operation;
use crate::http::error::ApiError;
use crate::http::limits::headers_layer;
use crate::http::routes::ROUTES;
use crate::ports::runtime::Background;
use crate::services::webhooks;
use crate::state::AppState;
use crate::store::{self, kv_keys};

/// The OpenAPI 3.1 description of the whole API, kept in the repository root.
pub const OPENAPI_JSON: &str = include_str!("../../../openapi.json");

/// How long clients may cache the JWKS: short enough to pick up rotations well before the previous
/// key stops being published.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(300);

/// Wraps one or more functions' routes into a servable application.
pub fn function_app(routes: Router<AppState>) -> Router<AppState> {
    let mut app = routes;
    for route in ROUTES.iter().filter(|r| r.every_function) {
        app = app.route(route.path, every_function_handler(route.operation));
    }
    app.fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(headers_layer))
        .layer(axum::middleware::map_response(security_headers))
}

/// Headers every response carries. `nosniff`: browsers must take the declared content type at its
/// word (JSON stays JSON). Deliberately absent: any CORS header. The API is called by servers and
/// agents, not by scripts in browsers, so no origin is granted access; a browser application
/// talks to its own backend, which calls this API.
async fn security_headers(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// A function app with its state, starting what a request leaves behind (the webhook deliveries
/// its change enqueued) once the handler has answered: what every deployment serves.
pub fn application(routes: Router<AppState>, state: AppState) -> Router {
    function_app(routes)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            after_response,
        ))
        .with_state(state)
}

/// How a request's after-response work runs when the platform ties it to the request (Workers'
/// `ctx.waitUntil`); without it, the state's [`Background`].
#[derive(Clone)]
pub struct RequestBackground(pub std::sync::Arc<dyn Background>);

async fn after_response(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let background = request
        .extensions()
        .get::<RequestBackground>()
        .map_or_else(|| state.background.clone(), |b| b.0.clone());
    let response = next.run(request).await;
    if let Some(work) = webhooks::after_response(&state) {
        background.spawn(work);
    }
    response
}

fn every_function_handler(operation: Operation) -> MethodRouter<AppState> {
    match operation {
        Operation::Health => get(health),
        Operation::HealthDetailed => get(health_detailed),
        Operation::GetOpenApi => get(openapi),
        other => panic!("no handler every function serves for `{other:?}`"),
    }
}

/// Answer for paths no function serves.
async fn route_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such endpoint")
}

/// Answer for a known path with the wrong method.
async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method",
    )
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn openapi() -> Response {
    let mut response = (StatusCode::OK, OPENAPI_JSON).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Reports each dependency's reachability and round-trip latency (503 when one is down).
async fn health_detailed(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let clock = state.clock.clone();
    let started = clock.now_millis();
    let database = match state.db.query(store::probe()).await {
        Ok(_) => json!({ "status": "ok", "latency_ms": clock.now_millis() - started }),
        Err(e) => json!({ "status": "unavailable", "error": e.to_string() }),
    };
    let started = clock.now_millis();
    let kv = match state.kv.get_many(&[kv_keys::HEALTH_PROBE.to_owned()]).await {
        Ok(_) => json!({ "status": "ok", "latency_ms": clock.now_millis() - started }),
        Err(e) => json!({ "status": "unavailable", "error": e.to_string() }),
    };
    let healthy = database["status"] == "ok" && kv["status"] == "ok";
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    // Whether and how often limits failed open is the operator's to know (`/metrics`,
    // `agentidp_rate_limit_fail_open_total`), not a public hint of when they are off.
    let body = json!({
        "status": if healthy { "ok" } else { "degraded" },
        "checks": { "database": database, "key_value": kv },
    });
    (status, Json(body)).into_response()
}
