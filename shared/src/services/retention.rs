//! Audit retention per tier: an organization's events older than its tier keeps them are removed
//! in bounded batches of whole 16-event blocks, each behind a signed checkpoint covering them, in
//! one transaction with the audit event recording the removal.

use serde::Serialize;

use crate::domain::audit::Outcome;
use crate::domain::caller::OrgId;
use crate::domain::merkle::BLOCK;
use crate::services::{audit_log, sealing, ServiceError};
use crate::state::AppState;
use crate::store::{audit_tree as store, chain};

/// Most events one batch removes (a multiple of the block size): bounds each transaction.
pub const BATCH: i64 = 1024;
/// Organizations looked at per page of a sweep.
const ORGS_PAGE: i64 = 100;

/// One batch's removal, as audited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    pub removed: i64,
    pub through_seq: i64,
    pub checkpoint_size: i64,
}

/// Removes at most one batch of the organization's events older than `retention_millis` before
/// `now`. Never the block holding the chain's head, so the chain and its tree always go on.
pub async fn remove_batch(
    state: &AppState,
    org_id: &OrgId,
    retention_millis: i64,
    now: i64,
) -> Result<Option<Removal>, ServiceError> {
    let db = state.db.as_ref();
    let cutoff = now.saturating_sub(retention_millis);
    let from = store::removed_through(db, org_id.as_str()).await?;
    let oldest = store::oldest_after(db, org_id.as_str(), from, BATCH).await?;
    let Some(expired) = oldest
        .iter()
        .take_while(|(_, at)| *at < cutoff)
        .map(|(seq, _)| *seq)
        .last()
    else {
        return Ok(None);
    };
    let head = chain::load_chain_head(db, org_id.as_str()).await?.seq;
    let block = BLOCK as i64;
    let through = (expired / block * block).min((head - 1).max(0) / block * block);
    if through <= from {
        return Ok(None);
    }
    let checkpoint = audit_log::checkpoint_now(state, org_id, now).await?;
    let removal = Removal {
        removed: through - from,
        through_seq: through,
        checkpoint_size: checkpoint.size,
    };
    let mut change = crate::ports::sql::Change::new();
    change.statements = store::removal(org_id.as_str(), from, through, now);
    change
        .statements
        .push(crate::store::analytics::remove_before(
            org_id.as_str(),
            cutoff.div_euclid(crate::domain::analytics::HOUR_MILLIS),
        ));
    let change = change.event(
        state
            .audit(
                org_id.as_str(),
                "system:retention",
                "audit.events_removed",
                Outcome::Success,
            )
            .details(serde_json::json!({
                "removed": removal.removed,
                "through_seq": through,
                "checkpoint_size": checkpoint.size,
                "retention_days": retention_millis / 86_400_000,
            })),
    );
    db.commit(change).await?;
    Ok(Some(removal))
}

/// One pass over every organization: each loses at most one batch of expired events. Returns the
/// events removed; call again while it removes any.
pub async fn sweep(state: &AppState, now: i64) -> Result<i64, ServiceError> {
    let mut after = String::new();
    let mut removed = 0;
    loop {
        let orgs = store::orgs_with_events(state.db.as_ref(), &after, ORGS_PAGE).await?;
        let last = orgs.len() < ORGS_PAGE as usize;
        for (org, tier) in &orgs {
            let Some(keep) = state.config.tiers.of(tier).audit_retention_millis() else {
                continue;
            };
            let org = OrgId::new(org.as_str());
            if let Some(removal) = remove_batch(state, &org, keep, now).await? {
                removed += removal.removed;
            }
        }
        match orgs.last() {
            Some((org, _)) if !last => after = org.clone(),
            _ => return Ok(removed),
        }
    }
}

/// What one pass of audit upkeep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Upkeep {
    /// Audit logs that grew and got a signed checkpoint.
    pub checkpoints: u64,
    /// Events removed past retention.
    pub removed: u64,
}

/// The edge's scheduled upkeep (the Workers' Cron Trigger; the scheduler that calls Spin's
/// dispatch): seals what an older release stored in clear, checkpoints up to 100 logs that grew,
/// then one retention pass. Each step is its own transaction, so the next call goes on where an
/// interrupted one stopped.
pub async fn upkeep(state: &AppState, now: i64) -> Result<Upkeep, ServiceError> {
    let sealed =
        sealing::seal_clear(state.db.as_ref(), &state.keks, state.entropy.as_ref()).await?;
    if sealed > 0 {
        tracing::info!(
            sealed,
            "sealed stored secrets an older release left in clear"
        );
    }
    let checkpoints = audit_log::checkpoint_all(state, now, 100).await?;
    let removed = sweep(state, now).await?;
    Ok(Upkeep {
        checkpoints: checkpoints as u64,
        removed: removed.max(0) as u64,
    })
}
