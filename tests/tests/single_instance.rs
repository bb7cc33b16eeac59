//! One server per data directory: a second `agentidp serve` on a directory in use is refused
//! with a clear message and the first keeps working; `keys rotate` still runs beside it; a
//! killed server's directory is free again at once.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agentidp_tests::{server_binary, status_json, Server};
use serde_json::json;

const ENV: [(&str, &str); 1] = [("AGENTIDP_ISSUER", "http://agentidp.test")];

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `agentidp serve` on `data_dir`, its stderr captured.
fn spawn_serve(data_dir: &std::path::Path, port: u16) -> Child {
    Command::new(server_binary())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data_dir)
        .envs(ENV)
        .env("AGENTIDP_LOG", "warn")
        .env("AGENTIDP_DB_SYNCHRONOUS", "normal")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for the process to exit, or for it to answer `/health` (it started after all).
async fn exit_or_ready(child: &mut Child, port: u16) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let http = agentidp_tests::reqwest::Client::new();
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        let health = http
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await;
        if health.is_ok_and(|r| r.status().is_success()) {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the second server neither exited nor became ready");
}

#[tokio::test]
async fn a_second_server_on_a_data_directory_in_use_is_refused() {
    let mut first = Server::start_with(&ENV).await;
    let org = first.bootstrap("rolling").await;
    let created = first
        .post(
            "/v1/agents",
            &org.token,
            json!({ "name": "before", "agent_type": "worker" }),
        )
        .await;
    assert_eq!(created.status(), 201);

    let port = free_port();
    let mut second = spawn_serve(&first.data_dir, port);
    let exit = exit_or_ready(&mut second, port).await;
    if exit.is_none() {
        // It started: let it extend the organization's audit chain, as a rolling restart would.
        let http = agentidp_tests::reqwest::Client::new();
        let response = http
            .post(format!("http://127.0.0.1:{port}/v1/agents"))
            .bearer_auth(&org.token)
            .json(&json!({ "name": "from-the-second", "agent_type": "worker" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    // Whatever the second did, the first keeps answering 2xx for that organization.
    for i in 0..3 {
        let (status, body) = status_json(
            first
                .post(
                    "/v1/agents",
                    &org.token,
                    json!({ "name": format!("after-{i}"), "agent_type": "worker" }),
                )
                .await,
        )
        .await;
        assert_eq!(status, 201, "the first server failed: {body}");
    }
    let (status, verified) = status_json(first.get("/v1/audit/verify", &org.token).await).await;
    assert_eq!(
        (status, verified["valid"].as_bool()),
        (200, Some(true)),
        "{verified}"
    );

    let Some(exit) = exit else {
        let _ = second.kill();
        let _ = second.wait();
        panic!("a second server started on a data directory in use");
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(second.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!exit.success(), "the second server should exit non-zero");
    assert!(
        stderr.contains(&first.data_dir.display().to_string()) && stderr.contains("in use"),
        "the refusal should name the data directory: {stderr}"
    );

    // Key rotation is a short-lived writer of its own and stays possible beside the server.
    let rotate = Command::new(server_binary())
        .args(["keys", "rotate", "--data-dir"])
        .arg(&first.data_dir)
        .output()
        .unwrap();
    assert!(
        rotate.status.success(),
        "{}",
        String::from_utf8_lossy(&rotate.stderr)
    );

    // A killed server holds nothing: the OS releases its lock with the process.
    first.kill();
    let replacement = Server::start_in(first.data_dir.clone(), &ENV).await;
    let token = replacement
        .token(&org.client_id, &org.client_secret, &[])
        .await;
    assert_eq!(replacement.get("/v1/agents", &token).await.status(), 200);
}
