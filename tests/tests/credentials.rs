//! Agent credentials end to end: secrets shown once, metadata-only lists, rotation with and without
//! a grace period, revocation, and registered public keys for `private_key_jwt`.

use std::time::Duration;

use agentidp_tests::{assert_problem, status_json, AgentClient, Org, Server};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;
use serde_json::{json, Value};

fn credentials_path(agent: &AgentClient) -> String {
    format!("/v1/agents/{}/credentials", agent.id)
}

async fn list_credentials(server: &Server, org: &Org, agent: &AgentClient) -> Vec<Value> {
    let (status, page) = status_json(server.get(&credentials_path(agent), &org.token).await).await;
    assert_eq!(status, 200, "{page}");
    page["data"].as_array().unwrap().clone()
}

async fn rotate(server: &Server, org: &Org, agent: &AgentClient, body: Value) -> (u16, Value) {
    let path = format!("{}/{}/rotate", credentials_path(agent), agent.credential_id);
    status_json(server.post(&path, &org.token, body).await).await
}

/// Asserts the token endpoint refuses these client credentials as RFC 6749 §5.2 requires.
async fn assert_refused(server: &Server, client_id: &str, secret: &str) {
    let (status, body) = status_json(server.token_request(client_id, secret, &[]).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
}

fn public_jwk() -> Value {
    let key = ES256KeyPair::generate();
    let point = key.public_key().public_key().to_bytes_uncompressed();
    json!({
        "kty": "EC", "crv": "P-256", "alg": "ES256", "kid": "k1",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    })
}

#[tokio::test]
async fn a_secret_is_shown_once_and_lists_show_only_metadata() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let agent = server.agent_with_secret(&org, "bot", &["read:docs"]).await;

    let response = server
        .post(
            &credentials_path(&agent),
            &org.token,
            json!({ "kind": "client_secret" }),
        )
        .await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (status, second) = status_json(response).await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["agent_id"], agent.id.as_str());
    assert_eq!(second["kind"], "client_secret");
    assert_eq!(second["status"], "active");
    let secret = second["client_secret"].as_str().unwrap();
    assert!(secret.len() >= 43, "256 bits of randomness: {secret}");
    assert_ne!(second["client_id"], agent.client_id.as_str());
    // Both credentials authenticate the same agent.
    server
        .token(&agent.client_id, &agent.client_secret, &[])
        .await;
    let token = server
        .token(second["client_id"].as_str().unwrap(), secret, &[])
        .await;
    let (_, claims) = agentidp_tests::jwt_parts(&token);
    assert_eq!(claims["sub"], agent.id.as_str());

    let listed = list_credentials(&server, &org, &agent).await;
    assert_eq!(listed.len(), 2);
    let text = Value::Array(listed.clone()).to_string();
    for forbidden in [
        secret,
        agent.client_secret.as_str(),
        "secret_hash",
        "\"client_secret\":",
    ] {
        assert!(
            !text.contains(forbidden),
            "the list leaks {forbidden}: {text}"
        );
    }
    assert_eq!(listed[0]["id"], agent.credential_id.as_str());
    for field in ["rotated_at", "revoked_at", "previous_secret_expires_at"] {
        assert!(listed[0][field].is_null(), "{field}");
    }
    assert!(listed[0].get("last_used_at").is_some());

    // The trail records credentials by id and client id, never by secret.
    let (_, events) = status_json(
        server
            .get(
                &format!("/v1/audit/events?agent_id={}&limit=200", agent.id),
                &org.token,
            )
            .await,
    )
    .await;
    let trail = events.to_string();
    assert!(trail.contains("credential.created"), "{trail}");
    assert!(!trail.contains(secret) && !trail.contains(&agent.client_secret));
}

