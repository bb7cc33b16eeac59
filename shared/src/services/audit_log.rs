//! The audit trail as a verifiable log: signed checkpoints of each organization's Merkle tree, the
//! checkpoint key, and RFC 9162 inclusion and consistency proofs.

use std::collections::{BTreeMap, BTreeSet};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::domain::caller::OrgId;
use crate::domain::checkpoint::{self, Checkpoint, CheckpointKey};
use crate::domain::merkle::{self, Hash, NodeId, Span};
use crate::domain::validate::Invalid;
use crate::ports::sql::{Database, DbError};
use crate::services::ServiceError;
use crate::state::AppState;
use crate::store::audit_tree::{self as store, StoredCheckpoint};
use crate::store::chain::{self, Head};

/// `GET /v1/audit/events/{seq}/proof`.
#[derive(Debug, Serialize)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    pub audit_path: Vec<String>,
}

/// `GET /v1/audit/consistency`.
#[derive(Debug, Serialize)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    pub proof: Vec<String>,
}

/// Query of `GET /v1/audit/events/{seq}/proof`: the tree size to prove against, by default the
/// current one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofQuery {
    pub size: Option<u64>,
}

/// Query of `GET /v1/audit/consistency`: `to` defaults to the current size.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    pub from: Option<u64>,
    pub to: Option<u64>,
}

/// The organization's head as stored; a tree missing under events written before trees existed
/// is rebuilt and stored once, here.
pub async fn current_head(db: &dyn Database, org_id: &OrgId) -> Result<Head, DbError> {
    let (head, backfilled) = chain::load_head(db, org_id.as_str()).await?;
    if !backfilled.is_empty() {
        db.transaction(backfilled).await?;
    }
    Ok(head)
}

/// The deployment's checkpoint key, made on first use (of racing first uses, one seed wins).
pub async fn checkpoint_key(state: &AppState) -> Result<CheckpointKey, ServiceError> {
    let db = state.db.as_ref();
    let seed = match store::checkpoint_seed(db).await? {
        Some(seed) => seed,
        None => {
            let seed = state.random::<32>();
            db.transaction(vec![store::insert_checkpoint_seed(
                &seed,
                state.now_millis(),
            )])
            .await?;
            store::checkpoint_seed(db)
                .await?
                .ok_or_else(|| DbError::Other("the checkpoint key was not stored".into()))?
        }
    };
    CheckpointKey::from_seed(checkpoint::key_name(&state.config.issuer), &seed)
        .ok_or_else(|| DbError::Decode("the checkpoint key seed is not 32 bytes".into()).into())
}

/// `GET /v1/audit/checkpoints/key`: the note verifier key, `name+hash+base64`.
pub async fn verifier_key(state: &AppState) -> Result<String, ServiceError> {
    Ok(checkpoint_key(state).await?.verifier_key())
}

/// Signs and stores a checkpoint of the organization's tree as it is now, unless the latest one
/// already has its size. What `GET /v1/audit/checkpoints/latest` answers, and what the periodic
/// task calls.
pub async fn checkpoint_now(
    state: &AppState,
    org_id: &OrgId,
    now: i64,
) -> Result<StoredCheckpoint, ServiceError> {
    let db = state.db.as_ref();
    let head = current_head(db, org_id).await?;
    if let Some(latest) = store::latest_checkpoint(db, org_id.as_str()).await? {
        if latest.size as u64 >= head.tree.size() {
            return Ok(latest);
        }
    }
    let key = checkpoint_key(state).await?;
    let statement = Checkpoint {
        origin: checkpoint::origin(&state.config.issuer, org_id.as_str()),
        size: head.tree.size(),
        root: head.tree.root(),
    };
    let note = key.sign(&statement);
    let size = statement.size as i64;
    db.transaction(vec![store::insert_checkpoint(
        org_id.as_str(),
        size,
        &statement.root,
        &note,
        now,
    )])
    .await?;
    Ok(StoredCheckpoint {
        size,
        root: statement.root,
        note,
        created_at: now,
    })
}

