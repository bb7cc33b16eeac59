//! The Grafana dashboard (`deploy/grafana/agentidp.json`) asks only for what the server exports:
//! every query names at least one metric, each one a sample a running server's `/metrics` shows,
//! grouped and filtered only by labels its family declares.

use std::collections::BTreeSet;

use agentidp_shared::ports::metrics::{Kind, FAMILIES};
use agentidp_tests::{free_port, Server};
use serde_json::Value;

const DASHBOARD: &str = include_str!("../../deploy/grafana/agentidp.json");

/// Every `agentidp_*` identifier in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(found) = expr[i..].find("agentidp_") {
        let start = i + found;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        out.push(expr[start..end].to_owned());
        i = end;
    }
    out
}

/// Label names an expression groups by (`by (a, b)`) or matches on (`{a="x"}`).
fn label_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (open, close) in [("by (", ')'), ("{", '}')] {
        let mut rest = expr;
        while let Some(at) = rest.find(open) {
            let inner = &rest[at + open.len()..];
            let end = inner.find(close).unwrap_or(inner.len());
            for part in inner[..end].split(',') {
                let name = part.split(['=', '!', '~']).next().unwrap().trim();
                if !name.is_empty() {
                    out.push(name.to_owned());
                }
            }
            rest = &inner[end..];
        }
    }
    out
}

/// The family a sample name belongs to, and whether the sample is a histogram's `_bucket`.
fn family_of(sample: &str) -> Option<(&'static agentidp_shared::ports::metrics::Family, bool)> {
    FAMILIES.iter().find_map(|family| match family.kind {
        Kind::Histogram(_) => match sample.strip_prefix(family.name) {
            Some("_bucket") => Some((family, true)),
            Some("_sum" | "_count") => Some((family, false)),
            _ => None,
        },
        _ => (sample == family.name).then_some((family, false)),
    })
}

#[tokio::test]
async fn every_dashboard_query_names_an_exported_metric() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).unwrap();
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap().to_owned())
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");

    let listen = format!("127.0.0.1:{}", free_port());
    let server = Server::start_with(&[("AGENTIDP_METRICS_LISTEN", listen.as_str())]).await;
    server.bootstrap("scraped").await;
    let exposition = server
        .http
        .get(format!("http://{listen}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exported: BTreeSet<&str> = exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap())
        .collect();

    let mut asked = BTreeSet::new();
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "a query names no metric: {expr}");
        for name in &names {
            assert!(
                exported.contains(name.as_str()),
                "{name} is not exported: {expr}"
            );
            let (family, bucket) =
                family_of(name).unwrap_or_else(|| panic!("{name} is not declared"));
            for label in label_names(expr) {
                assert!(
                    family.labels.contains(&label.as_str()) || (bucket && label == "le"),
                    "{name} has no label `{label}`: {expr}"
                );
            }
            asked.insert(family.name);
        }
    }
    // The panels the issue asks for: token rate, latency, rate limits, store failures, group
    // commits and the WAL.
    for wanted in [
        "agentidp_token_requests_total",
        "agentidp_http_request_duration_seconds",
        "agentidp_rate_limited_total",
        "agentidp_store_failures_total",
        "agentidp_db_group_commit_jobs",
        "agentidp_db_wal_bytes",
    ] {
        assert!(asked.contains(wanted), "no panel shows {wanted}");
    }
}

#[test]
fn the_checks_catch_a_misnamed_metric_or_label() {
    assert_eq!(
        metric_names("rate(agentidp_token_request_total[5m])"),
        vec!["agentidp_token_request_total"]
    );
    assert!(family_of("agentidp_token_request_total").is_none());
    assert!(family_of("agentidp_db_wal_bytes_bucket").is_none());
    assert_eq!(
        label_names("sum by (grant, outcome) (rate(x{operation=\"issueToken\"}[1m]))"),
        vec!["grant", "outcome", "operation"]
    );
}
