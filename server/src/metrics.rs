//! `GET /metrics` of the native server: the Prometheus registry on a listener of its own
//! (`AGENTIDP_METRICS_LISTEN`), never on the API's port, so a proxy in front of the API cannot
//! expose it; behind a bearer token (`AGENTIDP_METRICS_TOKEN`), which an address off loopback
//! requires. Without the variable there is no listener, no registry, and nothing is counted.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use agentidp_shared::axum::extract::State;
use agentidp_shared::axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use agentidp_shared::axum::response::{IntoResponse, Response};
use agentidp_shared::axum::routing::get;
use agentidp_shared::axum::Router;
use agentidp_shared::config::{self, ConfigError, ConfigSource};
use agentidp_shared::platform::metrics_prometheus::{PrometheusMetrics, CONTENT_TYPE};
use agentidp_shared::platform::wal;
use agentidp_shared::ports::metrics::{self, Event};
use tokio::net::TcpListener;

/// Where and how `/metrics` is served.
pub struct Endpoint {
    pub listen: SocketAddr,
    token: Option<String>,
}

impl Endpoint {
    /// The configured endpoint, or `None` when metrics are off.
    pub fn load(source: &dyn ConfigSource) -> Result<Option<Endpoint>, ConfigError> {
        let Some(raw) = config::METRICS_LISTEN.text(source) else {
            return Ok(None);
        };
        let listen: SocketAddr = raw.trim().parse().map_err(|_| ConfigError {
            variable: config::METRICS_LISTEN.name,
            reason: format!("`{raw}` is not a socket address such as 127.0.0.1:9464"),
        })?;
        let token = config::METRICS_TOKEN.text(source);
        if !listen.ip().is_loopback() && token.is_none() {
            return Err(ConfigError {
                variable: config::METRICS_TOKEN.name,
                reason: format!(
                    "is required when {} is not a loopback address ({listen}): metrics are not public",
                    config::METRICS_LISTEN.name
                ),
            });
        }
        Ok(Some(Endpoint { listen, token }))
    }
}

/// What a scrape needs.
struct Scrape {
    registry: Arc<PrometheusMetrics>,
    token: Option<String>,
    /// The embedded database's write-ahead log, measured at each scrape.
    wal: Option<PathBuf>,
}

/// Installs the registry as the process's metrics sink and binds its listener.
pub async fn start(
    endpoint: Endpoint,
    embedded_db: Option<PathBuf>,
) -> Result<(TcpListener, Router), String> {
    let registry = PrometheusMetrics::install(env!("CARGO_PKG_VERSION"))
        .ok_or("a metrics sink was installed already")?;
    let listener = TcpListener::bind(endpoint.listen)
        .await
        .map_err(|e| format!("cannot listen on {} for metrics: {e}", endpoint.listen))?;
    let scrape = Arc::new(Scrape {
        registry,
        token: endpoint.token,
        wal: embedded_db.map(|db| wal::wal_path(&db)),
    });
    let app = Router::new()
        .route("/metrics", get(scrape_metrics))
        .with_state(scrape);
    Ok((listener, app))
}

async fn scrape_metrics(State(scrape): State<Arc<Scrape>>, headers: HeaderMap) -> Response {
    if let Some(expected) = &scrape.token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        if !presented.is_some_and(|p| constant_time_eq(p.as_bytes(), expected.as_bytes())) {
            let mut response =
                (StatusCode::UNAUTHORIZED, "a bearer token is required\n").into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="agentidp-metrics""#),
            );
            return response;
        }
    }
    if let Some(wal) = &scrape.wal {
        let bytes = std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0);
        metrics::record(Event::WalBytes { bytes });
    }
    let mut response = scrape.registry.render().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Compares without stopping at the first difference, so timing does not reveal a prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn metrics_are_off_by_default_and_never_public_without_a_token() {
        assert!(Endpoint::load(&source(&[])).unwrap().is_none());
        let local = Endpoint::load(&source(&[("AGENTIDP_METRICS_LISTEN", "127.0.0.1:9464")]));
        assert!(local.unwrap().is_some());
        let open = Endpoint::load(&source(&[("AGENTIDP_METRICS_LISTEN", "0.0.0.0:9464")]));
        assert_eq!(open.err().unwrap().variable, "AGENTIDP_METRICS_TOKEN");
        let guarded = Endpoint::load(&source(&[
            ("AGENTIDP_METRICS_LISTEN", "0.0.0.0:9464"),
            ("AGENTIDP_METRICS_TOKEN", "s3cret"),
        ]));
        assert!(guarded.unwrap().is_some());
        let bad = Endpoint::load(&source(&[("AGENTIDP_METRICS_LISTEN", "localhost")]));
        assert_eq!(bad.err().unwrap().variable, "AGENTIDP_METRICS_LISTEN");
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
