//! Billing end to end: Stripe events signed in the test exactly as Stripe signs them (HMAC-SHA256
//! keyed with the endpoint secret over `"<t>.<raw body>"`, hex, in `Stripe-Signature`) move an
//! organization between tiers; the new limits apply on its next request.

use agentidp_tests::webhooks::{assert_all_verified, subscribe, Receiver, DRIVEN};
use agentidp_tests::{assert_problem, status_json, Org, Server};
use serde_json::{json, Value};

const SECRET: &str = "whsec_test_5Z0kTq3vBrZ2";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Stripe's scheme: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "t.body")>`.
fn stripe_signature(secret: &str, t: i64, body: &str) -> String {
    let mac = hmac_sha256::HMAC::mac(format!("{t}.{body}").as_bytes(), secret.as_bytes());
    format!("t={t},v1={}", hex(&mac))
}

fn event(id: &str, event_type: &str, created: i64, object: Value) -> String {
    json!({
        "id": id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "type": event_type,
        "livemode": false,
        "data": { "object": object },
    })
    .to_string()
}

fn checkout(org: &Org, tier: Option<&str>) -> Value {
    let mut session = json!({
        "id": "cs_test_1",
        "object": "checkout.session",
        "client_reference_id": org.id,
        "customer": "cus_123",
        "subscription": "sub_123",
        "mode": "subscription",
        "payment_status": "paid",
        "metadata": {},
    });
    if let Some(tier) = tier {
        session["metadata"]["tier"] = json!(tier);
    }
    session
}

async fn post(server: &Server, signature: Option<String>, body: &str) -> (u16, Value) {
    let mut request = server
        .http
        .post(server.url("/v1/billing/stripe"))
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_owned());
    if let Some(signature) = signature {
        request = request.header("stripe-signature", signature);
    }
    status_json(request.send().await.unwrap()).await
}

async fn signed(server: &Server, body: &str) -> (u16, Value) {
    post(server, Some(stripe_signature(SECRET, now(), body)), body).await
}

async fn tier(server: &Server, org: &Org) -> Value {
    let (status, usage) = status_json(server.get("/v1/usage", &org.token).await).await;
    assert_eq!(status, 200, "{usage}");
    usage
}

fn audited(events: &Value, action: &str) -> Vec<Value> {
    events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .cloned()
        .collect()
}

#[tokio::test]
async fn without_a_secret_the_endpoint_is_not_there() {
    let server = Server::start().await;
    let body = event("evt_1", "invoice.paid", now(), json!({}));
    let (status, problem) = signed(&server, &body).await;
    assert_problem((status, problem), 404, "billing_not_configured");
}

