//! The metrics seam: every metric the service exports, declared once here (name, kind, labels,
//! help), the events the core counts, and the process-wide sink a platform installs (Prometheus
//! natively, structured log lines at the edge). Until one is installed, counting does nothing.
//!
//! Like `tracing`'s dispatcher, the sink is global rather than part of the state: the rate
//! limiter, the database writer thread and the storage adapters count where they stand, without
//! a handle threaded through every constructor. Label values are bounded sets (route-table
//! operations, grant types, error codes), never ids or raw paths.

use std::sync::OnceLock;

/// What kind of series a metric is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Counter,
    Gauge,
    /// With these bucket bounds.
    Histogram(&'static [f64]),
}

/// One exported metric.
#[derive(Clone, Copy, Debug)]
pub struct Family {
    /// The Prometheus name; counters end in `_total`.
    pub name: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
    pub help: &'static str,
    /// Label values exported (at zero) before anything is counted, so rates over them work from
    /// the first scrape; families without labels always are.
    pub initial: &'static [&'static [&'static str]],
}

/// Latency buckets in seconds: from a cached introspection (well under a millisecond) to a
/// request stuck behind a slow remote store.
const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Group-commit durations: one fsync is ~0.1 ms on a fast disk, tens of ms on a slow one.
const COMMIT_SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
/// Jobs per group commit, up to the writer's cap of 512.
const COMMIT_JOBS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

pub const BUILD_INFO: Family = Family {
    name: "agentidp_build_info",
    kind: Kind::Gauge,
    labels: &["version"],
    help: "Always 1; the running build's version as a label.",
    initial: &[],
};
pub const HTTP_REQUESTS: Family = Family {
    name: "agentidp_http_requests_total",
    kind: Kind::Counter,
    labels: &["operation", "status"],
    help: "HTTP requests answered, by the route table's operation (`unmatched` for unknown \
           routes) and status code.",
    initial: &[],
};
pub const HTTP_REQUEST_DURATION: Family = Family {
    name: "agentidp_http_request_duration_seconds",
    kind: Kind::Histogram(SECONDS),
    labels: &["operation"],
    help: "Time from a request's arrival to its response head, by operation.",
    initial: &[],
};
pub const TOKEN_REQUESTS: Family = Family {
    name: "agentidp_token_requests_total",
    kind: Kind::Counter,
    labels: &["grant", "outcome"],
    help: "Token endpoint requests by grant type (`unsupported` for others) and outcome \
           (`issued`, or the OAuth error code).",
    initial: &[],
};
pub const AUTHENTICATION_FAILURES: Family = Family {
    name: "agentidp_authentication_failures_total",
    kind: Kind::Counter,
    labels: &["method"],
    help: "Failed authentications by method: client_secret_basic, client_secret_post, \
           private_key_jwt, none (no credentials) at /oauth2/*, bearer on /v1/*.",
    initial: &[
        &["client_secret_basic"],
        &["client_secret_post"],
        &["private_key_jwt"],
        &["none"],
        &["bearer"],
    ],
};
pub const RATE_LIMITED: Family = Family {
    name: "agentidp_rate_limited_total",
    kind: Kind::Counter,
    labels: &["limit"],
    help: "Requests refused by a rate limit: organization, an agent's or an admin client's \
           share of it, client, ip, or a failed-authentication budget (per address or per client).",
    initial: &[
        &["organization"],
        &["agent"],
        &["admin_client"],
        &["client"],
        &["ip"],
        &["failed_authentication_ip"],
        &["failed_authentication_client"],
    ],
};
pub const RATE_LIMIT_FAIL_OPEN: Family = Family {
    name: "agentidp_rate_limit_fail_open_total",
    kind: Kind::Counter,
    labels: &[],
    help: "Requests admitted unchecked because the rate-limit store failed \
           (AGENTIDP_RATE_LIMIT_ON_KV_FAILURE=open).",
    initial: &[],
};
pub const STORE_FAILURES: Family = Family {
    name: "agentidp_store_failures_total",
    kind: Kind::Counter,
    labels: &["store", "operation"],
    help: "Failed calls to the database or the key-value store (unavailable, timed out, \
           engine errors; refused constraints are not failures), by operation.",
    initial: &[
        &["database", "query"],
        &["database", "transaction"],
        &["database", "commit"],
        &["database", "script"],
        &["key_value", "get"],
        &["key_value", "set"],
        &["key_value", "set_if_absent"],
        &["key_value", "admit"],
    ],
};
pub const GROUP_COMMIT_JOBS: Family = Family {
    name: "agentidp_db_group_commit_jobs",
    kind: Kind::Histogram(COMMIT_JOBS),
    labels: &[],
    help: "Changes folded into one transaction by the embedded database's writer.",
    initial: &[],
};
pub const GROUP_COMMIT_DURATION: Family = Family {
    name: "agentidp_db_group_commit_duration_seconds",
    kind: Kind::Histogram(COMMIT_SECONDS),
    labels: &[],
    help: "Time the writer spends on one group commit, fsync included.",
    initial: &[],
};
pub const WAL_BYTES: Family = Family {
    name: "agentidp_db_wal_bytes",
    kind: Kind::Gauge,
    labels: &[],
    help: "Size of the embedded database's write-ahead log when scraped.",
    initial: &[],
};

/// Every metric, in the order they are exported.
pub const FAMILIES: &[Family] = &[
    BUILD_INFO,
    HTTP_REQUESTS,
    HTTP_REQUEST_DURATION,
    TOKEN_REQUESTS,
    AUTHENTICATION_FAILURES,
    RATE_LIMITED,
    RATE_LIMIT_FAIL_OPEN,
    STORE_FAILURES,
    GROUP_COMMIT_JOBS,
    GROUP_COMMIT_DURATION,
    WAL_BYTES,
];

/// Which store failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    Database,
    KeyValue,
}

