//! Fault injection end to end, on the real server: the embedded database locked by another
//! process; libSQL over HTTP slow, stalled or down; Redis down, stalled, paused or answering
//! errors; and `kill -9` under mixed load, after which the audit chain verifies, every acknowledged
//! write exists and every acknowledged revocation still holds. The faults are real: a second SQLite
//! connection on the server's file, `CLIENT PAUSE` and `maxmemory` on a real redis-server, and a TCP
//! proxy (`agentidp_tests::fault_proxy`) that delays, stalls or cuts the bytes between the server
//! and a service.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentidp_tests::fault_proxy::{Fault, FaultProxy};
use agentidp_tests::reqwest::Client;
use agentidp_tests::{open_db, DevBackends, Org, RedisServer, Server};
use serde_json::{json, Value};

// ---- helpers ------------------------------------------------------------------------------------

/// The parts of the API these tests drive, cloneable into concurrent tasks.
#[derive(Clone)]
struct Api {
    http: Client,
    base: String,
}

impl Api {
    fn of(server: &Server) -> Api {
        Api {
            // Requests caught by a crash or an outage must end, not hang the test.
            http: Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            base: server.base.clone(),
        }
    }

    async fn send(&self, request: agentidp_tests::reqwest::RequestBuilder) -> Option<(u16, Value)> {
        let response = request.send().await.ok()?;
        let status = response.status().as_u16();
        let text = response.text().await.ok()?;
        Some((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Option<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        self.send(self.http.post(url).bearer_auth(token).json(&body))
            .await
    }

    async fn patch(&self, path: &str, token: &str, body: Value) -> Option<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        self.send(self.http.patch(url).bearer_auth(token).json(&body))
            .await
    }

    async fn get(&self, path: &str, token: &str) -> Option<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        self.send(self.http.get(url).bearer_auth(token)).await
    }

    async fn delete(&self, path: &str, token: &str) -> Option<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        self.send(self.http.delete(url).bearer_auth(token)).await
    }

    /// `client_credentials` with Basic authentication.
    async fn token(&self, client_id: &str, secret: &str) -> Option<(u16, Value)> {
        let url = format!("{}/oauth2/token", self.base);
        self.send(
            self.http
                .post(url)
                .basic_auth(client_id, Some(secret))
                .form(&[("grant_type", "client_credentials")]),
        )
        .await
    }

    async fn introspect(&self, org: &Org, token: &str) -> Option<(u16, Value)> {
        let url = format!("{}/oauth2/introspect", self.base);
        self.send(
            self.http
                .post(url)
                .basic_auth(&org.client_id, Some(&org.client_secret))
                .form(&[("token", token)]),
        )
        .await
    }

    async fn revoke(&self, org: &Org, token: &str) -> Option<(u16, Value)> {
        let url = format!("{}/oauth2/revoke", self.base);
        self.send(
            self.http
                .post(url)
                .basic_auth(&org.client_id, Some(&org.client_secret))
                .form(&[("token", token)]),
        )
        .await
    }

    /// Registers an agent with a client secret; `None` if any step was not acknowledged.
    async fn agent_with_secret(&self, org: &Org, name: &str) -> Option<(String, Credential)> {
        let body = json!({ "name": name, "agent_type": "worker", "capabilities": ["read:docs"] });
        let (201, agent) = self.post("/v1/agents", &org.token, body).await? else {
            return None;
        };
        let agent_id = agent["id"].as_str()?.to_owned();
        let path = format!("/v1/agents/{agent_id}/credentials");
        let (201, credential) = self.post(&path, &org.token, json!({})).await? else {
            return None;
        };
        Some((agent_id.clone(), Credential::from(&agent_id, &credential)?))
    }

    async fn audit_verifies(&self, org: &Org) -> Value {
        let (status, body) = self.get("/v1/audit/verify", &org.token).await.unwrap();
        assert_eq!(status, 200, "{body}");
        body
    }
}

#[derive(Clone, Debug)]
struct Credential {
    agent_id: String,
    id: String,
    client_id: String,
    secret: String,
    /// A rotation was sent and not acknowledged: it may or may not have happened.
    rotation_unacknowledged: bool,
}

