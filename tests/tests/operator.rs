//! The operator API: the deployment's own credential opens `/v1/operator/*` and nothing else, no
//! tenant's token opens it, signing keys rotate through it with the old key still published, and
//! an instance refuses a schema newer than it knows.

use agentidp_shared::http::routes::{Access, ROUTES};
use agentidp_tests::{
    assert_problem, concrete, jwt_parts, open_db, server_binary, status_json, Server,
};
use serde_json::{json, Value};

/// The operator credential natively; an edge deployment's comes from the edge stage.
const NATIVE_OPERATOR_TOKEN: &str = "operator-credential-for-the-tests-0123456789abcdef";
/// The scheduler's dispatch token natively; an edge deployment's comes from the edge stage.
const NATIVE_DISPATCH_TOKEN: &str = "dispatch-credential-for-the-tests-0123456789abcdef";
const ENV: [(&str, &str); 2] = [
    ("AGENTIDP_OPERATOR_TOKEN", NATIVE_OPERATOR_TOKEN),
    ("AGENTIDP_WEBHOOK_DISPATCH_TOKEN", NATIVE_DISPATCH_TOKEN),
];

fn operator_token() -> String {
    std::env::var("AGENTIDP_TEST_OPERATOR_TOKEN").unwrap_or_else(|_| NATIVE_OPERATOR_TOKEN.into())
}

fn dispatch_token() -> String {
    std::env::var("AGENTIDP_TEST_DISPATCH_TOKEN").unwrap_or_else(|_| NATIVE_DISPATCH_TOKEN.into())
}

async fn call(server: &Server, method: &str, path: &str, token: &str) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = server.http.request(method.clone(), server.url(path));
    request = request.bearer_auth(token);
    if method != reqwest::Method::GET && method != reqwest::Method::DELETE {
        request = request.json(&json!({}));
    }
    status_json(request.send().await.unwrap()).await
}

#[tokio::test]
async fn the_operator_credential_opens_no_tenant_route() {
    let server = Server::from_env_with(&ENV).await;
    for route in ROUTES.iter().filter(|r| r.access == Access::Bearer) {
        let (status, body) = call(
            &server,
            route.method.as_str(),
            &concrete(route),
            &operator_token(),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("invalid_token")),
            "{} {}: {body}",
            route.method.as_str(),
            route.path
        );
    }
}

#[tokio::test]
async fn no_tenant_credential_opens_an_operator_route() {
    let server = Server::from_env_with(&ENV).await;
    let org = server.bootstrap("tenant").await;
    let operator_routes: Vec<_> = ROUTES
        .iter()
        .filter(|r| r.access == Access::Operator)
        .collect();
    assert!(operator_routes.len() >= 3);
    for route in operator_routes {
        for token in [org.token.as_str(), org.client_secret.as_str(), ""] {
            let (status, body) = call(&server, route.method.as_str(), route.path, token).await;
            assert_problem((status, body), 401, "operator_credential_required");
        }
    }
}

#[tokio::test]
async fn without_an_operator_credential_the_operator_api_is_off() {
    let server = Server::from_env().await;
    if !server.is_native() {
        return; // An external deployment chose its own configuration.
    }
    let (status, body) = call(&server, "GET", "/v1/operator/health", &operator_token()).await;
    assert_problem((status, body), 404, "operator_api_off");
}

