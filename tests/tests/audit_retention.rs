//! Audit retention over a simulated year, driven through the clock seam: events older than the
//! tier keeps them are removed in bounded batches behind signed checkpoints, the store stops
//! growing, every remaining event proves inclusion in the latest checkpoint, every pair of
//! remaining checkpoints is consistent, and the chain still verifies from where retention cut it.

use std::sync::Arc;
use std::time::Duration;

use agentidp_shared::config::Config;
use agentidp_shared::domain::audit::{Outcome, Verification};
use agentidp_shared::domain::caller::OrgId;
use agentidp_shared::domain::checkpoint;
use agentidp_shared::domain::merkle::{self, Hash};
use agentidp_shared::domain::sealed::{Kek, Keks};
use agentidp_shared::platform::memory_kv::MemoryKv;
use agentidp_shared::platform::native::{
    Durability, EmbeddedDatabase, NativeOutbound, TokioBackground,
};
use agentidp_shared::platform::system::OsEntropy;
use agentidp_shared::ports::runtime::Clock;
use agentidp_shared::ports::sql::{Change, Database, Statement};
use agentidp_shared::services::audit_log::{self, ConsistencyQuery, ProofQuery};
use agentidp_shared::services::audit_trail::verify_chain;
use agentidp_shared::services::retention;
use agentidp_shared::state::{AppState, Platform};
use agentidp_shared::store::{self, migrations};
use agentidp_tests::conformance::ManualClock;
use agentidp_tests::{open_db, Server};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

const DAY: i64 = 86_400_000;

async fn state(dir: &std::path::Path, clock: Arc<ManualClock>, issuer: &str) -> AppState {
    std::fs::create_dir_all(dir).unwrap();
    let db = Arc::new(
        EmbeddedDatabase::open(&dir.join("agentidp.db"), Durability::Normal)
            .await
            .unwrap(),
    );
    migrations::apply(db.as_ref(), clock.as_ref())
        .await
        .unwrap();
    let config = Config::load(
        &|name: &str| match name {
            "AGENTIDP_AUDIT_RETENTION_TIERS" => Some("free=1".to_owned()),
            _ => None,
        },
        Some(issuer),
    )
    .unwrap();
    AppState::new(
        config,
        Platform {
            db,
            kv: Arc::new(MemoryKv::new(clock.clone())),
            clock,
            entropy: Arc::new(OsEntropy),
            outbound: Arc::new(NativeOutbound::new(Duration::from_secs(5))),
            es256_accelerator: None,
            background: Arc::new(TokioBackground),
            keks: Arc::new(Keks::new(Kek::from_bytes(&[5; 32]), Vec::new())),
        },
    )
}

async fn count(db: &dyn Database, table: &str, org: &str) -> i64 {
    db.query_one(
        Statement::new(format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE org_id = ?1"
        ))
        .bind(org),
    )
    .await
    .unwrap()
    .unwrap()
    .get("n")
    .unwrap()
}

fn decode(list: &[String]) -> Vec<Hash> {
    list.iter()
        .map(|h| STANDARD.decode(h).unwrap().try_into().unwrap())
        .collect()
}

/// Every remaining event proves inclusion in the latest checkpoint, every pair of remaining
/// checkpoints is consistent, and every note verifies with the published key.
async fn assert_log_verifies(state: &AppState, org: &str) {
    let org_id = OrgId::new(org);
    let db = state.db.as_ref();
    let key = audit_log::verifier_key(state).await.unwrap();
    let notes: Vec<String> = db
        .query(
            Statement::new("SELECT note FROM audit_checkpoints WHERE org_id = ?1 ORDER BY size")
                .bind(org),
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("note").unwrap())
        .collect();
    assert!(!notes.is_empty());
    let checkpoints: Vec<checkpoint::Checkpoint> = notes
        .iter()
        .map(|n| checkpoint::verify_note(n, &key).unwrap())
        .collect();
    let latest = checkpoints.last().unwrap();
    let events = db
        .query(store::chain::hashes_after(org, 0, 1_000_000))
        .await
        .unwrap();
    for row in &events {
        let seq: i64 = row.get("seq").unwrap();
        if seq as u64 > latest.size {
            continue;
        }
        let hash: String = row.get("hash").unwrap();
        let proof = audit_log::inclusion(
            db,
            &org_id,
            seq,
            ProofQuery {
                size: Some(latest.size),
            },
        )
        .await
        .unwrap();
        let leaf = merkle::leaf_of_chain_hash(&hash).unwrap();
        assert!(merkle::verify_inclusion(
            &leaf,
            seq as u64 - 1,
            latest.size,
            &decode(&proof.audit_path),
            &latest.root
        ));
    }
    for (i, a) in checkpoints.iter().enumerate() {
        for b in &checkpoints[i..] {
            let query = ConsistencyQuery {
                from: Some(a.size),
                to: Some(b.size),
            };
            let proof = audit_log::consistency(db, &org_id, query).await.unwrap();
            assert!(
                merkle::verify_consistency(a.size, b.size, &decode(&proof.proof), &a.root, &b.root),
                "{} -> {}",
                a.size,
                b.size
            );
        }
    }
    match verify_chain(db, &org_id).await.unwrap() {
        Verification::Valid { .. } => {}
        broken => panic!("the chain no longer verifies: {broken:?}"),
    }
}

