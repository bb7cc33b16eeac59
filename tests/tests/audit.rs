//! The audit trail end to end: what gets recorded, querying and exporting it, tenant isolation,
//! and the hash chain standing up to (and exposing) tampering with the database file.

use std::collections::HashSet;

use agentidp_tests::{open_db, status_json, Org, Server};
use serde_json::{json, Value};

/// Every event of the caller's organization, oldest first, walking the cursor pages.
async fn all_events(server: &Server, token: &str, filters: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/audit/events?limit=200{filters}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, body) = status_json(server.get(&path, token).await).await;
        assert_eq!(status, 200, "{body}");
        events.extend(body["data"].as_array().unwrap().iter().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    events.reverse();
    events
}

fn actions(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

async fn verify(server: &Server, token: &str) -> Value {
    let (status, body) = status_json(server.get("/v1/audit/verify", token).await).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn problem(server: &Server, path: &str, token: &str) -> (u16, Value) {
    status_json(server.get(path, token).await).await
}

fn assert_invalid_field(response: (u16, Value), field: &str) {
    let (status, body) = response;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "invalid_field", "{body}");
    assert_eq!(body["field"], field, "{body}");
}

/// Runs one statement directly on the server's database file.
async fn sql(server: &Server, statement: &str) -> Result<u64, String> {
    let conn = open_db(&server.db_path()).await;
    conn.execute(statement, ()).await.map_err(|e| e.to_string())
}

#[tokio::test]
async fn every_step_of_the_bootstrap_flow_lands_in_the_trail() {
    let server = Server::start().await;
    let org = server.bootstrap("recorded").await;
    let agent = server
        .agent_with_secret(&org, "reporter", &["agents:read"])
        .await;
    let response = server
        .patch(
            &format!("/v1/agents/{}", agent.id),
            &org.token,
            json!({ "version": "2.0.0" }),
        )
        .await;
    assert_eq!(response.status(), 200);
    server
        .token(&agent.client_id, &agent.client_secret, &[])
        .await;
    let refused = server
        .token_request(&agent.client_id, "not-the-secret", &[])
        .await;
    assert_eq!(refused.status(), 401);

    let events = all_events(&server, &org.token, "").await;
    let recorded = actions(&events);
    for action in [
        "org.created",
        "agent.created",
        "agent.updated",
        "credential.created",
        "token.issued",
        "authentication.failed",
    ] {
        assert!(
            recorded.contains(&action),
            "{action} missing from {recorded:?}"
        );
    }
    assert_eq!(recorded[0], "org.created");

    // The chain as listed: contiguous from 1, each event pointing at the one before.
    let mut prev = "0".repeat(64);
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event["seq"], i as u64 + 1);
        assert_eq!(event["org_id"], org.id.as_str());
        assert_eq!(event["prev_hash"], prev.as_str());
        prev = event["hash"].as_str().unwrap().to_owned();
    }

    let failure = events
        .iter()
        .find(|e| e["action"] == "authentication.failed")
        .unwrap();
    assert_eq!(failure["outcome"], "failure");
    assert_eq!(failure["agent_id"], agent.id.as_str());
    assert!(failure["details"].is_object());
    let occurred_at = failure["occurred_at"].as_str().unwrap();
    assert!(
        occurred_at.ends_with('Z') && occurred_at.contains('T'),
        "{occurred_at}"
    );
    let issued = events
        .iter()
        .rev()
        .find(|e| e["action"] == "token.issued")
        .unwrap();
    assert_eq!(issued["agent_id"], agent.id.as_str());
    assert_eq!(issued["outcome"], "success");

    let verdict = verify(&server, &org.token).await;
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(verdict["events_checked"], events.len());
    assert_eq!(verdict["head"]["seq"], events.len());
    assert_eq!(verdict["head"]["hash"], prev.as_str());
}

