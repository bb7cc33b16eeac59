//! The audit chain: events drafted by the domain, sealed into a per-organization SHA-256 hash chain.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::sql::{Database, DbError, Row, Statement};

/// The `prev_hash` of an organization's first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// An event before it has a place in the chain.
#[derive(Clone, Debug)]
pub struct AuditDraft {
    pub org_id: String,
    pub id: String,
    pub occurred_at: i64,
    pub actor: String,
    pub action: &'static str,
    pub agent_id: Option<String>,
    pub target: Option<String>,
    pub outcome: Outcome,
    pub details: serde_json::Value,
}

/// The last link of an organization's chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
}

impl ChainHead {
    pub fn genesis() -> Self {
        ChainHead {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        }
    }
}

/// An event with its position and hashes, exactly as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct SealedEvent {
    pub org_id: String,
    pub seq: i64,
    pub id: String,
    pub occurred_at: i64,
    pub actor: String,
    pub action: String,
    pub agent_id: Option<String>,
    pub target: Option<String>,
    pub outcome: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

impl SealedEvent {
    pub fn head(&self) -> ChainHead {
        ChainHead {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }

    /// The hash this event's stored fields imply; verification compares it with `hash`.
    pub fn computed_hash(&self) -> String {
        // A JSON array gives an unambiguous encoding of the fields without a bespoke format.
        let canonical = serde_json::json!([
            "agentidp.audit.v1",
            self.org_id,
            self.seq,
            self.id,
            self.occurred_at,
            self.actor,
            self.action,
            self.agent_id,
            self.target,
            self.outcome,
            self.details,
            self.prev_hash,
        ]);
        hex(&Sha256::digest(canonical.to_string().as_bytes()))
    }

    pub fn from_row(row: &Row) -> Result<Self, DbError> {
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
}

/// Places a draft after `head`.
pub fn seal(draft: &AuditDraft, head: &ChainHead) -> SealedEvent {
    let mut event = SealedEvent {
        org_id: draft.org_id.clone(),
        seq: head.seq + 1,
        id: draft.id.clone(),
        occurred_at: draft.occurred_at,
        actor: draft.actor.clone(),
        action: draft.action.to_owned(),
        agent_id: draft.agent_id.clone(),
        target: draft.target.clone(),
        outcome: draft.outcome.as_str().to_owned(),
        details: draft.details.to_string(),
        prev_hash: head.hash.clone(),
        hash: String::new(),
    };
    event.hash = event.computed_hash();
    event
}

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

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}