#[tokio::test]
async fn a_checkout_lifts_the_limits_on_the_next_request_once() {
    let mut env = DRIVEN.to_vec();
    env.extend([
        ("STRIPE_WEBHOOK_SECRET", SECRET),
        ("RATE_LIMIT_PER_MINUTE", "6"),
        ("AGENTIDP_MAX_AGENTS_PER_ORG", "1"),
    ]);
    let server = Server::start_with(&env).await;
    let receiver = Receiver::start();
    let org = server.bootstrap("acme").await;
    let other = server.bootstrap("other").await;
    let (_, secret) = subscribe(
        &server,
        &org,
        &receiver.url("/billing"),
        &["organization.tier_changed"],
    )
    .await;
    receiver.endpoint("/billing", &[&secret], &[200]).await;

    // Free: one agent, six requests a minute (the subscription above was the first).
    server
        .create_agent(&org, json!({ "name": "one", "agent_type": "worker" }))
        .await;
    let (status, problem) = status_json(
        server
            .post(
                "/v1/agents",
                &org.token,
                json!({ "name": "two", "agent_type": "worker" }),
            )
            .await,
    )
    .await;
    let problem = assert_problem((status, problem), 403, "free_tier_limit_exceeded");
    assert_eq!(problem["limit"], 1);
    let usage = tier(&server, &org).await;
    assert_eq!(usage["tier"], "free");
    assert_eq!(usage["agents"]["limit"], 1);
    assert_eq!(usage["rate_limit"]["limit"], 6);
    let mut last = 0;
    while last != 429 {
        last = server.get("/v1/agents", &org.token).await.status().as_u16();
    }

    // Stripe reports the checkout: pro from the very next request.
    let body = event(
        "evt_checkout_1",
        "checkout.session.completed",
        now(),
        checkout(&org, None),
    );
    let (status, outcome) = signed(&server, &body).await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(
        outcome,
        json!({ "outcome": "applied", "org_id": org.id, "from": "free", "to": "pro" })
    );
    let response = server.get("/v1/agents", &org.token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["ratelimit-limit"], "1000");
    server
        .create_agent(&org, json!({ "name": "two", "agent_type": "worker" }))
        .await;
    let usage = tier(&server, &org).await;
    assert_eq!(usage["tier"], "pro");
    assert_eq!(usage["agents"]["limit"], 1000);
    // Only that organization.
    assert_eq!(tier(&server, &other).await["tier"], "free");

    // A replay, even twenty at once, is a no-op.
    let mut replays = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let request = server
            .http
            .post(server.url("/v1/billing/stripe"))
            .header("stripe-signature", stripe_signature(SECRET, now(), &body))
            .body(body.clone());
        replays.spawn(async move { status_json(request.send().await.unwrap()).await });
    }
    for (status, outcome) in replays.join_all().await {
        assert_eq!((status, outcome), (200, json!({ "outcome": "duplicate" })));
    }

    // Audited once, announced once to the organization's subscriber.
    let (_, events) = status_json(server.get("/v1/audit/events?limit=200", &org.token).await).await;
    let changes = audited(&events, "org.tier_changed");
    assert_eq!(changes.len(), 1, "{events}");
    assert_eq!(changes[0]["actor"], "stripe");
    assert_eq!(changes[0]["details"]["stripe_event_id"], "evt_checkout_1");
    assert_eq!(changes[0]["details"]["to"], "pro");
    let received = receiver.wait_for("/billing", 1).await;
    assert_all_verified(&received);
    assert_eq!(received.len(), 1);
    let announced = &received[0]["body"];
    assert_eq!(announced["type"], "organization.tier_changed");
    assert_eq!(
        announced["data"],
        json!({ "org_id": org.id, "tier": "pro", "previous_tier": "free" })
    );
    let (_, verdict) = status_json(server.get("/v1/audit/verify", &org.token).await).await;
    assert_eq!(verdict["valid"], true, "{verdict}");
}

#[tokio::test]
async fn subscription_events_move_the_organization_they_were_bought_for() {
    let mut env = DRIVEN.to_vec();
    env.extend([
        ("STRIPE_WEBHOOK_SECRET", SECRET),
        ("AGENTIDP_STRIPE_PRICE_TIERS", "price_enterprise=enterprise"),
    ]);
    let server = Server::start_with(&env).await;
    let org = server.bootstrap("acme").await;
    let created = now() - 100;
    let body = event(
        "evt_1",
        "checkout.session.completed",
        created,
        checkout(&org, Some("pro")),
    );
    assert_eq!(signed(&server, &body).await.1["outcome"], "applied");

    // Upgraded by price: the organization is found by the subscription recorded at checkout.
    let subscription = json!({
        "id": "sub_123", "object": "subscription", "customer": "cus_123", "status": "active",
        "metadata": {}, "items": { "data": [ { "price": { "id": "price_enterprise" } } ] },
    });
    let body = event(
        "evt_2",
        "customer.subscription.updated",
        created + 10,
        subscription,
    );
    let (_, outcome) = signed(&server, &body).await;
    assert_eq!(outcome["to"], "enterprise", "{outcome}");
    let usage = tier(&server, &org).await;
    assert_eq!(usage["rate_limit"]["limit"], Value::Null);
    assert_eq!(usage["agents"]["limit"], Value::Null);

    // An older event delivered late changes nothing.
    let stale = json!({ "id": "sub_123", "customer": "cus_123", "status": "canceled" });
    let body = event(
        "evt_0",
        "customer.subscription.updated",
        created - 50,
        stale,
    );
    assert_eq!(
        signed(&server, &body).await.1,
        json!({ "outcome": "out_of_order" })
    );
    assert_eq!(tier(&server, &org).await["tier"], "enterprise");

    // Deleted: back to free, its only subscription ended.
    let deleted = json!({ "id": "sub_123", "customer": "cus_123", "status": "canceled" });
    let body = event(
        "evt_3",
        "customer.subscription.deleted",
        created + 20,
        deleted,
    );
    let (_, outcome) = signed(&server, &body).await;
    assert_eq!(outcome["to"], "free", "{outcome}");
    assert_eq!(tier(&server, &org).await["tier"], "free");

    // Events for nobody we know, or of types we do not act on: 200, nothing changes.
    for (id, event_type, object) in [
        ("evt_4", "invoice.paid", json!({ "customer": "cus_123" })),
        (
            "evt_5",
            "customer.subscription.updated",
            json!({ "id": "sub_unknown", "customer": "cus_unknown", "status": "active" }),
        ),
        (
            "evt_6",
            "checkout.session.completed",
            json!({ "client_reference_id": "00000000-0000-4000-8000-000000000009" }),
        ),
        (
            "evt_7",
            "checkout.session.completed",
            json!({ "client_reference_id": org.id, "payment_status": "unpaid" }),
        ),
    ] {
        let (status, outcome) = signed(&server, &event(id, event_type, created + 30, object)).await;
        assert_eq!(
            (status, outcome["outcome"].as_str()),
            (200, Some("ignored")),
            "{id}: {outcome}"
        );
    }
    assert_eq!(tier(&server, &org).await["tier"], "free");
    let (_, events) = status_json(server.get("/v1/audit/events?limit=200", &org.token).await).await;
    assert_eq!(audited(&events, "org.tier_changed").len(), 3);
}

