//! Rate limits, revocation at scale and usage metering end to end, against every key-value
//! backend: the in-process store, a real Redis over RESP, and the Upstash REST stand-in over Redis.

use std::process::Command;
use std::time::{Duration, Instant};

use agentidp_tests::reqwest::Response;
use agentidp_tests::{
    assert_problem, client_from, jwt_parts, server_binary, status_json, DevBackends, RedisServer,
    Server,
};
use serde_json::json;

#[derive(Clone, Copy, Debug)]
enum Backend {
    Memory,
    Redis,
    Upstash,
}

/// A server on one backend; the backend's processes live as long as it does.
struct Deployment {
    server: Server,
    redis: Option<RedisServer>,
    _standin: Option<DevBackends>,
}

async fn deploy(backend: Backend, env: &[(&str, &str)]) -> Deployment {
    // Debug builds under a concurrent burst on a shared machine can exceed the production
    // timeout; a miss would fail open and blur exact counts. Outage tests set their own.
    let mut vars = vec![("AGENTIDP_KV_TIMEOUT_MS".to_owned(), "1000".to_owned())];
    vars.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let (redis, standin) = match backend {
        Backend::Memory => (None, None),
        Backend::Redis => {
            let redis = RedisServer::start();
            vars.push(("REDIS_URL".into(), redis.url.clone()));
            (Some(redis), None)
        }
        Backend::Upstash => {
            let redis = RedisServer::start();
            let standin = DevBackends::start(&redis.url);
            vars.push(("UPSTASH_REDIS_REST_URL".into(), standin.upstash_url.clone()));
            vars.push(("UPSTASH_REDIS_REST_TOKEN".into(), standin.token.clone()));
            (Some(redis), Some(standin))
        }
    };
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Deployment {
        server: Server::start_with(&refs).await,
        redis,
        _standin: standin,
    }
}

fn header(response: &Response, name: &str) -> Option<u64> {
    response.headers().get(name)?.to_str().ok()?.parse().ok()
}

/// `(RateLimit-Limit, RateLimit-Remaining)`, asserting a sane `RateLimit-Reset` alongside.
fn limit_headers(response: &Response, window_seconds: u64) -> (u64, u64) {
    let reset = header(response, "ratelimit-reset").expect("RateLimit-Reset");
    assert!(
        (1..=window_seconds).contains(&reset),
        "RateLimit-Reset {reset}"
    );
    (
        header(response, "ratelimit-limit").expect("RateLimit-Limit"),
        header(response, "ratelimit-remaining").expect("RateLimit-Remaining"),
    )
}

fn assert_retry_after(response: &Response, window_seconds: u64) {
    let retry = header(response, "retry-after").expect("Retry-After on a 429");
    assert!((1..=window_seconds).contains(&retry), "Retry-After {retry}");
}

