//! Smaller hardening rules: bounded audiences, reserved management scopes, who may introspect
//! what, capability removal reaching live tokens, strict client assertions, and response headers.

use agentidp_tests::{assert_problem, jwt_parts, status_json, AgentClient, Org, Server};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;
use serde_json::{json, Value};

async fn token_error(server: &Server, agent: &AgentClient, extra: &[(&str, &str)]) -> (u16, Value) {
    status_json(
        server
            .token_request(&agent.client_id, &agent.client_secret, extra)
            .await,
    )
    .await
}

#[tokio::test]
async fn resources_and_audiences_are_bounded() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let agent = server.agent_with_secret(&org, "bot", &["read:docs"]).await;
    let long_resource = format!("https://api.example.com/{}", "a".repeat(3000));
    let long_audience = "b".repeat(3000);
    for extra in [
        vec![("resource", long_resource.as_str())],
        vec![("audience", long_audience.as_str())],
    ] {
        let (status, body) = token_error(&server, &agent, &extra).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_target")),
            "{body}"
        );
    }
    let many: Vec<String> = (0..11)
        .map(|i| format!("https://r{i}.example.com"))
        .collect();
    let extra: Vec<(&str, &str)> = many.iter().map(|r| ("resource", r.as_str())).collect();
    let (status, body) = token_error(&server, &agent, &extra).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target")),
        "{body}"
    );

    // The largest token the bounds allow (every capability at its longest, ten audiences at
    // theirs) is still one that introspection and revocation accept.
    let capabilities: Vec<String> = (0..100)
        .map(|i| format!("{i:03}{}", "s".repeat(125)))
        .collect();
    let capabilities: Vec<&str> = capabilities.iter().map(String::as_str).collect();
    let wide = server.agent_with_secret(&org, "wide", &capabilities).await;
    // 512 characters each: the prefix, 487 letters and a digit.
    let longest = format!("https://api.example.com/{}", "c".repeat(487));
    let resources: Vec<String> = (0..9).map(|i| format!("{longest}{i}")).collect();
    let mut extra: Vec<(&str, &str)> = resources.iter().map(|r| ("resource", r.as_str())).collect();
    let audience = "d".repeat(512);
    extra.push(("audience", audience.as_str()));
    let (status, body) = token_error(&server, &wide, &extra).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let me = (wide.client_id.as_str(), wide.client_secret.as_str());
    assert_eq!(introspect(&server, me, token).await["active"], true);
    let revoke = server
        .http
        .post(server.url("/oauth2/revoke"))
        .basic_auth(me.0, Some(me.1))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 200);
    assert_eq!(
        introspect(&server, me, token).await,
        json!({ "active": false })
    );
}

#[tokio::test]
async fn management_scopes_are_given_to_agents_only_explicitly() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let body = json!({ "name": "sneaky", "agent_type": "bot", "capabilities": ["read:docs", "agents:write"] });
    let response = server.post("/v1/agents", &org.token, body.clone()).await;
    let problem = assert_problem(status_json(response).await, 400, "invalid_field");
    assert_eq!(problem["field"], "capabilities[1]");

    // Allowed explicitly by the admin: accepted, and on record.
    let mut allowed = body.clone();
    allowed["allow_management_scopes"] = json!(true);
    let (status, agent) = status_json(server.post("/v1/agents", &org.token, allowed).await).await;
    assert_eq!(status, 201, "{agent}");
    assert_eq!(agent["capabilities"], json!(["read:docs", "agents:write"]));

    // Adding one later needs the same explicit allowance; keeping one does not.
    let path = format!("/v1/agents/{}", agent["id"].as_str().unwrap());
    let response = server
        .patch(
            &path,
            &org.token,
            json!({ "capabilities": ["agents:write", "audit:read"] }),
        )
        .await;
    assert_problem(status_json(response).await, 400, "invalid_field");
    let response = server
        .patch(
            &path,
            &org.token,
            json!({ "capabilities": ["agents:write", "write:docs"] }),
        )
        .await;
    assert_eq!(response.status(), 200);

    // The organization's own admin credentials are never an agent's business.
    let response = server
        .post(
            "/v1/agents",
            &org.token,
            json!({ "name": "usurper", "agent_type": "bot", "capabilities": ["orgs:write"],
                    "allow_management_scopes": true }),
        )
        .await;
    assert_problem(status_json(response).await, 400, "invalid_field");

    // A delegate cannot hand out management scopes, not even its own.
    let delegate = server
        .agent_with_secret(&org, "delegate", &["agents:read", "agents:write"])
        .await;
    let token = server
        .token(&delegate.client_id, &delegate.client_secret, &[])
        .await;
    let response = server
        .post(
            "/v1/agents",
            &token,
            json!({ "name": "minion", "agent_type": "bot", "capabilities": ["agents:read"],
                    "allow_management_scopes": true }),
        )
        .await;
    assert_problem(
        status_json(response).await,
        403,
        "management_scopes_need_an_admin",
    );
    let response = server
        .post(
            "/v1/agents",
            &token,
            json!({ "name": "minion", "agent_type": "bot", "capabilities": ["read:docs"] }),
        )
        .await;
    assert_eq!(response.status(), 201);
}

