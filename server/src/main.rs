//! `agentidp`: the native all-in-one server (all five functions on one port), its key management,
//! and the command line for the API (`cli/`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use agentidp_shared::axum::{self, Router};
use agentidp_shared::config::{self, Config, ConfigError};
use agentidp_shared::http::app::application;
use agentidp_shared::http::error::ApiError;
use agentidp_shared::http::extract::ClientIp;
use agentidp_shared::http::observe::observed;
use agentidp_shared::jose::jwk::Alg;
use agentidp_shared::jose::keys;
use agentidp_shared::platform::durable_kv::DurableKv;
use agentidp_shared::platform::hrana::HranaDatabase;
use agentidp_shared::platform::kv_timeout::TimeoutKv;
use agentidp_shared::platform::native::{
    Durability, EmbeddedDatabase, NativeOutbound, OffsetClock, SystemClock, TokioBackground,
    TokioTimer,
};
use agentidp_shared::platform::observed as counted;
use agentidp_shared::platform::redis::RedisKv;
use agentidp_shared::platform::upstash::UpstashKv;
use agentidp_shared::platform::{es256_accelerator, OsEntropy};
use agentidp_shared::ports::kv::KeyValue;
use agentidp_shared::ports::runtime::Clock;
use agentidp_shared::ports::sql::Database;
use agentidp_shared::services::webhooks::{self, Scope};
use agentidp_shared::services::{audit_log, retention, sealing};
use agentidp_shared::state::{AppState, Platform};
use agentidp_shared::store::migrations;
use clap::Parser;

use cli::defs::{Cli, Command, KeysCommand};

mod cli;
mod data_dir_lock;
mod edge;
mod kek;
mod listener;
mod metrics;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env(config::LOG.name)
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal: never in a log file or a journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("agentidp: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Serve { listen, data_dir } => report(serve(listen, data_dir).await),
            Command::Keys {
                command:
                    KeysCommand::Rotate {
                        data_dir: None,
                        operator_token,
                        alg,
                    },
            } if cli.global.url.is_some() => {
                let url = cli.global.url.unwrap_or_default();
                report(edge::rotate_keys_remotely(&url, operator_token, &alg).await)
            }
            Command::Keys {
                command: KeysCommand::Rotate { data_dir, alg, .. },
            } => report(rotate_keys(data_dir, &alg).await),
            Command::Edge(command) => report(edge::run(command)),
            Command::Completions { shell } => cli::completions(shell),
            command => cli::run(cli.global, command).await,
        }
    })
}

/// A server command's outcome: its message on stderr when it failed.
fn report(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("agentidp: {message}");
            ExitCode::FAILURE
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn data_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| config::DATA_DIR.text(&env).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("data"))
}

fn durability() -> Result<Durability, ConfigError> {
    Ok(match config::DB_SYNCHRONOUS.choice(&env)? {
        "normal" => Durability::Normal,
        _ => Durability::Full,
    })
}

async fn open_database(dir: &Path) -> Result<Arc<EmbeddedDatabase>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let db = EmbeddedDatabase::open(
        &dir.join("agentidp.db"),
        durability().map_err(|e| e.to_string())?,
    )
    .await
    .map_err(|e| e.to_string())?;
    migrations::apply(&db, &SystemClock)
        .await
        .map_err(|e| format!("applying migrations: {e}"))?;
    Ok(Arc::new(db))
}

/// The embedded file by default (returned a second time, to be checkpointed at shutdown); libSQL
/// over HTTP (Turso, or the local stand-in) when `AGENTIDP_DATABASE_URL` is set.
async fn database(
    dir: &Path,
) -> Result<(Arc<dyn Database>, Option<Arc<EmbeddedDatabase>>), String> {
    let Some(url) = config::DATABASE_URL.text(&env) else {
        let db = open_database(dir).await?;
        return Ok((db.clone() as Arc<dyn Database>, Some(db)));
    };
    let outbound = Arc::new(NativeOutbound::new(std::time::Duration::from_secs(10)));
    let db = HranaDatabase::new(outbound, &url, config::DATABASE_AUTH_TOKEN.text(&env));
    migrations::apply(&db, &SystemClock).await.map_err(|e| {
        format!(
            "{}: applying migrations at {url}: {e}",
            config::DATABASE_URL.name
        )
    })?;
    Ok((Arc::new(db), None))
}

