//! An organization's Cedar policies: create, list, read, replace (compare-and-set on the version)
//! and delete, each audited and announced; the compiled set each instance caches per version;
//! and the dry run that decides a hypothetical token request without issuing anything.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use crate::domain::audit::Outcome;
use crate::domain::caller::{AgentId, OrgId};
use crate::domain::page::{Keyset, Page, PageRequest};
use crate::domain::policies::{
    self, AgentFacts, CompiledPolicies, OrgPolicy, PolicyAction, PolicyBody, PolicyPrincipal,
    RequestFacts, ScopeDecision, TokenRequest, WorkflowFacts, MAX_POLICIES_PER_ORGANIZATION,
};
use crate::domain::validate::{is_id, Invalid};
use crate::domain::webhooks::EventType;
use crate::ports::sql::{Change, DbError};
use crate::services::{agents, webhooks, Context, ServiceError};
use crate::state::AppState;
use crate::store::policies as store;

/// Query of `GET /v1/policies`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

fn checked(body: PolicyBody) -> Result<(String, String), ServiceError> {
    policies::check(body).map_err(ServiceError::InvalidPolicy)
}

/// Uploads a policy: validated against the schema, counted against the organization's cap in the
/// insert's transaction, which also bumps the set's version.
pub async fn create(
    state: &AppState,
    ctx: &Context,
    body: PolicyBody,
) -> Result<OrgPolicy, ServiceError> {
    let (cedar, description) = checked(body)?;
    let org_id = ctx.org();
    let policy = OrgPolicy {
        id: state.new_id(),
        cedar,
        description,
        version: 1,
        created_at: ctx.now_millis,
        updated_at: ctx.now_millis,
    };
    let change = Change::new()
        .statement(store::insert(org_id.as_str(), &policy))
        .statement(store::within_cap(
            org_id.as_str(),
            MAX_POLICIES_PER_ORGANIZATION,
        ))
        .statement(store::bump_set_version(org_id.as_str()))
        .statement(webhooks::event(
            state,
            org_id,
            EventType::PolicyCreated,
            json!({ "policy": policy }),
        ))
        .event(
            ctx.audit(state, "policy.created", Outcome::Success)
                .target(policy.id.clone())
                .details(json!({ "description": policy.description, "cedar": policy.cedar })),
        );
    match state.db.commit(change).await {
        Ok(_) => Ok(policy),
        Err(DbError::Guard(store::TOO_MANY)) => Err(ServiceError::PolicyLimit {
            limit: MAX_POLICIES_PER_ORGANIZATION,
        }),
        Err(e) => Err(e.into()),
    }
}

/// One page of the organization's policies in creation order.
pub async fn list(
    state: &AppState,
    org_id: &OrgId,
    query: ListQuery,
) -> Result<Page<OrgPolicy>, ServiceError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let rows = store::list(state.db.as_ref(), org_id.as_str(), &page).await?;
    Ok(Page::from_rows(rows, &page, |p| Keyset {
        position: p.created_at,
        id: p.id.clone(),
    }))
}

/// A policy of the organization; another organization's answers as not found.
pub async fn get(state: &AppState, org_id: &OrgId, id: &str) -> Result<OrgPolicy, ServiceError> {
    let found = if is_id(id) {
        store::find(state.db.as_ref(), org_id.as_str(), id).await?
    } else {
        None
    };
    found.ok_or(ServiceError::NotFound("policy"))
}

