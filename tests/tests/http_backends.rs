//! The edge's storage path, natively: the server on libSQL over HTTP (Hrana) and Upstash REST, both
//! served by `agentidp-dev backends` over the embedded engine and a real redis-server. This is the
//! code the Workers and Spin builds run (optimistic audit-chain commits, guarded atomic batches).
//! The guarded race also runs on the embedded writer, whose group commits it must not break.

use agentidp_tests::{status_json, DevBackends, Org, RedisServer, Server};
use serde_json::{json, Value};

/// A real redis-server behind the stand-ins, and native servers on top of them.
struct Backends {
    standins: DevBackends,
    _redis: RedisServer,
}

impl Backends {
    async fn start() -> Backends {
        let redis = RedisServer::start();
        Backends {
            standins: DevBackends::start(&redis.url),
            _redis: redis,
        }
    }

    async fn server(&self, extra: &[(&str, &str)]) -> Server {
        let mut env = vec![
            ("AGENTIDP_DATABASE_URL", self.standins.hrana_url.as_str()),
            ("AGENTIDP_DATABASE_AUTH_TOKEN", self.standins.token.as_str()),
            ("UPSTASH_REDIS_REST_URL", self.standins.upstash_url.as_str()),
            ("UPSTASH_REDIS_REST_TOKEN", self.standins.token.as_str()),
        ];
        env.extend_from_slice(extra);
        Server::start_with(&env).await
    }
}