impl Credential {
    fn from(agent_id: &str, body: &Value) -> Option<Credential> {
        Some(Credential {
            agent_id: agent_id.to_owned(),
            id: body["id"].as_str()?.to_owned(),
            client_id: body["client_id"].as_str()?.to_owned(),
            secret: body["client_secret"].as_str()?.to_owned(),
            rotation_unacknowledged: false,
        })
    }
}

/// Asserts a problem document (or an OAuth error) with 503, and that it came back within `within`.
fn assert_unavailable(answer: Option<(u16, Value)>, started: Instant, within: Duration) {
    let elapsed = started.elapsed();
    let (status, body) = answer.expect("an answer, not a dropped connection");
    assert_eq!(status, 503, "{body}");
    assert!(
        elapsed < within,
        "503 took {elapsed:?}, more than {within:?}"
    );
}

fn local_addr(url: &str) -> SocketAddr {
    let host_port = url.split("://").nth(1).unwrap().trim_end_matches('/');
    host_port.parse().unwrap()
}

// ---- the embedded database locked by another process -------------------------------------------

/// Another process holds the database's write lock (SQLite `BEGIN IMMEDIATE`) for `held`, starting
/// now; the returned task ends when the lock is released.
async fn hold_write_lock(server: &Server, held: Duration) -> tokio::task::JoinHandle<()> {
    let conn = open_db(&server.db_path()).await;
    conn.execute("BEGIN IMMEDIATE", ()).await.unwrap();
    tokio::spawn(async move {
        tokio::time::sleep(held).await;
        conn.execute("ROLLBACK", ()).await.unwrap();
    })
}

#[tokio::test]
async fn a_briefly_locked_database_delays_writes_and_never_blocks_reads() {
    let server = Server::start().await;
    let org = server.bootstrap("locked-briefly").await;
    let api = Api::of(&server);
    let (_, credential) = api.agent_with_secret(&org, "before").await.unwrap();

    // Shorter than the server's 5 s busy timeout: writes wait for the lock, then succeed.
    let held = Duration::from_millis(1500);
    let lock = hold_write_lock(&server, held).await;
    let started = Instant::now();
    let mut writes = Vec::new();
    for i in 0..10 {
        let (api, org_token) = (api.clone(), org.token.clone());
        writes.push(tokio::spawn(async move {
            let body = json!({ "name": format!("during-{i}"), "agent_type": "worker" });
            api.post("/v1/agents", &org_token, body).await
        }));
    }
    // Issuing a token commits an audit event: a write too.
    let (api2, c2) = (api.clone(), credential.clone());
    let issued = tokio::spawn(async move { api2.token(&c2.client_id, &c2.secret).await });

    // Reads go on while the lock is held (WAL readers never wait for the writer).
    let read_started = Instant::now();
    let (status, page) = api.get("/v1/agents?limit=5", &org.token).await.unwrap();
    assert_eq!(status, 200, "{page}");
    assert!(
        read_started.elapsed() < held,
        "a read waited {:?} for another process's write lock",
        read_started.elapsed()
    );

    for write in writes {
        let (status, body) = write.await.unwrap().expect("an answer");
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = issued.await.unwrap().unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        started.elapsed() >= held - Duration::from_millis(100),
        "writes finished in {:?}, before the lock was released",
        started.elapsed()
    );
    lock.await.unwrap();
    assert_eq!(api.audit_verifies(&org).await["valid"], true);
}