#[tokio::test]
async fn rotation_without_grace_retires_the_old_secret_at_once() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let agent = server.agent_with_secret(&org, "bot", &[]).await;

    // No body at all means the defaults.
    let path = format!(
        "{}/{}/rotate",
        credentials_path(&agent),
        agent.credential_id
    );
    let response = server
        .http
        .post(server.url(&path))
        .bearer_auth(&org.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (status, rotated) = status_json(response).await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["client_id"], agent.client_id.as_str());
    assert!(rotated["rotated_at"].is_string());
    assert!(rotated["previous_secret_expires_at"].is_null());
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert_ne!(new_secret, agent.client_secret);

    assert_refused(&server, &agent.client_id, &agent.client_secret).await;
    server.token(&agent.client_id, new_secret, &[]).await;

    // A second rotation retires the first new secret too.
    let (status, again) = rotate(&server, &org, &agent, json!({ "grace_period_seconds": 0 })).await;
    assert_eq!(status, 200, "{again}");
    assert_refused(&server, &agent.client_id, new_secret).await;
    server
        .token(
            &agent.client_id,
            again["client_secret"].as_str().unwrap(),
            &[],
        )
        .await;
}

#[tokio::test]
async fn rotation_with_grace_keeps_the_old_secret_until_the_grace_ends() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let agent = server.agent_with_secret(&org, "bot", &[]).await;

    let (status, rotated) =
        rotate(&server, &org, &agent, json!({ "grace_period_seconds": 2 })).await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert!(rotated["previous_secret_expires_at"].is_string());
    let listed = list_credentials(&server, &org, &agent).await;
    assert_eq!(
        listed[0]["previous_secret_expires_at"],
        rotated["previous_secret_expires_at"]
    );

    // During the grace period both secrets work.
    server
        .token(&agent.client_id, &agent.client_secret, &[])
        .await;
    server.token(&agent.client_id, new_secret, &[]).await;

    server.advance_clock(Duration::from_millis(2300));
    assert_refused(&server, &agent.client_id, &agent.client_secret).await;
    server.token(&agent.client_id, new_secret, &[]).await;

    for bad in [
        json!({ "grace_period_seconds": -1 }),
        json!({ "grace_period_seconds": 604_801 }),
        json!({ "grace_period_seconds": "1h" }),
        json!({ "grace": 5 }),
    ] {
        let (status, body) = rotate(&server, &org, &agent, bad.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid_field")),
            "{bad}: {body}"
        );
    }
    let (status, _) = rotate(
        &server,
        &org,
        &agent,
        json!({ "grace_period_seconds": 604_800 }),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_revoked_credential_gets_no_token_and_its_agents_tokens_die() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let agent = server
        .agent_with_secret(&org, "bot", &["agents:read"])
        .await;
    let token = server
        .token(&agent.client_id, &agent.client_secret, &[])
        .await;
    assert_eq!(server.get("/v1/agents", &token).await.status(), 200);

    let path = format!("{}/{}", credentials_path(&agent), agent.credential_id);
    let (status, revoked) = status_json(server.delete(&path, &org.token).await).await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["status"], "revoked");
    assert!(revoked["revoked_at"].is_string());
    assert!(revoked.get("client_secret").is_none());

    assert_refused(&server, &agent.client_id, &agent.client_secret).await;
    assert_problem(
        status_json(server.get("/v1/agents", &token).await).await,
        401,
        "invalid_token",
    );
    // Revoking again changes nothing; a revoked secret cannot be rotated back to life.
    let (status, again) = status_json(server.delete(&path, &org.token).await).await;
    assert_eq!(
        (status, again["revoked_at"].clone()),
        (200, revoked["revoked_at"].clone())
    );
    assert_problem(
        rotate(&server, &org, &agent, json!({})).await,
        409,
        "credential_revoked",
    );
    assert_refused(&server, &agent.client_id, &agent.client_secret).await;

    // The agent itself is still active and can be given a new credential.
    let (status, fresh) = status_json(
        server
            .post(&credentials_path(&agent), &org.token, json!({}))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{fresh}");
    // The revocation covered every token issued up to its second.
    server.advance_clock(Duration::from_millis(1100));
    let token = server
        .token(
            fresh["client_id"].as_str().unwrap(),
            fresh["client_secret"].as_str().unwrap(),
            &[],
        )
        .await;
    assert_eq!(server.get("/v1/agents", &token).await.status(), 200);

    let (_, events) = status_json(
        server
            .get(
                &format!(
                    "/v1/audit/events?action=credential.revoked&agent_id={}",
                    agent.id
                ),
                &org.token,
            )
            .await,
    )
    .await;
    let events = events["data"].as_array().unwrap();
    assert_eq!(events.len(), 1, "one revocation, one event: {events:?}");
    assert_eq!(events[0]["details"]["client_id"], agent.client_id.as_str());
    assert_eq!(events[0]["details"]["kind"], "client_secret");
}

