//! Tenant isolation: the organization comes only from the token. Another organization's agents and
//! credentials answer every endpoint exactly like missing ones, lists never cross organizations,
//! and no body or query field can name another organization.

use agentidp_tests::reqwest::Method;
use agentidp_tests::{assert_problem, status_json, AgentClient, Org, Server};
use serde_json::{json, Value};

const MISSING: &str = "00000000-0000-4000-8000-00000000dead";
const MALFORMED: &str = "not-a-uuid";

struct World {
    server: Server,
    acme: Org,
    globex: Org,
    /// Globex's agent, which acme must not be able to see or touch.
    theirs: AgentClient,
    /// Acme's own agent, to pair with globex's credential ids.
    ours: AgentClient,
}

async fn world() -> World {
    let server = Server::start().await;
    let acme = server.bootstrap("acme").await;
    let globex = server.bootstrap("globex").await;
    let theirs = server
        .agent_with_secret(&globex, "globex-bot", &["agents:read"])
        .await;
    let ours = server.agent_with_secret(&acme, "acme-bot", &[]).await;
    World {
        server,
        acme,
        globex,
        theirs,
        ours,
    }
}

/// One call of an endpoint, as acme, on the given path.
async fn call(world: &World, method: &Method, path: &str) -> (u16, Value) {
    let server = &world.server;
    let token = &world.acme.token;
    let response = match *method {
        Method::GET => server.get(path, token).await,
        Method::DELETE => server.delete(path, token).await,
        Method::PATCH => {
            server
                .patch(
                    path,
                    token,
                    json!({ "status": "suspended", "name": "pwned" }),
                )
                .await
        }
        _ => server.post(path, token, json!({})).await,
    };
    status_json(response).await
}

/// Asserts the foreign object's answer is the not-found answer, byte for byte as JSON.
async fn assert_like_missing(world: &World, method: Method, foreign: &str, missing: &[String]) {
    let (status, body) = call(world, &method, foreign).await;
    assert_problem((status, body.clone()), 404, "not_found");
    for path in missing {
        let (other_status, other_body) = call(world, &method, path).await;
        assert_eq!(
            (other_status, &other_body),
            (status, &body),
            "{method} {foreign} differs from {method} {path}"
        );
    }
}

#[tokio::test]
async fn another_organizations_agent_answers_every_endpoint_like_a_missing_one() {
    let world = world().await;
    let theirs = &world.theirs.id;
    let agent_paths = |suffix: &str| {
        (
            format!("/v1/agents/{theirs}{suffix}"),
            vec![
                format!("/v1/agents/{MISSING}{suffix}"),
                format!("/v1/agents/{MALFORMED}{suffix}"),
            ],
        )
    };
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let (foreign, missing) = agent_paths("");
        assert_like_missing(&world, method, &foreign, &missing).await;
    }
    for method in [Method::GET, Method::POST] {
        let (foreign, missing) = agent_paths("/credentials");
        assert_like_missing(&world, method, &foreign, &missing).await;
    }

    // Credential endpoints: their agent with their credential, our agent with their credential,
    // and their agent with a made-up credential all look the same as nothing at all.
    let cid = &world.theirs.credential_id;
    let ours = &world.ours.id;
    for (method, suffix) in [(Method::POST, "/rotate"), (Method::DELETE, "")] {
        let foreign = format!("/v1/agents/{theirs}/credentials/{cid}{suffix}");
        let missing = vec![
            format!("/v1/agents/{ours}/credentials/{cid}{suffix}"),
            format!("/v1/agents/{theirs}/credentials/{MISSING}{suffix}"),
            format!("/v1/agents/{MISSING}/credentials/{MISSING}{suffix}"),
            format!("/v1/agents/{ours}/credentials/{MALFORMED}{suffix}"),
            format!("/v1/agents/{MALFORMED}/credentials/{MALFORMED}{suffix}"),
        ];
        assert_like_missing(&world, method, &foreign, &missing).await;
    }
    // An agent's own credential under another agent of the same organization is not found either.
    let own_cid = &world.ours.credential_id;
    let (status, _) = call(
        &world,
        &Method::DELETE,
        &format!("/v1/agents/{MISSING}/credentials/{own_cid}"),
    )
    .await;
    assert_eq!(status, 404);

    // None of those attempts changed anything in globex.
    let server = &world.server;
    let (status, agent) = status_json(
        server
            .get(&format!("/v1/agents/{theirs}"), &world.globex.token)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(agent["status"], "active");
    assert_eq!(agent["name"], "globex-bot");
    let (_, credentials) = status_json(
        server
            .get(
                &format!("/v1/agents/{theirs}/credentials"),
                &world.globex.token,
            )
            .await,
    )
    .await;
    assert_eq!(credentials["data"].as_array().unwrap().len(), 1);
    assert_eq!(credentials["data"][0]["status"], "active");
    let token = server
        .token(&world.theirs.client_id, &world.theirs.client_secret, &[])
        .await;
    assert_eq!(server.get("/v1/agents", &token).await.status(), 200);
    // And globex's trail records none of acme's attempts.
    let (_, events) = status_json(
        server
            .get(
                &format!("/v1/audit/events?agent_id={theirs}"),
                &world.globex.token,
            )
            .await,
    )
    .await;
    for event in events["data"].as_array().unwrap() {
        assert_ne!(event["actor"], world.acme.client_id.as_str(), "{event}");
    }
}