#[tokio::test]
async fn a_database_locked_past_the_busy_timeout_refuses_writes_with_503_then_recovers() {
    let server = Server::start().await;
    let org = server.bootstrap("locked-long").await;
    let api = Api::of(&server);
    let (_, credential) = api.agent_with_secret(&org, "before").await.unwrap();

    // Longer than two of the server's 5 s busy timeouts: two writes queued one behind the other at
    // the writer each give up before it ends.
    let held = Duration::from_secs(12);
    let lock = hold_write_lock(&server, held).await;
    let started = Instant::now();
    let (api1, token) = (api.clone(), org.token.clone());
    let create = tokio::spawn(async move {
        let body = json!({ "name": "refused", "agent_type": "worker" });
        api1.post("/v1/agents", &token, body).await
    });
    let (api2, c2) = (api.clone(), credential.clone());
    let issue = tokio::spawn(async move { api2.token(&c2.client_id, &c2.secret).await });
    let (status, problem) = create.await.unwrap().unwrap();
    assert_eq!(
        (status, problem["code"].as_str()),
        (503, Some("service_unavailable")),
        "{problem}"
    );
    let (status, error) = issue.await.unwrap().unwrap();
    assert_eq!(
        (status, error["error"].as_str()),
        (503, Some("temporarily_unavailable")),
        "{error}"
    );
    assert!(
        started.elapsed() < held - Duration::from_millis(500),
        "a locked database must not hold requests past the busy timeout: {:?}",
        started.elapsed()
    );
    // Reads still answer.
    let (status, _) = api.get("/v1/agents", &org.token).await.unwrap();
    assert_eq!(status, 200);
    lock.await.unwrap();

    // The writer recovers by itself, and the refused write left nothing behind.
    let body = json!({ "name": "after", "agent_type": "worker" });
    let (status, created) = api.post("/v1/agents", &org.token, body).await.unwrap();
    assert_eq!(status, 201, "{created}");
    let (_, page) = api.get("/v1/agents?limit=200", &org.token).await.unwrap();
    let names: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"refused"), "{names:?}");
    assert!(names.contains(&"after"), "{names:?}");
    let (status, _) = api
        .token(&credential.client_id, &credential.secret)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(api.audit_verifies(&org).await["valid"], true);
}

// ---- libSQL over HTTP slow, stalled or down ---------------------------------------------------

/// The server on libSQL over HTTP (the Hrana stand-in) reached through a fault proxy, with Upstash
/// REST (the stand-in over a real Redis) for key-value: the edge's storage path, natively.
struct OverHttp {
    server: Server,
    proxy: FaultProxy,
    _standins: DevBackends,
    _redis: RedisServer,
}

async fn over_http() -> OverHttp {
    let redis = RedisServer::start();
    let standins = DevBackends::start(&redis.url);
    let proxy = FaultProxy::start(local_addr(&standins.hrana_url));
    let database_url = proxy.url("http");
    let server = Server::start_with(&[
        ("AGENTIDP_DATABASE_URL", database_url.as_str()),
        ("AGENTIDP_DATABASE_AUTH_TOKEN", standins.token.as_str()),
        ("UPSTASH_REDIS_REST_URL", standins.upstash_url.as_str()),
        ("UPSTASH_REDIS_REST_TOKEN", standins.token.as_str()),
    ])
    .await;
    OverHttp {
        server,
        proxy,
        _standins: standins,
        _redis: redis,
    }
}

#[tokio::test]
async fn slow_libsql_over_http_slows_requests_without_failing_them() {
    let edge = over_http().await;
    let org = edge.server.bootstrap("slow-db").await;
    let api = Api::of(&edge.server);
    edge.proxy.set(Fault::Delay(Duration::from_millis(150)));
    let started = Instant::now();
    let (agent_id, credential) = api.agent_with_secret(&org, "patient").await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the delay did not apply"
    );
    let (status, body) = api
        .token(&credential.client_id, &credential.secret)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, _) = api
        .get(&format!("/v1/agents/{agent_id}"), &org.token)
        .await
        .unwrap();
    assert_eq!(status, 200);
    edge.proxy.set(Fault::Pass);
    assert_eq!(api.audit_verifies(&org).await["valid"], true);
}

