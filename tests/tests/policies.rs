//! Organization policies in Cedar end to end: what each decision shape does to the tokens issued
//! (permit, forbid with reason, per-scope narrowing, lifetime caps, audiences, workflows through
//! both federation grants), that policies never widen capabilities, are isolated per
//! organization, validated with positions, replaced only from the version they were read at, and
//! survive a crash whole or not at all.

use agentidp_tests::oidc::{exchange, Grant, Issuer};
use agentidp_tests::{assert_problem, jwt_parts, status_json, AgentClient, Org, Server};
use serde_json::{json, Value};

async fn upload(server: &Server, org: &Org, cedar: &str) -> Value {
    let (status, policy) = status_json(
        server
            .post(
                "/v1/policies",
                &org.token,
                json!({ "cedar": cedar, "description": "test" }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 201, "{policy}");
    policy
}

async fn token_response(
    server: &Server,
    agent: &AgentClient,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    status_json(
        server
            .token_request(&agent.client_id, &agent.client_secret, extra)
            .await,
    )
    .await
}

async fn payments_agent(server: &Server, org: &Org) -> AgentClient {
    server
        .agent_with_secret(org, "payer", &["payments:write", "read:docs"])
        .await
}

#[tokio::test]
async fn without_policies_tokens_carry_every_capability_as_before() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let agent = payments_agent(&server, &org).await;
    let (status, body) = token_response(&server, &agent, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "payments:write read:docs");
    assert_eq!(body["expires_in"], 3600);
}

#[tokio::test]
async fn a_permit_narrows_per_scope_and_the_audit_names_it() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let agent = payments_agent(&server, &org).await;
    let policy = upload(
        &server,
        &org,
        r#"permit(principal is AgentIdP::Agent, action == AgentIdP::Action::"issue_token", resource)
           when { context.scope == "read:docs" };"#,
    )
    .await;
    // Asked for nothing in particular: only what a policy permits.
    let (status, body) = token_response(&server, &agent, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "read:docs");
    // Asked for the forbidden one alone: refused, naming that nothing permits it.
    let (status, body) = token_response(&server, &agent, &[("scope", "payments:write")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );

    let events: Value = server
        .get("/v1/audit/events?action=token.issued", &org.token)
        .await
        .json()
        .await
        .unwrap();
    let agent_event = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["agent_id"] == agent.id.as_str())
        .expect("the agent's issuance is audited");
    assert_eq!(agent_event["details"]["policies"], json!([policy["id"]]));
}

