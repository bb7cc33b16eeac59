//! The native server as a process: configuration errors, fallbacks, health, durability across
//! restarts, and graceful shutdown.

use std::process::Command;

use agentidp_tests::{server_binary, status_json, Server};
use serde_json::{json, Value};

fn start_fails_naming(variable: &str, value: &str) {
    let output = Command::new(server_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(std::env::temp_dir().join(format!("agentidp-config-{}", std::process::id())))
        .env(variable, value)
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "{variable}={value} should be refused"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(variable),
        "the error should name {variable}: {stderr}"
    );
}

#[test]
fn malformed_configuration_fails_at_start_naming_the_variable() {
    start_fails_naming("AGENTIDP_TOKEN_TTL_SECONDS", "an hour");
    start_fails_naming("AGENTIDP_TOKEN_TTL_SECONDS", "5");
    start_fails_naming("AGENTIDP_ISSUER", "not a url");
    start_fails_naming("AGENTIDP_MAX_AGENTS_PER_ORG", "-1");
    start_fails_naming("AGENTIDP_DB_SYNCHRONOUS", "sometimes");
}

#[tokio::test]
async fn unknown_routes_and_methods_get_problems() {
    let server = Server::start().await;
    let response = server
        .http
        .get(server.url("/v2/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let (status, body) = status_json(response).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("route_not_found"))
    );
    assert_eq!(body["status"], 404);

    let response = server
        .http
        .delete(server.url("/oauth2/token"))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (405, Some("method_not_allowed"))
    );

    let (status, body) = status_json(
        server
            .http
            .get(server.url("/health/detailed"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["checks"]["database"]["status"], "ok");
    assert_eq!(body["checks"]["key_value"]["status"], "ok");
}

#[tokio::test]
async fn everything_acknowledged_survives_a_restart() {
    let mut server = Server::start_with(&[
        ("AGENTIDP_ISSUER", "http://agentidp.test"),
        ("AGENTIDP_DB_SYNCHRONOUS", "full"),
    ])
    .await;
    let org = server.bootstrap("durable").await;
    let agent = server
        .agent_with_secret(&org, "keeper", &["agents:read"])
        .await;
    let token = server
        .token(&agent.client_id, &agent.client_secret, &[])
        .await;
    let data_dir = server.data_dir.clone();
    assert!(
        server.stop().success(),
        "SIGTERM should end the server cleanly"
    );

    let server = Server::start_in(data_dir, &[("AGENTIDP_ISSUER", "http://agentidp.test")]).await;
    // The agent, its credential, the signing key and the audit trail are all still there.
    assert_eq!(
        server
            .get(&format!("/v1/agents/{}", agent.id), &token)
            .await
            .status(),
        200
    );
    let again = server
        .token(&agent.client_id, &agent.client_secret, &[])
        .await;
    assert_eq!(server.get("/v1/agents", &again).await.status(), 200);
    let admin = server.token(&org.client_id, &org.client_secret, &[]).await;
    let (status, body) = status_json(server.get("/v1/audit/verify", &admin).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["valid"], true, "{body}");
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let mut server = Server::start().await;
    let org = server.bootstrap("inflight").await;
    // Many concurrent writes in flight when SIGTERM arrives: each either completes with a response
    // or was never accepted; none is cut off mid-way with a 5xx, and every acknowledged one is
    // there after a restart.
    let mut requests = Vec::new();
    for i in 0..40 {
        let http = server.http.clone();
        let url = server.url("/v1/agents");
        let token = org.token.clone();
        requests.push(tokio::spawn(async move {
            let response = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "name": format!("agent-{i}"), "agent_type": "worker" }))
                .send()
                .await?;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            Ok::<_, reqwest::Error>((status, body["id"].as_str().map(str::to_owned)))
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert!(server.stop().success());
    let mut acknowledged = Vec::new();
    for request in requests {
        if let Ok((status, id)) = request.await.unwrap() {
            assert_eq!(status, 201);
            acknowledged.push(id.expect("a created agent has an id"));
        }
    }
    assert!(
        !acknowledged.is_empty(),
        "no request was in flight when SIGTERM arrived: the test proved nothing"
    );
    let server = Server::start_in(server.data_dir.clone(), &[]).await;
    let token = server.token(&org.client_id, &org.client_secret, &[]).await;
    let listed: Value = server
        .get("/v1/agents?limit=200", &token)
        .await
        .json()
        .await
        .unwrap();
    let stored: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["id"].as_str())
        .collect();
    for id in &acknowledged {
        assert!(
            stored.contains(&id.as_str()),
            "acknowledged agent {id} was lost"
        );
    }
}