#[tokio::test]
async fn libsql_over_http_down_answers_503_at_once_then_recovers() {
    let edge = over_http().await;
    let org = edge.server.bootstrap("db-down").await;
    let api = Api::of(&edge.server);
    let (_, credential) = api.agent_with_secret(&org, "survivor").await.unwrap();

    edge.proxy.set(Fault::Refuse);
    let quick = Duration::from_secs(3);
    let started = Instant::now();
    assert_unavailable(api.get("/v1/agents", &org.token).await, started, quick);
    let started = Instant::now();
    let body = json!({ "name": "lost", "agent_type": "worker" });
    assert_unavailable(
        api.post("/v1/agents", &org.token, body).await,
        started,
        quick,
    );
    let started = Instant::now();
    assert_unavailable(
        api.token(&credential.client_id, &credential.secret).await,
        started,
        quick,
    );
    let (status, health) = api.get("/health/detailed", "").await.unwrap();
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["checks"]["database"]["status"], "unavailable");

    edge.proxy.set(Fault::Pass);
    let (status, body) = api
        .token(&credential.client_id, &credential.secret)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, _) = api.get("/health/detailed", "").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(api.audit_verifies(&org).await["valid"], true);
}

#[tokio::test]
async fn stalled_libsql_over_http_answers_503_within_the_outbound_timeout_then_recovers() {
    let edge = over_http().await;
    let org = edge.server.bootstrap("db-stalled").await;
    let api = Api::of(&edge.server);
    let (_, credential) = api.agent_with_secret(&org, "waiting").await.unwrap();

    edge.proxy.set(Fault::Stall);
    // The server gives libSQL over HTTP 10 s (server/src/main.rs); a hung database must not hold
    // a request longer than that.
    let started = Instant::now();
    assert_unavailable(
        api.token(&credential.client_id, &credential.secret).await,
        started,
        Duration::from_secs(15),
    );

    edge.proxy.set(Fault::Pass);
    let (status, body) = api
        .token(&credential.client_id, &credential.secret)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(api.audit_verifies(&org).await["valid"], true);
}

// ---- Redis down, stalled, paused or answering errors ------------------------------------------

/// The embedded database with Redis for key-value, reached through a fault proxy; a short
/// key-value deadline so that outages are decided quickly.
struct WithRedis {
    server: Server,
    proxy: FaultProxy,
    redis: RedisServer,
}

const KV_TIMEOUT: Duration = Duration::from_millis(300);

async fn with_redis() -> WithRedis {
    let redis = RedisServer::start();
    let proxy = FaultProxy::start(local_addr(&redis.url));
    let redis_url = proxy.url("redis");
    let timeout = KV_TIMEOUT.as_millis().to_string();
    let server = Server::start_with(&[
        ("REDIS_URL", redis_url.as_str()),
        ("AGENTIDP_KV_TIMEOUT_MS", timeout.as_str()),
    ])
    .await;
    WithRedis {
        server,
        proxy,
        redis,
    }
}

/// While Redis cannot answer: revocation cannot be checked, so bearer calls and introspection are
/// refused (503) within the deadline, and a revocation is never acknowledged; rate limits fail
/// open, so issuance and the public marketplace go on.
async fn assert_kv_outage_behaviour(api: &Api, org: &Org, credential: &Credential) {
    let quick = KV_TIMEOUT + Duration::from_secs(2);
    let started = Instant::now();
    assert_unavailable(api.get("/v1/agents", &org.token).await, started, quick);
    let started = Instant::now();
    assert_unavailable(api.introspect(org, &org.token).await, started, quick);
    let started = Instant::now();
    assert_unavailable(api.revoke(org, &org.token).await, started, quick);
    let (status, body) = api
        .token(&credential.client_id, &credential.secret)
        .await
        .unwrap();
    assert_eq!(status, 200, "issuance fails open on limits: {body}");
    let (status, _) = api.get("/v1/marketplace/agents", "").await.unwrap();
    assert_eq!(status, 200);
}