#[tokio::test]
async fn a_simulated_year_of_retention_levels_off_and_stays_verifiable() {
    let dir = std::env::temp_dir().join(format!("agentidp-retention-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let clock = ManualClock::at(1_700_000_000_000);
    let state = state(&dir, clock.clone(), "https://idp.test").await;
    let db = state.db.clone();
    let org = "org-retained";
    db.transaction(vec![store::orgs::insert(
        &agentidp_shared::domain::orgs::Organization {
            id: org.to_owned(),
            name: org.to_owned(),
            tier: "free",
            created_at: 0,
        },
    )])
    .await
    .unwrap();

    // 365 days of 4 bursts of 30 events (120 a day), a checkpoint and a retention sweep each day.
    let mut high_water = Vec::new();
    let mut removed_total = 0;
    for day in 0..365 {
        for _ in 0..4 {
            let mut change = Change::new();
            for _ in 0..30 {
                change = change.event(state.audit(org, "test", "token.issued", Outcome::Success));
            }
            db.commit(change).await.unwrap();
            clock.advance(DAY / 4);
        }
        audit_log::checkpoint_all(&state, clock.now_millis(), 100)
            .await
            .unwrap();
        loop {
            let removed = retention::sweep(&state, clock.now_millis()).await.unwrap();
            removed_total += removed;
            if removed == 0 {
                break;
            }
        }
        let rows = count(db.as_ref(), "audit_events", org).await
            + count(db.as_ref(), "audit_tree_nodes", org).await
            + count(db.as_ref(), "audit_checkpoints", org).await;
        let pages: i64 = db
            .query_one(Statement::new("PRAGMA page_count"))
            .await
            .unwrap()
            .unwrap()
            .get("page_count")
            .unwrap();
        high_water.push((rows, pages));
        if day % 91 == 45 {
            assert_log_verifies(&state, org).await;
        }
    }
    // Events older than a day are gone (but for the partial block); what is left is bounded.
    let events = count(db.as_ref(), "audit_events", org).await;
    assert!(events <= 2 * 122 + 16, "{events} events remain");
    assert!(removed_total > 365 * 120 - 2 * 122 - 16, "{removed_total}");
    // The store stopped growing: the second half of the year holds no more rows than the first.
    // (block rounding and the audited removals leave a few rows of play).
    let peak = |days: &[(i64, i64)]| {
        let rows = days.iter().map(|d| d.0).max().unwrap();
        let pages = days.iter().map(|d| d.1).max().unwrap();
        (rows, pages)
    };
    let (first_rows, first_pages) = peak(&high_water[10..180]);
    let (second_rows, second_pages) = peak(&high_water[180..]);
    assert!(
        second_rows <= first_rows + 32,
        "{first_rows} rows, then {second_rows}"
    );
    assert!(
        second_pages <= first_pages + first_pages / 10,
        "{first_pages} pages, then {second_pages}"
    );
    println!(
        "rows at peak: {first_rows} then {second_rows}; pages: {first_pages} then {second_pages}"
    );
    assert_log_verifies(&state, org).await;
    // Removals are audited, in the chain like every other event.
    let audited = db
        .query_one(
            Statement::new(
                "SELECT COUNT(*) AS n FROM audit_events WHERE org_id = ?1 AND action = 'audit.events_removed'",
            )
            .bind(org),
        )
        .await
        .unwrap()
        .unwrap()
        .get::<i64>("n")
        .unwrap();
    assert!(audited > 0);
    let _ = std::fs::remove_dir_all(&dir);
}

fn org_row(org: &str) -> Statement {
    store::orgs::insert(&agentidp_shared::domain::orgs::Organization {
        id: org.to_owned(),
        name: org.to_owned(),
        tier: "free",
        created_at: 0,
    })
}

#[tokio::test]
async fn kill_9_in_the_middle_of_removal_leaves_a_verifiable_log() {
    let dir = std::env::temp_dir().join(format!("agentidp-retention-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let real_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let org = "org-killed";
    {
        // A month-old history of 8,000 events (eight removal batches), written through the clock seam.
        let clock = ManualClock::at(real_now - 30 * DAY);
        let state = state(&dir, clock.clone(), "https://idp.test").await;
        state.db.transaction(vec![org_row(org)]).await.unwrap();
        for _ in 0..80 {
            let mut change = Change::new();
            for _ in 0..100 {
                change = change.event(state.audit(org, "test", "token.issued", Outcome::Success));
            }
            state.db.commit(change).await.unwrap();
            clock.advance(1000);
        }
    }
    // The server removes it (free tier: one day) batch after batch; kill it once removal began.
    let mut server = Server::start_in(
        dir.clone(),
        &[
            ("AGENTIDP_AUDIT_RETENTION_TIERS", "free=1"),
            ("AGENTIDP_AUDIT_CHECKPOINT_SECONDS", "1"),
        ],
    )
    .await;
    let conn = open_db(&dir.join("agentidp.db")).await;
    let started = std::time::Instant::now();
    loop {
        let mut rows = conn
            .query(
                "SELECT COALESCE(MAX(removable_through), 0) FROM audit_retention",
                (),
            )
            .await
            .unwrap();
        let removed: i64 = rows.next().await.unwrap().unwrap().get(0).unwrap();
        if removed > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no removal began"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.kill();
    drop(conn);

    // What the crash left proves inclusion and consistency, and the removal resumes from there.
    // The checkpoints name the server's issuer, and so does the key that verifies them.
    let clock = ManualClock::at(real_now);
    let state = state(&dir, clock.clone(), &server.base).await;
    let left = count(state.db.as_ref(), "audit_events", org).await;
    assert!(left < 8_000 && left > 0, "{left} events");
    assert_log_verifies(&state, org).await;
    while retention::sweep(&state, clock.now_millis()).await.unwrap() > 0 {}
    assert!(count(state.db.as_ref(), "audit_events", org).await < 64);
    assert_log_verifies(&state, org).await;
    drop(state);
    drop(server);
}
