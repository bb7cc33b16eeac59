//! Rate limits over HTTP: every request's decision slot, the `RateLimit-*` and `Retry-After`
//! headers, and the per-IP limit of endpoints no credential protects.

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use crate::http::error::ApiError;
use crate::http::extract::ClientIp;
use crate::limits::{Decision, DecisionSlot, Meter, Subject};
use crate::state::AppState;

/// `RateLimit-Limit`, `-Remaining`, `-Reset`, and `Retry-After` when refused.
pub fn write_headers(decision: &Decision, headers: &mut HeaderMap) {
    let mut put = |name: &'static str, value: u64| {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    };
    put("ratelimit-limit", decision.limit);
    put("ratelimit-remaining", decision.remaining);
    put("ratelimit-reset", decision.reset_seconds);
    if !decision.admitted {
        put("retry-after", decision.reset_seconds);
    }
}

/// The request's slot; a detached one (headers lost, limits still enforced) without the layer.
pub fn slot_of(parts: &Parts) -> DecisionSlot {
    parts
        .extensions
        .get::<DecisionSlot>()
        .cloned()
        .unwrap_or_default()
}

impl<S: Send + Sync> FromRequestParts<S> for DecisionSlot {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(slot_of(parts))
    }
}

/// Middleware every function app runs: gives the request a slot, then writes its decision out.
pub async fn headers_layer(mut request: Request, next: Next) -> Response {
    let slot = DecisionSlot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    if let Some(decision) = slot.take() {
        write_headers(&decision, response.headers_mut());
    }
    response
}

/// Counts a request against its client IP, for endpoints no credential protects.
pub struct IpLimited;

impl FromRequestParts<AppState> for IpLimited {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ip = ip_of(parts);
        state
            .limiter
            .admit(
                &slot_of(parts),
                Subject::Ip(&ip),
                Meter::Nothing,
                Vec::new(),
            )
            .await?;
        Ok(IpLimited)
    }
}

/// The client address the platform recorded, or one shared bucket when it recorded none.
pub fn ip_of(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ClientIp>()
        .map_or_else(|| "unknown".to_owned(), |ip| ip.0.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_says_when_to_retry() {
        let decision = Decision {
            limit: 2,
            remaining: 0,
            reset_seconds: 31,
            admitted: false,
        };
        let mut headers = HeaderMap::new();
        write_headers(&decision, &mut headers);
        assert_eq!(headers["ratelimit-limit"], "2");
        assert_eq!(headers["ratelimit-remaining"], "0");
        assert_eq!(headers["retry-after"], "31");
    }
}
