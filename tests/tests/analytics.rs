//! Token analytics: the counters kept as events are written equal what the test itself did, per
//! organization, with another organization's activity excluded.

use std::collections::BTreeMap;

use agentidp_tests::{status_json, Org, Server};
use serde_json::Value;

async fn issue(server: &Server, org: &Org, name: &str, n: usize) -> String {
    let agent = server.agent_with_secret(org, name, &["agents:read"]).await;
    for _ in 0..n {
        server
            .token(&agent.client_id, &agent.client_secret, &[])
            .await;
    }
    // A refused client authentication is no token outcome.
    let refused = server.token_request(&agent.client_id, "wrong", &[]).await;
    assert_eq!(refused.status(), 401);
    agent.id
}

/// `group -> count`, summed over buckets.
async fn totals(server: &Server, org: &Org, query: &str) -> BTreeMap<String, i64> {
    let (status, body) = status_json(
        server
            .get(&format!("/v1/analytics/tokens?{query}"), &org.token)
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut out = BTreeMap::new();
    for point in body["series"].as_array().unwrap() {
        *out.entry(point["group"].as_str().unwrap().to_owned())
            .or_insert(0) += point["count"].as_i64().unwrap();
    }
    out
}

#[tokio::test]
async fn token_counts_equal_what_was_issued_per_organization() {
    let server = Server::start().await;
    // Sign-up issues one admin token in each organization (`Server::bootstrap`).
    let org = server.bootstrap("counted").await;
    let other = server.bootstrap("elsewhere").await;
    let first = issue(&server, &org, "first", 5).await;
    let second = issue(&server, &org, "second", 3).await;
    issue(&server, &other, "theirs", 4).await;

    let by_agent = totals(&server, &org, "group_by=agent").await;
    let expected: BTreeMap<String, i64> = [("-".to_owned(), 1), (first, 5), (second, 3)]
        .into_iter()
        .collect();
    assert_eq!(by_agent, expected);
    let by_grant = totals(&server, &org, "group_by=grant&bucket=day").await;
    assert_eq!(
        by_grant,
        [("client_credentials".to_owned(), 9)].into_iter().collect()
    );
    let by_outcome = totals(&server, &org, "").await;
    assert_eq!(
        by_outcome,
        [("success".to_owned(), 9)].into_iter().collect()
    );
    let theirs = totals(&server, &other, "group_by=outcome").await;
    assert_eq!(theirs, [("success".to_owned(), 5)].into_iter().collect());

    // A range before any activity is empty; bad parameters are refused by name.
    let empty = totals(
        &server,
        &org,
        "from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z",
    )
    .await;
    assert!(empty.is_empty());
    for (query, field) in [
        ("bucket=week", None),
        ("group_by=client", None),
        (
            "from=2020-01-01T00:00:00Z&to=2021-01-01T00:00:00Z",
            Some("from"),
        ),
    ] {
        let (status, body): (u16, Value) = status_json(
            server
                .get(&format!("/v1/analytics/tokens?{query}"), &org.token)
                .await,
        )
        .await;
        assert_eq!(status, 400, "{query}: {body}");
        if let Some(field) = field {
            assert_eq!(body["field"], field, "{body}");
        }
    }
}