async fn introspect(server: &Server, caller: (&str, &str), token: &str) -> Value {
    server.introspect(caller, token).await
}

#[tokio::test]
async fn agents_introspect_their_own_tokens_and_those_meant_for_them() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let alice = server
        .agent_with_secret(&org, "alice", &["read:docs"])
        .await;
    let bob = server.agent_with_secret(&org, "bob", &["read:docs"]).await;
    let as_alice = (alice.client_id.as_str(), alice.client_secret.as_str());
    let as_bob = (bob.client_id.as_str(), bob.client_secret.as_str());
    let as_admin = (org.client_id.as_str(), org.client_secret.as_str());
    let alices = server
        .token(&alice.client_id, &alice.client_secret, &[])
        .await;

    assert_eq!(introspect(&server, as_alice, &alices).await["active"], true);
    assert_eq!(introspect(&server, as_admin, &alices).await["active"], true);
    // Another agent learns nothing about tokens that are neither its own nor meant for it.
    assert_eq!(
        introspect(&server, as_bob, &alices).await,
        json!({ "active": false })
    );
    assert_eq!(
        introspect(&server, as_bob, &org.token).await,
        json!({ "active": false })
    );
    // A token whose audience names bob (by agent id or client id) is bob's to check.
    for audience in [bob.id.as_str(), bob.client_id.as_str()] {
        let for_bob = server
            .token(
                &alice.client_id,
                &alice.client_secret,
                &[("audience", audience)],
            )
            .await;
        assert_eq!(introspect(&server, as_bob, &for_bob).await["active"], true);
    }
}

#[tokio::test]
async fn removing_a_capability_ends_the_tokens_that_carry_it() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let agent = server
        .agent_with_secret(&org, "writer", &["read:docs", "write:docs"])
        .await;
    let me = (agent.client_id.as_str(), agent.client_secret.as_str());
    let token = server
        .token(&agent.client_id, &agent.client_secret, &[])
        .await;
    assert_eq!(jwt_parts(&token).1["scope"], "read:docs write:docs");
    // Adding a capability leaves live tokens alone.
    let path = format!("/v1/agents/{}", agent.id);
    let response = server
        .patch(
            &path,
            &org.token,
            json!({ "capabilities": ["read:docs", "write:docs", "x:y"] }),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(introspect(&server, me, &token).await["active"], true);
    // Removing one ends them.
    let response = server
        .patch(&path, &org.token, json!({ "capabilities": ["read:docs"] }))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        introspect(&server, me, &token).await,
        json!({ "active": false })
    );
    // Revocation of an agent's tokens covers whole seconds (`iat` has no finer grain).
    server.advance_clock(std::time::Duration::from_millis(1100));
    let fresh = server
        .token(&agent.client_id, &agent.client_secret, &[])
        .await;
    assert_eq!(jwt_parts(&fresh).1["scope"], "read:docs");
    assert_eq!(introspect(&server, me, &fresh).await["active"], true);
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

async fn assertion_client(server: &Server, org: &Org, jwk: &Value) -> String {
    let agent = server
        .create_agent(org, json!({ "name": "signer", "agent_type": "bot" }))
        .await;
    let response = server
        .post(
            &format!("/v1/agents/{}/credentials", agent["id"].as_str().unwrap()),
            &org.token,
            json!({ "kind": "private_key_jwt", "public_jwk": jwk }),
        )
        .await;
    let (status, body) = status_json(response).await;
    assert_eq!(status, 201, "{body}");
    body["client_id"].as_str().unwrap().to_owned()
}

