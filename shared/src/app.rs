//! What every function serves besides its own routes: health, the OpenAPI document, fallbacks.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::http::{method_not_allowed, route_not_found};
use crate::rate_limit;
use crate::sql::Statement;
use crate::state::AppState;

/// The OpenAPI 3.1 description of the whole API, kept in the repository root.
pub const OPENAPI_JSON: &str = include_str!("../../openapi.json");

/// Wraps one or more functions' routes into a servable application.
pub fn function_app(routes: Router<AppState>) -> Router<AppState> {
    routes
        .route("/health", get(health))
        .route("/health/detailed", get(health_detailed))
        .route("/openapi.json", get(openapi))
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(rate_limit::headers_layer))
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

/// Reports each dependency's reachability and round-trip latency (503 when one is down), and how
/// often this instance let requests through unchecked because the rate-limit store failed.
async fn health_detailed(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let clock = state.clock.clone();
    let started = clock.now_millis();
    let database = match state.db.query(Statement::new("SELECT 1 AS ok")).await {
        Ok(_) => json!({ "status": "ok", "latency_ms": clock.now_millis() - started }),
        Err(e) => json!({ "status": "unavailable", "error": e.to_string() }),
    };
    let started = clock.now_millis();
    let kv = match state.kv.get_many(&["health:probe".to_owned()]).await {
        Ok(_) => json!({ "status": "ok", "latency_ms": clock.now_millis() - started }),
        Err(e) => json!({ "status": "unavailable", "error": e.to_string() }),
    };
    let healthy = database["status"] == "ok" && kv["status"] == "ok";
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let (fail_open_total, last_fail_open) = state.limiter.fail_open_stats();
    let rate_limits = json!({
        "on_kv_failure": state.config.rate_limits.on_kv_failure.as_str(),
        "fail_open_total": fail_open_total,
        "last_fail_open_at": last_fail_open.map(crate::runtime::rfc3339),
        "revocation_on_kv_failure": state.config.revocation_on_kv_failure.as_str(),
    });
    let body = json!({
        "status": if healthy { "ok" } else { "degraded" },
        "checks": { "database": database, "key_value": kv },
        "rate_limits": rate_limits,
    });
    (status, Json(body)).into_response()
}

/// How long clients may cache the JWKS: short enough to pick up rotations well before the previous
/// key stops being published.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(300);
