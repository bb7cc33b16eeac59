//! Workload identity federation's trust engine, shared by the token-exchange and jwt-bearer
//! grants and the policy dry-run: verifies a CI workflow's OIDC token against its trusted issuer,
//! finds the trust policy that admits it, and decides what to issue.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::config::TrustedIssuer;
use crate::domain::agents::AgentStatus;
use crate::domain::audit::Outcome;
use crate::domain::caller::OrgId;
use crate::domain::policies::{PolicyAction, PolicyPrincipal, WorkflowFacts};
use crate::domain::scopes;
use crate::domain::trust_policies::{Mismatch, TrustPolicy, WorkflowClaims};
use crate::domain::validate::{is_id, Invalid};
use crate::jose::access_token::ClaimExtensions;
use crate::jose::id_token::{self, VerifiedIdToken, LEEWAY_SECONDS};
use crate::oauth::error::OAuthError;
use crate::oauth::form::OAuthForm;
use crate::oauth::grant::{granted_scope, requested_audiences, Issuance, PolicyInput};
use crate::ports::sql::Change;
use crate::services::{self, ServiceError};
use crate::state::AppState;
use crate::store::{agents as agent_store, kv_keys, trust_policies as store};

/// The claim of a registration token naming the policy it was issued through.
pub const TRUST_POLICY_CLAIM: &str = "trust_policy";

/// At most this many policies' refusals are spelled out in one error description.
const MAX_EXPLAINED: usize = 3;

/// A CI workflow's token that verified against a trusted issuer.
pub struct VerifiedWorkflow {
    pub issuer: TrustedIssuer,
    pub token: VerifiedIdToken,
    pub claims: WorkflowClaims,
}

/// Why a subject token was not accepted.
pub enum Refusal {
    /// The token is wrong; the text says how.
    Invalid(String),
    /// The issuer's keys cannot be read right now.
    Unavailable(String),
}

impl From<Refusal> for OAuthError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Invalid(reason) => OAuthError::invalid_grant(reason),
            Refusal::Unavailable(reason) => OAuthError::temporarily_unavailable(reason),
        }
    }
}

/// Verifies a subject token: its `iss` must be a configured issuer (an unknown one is refused
/// before anything is fetched), its signature one of that issuer's keys, then the claims.
pub async fn verify_subject_token(
    state: &AppState,
    token: &str,
) -> Result<VerifiedWorkflow, Refusal> {
    let unverified = id_token::inspect(token).map_err(|e| Refusal::Invalid(e.0))?;
    let Some(issuer) = state.config.trusted_issuer(&unverified.issuer) else {
        return Err(Refusal::Invalid(format!(
            "iss {} is not an issuer this deployment trusts",
            unverified.issuer
        )));
    };
    let now = state.clock.now_seconds();
    let key = state
        .issuer_keys
        .key(
            state.outbound.as_ref(),
            &issuer.jwks_url,
            &unverified.kid,
            now,
        )
        .await
        .map_err(|e| Refusal::Unavailable(e.to_string()))?
        .ok_or_else(|| {
            Refusal::Invalid(format!(
                "kid {} is not among the current keys of {}",
                unverified.kid, issuer.issuer
            ))
        })?;
    let verified = id_token::verify(
        &key,
        token,
        &unverified.kid,
        &issuer.issuer,
        &issuer.audience,
        now,
    )
    .map_err(|e| Refusal::Invalid(e.0))?;
    let claims = serde_json::from_value(Value::Object(verified.claims.clone()))
        .map_err(|e| Refusal::Invalid(format!("the subject token's claims are malformed: {e}")))?;
    Ok(VerifiedWorkflow {
        issuer: issuer.clone(),
        token: verified,
        claims,
    })
}

/// The non-empty claims of a workflow, for audit events.
fn claims_record(claims: &WorkflowClaims) -> Value {
    match serde_json::to_value(claims) {
        Ok(Value::Object(map)) => {
            Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect())
        }
        _ => Value::Null,
    }
}

