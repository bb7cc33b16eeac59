//! Native adapters: the system clock and the embedded libSQL database with one group-committing writer.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use crate::domain::ssrf;
use crate::ports::metrics;
use crate::ports::outbound::{Outbound, OutboundError, OutboundRequest, OutboundResponse, Target};
use crate::ports::sql::{Change, Database, DbError, Row, Statement, Value};
use crate::store::chain;

pub use crate::platform::system::SystemClock;

/// DEVELOPMENT ONLY (`AGENTIDP_DEV_CLOCK_FILE`): the system clock, ahead by the milliseconds a
/// file holds, so tests move the server's time through the clock seam instead of sleeping. The
/// file is read on every reading of the clock; a missing or unreadable one counts as no offset.
pub struct OffsetClock {
    file: std::path::PathBuf,
}

impl OffsetClock {
    pub fn new(file: std::path::PathBuf) -> Self {
        OffsetClock { file }
    }
}

impl crate::ports::runtime::Clock for OffsetClock {
    fn now_millis(&self) -> i64 {
        let offset = std::fs::read_to_string(&self.file)
            .ok()
            .and_then(|text| text.trim().parse::<i64>().ok())
            .unwrap_or(0);
        crate::ports::runtime::Clock::now_millis(&SystemClock).saturating_add(offset)
    }
}

use crate::platform::wal;

/// How far a commit is pushed to disk before the caller hears it succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: survives power loss; one fsync per group commit.
    Full,
    /// `synchronous=NORMAL`: survives a process crash; the last commits may be lost on power loss.
    Normal,
}

/// Most jobs folded into one group commit.
const MAX_GROUP: usize = 512;
const READERS: usize = 4;

enum Job {
    Commit {
        change: Change,
        reply: oneshot::Sender<Result<Vec<u64>, DbError>>,
    },
    Script {
        sql: String,
        reply: oneshot::Sender<Result<(), DbError>>,
    },
}

/// libSQL on a local file. Reads go to a small pool of connections; every write goes through one
/// writer thread that folds all waiting changes into a single transaction, so a burst of requests
/// costs one fsync, and that thread alone extends the audit chains, so appends never conflict.
pub struct EmbeddedDatabase {
    readers: Vec<libsql::Connection>,
    next_reader: AtomicUsize,
    writer: mpsc::UnboundedSender<Job>,
    _database: Arc<libsql::Database>,
}

impl EmbeddedDatabase {
    pub async fn open(path: &Path, durability: Durability) -> Result<Self, DbError> {
        let database = libsql::Builder::new_local(path)
            .build()
            .await
            .map_err(|e| DbError::Unavailable(format!("opening {}: {e}", path.display())))?;
        let database = Arc::new(database);
        let connect = |synchronous: &str| {
            let conn = database.connect().map_err(engine_error)?;
            let pragmas = format!(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous={synchronous}; \
                 PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000; {}",
                wal::pragmas()
            );
            Ok::<_, DbError>((conn, pragmas))
        };
        let synchronous = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        let (writer_conn, pragmas) = connect(synchronous)?;
        // Checkpoints run on their own thread (below) and, past a bound, between the writer's
        // groups (`wal.rs`), never inside a commit, where they would stall every request waiting on
        // that group commit.
        writer_conn
            .execute_batch(&format!("{pragmas} PRAGMA wal_autocheckpoint=0;"))
            .await
            .map_err(engine_error)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let (conn, pragmas) = connect(synchronous)?;
            conn.execute_batch(&pragmas).await.map_err(engine_error)?;
            readers.push(conn);
        }
        let (writer, jobs) = mpsc::unbounded_channel();
        let bound = wal::WriterBound::new(path);
        std::thread::Builder::new()
            .name("agentidp-db-writer".into())
            .spawn(move || run_writer(writer_conn, jobs, bound))
            .map_err(|e| DbError::Unavailable(format!("starting the writer thread: {e}")))?;
        let (checkpoint_conn, pragmas) = connect(synchronous)?;
        checkpoint_conn
            .execute_batch(&pragmas)
            .await
            .map_err(engine_error)?;
        std::thread::Builder::new()
            .name("agentidp-db-checkpoint".into())
            .spawn(move || wal::run_checkpoints(checkpoint_conn))
            .map_err(|e| DbError::Unavailable(format!("starting the checkpoint thread: {e}")))?;
        Ok(EmbeddedDatabase {
            readers,
            next_reader: AtomicUsize::new(0),
            writer,
            _database: database,
        })
    }

    /// Copies the whole WAL back and empties the file, for a clean shutdown: the next start (and
    /// anyone copying the data directory) finds everything in the database file.
    pub async fn checkpoint_truncate(&self) -> Result<(), DbError> {
        self.execute_script("PRAGMA wal_checkpoint(TRUNCATE);")
            .await
    }

    fn reader(&self) -> &libsql::Connection {
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        &self.readers[i]
    }
}

