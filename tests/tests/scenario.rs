//! A user's whole journey as one scenario, run unchanged against every deployment: the native server
//! by default, or whatever `AGENTIDP_BASE_URL` points at (the five Workers in workerd, or the five
//! Spin components in wasmtime, each behind the local router). Deployments must allow loopback
//! webhook receivers (`AGENTIDP_DEV_WEBHOOKS_ALLOW_LOOPBACK=on`); `AGENTIDP_SCHEDULED_URL` names
//! the Workers scheduled entry point (miniflare's `/cdn-cgi/handler/scheduled`) when there
//! is one to run the dispatcher through.

use agentidp_shared::http::routes::{Access, ROUTES};
use agentidp_tests::webhooks::{assert_all_verified, deliveries, dispatch, subscribe, Receiver};
use agentidp_tests::{concrete, jwt_parts, status_json, Server};
use serde_json::{json, Value};

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{nanos}")
}

#[tokio::test]
async fn bootstrap_to_revocation() {
    let server = Server::from_env().await;

    // Discovery and keys.
    let metadata: Value = server
        .http
        .get(server.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(metadata["token_endpoint"]
        .as_str()
        .unwrap()
        .ends_with("/oauth2/token"));
    let jwks = server.jwks().await;
    assert!(!jwks["keys"].as_array().unwrap().is_empty());

    // Organization, agent, credential, token.
    let org = server.bootstrap(&unique("scenario")).await;
    let agent = server
        .agent_with_secret(&org, &unique("crawler"), &["read:docs", "agents:read"])
        .await;
    let token = server
        .token(
            &agent.client_id,
            &agent.client_secret,
            &[("scope", "read:docs agents:read")],
        )
        .await;
    let (header, claims) = jwt_parts(&token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["sub"], agent.id);
    assert_eq!(claims["org_id"], org.id);
    assert!(jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["kid"] == header["kid"]));

    // Introspection sees it; the management API accepts it.
    let introspect = |token: String| {
        let server = &server;
        let (id, secret) = (agent.client_id.clone(), agent.client_secret.clone());
        async move {
            let response = server
                .http
                .post(server.url("/oauth2/introspect"))
                .basic_auth(id, Some(secret))
                .form(&[("token", token)])
                .send()
                .await
                .unwrap();
            status_json(response).await
        }
    };
    let (status, body) = introspect(token.clone()).await;
    assert_eq!(
        (status, body["active"].clone()),
        (200, json!(true)),
        "{body}"
    );
    let (status, body) = status_json(
        server
            .get(&format!("/v1/agents/{}", agent.id), &token)
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], agent.id);

    // The organization's rate limit counts every call through the shared store, one at a time.
    let remaining = |response: &agentidp_tests::reqwest::Response| -> i64 {
        let header = |name: &str| {
            response.headers()[name]
                .to_str()
                .unwrap()
                .parse::<i64>()
                .unwrap()
        };
        assert!(header("ratelimit-limit") > 0);
        assert!(header("ratelimit-reset") >= 0);
        header("ratelimit-remaining")
    };
    let first = remaining(&server.get("/v1/agents", &org.token).await);
    let second = remaining(&server.get("/v1/agents", &org.token).await);
    assert_eq!(second, first - 1);

    // Revocation takes effect everywhere.
    let response = server
        .http
        .post(server.url("/oauth2/revoke"))
        .basic_auth(&agent.client_id, Some(&agent.client_secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        introspect(token.clone()).await.1,
        json!({ "active": false })
    );
    let (status, body) = status_json(server.get("/v1/agents", &token).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_token"))
    );

    // The audit trail recorded it all and its chain verifies.
    let (status, events) =
        status_json(server.get("/v1/audit/events?limit=200", &org.token).await).await;
    assert_eq!(status, 200, "{events}");
    let actions: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "org.created",
        "agent.created",
        "credential.created",
        "token.issued",
        "token.revoked",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
    let (status, verdict) = status_json(server.get("/v1/audit/verify", &org.token).await).await;
    assert_eq!(
        (status, verdict["valid"].clone()),
        (200, json!(true)),
        "{verdict}"
    );

    // The public marketplace answers without credentials.
    let (status, listing) = status_json(
        server
            .http
            .get(server.url("/v1/marketplace/agents"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{listing}");
    assert!(listing["data"].is_array());

    // Usage is metered through the shared store and readable wherever the API runs.
    let (status, usage) = status_json(server.get("/v1/usage", &org.token).await).await;
    assert_eq!(status, 200, "{usage}");
    assert_eq!(usage["org_id"], org.id);
    assert!(usage["tokens_issued"].as_i64().unwrap() >= 2, "{usage}");
    assert!(usage["api_calls"].as_i64().unwrap() >= 3, "{usage}");
    assert_eq!(usage["agents"]["count"], 1);

    // Last, because it uses up the organization's allowance: where the limit is small enough to
    // exhaust (the edge runs set one), the call after the N-th is refused, with the headers.
    let response = server.get("/v1/agents", &org.token).await;
    let remaining = remaining(&response);
    if remaining <= 200 {
        for _ in 0..remaining {
            assert_eq!(server.get("/v1/agents", &org.token).await.status(), 200);
        }
        let refused = server.get("/v1/agents", &org.token).await;
        assert_eq!(refused.status(), 429);
        assert_eq!(refused.headers()["ratelimit-remaining"], "0");
        assert!(
            refused.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                > 0
        );
        let (_, problem) = status_json(refused).await;
        assert_eq!(problem["code"], "rate_limited");
    }
}

/// Every route of the route table is reachable in this deployment and answers the way its access
/// level promises when called without credentials.
/// An organization's Cedar policy narrows what its agents' tokens carry, in every deployment: a
/// forbid refuses one scope, the token carries the rest, and the dry run says why.
#[tokio::test]
async fn a_policy_refuses_a_scope_the_agent_holds() {
    let server = Server::from_env().await;
    let org = server.bootstrap(&unique("policies")).await;
    let agent = server
        .agent_with_secret(&org, &unique("payer"), &["payments:write", "read:docs"])
        .await;
    let (status, policy) = status_json(
        server
            .post(
                "/v1/policies",
                &org.token,
                json!({ "cedar": "@reason(\"no payments from the edge scenario\")\n\
                                  forbid(principal, action, resource) \
                                  when { context.scope == \"payments:write\" };\n\
                                  permit(principal, action, resource);" }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 201, "{policy}");
    let response = server
        .token_request(
            &agent.client_id,
            &agent.client_secret,
            &[("scope", "payments:write")],
        )
        .await;
    let (status, body) = status_json(response).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("no payments from the edge scenario"));
    let response = server
        .token_request(&agent.client_id, &agent.client_secret, &[])
        .await;
    let (status, body) = status_json(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "read:docs");
    let (status, decided) = status_json(
        server
            .post(
                "/v1/policies/evaluate",
                &org.token,
                json!({ "agent_id": agent.id, "scopes": ["payments:write"] }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["decisions"][0]["decision"], "deny");
    assert_eq!(decided["decisions"][0]["policies"], json!([policy["id"]]));
}

#[tokio::test]
async fn every_route_answers_as_its_access_level_says() {
    let server = Server::from_env().await;
    for route in ROUTES {
        let method =
            agentidp_tests::reqwest::Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
        let mut request = server.http.request(method, server.url(&concrete(route)));
        if route.access == Access::Client {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body("token=not-a-token");
        }
        let response = request.send().await.unwrap();
        let label = format!("{} {}", route.method.as_str(), route.path);
        let headers = response.headers().clone();
        let (status, body) = status_json(response).await;
        match route.access {
            Access::Page if route.path.contains('{') => {
                // A file the page does not have (the placeholder name): a problem, still secured.
                assert_eq!(status, 404, "{label}: {body}");
                assert_eq!(body["code"], "not_found", "{label}");
                assert!(headers.contains_key("content-security-policy"), "{label}");
            }
            Access::Page => {
                assert_eq!(status, 200, "{label}");
                assert!(
                    headers["content-type"]
                        .to_str()
                        .unwrap()
                        .starts_with("text/html"),
                    "{label}"
                );
                assert!(headers.contains_key("content-security-policy"), "{label}");
            }
            Access::Bearer => {
                assert_eq!(status, 401, "{label}: {body}");
                assert_eq!(body["code"], "invalid_token", "{label}");
            }
            Access::Client => {
                assert!(matches!(status, 400 | 401), "{label}: {status} {body}");
                assert!(
                    body["error"].is_string(),
                    "{label}: not an RFC 6749 error: {body}"
                );
            }
            Access::Signature => {
                // No signature: refused, or not configured in this deployment; never a token error.
                let code = body["code"].as_str().unwrap_or_default();
                assert!(
                    matches!(
                        (status, code),
                        (400, "invalid_signature") | (404, "billing_not_configured")
                    ),
                    "{label}: {status} {body}"
                );
            }
            Access::Operator => {
                // Without the operator credential: refused, or off in this deployment.
                let code = body["code"].as_str().unwrap_or_default();
                assert!(
                    matches!(
                        (status, code),
                        (401, "operator_credential_required") | (404, "operator_api_off")
                    ),
                    "{label}: {status} {body}"
                );
            }
            Access::Public | Access::Signup => {
                let code = body["code"].as_str().unwrap_or_default();
                assert!(
                    status != 401 && code != "route_not_found" && code != "method_not_allowed",
                    "{label}: {status} {body}"
                );
            }
        }
    }
}

/// A GitHub Actions workflow, with no stored secret: its OIDC token (from the issuer stand-in on
/// loopback) becomes an agent token through a trust policy, by token exchange and by jwt-bearer,
/// and registers an agent through a registration policy. The edge runs give the stand-in's URL
/// and key (`AGENTIDP_OIDC_ISSUER_URL`, `AGENTIDP_OIDC_KEY_FILE`) and configure the deployment
/// with it; natively this test starts both.
#[tokio::test]
async fn a_workflow_exchanges_its_oidc_token_for_an_agent_token() {
    use agentidp_tests::oidc::{exchange, Grant, Issuer};
    let issuer = Issuer::from_env().await;
    let server = match std::env::var("AGENTIDP_BASE_URL") {
        Ok(base) if !base.is_empty() => Server::at(&base).await,
        _ => {
            let env = issuer.server_env();
            let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            Server::start_with(&pairs).await
        }
    };
    let org = server.bootstrap(&unique("federated")).await;
    let agent = server
        .create_agent(
            &org,
            json!({ "name": unique("deployer"), "agent_type": "ci",
                    "capabilities": ["agents:read", "deploy:write"], "allow_management_scopes": true }),
        )
        .await;
    let agent_id = agent["id"].as_str().unwrap().to_owned();
    // A repository of its own per run: deployments the scenario runs against are shared.
    let repository = format!("octo/{}", unique("app"));
    let (status, policy) = status_json(
        server
            .post(
                "/v1/oidc/trust-policies",
                &org.token,
                json!({ "provider": "github", "repository": repository, "branch": "main", "agent_id": agent_id }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 201, "{policy}");

    let token = issuer.mint(&issuer.claims(&repository, "111"));
    let (status, body) = exchange(
        &server,
        Grant::TokenExchange,
        &token,
        &[("agent_id", &agent_id), ("scope", "agents:read")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    let access = body["access_token"].as_str().unwrap().to_owned();
    let (_, claims) = jwt_parts(&access);
    assert_eq!(claims["sub"], agent_id.as_str());
    assert_eq!(claims["act"]["repository"], repository.as_str());
    let (status, read) =
        status_json(server.get(&format!("/v1/agents/{agent_id}"), &access).await).await;
    assert_eq!(status, 200, "{read}");

    // Single use, everywhere the store is shared.
    let (status, body) = exchange(
        &server,
        Grant::JwtBearer,
        &token,
        &[("agent_id", &agent_id)],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{body}"
    );

    // jwt-bearer with a fresh token; a refusal explains itself.
    let (status, body) = exchange(
        &server,
        Grant::JwtBearer,
        &issuer.mint(&issuer.claims(&repository, "111")),
        &[("agent_id", &agent_id)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut feature = issuer.claims(&repository, "111");
    feature.insert("ref".into(), json!("refs/heads/feature"));
    let (status, body) = exchange(
        &server,
        Grant::TokenExchange,
        &issuer.mint(&feature),
        &[("agent_id", &agent_id)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("ref refs/heads/feature does not match"),
        "{body}"
    );

    // Registration: a registration token registers an agent, and nothing else.
    let (status, policy) = status_json(
        server
            .post(
                "/v1/oidc/trust-policies",
                &org.token,
                json!({ "provider": "github", "repository": repository, "allow_registration": true, "max_registrations": 1, "scopes": ["deploy:write"] }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 201, "{policy}");
    let (status, body) = exchange(
        &server,
        Grant::TokenExchange,
        &issuer.mint(&issuer.claims(&repository, "111")),
        &[("org_id", &org.id)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let registration = body["access_token"].as_str().unwrap().to_owned();
    let (status, registered) = status_json(
        server
            .post(
                "/v1/agents",
                &registration,
                json!({ "name": unique("ci-agent"), "agent_type": "ci" }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 201, "{registered}");
    assert_eq!(registered["capabilities"], json!(["deploy:write"]));
    let (status, problem) = status_json(
        server
            .post(
                "/v1/agents",
                &registration,
                json!({ "name": unique("ci-agent"), "agent_type": "ci" }),
            )
            .await,
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("registration_limit_exceeded")),
        "{problem}"
    );
    let (status, _) = status_json(server.get("/v1/agents", &registration).await).await;
    assert_eq!(status, 403);
}

/// The browser pages and everything they load come from this deployment: the function that embeds
/// them serves every file the HTML names and every module the scripts import, each with the
/// pages' security headers, and nothing refers to another origin.
#[tokio::test]
async fn the_pages_and_what_they_load_come_from_this_deployment() {
    let server = Server::from_env().await;
    let crawl = agentidp_tests::pages::crawl(&server, &["/portal", "/docs"]).await;
    assert!(
        crawl.foreign.is_empty(),
        "references to other origins: {:?}",
        crawl.foreign
    );
    let paths: Vec<&str> = crawl.fetched.iter().map(|f| f.path.as_str()).collect();
    for expected in ["/portal/portal.js", "/portal/agents.js", "/docs/docs.js"] {
        assert!(
            paths.contains(&expected),
            "{expected} not loaded: {paths:?}"
        );
    }
    for file in &crawl.fetched {
        assert_eq!(file.status, 200, "{}", file.path);
        let csp = file.header("content-security-policy");
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{}: {csp}",
            file.path
        );
        assert_eq!(
            file.header("x-content-type-options"),
            "nosniff",
            "{}",
            file.path
        );
        assert_eq!(
            file.header("referrer-policy"),
            "no-referrer",
            "{}",
            file.path
        );
    }
}

/// Webhooks in every deployment: an event delivered right after the request that caused it, signed
/// so the `standardwebhooks` package verifies it, and a failed attempt retried by a dispatcher (the
/// Workers Cron Trigger's entry point where `AGENTIDP_SCHEDULED_URL` names it, else
/// `POST /v1/webhooks/dispatch`). Polls the receiver, not the API, to stay within rate limits.
#[tokio::test]
async fn webhooks_are_delivered_after_the_request_and_retried_by_the_dispatcher() {
    let server = Server::from_env_with(&[("AGENTIDP_DEV_WEBHOOKS_ALLOW_LOOPBACK", "on")]).await;
    let receiver = Receiver::start();
    let org = server.bootstrap(&unique("hooks")).await;
    let (subscription, secret) = subscribe(&server, &org, &receiver.url("/scenario"), &["*"]).await;
    receiver.endpoint("/scenario", &[&secret], &[200]).await;
    let agent = server
        .create_agent(
            &org,
            json!({ "name": unique("hooked"), "agent_type": "worker" }),
        )
        .await;
    let received = receiver.wait_for("/scenario", 1).await;
    assert_all_verified(&received);
    assert_eq!(received[0]["body"]["type"], "agent.created");
    assert_eq!(received[0]["body"]["data"]["agent"]["id"], agent["id"]);
    // A fixed length, not chunked: some receivers read nothing else.
    let length = received[0]["raw"].as_str().unwrap().len().to_string();
    assert_eq!(received[0]["content_length"], json!(length));

    // The next event fails once; its retry, due 5 s later, comes from a dispatcher.
    receiver
        .endpoint("/scenario", &[&secret], &[500, 200])
        .await;
    let (status, queued) = status_json(
        server
            .post(
                &format!("/v1/webhooks/{subscription}/test"),
                &org.token,
                json!({}),
            )
            .await,
    )
    .await;
    assert_eq!(status, 202, "{queued}");
    receiver.wait_for("/scenario", 2).await;
    let scheduled = std::env::var("AGENTIDP_SCHEDULED_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while receiver.received("/scenario").await.len() < 3 {
        assert!(std::time::Instant::now() < deadline, "the retry never came");
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        match &scheduled {
            Some(url) => {
                let ran = server.http.get(url).send().await.unwrap();
                assert!(ran.status().is_success(), "{url}: {}", ran.status());
            }
            None => {
                let (status, report) = dispatch(&server, &org.token, None).await;
                assert_eq!(status, 200, "{report}");
            }
        }
    }
    let received = receiver.received("/scenario").await;
    assert_all_verified(&received);
    assert_eq!(received[1]["webhook_id"], received[2]["webhook_id"]);
    assert_eq!(received[2]["body"]["type"], "webhook.test");
    let log = deliveries(&server, &org, &subscription).await;
    let test = log.iter().find(|d| d["id"] == queued["id"]).unwrap();
    assert_eq!(test["status"], "delivered", "{test:#}");
    let codes: Vec<&Value> = test["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status_code"])
        .collect();
    assert_eq!(codes, vec![&json!(500), &json!(200)]);
}

/// Public agent identity in this deployment: a published agent is found by what it does, has a
/// card signed by a key of this deployment's JWKS and a did:web document listing its key; once
/// withdrawn, all three are gone.
#[tokio::test]
async fn a_published_agent_is_found_and_has_a_signed_card_and_a_did() {
    let server = Server::from_env().await;
    let org = server.bootstrap(&unique("identity")).await;
    let word = unique("zebrafinch").replace('-', "");
    let agent = server
        .create_agent(
            &org,
            json!({
                "name": format!("{word} courier"),
                "agent_type": "courier",
                "visibility": "public",
                "capabilities": ["parcels:send"],
                "description": "Delivers parcels between agents.",
                "tags": ["logistics"],
            }),
        )
        .await;
    let id = agent["id"].as_str().unwrap().to_owned();
    let get = |path: String| {
        let request = server.http.get(server.url(&path));
        async move { status_json(request.send().await.unwrap()).await }
    };

    let (status, page) = get(format!(
        "/v1/marketplace/agents?q=parcels%20{}&tag=logistics&facets=tags",
        &word[..word.len() - 2]
    ))
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"][0]["id"], id.as_str(), "{page}");
    assert_eq!(page["facets"]["tags"][0]["value"], "logistics");

    let (status, card) = get(format!("/v1/marketplace/agents/{id}/agent-card.json")).await;
    assert_eq!(status, 200, "{card}");
    let (header, _) = jwt_parts(&format!(
        "{}.e30.",
        card["signatures"][0]["protected"].as_str().unwrap()
    ));
    let (_, jwks) = get("/.well-known/jwks.json".to_owned()).await;
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == header["kid"]),
        "{header}"
    );

    let (_, credential) = status_json(
        server
            .post(
                &format!("/v1/agents/{id}/credentials"),
                &org.token,
                json!({ "kind": "private_key_jwt", "public_jwk": {
                    "kty": "EC", "crv": "P-256", "kid": "scenario",
                    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
                }}),
            )
            .await,
    )
    .await;
    assert!(credential["id"].is_string(), "{credential}");
    let (status, document) = get(format!("/agents/{id}/did.json")).await;
    assert_eq!(status, 200, "{document}");
    assert_eq!(document["id"], page["data"][0]["did"]);
    assert_eq!(
        document["verificationMethod"][0]["publicKeyJwk"]["kid"],
        "scenario"
    );

    let response = server
        .patch(
            &format!("/v1/agents/{id}"),
            &org.token,
            json!({ "visibility": "private" }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let (_, page) = get(format!("/v1/marketplace/agents?q={word}")).await;
    assert_eq!(page["data"], json!([]));
    for path in [
        format!("/v1/marketplace/agents/{id}/agent-card.json"),
        format!("/agents/{id}/did.json"),
    ] {
        assert_eq!(get(path.clone()).await.0, 404, "{path}");
    }
}

/// One anonymous search, as a client sees it: status, ETag, what says whether the Workers cache
/// answered (`x-agentidp-cache`), and the body.
async fn anonymous_search(
    server: &Server,
    path: &str,
    if_none_match: Option<&str>,
) -> (u16, String, Option<String>, Value) {
    let mut request = server.http.get(server.url(path));
    if let Some(etag) = if_none_match {
        request = request.header("if-none-match", etag);
    }
    let response = request.send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let etag = header("etag").unwrap_or_default();
    let cache = header("x-agentidp-cache");
    let status = response.status().as_u16();
    let body = if status == 304 {
        Value::Null
    } else {
        response.json().await.unwrap()
    };
    (status, etag, cache, body)
}

/// A search asked again answers the same document and ETag (on Workers, from the Cache API once
/// the first answer is stored), and `304` to a client that has it; an edit, a withdrawal and a
/// republication each show in the very next search, with no waiting, in every deployment.
#[tokio::test]
async fn a_repeated_search_answers_the_same_until_a_listed_agent_changes() {
    let server = Server::from_env().await;
    let org = server.bootstrap(&unique("cached")).await;
    let word = unique("kittiwake").replace('-', "");
    let agent = server
        .create_agent(
            &org,
            json!({
                "name": format!("{word} relay"),
                "agent_type": "relay",
                "visibility": "public",
                "description": "Relays messages.",
            }),
        )
        .await;
    let id = agent["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/marketplace/agents?q={word}");

    let (status, etag, cache, first) = anonymous_search(&server, &path, None).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["data"][0]["id"], id.as_str(), "{first}");
    assert!(etag.starts_with('"'), "a strong ETag: {etag}");
    if server.is_workers() {
        assert_eq!(cache.as_deref(), Some("miss"));
        // The copy is stored after the response (`waitUntil`): ask until the cache answers.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (status, again_etag, cache, again) = anonymous_search(&server, &path, None).await;
            assert_eq!((status, &again_etag, &again), (200, &etag, &first));
            if cache.as_deref() == Some("hit") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never served from the cache"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    } else {
        assert_eq!(cache, None, "only Workers have the Cache API");
        let (status, again_etag, _, again) = anonymous_search(&server, &path, None).await;
        assert_eq!((status, &again_etag, &again), (200, &etag, &first));
    }
    let (status, revalidated, _, _) = anonymous_search(&server, &path, Some(&etag)).await;
    assert_eq!((status, revalidated.as_str()), (304, etag.as_str()));

    let edited = server
        .patch(
            &format!("/v1/agents/{id}"),
            &org.token,
            json!({ "description": "Relays parcels." }),
        )
        .await;
    assert_eq!(edited.status(), 200);
    let (status, edited_etag, _, page) = anonymous_search(&server, &path, Some(&etag)).await;
    assert_eq!(status, 200, "the old ETag no longer matches: {page}");
    assert_eq!(page["data"][0]["description"], "Relays parcels.", "{page}");
    assert_ne!(edited_etag, etag);

    for (visibility, listed) in [("private", false), ("public", true)] {
        let response = server
            .patch(
                &format!("/v1/agents/{id}"),
                &org.token,
                json!({ "visibility": visibility }),
            )
            .await;
        assert_eq!(response.status(), 200);
        let (status, _, _, page) = anonymous_search(&server, &path, None).await;
        assert_eq!(status, 200, "{page}");
        let ids: Vec<&Value> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| &a["id"])
            .collect();
        assert_eq!(ids.contains(&&json!(id)), listed, "{visibility}: {page}");
    }
}
