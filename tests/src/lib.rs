//! Test support: start the real `agentidp` binary on a loopback port with its own data directory,
//! and talk to it over HTTP the way users do.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::{Client, Response};
use serde_json::{json, Value};

pub mod audit_log;
pub mod cli;
pub mod conformance;
pub mod fault_proxy;

pub use reqwest;

pub mod oidc;
pub mod pages;
pub mod webhooks;

/// A request path for a route of the route table: each `{parameter}` becomes a well-formed,
/// unknown id.
pub fn concrete(route: &agentidp_shared::http::routes::Route) -> String {
    route
        .path
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "00000000-0000-4000-8000-000000000001"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}
pub use serde_json;

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The server binary: `AGENTIDP_BIN`, or the workspace's debug build (built once if missing).
pub fn server_binary() -> PathBuf {
    workspace_binary("AGENTIDP_BIN", "agentidp")
}

/// The developer tools' binary (the Turso and Upstash stand-ins): `AGENTIDP_DEV_BIN`, or the
/// workspace's debug build next to the server's (built once if missing).
pub fn dev_binary() -> PathBuf {
    workspace_binary("AGENTIDP_DEV_BIN", "agentidp-dev")
}

fn workspace_binary(variable: &str, package: &str) -> PathBuf {
    if let Ok(path) = std::env::var(variable) {
        return PathBuf::from(path);
    }
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "agentidp", "-p", "agentidp-dev"])
            .current_dir(workspace_root())
            .status()
            .expect("running cargo build");
        assert!(
            status.success(),
            "building agentidp and agentidp-dev failed"
        );
    });
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    target.join("debug").join(package)
}

/// The key-encryption key of servers started on a shared remote database.
const SHARED_DATABASE_KEK: &str =
    "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";

fn fresh_data_dir() -> PathBuf {
    std::env::temp_dir().join(format!(
        "agentidp-test-{}-{}",
        std::process::id(),
        free_port()
    ))
}

/// A loopback port free at the time of asking, and never handed out before in this process: the
/// kernel may offer a port again until a server binds it, and two servers started in parallel on
/// one port would leave a test talking to the other's.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("no free loopback port");
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// A running `agentidp serve`; killed and its data directory removed on drop.
pub struct Server {
    pub base: String,
    pub data_dir: PathBuf,
    pub http: Client,
    /// `None` for a deployment this process did not start (`Server::at`).
    child: Option<Child>,
}

impl Server {
    /// A deployment someone else started (the edge builds in workerd or wasmtime, behind one URL).
    pub async fn at(base: &str) -> Server {
        let server = Server {
            base: base.trim_end_matches('/').to_owned(),
            data_dir: PathBuf::new(),
            http: Client::new(),
            child: None,
        };
        server.wait_ready().await;
        server
    }

    /// The deployment at `AGENTIDP_BASE_URL` if set, else a fresh native server.
    pub async fn from_env() -> Server {
        Server::from_env_with(&[]).await
    }

    /// Like [`Server::from_env`]; `env` configures the native server when this starts one (an
    /// external deployment must have been started with the same configuration).
    pub async fn from_env_with(env: &[(&str, &str)]) -> Server {
        match std::env::var("AGENTIDP_BASE_URL") {
            Ok(base) if !base.is_empty() => Server::at(&base).await,
            _ => Server::start_with(env).await,
        }
    }

    /// Whether this is a server this process started (natively), not an external deployment.
    pub fn is_native(&self) -> bool {
        self.child.is_some()
    }

    /// Whether this is the Workers build (in workerd): `scripts/test-edge.sh` names the runtime
    /// it runs the scenario against in `AGENTIDP_EDGE_RUNTIME`.
    pub fn is_workers(&self) -> bool {
        !self.is_native() && std::env::var("AGENTIDP_EDGE_RUNTIME").is_ok_and(|r| r == "workers")
    }

    pub async fn start() -> Server {
        Server::start_with(&[]).await
    }

    pub async fn start_with(env: &[(&str, &str)]) -> Server {
        Server::start_in(fresh_data_dir(), env).await
    }

