//! `/metrics` of the native server, read by an independent parser (the reference Prometheus client
//! for Python, `tests/python/parse_metrics.py`): every declared family exported with its type,
//! counters moving exactly as requests are made, labelled by the route table's operation and never
//! by an id, and the endpoint kept off the API's port and behind its token.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use agentidp_shared::ports::metrics::{Kind, FAMILIES};
use agentidp_tests::{free_port, RedisServer, Server};
use serde_json::Value;

/// The virtualenv `scripts/test.sh setup` makes, with `tests/python/requirements.txt` installed.
fn python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let python = target.join("pyenv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `bash scripts/test.sh setup` (it installs prometheus-client)",
        python.display()
    );
    python
}

/// What the Python parser read.
struct Exposition {
    /// Family name (counters without `_total`, as the parser names them) → type.
    families: HashMap<String, String>,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Exposition {
    /// The sample with exactly these labels (0 when absent: a counter not yet moved).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples
            .iter()
            .find(|(n, l, _)| n == name && *l == wanted)
            .map_or(0.0, |(_, _, v)| *v)
    }
}

/// Runs the independent parser over `text`; `Err` with its message when it refuses it.
fn parse(text: &str) -> Result<Exposition, String> {
    let mut child = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("python/parse_metrics.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the Python parser");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let parsed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let families = parsed["families"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let samples = parsed["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let labels = s[1]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            (
                s[0].as_str().unwrap().to_owned(),
                labels,
                s[2].as_f64().unwrap(),
            )
        })
        .collect();
    Ok(Exposition { families, samples })
}

