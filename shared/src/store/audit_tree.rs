//! The audit trees' stored parts: nodes a proof needs, the leaves of a block, signed checkpoints
//! and the checkpoint signing key.

use std::collections::BTreeMap;

use crate::domain::merkle::{self, Hash, NodeId};
use crate::ports::sql::{Database, DbError, Row, Statement};

fn hash_of(row: &Row, column: &str) -> Result<Hash, DbError> {
    let bytes: Vec<u8> = row.get(column)?;
    bytes
        .try_into()
        .map_err(|_| DbError::Decode(format!("`{column}` is not 32 bytes")))
}

/// The stored nodes among `ids` (all at `STORED_LEVEL` or above); missing ones are absent.
pub async fn nodes(
    db: &dyn Database,
    org_id: &str,
    ids: &[NodeId],
) -> Result<BTreeMap<NodeId, Hash>, DbError> {
    let mut out = BTreeMap::new();
    // A proof needs at most two nodes per level; 64 pairs keep the statement's parameters bounded.
    for chunk in ids.chunks(64) {
        let pairs: Vec<String> = (0..chunk.len())
            .map(|i| format!("(?{}, ?{})", 2 + 2 * i, 3 + 2 * i))
            .collect();
        let mut statement = Statement::new(format!(
            "SELECT level, idx, hash FROM audit_tree_nodes \
             WHERE org_id = ?1 AND (level, idx) IN (VALUES {})",
            pairs.join(", ")
        ))
        .bind(org_id);
        for id in chunk {
            statement = statement.bind(i64::from(id.level)).bind(id.index as i64);
        }
        for row in db.query(statement).await? {
            let level: i64 = row.get("level")?;
            let index: i64 = row.get("idx")?;
            out.insert(
                NodeId {
                    level: level as u32,
                    index: index as u64,
                },
                hash_of(&row, "hash")?,
            );
        }
    }
    Ok(out)
}

/// The leaf hashes of a block (leaves `block * BLOCK ..`), as many as are stored and contiguous.
pub async fn block_leaves(
    db: &dyn Database,
    org_id: &str,
    block: u64,
) -> Result<Vec<Hash>, DbError> {
    let first_seq = (block * merkle::BLOCK) as i64 + 1;
    let rows = db
        .query(
            Statement::new(
                "SELECT seq, hash FROM audit_events WHERE org_id = ?1 AND seq >= ?2 AND seq < ?3 \
                 ORDER BY seq",
            )
            .bind(org_id)
            .bind(first_seq)
            .bind(first_seq + merkle::BLOCK as i64),
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let seq: i64 = row.get("seq")?;
        if seq != first_seq + i as i64 {
            break;
        }
        let hash: String = row.get("hash")?;
        match merkle::leaf_of_chain_hash(&hash) {
            Some(leaf) => out.push(leaf),
            None => break,
        }
    }
    Ok(out)
}

/// A checkpoint as stored.
#[derive(Clone, Debug)]
pub struct StoredCheckpoint {
    pub size: i64,
    pub root: Hash,
    pub note: String,
    pub created_at: i64,
}

fn checkpoint_from(row: &Row) -> Result<StoredCheckpoint, DbError> {
    Ok(StoredCheckpoint {
        size: row.get("size")?,
        root: hash_of(row, "root")?,
        note: row.get("note")?,
        created_at: row.get("created_at")?,
    })
}

pub async fn latest_checkpoint(
    db: &dyn Database,
    org_id: &str,
) -> Result<Option<StoredCheckpoint>, DbError> {
    db.query_one(
        Statement::new(
            "SELECT size, root, note, created_at FROM audit_checkpoints WHERE org_id = ?1 \
             ORDER BY size DESC LIMIT 1",
        )
        .bind(org_id),
    )
    .await?
    .as_ref()
    .map(checkpoint_from)
    .transpose()
}

/// The earliest checkpoint of at least `size`: the one covering the first `size` events.
pub async fn covering_checkpoint(
    db: &dyn Database,
    org_id: &str,
    size: i64,
) -> Result<Option<StoredCheckpoint>, DbError> {
    db.query_one(
        Statement::new(
            "SELECT size, root, note, created_at FROM audit_checkpoints WHERE org_id = ?1 \
             AND size >= ?2 ORDER BY size LIMIT 1",
        )
        .bind(org_id)
        .bind(size),
    )
    .await?
    .as_ref()
    .map(checkpoint_from)
    .transpose()
}

