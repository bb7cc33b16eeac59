//! Workload identity federation end to end: a stand-in OIDC issuer on loopback (its key pair made
//! here) mints GitHub-shaped tokens, the real server verifies them against its JWKS and trust
//! policies, through token exchange and jwt-bearer, and refuses every wrong token and claim with
//! a reason.

use agentidp_tests::oidc::{self, exchange, Grant, Issuer, AUDIENCE};
use agentidp_tests::{assert_problem, jwt_parts, status_json, Org, Server};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};

const REPO: &str = "octo/app";
const REPO_ID: &str = "111";

async fn federated_server(issuer: &Issuer) -> Server {
    let env = issuer.server_env();
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start_with(&pairs).await
}

/// An agent with `capabilities` and a policy for it, from `policy` (merged over the basics).
async fn agent_with_policy(
    server: &Server,
    org: &Org,
    capabilities: &[&str],
    policy: Value,
) -> (String, Value) {
    let agent = server
        .create_agent(
            org,
            // A deploying workflow may hold a management scope: the admin says so explicitly.
            json!({ "name": "deployer", "agent_type": "ci", "capabilities": capabilities,
                    "allow_management_scopes": true }),
        )
        .await;
    let agent_id = agent["id"].as_str().unwrap().to_owned();
    let mut body = json!({ "provider": "github", "repository": REPO, "agent_id": agent_id });
    for (k, v) in policy.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (status, created) = status_json(
        server
            .post("/v1/oidc/trust-policies", &org.token, body)
            .await,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    (agent_id, created)
}

fn with(mut claims: Map<String, Value>, changes: Value) -> Map<String, Value> {
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            claims.remove(k);
        } else {
            claims.insert(k.clone(), v.clone());
        }
    }
    claims
}

