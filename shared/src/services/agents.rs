//! Registering, listing, reading, updating, suspending and decommissioning agents, each scoped to
//! one organization and committed with its audit events.

use serde_json::json;

use crate::config::tiers::{Collection, Tier};
use crate::domain::agents::{Agent, AgentPatch, AgentStatus, ListQuery, NewAgent};
use crate::domain::audit::Outcome;
use crate::domain::authz::{Operation, Resource};
use crate::domain::caller::{AgentId, OrgId};
use crate::domain::page::{Keyset, Page, PageRequest};
use crate::domain::validate::{is_id, Invalid};
use crate::domain::webhooks::EventType;
use crate::ports::sql::{Change, DbError};
use crate::services::{revocation, webhooks, Context, ServiceError};
use crate::state::AppState;
use crate::store::agents::{self as store, AgentFilter};
use crate::store::credentials as credential_store;
use crate::store::orgs as org_store;

/// Optimistic updates retry this often before reporting a conflict.
const UPDATE_ATTEMPTS: usize = 4;

fn email_conflict(e: DbError) -> ServiceError {
    if store::is_email_taken(&e) {
        ServiceError::EmailTaken
    } else {
        ServiceError::Db(e)
    }
}

/// Reads an agent of `org_id`; another organization's agent is `None`, like a missing one.
pub async fn find(
    state: &AppState,
    org_id: &OrgId,
    id: &AgentId,
) -> Result<Option<Agent>, ServiceError> {
    if !is_id(id.as_str()) {
        return Ok(None);
    }
    Ok(store::find(state.db.as_ref(), org_id.as_str(), id.as_str()).await?)
}

/// Like `find`, but a missing agent is an error.
pub async fn get(state: &AppState, org_id: &OrgId, id: &AgentId) -> Result<Agent, ServiceError> {
    find(state, org_id, id)
        .await?
        .ok_or(ServiceError::NotFound("agent"))
}

/// An agent of the organization that is not decommissioned: what credential operations act on.
pub async fn get_live(
    state: &AppState,
    org_id: &OrgId,
    id: &AgentId,
) -> Result<Agent, ServiceError> {
    let agent = get(state, org_id, id).await?;
    if agent.status == AgentStatus::Decommissioned {
        return Err(ServiceError::Decommissioned);
    }
    Ok(agent)
}

/// An organization's tier and its cap on agents (`None`: unlimited). Read afresh, not from a
/// cache: a tier just bought lifts the cap on the next request.
pub(crate) async fn agent_cap(
    state: &AppState,
    org_id: &OrgId,
) -> Result<(Tier, Option<i64>), ServiceError> {
    let tier = org_store::tier(state.db.as_ref(), org_id.as_str()).await?;
    let tier = Tier::parse(tier.as_deref().unwrap_or_default()).unwrap_or(Tier::Free);
    Ok((tier, state.config.tiers.allowance(tier).agent_limit()))
}

/// The organization's tier and its cap of `collection`, read afresh (as [`agent_cap`]).
pub(crate) async fn collection_cap(
    state: &AppState,
    org_id: &OrgId,
    collection: Collection,
) -> Result<(Tier, i64), ServiceError> {
    let (tier, _) = agent_cap(state, org_id).await?;
    Ok((tier, tier.cap(collection)))
}

/// The error of a guard counting `collection` past its cap.
pub(crate) fn over_cap(collection: Collection, (tier, limit): (Tier, i64)) -> ServiceError {
    ServiceError::CollectionLimit {
        collection,
        tier: tier.as_str(),
        limit,
    }
}