#[tokio::test]
async fn bad_stale_or_missing_signatures_change_nothing() {
    let server = Server::start_with(&[("STRIPE_WEBHOOK_SECRET", SECRET)]).await;
    let org = server.bootstrap("acme").await;
    let body = event(
        "evt_1",
        "checkout.session.completed",
        now(),
        checkout(&org, Some("pro")),
    );
    let t = now();
    let tampered = body.replace("\"pro\"", "\"enterprise\"");
    for (signature, sent) in [
        (None, body.clone()),
        (Some("t=abc,v1=00".to_owned()), body.clone()),
        (Some(format!("t={t}")), body.clone()),
        (
            Some(stripe_signature("whsec_someone_else", t, &body)),
            body.clone(),
        ),
        (Some(stripe_signature(SECRET, t, &body)), tampered),
        (Some(stripe_signature(SECRET, t - 301, &body)), body.clone()),
        // Beyond the tolerance even when the server's clock has moved on since `t` was read.
        (Some(stripe_signature(SECRET, t + 330, &body)), body.clone()),
    ] {
        let (status, problem) = post(&server, signature.clone(), &sent).await;
        assert_problem((status, problem), 400, "invalid_signature");
    }
    assert_eq!(tier(&server, &org).await["tier"], "free");

    // During a secret roll Stripe sends a v1 per secret: one matching is enough.
    let good = stripe_signature(SECRET, t, &body);
    let rolled = format!(
        "{},{}",
        stripe_signature("whsec_old_secret", t, &body),
        good.split(',').nth(1).unwrap()
    );
    let (status, outcome) = post(&server, Some(rolled), &body).await;
    assert_eq!(
        (status, outcome["outcome"].clone()),
        (200, json!("applied")),
        "{outcome}"
    );
    // Within the tolerance a signed event is accepted; a valid signature on garbage is refused.
    let garbage = "{\"not\": \"an event\"}";
    let (status, problem) =
        post(&server, Some(stripe_signature(SECRET, t, garbage)), garbage).await;
    assert_eq!(status, 400, "{problem}");
}

/// A paid checkout of `subscription` for `org`, buying `tier`.
fn checkout_of(org: &Org, subscription: &str, tier: &str) -> Value {
    json!({
        "id": format!("cs_{subscription}"), "object": "checkout.session",
        "client_reference_id": org.id, "customer": "cus_several", "subscription": subscription,
        "mode": "subscription", "payment_status": "paid", "metadata": { "tier": tier },
    })
}