    /// Starts a server on an existing data directory (restarts, second instances).
    pub async fn start_in(data_dir: PathBuf, env: &[(&str, &str)]) -> Server {
        Server::launch(data_dir, env, None).await
    }

    /// Starts a server allowed at most `nofile` open file descriptors (through util-linux
    /// `prlimit`, which execs the server in place), for descriptor-exhaustion tests.
    pub async fn start_with_fd_limit(env: &[(&str, &str)], nofile: u32) -> Server {
        Server::launch(fresh_data_dir(), env, Some(nofile)).await
    }

    async fn launch(data_dir: PathBuf, env: &[(&str, &str)], nofile: Option<u32>) -> Server {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut command = match nofile {
            Some(n) => {
                let mut command = Command::new("prlimit");
                command.arg(format!("--nofile={n}")).arg(server_binary());
                command
            }
            None => Command::new(server_binary()),
        };
        command
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(&data_dir)
            .env_remove("AGENTIDP_ISSUER")
            .env_remove("AGENTIDP_KEY_ENCRYPTION_KEY")
            .env_remove("AGENTIDP_SIGNUP")
            .env("AGENTIDP_LOG", "warn")
            .env("AGENTIDP_DB_SYNCHRONOUS", "normal")
            // Tests make many requests quickly; rate-limit tests set low limits explicitly.
            .env("RATE_LIMIT_PER_MINUTE", "100000")
            .env("AGENTIDP_RATE_LIMIT_CLIENT_PER_MINUTE", "100000")
            .env("AGENTIDP_RATE_LIMIT_IP_PER_MINUTE", "100000")
            .env("AGENTIDP_RATE_LIMIT_CLIENT_FAILURES_PER_MINUTE", "100000")
            // Debug builds on a busy machine: a 50 ms KV deadline would fail revocation checks
            // closed (503) under bursts; outage tests set a short one explicitly.
            .env("AGENTIDP_KV_TIMEOUT_MS", "2000")
            // Tests move the server's time with `advance_clock` rather than sleeping.
            .env("AGENTIDP_DEV_CLOCK_FILE", clock_file(&data_dir))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        // A test naming a public-looking issuer still creates its organizations freely, as a
        // deployment that opened sign-up does; the sign-up tests set `AGENTIDP_SIGNUP` themselves.
        let named = |name: &str| env.iter().any(|(k, _)| *k == name);
        if named("AGENTIDP_ISSUER") && !named("AGENTIDP_SIGNUP") {
            command.env("AGENTIDP_SIGNUP", "open");
        }
        // Servers sharing a remote database are one deployment: one key-encryption key, as every
        // instance of a real one is given (each data directory's own key file would differ).
        if named("AGENTIDP_DATABASE_URL") && !named("AGENTIDP_KEY_ENCRYPTION_KEY") {
            command.env("AGENTIDP_KEY_ENCRYPTION_KEY", SHARED_DATABASE_KEK);
        }
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("starting agentidp");
        let server = Server {
            base,
            data_dir,
            http: Client::new(),
            child: Some(child),
        };
        server.wait_ready().await;
        server
    }