#[tokio::test]
async fn events_filter_and_paginate() {
    let server = Server::start().await;
    let org = server.bootstrap("filtered").await;
    let first = server.agent_with_secret(&org, "first", &[]).await;
    let second = server.agent_with_secret(&org, "second", &[]).await;
    for _ in 0..3 {
        server.token_request(&first.client_id, "wrong", &[]).await;
    }
    server
        .token(&second.client_id, &second.client_secret, &[])
        .await;
    let everything = all_events(&server, &org.token, "").await;

    // Newest first, and pages of two walk the same events without repeats or gaps.
    let (_, page) = problem(&server, "/v1/audit/events", &org.token).await;
    let seqs: Vec<u64> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");
    let mut paged = Vec::new();
    let mut path = "/v1/audit/events?limit=2".to_owned();
    loop {
        let (status, body) = problem(&server, &path, &org.token).await;
        assert_eq!(status, 200);
        assert!(body["data"].as_array().unwrap().len() <= 2);
        paged.extend(
            body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].clone()),
        );
        match body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/audit/events?limit=2&cursor={c}"),
            None => break,
        }
    }
    let mut expected: Vec<Value> = everything.iter().map(|e| e["id"].clone()).collect();
    expected.reverse();
    assert_eq!(paged, expected);

    // Three failures are summarized when they start and when their count doubles: 1, 2.
    let failures = all_events(&server, &org.token, "&action=authentication.failed").await;
    assert_eq!(failures.len(), 2);
    assert!(failures.iter().all(|e| e["agent_id"] == first.id.as_str()));
    let failures = all_events(&server, &org.token, "&outcome=failure").await;
    assert_eq!(failures.len(), 2);

    let about_second = all_events(&server, &org.token, &format!("&agent_id={}", second.id)).await;
    assert!(!about_second.is_empty());
    assert!(about_second
        .iter()
        .all(|e| e["agent_id"] == second.id.as_str()));
    assert!(actions(&about_second).contains(&"token.issued"));
    let combined = all_events(
        &server,
        &org.token,
        &format!("&agent_id={}&action=token.issued", second.id),
    )
    .await;
    assert_eq!(actions(&combined), ["token.issued"]);

    // Time windows: `from` inclusive, `to` exclusive.
    let first_at = everything[0]["occurred_at"].as_str().unwrap();
    let from_first = all_events(&server, &org.token, &format!("&from={first_at}")).await;
    assert_eq!(from_first.len(), everything.len());
    let before_first = all_events(&server, &org.token, &format!("&to={first_at}")).await;
    assert!(before_first.is_empty());
    let future = all_events(&server, &org.token, "&from=2999-01-01T00:00:00Z").await;
    assert!(future.is_empty());
    let offset = all_events(&server, &org.token, "&to=2999-01-01T01:00:00%2B01:00").await;
    assert_eq!(offset.len(), everything.len());

    for (query, field) in [
        ("from=yesterday", "from"),
        ("to=2025-02-30T00:00:00Z", "to"),
        ("from=2025-02-01T00:00:00Z&to=2025-01-01T00:00:00Z", "to"),
        ("outcome=maybe", "outcome"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=many", "limit"),
        ("cursor=%21%21", "cursor"),
        ("action=", "action"),
    ] {
        let path = format!("/v1/audit/events?{query}");
        assert_invalid_field(problem(&server, &path, &org.token).await, field);
    }
    let (status, body) = problem(&server, "/v1/audit/events?org_id=other", &org.token).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_field"))
    );
}

#[tokio::test]
async fn organizations_never_see_each_others_events() {
    let server = Server::start().await;
    let alpha = server.bootstrap("alpha").await;
    let beta = server.bootstrap("beta").await;
    let alpha_agent = server.agent_with_secret(&alpha, "alpha-bot", &[]).await;
    server
        .token_request(&alpha_agent.client_id, "wrong", &[])
        .await;

    let seen_by_beta = all_events(&server, &beta.token, "").await;
    assert!(!seen_by_beta.is_empty());
    for event in &seen_by_beta {
        assert_eq!(event["org_id"], beta.id.as_str());
        assert_ne!(event["agent_id"], alpha_agent.id.as_str());
    }
    let filtered = all_events(
        &server,
        &beta.token,
        &format!("&agent_id={}", alpha_agent.id),
    )
    .await;
    assert!(filtered.is_empty());

    // A cursor taken from alpha's listing cannot widen beta's view either.
    let (_, page) = problem(&server, "/v1/audit/events?limit=1", &alpha.token).await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let path = format!("/v1/audit/events?cursor={cursor}");
    let (status, body) = problem(&server, &path, &beta.token).await;
    assert_eq!(status, 200);
    assert!(body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["org_id"] == beta.id.as_str()));

    let export = export_lines(&server, &beta.token, "").await;
    assert!(export.iter().all(|e| e["org_id"] == beta.id.as_str()));
    let verdict = verify(&server, &beta.token).await;
    assert_eq!(verdict["events_checked"], seen_by_beta.len());
}