#[async_trait]
impl Database for EmbeddedDatabase {
    async fn query(&self, statement: Statement) -> Result<Vec<Row>, DbError> {
        query_on(self.reader(), &statement).await
    }

    async fn transaction(&self, statements: Vec<Statement>) -> Result<Vec<u64>, DbError> {
        self.commit(Change {
            statements,
            events: Vec::new(),
        })
        .await
    }

    async fn execute_script(&self, sql: &str) -> Result<(), DbError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Job::Script {
                sql: sql.to_owned(),
                reply,
            })
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }

    async fn commit(&self, change: Change) -> Result<Vec<u64>, DbError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Job::Commit { change, reply })
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }
}

fn writer_gone() -> DbError {
    DbError::Unavailable("the database writer has stopped".into())
}

fn engine_error(e: libsql::Error) -> DbError {
    match e {
        // SQLITE_BUSY / SQLITE_LOCKED: another process holds the file longer than busy_timeout.
        libsql::Error::SqliteFailure(5 | 6, m) => DbError::Unavailable(m),
        libsql::Error::SqliteFailure(_, m) => DbError::from_engine_message(m, None),
        other => DbError::from_engine_message(other.to_string(), None),
    }
}

fn statement_error(e: libsql::Error, statement: &Statement) -> DbError {
    match engine_error(e) {
        DbError::Constraint(m) | DbError::Other(m) => {
            DbError::from_engine_message(m, Some(statement))
        }
        other => other,
    }
}

fn to_params(values: &[Value]) -> libsql::params::Params {
    libsql::params::Params::Positional(
        values
            .iter()
            .map(|v| match v {
                Value::Null => libsql::Value::Null,
                Value::Integer(i) => libsql::Value::Integer(*i),
                Value::Real(r) => libsql::Value::Real(*r),
                Value::Text(t) => libsql::Value::Text(t.clone()),
                Value::Blob(b) => libsql::Value::Blob(b.clone()),
            })
            .collect(),
    )
}

async fn query_on(conn: &libsql::Connection, statement: &Statement) -> Result<Vec<Row>, DbError> {
    let mut rows = conn
        .query(&statement.sql, to_params(&statement.params))
        .await
        .map_err(|e| statement_error(e, statement))?;
    let columns: Arc<[String]> = (0..rows.column_count())
        .map(|i| rows.column_name(i).unwrap_or_default().to_owned())
        .collect();
    let mut out = Vec::new();
    while let Some(row) = rows
        .next()
        .await
        .map_err(|e| statement_error(e, statement))?
    {
        let values = (0..columns.len() as i32)
            .map(|i| {
                row.get_value(i).map(|v| match v {
                    libsql::Value::Null => Value::Null,
                    libsql::Value::Integer(i) => Value::Integer(i),
                    libsql::Value::Real(r) => Value::Real(r),
                    libsql::Value::Text(t) => Value::Text(t),
                    libsql::Value::Blob(b) => Value::Blob(b),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(engine_error)?;
        out.push(Row::new(columns.clone(), values));
    }
    Ok(out)
}

fn run_writer(
    conn: libsql::Connection,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    bound: wal::WriterBound,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "database writer could not start");
            return;
        }
    };
    let mut writer = Writer {
        conn,
        heads: HashMap::new(),
        prepared: HashMap::new(),
    };
    while let Some(first) = jobs.blocking_recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let (jobs, started) = (group.len(), std::time::Instant::now());
        runtime.block_on(writer.run(group));
        let seconds = started.elapsed().as_secs_f64();
        metrics::record(metrics::Event::GroupCommit { jobs, seconds });
        runtime.block_on(bound.after_group(&writer.conn));
    }
}