/// RFC 8693 §4.1 `act`: who acts for the subject — the workflow run, by its claims.
fn actor_claim(workflow: &VerifiedWorkflow) -> Value {
    let c = &workflow.claims;
    let mut act = Map::new();
    let mut put = |name: &str, value: Option<&String>| {
        if let Some(v) = value {
            act.insert(name.to_owned(), json!(v));
        }
    };
    put("sub", c.sub.as_ref());
    put("iss", Some(&workflow.issuer.issuer));
    put("repository", c.repository.as_ref());
    put("repository_id", c.repository_id.as_ref());
    put("workflow_ref", c.workflow_ref.as_ref());
    put("run_id", c.run_id.as_ref());
    put("run_attempt", c.run_attempt.as_ref());
    Value::Object(act)
}

/// The first of `candidates` the workflow matches, or the refusals of (up to a few of) them.
fn first_match<'a>(
    candidates: &'a [TrustPolicy],
    claims: &WorkflowClaims,
) -> Result<&'a TrustPolicy, Vec<(&'a TrustPolicy, Mismatch)>> {
    let mut refusals = Vec::new();
    for policy in candidates {
        match policy.check(claims) {
            Ok(()) => return Ok(policy),
            Err(mismatch) => refusals.push((policy, mismatch)),
        }
    }
    Err(refusals)
}

fn explain(refusals: &[(&TrustPolicy, Mismatch)]) -> String {
    let mut text = refusals
        .iter()
        .take(MAX_EXPLAINED)
        .map(|(policy, mismatch)| format!("trust policy {}: {mismatch}", policy.id))
        .collect::<Vec<_>>()
        .join("; ");
    if refusals.len() > MAX_EXPLAINED {
        text.push_str(&format!(
            "; and {} more policies",
            refusals.len() - MAX_EXPLAINED
        ));
    }
    text
}

/// A refused workflow whose repository the organization trusts lands in its audit trail, so an
/// admin sees why a pipeline fails. Workflows of other repositories leave no trace there. The
/// token is used up by its refusal, so replaying it cannot flood the trail: one event per token.
async fn record_denial(
    state: &AppState,
    org_id: &str,
    agent_id: Option<&str>,
    workflow: &VerifiedWorkflow,
    refusals: &[(&TrustPolicy, Mismatch)],
) -> Result<(), OAuthError> {
    if use_once(state, workflow).await.is_err() {
        return Ok(());
    }
    let reasons: Vec<Value> = refusals
        .iter()
        .take(MAX_EXPLAINED)
        .map(|(policy, m)| json!({ "trust_policy_id": policy.id, "claim": m.claim, "expected": m.expected, "actual": m.actual }))
        .collect();
    let actor = workflow
        .claims
        .sub
        .clone()
        .unwrap_or_else(|| "workflow".into());
    let mut event = state
        .audit(org_id, &actor, "token.exchange_denied", Outcome::Failure)
        .details(json!({
            "issuer": workflow.issuer.issuer,
            "workflow": claims_record(&workflow.claims),
            "refusals": reasons,
        }));
    if let Some(agent_id) = agent_id {
        event = event.agent(agent_id).target(agent_id);
    }
    state.db.commit(Change::new().event(event)).await?;
    Ok(())
}

/// What the `token.issued` event records of a federated issuance: the policy and the claims used
/// (never the token itself).
fn issuance_details(policy: &TrustPolicy, workflow: &VerifiedWorkflow) -> Map<String, Value> {
    let mut details = Map::new();
    details.insert("trust_policy_id".into(), json!(policy.id));
    details.insert("issuer".into(), json!(workflow.issuer.issuer));
    details.insert("workflow".into(), claims_record(&workflow.claims));
    details.insert("subject_token_jti".into(), json!(workflow.token.jti));
    details
}