#[tokio::test]
async fn reading_the_trail_needs_the_audit_scope() {
    let server = Server::start().await;
    let org = server.bootstrap("scoped").await;
    let agent = server
        .agent_with_secret(&org, "narrow", &["agents:read"])
        .await;
    let token = server
        .token(&agent.client_id, &agent.client_secret, &[])
        .await;
    for path in [
        "/v1/audit/events",
        "/v1/audit/events?outcome=not-even-valid",
        "/v1/audit/verify",
        "/v1/audit/export",
    ] {
        let (status, body) = problem(&server, path, &token).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["code"], "insufficient_scope");
        assert_eq!(body["required_scope"], "audit:read");

        let response = server.http.get(server.url(path)).send().await.unwrap();
        assert!(response.headers().contains_key("www-authenticate"));
        let (status, body) = status_json(response).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("invalid_token"))
        );
    }

    // An agent granted `audit:read` reads its own organization's trail.
    let auditor = server
        .agent_with_secret(&org, "auditor", &["audit:read"])
        .await;
    let token = server
        .token(&auditor.client_id, &auditor.client_secret, &[])
        .await;
    let events = all_events(&server, &token, "").await;
    assert!(events.iter().all(|e| e["org_id"] == org.id.as_str()));
}

async fn export_lines(server: &Server, token: &str, query: &str) -> Vec<Value> {
    let response = server.get(&format!("/v1/audit/export{query}"), token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    assert!(text.is_empty() || text.ends_with('\n'));
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test]
async fn export_streams_the_chain_oldest_first() {
    let server = Server::start().await;
    let org = server.bootstrap("exported").await;
    for name in ["one", "two", "three"] {
        server.agent_with_secret(&org, name, &[]).await;
    }
    let listed = all_events(&server, &org.token, "").await;
    let exported = export_lines(&server, &org.token, "").await;
    assert_eq!(exported, listed);

    let after = export_lines(&server, &org.token, "?after_seq=2").await;
    assert_eq!(after.first().unwrap()["seq"], 3);
    assert_eq!(after.len(), listed.len() - 2);
    let none = export_lines(&server, &org.token, "?from=2999-01-01T00:00:00Z").await;
    assert!(none.is_empty());
    let since = listed.last().unwrap()["occurred_at"].as_str().unwrap();
    let windowed = export_lines(&server, &org.token, &format!("?from={since}")).await;
    assert!(windowed.len() < listed.len() && !windowed.is_empty());

    assert_invalid_field(
        problem(&server, "/v1/audit/export?to=soon", &org.token).await,
        "to",
    );
    assert_invalid_field(
        problem(&server, "/v1/audit/export?after_seq=-1", &org.token).await,
        "after_seq",
    );
    let (status, _) = problem(&server, "/v1/audit/export?agent=x", &org.token).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_database_refuses_to_rewrite_history() {
    let server = Server::start().await;
    let org = server.bootstrap("immutable").await;
    server.agent_with_secret(&org, "witness", &[]).await;

    let refused = sql(&server, "UPDATE audit_events SET actor = 'nobody'").await;
    assert!(refused.unwrap_err().contains("append-only"));
    let refused = sql(&server, "DELETE FROM audit_events").await;
    assert!(refused.unwrap_err().contains("append-only"));
    // Nor can retention's release be forged ahead of a checkpoint, or off a block boundary.
    let release = format!(
        "INSERT INTO audit_retention (org_id, removable_through, removed_at) VALUES ('{}', 16, 0)",
        org.id
    );
    let refused = sql(&server, &release).await;
    assert!(refused.unwrap_err().contains("behind a checkpoint"));
    let release = release.replace(", 16, 0)", ", 3, 0)");
    assert!(sql(&server, &release).await.is_err());
    let refused = sql(&server, "UPDATE audit_tree_nodes SET hash = zeroblob(32)").await;
    assert!(refused.is_err() || refused == Ok(0));
    assert_eq!(verify(&server, &org.token).await["valid"], true);
}

#[tokio::test]
async fn verify_reports_the_first_tampered_event() {
    let server = Server::start().await;
    let org = server.bootstrap("tampered").await;
    server.agent_with_secret(&org, "victim", &[]).await;
    let before = verify(&server, &org.token).await;
    assert_eq!(before["valid"], true);
    let length = before["events_checked"].as_u64().unwrap();
    assert!(length >= 3);

    // An attacker with the file drops the guard and edits history.
    sql(&server, "DROP TRIGGER audit_events_no_update")
        .await
        .unwrap();
    let edit = format!(
        "UPDATE audit_events SET details = '{{\"name\":\"innocent\"}}' \
         WHERE org_id = '{}' AND seq = 3",
        org.id
    );
    assert_eq!(sql(&server, &edit).await.unwrap(), 1);
    let verdict = verify(&server, &org.token).await;
    assert_eq!(verdict["valid"], false, "{verdict}");
    assert_eq!(verdict["first_broken"]["seq"], 3);
    assert_eq!(verdict["first_broken"]["reason"], "hash_mismatch");
    assert_eq!(verdict["events_checked"], 3);
    assert!(verdict["first_broken"]["id"].is_string());

    // An earlier edit is reported first.
    let edit = format!(
        "UPDATE audit_events SET actor = 'someone-else' WHERE org_id = '{}' AND seq = 2",
        org.id
    );
    sql(&server, &edit).await.unwrap();
    let verdict = verify(&server, &org.token).await;
    assert_eq!(verdict["first_broken"]["seq"], 2);
    assert_eq!(verdict["first_broken"]["reason"], "hash_mismatch");

    // A moved link: the stored hash chain no longer connects.
    let edit = format!(
        "UPDATE audit_events SET prev_hash = hash WHERE org_id = '{}' AND seq = 1",
        org.id
    );
    sql(&server, &edit).await.unwrap();
    let verdict = verify(&server, &org.token).await;
    assert_eq!(verdict["first_broken"]["seq"], 1);
    assert_eq!(verdict["first_broken"]["reason"], "prev_hash_mismatch");

    // Listing still works on a damaged trail; nothing there is a server error.
    let (status, _) = problem(&server, "/v1/audit/events", &org.token).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn verify_reports_a_deleted_event_as_a_gap() {
    let server = Server::start().await;
    let org = server.bootstrap("gapped").await;
    let other = server.bootstrap("untouched").await;
    server.agent_with_secret(&org, "victim", &[]).await;

    sql(&server, "DROP TRIGGER audit_events_delete_only_released")
        .await
        .unwrap();
    let delete = format!(
        "DELETE FROM audit_events WHERE org_id = '{}' AND seq = 2",
        org.id
    );
    assert_eq!(sql(&server, &delete).await.unwrap(), 1);
    let verdict = verify(&server, &org.token).await;
    assert_eq!(verdict["valid"], false, "{verdict}");
    assert_eq!(verdict["first_broken"]["seq"], 3);
    assert_eq!(verdict["first_broken"]["reason"], "sequence_gap");

    // Removing the very first event is a gap too.
    let delete = format!(
        "DELETE FROM audit_events WHERE org_id = '{}' AND seq = 1",
        org.id
    );
    sql(&server, &delete).await.unwrap();
    let verdict = verify(&server, &org.token).await;
    assert_eq!(verdict["first_broken"]["seq"], 3);
    assert_eq!(verdict["first_broken"]["reason"], "sequence_gap");
    assert_eq!(verdict["events_checked"], 1);

    // Another organization's chain is its own, and still intact.
    assert_eq!(verify(&server, &other.token).await["valid"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_keep_the_chain_contiguous() {
    let server = Server::start().await;
    let org: Org = server.bootstrap("busy").await;
    let mut creations = tokio::task::JoinSet::new();
    for i in 0..50 {
        let request = server
            .http
            .post(server.url("/v1/agents"))
            .bearer_auth(&org.token)
            .json(&json!({ "name": format!("worker-{i}"), "agent_type": "worker" }));
        creations.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    let statuses = creations.join_all().await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");

    let events = all_events(&server, &org.token, "").await;
    let created = events
        .iter()
        .filter(|e| e["action"] == "agent.created")
        .count();
    assert_eq!(created, 50);
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>());
    let ids: HashSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len());

    let verdict = verify(&server, &org.token).await;
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(verdict["events_checked"], events.len());
}