async fn token_with_assertion(server: &Server, assertion: &str) -> (u16, Value) {
    let response = server
        .http
        .post(server.url("/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .unwrap();
    status_json(response).await
}

#[tokio::test]
async fn client_assertions_need_a_jti_and_must_not_be_access_tokens() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let (key, jwk) = assertion_key();
    let client_id = assertion_client(&server, &org, &jwk).await;
    let claims = |jti: &str| {
        Claims::create(Duration::from_secs(60))
            .with_issuer(&client_id)
            .with_subject(&client_id)
            .with_audience(server.url("/oauth2/token"))
            .with_jwt_id(jti)
    };
    let (status, body) = token_with_assertion(&server, &key.sign(claims("")).unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    // RFC 8725 §3.11: a JWT explicitly typed as an access token is not a client assertion.
    for typ in ["at+jwt", "application/at+JWT"] {
        let options = HeaderOptions {
            signature_type: Some(typ.into()),
            ..Default::default()
        };
        let typed = key
            .sign_with_options(claims(&format!("jti-{typ}")), &options)
            .unwrap();
        let (status, body) = token_with_assertion(&server, &typed).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{typ}: {body}"
        );
    }
    // The control: the same assertion, untyped, with a jti.
    let (status, body) = token_with_assertion(&server, &key.sign(claims("jti-ok")).unwrap()).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn every_response_says_nosniff_and_oauth_endpoints_send_no_cors() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let http = &server.http;
    let responses = [
        http.get(server.url("/health")).send().await.unwrap(),
        http.get(server.url("/openapi.json")).send().await.unwrap(),
        http.get(server.url("/no/such/route")).send().await.unwrap(),
        http.get(server.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap(),
        server.get("/v1/agents", &org.token).await,
        server.get("/v1/agents", "bad").await,
        server.token_request(&org.client_id, "wrong", &[]).await,
        http.post(server.url("/oauth2/token"))
            .header("origin", "https://evil.example")
            .basic_auth(&org.client_id, Some(&org.client_secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap(),
        http.request(
            agentidp_tests::reqwest::Method::OPTIONS,
            server.url("/oauth2/token"),
        )
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap(),
    ];
    for response in responses {
        let url = response.url().clone();
        assert_eq!(
            response
                .headers()
                .get("x-content-type-options")
                .map(|v| v.to_str().unwrap().to_owned()),
            Some("nosniff".to_owned()),
            "{url}"
        );
        for name in response.headers().keys() {
            assert!(
                !name.as_str().starts_with("access-control-"),
                "{url} sends {name}"
            );
        }
    }
}

async fn created(server: &Server, path: &str, org: &Org, body: Value) -> (u16, Value) {
    status_json(server.post(path, &org.token, body).await).await
}

#[tokio::test]
async fn credentials_trust_policies_and_admin_credentials_have_tier_caps() {
    let issuer = agentidp_tests::oidc::Issuer::start().await;
    let federation = issuer.server_env();
    let env: Vec<(&str, &str)> = federation.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_with(&env).await;
    let org = server.bootstrap("acme").await;

    // Credentials per agent: ten active on the free tier, the first one included.
    let agent = server.agent_with_secret(&org, "keys", &[]).await;
    let path = format!("/v1/agents/{}/credentials", agent.id);
    for _ in 1..10 {
        let (status, body) = created(&server, &path, &org, json!({})).await;
        assert_eq!(status, 201, "{body}");
    }
    let problem = assert_problem(
        created(&server, &path, &org, json!({})).await,
        403,
        "credential_limit_exceeded",
    );
    assert_eq!(
        (problem["limit"].clone(), problem["tier"].clone()),
        (json!(10), json!("free"))
    );
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("credentials per agent"));
    // Revoking one makes room.
    let revoke = format!("{path}/{}", agent.credential_id);
    assert_eq!(server.delete(&revoke, &org.token).await.status(), 200);
    assert_eq!(created(&server, &path, &org, json!({})).await.0, 201);

    // Trust policies per organization: twenty-five.
    for i in 0..25 {
        let body = json!({ "provider": "github", "repository": format!("octo/app-{i}"),
                          "allow_registration": true });
        let (status, body) = created(&server, "/v1/oidc/trust-policies", &org, body).await;
        assert_eq!(status, 201, "{body}");
    }
    let body = json!({ "provider": "github", "repository": "octo/one-more",
                      "allow_registration": true });
    let problem = assert_problem(
        created(&server, "/v1/oidc/trust-policies", &org, body).await,
        403,
        "trust_policy_limit_exceeded",
    );
    assert_eq!(problem["limit"], 25);

    // Admin credentials: ten active, the bootstrap's included.
    for _ in 1..10 {
        let (status, body) = created(&server, "/v1/orgs/credentials", &org, json!({})).await;
        assert_eq!(status, 201, "{body}");
    }
    let problem = assert_problem(
        created(&server, "/v1/orgs/credentials", &org, json!({})).await,
        403,
        "admin_credential_limit_exceeded",
    );
    assert_eq!(problem["limit"], 10);
}

#[tokio::test]
async fn a_key_for_encryption_is_not_a_signing_credential() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let agent = server
        .create_agent(&org, json!({ "name": "signer", "agent_type": "bot" }))
        .await;
    let path = format!("/v1/agents/{}/credentials", agent["id"].as_str().unwrap());
    let (_, jwk) = assertion_key();
    let with = |member: &str, value: Value| {
        let mut jwk = jwk.clone();
        jwk[member] = value;
        json!({ "kind": "private_key_jwt", "public_jwk": jwk })
    };
    for body in [
        with("use", json!("enc")),
        with("use", json!(7)),
        with("key_ops", json!(["encrypt", "wrapKey"])),
        with("key_ops", json!(["sign"])),
        with("key_ops", json!("verify")),
    ] {
        let problem = assert_problem(
            status_json(server.post(&path, &org.token, body.clone()).await).await,
            400,
            "invalid_field",
        );
        assert_eq!(problem["field"], "public_jwk", "{body}");
    }
    for body in [
        with("use", json!("sig")),
        with("key_ops", json!(["verify"])),
    ] {
        let (status, created) = status_json(server.post(&path, &org.token, body).await).await;
        assert_eq!(status, 201, "{created}");
    }
}

#[tokio::test]
async fn the_public_health_check_does_not_say_when_limits_fail_open() {
    let server = Server::start().await;
    let (status, health) = status_json(
        server
            .http
            .get(server.url("/health/detailed"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["checks"]["database"]["status"], "ok");
    assert!(health.get("rate_limits").is_none(), "{health}");
    assert!(!health.to_string().contains("fail_open"), "{health}");
}
