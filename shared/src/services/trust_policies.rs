//! Creating, listing, reading and deleting an organization's trust policies, pinning them to their
//! first workflow, and registering agents through them, each committed with its audit events.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::tiers::Collection;
use crate::domain::agents::{Agent, AgentStatus, NewAgent};
use crate::domain::audit::Outcome;
use crate::domain::authz::{Operation, Resource};
use crate::domain::caller::{AgentId, ClientId, Identity, OrgId};
use crate::domain::page::{Keyset, Page, PageRequest};
use crate::domain::trust_policies::{NewTrustPolicy, TrustPolicy, WorkflowClaims};
use crate::domain::validate::{is_id, Invalid};
use crate::domain::webhooks::EventType;
use crate::ports::sql::{Change, DbError};
use crate::services::{agents, revocation, webhooks, Context, ServiceError};
use crate::state::AppState;
use crate::store::agents as agent_store;
use crate::store::trust_policies as store;

/// Query of `GET /v1/oidc/trust-policies`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub agent_id: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Creates a policy. The agent must be a live agent of the organization (another organization's
/// answers as not found) and the scopes among its capabilities; the provider must be configured.
pub async fn create(
    state: &AppState,
    ctx: &Context,
    new: NewTrustPolicy,
) -> Result<TrustPolicy, ServiceError> {
    let org_id = ctx.org();
    let policy = TrustPolicy::create(new, state.new_id(), org_id.as_str(), ctx.now_millis)?;
    if state.config.issuer_of_provider(&policy.provider).is_none() {
        return Err(Invalid::new(
            "provider",
            format!(
                "this deployment trusts no {} issuer (its operator has not set GITHUB_OIDC_AUDIENCE)",
                policy.provider
            ),
        )
        .into());
    }
    let cap = agents::collection_cap(state, org_id, Collection::TrustPolicies).await?;
    let mut change = Change::new()
        .statement(store::insert(&policy))
        .statement(store::within_cap(org_id.as_str(), cap.1));
    if let Some(agent_id) = &policy.agent_id {
        let agent = agents::find(state, org_id, &AgentId::new(agent_id.as_str()))
            .await?
            .filter(|a| a.status != AgentStatus::Decommissioned)
            .ok_or_else(|| Invalid::new("agent_id", "agent not found"))?;
        if let Some(outside) = policy
            .scopes
            .iter()
            .flatten()
            .find(|s| !agent.capabilities.contains(s))
        {
            return Err(Invalid::new(
                "scopes",
                format!("`{outside}` is not among the agent's capabilities"),
            )
            .into());
        }
        // Workflows the policy admits obtain the agent's tokens: the caller must hold all of it.
        ctx.authorize(
            Operation::CreateTrustPolicy,
            Resource::PowerOverAgent {
                capabilities: &policy.allowed_scopes(&agent.capabilities),
            },
        )?;
        change = change.statement(agent_store::still_live(org_id.as_str(), agent_id));
    }
    if policy.allow_registration {
        // Workflows the policy admits register agents with up to its scopes.
        ctx.authorize(
            Operation::CreateTrustPolicy,
            Resource::PowerOverAgent {
                capabilities: policy.scopes.as_deref().unwrap_or_default(),
            },
        )?;
    }
    let mut event = ctx
        .audit(state, "trust_policy.created", Outcome::Success)
        .target(policy.id.clone())
        .details(serde_json::to_value(&policy).unwrap_or(Value::Null));
    if let Some(agent_id) = &policy.agent_id {
        event = event.agent(agent_id);
    }
    let change = change.statement(webhooks::event(
        state,
        org_id,
        EventType::TrustPolicyCreated,
        json!({ "trust_policy": policy }),
    ));
    match state.db.commit(change.event(event)).await {
        Ok(_) => Ok(TrustPolicy {
            registered_agents: policy.allow_registration.then_some(0),
            ..policy
        }),
        Err(DbError::Guard(agent_store::DECOMMISSIONED)) => {
            Err(Invalid::new("agent_id", "agent not found").into())
        }
        Err(DbError::Guard(store::POLICY_CAP)) => {
            Err(agents::over_cap(Collection::TrustPolicies, cap))
        }
        Err(e) => Err(e.into()),
    }
}