async fn scrape(server: &Server, metrics: &str, token: Option<&str>) -> Exposition {
    let mut request = server.http.get(format!("{metrics}/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    parse(&text).unwrap_or_else(|e| panic!("the parser refused the exposition: {e}\n{text}"))
}

fn metrics_address() -> (String, String) {
    let listen = format!("127.0.0.1:{}", free_port());
    (listen.clone(), format!("http://{listen}"))
}

#[test]
fn the_parser_refuses_a_malformed_exposition() {
    assert!(parse("# TYPE x counter\nx_total{a=\"1\" 2\n").is_err());
    let ok = parse("# TYPE x counter\nx_total{a=\"1\"} 2\n").unwrap();
    assert_eq!(ok.value("x_total", &[("a", "1")]), 2.0);
}

#[tokio::test]
async fn counters_move_as_requests_are_made() {
    let (listen, metrics) = metrics_address();
    let server = Server::start_with(&[
        ("AGENTIDP_METRICS_LISTEN", listen.as_str()),
        ("RATE_LIMIT_PER_MINUTE", "3"),
    ])
    .await;
    let before = scrape(&server, &metrics, None).await;

    let org = server.bootstrap("metrics").await;
    let refused = server.token_request(&org.client_id, "wrong", &[]).await;
    assert_eq!(refused.status(), 401);
    let posted = server
        .http
        .post(server.url("/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", org.client_id.as_str()),
            ("client_secret", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 401);
    assert_eq!(server.get("/v1/agents", "garbage").await.status(), 401);
    for expected in [200, 200, 200, 429] {
        assert_eq!(
            server.get("/v1/agents", &org.token).await.status(),
            expected
        );
    }
    let id = "5f0c7a9e-1d7b-4c3e-9a52-6b1f0e0c2d11";
    let unknown = server.get(&format!("/v1/agents/{id}"), &org.token).await;
    assert_eq!(
        unknown.status(),
        429,
        "the organization's window is still full"
    );
    let nowhere = server.http.get(server.url("/no/such/route")).send().await;
    assert_eq!(nowhere.unwrap().status(), 404);

    let after = scrape(&server, &metrics, None).await;

    // Every declared family, with its declared type.
    for family in FAMILIES {
        let (name, kind) = match family.kind {
            Kind::Counter => (family.name.trim_end_matches("_total"), "counter"),
            Kind::Gauge => (family.name, "gauge"),
            Kind::Histogram(_) => (family.name, "histogram"),
        };
        assert_eq!(
            after.families.get(name).map(String::as_str),
            Some(kind),
            "{name}"
        );
    }
    let moved = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    let tokens = "agentidp_token_requests_total";
    assert_eq!(
        moved(
            tokens,
            &[("grant", "client_credentials"), ("outcome", "issued")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            tokens,
            &[
                ("grant", "client_credentials"),
                ("outcome", "invalid_client")
            ]
        ),
        2.0
    );
    let failures = "agentidp_authentication_failures_total";
    assert_eq!(moved(failures, &[("method", "client_secret_basic")]), 1.0);
    assert_eq!(moved(failures, &[("method", "client_secret_post")]), 1.0);
    assert_eq!(moved(failures, &[("method", "bearer")]), 1.0);
    assert_eq!(moved(failures, &[("method", "private_key_jwt")]), 0.0);
    assert_eq!(
        moved("agentidp_rate_limited_total", &[("limit", "organization")]),
        2.0
    );
    let requests = "agentidp_http_requests_total";
    for (operation, status, count) in [
        ("createOrganization", "201", 1.0),
        ("issueToken", "200", 1.0),
        ("issueToken", "401", 2.0),
        ("listAgents", "200", 3.0),
        ("listAgents", "401", 1.0),
        ("listAgents", "429", 1.0),
        ("getAgent", "429", 1.0),
        ("unmatched", "404", 1.0),
    ] {
        assert_eq!(
            moved(requests, &[("operation", operation), ("status", status)]),
            count,
            "{operation} {status}"
        );
    }
    // Labels are the route table's operations and status codes, never a path or an id.
    for (name, labels, _) in &after.samples {
        assert!(
            labels.values().all(|v| !v.contains('/') && v != id),
            "{name} {labels:?}"
        );
    }
    // The latency histogram: cumulative buckets ending at the count.
    let duration = "agentidp_http_request_duration_seconds";
    let count = after.value(&format!("{duration}_count"), &[("operation", "issueToken")]);
    assert_eq!(
        count - before.value(&format!("{duration}_count"), &[("operation", "issueToken")]),
        3.0
    );
    let buckets: Vec<f64> = after
        .samples
        .iter()
        .filter(|(n, l, _)| {
            *n == format!("{duration}_bucket")
                && l.get("operation").is_some_and(|o| o == "issueToken")
        })
        .map(|(_, _, v)| *v)
        .collect();
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert_eq!(
        after.value(
            &format!("{duration}_bucket"),
            &[("operation", "issueToken"), ("le", "+Inf")]
        ),
        count
    );
    // The embedded writer committed the sign-up and the token's audit event, in groups.
    let commits = after.value("agentidp_db_group_commit_jobs_count", &[])
        - before.value("agentidp_db_group_commit_jobs_count", &[]);
    assert!(commits >= 2.0, "{commits}");
    assert!(
        after.value("agentidp_db_group_commit_jobs_sum", &[])
            >= after.value("agentidp_db_group_commit_jobs_count", &[])
    );
    assert!(after.value("agentidp_db_group_commit_duration_seconds_sum", &[]) > 0.0);
    assert!(after
        .samples
        .iter()
        .any(|(n, _, _)| n == "agentidp_db_wal_bytes"));
    assert_eq!(
        after.value(
            "agentidp_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert_eq!(
        after.value(
            "agentidp_store_failures_total",
            &[("store", "database"), ("operation", "commit")]
        ),
        0.0
    );
}

#[tokio::test]
async fn metrics_stay_off_the_api_port_and_behind_their_token() {
    let (listen, metrics) = metrics_address();
    let server = Server::start_with(&[
        ("AGENTIDP_METRICS_LISTEN", listen.as_str()),
        ("AGENTIDP_METRICS_TOKEN", "scrape-secret"),
    ])
    .await;
    let on_api = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(on_api.status(), 404);
    for token in [None, Some("wrong"), Some("scrape-secre")] {
        let mut request = server.http.get(format!("{metrics}/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{token:?}");
        assert!(response.headers().contains_key("www-authenticate"));
    }
    let exposition = scrape(&server, &metrics, Some("scrape-secret")).await;
    assert!(exposition
        .samples
        .iter()
        .any(|(n, _, _)| n == "agentidp_build_info"));
}

#[tokio::test]
async fn key_value_failures_are_counted() {
    let mut redis = RedisServer::start();
    let (listen, metrics) = metrics_address();
    let server = Server::start_with(&[
        ("AGENTIDP_METRICS_LISTEN", listen.as_str()),
        ("REDIS_URL", redis.url.as_str()),
        ("AGENTIDP_KV_TIMEOUT_MS", "200"),
    ])
    .await;
    let org = server.bootstrap("outage").await;
    let failed = |e: &Exposition| {
        ["get", "set", "set_if_absent", "admit"]
            .iter()
            .map(|op| {
                e.value(
                    "agentidp_store_failures_total",
                    &[("store", "key_value"), ("operation", op)],
                )
            })
            .sum::<f64>()
    };
    let before = scrape(&server, &metrics, None).await;
    assert_eq!(failed(&before), 0.0);
    redis.kill();
    // Revocation fails closed: the call is refused, and the failure counted.
    let response = server.get("/v1/agents", &org.token).await;
    assert_eq!(response.status(), 503);
    let after = scrape(&server, &metrics, None).await;
    assert!(failed(&after) >= 1.0, "no key-value failure counted");
    assert!(
        after.value(
            "agentidp_http_requests_total",
            &[("operation", "listAgents"), ("status", "503")]
        ) >= 1.0
    );
}

/// A client whose failure budget is spent is refused even with the right secret, and the refusal
/// is counted under the budget that refused it, not as an organization's limit.
#[tokio::test]
async fn a_spent_failure_budget_is_counted_by_its_own_label() {
    let (listen, metrics) = metrics_address();
    let server = Server::start_with(&[
        ("AGENTIDP_METRICS_LISTEN", listen.as_str()),
        ("AGENTIDP_RATE_LIMIT_CLIENT_FAILURES_PER_MINUTE", "2"),
    ])
    .await;
    let org = server.bootstrap("budget").await;
    let before = scrape(&server, &metrics, None).await;
    for _ in 0..2 {
        let refused = server.token_request(&org.client_id, "wrong", &[]).await;
        assert_eq!(refused.status(), 401);
    }
    let right = server
        .token_request(&org.client_id, &org.client_secret, &[])
        .await;
    assert_eq!(right.status(), 429, "the budget is spent");
    let after = scrape(&server, &metrics, None).await;
    let moved = |limit: &str| {
        let labels = [("limit", limit)];
        after.value("agentidp_rate_limited_total", &labels)
            - before.value("agentidp_rate_limited_total", &labels)
    };
    assert_eq!(moved("failed_authentication_client"), 1.0);
    assert_eq!(moved("organization"), 0.0);
    assert_eq!(moved("client"), 0.0);
}
