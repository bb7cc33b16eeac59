//! `agentidp doctor` passes against a working deployment and fails, saying what to do, against a
//! broken one.

use agentidp_tests::cli::Cli;
use agentidp_tests::{free_port, Server};

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
