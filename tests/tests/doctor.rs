//! `agentidp doctor` passes against a working deployment and fails, saying what to do, against a
//! broken one.

use agentidp_tests::cli::Cli;
use agentidp_tests::{free_port, DevBackends, RedisServer, Server};

#[tokio::test]
async fn doctor_passes_against_a_working_deployment() {
    let server = Server::from_env().await;
    let run = Cli::new(&server.base).run(&["doctor", "-o", "json"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let report = run.json();
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["metadata", "jwks", "health", "token round trip", "routes"]
    );
}

#[tokio::test]
async fn doctor_says_what_is_wrong_with_a_broken_deployment() {
    // Nothing listening.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let run = Cli::new(&nowhere).run(&["doctor", "-o", "table"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stdout.contains("FAIL") && run.stdout.contains("--url"),
        "{run:#?}"
    );
    // Issuing for another URL than the one it is reached at.
    let misnamed = Server::start_with(&[("AGENTIDP_ISSUER", "https://id.elsewhere.test")]).await;
    let run = Cli::new(&misnamed.base).run(&["doctor", "-o", "table"]);
    assert_ne!(run.code, 0);
    assert!(run.stdout.contains("AGENTIDP_ISSUER"), "{run:#?}");
}

/// The stores behind a deployment, as the edge has them: libSQL over HTTP and Upstash REST (the
/// stand-ins over the embedded engine and a real redis-server).
fn stores() -> (DevBackends, RedisServer) {
    let redis = RedisServer::start();
    (DevBackends::start(&redis.url), redis)
}

#[tokio::test]
async fn doctor_names_the_secret_of_a_store_that_refuses_it() {
    let (standins, _redis) = stores();
    let server = Server::start_with(&[
        ("AGENTIDP_DATABASE_URL", standins.hrana_url.as_str()),
        ("AGENTIDP_DATABASE_AUTH_TOKEN", standins.token.as_str()),
        ("UPSTASH_REDIS_REST_URL", standins.upstash_url.as_str()),
        (
            "UPSTASH_REDIS_REST_TOKEN",
            "a-secret-never-set-on-the-store",
        ),
    ])
    .await;
    let run = Cli::new(&server.base).run(&["doctor", "-o", "table"]);
    assert_ne!(run.code, 0, "{run:#?}");
    let health = run
        .stdout
        .lines()
        .find(|line| line.contains("health"))
        .unwrap_or_default();
    assert!(
        health.starts_with("FAIL")
            && health.contains("key_value")
            && health.contains("UPSTASH_REDIS_REST_TOKEN"),
        "{run:#?}"
    );
    assert!(!health.contains("database:"), "{run:#?}");
}

#[tokio::test]
async fn doctor_says_where_to_look_when_the_database_stops_answering() {
    let (standins, _redis) = stores();
    let server = Server::start_with(&[
        ("AGENTIDP_DATABASE_URL", standins.hrana_url.as_str()),
        ("AGENTIDP_DATABASE_AUTH_TOKEN", standins.token.as_str()),
        ("UPSTASH_REDIS_REST_URL", standins.upstash_url.as_str()),
        ("UPSTASH_REDIS_REST_TOKEN", standins.token.as_str()),
    ])
    .await;
    let working = Cli::new(&server.base).run(&["doctor", "-o", "table"]);
    assert_eq!(working.code, 0, "{working:#?}");
    drop(standins);
    let run = Cli::new(&server.base).run(&["doctor", "-o", "table"]);
    assert_ne!(run.code, 0, "{run:#?}");
    let line = |name: &str| {
        run.stdout
            .lines()
            .find(|line| line.contains(name))
            .unwrap_or_default()
            .to_owned()
    };
    let health = line("health");
    assert!(
        health.starts_with("FAIL") && health.contains("AGENTIDP_DATABASE_URL"),
        "{run:#?}"
    );
    assert!(line("token round trip").starts_with("FAIL"), "{run:#?}");
}
