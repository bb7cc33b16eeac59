//! Rotating a client secret is a compare-and-set: concurrent rotations cannot lose one another's
//! secrets, and a grace period, once promised, holds.

use agentidp_tests::{assert_problem, status_json, Server};
use serde_json::{json, Value};

async fn authenticates(server: &Server, client_id: &str, secret: &str) -> bool {
    let status = server.token_request(client_id, secret, &[]).await.status();
    assert!(status == 200 || status == 401, "{status}");
    status == 200
}

#[tokio::test]
async fn concurrent_rotations_hand_out_only_working_secrets() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let agent = server.agent_with_secret(&org, "busy", &[]).await;
    let path = format!(
        "/v1/agents/{}/credentials/{}/rotate",
        agent.id, agent.credential_id
    );
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (http, url, token) = (server.http.clone(), server.url(&path), org.token.clone());
        tasks.spawn(async move {
            let response = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "grace_period_seconds": 600 }))
                .send()
                .await
                .unwrap();
            status_json(response).await
        });
    }
    let mut issued = Vec::new();
    let mut conflicts = 0;
    while let Some(answer) = tasks.join_next().await {
        let (status, body) = answer.unwrap();
        match status {
            200 => issued.push(body["client_secret"].as_str().unwrap().to_owned()),
            409 => {
                assert!(
                    ["conflict", "grace_period_running"].contains(&body["code"].as_str().unwrap()),
                    "{body}"
                );
                conflicts += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(issued.len() + conflicts, 20);
    // Every secret handed out works, and so does the one it replaced, for its grace period.
    for secret in &issued {
        assert!(
            authenticates(&server, &agent.client_id, secret).await,
            "{} of 20 rotations answered 200; a secret they handed out does not work",
            issued.len()
        );
    }
    assert!(
        authenticates(&server, &agent.client_id, &agent.client_secret).await,
        "the previous secret stopped working despite its grace period"
    );
}

#[tokio::test]
async fn a_running_grace_period_is_not_cut_short() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let agent = server.agent_with_secret(&org, "careful", &[]).await;
    let path = format!(
        "/v1/agents/{}/credentials/{}/rotate",
        agent.id, agent.credential_id
    );
    let (status, first) = status_json(
        server
            .post(&path, &org.token, json!({ "grace_period_seconds": 600 }))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let first_secret = first["client_secret"].as_str().unwrap();

    // Another rotation with a grace period would silently end the running one.
    let response = server
        .post(&path, &org.token, json!({ "grace_period_seconds": 600 }))
        .await;
    let body = assert_problem(status_json(response).await, 409, "grace_period_running");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("grace_period_seconds"));
    assert!(authenticates(&server, &agent.client_id, &agent.client_secret).await);
    assert!(authenticates(&server, &agent.client_id, first_secret).await);

    // Asking for no grace period ends every earlier secret at once, explicitly.
    let (status, second): (u16, Value) = status_json(
        server
            .post(&path, &org.token, json!({ "grace_period_seconds": 0 }))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert!(!authenticates(&server, &agent.client_id, &agent.client_secret).await);
    assert!(!authenticates(&server, &agent.client_id, first_secret).await);
    let second_secret = second["client_secret"].as_str().unwrap();
    assert!(authenticates(&server, &agent.client_id, second_secret).await);
}
