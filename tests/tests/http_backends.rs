//! The edge's storage path, natively: the server on libSQL over HTTP (Hrana) and Upstash REST, both
//! served by `agentidp dev-backends` over the embedded engine and a real redis-server. This is the
//! code the Workers and Spin builds run (optimistic audit-chain commits, guarded atomic batches).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agentidp_tests::{server_binary, status_json, Server};
use serde_json::{json, Value};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// redis-server and the stand-ins, killed on drop.
struct Backends {
    children: Vec<Child>,
    dir: std::path::PathBuf,
    hrana: String,
    upstash: String,
}

impl Backends {
    async fn start() -> Backends {
        let dir = std::env::temp_dir().join(format!(
            "agentidp-backends-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let redis_port = free_port();
        let redis = Command::new("redis-server")
            .args([
                "--port",
                &redis_port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed by scripts/test.sh");
        let (hrana_port, upstash_port) = (free_port(), free_port());
        std::thread::sleep(Duration::from_millis(200));
        let standins = Command::new(server_binary())
            .args(["dev-backends", "--token", "t", "--data-dir"])
            .arg(dir.join("db"))
            .args(["--hrana-listen", &format!("127.0.0.1:{hrana_port}")])
            .args(["--upstash-listen", &format!("127.0.0.1:{upstash_port}")])
            .args(["--redis-url", &format!("redis://127.0.0.1:{redis_port}")])
            .env("AGENTIDP_LOG", "warn")
            .spawn()
            .unwrap();
        let backends = Backends {
            children: vec![redis, standins],
            dir,
            hrana: format!("http://127.0.0.1:{hrana_port}"),
            upstash: format!("http://127.0.0.1:{upstash_port}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client
                .get(format!("{}/v3", backends.hrana))
                .send()
                .await
                .is_ok()
            {
                return backends;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("dev-backends did not start");
    }

    async fn server(&self, extra: &[(&str, &str)]) -> Server {
        let mut env = vec![
            ("AGENTIDP_DATABASE_URL", self.hrana.as_str()),
            ("AGENTIDP_DATABASE_AUTH_TOKEN", "t"),
            ("UPSTASH_REDIS_REST_URL", self.upstash.as_str()),
            ("UPSTASH_REDIS_REST_TOKEN", "t"),
        ];
        env.extend_from_slice(extra);
        Server::start_with(&env).await
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

use agentidp_tests::reqwest;

#[tokio::test]
async fn concurrent_writes_keep_one_valid_audit_chain_over_http() {
    let backends = Backends::start().await;
    let server = backends.server(&[]).await;
    let org = server.bootstrap("edge-chain").await;
    let mut writes = Vec::new();
    for i in 0..30 {
        let (http, url, token) = (
            server.http.clone(),
            server.url("/v1/agents"),
            org.token.clone(),
        );
        writes.push(tokio::spawn(async move {
            let body = json!({ "name": format!("worker-{i}"), "agent_type": "worker" });
            http.post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for write in writes {
        assert_eq!(write.await.unwrap(), 201);
    }
    let (status, verdict) = status_json(server.get("/v1/audit/verify", &org.token).await).await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["valid"], true, "{verdict}");
    // org.created + 30 agent.created + the admin's token.issued, with no gap.
    assert_eq!(verdict["events_checked"], 32, "{verdict}");
}

#[tokio::test]
async fn guarded_batches_are_atomic_over_http() {
    let backends = Backends::start().await;
    let server = backends
        .server(&[("AGENTIDP_MAX_AGENTS_PER_ORG", "3")])
        .await;
    let org = server.bootstrap("edge-guard").await;
    let mut writes = Vec::new();
    for i in 0..8 {
        let (http, url, token) = (
            server.http.clone(),
            server.url("/v1/agents"),
            org.token.clone(),
        );
        writes.push(tokio::spawn(async move {
            let body = json!({ "name": format!("worker-{i}"), "agent_type": "worker" });
            http.post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for write in writes {
        statuses.push(write.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 403).count(),
        5,
        "{statuses:?}"
    );
    let (_, list) = status_json(server.get("/v1/agents?limit=50", &org.token).await).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 3);
    // A refused creation left no audit event behind either.
    let (_, events) = status_json(
        server
            .get("/v1/audit/events?action=agent.created", &org.token)
            .await,
    )
    .await;
    assert_eq!(events["data"].as_array().unwrap().len(), 3, "{events}");
}

#[tokio::test]
async fn revocation_and_replay_checks_go_through_upstash() {
    let backends = Backends::start().await;
    let first = backends
        .server(&[("AGENTIDP_ISSUER", "http://agentidp.test")])
        .await;
    let second = backends
        .server(&[("AGENTIDP_ISSUER", "http://agentidp.test")])
        .await;
    let org = first.bootstrap("edge-revocation").await;
    let agent = first
        .agent_with_secret(&org, "reader", &["agents:read"])
        .await;
    let token = first
        .token(&agent.client_id, &agent.client_secret, &[])
        .await;
    // Both instances share the database and the key set, so either accepts the token.
    assert_eq!(second.get("/v1/agents", &token).await.status(), 200);
    let response = first
        .http
        .post(first.url("/oauth2/revoke"))
        .basic_auth(&agent.client_id, Some(&agent.client_secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Revoked on one instance, refused by the other.
    let (status, body): (u16, Value) = status_json(second.get("/v1/agents", &token).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_token"))
    );
}