#[tokio::test]
async fn public_keys_are_registered_for_private_key_jwt() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let agent = server.agent_with_secret(&org, "signer", &[]).await;
    let jwk = public_jwk();

    let (status, created) = status_json(
        server
            .post(
                &credentials_path(&agent),
                &org.token,
                json!({ "kind": "private_key_jwt", "public_jwk": jwk }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["kind"], "private_key_jwt");
    assert!(created.get("client_secret").is_none());
    assert_eq!(created["public_jwk"], jwk);

    let listed = list_credentials(&server, &org, &agent).await;
    let registered = listed.iter().find(|c| c["id"] == created["id"]).unwrap();
    assert_eq!(registered["public_jwk"], jwk);
    assert!(listed
        .iter()
        .find(|c| c["kind"] == "client_secret")
        .unwrap()
        .get("public_jwk")
        .is_none());

    let path = format!(
        "{}/{}/rotate",
        credentials_path(&agent),
        created["id"].as_str().unwrap()
    );
    assert_problem(
        status_json(server.post(&path, &org.token, json!({})).await).await,
        409,
        "not_rotatable",
    );

    let mut private = jwk.clone();
    private["d"] = json!(URL_SAFE_NO_PAD.encode([7u8; 32]));
    let mut off_curve = jwk.clone();
    off_curve["x"] = json!(URL_SAFE_NO_PAD.encode([1u8; 32]));
    let mut wrong_alg = jwk.clone();
    wrong_alg["alg"] = json!("RS256");
    let rsa = json!({ "kty": "RSA", "n": "AQAB", "e": "AQAB" });
    for (body, field) in [
        (
            json!({ "kind": "private_key_jwt", "public_jwk": private }),
            "public_jwk",
        ),
        (
            json!({ "kind": "private_key_jwt", "public_jwk": off_curve }),
            "public_jwk",
        ),
        (
            json!({ "kind": "private_key_jwt", "public_jwk": wrong_alg }),
            "public_jwk",
        ),
        (
            json!({ "kind": "private_key_jwt", "public_jwk": rsa }),
            "public_jwk",
        ),
        (
            json!({ "kind": "private_key_jwt", "public_jwk": "key" }),
            "public_jwk",
        ),
        (json!({ "kind": "private_key_jwt" }), "public_jwk"),
        (
            json!({ "kind": "client_secret", "public_jwk": jwk }),
            "public_jwk",
        ),
        (json!({ "kind": "password" }), "kind"),
        (json!({ "client_secret": "mine" }), "client_secret"),
    ] {
        let response = server
            .post(&credentials_path(&agent), &org.token, body.clone())
            .await;
        let problem = assert_problem(status_json(response).await, 400, "invalid_field");
        assert!(
            problem["field"].as_str().unwrap().starts_with(field)
                || problem["detail"].as_str().unwrap().contains(field),
            "{body}: {problem}"
        );
    }
    assert_eq!(list_credentials(&server, &org, &agent).await.len(), 2);
}

#[tokio::test]
async fn credential_lists_paginate() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let agent = server.agent_with_secret(&org, "bot", &[]).await;
    for _ in 0..4 {
        let response = server
            .post(&credentials_path(&agent), &org.token, json!({}))
            .await;
        assert_eq!(response.status(), 201);
    }
    let mut seen = Vec::new();
    let mut path = format!("{}?limit=2", credentials_path(&agent));
    loop {
        let (status, page) = status_json(server.get(&path, &org.token).await).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].clone()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("{}?limit=2&cursor={cursor}", credentials_path(&agent)),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[0], agent.credential_id.as_str());
    let unique: std::collections::HashSet<String> = seen.iter().map(Value::to_string).collect();
    assert_eq!(unique.len(), 5);
}
