//! `GET /v1/compliance/report`: one organization's agents, credentials, trust policies, changes
//! and activity in a period, and its latest signed checkpoint, read in a handful of bounded
//! queries.

use serde_json::{json, Map, Value};

use crate::domain::analytics::HOUR_MILLIS;
use crate::domain::caller::OrgId;
use crate::domain::compliance::{age_days, unused, Report, ReportQuery};
use crate::domain::time::rfc3339;
use crate::services::{audit_log, ServiceError};
use crate::state::AppState;
use crate::store::{audit_tree, compliance as store, orgs};

pub async fn report(
    state: &AppState,
    org_id: &OrgId,
    now: i64,
    query: ReportQuery,
) -> Result<Report, ServiceError> {
    let (from, to) = query.period(now)?;
    let db = state.db.as_ref();
    let time = |t: Option<i64>| t.map(rfc3339);

    let mut by_status = Map::new();
    for status in ["active", "suspended", "decommissioned"] {
        by_status.insert(status.into(), json!(0));
    }
    for (status, n) in store::agents_by_status(db, org_id.as_str()).await? {
        by_status.insert(status, json!(n));
    }
    let credentials = store::active_credentials(db, org_id.as_str()).await?;
    let agent_credentials: Vec<Value> = credentials
        .iter()
        .filter(|c| c.role == "agent")
        .map(|c| {
            json!({
                "id": c.id, "agent_id": c.agent_id, "kind": c.kind,
                "created_at": rfc3339(c.created_at), "age_days": age_days(c.created_at, now),
                "rotated_at": time(c.rotated_at), "last_used_at": time(c.last_used_at),
            })
        })
        .collect();
    let unused_ids: Vec<Value> = credentials
        .iter()
        .filter(|c| unused(c.created_at, c.last_used_at, now))
        .map(|c| json!({ "id": c.id, "role": c.role, "agent_id": c.agent_id, "last_used_at": time(c.last_used_at) }))
        .collect();
    let admins: Vec<Value> = credentials
        .iter()
        .filter(|c| c.role == "admin")
        .map(|c| {
            json!({
                "id": c.id, "client_id": c.client_id, "created_at": rfc3339(c.created_at),
                "rotated_at": time(c.rotated_at), "last_used_at": time(c.last_used_at),
            })
        })
        .collect();
    let never_rotated: Vec<Value> = store::agents_never_rotated(db, org_id.as_str())
        .await?
        .into_iter()
        .map(|id| json!({ "agent_id": id }))
        .collect();
    let policies: Vec<Value> = store::trust_policies(db, org_id.as_str())
        .await?
        .into_iter()
        .map(|p| {
            json!({
                "id": p.id, "repository": p.repository, "agent_id": p.agent_id,
                "created_at": rfc3339(p.created_at), "last_matched_at": time(p.last_matched_at),
            })
        })
        .collect();
    let changes: Vec<Value> = store::changes(db, org_id.as_str(), from, to)
        .await?
        .into_iter()
        .map(|c| {
            json!({
                "seq": c.seq, "occurred_at": rfc3339(c.occurred_at), "actor": c.actor,
                "action": c.action, "target": c.target,
            })
        })
        .collect();

    // Token outcomes from the counters (whole hours), failed authentications from the summaries.
    let mut activity: Vec<(String, i64, i64, i64)> = store::tokens_per_agent(
        db,
        org_id.as_str(),
        from.div_euclid(HOUR_MILLIS),
        (to + HOUR_MILLIS - 1).div_euclid(HOUR_MILLIS),
    )
    .await?
    .into_iter()
    .map(|(agent, issued, refused)| (agent, issued, refused, 0))
    .collect();
    for (agent, failed) in store::failed_authentications(db, org_id.as_str(), from, to).await? {
        match activity.iter_mut().find(|a| a.0 == agent) {
            Some(row) => row.3 = failed,
            None => activity.push((agent, 0, 0, failed)),
        }
    }
    activity.sort();
    let activity: Vec<Value> = activity
        .into_iter()
        .map(|(agent, issued, refused, failed)| {
            json!({ "agent_id": agent, "tokens_issued": issued, "tokens_refused": refused, "failed_authentications": failed })
        })
        .collect();

    let checkpoint = audit_log::checkpoint_now(state, org_id, now).await?;
    let retention = audit_tree::removed_through(db, org_id.as_str()).await?;
    let tier = orgs::tier(db, org_id.as_str())
        .await?
        .unwrap_or_else(|| "free".into());
    Ok(Report(json!({
        "organization": { "id": org_id, "tier": tier, "generated_at": rfc3339(now),
                          "period_from": rfc3339(from), "period_to": rfc3339(to),
                          "audit_events_removed_through_seq": retention },
        "agents_by_status": by_status,
        "credentials": agent_credentials,
        "credentials_unused_90_days": unused_ids,
        "agents_never_rotated": never_rotated,
        "admin_credentials": admins,
        "trust_policies": policies,
        "changes": changes,
        "activity_per_agent": activity,
        "latest_checkpoint": { "size": checkpoint.size, "note": checkpoint.note },
    })))
}