/// Registers an agent, enforcing its organization's tier cap in the same transaction as the insert.
pub async fn create(state: &AppState, ctx: &Context, new: NewAgent) -> Result<Agent, ServiceError> {
    let org_id = ctx.org();
    let management_allowed = new.allow_management_scopes;
    let agent = Agent::register(new, state.new_id(), org_id.as_str(), ctx.now_millis)?;
    ctx.authorize(
        Operation::CreateAgent,
        Resource::NewAgent {
            capabilities: &agent.capabilities,
        },
    )?;
    let (tier, cap) = agent_cap(state, org_id).await?;
    let event = ctx
        .audit(state, "agent.created", Outcome::Success)
        .agent(&agent.id)
        .target(agent.id.clone())
        .details(json!({
            "name": agent.name,
            "agent_type": agent.agent_type,
            "capabilities": agent.capabilities,
            "management_scopes": agent.added_management_scopes(&[]),
            "management_scopes_allowed": management_allowed,
            "visibility": agent.visibility,
        }));
    let mut change = Change::new()
        .statement(store::insert(&agent))
        .statement(store::save_profile(&agent))
        .statement(webhooks::event(
            state,
            org_id,
            EventType::AgentCreated,
            json!({ "agent": agent }),
        ));
    if let Some(limit) = cap {
        change = change.statement(store::within_cap(org_id.as_str(), limit));
    }
    let change = change.event(event);
    match state.db.commit(change).await {
        Ok(_) => Ok(agent),
        Err(DbError::Guard(store::FREE_TIER_LIMIT)) => Err(ServiceError::AgentLimit {
            tier: tier.as_str(),
            limit: cap.unwrap_or_default(),
        }),
        Err(e) => Err(email_conflict(e)),
    }
}

/// One page of the organization's agents in creation order.
pub async fn list(
    state: &AppState,
    org_id: &OrgId,
    query: ListQuery,
) -> Result<Page<Agent>, ServiceError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let filter = AgentFilter {
        owner: query.owner,
        agent_type: query.agent_type,
        status: query.status,
    };
    let rows = store::list(state.db.as_ref(), org_id.as_str(), &filter, &page).await?;
    Ok(Page::from_rows(rows, &page, |a| Keyset {
        position: a.created_at,
        id: a.id.clone(),
    }))
}

/// What an update did, so its tokens can be revoked once it is durable.
struct Updated {
    pub agent: Agent,
    /// The request asked for suspension (also when already suspended, so a retry after a failed
    /// revocation still revokes): the caller must revoke the agent's tokens.
    pub suspended: bool,
    /// Capabilities were removed: the agent's live tokens may carry them, so the caller must
    /// revoke its tokens (the agent then asks for new ones, with what it still holds).
    pub capabilities_removed: bool,
}

impl Updated {
    /// Whether the agent's tokens must be revoked now that the update is durable.
    fn revokes_tokens(&self) -> bool {
        self.suspended || self.capabilities_removed
    }
}

/// Applies a partial update, then revokes the agent's tokens when it was suspended or lost
/// capabilities (which its live tokens may carry): only once the change is durable, so a failed
/// commit never leaves a live agent locked out.
pub async fn update(
    state: &AppState,
    ctx: &Context,
    id: &AgentId,
    patch: AgentPatch,
) -> Result<Agent, ServiceError> {
    let updated = apply_update(state, ctx, id, patch).await?;
    if updated.revokes_tokens() {
        revoke_tokens(state, id).await?;
    }
    Ok(updated.agent)
}