/// Uses the subject token's `jti` once: a replay within its lifetime is refused.
async fn use_once(state: &AppState, workflow: &VerifiedWorkflow) -> Result<(), OAuthError> {
    let key = kv_keys::used_subject_token(&workflow.issuer.issuer, &workflow.token.jti);
    let now = state.clock.now_seconds();
    let ttl = (workflow.token.expires_at - now + LEEWAY_SECONDS)
        .max(1)
        .unsigned_abs();
    if !state.kv.set_if_absent(&key, "1", ttl).await? {
        return Err(OAuthError::invalid_grant(
            "the subject token was already used (its jti is single-use); request a new one",
        ));
    }
    Ok(())
}

async fn pin(
    state: &AppState,
    policy: &TrustPolicy,
    workflow: &VerifiedWorkflow,
) -> Result<(), OAuthError> {
    match services::trust_policies::pin(state, policy, &workflow.claims).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(OAuthError::invalid_grant(format!(
            "trust policy {} was pinned to another repository or owner by its first use",
            policy.id
        ))),
        Err(ServiceError::Db(e)) => Err(e.into()),
        Err(ServiceError::Kv(e)) => Err(e.into()),
        Err(e) => Err(OAuthError::server_error(e)),
    }
}

/// Decides what a verified workflow gets: a token for `agent_id` (form parameter) through a policy
/// naming that agent or having registered it, or, without `agent_id`, a registration token through
/// a registration policy.
pub async fn authorize(
    state: &AppState,
    form: &OAuthForm,
    subject_token: &str,
    issued_token_type: Option<&'static str>,
) -> Result<Issuance, OAuthError> {
    let workflow = verify_subject_token(state, subject_token).await?;
    match form.get("agent_id") {
        Some(agent_id) => for_agent(state, form, workflow, agent_id, issued_token_type).await,
        None => for_registration(state, form, workflow, issued_token_type).await,
    }
}

async fn for_agent(
    state: &AppState,
    form: &OAuthForm,
    workflow: VerifiedWorkflow,
    agent_id: &str,
    issued_token_type: Option<&'static str>,
) -> Result<Issuance, OAuthError> {
    let repository = workflow.claims.repository.as_deref().unwrap_or("(none)");
    // A missing agent, another issuer's policies and policies of other repositories all answer
    // alike: a workflow learns about a policy only if the policy names its repository.
    let not_trusted = || {
        OAuthError::invalid_grant(format!(
            "no trust policy lets repository {repository} act as agent {agent_id}"
        ))
    };
    let org_id = if is_id(agent_id) {
        store::org_of_agent(state.db.as_ref(), agent_id).await?
    } else {
        None
    };
    let Some(org_id) = org_id else {
        return Err(not_trusted());
    };
    let candidates: Vec<TrustPolicy> = store::for_agent(state.db.as_ref(), &org_id, agent_id)
        .await?
        .into_iter()
        .filter(|p| p.provider == workflow.issuer.provider && p.names_repository(&workflow.claims))
        .collect();
    if candidates.is_empty() {
        return Err(not_trusted());
    }
    let policy = match first_match(&candidates, &workflow.claims) {
        Ok(policy) => policy,
        Err(refusals) => {
            record_denial(state, &org_id, Some(agent_id), &workflow, &refusals).await?;
            return Err(OAuthError::invalid_grant(format!(
                "no trust policy admits this workflow as agent {agent_id}: {}",
                explain(&refusals)
            )));
        }
    };
    let agent = agent_store::find(state.db.as_ref(), &org_id, agent_id)
        .await?
        .ok_or_else(not_trusted)?;
    if agent.status != AgentStatus::Active {
        return Err(OAuthError::invalid_grant(format!(
            "agent {agent_id} is {}",
            agent.status.as_str()
        )));
    }
    let scope = granted_scope(
        form.get("scope"),
        &policy.allowed_scopes(&agent.capabilities),
    )?;
    let audiences = requested_audiences(form, &state.config.issuer)?;
    use_once(state, &workflow).await?;
    pin(state, policy, &workflow).await?;
    let details = issuance_details(policy, &workflow);
    Ok(Issuance {
        org_id,
        subject: agent.id.clone(),
        client_id: policy.id.clone(),
        agent_id: Some(agent.id.clone()),
        scope,
        audiences,
        extensions: ClaimExtensions {
            act: Some(actor_claim(&workflow)),
            ..ClaimExtensions::default()
        },
        max_lifetime_seconds: None,
        actor: policy.id.clone(),
        details,
        statements: vec![agent_store::touch_last_auth(&agent.id, state.now_millis())],
        issued_token_type,
        policy: Some(workflow_policy_input(&workflow)),
    })
}

