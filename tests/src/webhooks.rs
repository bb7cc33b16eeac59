//! Webhook test support: a receiver on loopback (`tests/python/webhook_receiver.py`, which verifies
//! every delivery with the `standardwebhooks` package from PyPI, independent of the server's
//! signing, and answers as the test scripts it; needs the test virtualenv, `bash scripts/test.sh
//! setup`), and the calls the tests make on subscriptions, the delivery log and the dispatcher.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::{json, Value};

use crate::{free_port, status_json, workspace_root, Org, Server};

/// The virtualenv's Python: `AGENTIDP_PYTHON`, or `target/pyenv/bin/python`.
pub fn python() -> PathBuf {
    if let Ok(path) = std::env::var("AGENTIDP_PYTHON") {
        return PathBuf::from(path);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    let python = target.join("pyenv").join("bin").join("python");
    assert!(
        python.exists(),
        "{} is missing: run `bash scripts/test.sh setup` once (it creates the virtualenv with \
         tests/python/requirements.txt), or set AGENTIDP_PYTHON",
        python.display()
    );
    python
}

/// A running receiver; killed on drop.
pub struct Receiver {
    pub port: u16,
    http: Client,
    child: Option<Child>,
}

impl Receiver {
    pub fn start() -> Receiver {
        Receiver::start_on(free_port())
    }

    /// On a given port, e.g. again where a killed receiver listened.
    pub fn start_on(port: u16) -> Receiver {
        let mut child = Command::new(python())
            .arg(workspace_root().join("tests/python/webhook_receiver.py"))
            .args(["--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the webhook receiver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("listening"),
            "the webhook receiver did not start (is standardwebhooks installed?): {line:?}"
        );
        Receiver {
            port,
            http: Client::new(),
            child: Some(child),
        }
    }

    /// The receiver's URL for `path`, as a subscription names it.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Configures `path`: the secrets it verifies with, and the statuses it answers in order (the
    /// last one repeating).
    pub async fn endpoint(&self, path: &str, secrets: &[&str], statuses: &[u16]) {
        self.configure(json!({ "path": path, "secrets": secrets, "statuses": statuses }))
            .await;
    }

    /// Full control: `hang_seconds`, `location` and the rest (see the script).
    pub async fn configure(&self, config: Value) {
        let response = self
            .http
            .post(format!("http://127.0.0.1:{}/_control/endpoint", self.port))
            .json(&config)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    /// Every request received on `path`, oldest first.
    pub async fn received(&self, path: &str) -> Vec<Value> {
        self.http
            .get(format!("http://127.0.0.1:{}/_received", self.port))
            .query(&[("path", path)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until `path` has received at least `count` requests.
    pub async fn wait_for(&self, path: &str, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let received = self.received(path).await;
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "{path} received {} of {count} deliveries: {received:#?}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the receiver, as an outage would: connections are refused until it starts again.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Asserts every delivery of a list was verified by the receiver (by any of its secrets).
pub fn assert_all_verified(received: &[Value]) {
    for delivery in received {
        assert!(
            !delivery["verified_by"].as_array().unwrap().is_empty(),
            "not verified by standardwebhooks: {delivery:#}"
        );
    }
}

/// The configuration of a native server whose webhooks the tests drive: loopback receivers allowed,
/// the dispatcher's clock movable, no periodic dispatcher racing the test's own calls.
pub const DRIVEN: &[(&str, &str)] = &[
    // Fixed, so tokens outlive a restart on another port.
    ("AGENTIDP_ISSUER", "http://agentidp.test"),
    ("AGENTIDP_DEV_WEBHOOKS_ALLOW_LOOPBACK", "on"),
    ("AGENTIDP_DEV_TIME_TRAVEL", "on"),
    ("AGENTIDP_WEBHOOK_DISPATCH_INTERVAL_SECONDS", "0"),
];

/// Subscribes `url` to `events`; returns the subscription and its secret.
pub async fn subscribe(server: &Server, org: &Org, url: &str, events: &[&str]) -> (String, String) {
    let (status, body) = status_json(
        server
            .post(
                "/v1/webhooks",
                &org.token,
                json!({ "url": url, "events": events }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (
        body["id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

/// The newest page of a subscription's delivery log.
pub async fn deliveries(server: &Server, org: &Org, subscription: &str) -> Vec<Value> {
    let (status, body) = status_json(
        server
            .get(
                &format!("/v1/webhooks/{subscription}/deliveries?limit=200"),
                &org.token,
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().clone()
}

/// Waits until the log shows a delivery with at least `attempts` attempts (the delivery right after
/// a request runs after its answer), and returns it.
pub async fn wait_for_attempts(
    server: &Server,
    org: &Org,
    subscription: &str,
    attempts: usize,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = deliveries(server, org, subscription).await;
        if let Some(delivery) = log
            .iter()
            .find(|d| d["attempts"].as_array().unwrap().len() >= attempts)
        {
            return delivery.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no delivery reached {attempts} attempts: {log:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `POST /v1/webhooks/dispatch`, as of `at` (Unix seconds) when given.
pub async fn dispatch(server: &Server, token: &str, at: Option<i64>) -> (u16, Value) {
    let path = match at {
        Some(at) => format!("/v1/webhooks/dispatch?at={at}"),
        None => "/v1/webhooks/dispatch".to_owned(),
    };
    let response = server
        .http
        .post(server.url(&path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    status_json(response).await
}

/// An RFC 3339 timestamp of the API in Unix milliseconds.
pub fn millis(timestamp: &Value) -> i64 {
    let text = timestamp
        .as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {timestamp}"));
    let parsed =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).unwrap()
}

/// The first whole second at or after a timestamp: where a dispatch `at` finds it due.
pub fn second_at_or_after(timestamp: &Value) -> i64 {
    (millis(timestamp) + 999).div_euclid(1000)
}