/// Optimistic: the write is conditional on `updated_at` being what was read, so a concurrent
/// suspension is never overwritten by a stale `active`.
async fn apply_update(
    state: &AppState,
    ctx: &Context,
    id: &AgentId,
    patch: AgentPatch,
) -> Result<Updated, ServiceError> {
    let org_id = ctx.org();
    if patch.is_empty() {
        return Err(Invalid::new("body", "send at least one field to change").into());
    }
    let requested_status = patch.status.flatten();
    for _ in 0..UPDATE_ATTEMPTS {
        let current = get_live(state, org_id, id).await?;
        // A retry re-applies the same patch to the fresher row.
        let (mut next, changed) = current.patched(patch.clone())?;
        let added: Vec<String> = next
            .capabilities
            .iter()
            .filter(|c| !current.capabilities.contains(c))
            .cloned()
            .collect();
        ctx.authorize(
            Operation::UpdateAgent,
            Resource::GrantingCapabilities { added: &added },
        )?;
        let capabilities_removed = next.lost_capabilities(&current.capabilities);
        let status_action = match (current.status, next.status) {
            (AgentStatus::Active, AgentStatus::Suspended) => Some("agent.suspended"),
            (AgentStatus::Suspended, AgentStatus::Active) => Some("agent.reactivated"),
            _ => None,
        };
        let suspended = requested_status == Some(AgentStatus::Suspended);
        if changed.is_empty() && status_action.is_none() {
            return Ok(Updated {
                agent: current,
                suspended,
                capabilities_removed,
            });
        }
        next.updated_at = ctx.now_millis.max(current.updated_at + 1);
        let mut change = Change::new()
            .statement(store::unchanged_since(
                org_id.as_str(),
                id.as_str(),
                current.updated_at,
            ))
            .statement(store::update(&next));
        if next.description != current.description
            || next.tags != current.tags
            || next.homepage_url != current.homepage_url
            || next.a2a_url != current.a2a_url
            || next.skills != current.skills
        {
            change = change.statement(store::save_profile(&next));
        }
        if !changed.is_empty() {
            change = change.event(
                ctx.audit(state, "agent.updated", Outcome::Success)
                    .agent(id.as_str())
                    .target(id.as_str())
                    .details(json!({ "changed": changed })),
            );
        }
        let reactivated = status_action == Some("agent.reactivated");
        if !changed.is_empty() || reactivated {
            let mut fields = changed.clone();
            if reactivated {
                fields.push("status");
            }
            change = change.statement(webhooks::event(
                state,
                org_id,
                EventType::AgentUpdated,
                json!({ "agent": next, "changed": fields }),
            ));
        }
        if status_action == Some("agent.suspended") {
            change = change.statement(webhooks::event(
                state,
                org_id,
                EventType::AgentSuspended,
                json!({ "agent": next }),
            ));
        }
        if let Some(action) = status_action {
            change = change.event(
                ctx.audit(state, action, Outcome::Success)
                    .agent(id.as_str())
                    .target(id.as_str())
                    .details(json!({ "from": current.status, "to": next.status })),
            );
        }
        match state.db.commit(change).await {
            Ok(_) => {
                return Ok(Updated {
                    agent: next,
                    suspended,
                    capabilities_removed,
                });
            }
            Err(DbError::Guard(store::CHANGED)) => continue,
            Err(e) => return Err(email_conflict(e)),
        }
    }
    Err(ServiceError::Contention)
}

/// Decommissions an agent: terminal status and every credential revoked, in one transaction,
/// then its tokens. Idempotent: decommissioning a decommissioned agent answers with it unchanged
/// and revokes its tokens again, so a retry after a failed revocation completes it.
pub async fn decommission(
    state: &AppState,
    ctx: &Context,
    id: &AgentId,
) -> Result<Agent, ServiceError> {
    let org_id = ctx.org();
    let current = get(state, org_id, id).await?;
    if current.status == AgentStatus::Decommissioned {
        revoke_tokens(state, id).await?;
        return Ok(current);
    }
    let now = ctx.now_millis;
    let event = ctx
        .audit(state, "agent.decommissioned", Outcome::Success)
        .agent(id.as_str())
        .target(id.as_str())
        .details(json!({ "from": current.status }));
    let mut decommissioned = current.clone();
    decommissioned.status = AgentStatus::Decommissioned;
    decommissioned.updated_at = now.max(current.updated_at + 1);
    let change = Change::new()
        .statement(store::still_live(org_id.as_str(), id.as_str()))
        .statement(store::decommission(org_id.as_str(), id.as_str(), now))
        .statement(credential_store::revoke_all_of_agent(
            org_id.as_str(),
            id.as_str(),
            now,
        ))
        .statement(webhooks::event(
            state,
            org_id,
            EventType::AgentDecommissioned,
            json!({ "agent": decommissioned }),
        ))
        .event(event);
    match state.db.commit(change).await {
        // A concurrent decommission won; the outcome is the same.
        Ok(_) | Err(DbError::Guard(store::DECOMMISSIONED)) => {
            revoke_tokens(state, id).await?;
            get(state, org_id, id).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Ends every token the agent holds. Called only after the change that warrants it is durable, so
/// a failed commit never leaves a live agent locked out.
pub(crate) async fn revoke_tokens(
    state: &AppState,
    agent_id: &AgentId,
) -> Result<(), ServiceError> {
    revocation::revoke_subject(
        state.kv.as_ref(),
        agent_id.as_str(),
        state.clock.now_seconds(),
        state.config.token_ttl_seconds,
    )
    .await?;
    Ok(())
}
