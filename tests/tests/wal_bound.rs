//! The write-ahead log stays bounded under sustained token issuance, empties once the load stops,
//! and is gone after a clean shutdown.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentidp_tests::Server;

/// The bound the WAL must stay under while the load runs.
const BOUND: u64 = 64 * 1024 * 1024;
/// What counts as empty once idle: SQLite truncates to zero; a header and a frame are tolerated.
const IDLE_MAX: u64 = 64 * 1024;
/// Long enough for an unbounded WAL to pass the bound many times over on this machine.
const LOAD: Duration = Duration::from_secs(25);
const CONCURRENCY: usize = 16;

fn wal_size(db: &Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
}

/// Polls until the WAL is at most `max` bytes or `within` passes; returns the last size.
async fn wait_for_wal_at_most(db: &Path, max: u64, within: Duration) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        let size = wal_size(db);
        if size <= max || Instant::now() >= deadline {
            return size;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_wal_stays_bounded_under_sustained_issuance_and_empties_when_idle() {
    let mut server = Server::start_with(&[
        ("AGENTIDP_RATE_LIMIT_CLIENT_PER_MINUTE", "0"),
        ("AGENTIDP_DB_SYNCHRONOUS", "full"),
    ])
    .await;
    let org = server.bootstrap("load").await;
    let agent = server.agent_with_secret(&org, "busy", &["read:docs"]).await;
    let db = server.db_path();

    let stop = Arc::new(AtomicBool::new(false));
    let issued = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (http, url) = (server.http.clone(), server.url("/oauth2/token"));
        let (id, secret) = (agent.client_id.clone(), agent.client_secret.clone());
        let (stop, issued) = (stop.clone(), issued.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let response = http
                    .post(&url)
                    .basic_auth(&id, Some(&secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                issued.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    let mut peak = 0;
    while started.elapsed() < LOAD {
        tokio::time::sleep(Duration::from_millis(200)).await;
        peak = peak.max(wal_size(&db));
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    let issued = issued.load(Ordering::Relaxed);
    let idle = wait_for_wal_at_most(&db, IDLE_MAX, Duration::from_secs(10)).await;
    eprintln!(
        "{issued} tokens in {:?}: WAL peak {peak} bytes, {} bytes per token; {idle} bytes once idle",
        LOAD,
        peak / issued.max(1)
    );
    assert!(
        issued > 1000,
        "the load generator issued only {issued} tokens"
    );
    assert!(peak < BOUND, "the WAL reached {peak} bytes under load");
    assert!(
        idle <= IDLE_MAX,
        "the WAL kept {idle} bytes after the load stopped"
    );

    assert!(server.stop().success());
    let after_shutdown = wal_size(&db);
    assert!(
        after_shutdown == 0,
        "the WAL kept {after_shutdown} bytes after a clean shutdown"
    );
}
