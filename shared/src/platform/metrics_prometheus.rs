//! The native metrics sink: a Prometheus registry holding every family of `ports::metrics`,
//! rendered in the Prometheus text exposition format (0.0.4) for `GET /metrics`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::ports::metrics::{self, Event, Family, Kind, Metrics};

/// The `Content-Type` of [`PrometheusMetrics::render`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The registry, with every family of [`metrics::FAMILIES`] registered up front, so a scrape lists
/// each metric (with its help) even before anything was counted.
pub struct PrometheusMetrics {
    registry: Registry,
    counters: HashMap<&'static str, IntCounterVec>,
    gauges: HashMap<&'static str, IntGaugeVec>,
    histograms: HashMap<&'static str, HistogramVec>,
    /// Status codes as label values, made once.
    statuses: Vec<String>,
    started: Instant,
}

impl PrometheusMetrics {
    /// A registry for the build `version`.
    ///
    /// # Panics
    /// When [`metrics::FAMILIES`] declares a name twice or an invalid one (a unit test keeps them valid).
    pub fn new(version: &str) -> PrometheusMetrics {
        let registry = Registry::new();
        let mut counters = HashMap::new();
        let mut gauges = HashMap::new();
        let mut histograms = HashMap::new();
        for family in metrics::FAMILIES {
            let opts = Opts::new(family.name, family.help);
            let registered = match family.kind {
                Kind::Counter => {
                    let counter = IntCounterVec::new(opts, family.labels).expect("valid counter");
                    counters.insert(family.name, counter.clone());
                    registry.register(Box::new(counter))
                }
                Kind::Gauge => {
                    let gauge = IntGaugeVec::new(opts, family.labels).expect("valid gauge");
                    gauges.insert(family.name, gauge.clone());
                    registry.register(Box::new(gauge))
                }
                Kind::Histogram(bounds) => {
                    let opts = HistogramOpts::from(opts).buckets(bounds.to_vec());
                    let histogram =
                        HistogramVec::new(opts, family.labels).expect("valid histogram");
                    histograms.insert(family.name, histogram.clone());
                    registry.register(Box::new(histogram))
                }
            };
            registered.expect("each family is registered once");
        }
        let this = PrometheusMetrics {
            registry,
            counters,
            gauges,
            histograms,
            statuses: (0..600).map(|s: u16| s.to_string()).collect(),
            started: Instant::now(),
        };
        for family in metrics::FAMILIES {
            let initial: &[&[&str]] = if family.labels.is_empty() {
                &[&[]]
            } else {
                family.initial
            };
            for labels in initial {
                match family.kind {
                    Kind::Counter => drop(this.counter(family, labels)),
                    Kind::Gauge => drop(this.gauge(family, labels)),
                    Kind::Histogram(_) => drop(this.histogram(family, labels)),
                }
            }
        }
        this.gauge(&metrics::BUILD_INFO, &[version]).set(1);
        this
    }

    /// A new registry installed as the process's sink; `None` if a sink was installed already.
    pub fn install(version: &str) -> Option<Arc<PrometheusMetrics>> {
        let registry = Arc::new(PrometheusMetrics::new(version));
        metrics::install(Box::new(registry.clone())).then_some(registry)
    }

    /// Every family in the text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "encoding the metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    fn counter(&self, family: &Family, labels: &[&str]) -> prometheus::IntCounter {
        self.counters[family.name].with_label_values(labels)
    }

    fn gauge(&self, family: &Family, labels: &[&str]) -> prometheus::IntGauge {
        self.gauges[family.name].with_label_values(labels)
    }

    fn histogram(&self, family: &Family, labels: &[&str]) -> prometheus::Histogram {
        self.histograms[family.name].with_label_values(labels)
    }

    fn status(&self, status: u16) -> &str {
        self.statuses
            .get(usize::from(status))
            .map_or("other", String::as_str)
    }
}

impl Metrics for Arc<PrometheusMetrics> {
    fn record(&self, event: &Event<'_>) {
        match *event {
            Event::HttpRequest {
                operation,
                status,
                seconds,
            } => {
                self.counter(&metrics::HTTP_REQUESTS, &[operation, self.status(status)])
                    .inc();
                self.histogram(&metrics::HTTP_REQUEST_DURATION, &[operation])
                    .observe(seconds);
            }
            Event::TokenRequest { grant, outcome } => {
                self.counter(&metrics::TOKEN_REQUESTS, &[grant, outcome])
                    .inc();
            }
            Event::AuthenticationFailure { method } => {
                self.counter(&metrics::AUTHENTICATION_FAILURES, &[method])
                    .inc();
            }
            Event::RateLimited { limit } => {
                self.counter(&metrics::RATE_LIMITED, &[limit]).inc();
            }
            Event::RateLimitFailedOpen => {
                self.counter(&metrics::RATE_LIMIT_FAIL_OPEN, &[]).inc();
            }
            Event::StoreFailure { store, operation } => {
                self.counter(&metrics::STORE_FAILURES, &[store.as_str(), operation])
                    .inc();
            }
            Event::GroupCommit { jobs, seconds } => {
                self.histogram(&metrics::GROUP_COMMIT_JOBS, &[])
                    .observe(jobs as f64);
                self.histogram(&metrics::GROUP_COMMIT_DURATION, &[])
                    .observe(seconds);
            }
            Event::WalBytes { bytes } => {
                self.gauge(&metrics::WAL_BYTES, &[])
                    .set(i64::try_from(bytes).unwrap_or(i64::MAX));
            }
        }
    }

    fn monotonic_micros(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::metrics::Store;

    #[test]
    fn every_family_renders_and_events_move_their_series() {
        let registry = Arc::new(PrometheusMetrics::new("1.2.3"));
        registry.record(&Event::TokenRequest {
            grant: "client_credentials",
            outcome: "issued",
        });
        registry.record(&Event::HttpRequest {
            operation: "issueToken",
            status: 200,
            seconds: 0.002,
        });
        registry.record(&Event::StoreFailure {
            store: Store::KeyValue,
            operation: "admit",
        });
        let text = registry.render();
        for family in metrics::FAMILIES {
            assert!(
                text.contains(&format!("# TYPE {} ", family.name)),
                "{} missing from:\n{text}",
                family.name
            );
        }
        assert!(text.contains("agentidp_build_info{version=\"1.2.3\"} 1"));
        assert!(text.contains(
            "agentidp_token_requests_total{grant=\"client_credentials\",outcome=\"issued\"} 1"
        ));
        assert!(text.contains(
            "agentidp_http_request_duration_seconds_bucket{operation=\"issueToken\",le=\"0.0025\"} 1"
        ));
        assert!(text
            .contains("agentidp_store_failures_total{operation=\"admit\",store=\"key_value\"} 1"));
    }
}