#[tokio::test]
async fn lists_never_show_another_organizations_agents() {
    let world = world().await;
    let server = &world.server;
    for i in 0..3 {
        server
            .create_agent(
                &world.globex,
                json!({ "name": format!("g{i}"), "agent_type": "spy", "owner": "shared-owner" }),
            )
            .await;
    }
    server
        .create_agent(
            &world.acme,
            json!({ "name": "a-owned", "agent_type": "spy", "owner": "shared-owner" }),
        )
        .await;
    for query in [
        "",
        "?agent_type=spy",
        "?owner=shared-owner",
        "?status=active",
        "?limit=1",
    ] {
        let (status, page) = status_json(
            server
                .get(&format!("/v1/agents{query}"), &world.acme.token)
                .await,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        for agent in page["data"].as_array().unwrap() {
            assert_eq!(agent["org_id"], world.acme.id.as_str(), "{query}: {agent}");
        }
    }
    let (_, spies) = status_json(
        server
            .get("/v1/agents?agent_type=spy", &world.acme.token)
            .await,
    )
    .await;
    assert_eq!(spies["data"].as_array().unwrap().len(), 1);

    // A cursor made from a globex agent's position cannot reveal globex rows either.
    let (_, theirs) =
        status_json(server.get("/v1/agents?limit=1", &world.globex.token).await).await;
    let cursor = theirs["next_cursor"].as_str().unwrap();
    let (status, page) = status_json(
        server
            .get(&format!("/v1/agents?cursor={cursor}"), &world.acme.token)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    for agent in page["data"].as_array().unwrap() {
        assert_eq!(agent["org_id"], world.acme.id.as_str());
    }
}

#[tokio::test]
async fn no_body_or_query_field_can_name_another_organization() {
    let world = world().await;
    let server = &world.server;
    let globex = world.globex.id.as_str();

    for path in [
        format!("/v1/agents?org_id={globex}"),
        format!("/v1/agents?organization={globex}"),
        format!("/v1/agents/{}/credentials?org_id={globex}", world.ours.id),
    ] {
        let (status, body) = status_json(server.get(&path, &world.acme.token).await).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid_field")),
            "{path}: {body}"
        );
    }
    let response = server
        .post(
            "/v1/agents",
            &world.acme.token,
            json!({ "name": "smuggled", "agent_type": "x", "org_id": globex }),
        )
        .await;
    assert_problem(status_json(response).await, 400, "invalid_field");
    let response = server
        .patch(
            &format!("/v1/agents/{}", world.ours.id),
            &world.acme.token,
            json!({ "org_id": globex }),
        )
        .await;
    assert_problem(status_json(response).await, 400, "invalid_field");
    let response = server
        .post(
            &format!("/v1/agents/{}/credentials", world.ours.id),
            &world.acme.token,
            json!({ "org_id": globex }),
        )
        .await;
    assert_problem(status_json(response).await, 400, "invalid_field");

    // An agent created by acme belongs to acme, whatever was tried.
    let created = server
        .create_agent(&world.acme, json!({ "name": "plain", "agent_type": "x" }))
        .await;
    assert_eq!(created["org_id"], world.acme.id.as_str());
    let (_, page) = status_json(server.get("/v1/agents", &world.globex.token).await).await;
    assert!(page["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["org_id"] == globex));

    // An agent's token is scoped to its own organization too.
    let token = server
        .token(&world.theirs.client_id, &world.theirs.client_secret, &[])
        .await;
    let (status, body) = status_json(
        server
            .get(&format!("/v1/agents/{}", world.ours.id), &token)
            .await,
    )
    .await;
    assert_problem((status, body), 404, "not_found");
}