struct Writer {
    conn: libsql::Connection,
    /// Chain heads as committed; trusted because this thread is the only writer of audit events.
    heads: HashMap<String, chain::Head>,
    /// Statements prepared once and reused: parsing SQL was a large share of every write.
    prepared: HashMap<String, libsql::Statement>,
}

/// The writer's statements come from code, so this only guards against an unforeseen variety.
const MAX_PREPARED: usize = 256;

type CommitReply = oneshot::Sender<Result<Vec<u64>, DbError>>;

impl Writer {
    async fn run(&mut self, group: Vec<Job>) {
        let mut commits: Vec<(Change, CommitReply)> = Vec::new();
        for job in group {
            match job {
                Job::Commit { change, reply } => commits.push((change, reply)),
                Job::Script { sql, reply } => {
                    self.commit_group(std::mem::take(&mut commits)).await;
                    let result = self
                        .conn
                        .execute_batch(&sql)
                        .await
                        .map(|_| ())
                        .map_err(engine_error);
                    // A script may have changed the schema or the audit table: start afresh.
                    self.heads.clear();
                    self.prepared.clear();
                    let _ = reply.send(result);
                }
            }
        }
        self.commit_group(commits).await;
    }

    async fn exec(&mut self, sql: &str) -> Result<(), DbError> {
        self.execute(sql, libsql::params::Params::None)
            .await
            .map(|_| ())
            .map_err(engine_error)
    }

    /// Runs a statement through the prepared-statement cache.
    async fn execute(
        &mut self,
        sql: &str,
        params: libsql::params::Params,
    ) -> Result<u64, libsql::Error> {
        if !self.prepared.contains_key(sql) {
            if self.prepared.len() >= MAX_PREPARED {
                self.prepared.clear();
            }
            let statement = self.conn.prepare(sql).await?;
            self.prepared.insert(sql.to_owned(), statement);
        }
        let statement = &self.prepared[sql];
        statement.reset();
        let result = statement.execute(params).await;
        statement.reset();
        result.map(|n| n as u64)
    }

    async fn commit_group(&mut self, commits: Vec<(Change, CommitReply)>) {
        if commits.is_empty() {
            return;
        }
        match self.commit_without_savepoints(&commits).await {
            Ok(Some(outcomes)) => {
                for ((_, reply), outcome) in commits.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
                return;
            }
            // A job failed and everything was rolled back: redo the group job by job, below.
            Ok(None) => {}
            Err(e) => {
                let message = e.to_string();
                for (_, reply) in commits {
                    let _ = reply.send(Err(DbError::Unavailable(message.clone())));
                }
                return;
            }
        }
        self.commit_job_by_job(commits).await;
    }

    /// The common case, where no job in the group fails: one transaction with no per-job
    /// savepoints. `Ok(None)` means a job failed and the whole group was rolled back.
    async fn commit_without_savepoints(
        &mut self,
        commits: &[(Change, CommitReply)],
    ) -> Result<Option<Vec<Vec<u64>>>, DbError> {
        self.exec("BEGIN IMMEDIATE").await?;
        let mut pending_heads: HashMap<String, chain::Head> = HashMap::new();
        let mut outcomes = Vec::with_capacity(commits.len());
        for (change, _) in commits {
            let mut job_heads = HashMap::new();
            match self.apply(change, &pending_heads, &mut job_heads).await {
                Ok(changed) => {
                    pending_heads.extend(job_heads);
                    outcomes.push(changed);
                }
                Err(_) => {
                    self.exec("ROLLBACK").await?;
                    return Ok(None);
                }
            }
        }
        match self.exec("COMMIT").await {
            Ok(()) => {
                self.heads.extend(pending_heads);
                Ok(Some(outcomes))
            }
            Err(e) => {
                let _ = self.exec("ROLLBACK").await;
                self.heads.clear();
                Err(e)
            }
        }
    }

