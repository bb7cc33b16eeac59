//! The OpenAPI document matches the API: served as kept in the repository, OpenAPI 3.1, and every
//! documented operation is routed by the real server (`routes.rs` checks it against the route table).

use agentidp_tests::{reqwest::Method, status_json, Server};
use serde_json::Value;

/// The document in the repository, as the server embeds it.
const REPO_DOCUMENT: &str = include_str!("../../openapi.json");

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn served_document(server: &Server) -> (String, Value) {
    let response = server
        .http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let text = response.text().await.unwrap();
    let document = serde_json::from_str(&text).expect("the OpenAPI document is JSON");
    (text, document)
}

/// Substitutes a placeholder for each `{parameter}` of a templated path.
fn concrete(path: &str) -> String {
    path.replace("{id}", "00000000-0000-4000-8000-000000000001")
        .replace("{cid}", "00000000-0000-4000-8000-000000000002")
}

#[tokio::test]
async fn the_served_document_is_the_repository_document() {
    let server = Server::start().await;
    let (text, document) = served_document(&server).await;
    assert_eq!(text, REPO_DOCUMENT);
    let version = document["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "OpenAPI {version}");
    for component in ["Problem", "OAuthError", "Agent", "Credential", "AuditEvent"] {
        assert!(
            document["components"]["schemas"][component].is_object(),
            "missing schema {component}"
        );
    }
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["bearerAuth"]["bearerFormat"], "JWT");
    assert_eq!(schemes["clientBasic"]["scheme"], "basic");
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let server = Server::start().await;
    let (_, document) = served_document(&server).await;
    let mut operations = 0;
    let mut unrouted = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            assert!(
                operation["responses"].is_object(),
                "{method} {path} has no responses"
            );
            operations += 1;
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            // No credentials and no body: whatever the answer, it must come from the endpoint, not
            // from the router's fallbacks.
            let response = server
                .http
                .request(method.clone(), server.url(&concrete(path)))
                .send()
                .await
                .unwrap();
            let (status, body) = status_json(response).await;
            let code = body["code"].as_str().unwrap_or_default();
            if code == "route_not_found" || code == "method_not_allowed" {
                unrouted.push(format!("{method} {path}: {status} {code}"));
            }
        }
    }
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:#?}"
    );
    assert!(operations >= 24, "only {operations} operations documented");
}

#[tokio::test]
async fn undocumented_paths_and_methods_are_not_routed() {
    let server = Server::start().await;
    for (method, path, status, code) in [
        (Method::GET, "/v1/audit/nothing", 404, "route_not_found"),
        (Method::GET, "/v2/agents", 404, "route_not_found"),
        (Method::PUT, "/v1/audit/events", 405, "method_not_allowed"),
        (
            Method::POST,
            "/v1/marketplace/agents",
            405,
            "method_not_allowed",
        ),
    ] {
        let response = server
            .http
            .request(method.clone(), server.url(path))
            .send()
            .await
            .unwrap();
        let (actual, body) = status_json(response).await;
        assert_eq!(
            (actual, body["code"].as_str()),
            (status, Some(code)),
            "{method} {path}"
        );
    }
}
