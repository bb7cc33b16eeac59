//! The decision point end to end: no caller gains, through any path, power over capabilities it
//! does not hold (a credential, a rotation, a trust policy, an added capability), and tokens
//! issued through a deleted trust policy stop working.

use agentidp_tests::oidc::{exchange, Grant, Issuer};
use agentidp_tests::{assert_problem, status_json, AgentClient, Org, Server};
use serde_json::{json, Value};

async fn federated_server(issuer: &Issuer) -> Server {
    let env = issuer.server_env();
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start_with(&pairs).await
}

/// An agent trusted to manage agents, holding nothing else, and its token.
async fn manager(server: &Server, org: &Org) -> (AgentClient, String) {
    let manager = server
        .agent_with_secret(org, "manager", &["agents:read", "agents:write"])
        .await;
    let token = server
        .token(&manager.client_id, &manager.client_secret, &[])
        .await;
    (manager, token)
}

fn refused_beyond_capabilities(response: (u16, Value), missing: &[&str]) {
    let problem = assert_problem(response, 403, "beyond_callers_capabilities");
    assert_eq!(problem["missing_capabilities"], json!(missing), "{problem}");
}

#[tokio::test]
async fn an_agent_cannot_give_itself_a_more_privileged_agents_credential() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let (_, token) = manager(&server, &org).await;
    let auditor = server
        .agent_with_secret(&org, "auditor", &["audit:read", "webhooks:write"])
        .await;

    let path = format!("/v1/agents/{}/credentials", auditor.id);
    let response = server.post(&path, &token, json!({})).await;
    refused_beyond_capabilities(
        status_json(response).await,
        &["audit:read", "webhooks:write"],
    );
    let rotate = format!(
        "/v1/agents/{}/credentials/{}/rotate",
        auditor.id, auditor.credential_id
    );
    let response = server.post(&rotate, &token, json!({})).await;
    refused_beyond_capabilities(
        status_json(response).await,
        &["audit:read", "webhooks:write"],
    );

    // Nothing was issued: the admin sees the one credential it made, unrotated.
    let (status, page) = status_json(server.get(&path, &org.token).await).await;
    assert_eq!(status, 200);
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["data"][0]["rotated_at"], Value::Null);
    let events: Value = server
        .get("/v1/audit/events?action=credential.created", &org.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(events["data"].as_array().unwrap().len(), 2, "{events}");

    // An agent it may fully stand for is fine, and so is the admin for anyone.
    let peer = server
        .create_agent(
            &org,
            json!({ "name": "peer", "agent_type": "bot", "capabilities": ["agents:read"],
                    "allow_management_scopes": true }),
        )
        .await;
    let path = format!("/v1/agents/{}/credentials", peer["id"].as_str().unwrap());
    assert_eq!(server.post(&path, &token, json!({})).await.status(), 201);
    let response = server.post(&rotate, &org.token, json!({})).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn an_agent_cannot_add_capabilities_it_does_not_hold_to_an_agent_it_controls() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let (_, token) = manager(&server, &org).await;
    // A fresh agent with no capability the manager lacks: it may give it a credential...
    let minion = server
        .create_agent(
            &org,
            json!({ "name": "minion", "agent_type": "bot", "capabilities": ["agents:read"],
                    "allow_management_scopes": true }),
        )
        .await;
    let id = minion["id"].as_str().unwrap();
    let path = format!("/v1/agents/{id}/credentials");
    assert_eq!(server.post(&path, &token, json!({})).await.status(), 201);
    // ...but not then raise it beyond itself.
    let response = server
        .patch(
            &format!("/v1/agents/{id}"),
            &token,
            json!({ "capabilities": ["agents:read", "payments:write"] }),
        )
        .await;
    refused_beyond_capabilities(status_json(response).await, &["payments:write"]);
    let (status, agent) =
        status_json(server.get(&format!("/v1/agents/{id}"), &org.token).await).await;
    assert_eq!(status, 200);
    assert_eq!(agent["capabilities"], json!(["agents:read"]));
    // The admin may.
    let response = server
        .patch(
            &format!("/v1/agents/{id}"),
            &org.token,
            json!({ "capabilities": ["agents:read", "payments:write"] }),
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn an_agent_cannot_trust_a_repository_for_a_more_privileged_agent() {
    let issuer = Issuer::start().await;
    let server = federated_server(&issuer).await;
    let org = server.bootstrap("acme").await;
    let (_, token) = manager(&server, &org).await;
    let auditor = server
        .agent_with_secret(&org, "auditor", &["audit:read", "read:docs"])
        .await;
    let policy = json!({ "provider": "github", "repository": "mallory/repo",
                         "agent_id": auditor.id });
    let response = server
        .post("/v1/oidc/trust-policies", &token, policy.clone())
        .await;
    refused_beyond_capabilities(status_json(response).await, &["audit:read", "read:docs"]);
    // Narrowed to what the manager holds itself... it holds none of them.
    let mut narrowed = policy.clone();
    narrowed["scopes"] = json!(["read:docs"]);
    let response = server
        .post("/v1/oidc/trust-policies", &token, narrowed)
        .await;
    refused_beyond_capabilities(status_json(response).await, &["read:docs"]);
    // Nor may it open registration of agents with scopes it lacks.
    let registration = json!({ "provider": "github", "repository": "mallory/repo",
                               "allow_registration": true, "scopes": ["payments:write"] });
    let response = server
        .post("/v1/oidc/trust-policies", &token, registration)
        .await;
    refused_beyond_capabilities(status_json(response).await, &["payments:write"]);
    let (status, page) = status_json(server.get("/v1/oidc/trust-policies", &org.token).await).await;
    assert_eq!(status, 200);
    assert_eq!(page["data"], json!([]));
    // The admin may.
    let response = server
        .post("/v1/oidc/trust-policies", &org.token, policy)
        .await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn tokens_issued_through_a_deleted_trust_policy_are_revoked() {
    let issuer = Issuer::start().await;
    let server = federated_server(&issuer).await;
    let org = server.bootstrap("acme").await;
    let deployer = server
        .agent_with_secret(&org, "deployer", &["deploy:write"])
        .await;
    let (status, policy) = status_json(
        server
            .post(
                "/v1/oidc/trust-policies",
                &org.token,
                json!({ "provider": "github", "repository": "octo/app",
                        "agent_id": deployer.id }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 201, "{policy}");
    let workflow_token = issuer.mint(&issuer.claims("octo/app", "111"));
    let (status, body) = exchange(
        &server,
        Grant::TokenExchange,
        &workflow_token,
        &[("agent_id", &deployer.id)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let federated = body["access_token"].as_str().unwrap().to_owned();
    // The agent's own token, obtained with its credential, is not the policy's.
    let own = server
        .token(&deployer.client_id, &deployer.client_secret, &[])
        .await;
    let admin = (org.client_id.as_str(), org.client_secret.as_str());
    assert_eq!(server.introspect(admin, &federated).await["active"], true);

    let path = format!("/v1/oidc/trust-policies/{}", policy["id"].as_str().unwrap());
    assert_eq!(server.delete(&path, &org.token).await.status(), 200);
    assert_eq!(server.introspect(admin, &federated).await["active"], false);
    assert_eq!(server.introspect(admin, &own).await["active"], true);
}