fn subscription(id: &str, status: &str, tier: &str) -> Value {
    json!({
        "id": id, "object": "subscription", "customer": "cus_several", "status": status,
        "metadata": { "tier": tier },
    })
}

#[tokio::test]
async fn the_highest_active_subscription_sets_the_tier() {
    let server = Server::start_with(&[("STRIPE_WEBHOOK_SECRET", SECRET)]).await;
    let org = server.bootstrap("acme").await;
    let other = server.bootstrap("other").await;
    let t = now() - 1000;
    let mut sent = 0;
    let mut send = |event_type: &str, created: i64, object: Value| {
        sent += 1;
        let body = event(&format!("evt_{sent}"), event_type, created, object);
        let server = &server;
        async move { signed(server, &body).await }
    };

    let (_, outcome) = send(
        "checkout.session.completed",
        t,
        checkout_of(&org, "sub_1", "pro"),
    )
    .await;
    assert_eq!(outcome["to"], "pro", "{outcome}");
    // Upgrade by a second subscription.
    let (_, outcome) = send(
        "checkout.session.completed",
        t + 10,
        checkout_of(&org, "sub_2", "enterprise"),
    )
    .await;
    assert_eq!(outcome["to"], "enterprise", "{outcome}");
    // The superseded subscription ends: nothing changes.
    let (status, outcome) = send(
        "customer.subscription.deleted",
        t + 20,
        subscription("sub_1", "canceled", "pro"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        outcome,
        json!({ "outcome": "unchanged", "org_id": org.id, "tier": "enterprise" })
    );
    assert_eq!(tier(&server, &org).await["tier"], "enterprise");
    // An older update of the ended one, delivered late, brings nothing back.
    let (_, outcome) = send(
        "customer.subscription.updated",
        t + 5,
        subscription("sub_1", "active", "pro"),
    )
    .await;
    assert_eq!(outcome, json!({ "outcome": "out_of_order" }));

    // An event naming another organization than the one checkout recorded is refused, even for
    // the tier it already has.
    let mut contradicting = subscription("sub_2", "active", "enterprise");
    contradicting["metadata"]["org_id"] = json!(other.id);
    let (status, outcome) = send("customer.subscription.updated", t + 25, contradicting).await;
    assert_eq!(
        (status, outcome["outcome"].as_str()),
        (200, Some("refused")),
        "{outcome}"
    );
    assert_eq!(tier(&server, &other).await["tier"], "free");
    let mut contradicting = subscription("sub_2", "canceled", "enterprise");
    contradicting["metadata"]["org_id"] = json!(other.id);
    let (_, outcome) = send("customer.subscription.deleted", t + 26, contradicting).await;
    assert_eq!(outcome["outcome"], "refused", "{outcome}");
    assert_eq!(tier(&server, &org).await["tier"], "enterprise");

    // Downgrade, then cancellation of the last active one.
    let (_, outcome) = send(
        "customer.subscription.updated",
        t + 30,
        subscription("sub_2", "active", "pro"),
    )
    .await;
    assert_eq!(
        (outcome["from"].as_str(), outcome["to"].as_str()),
        (Some("enterprise"), Some("pro")),
        "{outcome}"
    );
    let (_, outcome) = send(
        "customer.subscription.deleted",
        t + 40,
        subscription("sub_2", "canceled", "pro"),
    )
    .await;
    assert_eq!(outcome["to"], "free", "{outcome}");
    assert_eq!(tier(&server, &org).await["tier"], "free");
    assert_eq!(tier(&server, &other).await["tier"], "free");

    let (_, events) = status_json(server.get("/v1/audit/events?limit=200", &org.token).await).await;
    let moves: Vec<_> = audited(&events, "org.tier_changed")
        .iter()
        .map(|e| e["details"]["to"].clone())
        .collect();
    assert_eq!(
        moves,
        [
            json!("free"),
            json!("pro"),
            json!("enterprise"),
            json!("pro")
        ]
    );
    let (_, events) =
        status_json(server.get("/v1/audit/events?limit=200", &other.token).await).await;
    assert!(audited(&events, "org.tier_changed").is_empty(), "{events}");
}