/// Once Redis answers again, everything works within a few seconds (the client reconnects by
/// itself), and answers are the right ones (no reply from the outage paired with a later request).
async fn assert_recovers(api: &Api, org: &Org) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match api.get("/v1/agents", &org.token).await {
            Some((200, _)) => break,
            other if Instant::now() > deadline => panic!("no recovery: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let (status, active) = api.introspect(org, &org.token).await.unwrap();
    assert_eq!((status, active["active"].as_bool()), (200, Some(true)));
    // The revocation refused during the outage did not happen.
    let (status, _) = api.get("/v1/usage", &org.token).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(api.audit_verifies(org).await["valid"], true);
}

#[tokio::test]
async fn redis_down_refuses_unverifiable_calls_quickly_then_recovers() {
    let d = with_redis().await;
    let org = d.server.bootstrap("redis-down").await;
    let api = Api::of(&d.server);
    let (_, credential) = api.agent_with_secret(&org, "bystander").await.unwrap();

    d.proxy.set(Fault::Refuse);
    assert_kv_outage_behaviour(&api, &org, &credential).await;
    d.proxy.set(Fault::Pass);
    assert_recovers(&api, &org).await;
}

#[tokio::test]
async fn stalled_redis_is_cut_off_at_the_deadline_and_answers_stay_in_order() {
    let d = with_redis().await;
    let org = d.server.bootstrap("redis-stalled").await;
    let api = Api::of(&d.server);
    let (_, credential) = api.agent_with_secret(&org, "bystander").await.unwrap();
    // A token revoked before the stall: its entry must still be read as revoked afterwards.
    let (_, issued) = api
        .token(&credential.client_id, &credential.secret)
        .await
        .unwrap();
    let revoked = issued["access_token"].as_str().unwrap().to_owned();
    assert_eq!(api.revoke(&org, &revoked).await.unwrap().0, 200);

    d.proxy.set(Fault::Stall);
    assert_kv_outage_behaviour(&api, &org, &credential).await;
    // Bytes held during the stall arrive late, for requests that already gave up.
    d.proxy.set(Fault::Pass);
    assert_recovers(&api, &org).await;
    for _ in 0..20 {
        let (_, revoked_now) = api.introspect(&org, &revoked).await.unwrap();
        assert_eq!(revoked_now["active"], false, "{revoked_now}");
        let (_, admin_now) = api.introspect(&org, &org.token).await.unwrap();
        assert_eq!(admin_now["active"], true, "{admin_now}");
    }
}

#[tokio::test]
async fn paused_redis_counts_as_down_until_it_answers_again() {
    let d = with_redis().await;
    let org = d.server.bootstrap("redis-paused").await;
    let api = Api::of(&d.server);
    // Redis itself stops serving every client (CLIENT PAUSE), as a long command or a fork would.
    d.redis.cli(&["CLIENT", "PAUSE", "3000", "ALL"]);
    let started = Instant::now();
    assert_unavailable(
        api.get("/v1/agents", &org.token).await,
        started,
        KV_TIMEOUT + Duration::from_secs(2),
    );
    assert_recovers(&api, &org).await;
}

#[tokio::test]
async fn redis_answering_errors_to_every_command_counts_as_down() {
    let d = with_redis().await;
    let org = d.server.bootstrap("redis-masterdown").await;
    let api = Api::of(&d.server);
    let (_, credential) = api.agent_with_secret(&org, "bystander").await.unwrap();
    // A replica whose master is gone answers `MASTERDOWN ...` to every data command (as during a
    // failover), while the connection itself stays up.
    assert_eq!(
        d.redis
            .cli(&["CONFIG", "SET", "replica-serve-stale-data", "no"]),
        "OK"
    );
    assert_eq!(d.redis.cli(&["REPLICAOF", "127.0.0.1", "1"]), "OK");
    assert_kv_outage_behaviour(&api, &org, &credential).await;
    assert_eq!(d.redis.cli(&["REPLICAOF", "NO", "ONE"]), "OK");
    assert_recovers(&api, &org).await;
}

#[tokio::test]
async fn redis_refusing_writes_never_acknowledges_a_revocation() {
    let d = with_redis().await;
    let org = d.server.bootstrap("redis-oom").await;
    let api = Api::of(&d.server);
    let (agent_id, credential) = api.agent_with_secret(&org, "bystander").await.unwrap();
    let (_, issued) = api
        .token(&credential.client_id, &credential.secret)
        .await
        .unwrap();
    let token = issued["access_token"].as_str().unwrap().to_owned();

    // Out of memory with no eviction: every write is refused (`OOM command not allowed ...`);
    // reads still answer, and so do scripts whose first write passed (the admission's does).
    assert_eq!(
        d.redis
            .cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]),
        "OK"
    );
    assert_eq!(d.redis.cli(&["CONFIG", "SET", "maxmemory", "1"]), "OK");
    let (status, body) = api.revoke(&org, &token).await.unwrap();
    assert_eq!(
        status, 503,
        "a revocation Redis refused was acknowledged: {body}"
    );
    // Suspension revokes every token of the agent in Redis: while that write fails it must not be
    // acknowledged. (The database may already say `suspended`: the service commits first and
    // revokes after, so that a retry completes it; see services::agents::update.)
    let path = format!("/v1/agents/{agent_id}");
    let suspend = json!({ "status": "suspended" });
    let (status, body) = api.patch(&path, &org.token, suspend.clone()).await.unwrap();
    let (_, after) = api.introspect(&org, &token).await.unwrap();
    if status == 200 {
        assert_eq!(
            after["active"], false,
            "suspension acknowledged, token alive: {after}"
        );
    } else {
        assert_eq!(status, 503, "{body}");
    }

    assert_eq!(d.redis.cli(&["CONFIG", "SET", "maxmemory", "0"]), "OK");
    assert_recovers(&api, &org).await;
    if status != 200 {
        let (_, still) = api.introspect(&org, &token).await.unwrap();
        assert_eq!(
            still["active"], true,
            "the refused revocations happened after all: {still}"
        );
    }
    // Retrying the suspension once the store answers completes it.
    let (status, body) = api.patch(&path, &org.token, suspend).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let (_, now) = api.introspect(&org, &token).await.unwrap();
    assert_eq!(now["active"], false, "{now}");
}