/// One page of the organization's policies in creation order, optionally those of one agent.
pub async fn list(
    state: &AppState,
    org_id: &OrgId,
    query: ListQuery,
) -> Result<Page<TrustPolicy>, ServiceError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    if query.agent_id.as_deref().is_some_and(|a| !is_id(a)) {
        return Ok(Page {
            data: Vec::new(),
            next_cursor: None,
        });
    }
    let rows = store::list(
        state.db.as_ref(),
        org_id.as_str(),
        query.agent_id.as_deref(),
        &page,
    )
    .await?;
    Ok(Page::from_rows(rows, &page, |p| Keyset {
        position: p.created_at,
        id: p.id.clone(),
    }))
}

/// A policy of the organization; another organization's answers as not found.
pub async fn get(state: &AppState, org_id: &OrgId, id: &str) -> Result<TrustPolicy, ServiceError> {
    let found = if is_id(id) {
        store::find(state.db.as_ref(), org_id.as_str(), id).await?
    } else {
        None
    };
    found.ok_or(ServiceError::NotFound("trust policy"))
}

/// Deletes a policy; workflows it admitted get no new tokens through it, and every token issued
/// through it is revoked once the deletion is durable: registration tokens (their subject is the
/// policy) and agents' tokens (their client is the policy). Agents it registered stay.
pub async fn delete(
    state: &AppState,
    ctx: &Context,
    id: &str,
) -> Result<TrustPolicy, ServiceError> {
    let org_id = ctx.org();
    let policy = get(state, org_id, id).await?;
    let mut event = ctx
        .audit(state, "trust_policy.deleted", Outcome::Success)
        .target(id)
        .details(json!({ "repository": policy.repository, "provider": policy.provider }));
    if let Some(agent_id) = &policy.agent_id {
        event = event.agent(agent_id);
    }
    let [registrations, row] = store::delete(org_id.as_str(), id);
    let change = Change::new()
        .statement(store::still_there(org_id.as_str(), id))
        .statement(registrations)
        .statement(row)
        .statement(webhooks::event(
            state,
            org_id,
            EventType::TrustPolicyDeleted,
            json!({ "trust_policy": policy }),
        ))
        .event(event);
    state.db.commit(change).await.map_err(|e| match e {
        DbError::Guard(store::POLICY_GONE) => ServiceError::NotFound("trust policy"),
        other => other.into(),
    })?;
    let (now, ttl) = (state.clock.now_seconds(), state.config.token_ttl_seconds);
    if policy.allow_registration {
        revocation::revoke_subject(state.kv.as_ref(), id, now, ttl).await?;
    }
    revocation::revoke_client(state.kv.as_ref(), &ClientId::new(id), now, ttl).await?;
    Ok(policy)
}

