//! The organization's admin credentials: listed, created, rotated with a grace period and revoked
//! (with the tokens obtained with them), never the last one, only within the caller's organization.

use agentidp_tests::{assert_problem, status_json, Server};
use serde_json::{json, Value};

async fn authenticates(server: &Server, client_id: &str, secret: &str) -> bool {
    server.token_request(client_id, secret, &[]).await.status() == 200
}

#[tokio::test]
async fn the_admin_credential_is_listed_rotated_and_revoked() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;

    // The credential sign-up handed out is listed, without its secret.
    let (status, list) = status_json(server.get("/v1/orgs/credentials", &org.token).await).await;
    assert_eq!(status, 200, "{list}");
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{list}");
    assert_eq!(data[0]["client_id"], org.client_id.as_str());
    assert_eq!(data[0]["status"], "active");
    assert!(data[0].get("client_secret").is_none());
    let first_id = data[0]["id"].as_str().unwrap().to_owned();

    // Rotation with a grace period: the new secret is shown once, and both work meanwhile.
    let (status, rotated) = status_json(
        server
            .post(
                &format!("/v1/orgs/credentials/{first_id}/rotate"),
                &org.token,
                json!({ "grace_period_seconds": 300 }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["client_id"], org.client_id.as_str());
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert!(
        rotated["previous_secret_expires_at"].is_string(),
        "{rotated}"
    );
    assert!(authenticates(&server, &org.client_id, &new_secret).await);
    assert!(authenticates(&server, &org.client_id, &org.client_secret).await);

    // The last active admin credential cannot be revoked: that would lock the organization out.
    let response = server
        .delete(&format!("/v1/orgs/credentials/{first_id}"), &org.token)
        .await;
    assert_problem(status_json(response).await, 409, "last_admin_credential");

    // A second admin credential, then the first revoked, with the tokens obtained with it.
    let (status, second) = status_json(
        server
            .post("/v1/orgs/credentials", &org.token, json!({}))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{second}");
    let second_token = server
        .token(
            second["client_id"].as_str().unwrap(),
            second["client_secret"].as_str().unwrap(),
            &[],
        )
        .await;
    let (status, revoked) = status_json(
        server
            .delete(&format!("/v1/orgs/credentials/{first_id}"), &second_token)
            .await,
    )
    .await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(
        server.get("/v1/agents", &org.token).await.status(),
        401,
        "a token of the revoked credential still works"
    );
    assert!(!authenticates(&server, &org.client_id, &new_secret).await);
    assert!(!authenticates(&server, &org.client_id, &org.client_secret).await);
    // Idempotent, and the second credential is now the last one.
    let again = server
        .delete(&format!("/v1/orgs/credentials/{first_id}"), &second_token)
        .await;
    assert_eq!(again.status(), 200);
    let second_id = second["id"].as_str().unwrap();
    let response = server
        .delete(&format!("/v1/orgs/credentials/{second_id}"), &second_token)
        .await;
    assert_problem(status_json(response).await, 409, "last_admin_credential");

    // Every step is in the audit trail, and the chain verifies.
    let (_, events) = status_json(
        server
            .get("/v1/audit/events?limit=100", &second_token)
            .await,
    )
    .await;
    let actions: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "admin_credential.rotated",
        "admin_credential.created",
        "admin_credential.revoked",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
    let (_, verdict) = status_json(server.get("/v1/audit/verify", &second_token).await).await;
    assert_eq!(verdict["valid"], true, "{verdict}");
}

#[tokio::test]
async fn only_the_callers_own_admins_manage_admin_credentials() {
    let server = Server::start().await;
    let acme = server.bootstrap("acme").await;
    let globex = server.bootstrap("globex").await;
    let (_, list) = status_json(server.get("/v1/orgs/credentials", &acme.token).await).await;
    let acme_admin: Value = list["data"][0].clone();
    let id = acme_admin["id"].as_str().unwrap();

    // Another organization's admin credential answers like a missing one.
    for response in [
        server
            .post(
                &format!("/v1/orgs/credentials/{id}/rotate"),
                &globex.token,
                json!({}),
            )
            .await,
        server
            .delete(&format!("/v1/orgs/credentials/{id}"), &globex.token)
            .await,
    ] {
        assert_problem(status_json(response).await, 404, "not_found");
    }
    // An agent credential's id is not an admin credential's.
    let agent = server.agent_with_secret(&acme, "bot", &[]).await;
    let response = server
        .delete(
            &format!("/v1/orgs/credentials/{}", agent.credential_id),
            &acme.token,
        )
        .await;
    assert_problem(status_json(response).await, 404, "not_found");

    // Even an agent trusted with agents:write cannot touch admin credentials.
    let delegate = server
        .agent_with_secret(&acme, "delegate", &["agents:read", "agents:write"])
        .await;
    let token = server
        .token(&delegate.client_id, &delegate.client_secret, &[])
        .await;
    for response in [
        server.get("/v1/orgs/credentials", &token).await,
        server.post("/v1/orgs/credentials", &token, json!({})).await,
        server
            .post(
                &format!("/v1/orgs/credentials/{id}/rotate"),
                &token,
                json!({}),
            )
            .await,
    ] {
        assert_problem(status_json(response).await, 403, "insufficient_scope");
    }
    assert!(authenticates(&server, &acme.client_id, &acme.client_secret).await);
}
