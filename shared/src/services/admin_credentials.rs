//! The organization's admin credentials: listed, created, rotated and revoked by the organization's
//! own admins, never leaving it without an active one.

use crate::config::tiers::Collection;
use crate::domain::audit::Outcome;
use crate::domain::caller::OrgId;
use crate::domain::credentials::{ClientSecret, ListQuery, Rotation};
use crate::domain::orgs::{IssuedOrgCredential, OrgCredential};
use crate::domain::page::{Keyset, Page, PageRequest};
use crate::domain::validate::is_id;
use crate::domain::{scopes, secrets};
use crate::ports::sql::{Change, DbError};
use crate::services::credentials::{guard_error, plan_rotation};
use crate::services::{agents, revocation, Context, ServiceError};
use crate::state::AppState;
use crate::store::credentials as store;

/// One admin credential of the organization; an agent's credential or another organization's
/// answers like a missing one.
async fn get(state: &AppState, org_id: &OrgId, id: &str) -> Result<OrgCredential, ServiceError> {
    if !is_id(id) {
        return Err(ServiceError::NotFound("admin credential"));
    }
    store::find_admin(state.db.as_ref(), org_id.as_str(), id)
        .await?
        .ok_or(ServiceError::NotFound("admin credential"))
}

/// One page of the organization's admin credentials, oldest first.
pub async fn list(
    state: &AppState,
    org_id: &OrgId,
    query: ListQuery,
) -> Result<Page<OrgCredential>, ServiceError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let rows = store::list_admins(state.db.as_ref(), org_id.as_str(), &page).await?;
    Ok(Page::from_rows(rows, &page, |c| Keyset {
        position: c.created_at,
        id: c.id.clone(),
    }))
}

/// A further admin credential, its secret shown once: how an admin replaces one for good (create,
/// switch, revoke the old), since the last active one cannot be revoked.
pub async fn create(state: &AppState, ctx: &Context) -> Result<IssuedOrgCredential, ServiceError> {
    let org_id = ctx.org();
    let cap = agents::collection_cap(state, org_id, Collection::AdminCredentials).await?;
    let (secret, secret_hash) = secrets::client_secret_from(state.random());
    let credential = OrgCredential {
        id: state.new_id(),
        client_id: secrets::client_id_from(state.random()),
        status: "active".into(),
        scope: scopes::ADMIN.join(" "),
        created_at: ctx.now_millis,
        rotated_at: None,
        revoked_at: None,
        last_used_at: None,
        previous_secret_expires_at: None,
    };
    let event = ctx
        .audit(state, "admin_credential.created", Outcome::Success)
        .target(credential.id.clone())
        .details(credential.audit_details());
    let change = Change::new()
        .statement(store::insert_admin(
            org_id.as_str(),
            &credential.id,
            &credential.client_id,
            secret_hash,
            credential.created_at,
        ))
        .statement(store::within_admin_cap(org_id.as_str(), cap.1))
        .event(event);
    state.db.commit(change).await.map_err(|e| match e {
        DbError::Guard(store::ADMIN_CAP) => agents::over_cap(Collection::AdminCredentials, cap),
        other => other.into(),
    })?;
    Ok(IssuedOrgCredential {
        credential,
        client_secret: ClientSecret(secret),
    })
}

/// Replaces an admin credential's secret, as an agent's (grace period, compare-and-set).
pub async fn rotate(
    state: &AppState,
    ctx: &Context,
    id: &str,
    rotation: Rotation,
) -> Result<IssuedOrgCredential, ServiceError> {
    let org_id = ctx.org();
    let mut credential = get(state, org_id, id).await?;
    if !credential.is_active() {
        return Err(ServiceError::CredentialRevoked);
    }
    let plan = plan_rotation(state, org_id, id, rotation).await?;
    credential.rotated_at = Some(plan.now);
    credential.previous_secret_expires_at = plan.previous_expires_at;
    let mut details = credential.audit_details();
    details["grace_period_seconds"] = plan.grace_seconds.into();
    let event = ctx
        .audit(state, "admin_credential.rotated", Outcome::Success)
        .target(id)
        .details(details);
    let [unchanged, rotate] = plan.statements(org_id, id);
    let change = Change::new()
        .statement(store::admin_still_active(org_id.as_str(), id))
        .statement(unchanged)
        .statement(rotate)
        .event(event);
    state.db.commit(change).await.map_err(guard_error)?;
    Ok(IssuedOrgCredential {
        credential,
        client_secret: ClientSecret(plan.secret),
    })
}

/// Revokes an admin credential, unless it is the organization's last active one, and then every
/// token obtained with it (an admin's tokens have its client id as subject). Idempotent: revoking
/// a revoked credential answers with it and revokes its tokens again, so a retry completes it.
pub async fn revoke(
    state: &AppState,
    ctx: &Context,
    id: &str,
) -> Result<OrgCredential, ServiceError> {
    let org_id = ctx.org();
    let mut credential = get(state, org_id, id).await?;
    if credential.is_active() {
        let now = ctx.now_millis;
        let event = ctx
            .audit(state, "admin_credential.revoked", Outcome::Success)
            .target(id)
            .details(credential.audit_details());
        let change = Change::new()
            .statement(store::admin_still_active(org_id.as_str(), id))
            .statement(store::revoke_admin(org_id.as_str(), id, now))
            .statement(store::an_admin_remains(org_id.as_str()))
            .event(event);
        match state.db.commit(change).await {
            Ok(_) => {
                credential.status = "revoked".into();
                credential.revoked_at = Some(now);
                credential.previous_secret_expires_at = None;
            }
            // Revoked concurrently: same outcome, and only one event records it.
            Err(DbError::Guard(store::REVOKED)) => credential = get(state, org_id, id).await?,
            Err(e) => return Err(guard_error(e)),
        }
    }
    revocation::revoke_subject(
        state.kv.as_ref(),
        &credential.client_id,
        state.clock.now_seconds(),
        state.config.token_ttl_seconds,
    )
    .await?;
    Ok(credential)
}
