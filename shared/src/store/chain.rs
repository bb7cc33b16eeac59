//! The `audit_events` table as a chain: appending sealed events, reading a chain's head, and the
//! optimistic append stateless edge instances use (the `(org_id, seq)` key as the lock), and each
//! organization's Merkle tree kept in the same transaction as its events.

use crate::domain::analytics;
use crate::domain::audit::{seal, AuditDraft, ChainHead, SealedEvent};
use crate::domain::merkle::{self, Frontier, Hash, NodeId};
use crate::ports::sql::{Change, Database, DbError, Row, Statement};

pub const EVENT_COLUMNS: &str =
    "org_id, seq, id, occurred_at, actor, action, agent_id, target, outcome, details, prev_hash, hash";

pub fn insert_statement(event: &SealedEvent) -> Statement {
    Statement::new(
        "INSERT INTO audit_events (org_id, seq, id, occurred_at, actor, action, agent_id, target, \
         outcome, details, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )
    .bind(&event.org_id)
    .bind(event.seq)
    .bind(&event.id)
    .bind(event.occurred_at)
    .bind(&event.actor)
    .bind(&event.action)
    .bind(event.agent_id.clone())
    .bind(event.target.clone())
    .bind(&event.outcome)
    .bind(&event.details)
    .bind(&event.prev_hash)
    .bind(&event.hash)
}

/// The query for an organization's chain head; see `chain_head_from`.
pub fn chain_head_query(org_id: &str) -> Statement {
    Statement::new("SELECT seq, hash FROM audit_events WHERE org_id = ?1 ORDER BY seq DESC LIMIT 1")
        .bind(org_id)
}

pub fn chain_head_from(rows: Vec<Row>) -> Result<ChainHead, DbError> {
    match rows.into_iter().next() {
        Some(row) => Ok(ChainHead {
            seq: row.get("seq")?,
            hash: row.get("hash")?,
        }),
        None => Ok(ChainHead::genesis()),
    }
}

pub async fn load_chain_head<D: Database + ?Sized>(
    db: &D,
    org_id: &str,
) -> Result<ChainHead, DbError> {
    chain_head_from(db.query(chain_head_query(org_id)).await?)
}

/// What appending to an organization's log needs: the chain's last link and the tree's frontier.
#[derive(Clone, Debug)]
pub struct Head {
    pub chain: ChainHead,
    pub tree: Frontier,
}

impl Head {
    pub fn genesis() -> Self {
        Head {
            chain: ChainHead::genesis(),
            tree: Frontier::default(),
        }
    }
}

/// Seals `draft` after `head` and advances it; pushes the statements that store the event, the
/// tree nodes it completes (one node insert per 16 events, amortized) and the analytics counter
/// it increments, if any.
pub fn append(draft: &AuditDraft, head: &mut Head, statements: &mut Vec<Statement>) -> SealedEvent {
    let sealed = seal(draft, &head.chain);
    statements.push(insert_statement(&sealed));
    // Analytics count token outcomes here, so that every path writing an event keeps them.
    if let Some(count) = analytics::token_count(draft) {
        statements.push(crate::store::analytics::increment(&draft.org_id, &count));
    }
    // `seal` wrote the hash itself, so it always decodes; an empty input would still hash.
    let leaf = merkle::leaf_of_chain_hash(&sealed.hash).unwrap_or_else(|| merkle::leaf_hash(&[]));
    head.tree.append(leaf, |id, hash| {
        statements.push(node_insert(&sealed.org_id, id, &hash, false));
    });
    head.chain = sealed.head();
    sealed
}

/// Stores a tree node; `or_ignore` for a backfill that may meet nodes already there.
pub fn node_insert(org_id: &str, id: NodeId, hash: &Hash, or_ignore: bool) -> Statement {
    Statement::new(if or_ignore {
        "INSERT OR IGNORE INTO audit_tree_nodes (org_id, level, idx, hash) VALUES (?1, ?2, ?3, ?4)"
    } else {
        "INSERT INTO audit_tree_nodes (org_id, level, idx, hash) VALUES (?1, ?2, ?3, ?4)"
    })
    .bind(org_id)
    .bind(i64::from(id.level))
    .bind(id.index as i64)
    .bind(hash.to_vec())
}

/// One query for everything `Head` needs: the events of the head's partial block (or the head
/// alone when the block is full) and the stored nodes of the tree's decomposition.
pub fn head_query(org_id: &str) -> Statement {
    const _: () = assert!(merkle::BLOCK == 16 && merkle::STORED_LEVEL == 4);
    Statement::new(
        "WITH head(s) AS (SELECT seq FROM audit_events WHERE org_id = ?1 ORDER BY seq DESC LIMIT 1), \
         levels(l) AS (SELECT 4 UNION ALL SELECT l + 1 FROM levels WHERE l < 62) \
         SELECT e.seq AS position, NULL AS level, e.hash AS hash, NULL AS node \
           FROM head, audit_events e \
           WHERE e.org_id = ?1 AND e.seq > MIN((head.s / 16) * 16, head.s - 1) \
         UNION ALL \
         SELECT n.idx, n.level, NULL, n.hash FROM head, levels, audit_tree_nodes n \
           WHERE (head.s >> levels.l) & 1 = 1 AND n.org_id = ?1 AND n.level = levels.l \
             AND n.idx = (head.s >> levels.l) - 1",
    )
    .bind(org_id)
}

/// The head from `head_query`'s rows, or `None` when stored nodes are missing (events written
/// before the tree existed): then `backfill` rebuilds it once.
pub fn head_from(rows: Vec<Row>) -> Result<Option<Head>, DbError> {
    let mut events: Vec<(i64, String)> = Vec::new();
    let mut nodes: Vec<(u32, Hash)> = Vec::new();
    for row in &rows {
        match row.get::<Option<i64>>("level")? {
            None => events.push((row.get("position")?, row.get("hash")?)),
            Some(level) => {
                let hash: Vec<u8> = row.get("node")?;
                let hash: Hash = hash
                    .try_into()
                    .map_err(|_| DbError::Decode("a tree node is not 32 bytes".into()))?;
                nodes.push((level as u32, hash));
            }
        }
    }
    events.sort_by_key(|(seq, _)| *seq);
    let Some((seq, hash)) = events.last().cloned() else {
        return Ok(Some(Head::genesis()));
    };
    nodes.sort_by_key(|(level, _)| std::cmp::Reverse(*level));
    let size = seq as u64;
    let block_start = size / merkle::BLOCK * merkle::BLOCK;
    let partial: Option<Vec<Hash>> = events
        .iter()
        .filter(|(s, _)| *s as u64 > block_start)
        .map(|(_, h)| merkle::leaf_of_chain_hash(h))
        .collect();
    let stored: Vec<Hash> = nodes.into_iter().map(|(_, h)| h).collect();
    let tree = partial.and_then(|partial| Frontier::rebuild(size, &stored, &partial));
    Ok(tree.map(|tree| Head {
        chain: ChainHead { seq, hash },
        tree,
    }))
}

/// Events read per query while backfilling a tree.
pub const BACKFILL_PAGE: i64 = 1000;

/// The chain hashes of an organization's events after `after_seq`, oldest first.
pub fn hashes_after(org_id: &str, after_seq: i64, limit: i64) -> Statement {
    Statement::new(
        "SELECT seq, hash FROM audit_events WHERE org_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )
    .bind(org_id)
    .bind(after_seq)
    .bind(limit)
}

/// Rebuilds a tree over events written before it existed, a page at a time; the nodes it finds
/// are stored with `INSERT OR IGNORE` in the transaction that needed them.
#[derive(Default)]
pub struct Backfill {
    head: Option<Head>,
    pub nodes: Vec<Statement>,
}

impl Backfill {
    /// Feeds one page of `hashes_after`; returns the `seq` to continue after, or `None` when done.
    pub fn feed(&mut self, org_id: &str, rows: Vec<Row>) -> Result<Option<i64>, DbError> {
        let head = self.head.get_or_insert_with(Head::genesis);
        let full = rows.len() as i64 == BACKFILL_PAGE;
        for row in rows {
            let seq: i64 = row.get("seq")?;
            let hash: String = row.get("hash")?;
            if seq != head.chain.seq + 1 {
                return Err(DbError::Decode(format!(
                    "audit events of {org_id} have a gap before {seq}: their tree cannot be rebuilt"
                )));
            }
            let leaf = merkle::leaf_of_chain_hash(&hash)
                .ok_or_else(|| DbError::Decode(format!("audit event {seq} has no chain hash")))?;
            let nodes = &mut self.nodes;
            head.tree.append(leaf, |id, node| {
                nodes.push(node_insert(org_id, id, &node, true));
            });
            head.chain = ChainHead { seq, hash };
        }
        Ok(full.then_some(head.chain.seq))
    }

    pub fn finish(self) -> (Head, Vec<Statement>) {
        (self.head.unwrap_or_else(Head::genesis), self.nodes)
    }
}

/// An organization's head, with the node inserts a backfill found missing.
pub async fn load_head<D: Database + ?Sized>(
    db: &D,
    org_id: &str,
) -> Result<(Head, Vec<Statement>), DbError> {
    if let Some(head) = head_from(db.query(head_query(org_id)).await?)? {
        return Ok((head, Vec::new()));
    }
    let mut backfill = Backfill::default();
    let mut after = 0;
    while let Some(next) = backfill.feed(
        org_id,
        db.query(hashes_after(org_id, after, BACKFILL_PAGE)).await?,
    )? {
        after = next;
    }
    Ok(backfill.finish())
}

/// An event exactly as stored.
pub fn sealed_from_row(row: &Row) -> Result<SealedEvent, DbError> {
    Ok(SealedEvent {
        org_id: row.get("org_id")?,
        seq: row.get("seq")?,
        id: row.get("id")?,
        occurred_at: row.get("occurred_at")?,
        actor: row.get("actor")?,
        action: row.get("action")?,
        agent_id: row.get("agent_id")?,
        target: row.get("target")?,
        outcome: row.get("outcome")?,
        details: row.get("details")?,
        prev_hash: row.get("prev_hash")?,
        hash: row.get("hash")?,
    })
}

/// Commits a change with its audit events appended to their organizations' chains: read each
/// chain head, then commit with the `(org_id, seq)` primary key as the optimistic lock, retrying
/// when another instance won the race.
pub async fn commit_optimistic<D: Database + ?Sized>(
    db: &D,
    change: Change,
) -> Result<Vec<u64>, DbError> {
    // Each round has exactly one winner per organization, so the bound must cover the concurrent
    // writers one organization can have; losers pay two round trips per round.
    const ATTEMPTS: usize = 64;
    let mut last_error = None;
    for _ in 0..ATTEMPTS {
        let mut statements = change.statements.clone();
        let mut heads: Vec<(String, Head)> = Vec::new();
        for event in &change.events {
            let head = match heads.iter_mut().position(|(org, _)| *org == event.org_id) {
                Some(i) => &mut heads[i].1,
                None => {
                    let (head, backfilled) = load_head(db, &event.org_id).await?;
                    statements.extend(backfilled);
                    heads.push((event.org_id.clone(), head));
                    &mut heads.last_mut().expect("just pushed").1
                }
            };
            append(event, head, &mut statements);
        }
        match db.transaction(statements).await {
            Ok(mut changed) => {
                changed.truncate(change.statements.len());
                return Ok(changed);
            }
            Err(e) if e.is_audit_chain_conflict() => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| DbError::Other("audit chain contention".into())))
}
