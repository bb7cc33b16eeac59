//! One conformance suite per seam: the behaviour every key-value store (in-process, Redis, Upstash
//! REST) and every database (embedded, libSQL over HTTP) must show, written once and run against
//! each implementation (`tests/tests/conformance.rs`).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use agentidp_shared::domain::audit::Verification;
use agentidp_shared::domain::audit::{AuditDraft, ChainHead, Outcome};
use agentidp_shared::domain::caller::OrgId;
use agentidp_shared::domain::merkle;
use agentidp_shared::domain::revocation::revoked_by;
use agentidp_shared::ports::kv::{Admission, KeyValue, Window};
use agentidp_shared::ports::runtime::Clock;
use agentidp_shared::ports::sql::{Change, Database, DbError, Statement, Value};
use agentidp_shared::services::audit_trail::verify_chain;
use agentidp_shared::services::revocation;
use agentidp_shared::store::{self, chain, migrations};

/// A clock a test moves by hand.
#[derive(Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn at(millis: i64) -> Arc<ManualClock> {
        Arc::new(ManualClock(AtomicI64::new(millis)))
    }

    pub fn advance(&self, millis: i64) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// How time passes for a store's own expiry: the in-process store follows the clock seam; a remote
/// store keeps its own clock, which only real time moves.
pub enum Expiry {
    Clock(Arc<ManualClock>),
    RealTime,
}

impl Expiry {
    async fn pass(&self, seconds: u64) {
        match self {
            Expiry::Clock(clock) => clock.advance(i64::try_from(seconds).unwrap() * 1000),
            Expiry::RealTime => tokio::time::sleep(Duration::from_secs(seconds)).await,
        }
    }
}

/// Keys of one run, so suites can share a store.
fn key(run: &str, name: &str) -> String {
    format!("conformance:{run}:{name}")
}

fn window(run: &str, name: &str, limit: u64) -> Window {
    Window {
        key: key(run, name),
        limit,
        window_millis: 60_000,
    }
}

fn hit(run: &str, limit: u64, now: i64, n: u64) -> Admission {
    Admission {
        windows: vec![window(run, "window", limit)],
        peek: false,
        reads: vec![key(run, "revoked")],
        unless_revoked: None,
        counters: vec![key(run, "calls")],
        counter_ttl_seconds: 60,
        now_millis: now,
        hit_id: format!("{run}-{n}"),
    }
}

