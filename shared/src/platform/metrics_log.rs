//! The edge's metrics sink: a per-instance scrape means nothing there, so every counted event is
//! one structured log line (JSON) naming the same metric and labels as the native registry, for
//! the platform's log pipeline to aggregate (Workers Logs or Logpush; Spin's or wasmtime's stderr).

use std::sync::Arc;

use serde_json::{json, Value};

use crate::ports::metrics::{self, Event, Metrics, HTTP_REQUEST_DURATION};
use crate::ports::runtime::Clock;

/// Writes each event as a JSON line; durations from the platform's clock (Workers advances it
/// only across I/O, so edge latencies are coarse).
pub struct LogMetrics {
    clock: Arc<dyn Clock>,
}

/// Installs the log sink for this instance (once; later calls do nothing).
pub fn install(clock: Arc<dyn Clock>) {
    if !metrics::is_enabled() {
        metrics::install(Box::new(LogMetrics { clock }));
    }
}

/// The log line of one event: `metric` and the family's labels, plus the observed value.
pub fn line(event: &Event<'_>) -> Value {
    let metric = event.family().name;
    match *event {
        Event::HttpRequest {
            operation,
            status,
            seconds,
        } => json!({
            "metric": metric, "operation": operation, "status": status,
            HTTP_REQUEST_DURATION.name: seconds,
        }),
        Event::TokenRequest { grant, outcome } => {
            json!({ "metric": metric, "grant": grant, "outcome": outcome })
        }
        Event::AuthenticationFailure { method } => json!({ "metric": metric, "method": method }),
        Event::RateLimited { limit } => json!({ "metric": metric, "limit": limit }),
        Event::RateLimitFailedOpen => json!({ "metric": metric }),
        Event::StoreFailure { store, operation } => {
            json!({ "metric": metric, "store": store.as_str(), "operation": operation })
        }
        Event::GroupCommit { jobs, seconds } => json!({
            "metric": metric, "value": jobs,
            metrics::GROUP_COMMIT_DURATION.name: seconds,
        }),
        Event::WalBytes { bytes } => json!({ "metric": metric, "value": bytes }),
    }
}

fn write_line(line: &str) {
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    worker::console_log!("{line}");
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    eprintln!("{line}");
}

impl Metrics for LogMetrics {
    fn record(&self, event: &Event<'_>) {
        write_line(&line(event).to_string());
    }

    fn monotonic_micros(&self) -> u64 {
        u64::try_from(self.clock.now_millis()).unwrap_or(0) * 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_carries_the_metric_and_its_labels() {
        let line = line(&Event::HttpRequest {
            operation: "issueToken",
            status: 200,
            seconds: 0.25,
        });
        assert_eq!(line["metric"], "agentidp_http_requests_total");
        assert_eq!(line["operation"], "issueToken");
        assert_eq!(line["status"], 200);
        assert_eq!(line["agentidp_http_request_duration_seconds"], 0.25);
    }
}