/// Replaces a policy's text and description. With `if_match` (the version its `ETag` carries)
/// a policy changed since answers [`ServiceError::PolicyChanged`]; without, the write is still
/// conditional on the version just read, so concurrent replacements never interleave.
pub async fn replace(
    state: &AppState,
    ctx: &Context,
    id: &str,
    if_match: Option<i64>,
    body: PolicyBody,
) -> Result<OrgPolicy, ServiceError> {
    let (cedar, description) = checked(body)?;
    let org_id = ctx.org();
    let current = get(state, org_id, id).await?;
    let expected = if_match.unwrap_or(current.version);
    if expected != current.version {
        return Err(ServiceError::PolicyChanged {
            version: current.version,
            conditional: true,
        });
    }
    let policy = OrgPolicy {
        cedar,
        description,
        version: current.version + 1,
        updated_at: ctx.now_millis.max(current.updated_at),
        ..current
    };
    let [unchanged, update] = store::update(org_id.as_str(), &policy, expected);
    let change = Change::new()
        .statement(unchanged)
        .statement(update)
        .statement(store::bump_set_version(org_id.as_str()))
        .statement(webhooks::event(
            state,
            org_id,
            EventType::PolicyUpdated,
            json!({ "policy": policy }),
        ))
        .event(
            ctx.audit(state, "policy.updated", Outcome::Success)
                .target(id)
                .details(json!({
                    "description": policy.description,
                    "cedar": policy.cedar,
                    "version": policy.version,
                })),
        );
    match state.db.commit(change).await {
        Ok(_) => Ok(policy),
        Err(DbError::Guard(store::STALE)) => {
            match store::find(state.db.as_ref(), org_id.as_str(), id).await? {
                Some(now) => Err(ServiceError::PolicyChanged {
                    version: now.version,
                    conditional: if_match.is_some(),
                }),
                None => Err(ServiceError::NotFound("policy")),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes a policy; of concurrent deletes one succeeds and the others find it gone.
pub async fn delete(state: &AppState, ctx: &Context, id: &str) -> Result<OrgPolicy, ServiceError> {
    let org_id = ctx.org();
    let policy = get(state, org_id, id).await?;
    let [present, delete] = store::delete(org_id.as_str(), id);
    let change = Change::new()
        .statement(present)
        .statement(delete)
        .statement(store::bump_set_version(org_id.as_str()))
        .statement(webhooks::event(
            state,
            org_id,
            EventType::PolicyDeleted,
            json!({ "policy": policy }),
        ))
        .event(
            ctx.audit(state, "policy.deleted", Outcome::Success)
                .target(id)
                .details(json!({ "description": policy.description })),
        );
    match state.db.commit(change).await {
        Ok(_) => Ok(policy),
        Err(DbError::Guard(store::STALE)) => Err(ServiceError::NotFound("policy")),
        Err(e) => Err(e.into()),
    }
}

/// The organization's compiled policies at the current version of its set. `known_version` is
/// the version the caller read with its own data (the credential lookup reads it); without one
/// it is read here. A compiled set is reused until the version changes, on every instance alike:
/// the check rides on a read the request makes anyway, not on a timer.
pub async fn compiled(
    state: &AppState,
    org_id: &OrgId,
    known_version: Option<i64>,
) -> Result<Arc<CompiledPolicies>, ServiceError> {
    let version = match known_version {
        Some(version) => version,
        None => store::set_version(state.db.as_ref(), org_id.as_str()).await?,
    };
    if version == 0 {
        return Ok(Arc::new(CompiledPolicies::default()));
    }
    if let Some(compiled) = state.policy_sets.get(org_id.as_str(), version) {
        return Ok(compiled);
    }
    let (read_version, texts) = store::set(state.db.as_ref(), org_id.as_str()).await?;
    let compiled = CompiledPolicies::compile(texts.iter().map(|(id, t)| (id.as_str(), t.as_str())))
        .map_err(ServiceError::PolicySetUnusable)?;
    let compiled = Arc::new(compiled);
    state
        .policy_sets
        .put(org_id.as_str(), read_version, Arc::clone(&compiled));
    Ok(compiled)
}

/// Body of `POST /v1/policies/evaluate`: a hypothetical token request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationRequest {
    /// An agent of the organization, as the principal.
    pub agent_id: Option<String>,
    /// Or a workflow's claims.
    pub workflow: Option<WorkflowFacts>,
    pub scopes: Vec<String>,
    /// The audience the token would be for; the issuer when absent.
    pub audience: Option<String>,
    /// `issue_token` (default) or `exchange_token`.
    pub action: Option<PolicyAction>,
    #[serde(default)]
    pub context: EvaluationContext,
}

/// The request's context; every member has the default a real request would most often have.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationContext {
    pub grant_type: Option<String>,
    pub client_auth_method: Option<String>,
    pub now: Option<i64>,
    pub client_ip: Option<String>,
    pub key_bound: Option<bool>,
    pub lifetime_seconds: Option<i64>,
}

/// The answer of the dry run.
#[derive(Debug, serde::Serialize)]
pub struct Evaluation {
    pub decisions: Vec<EvaluatedScope>,
}

#[derive(Debug, serde::Serialize)]
pub struct EvaluatedScope {
    pub scope: String,
    pub decision: &'static str,
    pub policies: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_lifetime_seconds: Option<i64>,
}

/// Most scopes one dry run decides.
const MAX_EVALUATED_SCOPES: usize = 50;

/// Decides a hypothetical request with the organization's current policies; issues nothing.
/// Capabilities are not applied here: the answer is what the policies alone say.
pub async fn evaluate(
    state: &AppState,
    ctx: &Context,
    request: EvaluationRequest,
) -> Result<Evaluation, ServiceError> {
    let principal = match (request.agent_id, request.workflow) {
        (Some(agent_id), None) => {
            let agent = agents::get(state, ctx.org(), &AgentId::new(agent_id)).await?;
            PolicyPrincipal::Agent(AgentFacts::of(&agent))
        }
        (None, Some(workflow)) => PolicyPrincipal::Workflow(workflow),
        _ => {
            return Err(
                Invalid::new("agent_id", "send exactly one of agent_id and workflow").into(),
            )
        }
    };
    if request.scopes.is_empty() || request.scopes.len() > MAX_EVALUATED_SCOPES {
        return Err(
            Invalid::new("scopes", format!("send 1 to {MAX_EVALUATED_SCOPES} scopes")).into(),
        );
    }
    let action = request.action.unwrap_or(PolicyAction::IssueToken);
    let context = request.context;
    let facts = RequestFacts {
        grant_type: context.grant_type.unwrap_or_else(|| {
            match action {
                PolicyAction::IssueToken => "client_credentials",
                PolicyAction::ExchangeToken => "urn:ietf:params:oauth:grant-type:token-exchange",
            }
            .to_owned()
        }),
        client_auth_method: context
            .client_auth_method
            .unwrap_or_else(|| "client_secret_basic".to_owned()),
        now: context.now.unwrap_or(ctx.now_millis / 1000),
        client_ip: context.client_ip.unwrap_or_default(),
        key_bound: context.key_bound.unwrap_or(false),
        lifetime_seconds: context
            .lifetime_seconds
            .unwrap_or(state.config.token_ttl_seconds),
    };
    let audiences = vec![request
        .audience
        .unwrap_or_else(|| state.config.issuer.clone())];
    let compiled = compiled(state, ctx.org(), None).await?;
    let scopes: Vec<&str> = request.scopes.iter().map(String::as_str).collect();
    let decisions = if compiled.is_empty() {
        // No policies: today's behaviour, every scope within capabilities is issued.
        scopes
            .iter()
            .map(|scope| ScopeDecision {
                scope: (*scope).to_owned(),
                allowed: true,
                policies: Vec::new(),
                reason: None,
                max_lifetime_seconds: None,
            })
            .collect()
    } else {
        policies::decide(
            &compiled,
            &TokenRequest {
                principal: &principal,
                action,
                audiences: &audiences,
                facts: &facts,
            },
            &scopes,
        )
    };
    Ok(Evaluation {
        decisions: decisions
            .into_iter()
            .map(|d| EvaluatedScope {
                scope: d.scope,
                decision: if d.allowed { "allow" } else { "deny" },
                policies: d.policies,
                reason: d.reason,
                max_lifetime_seconds: d.max_lifetime_seconds,
            })
            .collect(),
    })
}