/// Checkpoints every organization whose tree grew since its latest checkpoint (at most `limit`
/// per call); returns how many were signed.
pub async fn checkpoint_all(state: &AppState, now: i64, limit: i64) -> Result<usize, ServiceError> {
    let orgs = store::orgs_needing_checkpoint(state.db.as_ref(), limit).await?;
    for org in &orgs {
        checkpoint_now(state, &OrgId::new(org.as_str()), now).await?;
    }
    Ok(orgs.len())
}

/// `GET /v1/audit/events/{seq}/proof`: the inclusion proof of the event of sequence `seq` (leaf
/// `seq - 1`) in the tree of `size` events.
pub async fn inclusion(
    db: &dyn Database,
    org_id: &OrgId,
    seq: i64,
    query: ProofQuery,
) -> Result<InclusionProof, ServiceError> {
    let current = current_head(db, org_id).await?.tree.size();
    let size = checked_size("size", query.size, current)?;
    if seq < 1 || seq as u64 > size {
        return Err(ServiceError::NotFound("audit event"));
    }
    let index = seq as u64 - 1;
    let path = resolve(db, org_id, &merkle::inclusion_spans(index, size)).await?;
    Ok(InclusionProof {
        leaf_index: index,
        tree_size: size,
        audit_path: path.iter().map(|h| STANDARD.encode(h)).collect(),
    })
}

/// `GET /v1/audit/consistency?from=M&to=N`.
pub async fn consistency(
    db: &dyn Database,
    org_id: &OrgId,
    query: ConsistencyQuery,
) -> Result<ConsistencyProof, ServiceError> {
    let current = current_head(db, org_id).await?.tree.size();
    let to = checked_size("to", query.to, current)?;
    let from = query
        .from
        .ok_or_else(|| Invalid::new("from", "is required"))?;
    if from > to {
        return Err(Invalid::new("from", "must not exceed `to`").into());
    }
    let proof = resolve(db, org_id, &merkle::consistency_spans(from, to)).await?;
    Ok(ConsistencyProof {
        from,
        to,
        proof: proof.iter().map(|h| STANDARD.encode(h)).collect(),
    })
}

fn checked_size(name: &'static str, size: Option<u64>, current: u64) -> Result<u64, Invalid> {
    match size {
        None => Ok(current),
        Some(size) if size <= current => Ok(size),
        Some(_) => Err(Invalid::new(
            name,
            format!("exceeds the tree's current size ({current})"),
        )),
    }
}

/// The MTH of each span, from stored nodes and the events of at most a few blocks. A span reaching
/// into events retention removed (below a stored node) answers 404 like a missing event.
async fn resolve(
    db: &dyn Database,
    org_id: &OrgId,
    spans: &[Span],
) -> Result<Vec<Hash>, ServiceError> {
    let per_span: Vec<Vec<NodeId>> = spans.iter().map(|s| merkle::span_nodes(*s)).collect();
    let stored_ids: Vec<NodeId> = per_span
        .iter()
        .flatten()
        .filter(|id| id.is_stored())
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let blocks: BTreeSet<u64> = per_span
        .iter()
        .flatten()
        .filter(|id| !id.is_stored())
        .map(|id| id.block())
        .collect();
    let stored = store::nodes(db, org_id.as_str(), &stored_ids).await?;
    let mut leaves: BTreeMap<u64, Vec<Hash>> = BTreeMap::new();
    for block in blocks {
        leaves.insert(
            block,
            store::block_leaves(db, org_id.as_str(), block).await?,
        );
    }
    let mut out = Vec::with_capacity(spans.len());
    for ids in per_span {
        let mut hashes = Vec::with_capacity(ids.len());
        for id in ids {
            let hash = if id.is_stored() {
                stored.get(&id).copied()
            } else {
                leaves
                    .get(&id.block())
                    .and_then(|l| merkle::node_from_block(id, l))
            };
            hashes.push(hash.ok_or(ServiceError::NotFound("audit tree node"))?);
        }
        out.push(merkle::fold_span(&hashes).ok_or(ServiceError::NotFound("audit tree node"))?);
    }
    Ok(out)
}