#[tokio::test]
async fn a_forbid_wins_and_its_reason_is_quoted() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let agent = payments_agent(&server, &org).await;
    upload(&server, &org, "permit(principal, action, resource);").await;
    let forbid = upload(
        &server,
        &org,
        r#"@reason("payments only for the payment API")
           forbid(principal, action, resource)
           when { context.scope == "payments:write" }
           unless { resource == AgentIdP::Audience::"https://pay.example" };"#,
    )
    .await;
    let (status, body) = token_response(&server, &agent, &[("scope", "payments:write")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.contains(forbid["id"].as_str().unwrap())
            && description.contains("payments only for the payment API"),
        "{description}"
    );
    // For the payment API it is permitted; the other scope is unaffected.
    let (status, body) =
        token_response(&server, &agent, &[("resource", "https://pay.example")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "payments:write read:docs");
    let (_, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "https://pay.example");
}

#[tokio::test]
async fn the_lowest_lifetime_cap_of_the_permits_wins() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let agent = payments_agent(&server, &org).await;
    upload(
        &server,
        &org,
        r#"@max_lifetime_seconds("900") permit(principal, action, resource);"#,
    )
    .await;
    upload(
        &server,
        &org,
        r#"@max_lifetime_seconds("300") permit(principal, action, resource)
           when { context.scope == "payments:write" };"#,
    )
    .await;
    let (status, body) = token_response(&server, &agent, &[("scope", "read:docs")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 900);
    let (status, body) = token_response(&server, &agent, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 300);
    let (_, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
}

#[tokio::test]
async fn a_policy_never_widens_beyond_capabilities_nor_reaches_another_organization() {
    let server = Server::start().await;
    let acme = server.bootstrap("acme").await;
    let globex = server.bootstrap("globex").await;
    let agent = payments_agent(&server, &acme).await;
    let other = payments_agent(&server, &globex).await;
    let policy = upload(&server, &acme, "forbid(principal, action, resource);").await;
    // Permitting everything does not add a scope the agent lacks.
    upload(&server, &globex, "permit(principal, action, resource);").await;
    let (status, body) = token_response(&server, &other, &[("scope", "agents:write")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );
    // Globex's permit does not open acme; acme's forbid does not close globex.
    let (status, _) = token_response(&server, &agent, &[]).await;
    assert_eq!(status, 400);
    let (status, body) = token_response(&server, &other, &[]).await;
    assert_eq!(status, 200, "{body}");
    // Another organization's policy answers as a missing one.
    let path = format!("/v1/policies/{}", policy["id"].as_str().unwrap());
    assert_problem(
        status_json(server.get(&path, &globex.token).await).await,
        404,
        "not_found",
    );
    assert_problem(
        status_json(server.delete(&path, &globex.token).await).await,
        404,
        "not_found",
    );
    let (_, page) = status_json(server.get("/v1/policies", &globex.token).await).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    // The admin's own tokens are not governed: an organization cannot lock its admin out.
    server
        .token(&acme.client_id, &acme.client_secret, &[])
        .await;
}

#[tokio::test]
async fn invalid_policies_are_refused_with_their_position() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let response = server
        .post(
            "/v1/policies",
            &org.token,
            json!({ "cedar": "permit(principal, action, resource)\n  when { context.colour == \"red\" };" }),
        )
        .await;
    let problem = assert_problem(status_json(response).await, 400, "invalid_policy");
    assert_eq!(problem["line"], 2, "{problem}");
    assert!(
        problem["message"].as_str().unwrap().contains("colour"),
        "{problem}"
    );
    let response = server
        .post(
            "/v1/policies",
            &org.token,
            json!({ "cedar": "permit(principal action, resource);" }),
        )
        .await;
    let problem = assert_problem(status_json(response).await, 400, "invalid_policy");
    assert_eq!(
        (problem["line"].as_i64(), problem["column"].as_i64()),
        (Some(1), Some(18))
    );
    let response = server.post("/v1/policies", &org.token, json!({})).await;
    assert_problem(status_json(response).await, 400, "invalid_field");
    // Agents do not hold the policy scopes unless an admin gives them.
    let agent = payments_agent(&server, &org).await;
    let token = server
        .token(&agent.client_id, &agent.client_secret, &[])
        .await;
    let response = server
        .post(
            "/v1/policies",
            &token,
            json!({ "cedar": "permit(principal, action, resource);" }),
        )
        .await;
    assert_problem(status_json(response).await, 403, "insufficient_scope");
}

#[tokio::test]
async fn a_replacement_from_a_stale_version_is_refused_and_changes_are_announced() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let created = server
        .post(
            "/v1/policies",
            &org.token,
            json!({ "cedar": "permit(principal, action, resource);" }),
        )
        .await;
    assert_eq!(created.headers()["etag"], "\"1\"");
    let policy: Value = created.json().await.unwrap();
    let path = format!("/v1/policies/{}", policy["id"].as_str().unwrap());
    let put = |etag: &'static str, cedar: &'static str| {
        server
            .http
            .put(server.url(&path))
            .bearer_auth(&org.token)
            .header("if-match", etag)
            .json(&json!({ "cedar": cedar, "description": "v2" }))
            .send()
    };
    let response = put("\"1\"", "forbid(principal, action, resource);")
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "\"2\"");
    let response = put("\"1\"", "permit(principal, action, resource);")
        .await
        .unwrap();
    let problem = assert_problem(status_json(response).await, 412, "policy_changed");
    assert_eq!(problem["version"], 2);
    let (status, current) = status_json(server.get(&path, &org.token).await).await;
    assert_eq!(status, 200);
    assert_eq!(current["cedar"], "forbid(principal, action, resource);");

    // Of 20 identical replacements from one version, exactly one wins.
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let request = server
            .http
            .put(server.url(&path))
            .bearer_auth(&org.token)
            .header("if-match", "\"2\"")
            .json(&json!({ "cedar": "permit(principal, action, resource) when { context.key_bound };" }));
        attempts.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    let statuses = attempts.join_all().await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 412).count(),
        19,
        "{statuses:?}"
    );

    let (status, _) = status_json(server.delete(&path, &org.token).await).await;
    assert_eq!(status, 200);
    let (_, events) = status_json(server.get("/v1/audit/events?limit=200", &org.token).await).await;
    let actions: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| a.starts_with("policy."))
        .collect();
    assert_eq!(
        actions,
        // Newest first.
        [
            "policy.deleted",
            "policy.updated",
            "policy.updated",
            "policy.created"
        ]
    );
}