    /// Each job in its own savepoint, so one failing job does not take the others with it.
    async fn commit_job_by_job(&mut self, commits: Vec<(Change, CommitReply)>) {
        if let Err(e) = self.exec("BEGIN IMMEDIATE").await {
            let message = e.to_string();
            for (_, reply) in commits {
                let _ = reply.send(Err(DbError::Unavailable(message.clone())));
            }
            return;
        }
        let mut pending_heads: HashMap<String, chain::Head> = HashMap::new();
        let mut outcomes = Vec::with_capacity(commits.len());
        for (change, reply) in commits {
            let mut job_heads = HashMap::new();
            let outcome = match self.exec("SAVEPOINT job").await {
                Ok(()) => {
                    let result = self.apply(&change, &pending_heads, &mut job_heads).await;
                    let closing = if result.is_ok() {
                        self.exec("RELEASE job").await
                    } else {
                        match self.exec("ROLLBACK TO job").await {
                            Ok(()) => self.exec("RELEASE job").await,
                            Err(e) => Err(e),
                        }
                    };
                    match closing {
                        Ok(()) => result,
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            if outcome.is_ok() {
                pending_heads.extend(job_heads);
            }
            outcomes.push((outcome, reply));
        }
        match self.exec("COMMIT").await {
            Ok(()) => {
                self.heads.extend(pending_heads);
                for (outcome, reply) in outcomes {
                    let _ = reply.send(outcome);
                }
            }
            Err(e) => {
                let _ = self.exec("ROLLBACK").await;
                self.heads.clear();
                let message = e.to_string();
                for (_, reply) in outcomes {
                    let _ = reply.send(Err(DbError::Unavailable(message.clone())));
                }
            }
        }
    }

    async fn apply(
        &mut self,
        change: &Change,
        pending: &HashMap<String, chain::Head>,
        job_heads: &mut HashMap<String, chain::Head>,
    ) -> Result<Vec<u64>, DbError> {
        let mut changed = Vec::with_capacity(change.statements.len());
        for statement in &change.statements {
            let n = self
                .execute(&statement.sql, to_params(&statement.params))
                .await
                .map_err(|e| statement_error(e, statement))?;
            changed.push(n);
        }
        let mut statements = Vec::with_capacity(2);
        for event in &change.events {
            let mut head = match job_heads
                .get(&event.org_id)
                .or_else(|| pending.get(&event.org_id))
                .or_else(|| self.heads.get(&event.org_id))
            {
                Some(head) => head.clone(),
                None => self.load_head(&event.org_id).await?,
            };
            statements.clear();
            chain::append(event, &mut head, &mut statements);
            let mut appended = self.execute_all(&statements).await;
            if appended
                .as_ref()
                .is_err_and(DbError::is_audit_chain_conflict)
            {
                // Another writer extended the chain (the data directory is locked against a second
                // server, but a tool may still write): continue from the head as stored, which
                // this transaction reads including its own pending appends.
                head = self.load_head(&event.org_id).await?;
                statements.clear();
                chain::append(event, &mut head, &mut statements);
                appended = self.execute_all(&statements).await;
            }
            appended?;
            job_heads.insert(event.org_id.clone(), head);
        }
        Ok(changed)
    }

    async fn execute_all(&mut self, statements: &[Statement]) -> Result<(), DbError> {
        for statement in statements {
            self.execute(&statement.sql, to_params(&statement.params))
                .await
                .map_err(|e| statement_error(e, statement))?;
        }
        Ok(())
    }

    /// An organization's head as stored, seen from inside this transaction; a tree missing under
    /// events written before it existed is rebuilt once and its nodes stored here.
    async fn load_head(&mut self, org_id: &str) -> Result<chain::Head, DbError> {
        if let Some(head) =
            chain::head_from(query_on(&self.conn, &chain::head_query(org_id)).await?)?
        {
            return Ok(head);
        }
        let mut backfill = chain::Backfill::default();
        let mut after = 0;
        while let Some(next) = backfill.feed(
            org_id,
            query_on(
                &self.conn,
                &chain::hashes_after(org_id, after, chain::BACKFILL_PAGE),
            )
            .await?,
        )? {
            after = next;
        }
        let (head, nodes) = backfill.finish();
        self.execute_all(&nodes).await?;
        Ok(head)
    }
}

/// Outbound HTTP for the native server: the protocol clients (libSQL over HTTP, Upstash REST),
/// trusted issuers' key sets and, once given [`NativeOutbound::with_tenants`], webhook deliveries
/// (`Target::Tenant`) through a client of their own. Redirects are never followed.
pub struct NativeOutbound {
    /// For the operator's URLs.
    client: reqwest::Client,
    /// For tenants' URLs: SSRF-guarded name resolution, 15 s; without it they are refused.
    tenants: Option<reqwest::Client>,
}

/// What the protocol clients may read of one answer (large query results).
const MAX_PROTOCOL_BODY: usize = 64 * 1024 * 1024;
/// What a webhook receiver's answer may fill: the log keeps an excerpt, nothing more is needed.
const MAX_WORLD_BODY: usize = 64 * 1024;
/// A webhook endpoint has this long to answer (Standard Webhooks' usual 15 s).
pub const WORLD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

impl NativeOutbound {
    /// For the operator's URLs only, each request ending after `timeout`.
    pub fn new(timeout: std::time::Duration) -> Self {
        NativeOutbound {
            client: reqwest::Client::builder()
                .timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            tenants: None,
        }
    }

    /// Also sends to URLs tenants chose (webhooks): 15 s, no redirects, no proxy (a proxy would
    /// resolve names itself), and every address a name resolves to checked against the SSRF rules
    /// before connecting, so a name cannot point at a private address. `allow_loopback` is the
    /// development switch.
    pub fn with_tenants(mut self, allow_loopback: bool) -> Self {
        self.tenants = Some(
            reqwest::Client::builder()
                .timeout(WORLD_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .dns_resolver(Arc::new(GuardedResolver { allow_loopback }))
                .build()
                .unwrap_or_default(),
        );
        self
    }
}

/// Resolves with the system resolver, then refuses the name if any address it has is forbidden.
struct GuardedResolver {
    allow_loopback: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_loopback = self.allow_loopback;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            checked_addresses(&host, addresses, allow_loopback)
                .map(|allowed| Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
                .map_err(|refusal| refusal.into())
        })
    }
}

fn checked_addresses(
    host: &str,
    addresses: Vec<std::net::SocketAddr>,
    allow_loopback: bool,
) -> Result<Vec<std::net::SocketAddr>, ssrf::Refusal> {
    if addresses.is_empty() {
        return Err(ssrf::Refusal(format!("{host} resolves to no address")));
    }
    for address in &addresses {
        if let Err(refusal) = ssrf::may_connect(address.ip(), host, allow_loopback) {
            // The tenant's delivery log says only that the address is disallowed; which address
            // is the operator's to know.
            tracing::info!(
                host,
                address = %address.ip(),
                class = ssrf::forbidden_ip(address.ip()).unwrap_or_default(),
                "webhook destination refused after resolution"
            );
            return Err(refusal);
        }
    }
    Ok(addresses)
}

/// An error with its causes, which `reqwest` keeps out of its own message.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Background work as tokio tasks. Work cut short by a shutdown is not lost: what it would have
/// delivered stays in the outbox for the next dispatcher.
pub struct TokioBackground;

impl crate::ports::runtime::Background for TokioBackground {
    fn spawn(&self, work: crate::ports::runtime::BackgroundWork) {
        tokio::spawn(work);
    }
}

#[async_trait]
impl Outbound for NativeOutbound {
    async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        let url = request.url.clone();
        let (client, max_body) = match request.target {
            Target::Operator => (&self.client, MAX_PROTOCOL_BODY),
            Target::Tenant => match &self.tenants {
                Some(client) => (client, MAX_WORLD_BODY),
                None => {
                    return Err(OutboundError::Transport {
                        url,
                        reason: "this client sends to no tenant's URL".into(),
                    })
                }
            },
        };
        let method =
            reqwest::Method::from_bytes(request.method.as_bytes()).unwrap_or(reqwest::Method::POST);
        let mut builder = client.request(method, &request.url).body(request.body);
        for (name, value) in request.headers {
            builder = builder.header(name, value);
        }
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                OutboundError::Timeout { url: url.clone() }
            } else {
                OutboundError::Transport {
                    url: url.clone(),
                    reason: error_chain(&e),
                }
            }
        };
        let mut response = builder.send().await.map_err(failed)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            let room = max_body - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if chunk.len() >= room {
                break;
            }
        }
        Ok(OutboundResponse {
            status,
            headers,
            body,
        })
    }
}

