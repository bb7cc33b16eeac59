//! The compliance report's figures equal what the test itself did, per organization, with another
//! organization's activity excluded; the CSV carries the same facts.

use agentidp_tests::{status_json, Server};
use serde_json::Value;

fn count_actions(report: &Value, action: &str) -> usize {
    report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == action)
        .count()
}

#[tokio::test]
async fn the_report_counts_what_happened_in_the_organization_only() {
    let server = Server::start().await;
    let org = server.bootstrap("reported").await;
    let other = server.bootstrap("elsewhere").await;
    let alpha = server
        .agent_with_secret(&org, "alpha", &["agents:read"])
        .await;
    let beta = server.agent_with_secret(&org, "beta", &[]).await;
    for _ in 0..5 {
        server
            .token(&alpha.client_id, &alpha.client_secret, &[])
            .await;
    }
    for _ in 0..2 {
        let refused = server.token_request(&alpha.client_id, "wrong", &[]).await;
        assert_eq!(refused.status(), 401);
    }
    let theirs = server.agent_with_secret(&other, "theirs", &[]).await;
    for _ in 0..3 {
        server
            .token(&theirs.client_id, &theirs.client_secret, &[])
            .await;
    }

    let (status, report) = status_json(server.get("/v1/compliance/report", &org.token).await).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["agents_by_status"]["active"], 2, "{report}");
    assert_eq!(report["agents_by_status"]["suspended"], 0);
    let credentials = report["credentials"].as_array().unwrap();
    assert_eq!(credentials.len(), 2, "{report}");
    for c in credentials {
        assert_eq!(c["age_days"], 0);
        assert!(c["agent_id"] == alpha.id.as_str() || c["agent_id"] == beta.id.as_str());
    }
    assert_eq!(report["credentials_unused_90_days"], serde_json::json!([]));
    assert_eq!(report["agents_never_rotated"].as_array().unwrap().len(), 2);
    assert_eq!(report["admin_credentials"].as_array().unwrap().len(), 1);
    assert_eq!(
        report["admin_credentials"][0]["client_id"],
        org.client_id.as_str()
    );
    assert_eq!(count_actions(&report, "agent.created"), 2, "{report}");
    assert_eq!(count_actions(&report, "credential.created"), 2, "{report}");
    let activity = report["activity_per_agent"].as_array().unwrap();
    let of = |agent: &str| activity.iter().find(|a| a["agent_id"] == agent).cloned();
    let alpha_activity = of(&alpha.id).unwrap();
    assert_eq!(alpha_activity["tokens_issued"], 5, "{report}");
    assert_eq!(alpha_activity["failed_authentications"], 2, "{report}");
    assert_eq!(of("-").unwrap()["tokens_issued"], 1, "{report}");
    assert!(of(&theirs.id).is_none());
    assert!(report["latest_checkpoint"]["note"]
        .as_str()
        .unwrap()
        .contains(&format!("/audit/{}\n", org.id)));

    // The CSV: the same facts, one per row.
    let response = server
        .http
        .get(server.url("/v1/compliance/report"))
        .bearer_auth(&org.token)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = response.text().await.unwrap();
    assert!(csv.starts_with("section,subject,field,value\r\n"), "{csv}");
    assert!(csv.contains("agents_by_status,,active,2\r\n"), "{csv}");
    assert!(
        csv.contains(&format!(
            "activity_per_agent,{},tokens_issued,5\r\n",
            alpha.id
        )),
        "{csv}"
    );
    assert!(!csv.contains(&theirs.id));

    // A bad period is refused by name; another organization's report is its own.
    let (status, body) = status_json(
        server
            .get("/v1/compliance/report?from=yesterday", &org.token)
            .await,
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("from")),
        "{body}"
    );
    let (_, theirs_report) =
        status_json(server.get("/v1/compliance/report", &other.token).await).await;
    assert_eq!(theirs_report["agents_by_status"]["active"], 1);
}