/// A workflow as the organization's policies see it: the principal of the exchange, by its
/// verified claims (absent claims are empty strings).
fn workflow_policy_input(workflow: &VerifiedWorkflow) -> PolicyInput {
    let claims = &workflow.claims;
    let text = |claim: &Option<String>| claim.clone().unwrap_or_default();
    PolicyInput {
        principal: PolicyPrincipal::Workflow(WorkflowFacts {
            repository: text(&claims.repository),
            repository_id: text(&claims.repository_id),
            git_ref: text(&claims.git_ref),
            environment: text(&claims.environment),
            event_name: text(&claims.event_name),
            job_workflow_ref: text(&claims.job_workflow_ref),
        }),
        action: PolicyAction::ExchangeToken,
        client_auth_method: "none",
        known_version: None,
    }
}

async fn for_registration(
    state: &AppState,
    form: &OAuthForm,
    workflow: VerifiedWorkflow,
    issued_token_type: Option<&'static str>,
) -> Result<Issuance, OAuthError> {
    let repository = workflow.claims.repository.as_deref().unwrap_or("(none)");
    let not_trusted = || {
        OAuthError::invalid_grant(format!(
            "no trust policy lets repository {repository} register agents; name an existing \
             agent with agent_id to act as it"
        ))
    };
    let org_filter = form.get("org_id");
    if org_filter.is_some_and(|o| !is_id(o)) {
        return Err(not_trusted());
    }
    let Some(owner) = workflow.claims.owner() else {
        return Err(not_trusted());
    };
    let candidates: Vec<TrustPolicy> = store::for_registration(
        state.db.as_ref(),
        workflow.issuer.provider,
        &owner,
        org_filter,
    )
    .await?
    .into_iter()
    .filter(|p| p.names_repository(&workflow.claims))
    .collect();
    let Some(org_id) = candidates.first().map(|p| p.org_id.clone()) else {
        return Err(not_trusted());
    };
    if candidates.iter().any(|p| p.org_id != org_id) {
        return Err(OAuthError::invalid_request(
            "trust policies of more than one organization let this repository register agents; \
             name the organization with org_id",
        ));
    }
    let policy = match first_match(&candidates, &workflow.claims) {
        Ok(policy) => policy,
        Err(refusals) => {
            record_denial(state, &org_id, None, &workflow, &refusals).await?;
            return Err(OAuthError::invalid_grant(format!(
                "no trust policy lets this workflow register agents: {}",
                explain(&refusals)
            )));
        }
    };
    let scope = granted_scope(form.get("scope"), &[scopes::AGENTS_REGISTER.to_owned()])?;
    if form.get("resource").is_some() || form.get("audience").is_some() {
        return Err(OAuthError::invalid_target(
            "a registration token is for this API only; omit resource and audience",
        ));
    }
    use_once(state, &workflow).await?;
    pin(state, policy, &workflow).await?;
    let details = issuance_details(policy, &workflow);
    let mut extensions = ClaimExtensions {
        act: Some(actor_claim(&workflow)),
        ..ClaimExtensions::default()
    };
    extensions
        .other
        .insert(TRUST_POLICY_CLAIM.into(), json!(policy.id));
    Ok(Issuance {
        org_id,
        // The policy is the subject: deleting it revokes every registration token it issued.
        subject: policy.id.clone(),
        client_id: policy.id.clone(),
        agent_id: None,
        scope,
        audiences: vec![state.config.issuer.clone()],
        extensions,
        max_lifetime_seconds: None,
        actor: policy.id.clone(),
        details,
        statements: Vec::new(),
        issued_token_type,
        policy: Some(workflow_policy_input(&workflow)),
    })
}

