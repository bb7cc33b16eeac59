//! The organization's `/v1/*` budget cannot be turned against its admin: refused calls spend
//! nothing, one client cannot take all of it, and the admin's emergency actions always get through.

use agentidp_tests::{assert_problem, status_json, AgentClient, Org, Server};
use serde_json::json;

fn remaining(response: &agentidp_tests::reqwest::Response) -> u64 {
    response.headers()["ratelimit-remaining"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn agent_token(server: &Server, agent: &AgentClient) -> String {
    server
        .token(&agent.client_id, &agent.client_secret, &[])
        .await
}

#[tokio::test]
async fn refused_calls_do_not_spend_the_organizations_budget() {
    let server = Server::start_with(&[("RATE_LIMIT_PER_MINUTE", "10")]).await;
    let org = server.bootstrap("acme").await;
    // Two calls of the budget: the agent, its credential.
    let agent = server
        .agent_with_secret(&org, "rogue", &["read:docs"])
        .await;
    let token = agent_token(&server, &agent).await;
    // Two more: a reader whose token will be revoked.
    let reader = server
        .agent_with_secret(&org, "reader", &["agents:read"])
        .await;
    let reader_token = agent_token(&server, &reader).await;
    for _ in 0..30 {
        let response = server.get("/v1/agents", &token).await;
        assert_problem(status_json(response).await, 403, "insufficient_scope");
        let response = server
            .delete(&format!("/v1/agents/{}", agent.id), &token)
            .await;
        assert_eq!(response.status(), 403);
        let response = server.get("/v1/agents", "not-a-token").await;
        assert_eq!(response.status(), 401);
    }
    // HEAD runs the GET handler, so it needs the GET route's scope too.
    let head = server
        .http
        .head(server.url("/v1/agents"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 403);
    // A revoked token is refused without spending anything either (revocation at /oauth2/revoke
    // counts against the revoking client, not the organization).
    for revoked in [&token, &reader_token] {
        let revoke = server
            .http
            .post(server.url("/oauth2/revoke"))
            .basic_auth(&org.client_id, Some(&org.client_secret))
            .form(&[("token", revoked.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(revoke.status(), 200);
        for _ in 0..30 {
            let response = server.get("/v1/agents", revoked).await;
            assert_problem(status_json(response).await, 401, "invalid_token");
        }
    }
    let response = server.get("/v1/agents", &org.token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(remaining(&response), 10 - 5);
}

#[tokio::test]
async fn one_agent_cannot_take_the_whole_budget() {
    let server = Server::start_with(&[("RATE_LIMIT_PER_MINUTE", "10")]).await;
    let org = server.bootstrap("acme").await;
    let reader = server
        .agent_with_secret(&org, "reader", &["agents:read"])
        .await;
    let token = agent_token(&server, &reader).await;
    let mut admitted = 0;
    for _ in 0..20 {
        match server.get("/v1/agents", &token).await.status().as_u16() {
            200 => admitted += 1,
            429 => {}
            other => panic!("unexpected {other}"),
        }
    }
    // An agent's share is half of the organization's budget.
    assert_eq!(admitted, 5);
    let response = server.get("/v1/agents", &org.token).await;
    assert_eq!(response.status(), 200);
}

/// Three delegated agents (six calls of the admin's) that then spend what is left of the budget.
async fn exhaust(server: &Server, org: &Org) -> Vec<AgentClient> {
    let mut agents = Vec::new();
    for name in ["first", "second", "third"] {
        agents.push(server.agent_with_secret(org, name, &["agents:read"]).await);
    }
    for agent in &agents {
        let token = agent_token(server, agent).await;
        while server.get("/v1/agents", &token).await.status() == 200 {}
    }
    agents
}

#[tokio::test]
async fn emergency_actions_get_through_an_exhausted_budget() {
    let server = Server::start_with(&[("RATE_LIMIT_PER_MINUTE", "12")]).await;
    let org = server.bootstrap("acme").await;
    let agents = exhaust(&server, &org).await;
    let response = server.get("/v1/agents", &org.token).await;
    assert_problem(status_json(response).await, 429, "rate_limited");

    let [first, second, third] = &agents[..] else {
        unreachable!()
    };
    let suspend = server
        .patch(
            &format!("/v1/agents/{}", first.id),
            &org.token,
            json!({ "status": "suspended" }),
        )
        .await;
    assert_eq!(suspend.status(), 200);
    let decommission = server
        .delete(&format!("/v1/agents/{}", second.id), &org.token)
        .await;
    assert_eq!(decommission.status(), 200);
    let revoke = server
        .delete(
            &format!(
                "/v1/agents/{}/credentials/{}",
                third.id, third.credential_id
            ),
            &org.token,
        )
        .await;
    assert_eq!(revoke.status(), 200);
    let rotate = server
        .post(
            &format!(
                "/v1/agents/{}/credentials/{}/rotate",
                third.id, third.credential_id
            ),
            &org.token,
            json!({}),
        )
        .await;
    assert_eq!(rotate.status(), 409, "revoked, but not rate limited");
    // Token revocation counts against the admin client, not the organization.
    let revoke_token = server
        .http
        .post(server.url("/oauth2/revoke"))
        .basic_auth(&org.client_id, Some(&org.client_secret))
        .form(&[("token", org.token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke_token.status(), 200);
}
