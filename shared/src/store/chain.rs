//! The `audit_events` table as a chain: appending sealed events, reading a chain's head, and the
//! optimistic append stateless edge instances use (the `(org_id, seq)` key as the lock).

use crate::domain::audit::{seal, ChainHead, SealedEvent};
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
        let mut heads: Vec<(String, ChainHead)> = Vec::new();
        for event in &change.events {
            let head = match heads.iter_mut().find(|(org, _)| *org == event.org_id) {
                Some((_, head)) => head,
                None => {
                    let head = load_chain_head(db, &event.org_id).await?;
                    heads.push((event.org_id.clone(), head));
                    &mut heads.last_mut().expect("just pushed").1
                }
            };
            let sealed = seal(event, head);
            statements.push(insert_statement(&sealed));
            *head = sealed.head();
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