fn description(body: &Value) -> &str {
    body["error_description"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_matching_workflow_gets_an_agent_token_through_both_grants() {
    let issuer = Issuer::start().await;
    let server = federated_server(&issuer).await;
    let org = server.bootstrap("acme").await;
    let (agent_id, policy) = agent_with_policy(
        &server,
        &org,
        &["agents:read", "deploy:write", "billing:read"],
        json!({ "branch": "main", "scopes": ["agents:read", "deploy:write"] }),
    )
    .await;
    assert_eq!(policy["repository_id"], Value::Null);
    assert_eq!(policy["allow_registration"], false);

    let metadata: Value = server
        .http
        .get(server.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for grant in [
        "urn:ietf:params:oauth:grant-type:token-exchange",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ] {
        assert!(
            metadata["grant_types_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(grant)),
            "{metadata}"
        );
    }

    // Token exchange (RFC 8693).
    let token = issuer.mint(&issuer.claims(REPO, REPO_ID));
    let (status, body) = exchange(
        &server,
        Grant::TokenExchange,
        &token,
        &[("agent_id", &agent_id)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "agents:read deploy:write");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let (header, claims) = jwt_parts(&access);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["sub"], agent_id.as_str());
    assert_eq!(claims["org_id"], org.id.as_str());
    assert_eq!(claims["client_id"], policy["id"]);
    assert_eq!(
        claims["act"]["sub"],
        format!("repo:{REPO}:environment:production")
    );
    assert_eq!(claims["act"]["iss"], issuer.url.as_str());
    assert_eq!(claims["act"]["repository"], REPO);
    assert_eq!(claims["act"]["repository_id"], REPO_ID);
    assert_eq!(claims["act"]["run_id"], "9001");
    assert_eq!(claims["act"]["run_attempt"], "1");
    assert!(claims["act"]["workflow_ref"]
        .as_str()
        .unwrap()
        .ends_with("@refs/heads/main"));
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 3600);

    // The token works against the API, as the agent.
    let (status, read) =
        status_json(server.get(&format!("/v1/agents/{agent_id}"), &access).await).await;
    assert_eq!(status, 200, "{read}");

    // jwt-bearer (RFC 7523 §2.1), with a narrower scope and a resource.
    let token = issuer.mint(&issuer.claims(REPO, REPO_ID));
    let (status, body) = exchange(
        &server,
        Grant::JwtBearer,
        &token,
        &[
            ("agent_id", &agent_id),
            ("scope", "deploy:write"),
            ("resource", "https://deploy.example.com"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("issued_token_type").is_none(), "{body}");
    assert_eq!(body["scope"], "deploy:write");
    let (_, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "https://deploy.example.com");

    // A scope the policy leaves out is refused even though the agent has it.
    let token = issuer.mint(&issuer.claims(REPO, REPO_ID));
    let (status, body) = exchange(
        &server,
        Grant::TokenExchange,
        &token,
        &[("agent_id", &agent_id), ("scope", "billing:read")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );

    // The first use pinned the immutable ids; the trail has the issuance with the claims used.
    let policy_id = policy["id"].as_str().unwrap();
    let (_, pinned) = status_json(
        server
            .get(&format!("/v1/oidc/trust-policies/{policy_id}"), &org.token)
            .await,
    )
    .await;
    assert_eq!(pinned["repository_id"], REPO_ID);
    assert_eq!(pinned["repository_owner_id"], "4242");
    let (_, events) = status_json(server.get("/v1/audit/events?limit=200", &org.token).await).await;
    let events = events["data"].as_array().unwrap();
    let pins = events
        .iter()
        .filter(|e| e["action"] == "trust_policy.pinned")
        .count();
    assert_eq!(pins, 1);
    let issued = events
        .iter()
        .find(|e| {
            e["action"] == "token.issued"
                && e["details"]["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"
        })
        .expect("the exchange is audited");
    assert_eq!(issued["details"]["trust_policy_id"], policy_id);
    assert_eq!(issued["details"]["workflow"]["repository_id"], REPO_ID);
    assert_eq!(issued["details"]["workflow"]["event_name"], "push");
    assert!(
        !issued.to_string().contains(&token[..40]),
        "the subject token is not recorded"
    );
    let (_, verdict) = status_json(server.get("/v1/audit/verify", &org.token).await).await;
    assert_eq!(verdict["valid"], true, "{verdict}");

    // Suspending the agent revokes what the workflow obtained (sub is the agent).
    let response = server
        .patch(
            &format!("/v1/agents/{agent_id}"),
            &org.token,
            json!({ "status": "suspended" }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let (status, _) =
        status_json(server.get(&format!("/v1/agents/{agent_id}"), &access).await).await;
    assert_eq!(status, 401);
    let token = issuer.mint(&issuer.claims(REPO, REPO_ID));
    let (status, body) = exchange(
        &server,
        Grant::TokenExchange,
        &token,
        &[("agent_id", &agent_id)],
    )
    .await;
    assert_eq!(status, 400);
    assert!(description(&body).contains("suspended"), "{body}");
}

#[tokio::test]
async fn every_claim_that_does_not_match_is_refused_with_the_reason() {
    let issuer = Issuer::start().await;
    let server = federated_server(&issuer).await;
    let org = server.bootstrap("acme").await;
    let claims = || issuer.claims(REPO, REPO_ID);
    let cases: Vec<(Value, Value, &str, &str)> = vec![
        (json!({ "repository_id": "111" }), json!({ "repository_id": "999" }),
         "repository_id 999 does not match the trust policy for octo/app (111); a re-created repository needs a new trust policy", "repository_id"),
        (json!({ "branch": "release/*" }), json!({}), "refs/heads/release/*", "ref"),
        (json!({ "branch": "main" }), json!({ "ref": "refs/tags/v1", "ref_type": "tag" }), "refs/tags/v1", "ref"),
        (json!({ "environment": "staging" }), json!({}), "environment production", "environment"),
        (json!({ "environment": "production" }), json!({ "environment": null }), "no environment", "environment"),
        (json!({ "job_workflow_ref": "octo/app/.github/workflows/deploy.yml@refs/heads/main" }), json!({}),
         "octo/app/.github/workflows/deploy.yml@refs/heads/main", "job_workflow_ref"),
        (json!({}), json!({ "event_name": "pull_request_target" }), "event_names", "event_name"),
        (json!({}), json!({ "event_name": "workflow_run" }), "event_names", "event_name"),
        (json!({ "event_names": ["workflow_dispatch"] }), json!({}), "event_name push", "event_name"),
        (json!({ "runner_environment": "github-hosted" }), json!({ "runner_environment": "self-hosted" }),
         "runner_environment self-hosted", "runner_environment"),
    ];
    for (policy, changes, expected, claim) in cases {
        let (agent_id, _) = agent_with_policy(&server, &org, &["x"], policy.clone()).await;
        let token = issuer.mint(&with(claims(), changes.clone()));
        for grant in [Grant::TokenExchange, Grant::JwtBearer] {
            let (status, body) = exchange(&server, grant, &token, &[("agent_id", &agent_id)]).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_grant")),
                "{policy} {changes}: {body}"
            );
            let text = description(&body);
            assert!(
                text.contains(claim) && text.contains(expected),
                "{policy} {changes}: {text}"
            );
        }
    }

    // A repository no policy of the agent names learns nothing about them.
    let (agent_id, _) = agent_with_policy(&server, &org, &["x"], json!({ "branch": "main" })).await;
    let token = issuer.mint(&issuer.claims("mallory/app", "666"));
    let (status, body) = exchange(
        &server,
        Grant::TokenExchange,
        &token,
        &[("agent_id", &agent_id)],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        description(&body),
        format!("no trust policy lets repository mallory/app act as agent {agent_id}")
    );

    // Pinned on first use: a re-created repository (new id, same name) and a re-created owner are
    // refused afterwards.
    let token = issuer.mint(&claims());
    let (status, body) = exchange(
        &server,
        Grant::TokenExchange,
        &token,
        &[("agent_id", &agent_id)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = issuer.mint(&with(claims(), json!({ "repository_id": "112" })));
    let (status, body) = exchange(
        &server,
        Grant::TokenExchange,
        &token,
        &[("agent_id", &agent_id)],
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        description(&body).contains("repository_id 112 does not match"),
        "{body}"
    );
    let token = issuer.mint(&with(claims(), json!({ "repository_owner_id": "5" })));
    let (_, body) = exchange(
        &server,
        Grant::TokenExchange,
        &token,
        &[("agent_id", &agent_id)],
    )
    .await;
    assert!(
        description(&body).contains("repository_owner_id 5 does not match"),
        "{body}"
    );

    // Listed explicitly, an otherwise refused event is let through.
    let (agent_id, _) = agent_with_policy(
        &server,
        &org,
        &["x"],
        json!({ "event_names": ["issue_comment"] }),
    )
    .await;
    let token = issuer.mint(&with(claims(), json!({ "event_name": "issue_comment" })));
    let (status, body) = exchange(
        &server,
        Grant::JwtBearer,
        &token,
        &[("agent_id", &agent_id)],
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Refusals of a trusted repository's workflows are in the organization's trail, once each.
    let (_, events) = status_json(server.get("/v1/audit/events?limit=200", &org.token).await).await;
    let denied = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "token.exchange_denied")
        .count();
    // Ten policies refused their token through both grants, two tokens broke a pin: one event per
    // token, since a refusal uses the token up.
    assert_eq!(denied, 12);
}

#[tokio::test]
async fn every_way_the_token_itself_is_wrong_is_refused() {
    let issuer = Issuer::start().await;
    let server = federated_server(&issuer).await;
    let org = server.bootstrap("acme").await;
    let (agent_id, _) = agent_with_policy(&server, &org, &["x"], json!({})).await;
    let agent = [("agent_id", agent_id.as_str())];
    let now = oidc::now();
    let claims = || issuer.claims(REPO, REPO_ID);
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let payload = encode(&Value::Object(claims()));
    let public_pem = oidc::signing_key().public_key().to_pem().unwrap();
    // HS256 keyed with the issuer's public key: the algorithm-confusion attack.
    let hs256 = {
        use jwt_simple::prelude::{HS256Key, MACLike};
        let key = HS256Key::from_bytes(public_pem.as_bytes()).with_key_id(&issuer.kid);
        key.authenticate(oidc::raw_claims(&claims())).unwrap()
    };
    let wrong: Vec<(String, &str)> = vec![
        (
            format!(
                "{}.{payload}.",
                encode(&json!({ "alg": "none", "kid": issuer.kid }))
            ),
            "alg none",
        ),
        (hs256, "alg HS256"),
        (
            oidc::mint_with(oidc::other_key(), &issuer.kid, &claims()),
            "signature does not verify",
        ),
        (
            oidc::mint_with(oidc::other_key(), "made-up-kid", &claims()),
            "kid made-up-kid is not among",
        ),
        (
            issuer.mint(&with(
                claims(),
                json!({ "iss": "https://token.actions.githubusercontent.com" }),
            )),
            "is not an issuer this deployment trusts",
        ),
        (
            issuer.mint(&with(claims(), json!({ "aud": "https://github.com/octo" }))),
            "aud https://github.com/octo is not this deployment's audience",
        ),
        (
            issuer.mint(&with(
                claims(),
                json!({ "aud": [AUDIENCE, "https://other.example"] }),
            )),
            "must be exactly this deployment's audience",
        ),
        (
            issuer.mint(&with(claims(), json!({ "aud": null }))),
            "audience",
        ),
        (
            issuer.mint(&with(
                claims(),
                json!({ "exp": now - 61, "iat": now - 360 }),
            )),
            "expired",
        ),
        (
            issuer.mint(&with(claims(), json!({ "nbf": now + 3000 }))),
            "not valid yet",
        ),
        (
            issuer.mint(&with(
                claims(),
                json!({ "iat": now + 3000, "exp": now + 3300 }),
            )),
            "issued in the future",
        ),
        (
            issuer.mint(&with(claims(), json!({ "exp": now + 7200 }))),
            "at most 3600 s",
        ),
        (
            issuer.mint(&with(claims(), json!({ "exp": null }))),
            "exp and iat",
        ),
        (issuer.mint(&with(claims(), json!({ "jti": null }))), "jti"),
        (
            issuer.mint(&with(claims(), json!({ "jti": "j".repeat(300) }))),
            "jti",
        ),
        ("not-a-jwt".to_owned(), "three parts"),
        (
            format!("{}.{payload}.sig", encode(&json!({ "alg": "RS256" }))),
            "no kid",
        ),
    ];
    for (token, expected) in &wrong {
        for grant in [Grant::TokenExchange, Grant::JwtBearer] {
            let (status, body) = exchange(&server, grant, token, &agent).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_grant")),
                "{expected}: {body}"
            );
            assert!(description(&body).contains(expected), "{expected}: {body}");
        }
    }
    // A token from an issuer not on the list never made this server fetch anything; the unknown
    // kid did not make it fetch again within the minute.
    assert_eq!(issuer.jwks_requests(), 1);

    // Replays: the jti is single-use, across both grants.
    let token = issuer.mint(&claims());
    let (status, body) = exchange(&server, Grant::TokenExchange, &token, &agent).await;
    assert_eq!(status, 200, "{body}");
    for grant in [Grant::TokenExchange, Grant::JwtBearer] {
        let (status, body) = exchange(&server, grant, &token, &agent).await;
        assert_eq!(status, 400);
        assert!(description(&body).contains("already used"), "{body}");
    }

    // Malformed requests.
    let token = issuer.mint(&claims());
    let response = server
        .http
        .post(server.url("/oauth2/token"))
        .form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", token.as_str()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:saml2",
            ),
            ("agent_id", agent_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (status, body) = exchange(
        &server,
        Grant::TokenExchange,
        &token,
        &[("agent_id", &agent_id), ("actor_token", "x")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (status, body) = exchange(
        &server,
        Grant::TokenExchange,
        &token,
        &[
            ("agent_id", &agent_id),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            ),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let huge = "a".repeat(20_000);
    let (status, body) = exchange(&server, Grant::TokenExchange, &huge, &agent).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = exchange(
        &server,
        Grant::JwtBearer,
        &token,
        &[("agent_id", "not-an-id")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    // The untouched token is still good: refusals before matching did not use it up. The JWT
    // token type is accepted too, and asking for an access token is what is issued anyway.
    let response = server
        .http
        .post(server.url("/oauth2/token"))
        .form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", token.as_str()),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("agent_id", agent_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (status, body) = status_json(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
}

#[tokio::test]
async fn twenty_concurrent_exchanges_of_one_token_issue_once() {
    let issuer = Issuer::start().await;
    let server = federated_server(&issuer).await;
    let org = server.bootstrap("acme").await;
    let (agent_id, _) = agent_with_policy(&server, &org, &["x"], json!({})).await;
    let token = issuer.mint(&issuer.claims(REPO, REPO_ID));
    let attempts = (0..20).map(|i| {
        let grant = if i % 2 == 0 {
            Grant::TokenExchange
        } else {
            Grant::JwtBearer
        };
        let (server, token, agent_id) = (&server, token.clone(), agent_id.clone());
        async move { exchange(server, grant, &token, &[("agent_id", &agent_id)]).await }
    });
    let results = futures_join(attempts).await;
    let issued = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(issued, 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|(s, b)| *s == 200 || description(b).contains("already used")),
        "{results:?}"
    );
    // Twenty workflows racing to be the first use pin the policy once.
    let (_, events) = status_json(server.get("/v1/audit/events?limit=200", &org.token).await).await;
    let pins = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "trust_policy.pinned")
        .count();
    assert_eq!(pins, 1);
}

/// Runs the futures concurrently (all requests in flight at once) and collects their outputs.
async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<_> = futures.map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (future, result) in pending.iter_mut().zip(results.iter_mut()) {
            if result.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *result = Some(v),
                    std::task::Poll::Pending => waiting = true,
                }
            }
        }
        if waiting {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().map(Option::unwrap).collect()
}

#[tokio::test]
async fn a_policy_never_opens_another_organizations_agent() {
    let issuer = Issuer::start().await;
    let server = federated_server(&issuer).await;
    let alpha = server.bootstrap("alpha").await;
    let beta = server.bootstrap("beta").await;
    let (alpha_agent, alpha_policy) =
        agent_with_policy(&server, &alpha, &["x"], json!({ "branch": "main" })).await;
    let beta_agent = server
        .create_agent(
            &beta,
            json!({ "name": "b", "agent_type": "ci", "capabilities": ["x"] }),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Alpha trusts octo/app for its agent; that workflow asking for beta's agent is refused
    // without a word about alpha's policy.
    let token = issuer.mint(&issuer.claims(REPO, REPO_ID));
    let (status, body) = exchange(
        &server,
        Grant::TokenExchange,
        &token,
        &[("agent_id", &beta_agent)],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        description(&body),
        format!("no trust policy lets repository {REPO} act as agent {beta_agent}")
    );
    let unknown = "00000000-0000-4000-8000-000000000009";
    let (_, missing) = exchange(
        &server,
        Grant::TokenExchange,
        &token,
        &[("agent_id", unknown)],
    )
    .await;
    assert_eq!(
        description(&missing),
        format!("no trust policy lets repository {REPO} act as agent {unknown}")
    );

    // Beta cannot aim a policy at alpha's agent, nor see, delete or dry-run alpha's policies.
    let (status, body) = status_json(
        server
            .post(
                "/v1/oidc/trust-policies",
                &beta.token,
                json!({ "provider": "github", "repository": REPO, "agent_id": alpha_agent }),
            )
            .await,
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("agent_id")),
        "{body}"
    );
    assert_eq!(body["detail"], "agent_id: agent not found");
    let alpha_policy_id = alpha_policy["id"].as_str().unwrap();
    for response in [
        server
            .get(
                &format!("/v1/oidc/trust-policies/{alpha_policy_id}"),
                &beta.token,
            )
            .await,
        server
            .delete(
                &format!("/v1/oidc/trust-policies/{alpha_policy_id}"),
                &beta.token,
            )
            .await,
    ] {
        assert_problem(status_json(response).await, 404, "not_found");
    }
    let (_, list) = status_json(server.get("/v1/oidc/trust-policies", &beta.token).await).await;
    assert_eq!(list["data"], json!([]));
    let (status, dry) = status_json(
        server
            .post(
                "/v1/oidc/trust-policies/evaluate",
                &beta.token,
                json!({ "claims": issuer.claims(REPO, REPO_ID) }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(
        (dry["matched"].clone(), dry["policies"].clone()),
        (json!(false), json!([]))
    );

    // Alpha's own still works, and deleting it closes it.
    let (status, _) = exchange(
        &server,
        Grant::JwtBearer,
        &issuer.mint(&issuer.claims(REPO, REPO_ID)),
        &[("agent_id", &alpha_agent)],
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = status_json(
        server
            .delete(
                &format!("/v1/oidc/trust-policies/{alpha_policy_id}"),
                &alpha.token,
            )
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = exchange(
        &server,
        Grant::JwtBearer,
        &issuer.mint(&issuer.claims(REPO, REPO_ID)),
        &[("agent_id", &alpha_agent)],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (_, events) =
        status_json(server.get("/v1/audit/events?limit=200", &alpha.token).await).await;
    let actions: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"trust_policy.created") && actions.contains(&"trust_policy.deleted"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn creation_refuses_policies_that_would_trust_too_much() {
    let issuer = Issuer::start().await;
    let server = federated_server(&issuer).await;
    let org = server.bootstrap("acme").await;
    let agent = server
        .create_agent(
            &org,
            json!({ "name": "a", "agent_type": "ci", "capabilities": ["x"] }),
        )
        .await;
    let agent_id = agent["id"].as_str().unwrap();
    for (body, field) in [
        (json!({ "repository": "*" }), "repository"),
        (json!({ "repository": "*/*" }), "repository"),
        (json!({ "repository": "octo/app", "branch": "*" }), "branch"),
        (
            json!({ "repository": "octo/app", "branch": "*main" }),
            "branch",
        ),
        (
            json!({ "repository": "octo/app", "branch": "ma[in" }),
            "branch",
        ),
        (
            json!({ "repository": "octo/app", "scopes": ["y"] }),
            "scopes",
        ),
        (
            json!({ "repository": "octo/app", "agent_id": "00000000-0000-4000-8000-000000000009" }),
            "agent_id",
        ),
        (
            json!({ "repository": "octo/app", "provider": "gitlab" }),
            "provider",
        ),
        (
            json!({ "repository": "octo/app", "surprise": true }),
            "surprise",
        ),
    ] {
        let mut full = json!({ "provider": "github", "agent_id": agent_id });
        for (k, v) in body.as_object().unwrap() {
            full[k] = v.clone();
        }
        let (status, problem) = status_json(
            server
                .post("/v1/oidc/trust-policies", &org.token, full.clone())
                .await,
        )
        .await;
        assert_eq!(
            (status, problem["field"].as_str()),
            (400, Some(field)),
            "{full}: {problem}"
        );
    }
    // An agent token without agents:write cannot create one.
    let client = server
        .agent_with_secret(&org, "reader", &["agents:read"])
        .await;
    let token = server
        .token(&client.client_id, &client.client_secret, &[])
        .await;
    let response = server
        .post(
            "/v1/oidc/trust-policies",
            &token,
            json!({ "provider": "github", "repository": REPO, "agent_id": agent_id }),
        )
        .await;
    assert_problem(status_json(response).await, 403, "insufficient_scope");

    // A deployment that trusts no GitHub issuer says so, and does not offer the grants.
    let plain = Server::start().await;
    let org = plain.bootstrap("plain").await;
    let agent = plain
        .create_agent(&org, json!({ "name": "a", "agent_type": "ci" }))
        .await;
    let (status, problem) = status_json(
        plain
            .post(
                "/v1/oidc/trust-policies",
                &org.token,
                json!({ "provider": "github", "repository": REPO, "agent_id": agent["id"] }),
            )
            .await,
    )
    .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (400, Some("provider")),
        "{problem}"
    );
    let (status, body) = exchange(&plain, Grant::TokenExchange, "x.y.z", &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
}

#[tokio::test]
async fn registration_policies_register_agents_up_to_their_cap() {
    let issuer = Issuer::start().await;
    let server = federated_server(&issuer).await;
    let org = server.bootstrap("acme").await;
    let (status, policy) = status_json(
        server
            .post(
                "/v1/oidc/trust-policies",
                &org.token,
                json!({ "provider": "github", "repository": "octo/*", "allow_registration": true,
                        "max_registrations": 5, "scopes": ["deploy:write", "deploy:read"], "branch": "main" }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 201, "{policy}");
    assert_eq!(policy["registered_agents"], 0);
    let policy_id = policy["id"].as_str().unwrap().to_owned();

    // Without agent_id, the workflow gets a token that can only register agents.
    let token = issuer.mint(&issuer.claims(REPO, REPO_ID));
    let (status, body) = exchange(&server, Grant::TokenExchange, &token, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "agents:register");
    let registration = body["access_token"].as_str().unwrap().to_owned();
    let (_, claims) = jwt_parts(&registration);
    assert_eq!(claims["sub"], policy_id.as_str());
    assert_eq!(claims["trust_policy"], policy_id.as_str());
    for response in [
        server.get("/v1/agents", &registration).await,
        server
            .post("/v1/oidc/trust-policies", &registration, json!({}))
            .await,
        server.get("/v1/audit/events", &registration).await,
    ] {
        assert_problem(status_json(response).await, 403, "insufficient_scope");
    }
    // Another branch is refused, explained; a repository of another owner learns nothing.
    let feature = issuer.mint(&with(
        issuer.claims(REPO, REPO_ID),
        json!({ "ref": "refs/heads/feature" }),
    ));
    let (status, body) = exchange(&server, Grant::JwtBearer, &feature, &[]).await;
    assert_eq!(status, 400);
    assert!(
        description(&body).contains("ref refs/heads/feature does not match"),
        "{body}"
    );
    let other = issuer.mint(&issuer.claims("mallory/app", "666"));
    let (_, body) = exchange(&server, Grant::JwtBearer, &other, &[]).await;
    assert!(
        description(&body)
            .starts_with("no trust policy lets repository mallory/app register agents"),
        "{body}"
    );

    // Capabilities beyond the policy's scopes are refused; none asked: all of the policy's.
    let (status, problem) = status_json(
        server
            .post(
                "/v1/agents",
                &registration,
                json!({ "name": "ci-1", "agent_type": "ci", "capabilities": ["admin:all"] }),
            )
            .await,
    )
    .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (400, Some("capabilities")),
        "{problem}"
    );
    let (status, first) = status_json(
        server
            .post("/v1/agents", &registration, json!({ "name": "ci-1", "agent_type": "ci", "metadata": { "description": "built by CI" } }))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(
        first["capabilities"],
        json!(["deploy:write", "deploy:read"])
    );
    let first_id = first["id"].as_str().unwrap().to_owned();

    // Twenty concurrent registrations against a cap of five (one used): exactly four more.
    let attempts = (0..20).map(|i| {
        let (server, token) = (&server, registration.clone());
        async move {
            status_json(
                server
                    .post(
                        "/v1/agents",
                        &token,
                        json!({ "name": format!("ci-{i}"), "agent_type": "ci" }),
                    )
                    .await,
            )
            .await
        }
    });
    let results = futures_join(attempts).await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(created, 4, "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(
            (*status, body["code"].as_str()),
            (403, Some("registration_limit_exceeded")),
            "{body}"
        );
    }
    let (_, read) = status_json(
        server
            .get(&format!("/v1/oidc/trust-policies/{policy_id}"), &org.token)
            .await,
    )
    .await;
    assert_eq!(read["registered_agents"], 5);

    // The workflow then acts as the agent it registered, through the same policy.
    let token = issuer.mint(&issuer.claims(REPO, REPO_ID));
    let (status, body) = exchange(
        &server,
        Grant::TokenExchange,
        &token,
        &[("agent_id", &first_id), ("scope", "deploy:read")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "deploy:read");

    // Registration events name the policy and the workflow.
    let (_, events) = status_json(server.get("/v1/audit/events?limit=200", &org.token).await).await;
    let registered = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["action"] == "agent.created" && e["details"]["trust_policy_id"] == policy_id.as_str()
        })
        .count();
    assert_eq!(registered, 5);

    // Deleting the policy revokes its registration tokens.
    let (status, _) = status_json(
        server
            .delete(&format!("/v1/oidc/trust-policies/{policy_id}"), &org.token)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = status_json(
        server
            .post(
                "/v1/agents",
                &registration,
                json!({ "name": "late", "agent_type": "ci" }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_dry_run_explains_and_issues_nothing() {
    let issuer = Issuer::start().await;
    let server = federated_server(&issuer).await;
    let org = server.bootstrap("acme").await;
    let (agent_id, main_policy) =
        agent_with_policy(&server, &org, &["x"], json!({ "branch": "main" })).await;
    let (_, prod_policy) =
        agent_with_policy(&server, &org, &["x"], json!({ "environment": "prod" })).await;
    let token = issuer.mint(&issuer.claims(REPO, REPO_ID));
    let (status, dry) = status_json(
        server
            .post(
                "/v1/oidc/trust-policies/evaluate",
                &org.token,
                json!({ "token": token }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["matched"], true);
    assert_eq!(dry["token_verified"], true);
    assert_eq!(dry["policy_id"], main_policy["id"]);
    let prod = dry["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["policy_id"] == prod_policy["id"])
        .unwrap();
    assert_eq!(prod["matched"], false);
    assert_eq!(prod["failed"]["claim"], "environment");
    assert_eq!(prod["failed"]["expected"], "prod");
    assert_eq!(prod["failed"]["actual"], "production");
    // Nothing was used up or pinned: the same token still exchanges, and only then pins.
    let (_, policy) = status_json(
        server
            .get(
                &format!(
                    "/v1/oidc/trust-policies/{}",
                    main_policy["id"].as_str().unwrap()
                ),
                &org.token,
            )
            .await,
    )
    .await;
    assert_eq!(policy["repository_owner_id"], Value::Null);
    let (status, body) = exchange(
        &server,
        Grant::TokenExchange,
        &token,
        &[("agent_id", &agent_id)],
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Claims alone, and a token that does not verify.
    let claims = with(
        issuer.claims(REPO, REPO_ID),
        json!({ "ref": "refs/heads/dev" }),
    );
    let (_, dry) = status_json(
        server
            .post(
                "/v1/oidc/trust-policies/evaluate",
                &org.token,
                json!({ "claims": claims, "agent_id": agent_id }),
            )
            .await,
    )
    .await;
    assert_eq!(dry["matched"], false, "{dry}");
    assert_eq!(dry["token_verified"], false);
    assert_eq!(dry["policies"].as_array().unwrap().len(), 1);
    assert_eq!(dry["policies"][0]["failed"]["claim"], "ref");
    let forged = oidc::mint_with(
        oidc::other_key(),
        &issuer.kid,
        &issuer.claims(REPO, REPO_ID),
    );
    let (status, problem) = status_json(
        server
            .post(
                "/v1/oidc/trust-policies/evaluate",
                &org.token,
                json!({ "token": forged }),
            )
            .await,
    )
    .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (400, Some("token")),
        "{problem}"
    );
    let (status, _) = status_json(
        server
            .post(
                "/v1/oidc/trust-policies/evaluate",
                &org.token,
                json!({ "token": "a", "claims": {} }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn an_unreachable_issuer_is_unavailable_not_a_crash_and_pins_survive_restarts() {
    let issuer = Issuer::start().await;
    issuer.set_jwks_status(500);
    let mut server = federated_server(&issuer).await;
    let org = server.bootstrap("acme").await;
    let (agent_id, policy) = agent_with_policy(&server, &org, &["x"], json!({})).await;
    let token = issuer.mint(&issuer.claims(REPO, REPO_ID));
    let (status, body) = exchange(
        &server,
        Grant::TokenExchange,
        &token,
        &[("agent_id", &agent_id)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("temporarily_unavailable")),
        "{body}"
    );
    // Failures are not retried on every request: at most once a minute.
    let (status, _) = exchange(
        &server,
        Grant::TokenExchange,
        &token,
        &[("agent_id", &agent_id)],
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(issuer.jwks_requests(), 1);

    // A fresh server (the cache is per instance) once the issuer is back: works, pins, and the
    // pin is durable across a restart.
    issuer.set_jwks_status(200);
    server.stop();
    let env = issuer.server_env();
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_in(server.data_dir.clone(), &pairs).await;
    let (status, body) = exchange(
        &server,
        Grant::TokenExchange,
        &token,
        &[("agent_id", &agent_id)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut server = server;
    server.stop();
    let server = Server::start_in(server.data_dir.clone(), &pairs).await;
    let org_token = server.token(&org.client_id, &org.client_secret, &[]).await;
    let (_, read) = status_json(
        server
            .get(
                &format!("/v1/oidc/trust-policies/{}", policy["id"].as_str().unwrap()),
                &org_token,
            )
            .await,
    )
    .await;
    assert_eq!(read["repository_id"], REPO_ID);
    let token = issuer.mint(&with(issuer.claims(REPO, "999"), json!({})));
    let (status, body) = exchange(
        &server,
        Grant::TokenExchange,
        &token,
        &[("agent_id", &agent_id)],
    )
    .await;
    assert_eq!(status, 400);
    assert!(description(&body).contains("repository_id 999"), "{body}");
}

#[tokio::test]
async fn refused_exchanges_count_against_the_callers_address() {
    let issuer = Issuer::start().await;
    let mut env = issuer.server_env();
    env.push(("AGENTIDP_RATE_LIMIT_IP_PER_MINUTE", "3".to_owned()));
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_with(&pairs).await;
    let agent = [("agent_id", "00000000-0000-4000-8000-000000000009")];
    for _ in 0..3 {
        let (status, body) = exchange(&server, Grant::JwtBearer, "a.b.c", &agent).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{body}"
        );
    }
    let (status, body) = exchange(&server, Grant::JwtBearer, "a.b.c", &agent).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("temporarily_unavailable")),
        "{body}"
    );
}

#[tokio::test]
async fn client_credentials_presented_to_a_federation_grant_are_checked() {
    let issuer = Issuer::start().await;
    let server = federated_server(&issuer).await;
    let org = server.bootstrap("acme").await;
    let (agent_id, _) = agent_with_policy(
        &server,
        &org,
        &["deploy:write"],
        json!({ "branch": "main" }),
    )
    .await;
    // RFC 6749 §5.2: a wrong pair is `invalid_client`, not ignored because the grant needs none.
    for grant in [Grant::TokenExchange, Grant::JwtBearer] {
        let token = issuer.mint(&issuer.claims(REPO, REPO_ID));
        let (status, body) = exchange(
            &server,
            grant,
            &token,
            &[
                ("agent_id", &agent_id),
                ("client_id", &org.client_id),
                ("client_secret", "not-the-secret"),
            ],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{grant:?}: {body}"
        );
    }
    // The right pair, or none at all, is fine.
    for extra in [
        vec![
            ("agent_id", agent_id.as_str()),
            ("client_id", org.client_id.as_str()),
            ("client_secret", org.client_secret.as_str()),
        ],
        vec![("agent_id", agent_id.as_str())],
    ] {
        let token = issuer.mint(&issuer.claims(REPO, REPO_ID));
        let (status, body) = exchange(&server, Grant::TokenExchange, &token, &extra).await;
        assert_eq!(status, 200, "{body}");
    }
}