/// Pins a policy's missing immutable ids to those of the workflow that just matched it, recorded
/// once; `Ok(false)` when another workflow pinned it first to different ids.
pub async fn pin(
    state: &AppState,
    policy: &TrustPolicy,
    claims: &WorkflowClaims,
) -> Result<bool, ServiceError> {
    let Some(owner_id) = claims.repository_owner_id.as_deref() else {
        return Ok(true);
    };
    if policy.repository_owner_id.is_some() {
        return Ok(true);
    }
    let repository_id = if policy.is_repository_pattern() {
        None
    } else {
        claims.repository_id.as_deref()
    };
    let now = state.now_millis();
    let event = state
        .audit(
            &policy.org_id,
            &policy.id,
            "trust_policy.pinned",
            Outcome::Success,
        )
        .target(policy.id.clone())
        .details(json!({
            "repository": claims.repository,
            "repository_id": repository_id.or(policy.repository_id.as_deref()),
            "repository_owner_id": owner_id,
        }));
    let [guard, update] = store::pin(&policy.org_id, &policy.id, repository_id, owner_id, now);
    let change = Change::new()
        .statement(guard)
        .statement(update)
        .event(event);
    match state.db.commit(change).await {
        Ok(_) => Ok(true),
        Err(DbError::Guard(store::ALREADY_PINNED)) => {
            let current = store::find(state.db.as_ref(), &policy.org_id, &policy.id).await?;
            Ok(current.is_some_and(|p| p.check(claims).is_ok()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Registers an agent with a registration token of `policy_id`: its capabilities a subset of the
/// policy's scopes (all of them when none are asked for), the policy's cap and the organization's
/// counted after the inserts inside one transaction.
pub async fn register_agent(
    state: &AppState,
    ctx: &Context,
    policy_id: &str,
    mut new: NewAgent,
) -> Result<Agent, ServiceError> {
    let org_id = ctx.org();
    let workflow = match &ctx.caller.identity {
        Identity::Workflow { claims, .. } => Some(claims),
        _ => None,
    };
    let policy = get(state, org_id, policy_id).await?;
    if !policy.allow_registration {
        return Err(ServiceError::NotFound("trust policy"));
    }
    let allowed = policy.scopes.clone().unwrap_or_default();
    if new.capabilities.is_empty() {
        new.capabilities = allowed.clone();
    } else if let Some(outside) = new.capabilities.iter().find(|c| !allowed.contains(c)) {
        return Err(Invalid::new(
            "capabilities",
            format!(
                "`{outside}` is not among the scopes the trust policy lets registered agents have"
            ),
        )
        .into());
    }
    let now = ctx.now_millis;
    let agent = Agent::register(new, state.new_id(), org_id.as_str(), now)?;
    ctx.authorize(
        Operation::CreateAgent,
        Resource::NewAgent {
            capabilities: &agent.capabilities,
        },
    )?;
    let (tier, cap) = crate::services::agents::agent_cap(state, org_id).await?;
    let event = ctx
        .audit(state, "agent.created", Outcome::Success)
        .agent(&agent.id)
        .target(agent.id.clone())
        .details(json!({
            "name": agent.name,
            "agent_type": agent.agent_type,
            "capabilities": agent.capabilities,
            "visibility": agent.visibility,
            "trust_policy_id": policy_id,
            "workflow": workflow,
        }));
    let [registration, policy_live, policy_cap] =
        store::register(org_id.as_str(), policy_id, &agent.id, now);
    let mut change = Change::new()
        .statement(agent_store::insert(&agent))
        .statement(registration)
        .statement(policy_live)
        .statement(policy_cap)
        .statement(webhooks::event(
            state,
            org_id,
            EventType::AgentCreated,
            json!({ "agent": agent, "trust_policy_id": policy_id }),
        ));
    if let Some(limit) = cap {
        change = change.statement(agent_store::within_cap(org_id.as_str(), limit));
    }
    let change = change.event(event);
    match state.db.commit(change).await {
        Ok(_) => Ok(agent),
        Err(DbError::Guard(agent_store::FREE_TIER_LIMIT)) => Err(ServiceError::AgentLimit {
            tier: tier.as_str(),
            limit: cap.unwrap_or_default(),
        }),
        Err(DbError::Guard(store::REGISTRATION_CAP)) => Err(ServiceError::RegistrationLimit {
            limit: policy.max_registrations.unwrap_or_default(),
        }),
        Err(DbError::Guard(store::POLICY_GONE)) => Err(ServiceError::NotFound("trust policy")),
        Err(e) if agent_store::is_email_taken(&e) => Err(ServiceError::EmailTaken),
        Err(e) => Err(e.into()),
    }
}