#[tokio::test]
async fn concurrent_writes_keep_one_valid_audit_chain_over_http() {
    let backends = Backends::start().await;
    let server = backends.server(&[]).await;
    let org = server.bootstrap("edge-chain").await;
    let mut writes = Vec::new();
    for i in 0..30 {
        let (http, url, token) = (
            server.http.clone(),
            server.url("/v1/agents"),
            org.token.clone(),
        );
        writes.push(tokio::spawn(async move {
            let body = json!({ "name": format!("worker-{i}"), "agent_type": "worker" });
            http.post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for write in writes {
        assert_eq!(write.await.unwrap(), 201);
    }
    let (status, verdict) = status_json(server.get("/v1/audit/verify", &org.token).await).await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["valid"], true, "{verdict}");
    // org.created + 30 agent.created + the admin's token.issued, with no gap.
    assert_eq!(verdict["events_checked"], 32, "{verdict}");
}

#[tokio::test]
async fn guarded_batches_are_atomic_over_http() {
    let backends = Backends::start().await;
    let server = backends
        .server(&[("AGENTIDP_MAX_AGENTS_PER_ORG", "3")])
        .await;
    guarded_writes_fail_alone(&server).await;
}

/// The same race on the embedded database, where concurrent requests share group commits: a
/// refused job is redone alone and takes no other job of its group down with it.
#[tokio::test]
async fn guarded_writes_fail_alone_in_a_group_commit() {
    let server = Server::start_with(&[("AGENTIDP_MAX_AGENTS_PER_ORG", "3")]).await;
    let org = guarded_writes_fail_alone(&server).await;
    let (status, verdict) = status_json(server.get("/v1/audit/verify", &org.token).await).await;
    assert_eq!(
        (status, verdict["valid"].clone()),
        (200, json!(true)),
        "{verdict}"
    );
}

/// Eight concurrent creations against a cap of three: exactly three agents and three audit events.
async fn guarded_writes_fail_alone(server: &Server) -> Org {
    let org = server.bootstrap("edge-guard").await;
    let mut writes = Vec::new();
    for i in 0..8 {
        let (http, url, token) = (
            server.http.clone(),
            server.url("/v1/agents"),
            org.token.clone(),
        );
        writes.push(tokio::spawn(async move {
            let body = json!({ "name": format!("worker-{i}"), "agent_type": "worker" });
            http.post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for write in writes {
        statuses.push(write.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 403).count(),
        5,
        "{statuses:?}"
    );
    let (_, list) = status_json(server.get("/v1/agents?limit=50", &org.token).await).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 3);
    // A refused creation left no audit event behind either.
    let (_, events) = status_json(
        server
            .get("/v1/audit/events?action=agent.created", &org.token)
            .await,
    )
    .await;
    assert_eq!(events["data"].as_array().unwrap().len(), 3, "{events}");
    org
}

#[tokio::test]
async fn revocation_and_replay_checks_go_through_upstash() {
    let backends = Backends::start().await;
    let first = backends
        .server(&[("AGENTIDP_ISSUER", "http://agentidp.test")])
        .await;
    let second = backends
        .server(&[("AGENTIDP_ISSUER", "http://agentidp.test")])
        .await;
    let org = first.bootstrap("edge-revocation").await;
    let agent = first
        .agent_with_secret(&org, "reader", &["agents:read"])
        .await;
    let token = first
        .token(&agent.client_id, &agent.client_secret, &[])
        .await;
    // Both instances share the database and the key set, so either accepts the token.
    assert_eq!(second.get("/v1/agents", &token).await.status(), 200);
    let response = first
        .http
        .post(first.url("/oauth2/revoke"))
        .basic_auth(&agent.client_id, Some(&agent.client_secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Revoked on one instance, refused by the other.
    let (status, body): (u16, Value) = status_json(second.get("/v1/agents", &token).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_token"))
    );
}

#[tokio::test]
async fn the_audit_log_verifies_independently_over_http() {
    let backends = Backends::start().await;
    let server = backends.server(&[]).await;
    let org = server.bootstrap("edge-tree").await;
    let agent = server
        .agent_with_secret(&org, "edge-issuer", &["agents:read"])
        .await;
    let issue = |n: usize| {
        let (http, url) = (server.http.clone(), server.url("/oauth2/token"));
        let (id, secret) = (agent.client_id.clone(), agent.client_secret.clone());
        (0..n)
            .map(|_| {
                let (http, url, id, secret) =
                    (http.clone(), url.clone(), id.clone(), secret.clone());
                tokio::spawn(async move {
                    http.post(url)
                        .basic_auth(id, Some(secret))
                        .form(&[("grant_type", "client_credentials")])
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16()
                })
            })
            .collect::<Vec<_>>()
    };
    // Twenty at once: optimistic appends racing over the tree's nodes as well as the chain.
    for request in issue(20) {
        assert_eq!(request.await.unwrap(), 200);
    }
    let saved = server
        .get("/v1/audit/checkpoints/latest", &org.token)
        .await
        .text()
        .await
        .unwrap();
    for request in issue(20) {
        assert_eq!(request.await.unwrap(), 200);
    }
    let summary = agentidp_tests::audit_log::verify_independently(&server, &org.token, &saved);
    assert!(summary["size"].as_u64().unwrap() >= 43, "{summary}");
}

/// The marketplace's full-text index over Hrana: the migration's FTS5 table and triggers, a ranked
/// search, a signed card and a withdrawal that leaves the index in the same transaction.
#[tokio::test]
async fn marketplace_search_and_cards_work_over_http() {
    let backends = Backends::start().await;
    let server = backends.server(&[]).await;
    let org = server.bootstrap("edge-market").await;
    let agent = server
        .create_agent(
            &org,
            json!({ "name": "Harbour Pilot", "agent_type": "guide", "visibility": "public",
                    "description": "Guides ships into the harbour.", "tags": ["maritime"] }),
        )
        .await;
    let id = agent["id"].as_str().unwrap();
    let browse = |path: String| {
        let request = server.http.get(server.url(&path));
        async move { status_json(request.send().await.unwrap()).await }
    };
    let (status, page) = browse("/v1/marketplace/agents?q=ships%20harb&facets=tags".into()).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"][0]["id"], id, "{page}");
    assert_eq!(page["facets"]["tags"][0]["value"], "maritime");
    let (status, card) = browse(format!("/v1/marketplace/agents/{id}/agent-card.json")).await;
    assert_eq!(status, 200, "{card}");
    assert!(card["signatures"][0]["signature"].is_string());
    server
        .patch(
            &format!("/v1/agents/{id}"),
            &org.token,
            json!({ "status": "suspended" }),
        )
        .await;
    let (_, page) = browse("/v1/marketplace/agents?q=ships".into()).await;
    assert_eq!(page["data"], json!([]));
}
