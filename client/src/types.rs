//! The API's resources and requests as the OpenAPI document describes them. Every resource keeps
//! the members this version does not know in `extra`, so printing one back loses nothing.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Members a resource carries beyond the ones typed here.
pub type Extra = Map<String, Value>;

/// One page of a cursor-paginated list.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// `limit` (1 to 200) and `cursor` (the previous page's `next_cursor`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PageQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// An RFC 9457 problem document with the API's stable `code`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Problem {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub status: u16,
    #[serde(default)]
    pub detail: String,
    #[serde(default)]
    pub code: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// An RFC 6749 §5.2 error, as the `/oauth2/*` endpoints answer.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct OAuthErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}

/// A client id and secret (an organization's admin credential, or an agent's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: String,
}

/// What a `client_credentials` token request may add: a scope and RFC 8707 audiences.
#[derive(Clone, Debug, Default)]
pub struct TokenRequest {
    /// Space-separated; every scope the client may be granted when absent.
    pub scope: Option<String>,
    pub audiences: Vec<String>,
    pub resources: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// RFC 7662 §2.2: an inactive token carries only `active: false`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub tier: String,
    pub created_at: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The organization's admin credential, shown once at creation.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct AdminCredential {
    pub id: String,
    pub client_id: String,
    pub client_secret: String,
    pub scope: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct OrganizationCreated {
    pub organization: Organization,
    pub admin_credential: AdminCredential,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Agent {
    pub id: String,
    pub org_id: String,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    pub agent_type: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub owner: Option<String>,
    pub deployment_env: String,
    #[serde(default)]
    pub metadata: Value,
    pub visibility: String,
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default)]
    pub last_auth_at: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub homepage_url: Option<String>,
    #[serde(default)]
    pub a2a_url: Option<String>,
    #[serde(default)]
    pub skills: Vec<Skill>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One thing an agent can do (A2A's `AgentSkill`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Skill {
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
}

/// What an agent publishes, shared by `AgentCreate` and `AgentUpdate` (flattened into both).
#[derive(Clone, Debug, Default, Serialize)]
pub struct AgentProfile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub homepage_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a2a_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skills: Option<Vec<Skill>>,
}

/// An agent as the public marketplace shows it.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct PublicAgent {
    pub id: String,
    pub did: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub agent_type: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub skills: Vec<Skill>,
    #[serde(default)]
    pub homepage_url: Option<String>,
    #[serde(default)]
    pub a2a_url: Option<String>,
    pub deployment_env: String,
    pub created_at: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// How often a facet's value occurs among every match.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct FacetCount {
    pub value: String,
    pub count: i64,
}

/// One page of a marketplace search.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct MarketplacePage {
    pub data: Vec<PublicAgent>,
    pub next_cursor: Option<String>,
    #[serde(default)]
    pub facets: Option<std::collections::BTreeMap<String, Vec<FacetCount>>>,
}

/// `GET /v1/marketplace/agents`: `capability` and `tag` repeat (all of them must hold).
#[derive(Clone, Debug, Default)]
pub struct MarketplaceQuery {
    pub q: Option<String>,
    pub agent_type: Option<String>,
    pub capabilities: Vec<String>,
    pub tags: Vec<String>,
    pub deployment_env: Option<String>,
    /// Among `agent_type` and `tags`.
    pub facets: Vec<String>,
    pub page: PageQuery,
}

impl MarketplaceQuery {
    /// The query's pairs, repeated parameters repeated.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        let mut one = |key: &'static str, value: &Option<String>| {
            if let Some(value) = value {
                pairs.push((key, value.clone()));
            }
        };
        one("q", &self.q);
        one("agent_type", &self.agent_type);
        one("deployment_env", &self.deployment_env);
        pairs.extend(self.capabilities.iter().map(|c| ("capability", c.clone())));
        pairs.extend(self.tags.iter().map(|t| ("tag", t.clone())));
        if !self.facets.is_empty() {
            pairs.push(("facets", self.facets.join(",")));
        }
        if let Some(limit) = self.page.limit {
            pairs.push(("limit", limit.to_string()));
        }
        if let Some(cursor) = &self.page.cursor {
            pairs.push(("cursor", cursor.clone()));
        }
        pairs
    }
}

/// `POST /v1/agents`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AgentCreate {
    pub name: String,
    pub agent_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    #[serde(flatten)]
    pub profile: AgentProfile,
    /// Must be `true` for `capabilities` to add management scopes (`agents:*`, `audit:*`, ...).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_management_scopes: bool,
}

/// `PATCH /v1/agents/{id}`: only the members sent change.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AgentUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    #[serde(flatten)]
    pub profile: AgentProfile,
    /// Must be `true` for `capabilities` to add management scopes (`agents:*`, `audit:*`, ...).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_management_scopes: bool,
    /// `active` or `suspended`; decommissioning is its own call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl AgentUpdate {
    pub fn is_empty(&self) -> bool {
        serde_json::to_value(self).is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
    }
}

