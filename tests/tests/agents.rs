//! Organizations and agents end to end: sign-up, registration, listing, updates, the lifecycle
//! (suspend, reactivate, decommission), the free-tier cap, and every validation path.

use std::collections::HashSet;
use std::time::Duration;

use agentidp_tests::reqwest::Method;
use agentidp_tests::{assert_problem, status_json, Org, Server};
use serde_json::{json, Value};

/// Every page of `GET {path}` (which must already carry a query), following `next_cursor`.
async fn all_pages(server: &Server, org: &Org, path: &str) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}&cursor={c}"),
            None => path.to_owned(),
        };
        let (status, page) = status_json(server.get(&url, &org.token).await).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        items.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (items, pages),
        }
    }
}

fn names(agents: &[Value]) -> Vec<&str> {
    agents.iter().map(|a| a["name"].as_str().unwrap()).collect()
}

fn sorted(mut names: Vec<&str>) -> Vec<&str> {
    names.sort_unstable();
    names
}

#[tokio::test]
async fn signing_up_returns_the_organization_and_a_one_time_admin_credential() {
    let server = Server::start().await;
    let response = server
        .http
        .post(server.url("/v1/orgs"))
        .json(&json!({ "name": "Acme" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (status, body) = status_json(response).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["organization"]["name"], "Acme");
    assert_eq!(body["organization"]["tier"], "free");
    assert!(body["organization"]["created_at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    let admin = &body["admin_credential"];
    assert_eq!(
        admin["scope"],
        "agents:read agents:write audit:read webhooks:read webhooks:write orgs:read orgs:write policies:read policies:write"
    );
    let token = server
        .token(
            admin["client_id"].as_str().unwrap(),
            admin["client_secret"].as_str().unwrap(),
            &[],
        )
        .await;
    assert_eq!(server.get("/v1/agents", &token).await.status(), 200);

    // The name is required, bounded, and nothing else may be sent.
    for (bad, field) in [
        (json!({}), "name"),
        (json!({ "name": "" }), "name"),
        (json!({ "name": "x".repeat(201) }), "name"),
        (json!({ "name": 7 }), "name"),
        (json!({ "name": "a", "tier": "enterprise" }), "tier"),
    ] {
        let response = server
            .http
            .post(server.url("/v1/orgs"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        let body = assert_problem(status_json(response).await, 400, "invalid_field");
        assert!(
            body["field"].as_str().unwrap().contains(field),
            "{bad}: {body}"
        );
    }
}

#[tokio::test]
async fn a_configured_signup_token_gates_organization_creation() {
    let server = Server::start_with(&[("AGENTIDP_SIGNUP_TOKEN", "let-me-in")]).await;
    let attempt = |token: Option<&'static str>| {
        let mut request = server
            .http
            .post(server.url("/v1/orgs"))
            .json(&json!({ "name": "Gated" }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { status_json(request.send().await.unwrap()).await }
    };
    assert_problem(attempt(None).await, 401, "signup_token_required");
    assert_problem(
        attempt(Some("let-me-in?")).await,
        401,
        "signup_token_required",
    );
    assert_problem(attempt(Some("let-me")).await, 401, "signup_token_required");
    let (status, body) = attempt(Some("let-me-in")).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn signup_is_closed_off_loopback_until_opened() {
    let public_issuer = ("AGENTIDP_ISSUER", "https://id.agentidp.test");
    let create = |server: &Server| {
        let request = server
            .http
            .post(server.url("/v1/orgs"))
            .json(&json!({ "name": "Anyone" }));
        async move { status_json(request.send().await.unwrap()).await }
    };
    // Listening on loopback, but issuing for a public host: a deployment, so closed.
    let closed = Server::start_with(&[public_issuer, ("AGENTIDP_SIGNUP", "")]).await;
    let (status, body) = create(&closed).await;
    assert_problem((status, body.clone()), 403, "signup_closed");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("AGENTIDP_SIGNUP_TOKEN") && detail.contains("AGENTIDP_SIGNUP=open"),
        "the refusal says which variable to set: {detail}"
    );
    let open = Server::start_with(&[public_issuer, ("AGENTIDP_SIGNUP", "open")]).await;
    let (status, body) = create(&open).await;
    assert_eq!(status, 201, "{body}");
    // The local server as the README starts it stays open.
    let local = Server::start().await;
    let (status, body) = create(&local).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn agents_are_registered_with_defaults_and_read_back() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;

    let minimal = server
        .create_agent(
            &org,
            json!({ "name": "Minimal", "agent_type": "assistant" }),
        )
        .await;
    assert_eq!(minimal["org_id"], org.id.as_str());
    assert_eq!(minimal["status"], "active");
    assert_eq!(minimal["visibility"], "private");
    assert_eq!(minimal["deployment_env"], "development");
    assert_eq!(minimal["capabilities"], json!([]));
    assert_eq!(minimal["metadata"], json!({}));
    assert!(minimal["email"].is_null() && minimal["last_auth_at"].is_null());
    assert_eq!(minimal["created_at"], minimal["updated_at"]);
    let id = minimal["id"].as_str().unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4", "a v4 UUID: {id}");

    let full = server
        .create_agent(
            &org,
            json!({
                "name": "Indexer",
                "email": "Indexer@Example.com",
                "agent_type": "crawler.v2",
                "version": "1.4.0",
                "capabilities": ["read:docs", "write:index", "read:docs"],
                "owner": "team-search",
                "deployment_env": "production",
                "metadata": { "region": "eu", "replicas": 3 },
                "visibility": "public",
            }),
        )
        .await;
    assert_eq!(full["email"], "indexer@example.com");
    assert_eq!(full["capabilities"], json!(["read:docs", "write:index"]));
    assert_eq!(full["deployment_env"], "production");
    assert_eq!(full["metadata"]["replicas"], 3);

    let path = format!("/v1/agents/{}", full["id"].as_str().unwrap());
    let (status, read) = status_json(server.get(&path, &org.token).await).await;
    assert_eq!(status, 200);
    assert_eq!(read, full);

    let (status, page) = status_json(server.get("/v1/agents", &org.token).await).await;
    assert_eq!(status, 200);
    assert_eq!(
        sorted(names(page["data"].as_array().unwrap())),
        ["Indexer", "Minimal"]
    );
    assert!(page["next_cursor"].is_null());
}

#[tokio::test]
async fn lists_filter_and_paginate_without_gaps_or_repeats() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let mut expected = Vec::new();
    for i in 0..7 {
        let owner = if i % 2 == 0 { "alice" } else { "bob" };
        let agent_type = if i < 3 { "crawler" } else { "assistant" };
        server
            .create_agent(
                &org,
                json!({ "name": format!("a{i}"), "agent_type": agent_type, "owner": owner }),
            )
            .await;
        expected.push(format!("a{i}"));
    }
    let (all, pages) = all_pages(&server, &org, "/v1/agents?limit=2").await;
    assert_eq!(pages, 4);
    // Creation order; agents created within the same millisecond may come in either order.
    let mut listed = names(&all);
    listed.sort();
    assert_eq!(listed, expected);

    let (alice, _) = all_pages(&server, &org, "/v1/agents?owner=alice&limit=1").await;
    assert_eq!(sorted(names(&alice)), ["a0", "a2", "a4", "a6"]);
    let (crawlers, _) = all_pages(&server, &org, "/v1/agents?agent_type=crawler").await;
    assert_eq!(sorted(names(&crawlers)), ["a0", "a1", "a2"]);
    let (both, _) = all_pages(&server, &org, "/v1/agents?agent_type=crawler&owner=bob").await;
    assert_eq!(names(&both), ["a1"]);

    let third = all.iter().find(|a| a["name"] == "a2").unwrap()["id"]
        .as_str()
        .unwrap();
    let response = server
        .patch(
            &format!("/v1/agents/{third}"),
            &org.token,
            json!({ "status": "suspended" }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let (suspended, _) = all_pages(&server, &org, "/v1/agents?status=suspended").await;
    assert_eq!(names(&suspended), ["a2"]);
    let (active, _) = all_pages(&server, &org, "/v1/agents?status=active&limit=200").await;
    assert_eq!(active.len(), 6);

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=many", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("status=retired", "status"),
        ("colour=red", "colour"),
    ] {
        let response = server.get(&format!("/v1/agents?{query}"), &org.token).await;
        let body = assert_problem(status_json(response).await, 400, "invalid_field");
        assert!(
            body["field"].as_str().unwrap_or("").contains(field)
                || body["detail"].as_str().unwrap().contains(field),
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn patch_changes_only_what_is_sent_and_is_audited() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let agent = server
        .create_agent(
            &org,
            json!({
                "name": "Bot", "agent_type": "assistant", "email": "bot@acme.test",
                "version": "1.0", "owner": "ops", "capabilities": ["a"],
            }),
        )
        .await;
    let path = format!("/v1/agents/{}", agent["id"].as_str().unwrap());

    let (status, patched) = status_json(
        server
            .patch(
                &path,
                &org.token,
                json!({
                    "version": "2.0", "email": null, "capabilities": ["a", "b"],
                    "metadata": { "k": "v" }, "visibility": "public",
                    "deployment_env": "staging",
                }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["version"], "2.0");
    assert!(patched["email"].is_null());
    assert_eq!(patched["capabilities"], json!(["a", "b"]));
    assert_eq!(patched["metadata"], json!({ "k": "v" }));
    assert_eq!(patched["visibility"], "public");
    assert_eq!(patched["deployment_env"], "staging");
    // Untouched fields stay as they were.
    assert_eq!(patched["name"], "Bot");
    assert_eq!(patched["owner"], "ops");
    assert_eq!(patched["created_at"], agent["created_at"]);
    assert_ne!(patched["updated_at"], agent["updated_at"]);
    let (_, read) = status_json(server.get(&path, &org.token).await).await;
    assert_eq!(read, patched);

    let (status, events) = status_json(
        server
            .get(
                &format!(
                    "/v1/audit/events?action=agent.updated&agent_id={}",
                    agent["id"].as_str().unwrap()
                ),
                &org.token,
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{events}");
    let event = &events["data"][0];
    assert_eq!(event["action"], "agent.updated");
    let changed: HashSet<&str> = event["details"]["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let expected: HashSet<&str> = [
        "version",
        "email",
        "capabilities",
        "metadata",
        "visibility",
        "deployment_env",
    ]
    .into();
    assert_eq!(changed, expected);
}

#[tokio::test]
async fn suspension_revokes_tokens_and_reactivation_restores_access() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let agent = server
        .agent_with_secret(&org, "worker", &["agents:read"])
        .await;
    let path = format!("/v1/agents/{}", agent.id);
    let token = server
        .token(&agent.client_id, &agent.client_secret, &[])
        .await;
    assert_eq!(server.get("/v1/agents", &token).await.status(), 200);

    let (status, suspended) = status_json(
        server
            .patch(&path, &org.token, json!({ "status": "suspended" }))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{suspended}");
    assert_eq!(suspended["status"], "suspended");

    // Its live token dies at once, and it cannot get another.
    assert_problem(
        status_json(server.get("/v1/agents", &token).await).await,
        401,
        "invalid_token",
    );
    let (status, body) = status_json(
        server
            .token_request(&agent.client_id, &agent.client_secret, &[])
            .await,
    )
    .await;
    assert!(
        (status, body["error"].as_str()) == (400, Some("invalid_grant"))
            || (status, body["error"].as_str()) == (401, Some("invalid_client")),
        "{status} {body}"
    );

    let (status, reactivated) = status_json(
        server
            .patch(&path, &org.token, json!({ "status": "active" }))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{reactivated}");
    assert_eq!(reactivated["status"], "active");
    // Revocation covers every token issued up to the second of suspension.
    server.advance_clock(Duration::from_millis(1100));
    let fresh = server
        .token(&agent.client_id, &agent.client_secret, &[])
        .await;
    assert_eq!(server.get("/v1/agents", &fresh).await.status(), 200);

    let (_, events) = status_json(
        server
            .get(
                &format!("/v1/audit/events?agent_id={}", agent.id),
                &org.token,
            )
            .await,
    )
    .await;
    let actions: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"agent.suspended"), "{actions:?}");
    assert!(actions.contains(&"agent.reactivated"), "{actions:?}");
}

#[tokio::test]
async fn decommissioning_is_terminal_and_keeps_the_record() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let agent = server
        .agent_with_secret(&org, "retiree", &["agents:read"])
        .await;
    let path = format!("/v1/agents/{}", agent.id);
    let token = server
        .token(&agent.client_id, &agent.client_secret, &[])
        .await;

    let (status, retired) = status_json(server.delete(&path, &org.token).await).await;
    assert_eq!(status, 200, "{retired}");
    assert_eq!(retired["status"], "decommissioned");

    // Its token and its credentials are dead.
    assert_problem(
        status_json(server.get("/v1/agents", &token).await).await,
        401,
        "invalid_token",
    );
    let response = server
        .token_request(&agent.client_id, &agent.client_secret, &[])
        .await;
    assert!(matches!(response.status().as_u16(), 400 | 401));
    let (_, credentials) =
        status_json(server.get(&format!("{path}/credentials"), &org.token).await).await;
    assert_eq!(credentials["data"][0]["status"], "revoked");
    assert!(credentials["data"][0]["revoked_at"].is_string());

    // The record stays, and nothing brings it back.
    let (status, read) = status_json(server.get(&path, &org.token).await).await;
    assert_eq!(
        (status, read["status"].as_str()),
        (200, Some("decommissioned"))
    );
    for patch in [
        json!({ "status": "active" }),
        json!({ "status": "suspended" }),
        json!({ "name": "Lazarus" }),
    ] {
        assert_problem(
            status_json(server.patch(&path, &org.token, patch).await).await,
            409,
            "agent_decommissioned",
        );
    }
    assert_problem(
        status_json(
            server
                .post(&format!("{path}/credentials"), &org.token, json!({}))
                .await,
        )
        .await,
        409,
        "agent_decommissioned",
    );
    // DELETE is idempotent.
    let (status, again) = status_json(server.delete(&path, &org.token).await).await;
    assert_eq!(
        (status, again["status"].as_str()),
        (200, Some("decommissioned"))
    );
    // Decommissioned agents are listed under their status.
    let (_, page) = status_json(
        server
            .get("/v1/agents?status=decommissioned", &org.token)
            .await,
    )
    .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_free_tier_caps_live_agents_atomically() {
    let server = Server::start_with(&[("AGENTIDP_MAX_AGENTS_PER_ORG", "3")]).await;
    let org = server.bootstrap("small").await;

    // Ten concurrent registrations: exactly three win.
    let mut attempts = tokio::task::JoinSet::new();
    for i in 0..10 {
        let request = server
            .http
            .post(server.url("/v1/agents"))
            .bearer_auth(&org.token)
            .json(&json!({ "name": format!("racer-{i}"), "agent_type": "worker" }));
        attempts.spawn(async move { status_json(request.send().await.unwrap()).await });
    }
    let outcomes = attempts.join_all().await;
    let created: Vec<&Value> = outcomes
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(created.len(), 3, "{outcomes:?}");
    for (status, body) in outcomes.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(*status, 403, "{body}");
        assert_eq!(body["code"], "free_tier_limit_exceeded");
        assert_eq!(body["limit"], 3);
        assert_eq!(body["status"], 403);
    }

    // Decommissioned agents do not count.
    let first = created[0]["id"].as_str().unwrap();
    assert_eq!(
        server
            .delete(&format!("/v1/agents/{first}"), &org.token)
            .await
            .status(),
        200
    );
    server
        .create_agent(
            &org,
            json!({ "name": "replacement", "agent_type": "worker" }),
        )
        .await;
    assert_problem(
        status_json(
            server
                .post(
                    "/v1/agents",
                    &org.token,
                    json!({ "name": "one-too-many", "agent_type": "worker" }),
                )
                .await,
        )
        .await,
        403,
        "free_tier_limit_exceeded",
    );
    // The cap is per organization.
    let other = server.bootstrap("other").await;
    server
        .create_agent(&other, json!({ "name": "fine", "agent_type": "worker" }))
        .await;
}

#[tokio::test]
async fn emails_are_unique_within_an_organization() {
    let server = Server::start().await;
    let acme = server.bootstrap("acme").await;
    let globex = server.bootstrap("globex").await;
    server
        .create_agent(
            &acme,
            json!({ "name": "A", "agent_type": "x", "email": "bot@shared.test" }),
        )
        .await;
    assert_problem(
        status_json(
            server
                .post(
                    "/v1/agents",
                    &acme.token,
                    json!({ "name": "B", "agent_type": "x", "email": "BOT@shared.test" }),
                )
                .await,
        )
        .await,
        409,
        "email_taken",
    );
    // Another organization may use the same address.
    server
        .create_agent(
            &globex,
            json!({ "name": "C", "agent_type": "x", "email": "bot@shared.test" }),
        )
        .await;
    // Updates are checked too.
    let other = server
        .create_agent(
            &acme,
            json!({ "name": "D", "agent_type": "x", "email": "d@shared.test" }),
        )
        .await;
    let path = format!("/v1/agents/{}", other["id"].as_str().unwrap());
    assert_problem(
        status_json(
            server
                .patch(&path, &acme.token, json!({ "email": "bot@shared.test" }))
                .await,
        )
        .await,
        409,
        "email_taken",
    );
    let (_, unchanged) = status_json(server.get(&path, &acme.token).await).await;
    assert_eq!(unchanged["email"], "d@shared.test");
}

#[tokio::test]
async fn invalid_input_is_refused_naming_the_field() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let valid = json!({ "name": "ok", "agent_type": "assistant" });
    let with = |key: &str, value: Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    let mut without_name = valid.clone();
    without_name.as_object_mut().unwrap().remove("name");
    let mut without_type = valid.clone();
    without_type.as_object_mut().unwrap().remove("agent_type");
    let cases = [
        (without_name, "name"),
        (without_type, "agent_type"),
        (with("name", json!(42)), "name"),
        (with("name", json!("  ")), "name"),
        (with("name", json!("x".repeat(201))), "name"),
        (with("agent_type", json!("Has Spaces")), "agent_type"),
        (with("email", json!("not-an-email")), "email"),
        (with("deployment_env", json!("moon")), "deployment_env"),
        (with("visibility", json!("secret")), "visibility"),
        (with("capabilities", json!("read")), "capabilities"),
        (with("capabilities", json!(["has space"])), "capabilities"),
        (with("capabilities", json!([1])), "capabilities"),
        (with("metadata", json!([1, 2])), "metadata"),
        (
            with("metadata", json!({ "blob": "x".repeat(9 * 1024) })),
            "metadata",
        ),
        (with("status", json!("suspended")), "status"),
        (
            with("org_id", json!("00000000-0000-4000-8000-000000000000")),
            "org_id",
        ),
    ];
    for (body, field) in cases {
        let response = server.post("/v1/agents", &org.token, body.clone()).await;
        let problem = assert_problem(status_json(response).await, 400, "invalid_field");
        assert!(
            problem["field"].as_str().unwrap().starts_with(field)
                || problem["detail"].as_str().unwrap().contains(field),
            "{body}: {problem}"
        );
    }

    let agent = server.create_agent(&org, valid.clone()).await;
    let path = format!("/v1/agents/{}", agent["id"].as_str().unwrap());
    for (patch, field) in [
        (json!({}), "body"),
        (json!({ "status": "decommissioned" }), "status"),
        (json!({ "status": "paused" }), "status"),
        (json!({ "name": null }), "name"),
        (
            json!({ "id": "00000000-0000-4000-8000-000000000000" }),
            "id",
        ),
        (
            json!({ "created_at": "2020-01-01T00:00:00Z" }),
            "created_at",
        ),
    ] {
        let response = server.patch(&path, &org.token, patch.clone()).await;
        let problem = assert_problem(status_json(response).await, 400, "invalid_field");
        assert!(
            problem["field"].as_str().unwrap().starts_with(field)
                || problem["detail"].as_str().unwrap().contains(field),
            "{patch}: {problem}"
        );
    }

    // Malformed JSON, the wrong media type and oversized bodies.
    for (method, target) in [(Method::POST, "/v1/agents"), (Method::PATCH, path.as_str())] {
        let response = server
            .send_raw(
                method.clone(),
                target,
                &org.token,
                "application/json",
                "{\"name\": ",
            )
            .await;
        assert_problem(status_json(response).await, 400, "invalid_json");
        let response = server
            .send_raw(
                method.clone(),
                target,
                &org.token,
                "text/plain",
                valid.to_string(),
            )
            .await;
        assert_problem(status_json(response).await, 415, "unsupported_media_type");
        // The server answers before reading an oversized body and drops the connection, so a
        // fresh connection keeps the pooled ones of the other requests out of that race.
        let huge = json!({ "name": "big", "agent_type": "x", "metadata": { "pad": "x".repeat(70 * 1024) } });
        let response = agentidp_tests::reqwest::Client::new()
            .request(method, server.url(target))
            .bearer_auth(&org.token)
            .header("content-type", "application/json")
            .body(huge.to_string())
            .send()
            .await
            .unwrap();
        assert_problem(status_json(response).await, 413, "payload_too_large");
    }
    // None of it created anything.
    let (_, page) = status_json(server.get("/v1/agents", &org.token).await).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn managing_agents_needs_the_right_scopes() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let reader = server
        .agent_with_secret(&org, "reader", &["agents:read"])
        .await;
    let bystander = server.agent_with_secret(&org, "bystander", &[]).await;
    let read_token = server
        .token(&reader.client_id, &reader.client_secret, &[])
        .await;
    let no_scope = server
        .token(&bystander.client_id, &bystander.client_secret, &[])
        .await;
    let path = format!("/v1/agents/{}", bystander.id);

    assert_eq!(server.get("/v1/agents", &read_token).await.status(), 200);
    assert_eq!(server.get(&path, &read_token).await.status(), 200);
    let writes = [
        server
            .post(
                "/v1/agents",
                &read_token,
                json!({ "name": "x", "agent_type": "x" }),
            )
            .await,
        server
            .patch(&path, &read_token, json!({ "status": "suspended" }))
            .await,
        server.delete(&path, &read_token).await,
        server
            .post(&format!("{path}/credentials"), &read_token, json!({}))
            .await,
        server
            .post(
                &format!("{path}/credentials/{}/rotate", bystander.credential_id),
                &read_token,
                json!({}),
            )
            .await,
        server
            .delete(
                &format!("{path}/credentials/{}", bystander.credential_id),
                &read_token,
            )
            .await,
    ];
    for response in writes {
        let body = assert_problem(status_json(response).await, 403, "insufficient_scope");
        assert_eq!(body["required_scope"], "agents:write");
    }
    for read in [
        "/v1/agents".to_owned(),
        path.clone(),
        format!("{path}/credentials"),
    ] {
        let body = assert_problem(
            status_json(server.get(&read, &no_scope).await).await,
            403,
            "insufficient_scope",
        );
        assert_eq!(body["required_scope"], "agents:read");
    }
    // Nothing changed, and no token at all is a 401.
    let (_, agent) = status_json(server.get(&path, &org.token).await).await;
    assert_eq!(agent["status"], "active");
    let response = server
        .http
        .get(server.url("/v1/agents"))
        .send()
        .await
        .unwrap();
    assert_problem(status_json(response).await, 401, "invalid_token");
}

#[tokio::test]
async fn names_show_what_they_are_and_emails_are_unique_however_typed() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    for name in [
        "pay\u{202E}lanimret", // right-to-left override
        "admin\u{200B}",       // zero-width space
        "\u{2066}bot\u{2069}", // isolate
        "bot\u{FEFF}",
        "bot\u{E0041}", // tag
    ] {
        let problem = assert_problem(
            status_json(
                server
                    .post(
                        "/v1/agents",
                        &org.token,
                        json!({ "name": name, "agent_type": "worker" }),
                    )
                    .await,
            )
            .await,
            400,
            "invalid_field",
        );
        assert_eq!(problem["field"], "name", "{name:?}");
    }
    // Accents and scripts are names too.
    server
        .create_agent(
            &org,
            json!({ "name": "Café ünïcode 日本 🤖", "agent_type": "worker" }),
        )
        .await;

    // `café@` precomposed (NFC), then decomposed (NFD) with the domain in capitals: one address.
    let nfc = "caf\u{e9}@example.com";
    let created = server
        .create_agent(
            &org,
            json!({ "name": "first", "agent_type": "worker", "email": nfc }),
        )
        .await;
    assert_eq!(created["email"], nfc);
    let problem = assert_problem(
        status_json(
            server
                .post(
                    "/v1/agents",
                    &org.token,
                    json!({ "name": "second", "agent_type": "worker",
                            "email": "cafe\u{301}@EXAMPLE.com" }),
                )
                .await,
        )
        .await,
        409,
        "email_taken",
    );
    assert!(problem["detail"].is_string());
}
