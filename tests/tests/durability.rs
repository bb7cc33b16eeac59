//! What the default (embedded) deployment must remember across a restart, clean or `kill -9`:
//! revoked tokens, revoked subjects (suspension, decommission), used client assertions, usage.

use agentidp_tests::{status_json, AgentClient, Org, Server};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;
use serde_json::{json, Value};

const ISSUER: &str = "http://agentidp.test";
/// A fixed issuer, so tokens stay valid when the restarted server listens on another port.
const ENV: [(&str, &str); 1] = [("AGENTIDP_ISSUER", ISSUER)];
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[derive(Clone, Copy, Debug)]
enum Stop {
    /// SIGTERM: the server shuts down as it chooses.
    Clean,
    /// SIGKILL: nothing runs after the signal; only what was durable before survives.
    Crash,
}

/// Stops `server` the given way and starts a new one on the same data directory. The old handle
/// must outlive the new server: dropping it removes the directory.
async fn restart(server: &mut Server, how: Stop) -> Server {
    match how {
        Stop::Clean => assert!(server.stop().success(), "SIGTERM should end the server"),
        Stop::Crash => server.kill(),
    }
    Server::start_in(server.data_dir.clone(), &ENV).await
}

async fn form(server: &Server, path: &str, client: &AgentClient, token: &str) -> (u16, Value) {
    status_json(
        server
            .http
            .post(server.url(path))
            .basic_auth(&client.client_id, Some(&client.client_secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn is_active(server: &Server, client: &AgentClient, token: &str) -> bool {
    let (status, body) = form(server, "/oauth2/introspect", client, token).await;
    assert_eq!(status, 200, "{body}");
    body["active"].as_bool().unwrap()
}

/// The status of an authenticated `/v1/*` call with `token`.
async fn api_status(server: &Server, token: &str) -> u16 {
    server.get("/v1/agents", token).await.status().as_u16()
}

fn assertion_key() -> (ES256KeyPair, Value) {
    let key = ES256KeyPair::generate();
    let point = key.public_key().public_key().to_bytes_uncompressed();
    let jwk = json!({
        "kty": "EC", "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    });
    (key, jwk)
}

/// An agent with a registered public key; returns its client id and the signing key.
async fn key_client(server: &Server, org: &Org, name: &str) -> (String, ES256KeyPair) {
    let (status, agent) = status_json(
        server
            .post(
                "/v1/agents",
                &org.token,
                json!({ "name": name, "agent_type": "worker", "capabilities": ["read:docs"] }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 201, "{agent}");
    let (key, jwk) = assertion_key();
    let (status, credential) = status_json(
        server
            .post(
                &format!("/v1/agents/{}/credentials", agent["id"].as_str().unwrap()),
                &org.token,
                json!({ "kind": "private_key_jwt", "public_jwk": jwk }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 201, "{credential}");
    (credential["client_id"].as_str().unwrap().to_owned(), key)
}

fn assertion(key: &ES256KeyPair, client_id: &str, jti: &str) -> String {
    let claims = Claims::create(Duration::from_secs(120))
        .with_issuer(client_id)
        .with_subject(client_id)
        .with_audience(ISSUER)
        .with_jwt_id(jti);
    key.sign(claims).unwrap()
}

async fn token_with_assertion(server: &Server, client_assertion: &str) -> u16 {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", client_assertion),
    ];
    let response = server
        .http
        .post(server.url("/oauth2/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

async fn revocations_and_replay_guards_survive(how: Stop) {
    let mut server = Server::start_with(&ENV).await;
    let org = server.bootstrap("durable-revocation").await;
    let revoker = server
        .agent_with_secret(&org, "revoker", &["agents:read"])
        .await;
    let revoked = server
        .token(&revoker.client_id, &revoker.client_secret, &[])
        .await;
    let kept = server
        .token(&revoker.client_id, &revoker.client_secret, &[])
        .await;
    let suspended = server
        .agent_with_secret(&org, "suspended", &["agents:read"])
        .await;
    let suspended_token = server
        .token(&suspended.client_id, &suspended.client_secret, &[])
        .await;
    let retired = server
        .agent_with_secret(&org, "retired", &["agents:read"])
        .await;
    let retired_token = server
        .token(&retired.client_id, &retired.client_secret, &[])
        .await;
    let (key_client_id, key) = key_client(&server, &org, "signer").await;
    let used = assertion(&key, &key_client_id, &format!("used-{how:?}"));

    // Revoke one token, suspend one agent, decommission another, use one assertion.
    assert_eq!(
        form(&server, "/oauth2/revoke", &revoker, &revoked).await.0,
        200
    );
    let path = format!("/v1/agents/{}", suspended.id);
    let response = server
        .patch(&path, &org.token, json!({ "status": "suspended" }))
        .await;
    assert_eq!(response.status(), 200);
    let response = server
        .delete(&format!("/v1/agents/{}", retired.id), &org.token)
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(token_with_assertion(&server, &used).await, 200);
    // Before the restart, all of it holds.
    assert!(!is_active(&server, &revoker, &revoked).await);
    assert_eq!(api_status(&server, &revoked).await, 401);
    assert_eq!(api_status(&server, &suspended_token).await, 401);
    assert_eq!(api_status(&server, &retired_token).await, 401);
    assert_eq!(token_with_assertion(&server, &used).await, 401);

    let server_after = restart(&mut server, how).await;
    let s = &server_after;
    // Every guarantee is checked, so a failure lists all that were lost, not just the first.
    let mut lost = Vec::new();
    if is_active(s, &revoker, &revoked).await {
        lost.push("a revoked token introspects as active");
    }
    if api_status(s, &revoked).await != 401 {
        lost.push("a revoked token is accepted by /v1");
    }
    if api_status(s, &suspended_token).await != 401 {
        lost.push("a suspended agent's token is accepted");
    }
    if api_status(s, &retired_token).await != 401 {
        lost.push("a decommissioned agent's token is accepted");
    }
    if token_with_assertion(s, &used).await != 401 {
        lost.push("a used client assertion is accepted again");
    }
    assert!(lost.is_empty(), "after a {how:?} restart: {lost:?}");
    // What was never revoked still works: the restart does not simply refuse everything.
    assert!(is_active(s, &revoker, &kept).await);
    assert_eq!(api_status(s, &kept).await, 200);
    let fresh = assertion(&key, &key_client_id, &format!("fresh-{how:?}"));
    assert_eq!(token_with_assertion(s, &fresh).await, 200);
}

#[tokio::test]
async fn revocations_and_replay_guards_survive_a_clean_restart() {
    revocations_and_replay_guards_survive(Stop::Clean).await;
}

#[tokio::test]
async fn revocations_and_replay_guards_survive_kill_9() {
    revocations_and_replay_guards_survive(Stop::Crash).await;
}

/// Twenty simultaneous uses of one assertion: exactly one gets a token, through the cache and the
/// table alike.
#[tokio::test]
async fn a_client_assertion_is_single_use_under_concurrency() {
    let server = Server::start_with(&ENV).await;
    let org = server.bootstrap("replay-race").await;
    let (client_id, key) = key_client(&server, &org, "racer").await;
    let shared = assertion(&key, &client_id, "raced");
    let mut attempts = Vec::new();
    for _ in 0..20 {
        let http = server.http.clone();
        let url = server.url("/oauth2/token");
        let shared = shared.clone();
        attempts.push(tokio::spawn(async move {
            let form = [
                ("grant_type", "client_credentials"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", shared.as_str()),
            ];
            http.post(url)
                .form(&form)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 401),
        "{statuses:?}"
    );
}

/// Usage counted but never read before a restart is not lost, and counting continues from it.
#[tokio::test]
async fn usage_counted_before_a_restart_is_kept_and_continued() {
    let mut server = Server::start_with(&ENV).await;
    let org = server.bootstrap("metered").await;
    for _ in 0..5 {
        assert_eq!(server.get("/v1/agents", &org.token).await.status(), 200);
    }
    let server_after = restart(&mut server, Stop::Clean).await;
    for _ in 0..2 {
        assert_eq!(
            server_after.get("/v1/agents", &org.token).await.status(),
            200
        );
    }
    let (status, usage) = status_json(server_after.get("/v1/usage", &org.token).await).await;
    assert_eq!(status, 200, "{usage}");
    // Five calls, two more, and this read; one token (the bootstrap's admin token).
    assert_eq!(
        (usage["api_calls"].as_i64(), usage["tokens_issued"].as_i64()),
        (Some(8), Some(1)),
        "{usage}"
    );
}
