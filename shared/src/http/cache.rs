//! Cache headers: what shared caches may keep (public metadata, keys, listings) and what no cache
//! may store (every `/oauth2/*` answer, anything carrying a secret).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// A JSON document shared caches may keep for `max_age_seconds`.
pub fn cacheable_json(body: String, max_age_seconds: u64) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age_seconds}")) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    response
}

/// A response no cache may store: everything on `/oauth2/*` (RFC 6749 §5.1), and anything that
/// carries a secret.
pub fn uncached(response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