/// Records a checkpoint; a second one of the same size (the same note: Ed25519 is deterministic)
/// is ignored.
pub fn insert_checkpoint(org_id: &str, size: i64, root: &Hash, note: &str, now: i64) -> Statement {
    Statement::new(
        "INSERT OR IGNORE INTO audit_checkpoints (org_id, size, root, note, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .bind(org_id)
    .bind(size)
    .bind(root.to_vec())
    .bind(note)
    .bind(now)
}

/// The checkpoint key's seed, if one was made.
pub async fn checkpoint_seed(db: &dyn Database) -> Result<Option<Vec<u8>>, DbError> {
    Ok(
        match db
            .query_one(Statement::new(
                "SELECT seed FROM audit_checkpoint_key WHERE id = 1",
            ))
            .await?
        {
            Some(row) => Some(row.get("seed")?),
            None => None,
        },
    )
}

/// Records a seed unless one exists: of concurrent first uses, one seed wins and all read it.
pub fn insert_checkpoint_seed(seed: &[u8; 32], now: i64) -> Statement {
    Statement::new(
        "INSERT OR IGNORE INTO audit_checkpoint_key (id, seed, created_at) VALUES (1, ?1, ?2)",
    )
    .bind(seed.to_vec())
    .bind(now)
}

/// Organizations whose tree has grown past their latest checkpoint (at most `limit`).
pub async fn orgs_needing_checkpoint(
    db: &dyn Database,
    limit: i64,
) -> Result<Vec<String>, DbError> {
    let rows = db
        .query(
            Statement::new(
                "SELECT o.id AS org_id FROM orgs o \
                 WHERE COALESCE((SELECT MAX(seq) FROM audit_events e WHERE e.org_id = o.id), 0) \
                     > COALESCE((SELECT MAX(size) FROM audit_checkpoints c WHERE c.org_id = o.id), -1) \
                 LIMIT ?1",
            )
            .bind(limit),
        )
        .await?;
    rows.iter().map(|r| r.get("org_id")).collect()
}

/// Through which `seq` retention has removed an organization's events (0: none).
pub async fn removed_through(db: &dyn Database, org_id: &str) -> Result<i64, DbError> {
    Ok(
        match db
            .query_one(
                Statement::new("SELECT removable_through FROM audit_retention WHERE org_id = ?1")
                    .bind(org_id),
            )
            .await?
        {
            Some(row) => row.get("removable_through")?,
            None => 0,
        },
    )
}

/// The `seq` and time of the oldest events after `after_seq`, at most `limit`.
pub async fn oldest_after(
    db: &dyn Database,
    org_id: &str,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<(i64, i64)>, DbError> {
    let rows = db
        .query(
            Statement::new(
                "SELECT seq, occurred_at FROM audit_events WHERE org_id = ?1 AND seq > ?2 \
                 ORDER BY seq LIMIT ?3",
            )
            .bind(org_id)
            .bind(after_seq)
            .bind(limit),
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.get("seq")?, r.get("occurred_at")?)))
        .collect()
}

/// The statements removing events `(from, through]`: first release them (the triggers refuse a
/// release past the latest checkpoint or off a block boundary, and any release backwards), then
/// delete them, the nodes below `through` its decomposition does not need, and the checkpoints
/// older than `through` (their sizes can no longer be proved against).
pub fn removal(org_id: &str, from: i64, through: i64, now: i64) -> Vec<Statement> {
    vec![
        Statement::new(
            "INSERT INTO audit_retention (org_id, removable_through, removed_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (org_id) DO UPDATE SET removable_through = excluded.removable_through, \
             removed_at = excluded.removed_at",
        )
        .bind(org_id)
        .bind(through)
        .bind(now),
        Statement::new("DELETE FROM audit_events WHERE org_id = ?1 AND seq > ?2 AND seq <= ?3")
            .bind(org_id)
            .bind(from)
            .bind(through),
        Statement::new(
            "DELETE FROM audit_tree_nodes WHERE org_id = ?1 AND ((idx + 1) << level) <= ?2 \
             AND NOT (((?2 >> level) & 1) = 1 AND idx = (?2 >> level) - 1)",
        )
        .bind(org_id)
        .bind(through),
        Statement::new("DELETE FROM audit_checkpoints WHERE org_id = ?1 AND size < ?2")
            .bind(org_id)
            .bind(through),
    ]
}

/// Organizations that have events (at most `limit`, after `after_org` in id order).
pub async fn orgs_with_events(
    db: &dyn Database,
    after_org: &str,
    limit: i64,
) -> Result<Vec<(String, String)>, DbError> {
    let rows = db
        .query(
            Statement::new(
                "SELECT o.id AS org_id, o.tier AS tier FROM orgs o WHERE o.id > ?1 \
                 AND EXISTS (SELECT 1 FROM audit_events e WHERE e.org_id = o.id) \
                 ORDER BY o.id LIMIT ?2",
            )
            .bind(after_org)
            .bind(limit),
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.get("org_id")?, r.get("tier")?)))
        .collect()
}