#[tokio::test]
async fn the_dry_run_decides_without_issuing() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let agent = payments_agent(&server, &org).await;
    let permit = upload(
        &server,
        &org,
        r#"@max_lifetime_seconds("120") permit(principal is AgentIdP::Agent, action, resource)
           when { principal.capabilities.contains(context.scope) && context.key_bound };"#,
    )
    .await;
    let forbid = upload(
        &server,
        &org,
        r#"@reason("no payments from staging") forbid(principal is AgentIdP::Agent, action, resource)
           when { context.scope == "payments:write" && principal.deployment_env != "production" };"#,
    )
    .await;
    let evaluate = |context: Value| {
        server.post(
            "/v1/policies/evaluate",
            &org.token,
            json!({ "agent_id": agent.id, "scopes": ["read:docs", "payments:write"],
                    "audience": "https://api.example", "context": context }),
        )
    };
    let (status, body) = status_json(evaluate(json!({ "key_bound": true })).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["decisions"],
        json!([
            { "scope": "read:docs", "decision": "allow", "policies": [permit["id"]],
              "max_lifetime_seconds": 120 },
            { "scope": "payments:write", "decision": "deny", "policies": [forbid["id"]],
              "reason": "no payments from staging" },
        ])
    );
    let (_, body) = status_json(evaluate(json!({})).await).await;
    assert_eq!(body["decisions"][0]["decision"], "deny");
    assert_eq!(body["decisions"][0]["policies"], json!([]));
    // Nothing was issued.
    let (_, events) = status_json(
        server
            .get("/v1/audit/events?action=token.issued", &org.token)
            .await,
    )
    .await;
    assert!(events["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["agent_id"] != agent.id.as_str()));
    let response = server
        .post(
            "/v1/policies/evaluate",
            &org.token,
            json!({ "scopes": ["read:docs"] }),
        )
        .await;
    assert_problem(status_json(response).await, 400, "invalid_field");
}

#[tokio::test]
async fn workflows_are_principals_through_both_federation_grants() {
    let issuer = Issuer::start().await;
    let env = issuer.server_env();
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_with(&pairs).await;
    let org = server.bootstrap("acme").await;
    let deployer = server
        .agent_with_secret(&org, "deployer", &["deploy:write", "read:docs"])
        .await;
    let (status, _) = status_json(
        server
            .post(
                "/v1/oidc/trust-policies",
                &org.token,
                json!({ "provider": "github", "repository": "octo/app", "agent_id": deployer.id }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 201);
    upload(
        &server,
        &org,
        r#"permit(principal is AgentIdP::Workflow, action == AgentIdP::Action::"exchange_token", resource)
           when { principal.repository == "octo/app" && principal.ref == "refs/heads/main"
                  && context.scope == "deploy:write" };"#,
    )
    .await;
    for grant in [Grant::TokenExchange, Grant::JwtBearer] {
        let token = issuer.mint(&issuer.claims("octo/app", "111"));
        let (status, body) = exchange(&server, grant, &token, &[("agent_id", &deployer.id)]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["scope"], "deploy:write");
    }
    // Another branch: nothing permitted.
    let mut claims = issuer.claims("octo/app", "111");
    claims.insert("ref".into(), json!("refs/heads/feature"));
    let token = issuer.mint(&claims);
    let (status, body) = exchange(
        &server,
        Grant::TokenExchange,
        &token,
        &[("agent_id", &deployer.id)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );
    // The agent's own credential is not a workflow: the permit does not apply to it.
    let (status, _) = token_response(&server, &deployer, &[]).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_policy_written_just_before_kill_9_is_there_whole() {
    let mut server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let policy = upload(&server, &org, "forbid(principal, action, resource);").await;
    server.kill();
    let server = Server::start_in(server.data_dir.clone(), &[]).await;
    let token = server.token(&org.client_id, &org.client_secret, &[]).await;
    let path = format!("/v1/policies/{}", policy["id"].as_str().unwrap());
    let (status, stored) = status_json(server.get(&path, &token).await).await;
    assert_eq!(status, 200);
    assert_eq!(stored["cedar"], policy["cedar"]);
    let (_, events) = status_json(
        server
            .get("/v1/audit/events?action=policy.created", &token)
            .await,
    )
    .await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
    let (_, verified) = status_json(server.get("/v1/audit/verify", &token).await).await;
    assert_eq!(verified["valid"], true, "{verified}");
    // And it still decides.
    let agent = payments_agent(&server, &Org { token, ..org }).await;
    let (status, _) = token_response(&server, &agent, &[]).await;
    assert_eq!(status, 400);
}