// ---- kill -9 under mixed load ---------------------------------------------------------------------

/// What the server acknowledged before it was killed.
#[derive(Default, Debug)]
struct Acknowledged {
    /// Agents created (201), with their newest acknowledged credential.
    credentials: Vec<Credential>,
    /// Agents whose suspension was acknowledged, with tokens issued to them before.
    suspended: Vec<(String, Vec<String>)>,
    /// Agents whose decommissioning was acknowledged, with a credential and a token from before.
    decommissioned: Vec<(Credential, String)>,
    /// Tokens whose revocation was acknowledged (200 from /oauth2/revoke).
    revoked: Vec<String>,
    /// Tokens issued (200 from /oauth2/token).
    issued: usize,
}

fn token_of(answer: Option<(u16, Value)>) -> Option<String> {
    match answer? {
        (200, body) => Some(body["access_token"].as_str()?.to_owned()),
        _ => None,
    }
}

/// Each worker loops over one kind of change until `stop`, recording what was acknowledged.
async fn mixed_load(
    api: Api,
    org: Arc<Org>,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Acknowledged>>,
) {
    let mut workers = Vec::new();
    // Registrar: agent, credential, token, rotation.
    for w in 0..2 {
        let (api, org, stop, acked) = (api.clone(), org.clone(), stop.clone(), acked.clone());
        workers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let Some((_, mut credential)) =
                    api.agent_with_secret(&org, &format!("reg-{w}-{i}")).await
                else {
                    continue;
                };
                acked.lock().unwrap().credentials.push(credential.clone());
                if token_of(api.token(&credential.client_id, &credential.secret).await).is_some() {
                    acked.lock().unwrap().issued += 1;
                }
                let path = format!(
                    "/v1/agents/{}/credentials/{}/rotate",
                    credential.agent_id, credential.id
                );
                let body = json!({ "grace_period_seconds": 0 });
                let rotation = api.post(&path, &org.token, body).await;
                let mut acked = acked.lock().unwrap();
                let Some(entry) = acked.credentials.iter_mut().find(|c| c.id == credential.id)
                else {
                    continue;
                };
                match rotation {
                    Some((200, rotated)) => {
                        if let Some(secret) = rotated["client_secret"].as_str() {
                            credential.secret = secret.to_owned();
                            entry.secret = credential.secret.clone();
                        }
                    }
                    // Refused: nothing changed. No answer: the rotation may have committed.
                    Some(_) => {}
                    None => entry.rotation_unacknowledged = true,
                }
            }
        }));
    }
    // Revoker: issue a token to one agent, then revoke it.
    {
        let (api, org, stop, acked) = (api.clone(), org.clone(), stop.clone(), acked.clone());
        workers.push(tokio::spawn(async move {
            let Some((_, credential)) = api.agent_with_secret(&org, "revoked-often").await else {
                return;
            };
            while !stop.load(Ordering::Relaxed) {
                let Some(token) =
                    token_of(api.token(&credential.client_id, &credential.secret).await)
                else {
                    continue;
                };
                acked.lock().unwrap().issued += 1;
                if let Some((200, _)) = api.revoke(&org, &token).await {
                    acked.lock().unwrap().revoked.push(token);
                }
            }
        }));
    }
    // Suspender and decommissioner: tokens first, then the change that must revoke them all.
    for decommission in [false, true] {
        let (api, org, stop, acked) = (api.clone(), org.clone(), stop.clone(), acked.clone());
        workers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let name = format!("{}-{i}", if decommission { "dec" } else { "sus" });
                let Some((agent_id, credential)) = api.agent_with_secret(&org, &name).await else {
                    continue;
                };
                let Some(token) =
                    token_of(api.token(&credential.client_id, &credential.secret).await)
                else {
                    continue;
                };
                acked.lock().unwrap().issued += 1;
                let path = format!("/v1/agents/{agent_id}");
                if decommission {
                    if let Some((200, _)) = api.delete(&path, &org.token).await {
                        acked
                            .lock()
                            .unwrap()
                            .decommissioned
                            .push((credential, token));
                    }
                } else {
                    let body = json!({ "status": "suspended" });
                    if let Some((200, _)) = api.patch(&path, &org.token, body).await {
                        acked
                            .lock()
                            .unwrap()
                            .suspended
                            .push((agent_id, vec![token]));
                    }
                }
            }
        }));
    }
    // Reader: introspection, marketplace search, listing: load, nothing to remember.
    {
        let (api, org, stop) = (api.clone(), org.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let _ = api.introspect(&org, &org.token).await;
                let _ = api.get("/v1/marketplace/agents?q=reg", "").await;
                let _ = api.get("/v1/agents?limit=20", &org.token).await;
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
}

/// Every `token.issued` event of the organization, walking the pages.
async fn issued_events(api: &Api, org: &Org) -> usize {
    let mut count = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/v1/audit/events?action=token.issued&limit=200".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = api.get(&path, &org.token).await.unwrap();
        assert_eq!(status, 200, "{page}");
        count += page["data"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return count,
        }
    }
}

