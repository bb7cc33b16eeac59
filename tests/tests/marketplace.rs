//! The public marketplace end to end: only published, active agents of any organization, found
//! without credentials, and nothing private about them.

use std::collections::HashSet;

use agentidp_tests::{status_json, Org, Server};
use serde_json::{json, Value};

/// Registers an agent and returns its id.
async fn register(server: &Server, org: &Org, body: Value) -> String {
    let (status, agent) = status_json(server.post("/v1/agents", &org.token, body).await).await;
    assert_eq!(status, 201, "{agent}");
    agent["id"].as_str().unwrap().to_owned()
}

async fn public(
    server: &Server,
    name: &str,
    agent_type: &str,
    capabilities: &[&str],
    org: &Org,
) -> String {
    register(
        server,
        org,
        json!({
            "name": name,
            "agent_type": agent_type,
            "capabilities": capabilities,
            "visibility": "public",
            "email": format!("{name}@example.test"),
            "owner": "team-secret",
            "metadata": { "internal": "do not publish" },
            "version": "1.2.3",
            "deployment_env": "production",
        }),
    )
    .await
}

/// Anonymous GET.
async fn browse(server: &Server, path: &str) -> (u16, Value) {
    status_json(server.http.get(server.url(path)).send().await.unwrap()).await
}

fn names(page: &Value) -> HashSet<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect()
}

fn set(names: &[&str]) -> HashSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// RFC 3339 UTC text with its fraction padded to nanoseconds, so strings order as instants do.
fn sortable(timestamp: &str) -> String {
    let (seconds, fraction) = timestamp
        .trim_end_matches('Z')
        .split_once('.')
        .unwrap_or((timestamp.trim_end_matches('Z'), ""));
    format!("{seconds}.{fraction:0<9}")
}

#[tokio::test]
async fn only_published_active_agents_of_every_organization_are_listed() {
    let server = Server::start().await;
    let acme = server.bootstrap("acme").await;
    let globex = server.bootstrap("globex").await;
    public(&server, "Translator", "nlp", &["translate"], &acme).await;
    public(
        &server,
        "Summarizer",
        "nlp",
        &["summarize", "translate"],
        &globex,
    )
    .await;
    let paused = public(&server, "Paused", "nlp", &[], &acme).await;
    let retired = public(&server, "Retired", "nlp", &[], &globex).await;
    register(
        &server,
        &acme,
        json!({ "name": "Hidden", "agent_type": "nlp" }),
    )
    .await;
    register(
        &server,
        &acme,
        json!({ "name": "Private", "agent_type": "nlp", "visibility": "private" }),
    )
    .await;

    let response = server
        .patch(
            &format!("/v1/agents/{paused}"),
            &acme.token,
            json!({ "status": "suspended" }),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(server
        .delete(&format!("/v1/agents/{retired}"), &globex.token)
        .await
        .status()
        .is_success());

    let (status, page) = browse(&server, "/v1/marketplace/agents").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(names(&page), set(&["Translator", "Summarizer"]));
    assert!(page["next_cursor"].is_null());

    // Newest first.
    let created: Vec<String> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| sortable(a["created_at"].as_str().unwrap()))
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}");

    for (path, expected) in [
        ("/v1/marketplace/agents?q=TRANS", vec!["Translator"]),
        (
            "/v1/marketplace/agents?q=nl",
            vec!["Translator", "Summarizer"],
        ),
        ("/v1/marketplace/agents?q=izer", vec!["Summarizer"]),
        ("/v1/marketplace/agents?q=%25", vec![]),
        ("/v1/marketplace/agents?q=_", vec![]),
        (
            "/v1/marketplace/agents?agent_type=nlp",
            vec!["Translator", "Summarizer"],
        ),
        ("/v1/marketplace/agents?agent_type=NLP", vec![]),
        (
            "/v1/marketplace/agents?capability=translate",
            vec!["Translator", "Summarizer"],
        ),
        (
            "/v1/marketplace/agents?capability=summarize",
            vec!["Summarizer"],
        ),
        ("/v1/marketplace/agents?capability=summ", vec![]),
        (
            "/v1/marketplace/agents?q=sum&capability=translate",
            vec!["Summarizer"],
        ),
    ] {
        let (status, page) = browse(&server, path).await;
        assert_eq!(status, 200, "{path}: {page}");
        assert_eq!(names(&page), set(&expected), "{path}");
    }
}

#[tokio::test]
async fn a_listing_reveals_nothing_private() {
    let server = Server::start().await;
    let org = server.bootstrap("discreet").await;
    let id = public(&server, "Open", "search", &["web:search"], &org).await;
    let private = register(
        &server,
        &org,
        json!({ "name": "Closed", "agent_type": "search" }),
    )
    .await;

    let (status, agent) = browse(&server, &format!("/v1/marketplace/agents/{id}")).await;
    assert_eq!(status, 200, "{agent}");
    let fields: HashSet<&str> = agent
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        HashSet::from([
            "id",
            "name",
            "agent_type",
            "version",
            "capabilities",
            "deployment_env",
            "created_at",
        ])
    );
    assert_eq!(agent["capabilities"], json!(["web:search"]));
    assert_eq!(agent["version"], "1.2.3");
    assert_eq!(agent["deployment_env"], "production");
    let (_, page) = browse(&server, "/v1/marketplace/agents").await;
    assert_eq!(page["data"][0], agent);
    let text = page.to_string();
    for secret in [
        "example.test",
        "team-secret",
        "do not publish",
        org.id.as_str(),
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }

    for missing in [
        private.as_str(),
        "00000000-0000-4000-8000-000000000000",
        "not-an-id",
        "%FF",
    ] {
        let (status, body) = browse(&server, &format!("/v1/marketplace/agents/{missing}")).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("not_found")),
            "{missing}"
        );
    }
}

#[tokio::test]
async fn search_pages_with_a_cursor() {
    let server = Server::start().await;
    let org = server.bootstrap("prolific").await;
    let mut published = HashSet::new();
    for i in 0..7 {
        let name = format!("bot-{i}");
        public(&server, &name, "worker", &[], &org).await;
        published.insert(name);
    }
    let mut seen = Vec::new();
    let mut path = "/v1/marketplace/agents?limit=3&q=bot".to_owned();
    loop {
        let (status, page) = browse(&server, &path).await;
        assert_eq!(status, 200, "{page}");
        assert!(page["data"].as_array().unwrap().len() <= 3);
        seen.extend(names(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/marketplace/agents?limit=3&q=bot&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), published);
}

#[tokio::test]
async fn malformed_searches_are_refused_by_name() {
    let server = Server::start().await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=500", "limit"),
        ("limit=ten", "limit"),
        ("cursor=bogus", "cursor"),
        ("q=", "q"),
    ] {
        let (status, body) = browse(&server, &format!("/v1/marketplace/agents?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["code"], "invalid_field");
        assert_eq!(body["field"], field, "{query}");
    }
    let long = "x".repeat(101);
    let (status, body) = browse(&server, &format!("/v1/marketplace/agents?q={long}")).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("q")));
    let (status, body) = browse(&server, "/v1/marketplace/agents?org_id=x").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_field"))
    );
}