#[tokio::test]
async fn signing_keys_rotate_through_the_api_and_the_old_key_stays_published() {
    let server = Server::from_env_with(&ENV).await;
    let org = server.bootstrap("rotating").await;
    let (before, _) = jwt_parts(&org.token);
    let old_kid = before["kid"].as_str().unwrap().to_owned();

    let (status, rotated) = call(
        &server,
        "POST",
        "/v1/operator/keys/rotate",
        &operator_token(),
    )
    .await;
    assert_eq!(status, 201, "{rotated}");
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(rotated["previous_kid"], old_kid.as_str());

    // Both keys are published and new tokens are signed by the new key: at once by the instance
    // that rotated, by the others within their key cache's refresh (30 s; an edge deployment
    // answers from several instances). The old key's token keeps working throughout.
    let response = server.get("/v1/agents", &org.token).await;
    assert_eq!(response.status(), 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    let fresh = loop {
        let jwks = server.jwks().await;
        let published: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|k| k["kid"].as_str())
            .collect();
        assert!(published.contains(&old_kid.as_str()), "{jwks}");
        let fresh = server.token(&org.client_id, &org.client_secret, &[]).await;
        let kid = jwt_parts(&fresh).0["kid"].as_str().unwrap().to_owned();
        if kid == new_kid && published.contains(&new_kid.as_str()) {
            break fresh;
        }
        assert!(
            !server.is_native() && std::time::Instant::now() < deadline,
            "still {kid}, publishing {published:?}"
        );
        assert!(kid == old_kid || kid == new_kid, "signed by {kid}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    assert_eq!(server.get("/v1/agents", &fresh).await.status(), 200);

    let (status, body) = server
        .http
        .post(server.url("/v1/operator/keys/rotate"))
        .bearer_auth(operator_token())
        .json(&json!({ "alg": "RS1" }))
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(status, 400, "{:?}", body.text().await);
}

#[tokio::test]
async fn migration_status_and_detailed_health_are_the_operators() {
    let server = Server::from_env_with(&ENV).await;
    let (status, migrations) =
        call(&server, "GET", "/v1/operator/migrations", &operator_token()).await;
    assert_eq!(status, 200, "{migrations}");
    assert_eq!(migrations["binary"], migrations["database"], "{migrations}");
    assert_eq!(migrations["pending"], json!([]));
    let (status, health) = call(&server, "GET", "/v1/operator/health", &operator_token()).await;
    assert_eq!(status, 200, "{health}");
    for check in ["database", "key_value", "outbound_http", "signing_key"] {
        assert_eq!(health["checks"][check]["status"], "ok", "{check}: {health}");
    }
    assert!(
        health["checks"]["signing_key"]["age_seconds"].is_i64(),
        "{health}"
    );
}

#[tokio::test]
async fn an_instance_refuses_a_schema_newer_than_it_knows() {
    let server = Server::from_env().await;
    if !server.is_native() {
        return;
    }
    let mut server = server;
    server.stop();
    let db = open_db(&server.db_path()).await;
    db.execute(
        "INSERT INTO schema_migrations (version, applied_at) VALUES ('9999_from_the_future', 0)",
        (),
    )
    .await
    .unwrap();
    drop(db);
    let output = std::process::Command::new(server_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(server.db_path().parent().unwrap())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let binary = agentidp_shared::store::migrations::binary_version();
    assert!(
        stderr.contains("9999_from_the_future") && stderr.contains(binary),
        "the refusal names both versions: {stderr}"
    );
}

/// Spin has no Cron Trigger: the scheduler's dispatch is what checkpoints the audit logs and applies
/// retention there, as the Cron Trigger does on Workers and a timer natively. An organization's own
/// dispatch delivers its webhooks only.
#[tokio::test]
async fn the_schedulers_dispatch_runs_the_audit_upkeep() {
    let server = Server::from_env_with(&ENV).await;
    let org = server.bootstrap("upkeep").await;
    let (status, own) = call(&server, "POST", "/v1/webhooks/dispatch", &org.token).await;
    assert_eq!(status, 200, "{own}");
    assert!(own.get("audit").is_none(), "{own}");

    let (status, report) = call(&server, "POST", "/v1/webhooks/dispatch", &dispatch_token()).await;
    assert_eq!(status, 200, "{report}");
    // This organization's log grew with its bootstrap and nothing else had checkpointed it.
    assert!(
        report["audit"]["checkpoints"].as_u64().unwrap() >= 1,
        "{report}"
    );
    assert_eq!(report["audit"]["removed"], 0, "{report}");
    let (status, again) = call(&server, "POST", "/v1/webhooks/dispatch", &dispatch_token()).await;
    assert_eq!(status, 200, "{again}");
    assert!(again["audit"]["checkpoints"].is_u64(), "{again}");
}