/// Filters of `GET /v1/agents`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AgentQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(flatten)]
    pub page: PageQuery,
}

/// `POST /v1/agents/{id}/credentials`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CredentialCreate {
    /// A client secret, returned once.
    ClientSecret,
    /// A public JWK (EC P-256 or Ed25519) for RFC 7523 client assertions.
    PrivateKeyJwt { public_jwk: Value },
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Credential {
    pub id: String,
    pub agent_id: String,
    pub kind: String,
    pub client_id: String,
    /// Only in the answer that created or rotated it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_jwk: Option<Value>,
    pub status: String,
    pub created_at: String,
    #[serde(default)]
    pub rotated_at: Option<String>,
    #[serde(default)]
    pub revoked_at: Option<String>,
    #[serde(default)]
    pub last_used_at: Option<String>,
    #[serde(default)]
    pub previous_secret_expires_at: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// An admin credential of the organization (`/v1/orgs/credentials`).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct OrgCredential {
    pub id: String,
    pub client_id: String,
    /// Only in the answer that created or rotated it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub status: String,
    pub scope: String,
    pub created_at: String,
    #[serde(default)]
    pub rotated_at: Option<String>,
    #[serde(default)]
    pub revoked_at: Option<String>,
    #[serde(default)]
    pub last_used_at: Option<String>,
    #[serde(default)]
    pub previous_secret_expires_at: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct AuditEvent {
    pub id: String,
    pub org_id: String,
    pub seq: i64,
    pub occurred_at: String,
    pub actor: String,
    pub action: String,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
    pub outcome: String,
    #[serde(default)]
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Filters of `GET /v1/audit/events` (newest first).
#[derive(Clone, Debug, Default, Serialize)]
pub struct AuditQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(flatten)]
    pub page: PageQuery,
}

/// Bounds of `GET /v1/audit/export` (oldest first).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ExportQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_seq: Option<i64>,
}

/// `GET /v1/audit/consistency`: hashes in standard base64.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    pub proof: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `GET /v1/audit/verify`: the chain's head when valid, the first broken link otherwise.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ChainVerification {
    pub valid: bool,
    pub events_checked: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_broken: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct TrustPolicy {
    pub id: String,
    pub provider: String,
    pub repository: String,
    #[serde(default)]
    pub repository_id: Option<String>,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub job_workflow_ref: Option<String>,
    #[serde(default)]
    pub event_names: Option<Vec<String>>,
    #[serde(default)]
    pub agent_id: Option<String>,
    pub allow_registration: bool,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    pub created_at: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// An organization's Cedar policy.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Policy {
    pub id: String,
    pub cedar: String,
    pub description: String,
    /// Increases with every change; the policy's `ETag`.
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /v1/policies` and `PUT /v1/policies/{id}`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PolicyBody {
    pub cedar: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `GET /v1/policies/schema`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct PolicySchema {
    pub namespace: String,
    pub cedar_schema: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /v1/policies/evaluate`: exactly one of `agent_id` and `workflow`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PolicyEvaluationRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<Value>,
    pub scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct PolicyEvaluation {
    pub decisions: Vec<PolicyDecision>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct PolicyDecision {
    pub scope: String,
    /// `allow` or `deny`.
    pub decision: String,
    pub policies: Vec<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub max_lifetime_seconds: Option<i64>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /v1/oidc/trust-policies`: name `agent_id`, or set `allow_registration`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TrustPolicyCreate {
    pub provider: String,
    pub repository: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_workflow_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_names: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner_environment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_registration: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_registrations: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

/// `POST /v1/oidc/trust-policies/evaluate`: exactly one of `token` and `claims`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TrustPolicyEvaluationRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claims: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct TrustPolicyEvaluation {
    pub matched: bool,
    #[serde(default)]
    pub policy_id: Option<String>,
    pub token_verified: bool,
    #[serde(default)]
    pub claims: Value,
    #[serde(default)]
    pub policies: Vec<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A webhook subscription; `secret` only in the answer that created or rotated it.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub enabled: bool,
    #[serde(default)]
    pub disabled_reason: Option<String>,
    #[serde(default)]
    pub failing_since: Option<String>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /v1/webhooks`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WebhookCreate {
    pub url: String,
    pub events: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// One event's delivery to one subscription, with its attempts.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct WebhookDelivery {
    pub id: String,
    pub subscription_id: String,
    pub event_type: String,
    pub status: String,
    #[serde(default)]
    pub attempts: Vec<Value>,
    #[serde(default)]
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    #[serde(flatten)]
    pub extra: Extra,
}
