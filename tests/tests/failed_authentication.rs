//! Failed client authentication is limited before any work is done, per client address and per
//! client, and reaches the audit trail as bounded summaries rather than one write per guess.

use std::time::Duration;

use agentidp_tests::reqwest::{Client, Response};
use agentidp_tests::{client_from, status_json, Server};
use serde_json::Value;

/// `client_credentials` with `client_secret_basic`, sent by `http` (so from its address).
async fn token_request(server: &Server, http: &Client, client_id: &str, secret: &str) -> Response {
    http.post(server.url("/oauth2/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

async fn oauth_error(response: Response) -> (u16, String) {
    let (status, body) = status_json(response).await;
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

fn unauthorized() -> (u16, String) {
    (401, "invalid_client".to_owned())
}

/// 429 (RFC 6585) as RFC 6749's `temporarily_unavailable`, never the device flow's `slow_down`.
fn too_many() -> (u16, String) {
    (429, "temporarily_unavailable".to_owned())
}

#[tokio::test]
async fn a_limited_address_is_refused_before_its_secret_is_checked() {
    let server = Server::start_with(&[("AGENTIDP_RATE_LIMIT_IP_PER_MINUTE", "3")]).await;
    let org = server.bootstrap("acme").await;
    let attacker = client_from([127, 0, 0, 9]);
    for guess in 1..=3 {
        let response = token_request(&server, &attacker, &org.client_id, "wrong").await;
        assert_eq!(oauth_error(response).await, unauthorized(), "guess {guess}");
    }
    let refused = token_request(&server, &attacker, &org.client_id, "wrong").await;
    assert!(refused.headers().get("retry-after").is_some());
    assert_eq!(oauth_error(refused).await, too_many());
    // A 429 says nothing about the secret: the right one is refused the same way from there.
    let right = token_request(&server, &attacker, &org.client_id, &org.client_secret).await;
    assert_eq!(oauth_error(right).await, too_many());
    // Introspection and revocation authenticate the same way, so they are refused too.
    let introspect = attacker
        .post(server.url("/oauth2/introspect"))
        .basic_auth(&org.client_id, Some(&org.client_secret))
        .form(&[("token", org.token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(introspect).await, too_many());
    // Another address is not limited by this one's failures.
    let elsewhere = client_from([127, 0, 0, 10]);
    let response = token_request(&server, &elsewhere, &org.client_id, &org.client_secret).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_spent_client_budget_refuses_the_failing_addresses_not_the_client() {
    let server =
        Server::start_with(&[("AGENTIDP_RATE_LIMIT_CLIENT_FAILURES_PER_MINUTE", "5")]).await;
    let org = server.bootstrap("acme").await;
    let agent = server.agent_with_secret(&org, "target", &[]).await;
    for address in 20..25u8 {
        let http = client_from([127, 0, 0, address]);
        let response = token_request(&server, &http, &agent.client_id, "x").await;
        assert_eq!(
            oauth_error(response).await,
            unauthorized(),
            "from .{address}"
        );
    }
    let reported = failure_events(&server, &org.token).await.len();
    // The budget is spent: an address that has been failing is refused, the right secret too.
    let failing = client_from([127, 0, 0, 20]);
    let right = token_request(&server, &failing, &agent.client_id, &agent.client_secret).await;
    assert!(right.headers().get("retry-after").is_some());
    assert_eq!(oauth_error(right).await, too_many());
    // An address that has not been failing still gets its credentials checked: the right secret
    // gets a token, a wrong one the usual 401, which is neither tallied nor audited any more.
    let clean = client_from([127, 0, 0, 30]);
    let right = token_request(&server, &clean, &agent.client_id, &agent.client_secret).await;
    assert_eq!(right.status(), 200);
    let wrong = token_request(
        &server,
        &client_from([127, 0, 0, 31]),
        &agent.client_id,
        "x",
    )
    .await;
    assert_eq!(oauth_error(wrong).await, unauthorized());
    assert_eq!(failure_events(&server, &org.token).await.len(), reported);
    // ... and that address has now been failing.
    let again = token_request(
        &server,
        &client_from([127, 0, 0, 31]),
        &agent.client_id,
        &agent.client_secret,
    )
    .await;
    assert_eq!(oauth_error(again).await, too_many());
}

/// The flood that locked a client out: about 360 wrong secrets for its id from eight addresses
/// (each within its own budget, the client's spent), then the client's right secret from a
/// clean address gets a token, and the flooding addresses are still refused.
#[tokio::test]
async fn a_flood_of_wrong_secrets_from_eight_addresses_does_not_lock_the_client_out() {
    // The production defaults (the harness raises every limit out of the way).
    let server = Server::start_with(&[
        ("AGENTIDP_RATE_LIMIT_IP_PER_MINUTE", "60"),
        ("AGENTIDP_RATE_LIMIT_CLIENT_FAILURES_PER_MINUTE", "300"),
    ])
    .await;
    let org = server.bootstrap("acme").await;
    let agent = server.agent_with_secret(&org, "target", &[]).await;
    let flooders: Vec<Client> = (100..108u8).map(|a| client_from([127, 0, 0, a])).collect();
    let mut answers = std::collections::BTreeMap::new();
    for guess in 0..360 {
        let http = &flooders[guess % flooders.len()];
        let response = token_request(&server, http, &agent.client_id, "guess").await;
        *answers.entry(oauth_error(response).await).or_insert(0) += 1;
    }
    // 300 failures spend the client's budget; the rest are refused at their failing addresses.
    assert_eq!(answers.get(&unauthorized()), Some(&300), "{answers:?}");
    assert_eq!(answers.get(&too_many()), Some(&60), "{answers:?}");
    let clean = client_from([127, 0, 0, 200]);
    let response = token_request(&server, &clean, &agent.client_id, &agent.client_secret).await;
    assert_eq!(response.status(), 200);
    for http in &flooders {
        let response = token_request(&server, http, &agent.client_id, &agent.client_secret).await;
        assert_eq!(oauth_error(response).await, too_many());
    }
}

#[tokio::test]
async fn the_failure_budget_recovers_with_the_window() {
    let server = Server::start_with(&[
        ("AGENTIDP_RATE_LIMIT_CLIENT_FAILURES_PER_MINUTE", "2"),
        ("AGENTIDP_RATE_LIMIT_WINDOW_SECONDS", "2"),
    ])
    .await;
    let org = server.bootstrap("acme").await;
    let http = &server.http;
    for _ in 0..2 {
        let response = token_request(&server, http, &org.client_id, "wrong").await;
        assert_eq!(response.status(), 401);
    }
    let refused = token_request(&server, http, &org.client_id, &org.client_secret).await;
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    server.advance_clock(Duration::from_millis(2_100));
    let response = token_request(&server, http, &org.client_id, &org.client_secret).await;
    assert_eq!(response.status(), 200);
}

async fn failure_events(server: &Server, token: &str) -> Vec<Value> {
    let path = "/v1/audit/events?limit=200&action=authentication.failed";
    let (status, body) = status_json(server.get(path, token).await).await;
    assert_eq!(status, 200, "{body}");
    let mut events = body["data"].as_array().unwrap().clone();
    events.reverse();
    events
}

#[tokio::test]
async fn failures_reach_the_audit_trail_as_bounded_summaries() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let agent = server.agent_with_secret(&org, "target", &[]).await;
    let addresses: Vec<Client> = (40..44u8).map(|a| client_from([127, 0, 0, a])).collect();
    for guess in 0..40 {
        let http = &addresses[guess % addresses.len()];
        let response = token_request(&server, http, &agent.client_id, "guess").await;
        assert_eq!(response.status(), 401);
    }
    let events = failure_events(&server, &org.token).await;
    // One event when failures start, then one each time the count doubles: 1, 2, 4, 8, 16, 32.
    let counts: Vec<u64> = events
        .iter()
        .map(|e| e["details"]["count"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(counts, [1, 2, 4, 8, 16, 32], "{events:#?}");
    let last = &events[events.len() - 1];
    assert_eq!(last["agent_id"], agent.id.as_str());
    assert_eq!(last["outcome"], "failure");
    let details = &last["details"];
    assert_eq!(details["client_id"], agent.client_id.as_str());
    assert!(
        details["first_failure_at"].as_str().unwrap()
            <= details["last_failure_at"].as_str().unwrap()
    );
    let ips: Vec<&str> = details["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| ip.as_str().unwrap())
        .collect();
    assert!(ips.len() >= 2 && ips.contains(&"127.0.0.40"), "{ips:?}");
    assert_eq!(
        details["reasons"],
        serde_json::json!(["wrong client secret"])
    );
    // The chain still verifies, and the secret itself never reaches the trail.
    let (_, verdict) = status_json(server.get("/v1/audit/verify", &org.token).await).await;
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert!(!serde_json::to_string(&events).unwrap().contains("guess"));
}

#[tokio::test]
async fn an_unknown_client_id_spends_its_failure_budget_like_a_known_one() {
    let server =
        Server::start_with(&[("AGENTIDP_RATE_LIMIT_CLIENT_FAILURES_PER_MINUTE", "3")]).await;
    let org = server.bootstrap("acme").await;
    let unknown = "agt_0000000000000000000000000000";
    // The same work, so the same answers: three failures spend the budget, then a failing
    // address is refused and a clean one is checked, whether or not the id exists.
    for (client_id, clean) in [(org.client_id.as_str(), 50u8), (unknown, 51)] {
        for address in 40..43u8 {
            let http = client_from([127, 0, 0, address]);
            let response = token_request(&server, &http, client_id, "wrong").await;
            assert_eq!(oauth_error(response).await, unauthorized(), "{client_id}");
        }
        let http = client_from([127, 0, 0, 40]);
        let response = token_request(&server, &http, client_id, "wrong").await;
        assert_eq!(oauth_error(response).await, too_many(), "{client_id}");
        let http = client_from([127, 0, 0, clean]);
        let response = token_request(&server, &http, client_id, "wrong").await;
        assert_eq!(oauth_error(response).await, unauthorized(), "{client_id}");
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Unknown client ids and known ones with a wrong secret take the same time to refuse. This
/// cannot flake on a busy machine: the two kinds are sent in alternating pairs over one
/// connection, so load from anything else falls on both alike; medians of 300 ignore the few
/// slow outliers (a kept sample, an audit summary written at a reporting point); and the bound,
/// a third of the median plus half a millisecond, is far above the noise between two medians of
/// the same request while still catching a path that skips a store round trip (about a tenth
/// of a debug build's request).
#[tokio::test]
async fn unknown_and_known_clients_are_refused_in_the_same_time() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let unknown = "agt_ffffffffffffffffffffffffffffffff";
    let http = client_from([127, 0, 0, 60]);
    let mut known_times = Vec::new();
    let mut unknown_times = Vec::new();
    for round in 0..340 {
        let order = if round % 2 == 0 {
            [(org.client_id.as_str(), true), (unknown, false)]
        } else {
            [(unknown, false), (org.client_id.as_str(), true)]
        };
        for (client_id, is_known) in order {
            let started = std::time::Instant::now();
            let response = token_request(&server, &http, client_id, "wrong-secret").await;
            let elapsed = started.elapsed();
            assert_eq!(oauth_error(response).await, unauthorized());
            // The first rounds warm up connections and caches.
            if round >= 40 {
                if is_known {
                    known_times.push(elapsed);
                } else {
                    unknown_times.push(elapsed);
                }
            }
        }
    }
    let (known, unknown) = (median(known_times), median(unknown_times));
    let bound = known.max(unknown) / 3 + Duration::from_micros(500);
    let difference = known.abs_diff(unknown);
    eprintln!("medians: known {known:?}, unknown {unknown:?}, bound {bound:?}");
    assert!(
        difference <= bound,
        "medians differ by {difference:?} (known {known:?}, unknown {unknown:?}, bound {bound:?})"
    );
}