/// The key-value behaviour every store must show. `run` names this run's keys.
pub async fn key_value_suite(kv: Arc<dyn KeyValue>, expiry: Expiry, run: &str) {
    // Absent keys read as none; set overwrites; reads come back in the order asked.
    let (a, b) = (key(run, "a"), key(run, "b"));
    assert_eq!(
        kv.get_many(&[a.clone(), b.clone()]).await.unwrap(),
        vec![None, None]
    );
    kv.set(&a, "1", 60).await.unwrap();
    kv.set(&a, "2", 60).await.unwrap();
    kv.set(&b, "3", 60).await.unwrap();
    assert_eq!(
        kv.get_many(&[b.clone(), a.clone()]).await.unwrap(),
        vec![Some("3".to_owned()), Some("2".to_owned())]
    );

    // Single-use values: exactly one of many concurrent claims wins.
    let once = key(run, "once");
    let claims: Vec<_> = (0..20)
        .map(|_| {
            let (kv, once) = (kv.clone(), once.clone());
            tokio::spawn(async move { kv.set_if_absent(&once, "1", 60).await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for claim in claims {
        winners += usize::from(claim.await.unwrap());
    }
    assert_eq!(winners, 1, "set_if_absent let {winners} callers win");

    // The sliding window: exactly N admitted, refused hits are not logged, only admitted ones
    // metered, and the reads are answered either way.
    kv.set(&key(run, "revoked"), "1", 60).await.unwrap();
    for n in 1..=5 {
        let outcome = kv.admit(&hit(run, 5, 1_000_000, n)).await.unwrap();
        assert!(outcome.admitted, "hit {n}");
        assert_eq!(outcome.windows[0].in_window, n);
        assert_eq!(outcome.values, vec![Some("1".to_owned())]);
    }
    let sixth = kv.admit(&hit(run, 5, 1_000_100, 6)).await.unwrap();
    assert!(!sixth.admitted);
    assert_eq!(sixth.windows[0].in_window, 5);
    assert_eq!(sixth.windows[0].oldest_millis, 1_000_000);
    assert_eq!(sixth.values, vec![Some("1".to_owned())]);
    assert_eq!(
        kv.get_many(&[key(run, "calls")]).await.unwrap(),
        vec![Some("5".to_owned())]
    );
    // A window boundary cannot be doubled: the hits leave exactly one window after they came.
    assert!(!kv.admit(&hit(run, 5, 1_059_999, 7)).await.unwrap().admitted);
    let after = kv.admit(&hit(run, 5, 1_060_000, 8)).await.unwrap();
    assert!(after.admitted, "the window did not slide");
    assert_eq!(after.windows[0].in_window, 1);

    // No window (limits off): admitted, metered, reads answered.
    let mut unlimited = hit(run, 0, 2_000_000, 9);
    unlimited.windows.clear();
    let outcome = kv.admit(&unlimited).await.unwrap();
    assert!(outcome.admitted);
    assert!(outcome.windows.is_empty());
    assert_eq!(
        kv.get_many(&[key(run, "calls")]).await.unwrap(),
        vec![Some("7".to_owned())]
    );

    // Several windows: admitted only while every one has room, and then counted in every one;
    // a refusal counts in none and meters nothing.
    let both = |n: u64, now: i64| Admission {
        windows: vec![window(run, "wide", 5), window(run, "narrow", 2)],
        peek: false,
        reads: Vec::new(),
        unless_revoked: None,
        counters: vec![key(run, "both-calls")],
        counter_ttl_seconds: 60,
        now_millis: now,
        hit_id: format!("{run}-both-{n}"),
    };
    for n in 1..=2 {
        let outcome = kv.admit(&both(n, 3_000_000)).await.unwrap();
        assert!(outcome.admitted, "hit {n} of both");
        let counts: Vec<u64> = outcome.windows.iter().map(|w| w.in_window).collect();
        assert_eq!(counts, [n, n]);
    }
    let refused = kv.admit(&both(3, 3_000_001)).await.unwrap();
    assert!(!refused.admitted, "the narrow window is full");
    let counts: Vec<u64> = refused.windows.iter().map(|w| w.in_window).collect();
    assert_eq!(
        counts,
        [2, 2],
        "a refused hit was counted in the wide window"
    );
    assert_eq!(
        kv.get_many(&[key(run, "both-calls")]).await.unwrap(),
        vec![Some("2".to_owned())]
    );

    // A peek asks without counting: nothing recorded, nothing metered, no log left behind.
    let peek = |windows: Vec<Window>, now: i64| Admission {
        windows,
        peek: true,
        reads: vec![key(run, "revoked")],
        unless_revoked: None,
        counters: vec![key(run, "peek-calls")],
        counter_ttl_seconds: 60,
        now_millis: now,
        hit_id: format!("{run}-peek"),
    };
    for _ in 0..3 {
        let outcome = kv
            .admit(&peek(vec![window(run, "wide", 5)], 3_000_002))
            .await
            .unwrap();
        assert!(outcome.admitted);
        assert_eq!(outcome.windows[0].in_window, 2, "a peek was counted");
        assert_eq!(outcome.values, vec![Some("1".to_owned())]);
    }
    let full = kv
        .admit(&peek(vec![window(run, "narrow", 2)], 3_000_003))
        .await
        .unwrap();
    assert!(!full.admitted, "a peek at a full window has room");
    let fresh = kv
        .admit(&peek(vec![window(run, "never-hit", 1)], 3_000_004))
        .await
        .unwrap();
    assert!(fresh.admitted);
    assert_eq!(fresh.windows[0].in_window, 0);
    assert_eq!(
        kv.get_many(&[key(run, "peek-calls")]).await.unwrap(),
        vec![None],
        "a peek was metered"
    );

    // A revoked token's call counts in no window and meters nothing, whatever the room; an
    // unrevoked one counts. The reads are the token's jti entry, then its subject's cutoff.
    kv.set(&key(run, "cutoff"), "500", 60).await.unwrap();
    let token_call = |issued_at: i64, jti_entry: &str, n: u64| Admission {
        windows: vec![window(run, "token-window", 1)],
        peek: false,
        reads: vec![key(run, jti_entry), key(run, "cutoff")],
        unless_revoked: Some(issued_at),
        counters: vec![key(run, "token-calls")],
        counter_ttl_seconds: 60,
        now_millis: 4_000_000,
        hit_id: format!("{run}-token-{n}"),
    };
    for (n, (issued_at, jti_entry)) in [(500, "no-such-jti"), (900, "revoked")]
        .into_iter()
        .enumerate()
    {
        let outcome = kv
            .admit(&token_call(issued_at, jti_entry, n as u64))
            .await
            .unwrap();
        assert!(
            outcome.admitted,
            "a revoked token's call was refused for room"
        );
        assert!(
            outcome.windows.is_empty(),
            "a revoked token's call was counted"
        );
        assert_eq!(outcome.values.len(), 2);
    }
    let live = kv.admit(&token_call(501, "no-such-jti", 7)).await.unwrap();
    assert!(live.admitted);
    assert_eq!(live.windows[0].in_window, 1);
    assert_eq!(
        kv.get_many(&[key(run, "token-calls")]).await.unwrap(),
        vec![Some("1".to_owned())]
    );

    // Revocation entries: one token, and every token of a subject up to a moment.
    let (jti, subject) = (key(run, "jti"), key(run, "agent"));
    revocation::revoke_token(kv.as_ref(), &jti, 1_000 + 1, 1_000)
        .await
        .unwrap();
    revocation::revoke_subject(kv.as_ref(), &subject, 500, 3600)
        .await
        .unwrap();
    let keys = vec![
        agentidp_shared::store::kv_keys::revoked_jti(&jti),
        agentidp_shared::store::kv_keys::revoked_subject(&subject),
    ];
    let values = kv.get_many(&keys).await.unwrap();
    assert!(revoked_by(10_000, &values), "the jti entry is not seen");
    let subject_only = vec![None, values[1].clone()];
    assert!(revoked_by(500, &subject_only));
    assert!(!revoked_by(501, &subject_only));

    // Entries expire with their TTL, and a used single-use value can be claimed again after it.
    let short = key(run, "short");
    kv.set(&short, "x", 1).await.unwrap();
    assert!(kv
        .set_if_absent(&key(run, "short-once"), "1", 1)
        .await
        .unwrap());
    expiry.pass(2).await;
    assert_eq!(kv.get_many(&[short]).await.unwrap(), vec![None]);
    assert!(kv
        .set_if_absent(&key(run, "short-once"), "1", 1)
        .await
        .unwrap());
    // The revoked jti's entry expired with the token (TTL = its remaining lifetime, 1 s).
    assert_eq!(kv.get_many(&keys[..1]).await.unwrap(), vec![None]);
}

fn draft(org: &str, n: usize) -> AuditDraft {
    AuditDraft {
        org_id: org.to_owned(),
        id: format!("{org}-event-{n}"),
        occurred_at: 1_700_000_000_000 + n as i64,
        actor: "conformance".into(),
        action: "agent.created",
        agent_id: None,
        target: None,
        outcome: Outcome::Success,
        details: serde_json::json!({ "n": n }),
    }
}

fn org_row(id: &str) -> Statement {
    // An organization row through the store, as sign-up writes it.
    store::orgs::insert(&agentidp_shared::domain::orgs::Organization {
        id: id.to_owned(),
        name: id.to_owned(),
        tier: "free",
        created_at: 0,
    })
}

/// The database behaviour every engine must show. `run` names this run's organizations.
pub async fn database_suite(db: Arc<dyn Database>, run: &str) {
    migrations::apply(db.as_ref(), &ManualClock::default())
        .await
        .unwrap();
    // Applying again is a no-op.
    assert!(migrations::apply(db.as_ref(), &ManualClock::default())
        .await
        .unwrap()
        .is_empty());

    // Every value type round-trips.
    let row = db
        .query_one(
            Statement::new("SELECT ?1 AS n, ?2 AS i, ?3 AS r, ?4 AS t, ?5 AS b")
                .bind(Value::Null)
                .bind(i64::MAX)
                .bind(Value::Real(0.5))
                .bind("héllo ✓")
                .bind(vec![0u8, 255, 7]),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<Option<i64>>("n").unwrap(), None);
    assert_eq!(row.get::<i64>("i").unwrap(), i64::MAX);
    assert_eq!(row.get::<String>("t").unwrap(), "héllo ✓");
    assert_eq!(row.get::<Vec<u8>>("b").unwrap(), vec![0u8, 255, 7]);

    // A transaction reports rows changed per statement; a constraint failure is a `Constraint`
    // and leaves nothing behind.
    let org = format!("{run}-org");
    let changed = db.transaction(vec![org_row(&org)]).await.unwrap();
    assert_eq!(changed, vec![1]);
    let other = format!("{run}-other");
    match db.transaction(vec![org_row(&other), org_row(&org)]).await {
        Err(DbError::Constraint(_)) => {}
        other => panic!("a duplicate key answered {other:?}"),
    }
    assert_eq!(store::orgs::tier(db.as_ref(), &other).await.unwrap(), None);

    // A guard that fires aborts the whole change with its code, events included.
    let guarded = Change::new()
        .statement(org_row(&other))
        .statement(store::guard("conformance_guard", "?1 = 1").bind(1_i64))
        .event(draft(&org, 0));
    match db.commit(guarded).await {
        Err(DbError::Guard("conformance_guard")) => {}
        other => panic!("a fired guard answered {other:?}"),
    }
    assert_eq!(store::orgs::tier(db.as_ref(), &other).await.unwrap(), None);
    assert_eq!(
        chain::load_chain_head(db.as_ref(), &org).await.unwrap(),
        ChainHead::genesis()
    );
    // A guard that holds lets the change through.
    let passing = Change::new()
        .statement(store::guard("conformance_guard", "?1 = 1").bind(0_i64))
        .event(draft(&org, 0));
    db.commit(passing).await.unwrap();

    // Concurrent commits to one organization's chain: every one lands, the chain stays whole.
    let commits: Vec<_> = (1..=20)
        .map(|n| {
            let (db, org) = (db.clone(), org.clone());
            tokio::spawn(async move { db.commit(Change::new().event(draft(&org, n))).await })
        })
        .collect();
    for commit in commits {
        commit.await.unwrap().unwrap();
    }
    let org_id = OrgId::new(org.as_str());
    match verify_chain(db.as_ref(), &org_id).await.unwrap() {
        Verification::Valid {
            events_checked,
            head,
        } => {
            assert_eq!(events_checked, 21);
            assert_eq!(head.unwrap().seq, 21);
        }
        broken => panic!("the chain broke under concurrent commits: {broken:?}"),
    }

    // The Merkle tree is kept in the same commits: one change appending several events, then
    // concurrent ones; every stored node is the RFC 9162 hash of its leaves, none is missing, and
    // the head's root is the tree of every event.
    db.commit(
        Change::new()
            .event(draft(&org, 100))
            .event(draft(&org, 101))
            .event(draft(&org, 102)),
    )
    .await
    .unwrap();
    let commits: Vec<_> = (200..240)
        .map(|n| {
            let (db, org) = (db.clone(), org.clone());
            tokio::spawn(async move { db.commit(Change::new().event(draft(&org, n))).await })
        })
        .collect();
    for commit in commits {
        commit.await.unwrap().unwrap();
    }
    assert_tree_is_whole(db.as_ref(), &org, 64).await;
}

/// RFC 9162 MTH, recursively, as the reference.
fn mth(leaves: &[merkle::Hash]) -> merkle::Hash {
    match leaves.len() {
        0 => merkle::empty_root(),
        1 => leaves[0],
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            merkle::node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// Checks an organization's stored tree against its events: `size` events, each stored node the
/// MTH of its leaves, every complete node at level 4 and above stored, the head's root right.
pub async fn assert_tree_is_whole(db: &dyn Database, org: &str, size: usize) {
    let rows = db
        .query(chain::hashes_after(org, 0, 1_000_000))
        .await
        .unwrap();
    let leaves: Vec<merkle::Hash> = rows
        .iter()
        .map(|r| merkle::leaf_of_chain_hash(&r.get::<String>("hash").unwrap()).unwrap())
        .collect();
    assert_eq!(leaves.len(), size);
    let nodes = db
        .query(
            Statement::new("SELECT level, idx, hash FROM audit_tree_nodes WHERE org_id = ?1")
                .bind(org),
        )
        .await
        .unwrap();
    let mut expected = 0;
    let mut level = merkle::STORED_LEVEL;
    while (1usize << level) <= size {
        expected += size >> level;
        level += 1;
    }
    assert_eq!(nodes.len(), expected, "stored nodes");
    for node in nodes {
        let (level, idx): (i64, i64) = (node.get("level").unwrap(), node.get("idx").unwrap());
        let (start, end) = ((idx << level) as usize, ((idx + 1) << level) as usize);
        let hash: Vec<u8> = node.get("hash").unwrap();
        assert_eq!(
            hash,
            mth(&leaves[start..end]).to_vec(),
            "node {level}/{idx}"
        );
    }
    let (head, backfill) = chain::load_head(db, org).await.unwrap();
    assert!(backfill.is_empty());
    assert_eq!(head.tree.size() as usize, size);
    assert_eq!(head.tree.root(), mth(&leaves));
}