/// Tokio's timer, for deadlines on remote stores.
pub struct TokioTimer;

impl crate::ports::runtime::Timer for TokioTimer {
    fn sleep(
        &self,
        duration: std::time::Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// ES256 with `ring` (assembly P-256, hedged nonces: RFC 6979-style derivation mixed with the OS RNG).
pub struct RingEs256 {
    key_pair: ring::signature::EcdsaKeyPair,
    rng: ring::rand::SystemRandom,
}

impl RingEs256 {
    pub fn new(private_scalar: &[u8], public_point: &[u8]) -> Option<Self> {
        let rng = ring::rand::SystemRandom::new();
        let key_pair = ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            private_scalar,
            public_point,
            &rng,
        )
        .ok()?;
        Some(RingEs256 { key_pair, rng })
    }
}

impl crate::ports::crypto::RawEs256Signer for RingEs256 {
    fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        let signature = self.key_pair.sign(&self.rng, message).ok()?;
        Some(signature.as_ref().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_resolving_to_forbidden_addresses_are_refused_after_resolution() {
        let resolved: Vec<std::net::SocketAddr> = tokio::net::lookup_host(("localhost", 0))
            .await
            .unwrap()
            .collect();
        assert!(!resolved.is_empty());
        // A public-looking name that resolves to loopback (DNS rebinding) is refused even with
        // the development switch; `localhost` itself only with it.
        assert!(checked_addresses("rebind.example.com", resolved.clone(), true).is_err());
        assert!(checked_addresses("localhost", resolved.clone(), false).is_err());
        assert!(checked_addresses("localhost", resolved, true).is_ok());
        let mixed = vec![
            "93.184.215.14:0".parse().unwrap(),
            "10.0.0.1:0".parse().unwrap(),
        ];
        let refusal = checked_addresses("hooks.example.com", mixed, false).unwrap_err();
        // Split-horizon DNS stays private: neither the address nor its range is named.
        assert_eq!(
            refusal.to_string(),
            "the destination resolves to a disallowed address"
        );
        assert!(checked_addresses("hooks.example.com", Vec::new(), false).is_err());
    }

    #[tokio::test]
    async fn the_world_client_refuses_a_private_name_before_connecting() {
        let outbound = NativeOutbound::new(WORLD_TIMEOUT).with_tenants(false);
        let mut request =
            OutboundRequest::post_json("http://localhost:9/".into(), None, b"{}".to_vec());
        request.target = Target::Tenant;
        let error = outbound.send(request).await.unwrap_err();
        assert!(error.to_string().contains("disallowed address"), "{error}");
        assert!(!error.to_string().contains("127.0.0.1"), "{error}");
        // Without the tenants' client, a tenant's URL goes nowhere.
        let mut request =
            OutboundRequest::post_json("https://hooks.example.com/".into(), None, Vec::new());
        request.target = Target::Tenant;
        let error = NativeOutbound::new(WORLD_TIMEOUT)
            .send(request)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("no tenant"), "{error}");
    }
}