impl Store {
    pub fn as_str(self) -> &'static str {
        match self {
            Store::Database => "database",
            Store::KeyValue => "key_value",
        }
    }
}

/// Something the core counts.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    HttpRequest {
        operation: &'a str,
        status: u16,
        seconds: f64,
    },
    TokenRequest {
        grant: &'a str,
        outcome: &'a str,
    },
    AuthenticationFailure {
        method: &'a str,
    },
    RateLimited {
        limit: &'a str,
    },
    RateLimitFailedOpen,
    StoreFailure {
        store: Store,
        operation: &'a str,
    },
    GroupCommit {
        jobs: usize,
        seconds: f64,
    },
    WalBytes {
        bytes: u64,
    },
}

impl Event<'_> {
    /// The metric this event moves (a request moves the duration histogram too).
    pub fn family(&self) -> &'static Family {
        match self {
            Event::HttpRequest { .. } => &HTTP_REQUESTS,
            Event::TokenRequest { .. } => &TOKEN_REQUESTS,
            Event::AuthenticationFailure { .. } => &AUTHENTICATION_FAILURES,
            Event::RateLimited { .. } => &RATE_LIMITED,
            Event::RateLimitFailedOpen => &RATE_LIMIT_FAIL_OPEN,
            Event::StoreFailure { .. } => &STORE_FAILURES,
            Event::GroupCommit { .. } => &GROUP_COMMIT_JOBS,
            Event::WalBytes { .. } => &WAL_BYTES,
        }
    }
}

/// Where events go.
pub trait Metrics: Send + Sync + 'static {
    fn record(&self, event: &Event<'_>);

    /// Microseconds on a clock that only moves forward, for durations.
    fn monotonic_micros(&self) -> u64;
}

static SINK: OnceLock<Box<dyn Metrics>> = OnceLock::new();

/// Installs the process's sink; the first installation wins (false for later ones).
pub fn install(sink: Box<dyn Metrics>) -> bool {
    SINK.set(sink).is_ok()
}

/// Whether a sink is installed: callers skip preparing an event nobody would see.
pub fn is_enabled() -> bool {
    SINK.get().is_some()
}

/// Counts `event`, if anyone is listening.
pub fn record(event: Event<'_>) {
    if let Some(sink) = SINK.get() {
        sink.record(&event);
    }
}

/// A duration measured on the sink's monotonic clock (zero without a sink).
#[derive(Clone, Copy, Debug)]
pub struct Stopwatch(u64);

impl Stopwatch {
    pub fn start() -> Stopwatch {
        Stopwatch(SINK.get().map_or(0, |s| s.monotonic_micros()))
    }

    pub fn seconds(self) -> f64 {
        let now = SINK.get().map_or(0, |s| s.monotonic_micros());
        now.saturating_sub(self.0) as f64 / 1_000_000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_prometheus_names() {
        for (i, a) in FAMILIES.iter().enumerate() {
            assert!(a.name.starts_with("agentidp_"), "{}", a.name);
            assert!(a
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
            assert_eq!(
                a.kind == Kind::Counter,
                a.name.ends_with("_total"),
                "{}",
                a.name
            );
            for b in &FAMILIES[i + 1..] {
                assert_ne!(a.name, b.name);
            }
            if let Kind::Histogram(bounds) = a.kind {
                assert!(bounds.windows(2).all(|w| w[0] < w[1]), "{}", a.name);
            }
        }
    }
}
