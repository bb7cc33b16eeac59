//! Webhooks end to end: the real server delivers to a real receiver on loopback that verifies every
//! signature with the `standardwebhooks` package; retries are walked through the dispatcher's clock
//! (`?at=`, development mode), never by sleeping through the schedule.

use std::collections::{BTreeMap, BTreeSet};

use agentidp_tests::webhooks::{
    assert_all_verified, deliveries, dispatch, millis, second_at_or_after, subscribe,
    wait_for_attempts, Receiver, DRIVEN,
};
use agentidp_tests::{assert_problem, free_port, status_json, Server};
use serde_json::{json, Value};

fn types(received: &[Value]) -> Vec<String> {
    received
        .iter()
        .map(|r| r["body"]["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_event_type_reaches_its_subscribers_signed_and_without_secrets() {
    let receiver = Receiver::start();
    let server = Server::start_with(DRIVEN).await;
    let org = server.bootstrap("acme").await;
    let other = server.bootstrap("other").await;
    let (_, all_secret) = subscribe(&server, &org, &receiver.url("/all"), &["*"]).await;
    let (_, created_secret) =
        subscribe(&server, &org, &receiver.url("/created"), &["agent.created"]).await;
    let (_, other_secret) = subscribe(&server, &other, &receiver.url("/other"), &["*"]).await;
    receiver.endpoint("/all", &[&all_secret], &[200]).await;
    receiver
        .endpoint("/created", &[&created_secret], &[204])
        .await;
    receiver.endpoint("/other", &[&other_secret], &[200]).await;

    // Every kind of change the organization makes.
    let agent = server.agent_with_secret(&org, "bot", &["read:docs"]).await;
    let path = format!("/v1/agents/{}", agent.id);
    let credentials = format!("{path}/credentials/{}", agent.credential_id);
    let (status, rotated) = status_json(
        server
            .post(&format!("{credentials}/rotate"), &org.token, json!({}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let secret = rotated["client_secret"].as_str().unwrap();
    let token = server.token(&agent.client_id, secret, &[]).await;
    let revoke = server
        .http
        .post(server.url("/oauth2/revoke"))
        .basic_auth(&agent.client_id, Some(secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 200);
    let patch = |body: Value| server.patch(&path, &org.token, body);
    assert_eq!(patch(json!({ "name": "bot-2" })).await.status(), 200);
    assert_eq!(patch(json!({ "status": "suspended" })).await.status(), 200);
    assert_eq!(patch(json!({ "status": "active" })).await.status(), 200);
    assert_eq!(server.delete(&credentials, &org.token).await.status(), 200);
    assert_eq!(server.delete(&path, &org.token).await.status(), 200);
    // The other organization's own change goes to its own subscriber only.
    server
        .create_agent(&other, json!({ "name": "theirs", "agent_type": "worker" }))
        .await;

    let expected = [
        "agent.created",
        "credential.created",
        "agent.updated",
        "agent.suspended",
        "agent.updated",
        "credential.rotated",
        "token.revoked",
        "credential.revoked",
        "agent.decommissioned",
    ];
    let all = receiver.wait_for("/all", expected.len()).await;
    assert_all_verified(&all);
    let mut received = types(&all);
    received.sort();
    let mut wanted: Vec<String> = expected.iter().map(|t| (*t).to_owned()).collect();
    wanted.sort();
    assert_eq!(received, wanted);
    let created = receiver.wait_for("/created", 1).await;
    assert_all_verified(&created);
    assert_eq!(types(&created), vec!["agent.created"]);
    let theirs = receiver.wait_for("/other", 1).await;
    assert_eq!(types(&theirs), vec!["agent.created"]);
    assert_eq!(theirs[0]["body"]["data"]["org_id"], other.id);

    let mut ids = BTreeSet::new();
    for delivery in &all {
        let body = &delivery["body"];
        assert_eq!(body["data"]["org_id"], org.id, "{body}");
        assert!(body["timestamp"].is_string());
        assert_eq!(delivery["user_agent"], "AgentIdP-Webhooks/1");
        // Nothing secret in any event: no client secret, no hash, no signing secret.
        let raw = delivery["raw"].as_str().unwrap();
        for secret in ["aidp_sk_", "whsec_", "\"client_secret\":", "secret_hash"] {
            assert!(!raw.contains(secret), "{secret} in {raw}");
        }
        assert!(ids.insert(delivery["webhook_id"].as_str().unwrap().to_owned()));
    }
    // One event, one id, whichever subscription it goes to.
    let created_event = all
        .iter()
        .find(|d| d["body"]["type"] == "agent.created")
        .unwrap();
    assert_eq!(created_event["webhook_id"], created[0]["webhook_id"]);
    assert_eq!(created_event["body"]["data"]["agent"]["id"], agent.id);
    let suspended = all
        .iter()
        .find(|d| d["body"]["type"] == "agent.suspended")
        .unwrap();
    assert_eq!(suspended["body"]["data"]["agent"]["status"], "suspended");
    let revoked = all
        .iter()
        .find(|d| d["body"]["type"] == "token.revoked")
        .unwrap();
    assert_eq!(revoked["body"]["data"]["agent_id"], agent.id);
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_retries_on_schedule_and_the_event_when_back() {
    let port = free_port();
    let server = Server::start_with(DRIVEN).await;
    let org = server.bootstrap("acme").await;
    let url = format!("http://127.0.0.1:{port}/hook");
    let (subscription, secret) = subscribe(&server, &org, &url, &["agent.created"]).await;
    server
        .create_agent(&org, json!({ "name": "bot", "agent_type": "worker" }))
        .await;

    // The attempt right after the request finds nobody listening.
    let first = wait_for_attempts(&server, &org, &subscription, 1).await;
    assert_eq!(first["status"], "pending");
    let attempt = &first["attempts"][0];
    assert_eq!(attempt["status_code"], Value::Null);
    assert!(
        attempt["error"].as_str().unwrap().contains("127.0.0.1"),
        "{attempt}"
    );
    let wait = millis(&first["next_attempt_at"]) - millis(&attempt["attempted_at"]);
    assert!(
        (4_500..=5_500).contains(&wait),
        "first retry after {wait} ms"
    );

    // Not due a moment before; due at its time. Each failure waits longer, with jitter.
    let before = millis(&first["next_attempt_at"]) / 1000 - 1;
    let (status, report) = dispatch(&server, &org.token, Some(before)).await;
    assert_eq!(
        (status, report["attempted"].clone()),
        (200, json!(0)),
        "{report}"
    );
    let mut delivery = first;
    for (attempts, seconds) in [(2, 300), (3, 1_800)] {
        let at = second_at_or_after(&delivery["next_attempt_at"]);
        let (status, report) = dispatch(&server, &org.token, Some(at)).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["retrying"], 1, "{report}");
        delivery = deliveries(&server, &org, &subscription).await[0].clone();
        let log = delivery["attempts"].as_array().unwrap();
        assert_eq!(log.len(), attempts);
        let wait =
            millis(&delivery["next_attempt_at"]) - millis(&log[attempts - 1]["attempted_at"]);
        let planned = seconds * 1000;
        assert!(
            (planned * 9 / 10..=planned * 11 / 10).contains(&wait),
            "attempt {attempts}: next after {wait} ms, planned {planned}"
        );
    }

    // It comes back, answers 503 once, then takes it.
    let receiver = Receiver::start_on(port);
    receiver.endpoint("/hook", &[&secret], &[503, 200]).await;
    let at = second_at_or_after(&delivery["next_attempt_at"]);
    let (_, report) = dispatch(&server, &org.token, Some(at)).await;
    assert_eq!(report["retrying"], 1, "{report}");
    delivery = deliveries(&server, &org, &subscription).await[0].clone();
    let at = second_at_or_after(&delivery["next_attempt_at"]);
    let (_, report) = dispatch(&server, &org.token, Some(at)).await;
    assert_eq!(report["delivered"], 1, "{report}");

    let received = receiver.received("/hook").await;
    assert_eq!(received.len(), 2);
    assert_all_verified(&received);
    // The same webhook-id on every attempt: receivers deduplicate on it.
    assert_eq!(received[0]["webhook_id"], received[1]["webhook_id"]);
    let delivery = deliveries(&server, &org, &subscription).await[0].clone();
    assert_eq!(delivery["status"], "delivered");
    assert_eq!(delivery["next_attempt_at"], Value::Null);
    assert_eq!(delivery["id"], received[1]["webhook_id"]);
    let codes: Vec<Value> = delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].clone())
        .collect();
    assert_eq!(
        codes,
        vec![
            Value::Null,
            Value::Null,
            Value::Null,
            json!(503),
            json!(200)
        ]
    );
    for attempt in delivery["attempts"].as_array().unwrap() {
        assert!(attempt["duration_ms"].as_i64().unwrap() >= 0);
    }
    // Delivered is final: a later dispatch finds nothing.
    let (_, report) = dispatch(&server, &org.token, Some(at + 86_400)).await;
    assert_eq!(report["attempted"], 0, "{report}");
}

#[tokio::test]
async fn the_last_attempt_fails_the_delivery_and_days_of_failure_disable_the_subscription() {
    let receiver = Receiver::start();
    let server = Server::start_with(DRIVEN).await;
    let org = server.bootstrap("acme").await;
    let (subscription, secret) = subscribe(&server, &org, &receiver.url("/down"), &["*"]).await;
    receiver.endpoint("/down", &[&secret], &[500]).await;
    let test = format!("/v1/webhooks/{subscription}/test");
    let (status, queued) = status_json(server.post(&test, &org.token, json!({})).await).await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["event_type"], "webhook.test");

    // Eight attempts: the one right after the request and seven on the schedule.
    let mut delivery = wait_for_attempts(&server, &org, &subscription, 1).await;
    for _ in 0..7 {
        let at = second_at_or_after(&delivery["next_attempt_at"]);
        dispatch(&server, &org.token, Some(at)).await;
        delivery = deliveries(&server, &org, &subscription).await[0].clone();
    }
    assert_eq!(delivery["status"], "failed", "{delivery:#}");
    assert_eq!(delivery["attempts"].as_array().unwrap().len(), 8);
    assert_eq!(delivery["next_attempt_at"], Value::Null);
    let received = receiver.received("/down").await;
    assert_eq!(received.len(), 8);
    assert_all_verified(&received);
    let (_, current) = status_json(
        server
            .get(&format!("/v1/webhooks/{subscription}"), &org.token)
            .await,
    )
    .await;
    assert_eq!(current["enabled"], true, "under two days of failure");
    let failing_since = millis(&current["failing_since"]);

    // A failed delivery can be sent again by hand, with its id, from the start of the schedule.
    let retry = format!(
        "/v1/webhooks/{subscription}/deliveries/{}/retry",
        delivery["id"].as_str().unwrap()
    );
    let (status, retried) = status_json(server.post(&retry, &org.token, json!({})).await).await;
    assert_eq!(
        (status, retried["status"].clone()),
        (202, json!("pending")),
        "{retried}"
    );
    let again = wait_for_attempts(&server, &org, &subscription, 9).await;
    assert_eq!(again["status"], "pending");
    let received = receiver.wait_for("/down", 9).await;
    assert_eq!(received[8]["webhook_id"], received[0]["webhook_id"]);
    // Only a failed delivery can be retried.
    assert_problem(
        status_json(server.post(&retry, &org.token, json!({})).await).await,
        409,
        "delivery_not_failed",
    );

    // Still failing five days after the run began: disabled, saying why.
    let at = (failing_since + 5 * 86_400_000) / 1000 + 1;
    let (_, report) = dispatch(&server, &org.token, Some(at)).await;
    assert_eq!(report["disabled"], 1, "{report}");
    let (_, current) = status_json(
        server
            .get(&format!("/v1/webhooks/{subscription}"), &org.token)
            .await,
    )
    .await;
    assert_eq!(current["enabled"], false);
    let reason = current["disabled_reason"].as_str().unwrap();
    assert!(
        reason.contains("failed since") && reason.contains("HTTP 500"),
        "{reason}"
    );
    let (_, events) = status_json(server.get("/v1/audit/events?limit=200", &org.token).await).await;
    let disabled: Vec<&Value> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "webhook.disabled")
        .collect();
    assert_eq!(disabled.len(), 1);
    assert_eq!(disabled[0]["actor"], "webhooks-dispatcher");

    // Disabled: no new deliveries, no test events; enabling clears the reason.
    let logged = deliveries(&server, &org, &subscription).await.len();
    server
        .create_agent(&org, json!({ "name": "quiet", "agent_type": "worker" }))
        .await;
    assert_eq!(deliveries(&server, &org, &subscription).await.len(), logged);
    assert_problem(
        status_json(server.post(&test, &org.token, json!({})).await).await,
        409,
        "webhook_disabled",
    );
    let (status, enabled) = status_json(
        server
            .patch(
                &format!("/v1/webhooks/{subscription}"),
                &org.token,
                json!({ "enabled": true }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{enabled}");
    assert_eq!(enabled["disabled_reason"], Value::Null);
    assert_eq!(enabled["failing_since"], Value::Null);
}

#[tokio::test]
async fn an_endpoint_answering_410_disables_its_subscription() {
    let receiver = Receiver::start();
    let server = Server::start_with(DRIVEN).await;
    let org = server.bootstrap("acme").await;
    let (subscription, secret) = subscribe(&server, &org, &receiver.url("/gone"), &["*"]).await;
    receiver.endpoint("/gone", &[&secret], &[410]).await;
    server
        .create_agent(&org, json!({ "name": "bot", "agent_type": "worker" }))
        .await;
    let delivery = wait_for_attempts(&server, &org, &subscription, 1).await;
    assert_eq!(delivery["status"], "failed", "{delivery}");
    assert_eq!(delivery["attempts"][0]["status_code"], 410);
    let path = format!("/v1/webhooks/{subscription}");
    let (_, current) = status_json(server.get(&path, &org.token).await).await;
    assert_eq!(current["enabled"], false);
    assert_eq!(current["disabled_reason"], "the endpoint answered 410 Gone");
    let retry = format!(
        "{path}/deliveries/{}/retry",
        delivery["id"].as_str().unwrap()
    );
    assert_problem(
        status_json(server.post(&retry, &org.token, json!({})).await).await,
        409,
        "webhook_disabled",
    );
    assert_eq!(receiver.received("/gone").await.len(), 1);
}

#[tokio::test]
async fn nothing_is_lost_when_the_server_is_killed_between_the_change_and_the_delivery() {
    let receiver = Receiver::start();
    let mut server = Server::start_with(DRIVEN).await;
    let org = server.bootstrap("acme").await;
    let (subscription, secret) = subscribe(&server, &org, &receiver.url("/slow"), &["*"]).await;
    // The receiver holds the first attempt open: the server dies while delivering.
    receiver
        .configure(
            json!({ "path": "/slow", "secrets": [secret], "statuses": [200], "hang_seconds": 30 }),
        )
        .await;
    let agent = server
        .create_agent(&org, json!({ "name": "bot", "agent_type": "worker" }))
        .await;
    receiver.wait_for("/slow", 1).await;
    server.kill();

    receiver.endpoint("/slow", &[&secret], &[200]).await;
    let restarted = Server::start_in(server.data_dir.clone(), DRIVEN).await;
    // The dead dispatcher's lease runs out after a minute; then any dispatcher takes it over.
    let now = unix_now();
    let (_, report) = dispatch(&restarted, &org.token, Some(now + 30)).await;
    assert_eq!(report["attempted"], 0, "the lease still holds: {report}");
    let (_, report) = dispatch(&restarted, &org.token, Some(now + 61)).await;
    assert_eq!(report["delivered"], 1, "{report}");
    let received = receiver.wait_for("/slow", 2).await;
    assert_all_verified(&received);
    assert_eq!(received[0]["webhook_id"], received[1]["webhook_id"]);
    assert_eq!(received[1]["body"]["data"]["agent"]["id"], agent["id"]);
    let log = deliveries(&restarted, &org, &subscription).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], "delivered");
}

#[tokio::test]
async fn events_enqueued_before_a_restart_are_delivered_by_the_periodic_dispatcher() {
    let port = free_port();
    let mut server = Server::start_with(DRIVEN).await;
    let org = server.bootstrap("acme").await;
    let url = format!("http://127.0.0.1:{port}/hook");
    let (subscription, secret) = subscribe(&server, &org, &url, &["agent.created"]).await;
    for i in 0..3 {
        server
            .create_agent(
                &org,
                json!({ "name": format!("bot-{i}"), "agent_type": "worker" }),
            )
            .await;
    }
    // Each first attempt fails (nobody listens); then the server stops.
    for delivery in deliveries(&server, &org, &subscription).await {
        assert_eq!(delivery["status"], "pending");
    }
    server.stop();

    let receiver = Receiver::start_on(port);
    receiver.endpoint("/hook", &[&secret], &[200]).await;
    let env = [
        ("AGENTIDP_ISSUER", "http://agentidp.test"),
        ("AGENTIDP_DEV_WEBHOOKS_ALLOW_LOOPBACK", "on"),
        ("AGENTIDP_WEBHOOK_DISPATCH_INTERVAL_SECONDS", "1"),
    ];
    let restarted = Server::start_in(server.data_dir.clone(), &env).await;
    // The first retry is due 5 s after the first attempt; the server's own dispatcher sends it.
    let received = receiver.wait_for("/hook", 3).await;
    assert_all_verified(&received);
    let ids: BTreeSet<&str> = received
        .iter()
        .map(|r| r["webhook_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    for delivery in deliveries(&restarted, &org, &subscription).await {
        assert_eq!(delivery["status"], "delivered");
    }
}

/// Seconds since the epoch, for dispatches as of some time from now.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Enqueues `count` events to a receiver that is down (each first attempt fails), brings the
/// receiver up, then runs all `dispatchers` at once, ten minutes on; asserts each event reached
/// the receiver exactly once.
async fn race(
    servers: &[&Server],
    org: &agentidp_tests::Org,
    count: usize,
    dispatchers: &[(&Server, &str)],
) {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let (subscription, secret) = subscribe(servers[0], org, &url, &["agent.created"]).await;
    for i in 0..count {
        servers[i % servers.len()]
            .create_agent(
                org,
                json!({ "name": format!("bot-{i}"), "agent_type": "worker" }),
            )
            .await;
    }
    wait_until_all_attempted(servers[0], org, &subscription, count).await;
    let receiver = Receiver::start_on(port);
    receiver.endpoint("/hook", &[&secret], &[200]).await;

    let at = unix_now() + 600;
    let mut racing = tokio::task::JoinSet::new();
    for (server, token) in dispatchers {
        let request = server
            .http
            .post(server.url(&format!("/v1/webhooks/dispatch?at={at}")))
            .bearer_auth(token);
        racing.spawn(async move { status_json(request.send().await.unwrap()).await });
    }
    let mut delivered = 0;
    for (status, report) in racing.join_all().await {
        assert_eq!(status, 200, "{report}");
        delivered += report["delivered"].as_i64().unwrap();
    }
    assert_eq!(delivered, count as i64);
    let received = receiver.received("/hook").await;
    assert_eq!(received.len(), count, "each delivery attempted once");
    assert_all_verified(&received);
    let mut per_id: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &received {
        *per_id.entry(r["webhook_id"].as_str().unwrap()).or_default() += 1;
    }
    assert!(per_id.values().all(|n| *n == 1), "{per_id:?}");
    for delivery in deliveries(servers[0], org, &subscription).await {
        assert_eq!(delivery["status"], "delivered");
        let attempts = delivery["attempts"].as_array().unwrap();
        let answered = attempts.iter().filter(|a| a["status_code"] == 200).count();
        assert_eq!(answered, 1, "{delivery:#}");
    }
}

const OPERATOR: &str = "operator-dispatch-token";

#[tokio::test]
async fn concurrent_dispatchers_attempt_each_delivery_once() {
    let mut env = DRIVEN.to_vec();
    env.push(("AGENTIDP_WEBHOOK_DISPATCH_TOKEN", OPERATOR));
    let server = Server::start_with(&env).await;
    let org = server.bootstrap("acme").await;
    // The operator's and the organization's dispatchers, four of each.
    let dispatchers: Vec<(&Server, &str)> = (0..8)
        .map(|i| {
            (
                &server,
                if i % 2 == 0 {
                    OPERATOR
                } else {
                    org.token.as_str()
                },
            )
        })
        .collect();
    race(&[&server], &org, 30, &dispatchers).await;
}

/// Waits until each of `count` deliveries has had its first attempt.
async fn wait_until_all_attempted(
    server: &Server,
    org: &agentidp_tests::Org,
    subscription: &str,
    count: usize,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let log = deliveries(server, org, subscription).await;
        let attempted = log
            .iter()
            .filter(|d| !d["attempts"].as_array().unwrap().is_empty())
            .count();
        if log.len() == count && attempted == count {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{attempted} of {count} attempted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn unsafe_targets_are_refused_at_creation_and_at_delivery() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    for url in [
        "http://hooks.example.com/in",
        "https://127.0.0.1/in",
        "https://2130706433/in",
        "https://localhost/in",
        "https://localhost./in",
        "https://[::1]/in",
        "https://[::ffff:10.0.0.1]/in",
        "https://[::ffff:0:8.8.8.8]/in", // SIIT: translated inside the network
        "https://[64:ff9b:1::808:808]/in", // local-use NAT64
        "https://0.0.0.0/in",
        "https://10.0.0.1/in",
        "https://172.16.5.4/in",
        "https://192.168.0.10/in",
        "https://[fd12:3456::1]/in",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fe80::1]/in",
        "https://100.64.1.1/in",
        "https://239.1.1.1/in",
        "https://[ff05::1]/in",
        "https://240.0.0.1/in",
        "https://168.63.129.16/in",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://intranet/in",
        "https://user:pass@hooks.example.com/in",
        "file:///etc/passwd",
    ] {
        let (status, body) = status_json(
            server
                .post(
                    "/v1/webhooks",
                    &org.token,
                    json!({ "url": url, "events": ["*"] }),
                )
                .await,
        )
        .await;
        let problem = assert_problem((status, body), 400, "url_not_allowed");
        assert_eq!(problem["field"], "url", "{url}");
    }
    // Public HTTPS is fine (nothing is sent until an event happens).
    let (status, body) = status_json(
        server
            .post(
                "/v1/webhooks",
                &org.token,
                json!({ "url": "https://hooks.example.com/in", "events": ["*"] }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["url"], "https://hooks.example.com/in");
}

#[tokio::test]
async fn the_development_switch_admits_loopback_only_and_delivery_checks_again() {
    let receiver = Receiver::start();
    let mut server = Server::start_with(DRIVEN).await;
    let org = server.bootstrap("acme").await;
    for url in [
        "http://10.0.0.1/in",
        "https://169.254.169.254/",
        "http://hooks.example.com/",
    ] {
        let response = server
            .post(
                "/v1/webhooks",
                &org.token,
                json!({ "url": url, "events": ["*"] }),
            )
            .await;
        assert_problem(status_json(response).await, 400, "url_not_allowed");
    }
    let (subscription, secret) = subscribe(&server, &org, &receiver.url("/hook"), &["*"]).await;
    receiver.endpoint("/hook", &[&secret], &[200]).await;

    // Redirects are answers, never followed.
    receiver
        .configure(
            json!({ "path": "/hook", "secrets": [secret], "statuses": [307],
                           "location": receiver.url("/elsewhere") }),
        )
        .await;
    receiver.endpoint("/elsewhere", &[&secret], &[200]).await;
    server
        .create_agent(&org, json!({ "name": "bot", "agent_type": "worker" }))
        .await;
    let delivery = wait_for_attempts(&server, &org, &subscription, 1).await;
    assert_eq!(delivery["attempts"][0]["status_code"], 307);
    assert_eq!(delivery["status"], "pending");
    assert!(receiver.received("/elsewhere").await.is_empty());

    // The switch turned off: the stored loopback URL is refused before anything is sent.
    server.stop();
    let mut env: Vec<(&str, &str)> = DRIVEN.to_vec();
    env.retain(|(k, _)| *k != "AGENTIDP_DEV_WEBHOOKS_ALLOW_LOOPBACK");
    let restarted = Server::start_in(server.data_dir.clone(), &env).await;
    let before = receiver.received("/hook").await.len();
    let (status, queued) = status_json(
        restarted
            .post(
                &format!("/v1/webhooks/{subscription}/test"),
                &org.token,
                json!({}),
            )
            .await,
    )
    .await;
    assert_eq!(status, 202, "{queued}");
    let test_id = queued["id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let refused = loop {
        let log = deliveries(&restarted, &org, &subscription).await;
        let test = log
            .iter()
            .find(|d| d["id"] == test_id.as_str())
            .unwrap()
            .clone();
        if !test["attempts"].as_array().unwrap().is_empty() {
            break test;
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let error = refused["attempts"][0]["error"].as_str().unwrap();
    assert!(
        error.starts_with("not sent:") && error.contains("https"),
        "{error}"
    );
    assert_eq!(refused["attempts"][0]["status_code"], Value::Null);
    assert_eq!(receiver.received("/hook").await.len(), before);
}

#[tokio::test]
async fn subscriptions_are_managed_by_their_organization_only() {
    let receiver = Receiver::start();
    let server = Server::start_with(DRIVEN).await;
    let org = server.bootstrap("acme").await;
    let other = server.bootstrap("other").await;

    // Created with a secret shown once; never shown again.
    let (status, created) = status_json(
        server
            .post(
                "/v1/webhooks",
                &org.token,
                json!({ "url": receiver.url("/a"), "events": ["agent.created", "agent.created"],
                        "description": "ops" }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() >= 6 + 32,
        "{secret}"
    );
    assert_eq!(created["events"], json!(["agent.created"]));
    let path = format!("/v1/webhooks/{id}");
    let (_, read) = status_json(server.get(&path, &org.token).await).await;
    assert!(read.get("secret").is_none(), "{read}");
    let (_, list) = status_json(server.get("/v1/webhooks", &org.token).await).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains("whsec_"));

    // Another organization sees nothing and can touch nothing.
    let (_, theirs) = status_json(server.get("/v1/webhooks", &other.token).await).await;
    assert!(theirs["data"].as_array().unwrap().is_empty());
    for response in [
        server.get(&path, &other.token).await,
        server
            .patch(&path, &other.token, json!({ "enabled": false }))
            .await,
        server
            .post(&format!("{path}/test"), &other.token, json!({}))
            .await,
        server
            .post(&format!("{path}/rotate"), &other.token, json!({}))
            .await,
        server
            .get(&format!("{path}/deliveries"), &other.token)
            .await,
        server
            .post(
                &format!("{path}/deliveries/00000000-0000-4000-8000-000000000001/retry"),
                &other.token,
                json!({}),
            )
            .await,
        server.delete(&path, &other.token).await,
        server.get("/v1/webhooks/not-an-id", &org.token).await,
    ] {
        assert_problem(status_json(response).await, 404, "not_found");
    }

    // Validation, field by field; huge inputs are refused.
    let long_url = format!("https://hooks.example.com/{}", "a".repeat(3000));
    let many_events: Vec<String> = (0..5000).map(|i| format!("agent.created{i}")).collect();
    for (body, field) in [
        (json!({ "events": ["*"] }), "url"),
        (json!({ "url": "https://hooks.example.com/" }), "events"),
        (
            json!({ "url": "https://hooks.example.com/", "events": [] }),
            "events",
        ),
        (
            json!({ "url": "https://hooks.example.com/", "events": ["agent.*"] }),
            "events",
        ),
        (
            json!({ "url": "https://hooks.example.com/", "events": ["webhook.test"] }),
            "events",
        ),
        (json!({ "url": long_url, "events": ["*"] }), "url"),
        (
            json!({ "url": "https://hooks.example.com/", "events": many_events }),
            "events",
        ),
        (
            json!({ "url": "https://hooks.example.com/", "events": ["*"], "description": "x".repeat(501) }),
            "description",
        ),
        (
            json!({ "url": "https://hooks.example.com/", "events": ["*"], "secret": "mine" }),
            "secret",
        ),
    ] {
        let (status, problem) =
            status_json(server.post("/v1/webhooks", &org.token, body).await).await;
        assert!(matches!(status, 400 | 413), "{field}: {status} {problem}");
        if status == 400 {
            assert!(problem.to_string().contains(field), "{field}: {problem}");
        }
    }

    // Updates change what is sent; null cannot clear a required field.
    let (status, updated) = status_json(
        server
            .patch(
                &path,
                &org.token,
                json!({ "events": ["*"], "description": null }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["events"], json!(["*"]));
    assert_eq!(updated["description"], Value::Null);
    assert_problem(
        status_json(
            server
                .patch(&path, &org.token, json!({ "url": null }))
                .await,
        )
        .await,
        400,
        "invalid_field",
    );
    assert_problem(
        status_json(
            server
                .patch(&path, &org.token, json!({ "url": "https://10.1.1.1/" }))
                .await,
        )
        .await,
        400,
        "url_not_allowed",
    );
    assert_problem(
        status_json(server.patch(&path, &org.token, json!({})).await).await,
        400,
        "invalid_field",
    );

    // Rotation: during the grace period both secrets sign; without one, only the new one.
    let (status, rotated) = status_json(
        server
            .post(
                &format!("{path}/rotate"),
                &org.token,
                json!({ "grace_period_seconds": 3600 }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert!(rotated["previous_secret_expires_at"].is_string());
    receiver
        .endpoint("/a", &[&secret, &new_secret], &[200])
        .await;
    status_json(
        server
            .post(&format!("{path}/test"), &org.token, json!({}))
            .await,
    )
    .await;
    let received = receiver.wait_for("/a", 1).await;
    assert_eq!(
        received[0]["verified_by"],
        json!([0, 1]),
        "{:#}",
        received[0]
    );
    assert_eq!(
        received[0]["webhook_signature"]
            .as_str()
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    let (_, rotated) = status_json(
        server
            .post(
                &format!("{path}/rotate"),
                &org.token,
                json!({ "grace_period_seconds": 0 }),
            )
            .await,
    )
    .await;
    let newest = rotated["secret"].as_str().unwrap().to_owned();
    receiver
        .endpoint("/a", &[&new_secret, &newest], &[200])
        .await;
    status_json(
        server
            .post(&format!("{path}/test"), &org.token, json!({}))
            .await,
    )
    .await;
    let received = receiver.wait_for("/a", 2).await;
    assert_eq!(received[1]["verified_by"], json!([1]), "{:#}", received[1]);

    // Scopes: an agent's token reads nothing here.
    let agent = server.agent_with_secret(&org, "bot", &["read:docs"]).await;
    let agent_token = server
        .token(&agent.client_id, &agent.client_secret, &[])
        .await;
    assert_problem(
        status_json(server.get("/v1/webhooks", &agent_token).await).await,
        403,
        "insufficient_scope",
    );
    assert_problem(
        dispatch(&server, &agent_token, None).await,
        403,
        "insufficient_scope",
    );

    // Deleting removes it and its log; every write was audited.
    assert_eq!(server.delete(&path, &org.token).await.status(), 204);
    assert_problem(
        status_json(server.get(&path, &org.token).await).await,
        404,
        "not_found",
    );
    let (_, events) = status_json(server.get("/v1/audit/events?limit=200", &org.token).await).await;
    let actions: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "webhook.created",
        "webhook.updated",
        "webhook.secret_rotated",
        "webhook.test_sent",
        "webhook.deleted",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
    assert!(!events.to_string().contains("whsec_"));
}

#[tokio::test]
async fn an_organization_has_at_most_twenty_subscriptions_even_when_racing() {
    let server = Server::start_with(DRIVEN).await;
    let org = server.bootstrap("acme").await;
    let mut creations = tokio::task::JoinSet::new();
    for i in 0..25 {
        let request = server
            .http
            .post(server.url("/v1/webhooks"))
            .bearer_auth(&org.token)
            .json(&json!({ "url": format!("https://hooks{i}.example.com/in"), "events": ["*"] }));
        creations.spawn(async move { status_json(request.send().await.unwrap()).await });
    }
    let outcomes = creations.join_all().await;
    let created = outcomes.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(created, 20, "{outcomes:?}");
    for (status, body) in outcomes.into_iter().filter(|(s, _)| *s != 201) {
        assert_problem((status, body), 403, "webhook_limit_exceeded");
    }
}

#[tokio::test]
async fn the_dispatch_endpoint_needs_a_dispatcher_and_development_mode_for_time() {
    let operator = OPERATOR;
    let server = Server::start_with(&[("AGENTIDP_WEBHOOK_DISPATCH_TOKEN", operator)]).await;
    let org = server.bootstrap("acme").await;
    let anonymous = server
        .http
        .post(server.url("/v1/webhooks/dispatch"))
        .send()
        .await
        .unwrap();
    assert_problem(status_json(anonymous).await, 401, "invalid_token");
    assert_problem(
        dispatch(&server, "operator-dispatch-tokeN", None).await,
        401,
        "invalid_token",
    );
    let (status, report) = dispatch(&server, operator, None).await;
    assert_eq!(status, 200, "{report}");
    // The operator's dispatch also runs the audit upkeep: the organization's log just grew.
    assert_eq!(
        report,
        json!({
            "attempted": 0, "delivered": 0, "retrying": 0, "failed": 0, "disabled": 0,
            "audit": { "checkpoints": 1, "removed": 0 },
        })
    );
    let (status, own) = dispatch(&server, &org.token, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        own,
        json!({ "attempted": 0, "delivered": 0, "retrying": 0, "failed": 0, "disabled": 0 })
    );
    // Moving the dispatcher's clock is for development only.
    let problem = assert_problem(
        dispatch(&server, operator, Some(4_000_000_000)).await,
        400,
        "invalid_field",
    );
    assert_eq!(problem["field"], "at");
}

/// Two servers on one database (libSQL over HTTP, as edge instances share Turso): their
/// dispatchers race for the same deliveries, and each is attempted once.
#[tokio::test]
async fn dispatchers_of_two_servers_on_one_database_attempt_each_delivery_once() {
    let redis = agentidp_tests::RedisServer::start();
    let standins = agentidp_tests::DevBackends::start(&redis.url);
    let mut env = DRIVEN.to_vec();
    env.extend([
        ("AGENTIDP_DATABASE_URL", standins.hrana_url.as_str()),
        ("AGENTIDP_DATABASE_AUTH_TOKEN", standins.token.as_str()),
        ("UPSTASH_REDIS_REST_URL", standins.upstash_url.as_str()),
        ("UPSTASH_REDIS_REST_TOKEN", standins.token.as_str()),
        ("AGENTIDP_WEBHOOK_DISPATCH_TOKEN", OPERATOR),
    ]);
    let first = Server::start_with(&env).await;
    let second = Server::start_with(&env).await;
    let org = first.bootstrap("acme").await;
    let dispatchers: Vec<(&Server, &str)> = (0..6)
        .map(|i| (if i % 2 == 0 { &first } else { &second }, OPERATOR))
        .collect();
    race(&[&first, &second], &org, 20, &dispatchers).await;
}

/// Trust policies announce their creation and deletion, and an agent a workflow registers through
/// a policy is announced like any other, counted against the organization's tier cap on that path
/// too.
#[tokio::test]
async fn trust_policies_and_agents_registered_through_them_are_announced() {
    use agentidp_tests::oidc::{exchange, Grant, Issuer};
    let issuer = Issuer::start().await;
    let federation = issuer.server_env();
    let mut env: Vec<(&str, &str)> = DRIVEN.to_vec();
    env.extend(federation.iter().map(|(k, v)| (*k, v.as_str())));
    // A free tier of two agents, so the registration path meets the tier's cap.
    env.push(("AGENTIDP_MAX_AGENTS_PER_ORG", "2"));
    let server = Server::start_with(&env).await;
    let receiver = Receiver::start();
    let org = server.bootstrap("acme").await;
    let (_, secret) = subscribe(&server, &org, &receiver.url("/policies"), &["*"]).await;
    receiver.endpoint("/policies", &[&secret], &[200]).await;

    let (status, policy) = status_json(
        server
            .post(
                "/v1/oidc/trust-policies",
                &org.token,
                json!({ "provider": "github", "repository": "octo/*", "branch": "main",
                        "allow_registration": true, "scopes": ["deploy:read"] }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 201, "{policy}");
    let policy_id = policy["id"].as_str().unwrap().to_owned();
    let token = issuer.mint(&issuer.claims("octo/app", "111"));
    let (status, body) = exchange(&server, Grant::TokenExchange, &token, &[]).await;
    assert_eq!(status, 200, "{body}");
    let registration = body["access_token"].as_str().unwrap().to_owned();
    let register = |name: &'static str| {
        let (server, registration) = (&server, registration.clone());
        async move {
            status_json(
                server
                    .post(
                        "/v1/agents",
                        &registration,
                        json!({ "name": name, "agent_type": "ci" }),
                    )
                    .await,
            )
            .await
        }
    };
    let (status, first) = register("ci-1").await;
    assert_eq!(status, 201, "{first}");
    let (status, second) = register("ci-2").await;
    assert_eq!(status, 201, "{second}");
    // The policy allows ten; the free tier's cap of two stops the third.
    assert_problem(register("ci-3").await, 403, "free_tier_limit_exceeded");
    let path = format!("/v1/oidc/trust-policies/{policy_id}");
    assert_eq!(server.delete(&path, &org.token).await.status(), 200);

    let expected = [
        "trust_policy.created",
        "agent.created",
        "agent.created",
        "trust_policy.deleted",
    ];
    let received = receiver.wait_for("/policies", expected.len()).await;
    assert_all_verified(&received);
    let mut got = types(&received);
    got.sort();
    let mut wanted: Vec<String> = expected.iter().map(|t| (*t).to_owned()).collect();
    wanted.sort();
    assert_eq!(got, wanted);
    for delivery in &received {
        let data = &delivery["body"]["data"];
        assert_eq!(data["org_id"], org.id, "{data}");
        match delivery["body"]["type"].as_str().unwrap() {
            "agent.created" => {
                assert_eq!(data["trust_policy_id"], policy_id.as_str(), "{data}");
                assert!([&first["id"], &second["id"]].contains(&&data["agent"]["id"]));
            }
            _ => assert_eq!(data["trust_policy"]["id"], policy_id.as_str(), "{data}"),
        }
    }
}

/// Sends `request` twenty times at once; the answers in no particular order.
async fn twenty_at_once(request: reqwest::RequestBuilder) -> Vec<(u16, Value)> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let request = request.try_clone().unwrap();
        tasks.spawn(async move { status_json(request.send().await.unwrap()).await });
    }
    tasks.join_all().await
}

fn count_audited(events: &Value, action: &str) -> usize {
    events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .count()
}

#[tokio::test]
async fn a_secret_rotation_keeps_the_grace_it_promised_and_one_of_twenty_wins() {
    let receiver = Receiver::start();
    let server = Server::start_with(DRIVEN).await;
    let org = server.bootstrap("acme").await;
    let (id, original) = subscribe(&server, &org, &receiver.url("/r"), &["*"]).await;
    let rotate = format!("/v1/webhooks/{id}/rotate");

    // Twenty rotations at once, each with the default grace period: one wins, the others are
    // refused rather than hand out secrets that never sign anything.
    let request = server
        .http
        .post(server.url(&rotate))
        .bearer_auth(&org.token)
        .json(&json!({}));
    let answers = twenty_at_once(request).await;
    let winners: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
        let problem = assert_problem((*status, body.clone()), 409, body["code"].as_str().unwrap());
        assert!(
            ["conflict", "grace_period_running"].contains(&problem["code"].as_str().unwrap()),
            "{problem}"
        );
    }
    let second = winners[0]["secret"].as_str().unwrap().to_owned();

    // Inside the grace period another one would drop the original at once: refused, with or
    // without an explicit grace period of its own.
    for body in [json!({}), json!({ "grace_period_seconds": 60 })] {
        assert_problem(
            status_json(server.post(&rotate, &org.token, body).await).await,
            409,
            "grace_period_running",
        );
    }
    receiver.endpoint("/r", &[&original, &second], &[200]).await;
    server
        .post(&format!("/v1/webhooks/{id}/test"), &org.token, json!({}))
        .await;
    let received = receiver.wait_for("/r", 1).await;
    assert_eq!(
        received[0]["verified_by"],
        json!([0, 1]),
        "{:#}",
        received[0]
    );

    // Ending the grace period early has to be asked for.
    let (status, rotated) = status_json(
        server
            .post(&rotate, &org.token, json!({ "grace_period_seconds": 0 }))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let newest = rotated["secret"].as_str().unwrap().to_owned();
    receiver
        .endpoint("/r", &[&original, &second, &newest], &[200])
        .await;
    server
        .post(&format!("/v1/webhooks/{id}/test"), &org.token, json!({}))
        .await;
    let received = receiver.wait_for("/r", 2).await;
    assert_eq!(received[1]["verified_by"], json!([2]), "{:#}", received[1]);
    let (_, events) = status_json(server.get("/v1/audit/events?limit=200", &org.token).await).await;
    assert_eq!(count_audited(&events, "webhook.secret_rotated"), 2);
}

#[tokio::test]
async fn twenty_deletes_or_retries_at_once_act_once() {
    // Trust policies need a trusted issuer.
    let issuer = agentidp_tests::oidc::Issuer::start().await;
    let federation = issuer.server_env();
    let mut env: Vec<(&str, &str)> = DRIVEN.to_vec();
    env.extend(federation.iter().map(|(k, v)| (*k, v.as_str())));
    let receiver = Receiver::start();
    let server = Server::start_with(&env).await;
    let org = server.bootstrap("acme").await;

    // A failed delivery: eight attempts against a receiver answering 500.
    let (id, secret) = subscribe(&server, &org, &receiver.url("/down"), &["*"]).await;
    receiver.endpoint("/down", &[&secret], &[500]).await;
    server
        .post(&format!("/v1/webhooks/{id}/test"), &org.token, json!({}))
        .await;
    let mut delivery = wait_for_attempts(&server, &org, &id, 1).await;
    for _ in 0..7 {
        let at = second_at_or_after(&delivery["next_attempt_at"]);
        dispatch(&server, &org.token, Some(at)).await;
        delivery = deliveries(&server, &org, &id).await[0].clone();
    }
    assert_eq!(delivery["status"], "failed", "{delivery:#}");
    let retry = format!(
        "/v1/webhooks/{id}/deliveries/{}/retry",
        delivery["id"].as_str().unwrap()
    );
    let request = server
        .http
        .post(server.url(&retry))
        .bearer_auth(&org.token)
        .json(&json!({}));
    let answers = twenty_at_once(request).await;
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == 202).count(),
        1,
        "{answers:?}"
    );
    for (status, body) in answers.into_iter().filter(|(s, _)| *s != 202) {
        assert_problem((status, body), 409, "delivery_not_failed");
    }

    // Deleting the subscription, then a trust policy, twenty times at once.
    let request = server
        .http
        .delete(server.url(&format!("/v1/webhooks/{id}")))
        .bearer_auth(&org.token);
    let answers = twenty_at_once(request).await;
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == 204).count(),
        1,
        "{answers:?}"
    );
    for (status, body) in answers.into_iter().filter(|(s, _)| *s != 204) {
        assert_problem((status, body), 404, "not_found");
    }
    let (status, policy) = status_json(
        server
            .post(
                "/v1/oidc/trust-policies",
                &org.token,
                json!({ "provider": "github", "repository": "octo/app", "branch": "main",
                        "allow_registration": true }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 201, "{policy}");
    let request = server
        .http
        .delete(server.url(&format!(
            "/v1/oidc/trust-policies/{}",
            policy["id"].as_str().unwrap()
        )))
        .bearer_auth(&org.token);
    let answers = twenty_at_once(request).await;
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == 200).count(),
        1,
        "{answers:?}"
    );
    for (status, body) in answers.into_iter().filter(|(s, _)| *s != 200) {
        assert_problem((status, body), 404, "not_found");
    }

    let (_, events) = status_json(server.get("/v1/audit/events?limit=200", &org.token).await).await;
    for action in [
        "webhook.delivery_retried",
        "webhook.deleted",
        "trust_policy.deleted",
    ] {
        assert_eq!(count_audited(&events, action), 1, "{action}");
    }
}