    /// Moves this server's clock ahead by `by` (the development clock seam,
    /// `AGENTIDP_DEV_CLOCK_FILE`): what a test would otherwise sleep for. Returns the total offset.
    pub fn advance_clock(&self, by: Duration) -> Duration {
        assert!(
            self.child.is_some(),
            "only a server this test started has a clock it can move"
        );
        let file = clock_file(&self.data_dir);
        let current: u64 = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        let total = current + u64::try_from(by.as_millis()).unwrap();
        // Written whole and renamed into place, so the server never reads half a number.
        let partial = file.with_extension("partial");
        std::fs::create_dir_all(&self.data_dir).unwrap();
        std::fs::write(&partial, total.to_string()).unwrap();
        std::fs::rename(&partial, &file).unwrap();
        Duration::from_millis(total)
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = self.http.get(self.url("/health")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("agentidp did not become ready at {}", self.base);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("agentidp.db")
    }

    /// Stops the server with SIGTERM and waits for it, keeping the data directory.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args([
                "-TERM",
                &self
                    .child
                    .as_ref()
                    .expect("a server this test started")
                    .id()
                    .to_string(),
            ])
            .status();
        self.child
            .as_mut()
            .expect("a server this test started")
            .wait()
            .expect("waiting for agentidp")
    }

    /// Sends SIGTERM and waits at most `limit` for the process to exit; `None` if it is still
    /// running then (dropping the server kills it).
    pub fn stop_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let child = self.child.as_mut().expect("a server this test started");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().expect("waiting for agentidp") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server with SIGKILL (no cleanup at all, as a crash or an OOM kill would) and
    /// waits for it, keeping the data directory.
    pub fn kill(&mut self) {
        let child = self.child.as_mut().expect("a server this test started");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .expect("a server this test started")
            .id()
    }

    /// The published JWKS.
    pub async fn jwks(&self) -> Value {
        self.http
            .get(self.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Response {
        self.http
            .patch(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.http
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// `client_credentials` with `client_secret_basic`; `extra` adds form parameters.
    pub async fn token_request(
        &self,
        client_id: &str,
        secret: &str,
        extra: &[(&str, &str)],
    ) -> Response {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        self.http
            .post(self.url("/oauth2/token"))
            .basic_auth(client_id, Some(secret))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// An access token, asserting the request succeeds.
    pub async fn token(&self, client_id: &str, secret: &str, extra: &[(&str, &str)]) -> String {
        let response = self.token_request(client_id, secret, extra).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "token request failed: {body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Creates an organization and returns it with an admin token.
    pub async fn bootstrap(&self, name: &str) -> Org {
        let response = self
            .http
            .post(self.url("/v1/orgs"))
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        let client_id = body["admin_credential"]["client_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let client_secret = body["admin_credential"]["client_secret"]
            .as_str()
            .unwrap()
            .to_owned();
        let token = self.token(&client_id, &client_secret, &[]).await;
        Org {
            id: body["organization"]["id"].as_str().unwrap().to_owned(),
            client_id,
            client_secret,
            token,
        }
    }

    /// Registers an agent (with `capabilities`) and a client-secret credential for it. Management
    /// scopes among the capabilities are allowed explicitly, as the API requires.
    pub async fn agent_with_secret(
        &self,
        org: &Org,
        name: &str,
        capabilities: &[&str],
    ) -> AgentClient {
        let mut body =
            json!({ "name": name, "agent_type": "assistant", "capabilities": capabilities });
        if capabilities.iter().any(|c| is_management_scope(c)) {
            body["allow_management_scopes"] = json!(true);
        }
        let (status, agent) = status_json(self.post("/v1/agents", &org.token, body).await).await;
        assert_eq!(status, 201, "creating an agent failed: {agent}");
        let id = agent["id"].as_str().unwrap().to_owned();
        let response = self
            .post(
                &format!("/v1/agents/{id}/credentials"),
                &org.token,
                json!({}),
            )
            .await;
        assert_eq!(response.status(), 201);
        let credential: Value = response.json().await.unwrap();
        AgentClient {
            id,
            credential_id: credential["id"].as_str().unwrap().to_owned(),
            client_id: credential["client_id"].as_str().unwrap().to_owned(),
            client_secret: credential["client_secret"].as_str().unwrap().to_owned(),
        }
    }
}

impl Server {
    /// Introspects `token` (RFC 7662) as the client `caller` (client id, secret), asserting 200.
    pub async fn introspect(&self, caller: (&str, &str), token: &str) -> Value {
        let response = self
            .http
            .post(self.url("/oauth2/introspect"))
            .basic_auth(caller.0, Some(caller.1))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(response).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Registers an agent from a JSON body, asserting it is created.
    pub async fn create_agent(&self, org: &Org, body: Value) -> Value {
        let (status, agent) = status_json(self.post("/v1/agents", &org.token, body).await).await;
        assert_eq!(status, 201, "creating an agent failed: {agent}");
        agent
    }

    /// A request with an arbitrary body and content type, for malformed-input tests.
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        self.http
            .request(method, self.url(path))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }
}

/// Where a test server's development clock offset lives: beside its database, so a restart on the
/// same data directory keeps the time the test moved it to.
fn clock_file(data_dir: &Path) -> PathBuf {
    data_dir.join("dev-clock-offset-ms")
}

/// Whether a scope belongs to the management API (reserved: an agent gets it only when allowed
/// explicitly).
pub fn is_management_scope(scope: &str) -> bool {
    agentidp_shared::domain::scopes::is_management(scope)
}

/// An HTTP client whose connections come from `ip`, a loopback address such as `127.0.0.7`: the
/// server sees a different client address per client, as it would for callers across the network.
pub fn client_from(ip: [u8; 4]) -> Client {
    Client::builder()
        .local_address(std::net::IpAddr::from(ip))
        .build()
        .expect("an HTTP client bound to a loopback address")
}

/// Asserts a problem document (RFC 9457) with this status and `code`, and returns its body.
pub fn assert_problem(response: (u16, Value), status: u16, code: &str) -> Value {
    let (actual, body) = response;
    assert_eq!(
        (actual, body["code"].as_str()),
        (status, Some(code)),
        "{body}"
    );
    body
}

impl Drop for Server {
    fn drop(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

pub struct Org {
    pub id: String,
    pub client_id: String,
    pub client_secret: String,
    pub token: String,
}

pub struct AgentClient {
    pub id: String,
    pub credential_id: String,
    pub client_id: String,
    pub client_secret: String,
}

/// A response's status and JSON body (problem documents included).
pub async fn status_json(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// Decodes a JWT's header and payload without verifying it (for assertions on claims).
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = token.split('.');
    let mut next = || -> Value {
        serde_json::from_slice(&engine.decode(parts.next().unwrap()).unwrap()).unwrap()
    };
    let header = next();
    let payload = next();
    (header, payload)
}

/// Opens the server's database file directly, as an attacker with disk access could.
pub async fn open_db(path: &Path) -> libsql::Connection {
    let db = libsql::Builder::new_local(path).build().await.unwrap();
    let conn = db.connect().unwrap();
    conn.execute("PRAGMA busy_timeout=5000", ()).await.ok();
    conn
}

/// A throwaway `redis-server` on a free loopback port, without persistence; killed on drop.
pub struct RedisServer {
    pub port: u16,
    pub url: String,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting redis-server (apt-get install redis-server)");
        wait_for_port(port, "redis-server");
        RedisServer {
            port,
            url: format!("redis://127.0.0.1:{port}"),
            child: Some(child),
        }
    }

    /// Kills the server now, as an outage would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs `redis-cli` against this server and returns its trimmed output.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("running redis-cli");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `agentidp-dev backends`: the Upstash REST stand-in over a Redis and the libSQL-over-HTTP (Hrana)
/// stand-in over the embedded engine; killed on drop.
pub struct DevBackends {
    pub upstash_url: String,
    pub hrana_url: String,
    pub token: String,
    data_dir: PathBuf,
    child: Child,
}

impl DevBackends {
    pub fn start(redis_url: &str) -> DevBackends {
        let (upstash, hrana) = (free_port(), free_port());
        let data_dir =
            std::env::temp_dir().join(format!("agentidp-standin-{}-{upstash}", std::process::id()));
        let token = "standin-token".to_owned();
        let child = Command::new(dev_binary())
            .arg("backends")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--hrana-listen", &format!("127.0.0.1:{hrana}")])
            .args(["--upstash-listen", &format!("127.0.0.1:{upstash}")])
            .args(["--redis-url", redis_url, "--token", &token])
            .env("AGENTIDP_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting agentidp-dev backends");
        wait_for_port(upstash, "the Upstash stand-in");
        wait_for_port(hrana, "the Hrana stand-in");
        DevBackends {
            upstash_url: format!("http://127.0.0.1:{upstash}"),
            hrana_url: format!("http://127.0.0.1:{hrana}"),
            token,
            data_dir,
            child,
        }
    }
}

impl Drop for DevBackends {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not start listening on port {port}");
}