async fn limit_reached_exactly_at_n(backend: Backend) {
    let d = deploy(backend, &[("RATE_LIMIT_PER_MINUTE", "5")]).await;
    let server = &d.server;
    let org = server.bootstrap("acme").await;
    for n in 1..=5 {
        let response = server.get("/v1/agents", &org.token).await;
        assert_eq!(response.status(), 200, "request {n}");
        assert_eq!(limit_headers(&response, 60), (5, 5 - n));
        assert!(response.headers().get("retry-after").is_none());
    }
    let refused = server.get("/v1/agents", &org.token).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(limit_headers(&refused, 60), (5, 0));
    assert_retry_after(&refused, 60);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    assert_problem(status_json(refused).await, 429, "rate_limited");
    // The limit is the organization's: another one is untouched.
    let other = server.bootstrap("other").await;
    let response = server.get("/v1/agents", &other.token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(limit_headers(&response, 60), (5, 4));
}

async fn oauth_endpoints_are_limited_per_client(backend: Backend) {
    let d = deploy(backend, &[("AGENTIDP_RATE_LIMIT_CLIENT_PER_MINUTE", "3")]).await;
    let server = &d.server;
    // The bootstrap's token request is the admin client's first.
    let org = server.bootstrap("acme").await;
    for remaining in [1, 0] {
        let response = server
            .token_request(&org.client_id, &org.client_secret, &[])
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(limit_headers(&response, 60), (3, remaining));
    }
    let refused = server
        .token_request(&org.client_id, &org.client_secret, &[])
        .await;
    assert_eq!(refused.status(), 429);
    assert_retry_after(&refused, 60);
    assert_eq!(refused.headers()["cache-control"], "no-store");
    let (_, body) = status_json(refused).await;
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    // Introspection and revocation count against the same client.
    let introspect = server
        .http
        .post(server.url("/oauth2/introspect"))
        .basic_auth(&org.client_id, Some(&org.client_secret))
        .form(&[("token", org.token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(introspect.status(), 429);
    // Another client of the same organization has its own allowance.
    let agent = server
        .agent_with_secret(&org, "indexer", &["read:docs"])
        .await;
    let response = server
        .token_request(&agent.client_id, &agent.client_secret, &[])
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(limit_headers(&response, 60), (3, 2));
}

async fn unauthenticated_endpoints_are_limited_per_ip(backend: Backend) {
    let d = deploy(backend, &[("AGENTIDP_RATE_LIMIT_IP_PER_MINUTE", "4")]).await;
    let server = &d.server;
    let org = server.bootstrap("acme").await; // POST /v1/orgs: the address's first request
                                              // Failed authentications count in the address's own failure window.
    for remaining in [3, 2, 1, 0] {
        let failed = server
            .token_request(&org.client_id, "wrong-secret", &[])
            .await;
        assert_eq!(failed.status(), 401);
        assert_eq!(limit_headers(&failed, 60), (4, remaining));
    }
    let refused = server
        .token_request(&org.client_id, "wrong-secret", &[])
        .await;
    assert_eq!(refused.status(), 429);
    assert_retry_after(&refused, 60);
    assert_eq!(
        status_json(refused).await.1["error"],
        "temporarily_unavailable"
    );
    // Refused before the secret is checked, so the right secret is refused too: a 429 reveals
    // nothing about the secret.
    let right = server
        .token_request(&org.client_id, &org.client_secret, &[])
        .await;
    assert_eq!(right.status(), 429);
    // The address's unauthenticated calls have their own window, which sign-up started.
    for remaining in [2, 1, 0] {
        let search = server
            .http
            .get(server.url("/v1/marketplace/agents"))
            .send()
            .await
            .unwrap();
        assert_eq!(search.status(), 200);
        assert_eq!(limit_headers(&search, 60), (4, remaining));
    }
    let search = server
        .http
        .get(server.url("/v1/marketplace/agents"))
        .send()
        .await
        .unwrap();
    assert_eq!(search.status(), 429);
    assert_problem(status_json(search).await, 429, "rate_limited");
    let signup = server
        .http
        .post(server.url("/v1/orgs"))
        .json(&json!({ "name": "more" }))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 429);
}

/// The failure budgets are checked before the secret (a peek at two windows in one round trip)
/// and spent by failures only, on every backend; a spent client budget refuses only the
/// addresses that have been failing.
async fn failure_budgets_are_checked_before_the_secret(backend: Backend) {
    let env = [("AGENTIDP_RATE_LIMIT_CLIENT_FAILURES_PER_MINUTE", "3")];
    let d = deploy(backend, &env).await;
    let server = &d.server;
    let org = server.bootstrap("acme").await;
    let token = |address: u8, secret: &str| {
        let http = client_from([127, 0, 0, address]);
        let request = http
            .post(server.url("/oauth2/token"))
            .basic_auth(&org.client_id, Some(secret.to_owned()))
            .form(&[("grant_type", "client_credentials")]);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    // Successes spend nothing.
    for _ in 0..5 {
        assert_eq!(token(50, &org.client_secret).await, 200);
    }
    for address in 51..54 {
        assert_eq!(token(address, "wrong").await, 401);
    }
    // Spent: the addresses that have been failing are refused, the right secret too; one that
    // has not still has its credentials checked (no lockout by a public client id).
    assert_eq!(token(51, "wrong").await, 429);
    assert_eq!(token(52, &org.client_secret).await, 429);
    assert_eq!(token(54, "wrong").await, 401);
    assert_eq!(token(55, &org.client_secret).await, 200);
}

/// Calls refused for want of a scope are free, and an agent's allowed calls stop at its share.
async fn an_agent_spends_only_its_share(backend: Backend) {
    let d = deploy(backend, &[("RATE_LIMIT_PER_MINUTE", "10")]).await;
    let server = &d.server;
    let org = server.bootstrap("acme").await;
    let reader = server
        .agent_with_secret(&org, "reader", &["agents:read"])
        .await; // 2 calls
    let token = server
        .token(&reader.client_id, &reader.client_secret, &[])
        .await;
    for _ in 0..10 {
        let refused = server.get("/v1/audit/events", &token).await;
        assert_eq!(refused.status(), 403);
    }
    for remaining in (0..5).rev() {
        let response = server.get("/v1/agents", &token).await;
        assert_eq!(response.status(), 200);
        assert_eq!(limit_headers(&response, 60), (5, remaining));
    }
    let refused = server.get("/v1/agents", &token).await;
    assert_eq!(refused.status(), 429);
    assert_retry_after(&refused, 60);
    // The admin has the rest of the organization's budget.
    let response = server.get("/v1/agents", &org.token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(limit_headers(&response, 60), (10, 2));
}

/// With a fixed window, N requests just before a boundary and N just after would all pass. Here,
/// for any two admitted requests N apart, the later one's response came at least one window after
/// the earlier one was sent (which bounds the server's own instants from outside).
async fn window_boundary_cannot_be_doubled(backend: Backend) {
    let env = [
        ("RATE_LIMIT_PER_MINUTE", "5"),
        ("AGENTIDP_RATE_LIMIT_WINDOW_SECONDS", "2"),
    ];
    let d = deploy(backend, &env).await;
    let server = &d.server;
    let org = server.bootstrap("acme").await;
    // The server's clock moves 150 ms between requests (the clock seam, not sleeps): each
    // request's instants on the server's time are its real ones plus the offset so far.
    let (mut admitted, mut refused) = (Vec::new(), 0);
    let mut offset = Duration::ZERO;
    for _ in 0..30 {
        let sent = Instant::now() + offset;
        let response = server.get("/v1/agents", &org.token).await;
        let received = Instant::now() + offset;
        match response.status().as_u16() {
            200 => admitted.push((sent, received)),
            429 => refused += 1,
            other => panic!("unexpected status {other}"),
        }
        offset = server.advance_clock(Duration::from_millis(150));
    }
    assert!(refused > 0, "the limit never bit");
    assert!(admitted.len() >= 10, "only {} admitted", admitted.len());
    for (i, later) in admitted.iter().enumerate().skip(5) {
        let earlier = admitted[i - 5];
        let span = later.1.duration_since(earlier.0);
        // 5 ms of slack for the server clock's millisecond truncation.
        assert!(
            span >= Duration::from_millis(1_995),
            "requests {} and {i} were admitted within {span:?}",
            i - 5
        );
    }
}

async fn concurrent_clients_are_counted_exactly(backend: Backend) {
    let d = deploy(backend, &[("RATE_LIMIT_PER_MINUTE", "40")]).await;
    let server = &d.server;
    let org = server.bootstrap("acme").await;
    let mut tokens = vec![org.token.clone()];
    for i in 0..4 {
        // Two /v1 calls each: the agent, then its credential.
        let agent = server
            .agent_with_secret(&org, &format!("worker-{i}"), &["agents:read"])
            .await;
        tokens.push(
            server
                .token(&agent.client_id, &agent.client_secret, &[])
                .await,
        );
    }
    let budget = 40 - 8;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let (http, url, token) = (
            server.http.clone(),
            server.url("/v1/agents"),
            tokens[i % tokens.len()].clone(),
        );
        tasks.spawn(async move {
            let response = http.get(url).bearer_auth(token).send().await.unwrap();
            response.status().as_u16()
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = tasks.join_next().await {
        statuses.push(status.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((ok, limited), (budget, 100 - budget), "{statuses:?}");
}

async fn usage_is_metered_per_month(backend: Backend) {
    let d = deploy(backend, &[]).await;
    let server = &d.server;
    let org = server.bootstrap("acme").await; // 1 token issued
    let agent = server
        .agent_with_secret(&org, "indexer", &["read:docs"])
        .await; // 2 calls
    for _ in 0..2 {
        server
            .token(&agent.client_id, &agent.client_secret, &[])
            .await;
    }
    for _ in 0..3 {
        assert_eq!(server.get("/v1/agents", &org.token).await.status(), 200);
    }
    let (status, usage) = status_json(server.get("/v1/usage", &org.token).await).await;
    assert_eq!(status, 200, "{usage}");
    // The usage call itself is the sixth API call.
    assert_eq!(
        (usage["api_calls"].as_i64(), usage["tokens_issued"].as_i64()),
        (Some(6), Some(3))
    );
    assert_eq!(usage["agents"], json!({ "count": 1, "limit": 100 }));
    assert_eq!(usage["org_id"], org.id.as_str());
    assert_eq!(usage["tier"], "free");
    let month = usage["month"].as_str().unwrap();
    assert!(usage["period_start"].as_str().unwrap().starts_with(month));
    // An agent's token lacks `agents:read`.
    let agent_token = server
        .token(&agent.client_id, &agent.client_secret, &[])
        .await;
    let response = server.get("/v1/usage", &agent_token).await;
    assert_problem(status_json(response).await, 403, "insufficient_scope");
}

/// The default store persists its counters and resumes from them after a restart.
#[tokio::test]
async fn usage_survives_a_restart_of_the_in_process_store() {
    let env = [("AGENTIDP_ISSUER", "http://idp.test")];
    let mut server = Server::start_with(&env).await;
    let org = server.bootstrap("acme").await;
    for _ in 0..3 {
        server.get("/v1/agents", &org.token).await;
    }
    let (_, usage) = status_json(server.get("/v1/usage", &org.token).await).await;
    assert_eq!(usage["api_calls"], 4);
    server.stop();
    let restarted = Server::start_in(server.data_dir.clone(), &env).await;
    let (_, usage) = status_json(restarted.get("/v1/usage", &org.token).await).await;
    // Counting continues from the persisted month: this read is the fifth call.
    assert_eq!(
        (usage["api_calls"].as_i64(), usage["tokens_issued"].as_i64()),
        (Some(5), Some(1))
    );
}

#[tokio::test]
async fn tiers_set_the_organization_limit() {
    let server = Server::start_with(&[("AGENTIDP_RATE_LIMIT_TIERS", "free=2,pro=0")]).await;
    let org = server.bootstrap("acme").await;
    for remaining in [1, 0] {
        let response = server.get("/v1/agents", &org.token).await;
        assert_eq!(limit_headers(&response, 60), (2, remaining));
    }
    assert_eq!(server.get("/v1/agents", &org.token).await.status(), 429);
    let (_, usage) = status_json(server.get("/v1/usage", &org.token).await).await;
    assert_eq!(usage["code"], "rate_limited");
}

#[tokio::test]
async fn zero_means_unlimited_and_no_headers() {
    let server = Server::start_with(&[("RATE_LIMIT_PER_MINUTE", "0")]).await;
    let org = server.bootstrap("acme").await;
    let response = server.get("/v1/agents", &org.token).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("ratelimit-limit").is_none());
}

#[test]
fn malformed_limits_fail_at_start_naming_the_variable() {
    for (variable, value) in [
        ("RATE_LIMIT_PER_MINUTE", "lots"),
        ("AGENTIDP_RATE_LIMIT_TIERS", "free"),
        ("AGENTIDP_RATE_LIMIT_CLIENT_PER_MINUTE", "-1"),
        ("AGENTIDP_RATE_LIMIT_IP_PER_MINUTE", "1e3"),
        ("AGENTIDP_RATE_LIMIT_WINDOW_SECONDS", "0"),
        ("AGENTIDP_RATE_LIMIT_ON_KV_FAILURE", "ajar"),
        ("AGENTIDP_REVOCATION_ON_KV_FAILURE", "maybe"),
        ("AGENTIDP_KV_TIMEOUT_MS", "0"),
    ] {
        let output = Command::new(server_binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(std::env::temp_dir().join(format!("agentidp-badcfg-{}", std::process::id())))
            .env(variable, value)
            .output()
            .unwrap();
        assert!(
            !output.status.success(),
            "{variable}={value} should be refused"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(variable), "{variable}: {stderr}");
    }
}

async fn kv_outage_opens_limits_and_closes_revocation(backend: Backend) {
    let metrics = format!("127.0.0.1:{}", agentidp_tests::free_port());
    let mut d = deploy(
        backend,
        &[
            ("AGENTIDP_KV_TIMEOUT_MS", "100"),
            ("AGENTIDP_METRICS_LISTEN", metrics.as_str()),
        ],
    )
    .await;
    let org = d.server.bootstrap("acme").await;
    assert_eq!(d.server.get("/v1/agents", &org.token).await.status(), 200);
    d.redis.as_mut().expect("a Redis-backed deployment").kill();
    let server = &d.server;

    // Revocation cannot be checked: the token is refused, quickly.
    let started = Instant::now();
    let response = server.get("/v1/agents", &org.token).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_problem(
        status_json(response).await,
        503,
        "revocation_check_unavailable",
    );
    let introspect = server
        .http
        .post(server.url("/oauth2/introspect"))
        .basic_auth(&org.client_id, Some(&org.client_secret))
        .form(&[("token", org.token.as_str())])
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(introspect).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("temporarily_unavailable"))
    );

    // Limits cannot be counted: requests pass unchecked, without limit headers.
    let issued = server
        .token_request(&org.client_id, &org.client_secret, &[])
        .await;
    assert_eq!(issued.status(), 200);
    assert!(issued.headers().get("ratelimit-limit").is_none());
    let search = server
        .http
        .get(server.url("/v1/marketplace/agents"))
        .send()
        .await
        .unwrap();
    assert_eq!(search.status(), 200);

    let (status, health) = status_json(
        server
            .http
            .get(server.url("/health/detailed"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["checks"]["key_value"]["status"], "unavailable");
    // When limits are off is the operator's to know, not the public's.
    assert!(health.get("rate_limits").is_none(), "{health}");
    let exposition = server
        .http
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let failed_open: f64 = exposition
        .lines()
        .find_map(|line| line.strip_prefix("agentidp_rate_limit_fail_open_total "))
        .unwrap_or_else(|| panic!("no fail-open counter in {exposition}"))
        .trim()
        .parse()
        .unwrap();
    assert!(failed_open >= 2.0, "{exposition}");
}

/// Two instances on one Redis and one database (libSQL over HTTP, as edge instances share Turso;
/// two servers cannot share an embedded data directory): a revocation through one is refused by
/// the other on its next request.
#[tokio::test]
async fn revocation_is_visible_from_a_second_instance() {
    let redis = RedisServer::start();
    let backends = DevBackends::start(&redis.url);
    let env = [
        ("REDIS_URL", redis.url.as_str()),
        ("AGENTIDP_ISSUER", "http://idp.test"),
        ("AGENTIDP_DATABASE_URL", backends.hrana_url.as_str()),
        ("AGENTIDP_DATABASE_AUTH_TOKEN", backends.token.as_str()),
    ];
    let first = Server::start_with(&env).await;
    let second = Server::start_with(&env).await;
    let org = first.bootstrap("acme").await;
    let agent = first
        .agent_with_secret(&org, "indexer", &["agents:read"])
        .await;
    let token = first
        .token(&agent.client_id, &agent.client_secret, &[])
        .await;
    assert_eq!(second.get("/v1/agents", &token).await.status(), 200);

    let revoke = first
        .http
        .post(first.url("/oauth2/revoke"))
        .basic_auth(&agent.client_id, Some(&agent.client_secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 200);
    let response = second.get("/v1/agents", &token).await;
    assert_problem(status_json(response).await, 401, "invalid_token");

    // Suspending the agent on the second instance kills its other tokens on the first.
    let other = first
        .token(&agent.client_id, &agent.client_secret, &[])
        .await;
    assert_eq!(first.get("/v1/agents", &other).await.status(), 200);
    let suspend = second
        .patch(
            &format!("/v1/agents/{}", agent.id),
            &org.token,
            json!({ "status": "suspended" }),
        )
        .await;
    assert_eq!(suspend.status(), 200);
    let response = first.get("/v1/agents", &other).await;
    assert_problem(status_json(response).await, 401, "invalid_token");
}

/// Every entry the server writes expires: revocations with the tokens they cover, windows after
/// one window, usage counters after two months. The store never outgrows what is live.
#[tokio::test]
async fn every_entry_in_redis_expires() {
    let redis = RedisServer::start();
    let server = Server::start_with(&[
        ("REDIS_URL", redis.url.as_str()),
        ("AGENTIDP_TOKEN_TTL_SECONDS", "600"),
    ])
    .await;
    let org = server.bootstrap("acme").await;
    let agent = server
        .agent_with_secret(&org, "indexer", &["agents:read"])
        .await;
    let token = server
        .token(&agent.client_id, &agent.client_secret, &[])
        .await;
    let revoke = server
        .http
        .post(server.url("/oauth2/revoke"))
        .basic_auth(&agent.client_id, Some(&agent.client_secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 200);
    let (_, claims) = jwt_parts(&token);
    let jti = claims["jti"].as_str().unwrap();
    let ttl: i64 = redis
        .cli(&["TTL", &format!("revoked:jti:{jti}")])
        .parse()
        .unwrap();
    assert!((1..=600).contains(&ttl), "jti entry TTL {ttl}");
    server
        .delete(&format!("/v1/agents/{}", agent.id), &org.token)
        .await;
    let ttl: i64 = redis
        .cli(&["TTL", &format!("revoked:sub:{}", agent.id)])
        .parse()
        .unwrap();
    assert!((1..=600 + 61).contains(&ttl), "subject entry TTL {ttl}");
    for key in redis.cli(&["KEYS", "*"]).lines() {
        let ttl: i64 = redis.cli(&["TTL", key]).parse().unwrap();
        assert!(ttl > 0, "{key} has no expiry ({ttl})");
        if key.starts_with("ratelimit:") {
            assert!(ttl <= 60, "{key} outlives its window ({ttl})");
        }
    }
    let keys = redis.cli(&["KEYS", "usage:*"]);
    assert!(keys.lines().count() >= 2, "usage counters: {keys}");
}

macro_rules! on_every_backend {
    ($($scenario:ident),* $(,)?) => {
        mod memory { $(#[tokio::test] async fn $scenario() { super::$scenario(super::Backend::Memory).await })* }
        mod redis { $(#[tokio::test] async fn $scenario() { super::$scenario(super::Backend::Redis).await })* }
        mod upstash { $(#[tokio::test] async fn $scenario() { super::$scenario(super::Backend::Upstash).await })* }
    };
}

on_every_backend!(
    limit_reached_exactly_at_n,
    oauth_endpoints_are_limited_per_client,
    unauthenticated_endpoints_are_limited_per_ip,
    failure_budgets_are_checked_before_the_secret,
    an_agent_spends_only_its_share,
    window_boundary_cannot_be_doubled,
    concurrent_clients_are_counted_exactly,
    usage_is_metered_per_month,
);

mod outage {
    #[tokio::test]
    async fn redis() {
        super::kv_outage_opens_limits_and_closes_revocation(super::Backend::Redis).await
    }

    #[tokio::test]
    async fn upstash() {
        super::kv_outage_opens_limits_and_closes_revocation(super::Backend::Upstash).await
    }
}