/// Runs mixed load for a while, kills the server with SIGKILL mid-load, restarts it on the same
/// data directory and checks what it had acknowledged. `revocations` also checks that every
/// acknowledged revocation (single tokens, suspended and decommissioned agents) still holds.
async fn kill_9_under_mixed_load(env: &[(&str, &str)], revocations: bool) {
    // One issuer across the restart (by default it follows the listening port, which changes), so
    // that tokens from before the crash are still this issuer's tokens afterwards.
    let mut env = env.to_vec();
    env.push(("AGENTIDP_ISSUER", "http://agentidp.test"));
    let env = env.as_slice();
    let mut server = Server::start_with(env).await;
    let org = Arc::new(server.bootstrap("crash").await);
    let api = Api::of(&server);
    // A control: a token nobody revokes must still be active after the restart, or the revocation
    // checks below would pass for the wrong reason.
    let (_, bystander) = api.agent_with_secret(&org, "bystander").await.unwrap();
    let untouched = token_of(api.token(&bystander.client_id, &bystander.secret).await).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let load = tokio::spawn(mixed_load(
        api.clone(),
        org.clone(),
        stop.clone(),
        acked.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.kill();
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        acked.credentials.len() >= 2 && acked.issued >= 2,
        "too little load got through before the kill to prove anything: {acked:?}"
    );

    eprintln!(
        "acknowledged before kill -9: {} agents with credentials, {} tokens issued, {} revoked, \
         {} agents suspended, {} decommissioned",
        acked.credentials.len(),
        acked.issued,
        acked.revoked.len(),
        acked.suspended.len(),
        acked.decommissioned.len()
    );
    let data_dir = server.data_dir.clone();
    let restarted = Server::start_in(data_dir, env).await;
    let api = Api::of(&restarted);
    let admin = restarted
        .token(&org.client_id, &org.client_secret, &[])
        .await;
    let org = Org {
        id: org.id.clone(),
        client_id: org.client_id.clone(),
        client_secret: org.client_secret.clone(),
        token: admin,
    };

    let (status, control) = api.introspect(&org, &untouched).await.unwrap();
    assert_eq!(
        (status, control["active"].as_bool()),
        (200, Some(true)),
        "a token from before the crash that nobody revoked must stay valid: {control}"
    );
    let verification = api.audit_verifies(&org).await;
    assert_eq!(verification["valid"], true, "{verification}");
    for credential in &acked.credentials {
        let (status, agent) = api
            .get(&format!("/v1/agents/{}", credential.agent_id), &org.token)
            .await
            .unwrap();
        assert_eq!(status, 200, "an acknowledged agent is gone: {agent}");
        // The newest acknowledged secret works, unless a rotation the crash cut off committed.
        let (status, body) = api
            .token(&credential.client_id, &credential.secret)
            .await
            .unwrap();
        if !(status == 401 && credential.rotation_unacknowledged) {
            assert_eq!(status, 200, "{credential:?}: {body}");
        }
    }
    for (agent_id, _) in &acked.suspended {
        let (_, agent) = api
            .get(&format!("/v1/agents/{agent_id}"), &org.token)
            .await
            .unwrap();
        assert_eq!(agent["status"], "suspended", "{agent}");
    }
    for (credential, _) in &acked.decommissioned {
        let (_, agent) = api
            .get(&format!("/v1/agents/{}", credential.agent_id), &org.token)
            .await
            .unwrap();
        assert_eq!(agent["status"], "decommissioned", "{agent}");
        let (status, _) = api
            .token(&credential.client_id, &credential.secret)
            .await
            .unwrap();
        assert_eq!(
            status, 401,
            "a decommissioned agent authenticated after a crash"
        );
    }
    // Every acknowledged issuance was audited before it was answered.
    let audited = issued_events(&api, &org).await;
    assert!(
        audited >= acked.issued,
        "{audited} token.issued events for {} acknowledged issuances",
        acked.issued
    );

    if revocations {
        let revoked = acked.revoked.iter();
        let suspended = acked.suspended.iter().flat_map(|(_, tokens)| tokens);
        let decommissioned = acked.decommissioned.iter().map(|(_, token)| token);
        for token in revoked.chain(suspended).chain(decommissioned) {
            let (status, body) = api.introspect(&org, token).await.unwrap();
            assert_eq!(
                (status, body["active"].as_bool()),
                (200, Some(false)),
                "an acknowledged revocation did not survive the crash: {body}"
            );
        }
    }
}

/// The default deployment: embedded database, the durable in-process key-value store. Everything
/// written to the database survives `kill -9`, and so does every acknowledged revocation: revoked
/// tokens and the tokens of suspended or decommissioned agents stay refused after the restart.
#[tokio::test]
async fn kill_9_under_mixed_load_loses_no_acknowledged_write_or_revocation_by_default() {
    kill_9_under_mixed_load(&[("AGENTIDP_DB_SYNCHRONOUS", "full")], true).await;
}

/// With Redis, revocations live outside the killed process and must all still hold.
#[tokio::test]
async fn kill_9_under_mixed_load_keeps_every_acknowledged_revocation_in_redis() {
    let redis = RedisServer::start();
    kill_9_under_mixed_load(&[("REDIS_URL", redis.url.as_str())], true).await;
}