/// Body of `POST /v1/oidc/trust-policies/evaluate`: a token, or the claims of one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationRequest {
    #[serde(default, deserialize_with = "present")]
    pub token: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub claims: Option<Map<String, Value>>,
    /// Only the policies naming this agent.
    #[serde(default, deserialize_with = "present")]
    pub agent_id: Option<String>,
}

/// A field that may be left out but not sent as `null`, as the OpenAPI document says: a
/// `"token": null` beside `claims` is a confused request, not a choice between the two.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// One policy's verdict in a dry run.
#[derive(Debug, Serialize)]
pub struct PolicyVerdict {
    pub policy_id: String,
    pub repository: String,
    pub agent_id: Option<String>,
    pub allow_registration: bool,
    pub matched: bool,
    /// The first claim that failed, when it did not match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<FailedClaim>,
}

#[derive(Debug, Serialize)]
pub struct FailedClaim {
    pub claim: &'static str,
    pub expected: String,
    pub actual: Option<String>,
    pub reason: String,
}

/// What a dry run answers: the policy that would admit the workflow, if any, and every policy's
/// verdict. Nothing is issued, no `jti` used, no policy pinned.
#[derive(Debug, Serialize)]
pub struct Evaluation {
    pub matched: bool,
    pub policy_id: Option<String>,
    /// Whether a token was given and verified (signature, issuer, audience, lifetime).
    pub token_verified: bool,
    pub claims: Value,
    pub policies: Vec<PolicyVerdict>,
}

/// Largest number of policies one dry run evaluates.
const MAX_EVALUATED: u32 = 200;

/// Evaluates the organization's policies against a token (verified first) or a set of claims.
pub async fn evaluate(
    state: &AppState,
    org_id: &OrgId,
    request: EvaluationRequest,
) -> Result<Evaluation, ServiceError> {
    let (claims, provider, token_verified) = match (request.token, request.claims) {
        (Some(token), None) => match verify_subject_token(state, &token).await {
            Ok(workflow) => (workflow.claims, Some(workflow.issuer.provider), true),
            Err(Refusal::Invalid(reason)) => return Err(Invalid::new("token", reason).into()),
            Err(Refusal::Unavailable(reason)) => {
                return Err(ServiceError::IssuerUnavailable(reason))
            }
        },
        (None, Some(claims)) => {
            let claims = serde_json::from_value::<WorkflowClaims>(Value::Object(claims))
                .map_err(|e| Invalid::new("claims", e.to_string()))?;
            (claims, None, false)
        }
        _ => {
            return Err(Invalid::new(
                "token",
                "send either `token` (a workflow's OIDC token) or `claims` (its payload)",
            )
            .into())
        }
    };
    let query = services::trust_policies::ListQuery {
        agent_id: request.agent_id,
        limit: Some(MAX_EVALUATED),
        cursor: None,
    };
    let policies = services::trust_policies::list(state, org_id, query)
        .await?
        .data;
    let mut verdicts = Vec::new();
    let mut matched = None;
    for policy in policies
        .iter()
        .filter(|p| provider.is_none_or(|pr| p.provider == pr))
    {
        let result = policy.check(&claims);
        if result.is_ok() && matched.is_none() {
            matched = Some(policy.id.clone());
        }
        verdicts.push(PolicyVerdict {
            policy_id: policy.id.clone(),
            repository: policy.repository.clone(),
            agent_id: policy.agent_id.clone(),
            allow_registration: policy.allow_registration,
            matched: result.is_ok(),
            failed: result.err().map(|m| FailedClaim {
                claim: m.claim,
                expected: m.expected.clone(),
                actual: m.actual.clone(),
                reason: m.to_string(),
            }),
        });
    }
    Ok(Evaluation {
        matched: matched.is_some(),
        policy_id: matched,
        token_verified,
        claims: claims_record(&claims),
        policies: verdicts,
    })
}