/// In the database by default (an in-process cache over a table, see `DurableKv`); a real Redis
/// with `REDIS_URL`, or Upstash REST with its URL and token. Remote stores answer within
/// `AGENTIDP_KV_TIMEOUT_MS` or count as failed. The default store is returned a second time to
/// be flushed at shutdown.
async fn key_value(
    clock: Arc<dyn Clock>,
    timeout_ms: i64,
    db: &Arc<dyn Database>,
) -> Result<(Arc<dyn KeyValue>, Option<Arc<DurableKv>>), String> {
    let timeout = std::time::Duration::from_millis(timeout_ms.unsigned_abs());
    let bounded = |kv: Arc<dyn KeyValue>| -> Arc<dyn KeyValue> {
        Arc::new(TimeoutKv::new(kv, timeout, Arc::new(TokioTimer)))
    };
    if let Some(url) = config::REDIS_URL.text(&env) {
        let kv = RedisKv::connect(&url)
            .await
            .map_err(|e| format!("{}: {e}", config::REDIS_URL.name))?;
        return Ok((bounded(Arc::new(kv)), None));
    }
    let (upstash_url, upstash_token) = (config::UPSTASH_URL.name, config::UPSTASH_TOKEN.name);
    match (
        config::UPSTASH_URL.text(&env),
        config::UPSTASH_TOKEN.text(&env),
    ) {
        (Some(url), Some(token)) => {
            let outbound = Arc::new(NativeOutbound::new(std::time::Duration::from_secs(2)));
            Ok((
                bounded(Arc::new(UpstashKv::new(outbound, &url, token))),
                None,
            ))
        }
        (Some(_), None) => Err(format!("{upstash_token}: is required with {upstash_url}")),
        (None, Some(_)) => Err(format!("{upstash_url}: is required with {upstash_token}")),
        (None, None) => {
            let kv = DurableKv::open(db.clone(), clock)
                .await
                .map_err(|e| format!("loading the key-value table: {e}"))?;
            let kv = Arc::new(kv);
            kv.spawn_maintenance();
            Ok((kv.clone(), Some(kv)))
        }
    }
}

async fn serve(listen: Option<SocketAddr>, data_dir_flag: Option<PathBuf>) -> Result<(), String> {
    let listen = match listen {
        Some(addr) => addr,
        None => match config::LISTEN.text(&env) {
            Some(v) => v.parse().map_err(|_| {
                ConfigError {
                    variable: config::LISTEN.name,
                    reason: format!("`{v}` is not a socket address such as 127.0.0.1:8787"),
                }
                .to_string()
            })?,
            None => SocketAddr::from(([127, 0, 0, 1], 8787)),
        },
    };
    let config = Config::load_native(&env, listen).map_err(|e| e.to_string())?;
    let limits = listener::Limits::load(&env).map_err(|e| e.to_string())?;
    let metrics_endpoint = metrics::Endpoint::load(&env).map_err(|e| e.to_string())?;
    let dir = data_dir(data_dir_flag);
    // Only the embedded database lives in the data directory; a remote one may be shared.
    let _lock = match config::DATABASE_URL.text(&env) {
        None => Some(data_dir_lock::lock(&dir)?),
        Some(_) => None,
    };
    // Before the database opens, so its writer counts from the first group commit.
    let metrics_server = match metrics_endpoint {
        Some(endpoint) => {
            let embedded = config::DATABASE_URL
                .text(&env)
                .is_none()
                .then(|| dir.join("agentidp.db"));
            Some(metrics::start(endpoint, embedded).await?)
        }
        None => None,
    };
    let clock: Arc<dyn Clock> = match config::DEV_CLOCK_FILE.text(&env) {
        Some(file) => {
            tracing::warn!(
                file,
                "DEVELOPMENT SWITCH ON: AGENTIDP_DEV_CLOCK_FILE moves this server's clock ahead \
                 by the milliseconds that file holds. Never use it in production."
            );
            Arc::new(OffsetClock::new(file.into()))
        }
        None => Arc::new(SystemClock),
    };
    let (db, embedded) = database(&dir).await?;
    let keks = Arc::new(
        kek::load(
            config::KEY_ENCRYPTION_KEY.text(&env),
            &dir,
            db.as_ref(),
            &OsEntropy,
        )
        .await?,
    );
    let sealed = sealing::seal_clear(db.as_ref(), &keks, &OsEntropy)
        .await
        .map_err(|e| format!("sealing the stored secrets: {e}"))?;
    if sealed > 0 {
        tracing::info!(
            sealed,
            "sealed stored secrets an older release left in clear"
        );
    }
    if let Some(kid) =
        keys::ensure_active_key(db.as_ref(), clock.as_ref(), &OsEntropy, &keks, Alg::Es256)
            .await
            .map_err(|e| e.to_string())?
    {
        tracing::info!(kid, "generated the first signing key");
    }
    let (kv, durable_kv) = key_value(clock.clone(), config.kv_timeout_ms, &db).await?;
    let dispatch_every = config::WEBHOOK_DISPATCH_INTERVAL_SECONDS
        .integer(&env)
        .map_err(|e| e.to_string())?;
    let audit_every = config::AUDIT_CHECKPOINT_SECONDS
        .integer(&env)
        .map_err(|e| e.to_string())?;
    let platform = Platform {
        db: counted::database(db),
        kv: counted::key_value(kv),
        clock,
        entropy: Arc::new(OsEntropy),
        // Trusted OIDC issuers' key sets (a slow issuer must not hold a token request for long)
        // and webhook deliveries, each to its own client.
        outbound: Arc::new(
            NativeOutbound::new(std::time::Duration::from_secs(5))
                .with_tenants(config.webhooks.allow_loopback),
        ),
        es256_accelerator: es256_accelerator(),
        background: Arc::new(TokioBackground),
        keks,
    };
    let state = AppState::new(config, platform);
    let issuer = state.config.issuer.clone();
    if dispatch_every > 0 {
        tokio::spawn(dispatch_periodically(
            state.clone(),
            std::time::Duration::from_secs(dispatch_every.unsigned_abs()),
        ));
    }
    if audit_every > 0 {
        tokio::spawn(audit_periodically(
            state.clone(),
            std::time::Duration::from_secs(audit_every.unsigned_abs()),
        ));
    }
    let app = all_functions(state);

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let portal = format!("{issuer}/portal");
    tracing::info!(%listen, %issuer, %portal, data_dir = %dir.display(), "agentidp serving");
    // The one line a person starting the server looks for (whatever the log filter): where next.
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!("agentidp: serving {issuer}; open the portal at {portal}");
    }
    let metrics_task = metrics_server.map(|(listener, app)| {
        if let Ok(address) = listener.local_addr() {
            tracing::info!(%address, "serving /metrics");
        }
        // Stopped with the server; a scrape in flight at shutdown may be cut short.
        tokio::spawn(listener::serve(
            listener,
            app,
            limits.clone(),
            std::future::pending(),
        ))
    });
    listener::serve(listener, app, limits, shutdown_signal()).await;
    if let Some(task) = metrics_task {
        task.abort();
    }
    if let Some(kv) = durable_kv {
        if let Err(e) = kv.flush_usage().await {
            tracing::warn!(error = %e, "persisting usage counters at shutdown failed");
        }
    }
    if let Some(db) = embedded {
        if let Err(e) = db.checkpoint_truncate().await {
            tracing::warn!(error = %e, "emptying the WAL at shutdown failed");
        }
    }
    tracing::info!("agentidp stopped");
    Ok(())
}

