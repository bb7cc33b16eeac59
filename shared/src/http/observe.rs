//! Per-request metrics: every answer counted by the route table's operation (not the raw path, so
//! ids never become labels) and status, and timed; a 401 on a bearer route is a failed bearer
//! authentication. Natively the server wraps all five functions in it; at the edge, each function.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;

use crate::http::routes::{by_request, Access};
use crate::ports::metrics::{self, Event, Stopwatch};

/// The operation label of requests no route matches.
pub const UNMATCHED: &str = "unmatched";

/// `app`, with every request counted and timed while a metrics sink is installed.
pub fn observed(app: Router) -> Router {
    app.layer(axum::middleware::from_fn(observe))
}

async fn observe(request: Request, next: Next) -> Response {
    if !metrics::is_enabled() {
        return next.run(request).await;
    }
    let route = by_request(request.method().as_str(), request.uri().path());
    let watch = Stopwatch::start();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    metrics::record(Event::HttpRequest {
        operation: route.map_or(UNMATCHED, |r| r.operation_id()),
        status,
        seconds: watch.seconds(),
    });
    if status == 401 && route.is_some_and(|r| r.access == Access::Bearer) {
        metrics::record(Event::AuthenticationFailure { method: "bearer" });
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_labelled_by_operation_never_by_id() {
        let op = |m: &str, p: &str| by_request(m, p).map(|r| r.operation_id());
        assert_eq!(op("GET", "/v1/agents/1234"), Some("getAgent"));
        assert_eq!(op("HEAD", "/v1/agents/1234"), Some("getAgent"));
        assert_eq!(op("DELETE", "/v1/agents/1234"), Some("decommissionAgent"));
        assert_eq!(op("POST", "/oauth2/token"), Some("issueToken"));
        assert_eq!(op("GET", "/oauth2/token"), None);
        assert_eq!(op("GET", "/nope"), None);
    }
}