/// The webhook dispatcher of the native server: every `every`, the due deliveries of every
/// organization (retries, and whatever a crash left in the outbox).
async fn dispatch_periodically(state: AppState, every: std::time::Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = webhooks::dispatch(&state, Scope::Everyone, state.now_millis()).await {
            tracing::warn!(error = %e, "periodic webhook dispatch failed; retrying next tick");
        }
    }
}

/// Every tick: a signed checkpoint of each audit log that grew, then retention's batches until
/// nothing more is expired (each batch its own transaction, so an interruption loses nothing).
async fn audit_periodically(state: AppState, every: std::time::Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = audit_log::checkpoint_all(&state, state.now_millis(), 1000).await {
            tracing::warn!(error = %e, "periodic audit checkpoints failed; retrying next tick");
        }
        loop {
            match retention::sweep(&state, state.now_millis()).await {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "audit retention failed; retrying next tick");
                    break;
                }
            }
        }
    }
}

/// The five functions on one router, as the edge serves them on one host.
fn all_functions(state: AppState) -> Router {
    let routes = Router::new()
        .merge(agentidp_token::routes())
        .merge(agentidp_agents::routes())
        .merge(agentidp_audit::routes())
        .merge(agentidp_marketplace::routes())
        .merge(agentidp_webhooks::routes());
    let app = application(routes, state)
        .layer(axum::middleware::map_request(record_client_ip))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ));
    observed(app)
}

async fn record_client_ip(
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    mut request: axum::extract::Request,
) -> axum::extract::Request {
    request
        .extensions_mut()
        .insert(ClientIp(peer.ip().to_string()));
    request
}

/// A panic is a bug; the caller still gets a problem document rather than a dropped connection.
fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    ApiError::internal("handler panicked").into_response()
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("stop signal received");
}

async fn rotate_keys(data_dir_flag: Option<PathBuf>, alg: &str) -> Result<(), String> {
    let alg =
        Alg::parse(alg).ok_or_else(|| format!("unknown algorithm `{alg}`: use ES256 or EdDSA"))?;
    let dir = data_dir(data_dir_flag);
    let db = open_database(&dir).await?;
    let keks = kek::load(
        config::KEY_ENCRYPTION_KEY.text(&env),
        &dir,
        db.as_ref(),
        &OsEntropy,
    )
    .await?;
    let kid = keys::rotate(db.as_ref(), &SystemClock, &OsEntropy, &keks, alg)
        .await
        .map_err(|e| e.to_string())?;
    println!("{kid}");
    Ok(())
}
