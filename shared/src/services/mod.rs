//! What a caller can do: the operations behind the management API, each validating through the
//! domain, writing through the store in one atomic change with its audit events.

pub mod admin_credentials;
pub mod agents;
pub mod analytics;
pub mod audit_log;
pub mod audit_trail;
pub mod billing;
pub mod compliance;
pub mod credentials;
pub mod marketplace;
pub mod operator;
pub mod orgs;
pub mod policies;
pub mod retention;
pub mod revocation;
pub mod sealing;
pub mod trust_policies;
pub mod usage;
pub mod webhooks;

use crate::config::tiers::Collection;
use crate::domain::audit::{AuditDraft, Outcome};
use crate::domain::authz::{self, Denied, Operation, Resource};
use crate::domain::billing::SignatureError;
use crate::domain::caller::{Caller, OrgId};
use crate::domain::policies::PolicyInputError;
use crate::domain::validate::Invalid;
use crate::ports::kv::KvError;
use crate::ports::sql::DbError;
use crate::state::AppState;

/// Who acts, and when: what every management operation receives in place of loose organization
/// and actor ids. Built once per request from the verified token (`http::auth`).
#[derive(Clone, Debug)]
pub struct Context {
    pub caller: Caller,
    pub now_millis: i64,
}

impl Context {
    /// The caller's organization: the only one its operations reach.
    pub fn org(&self) -> &OrgId {
        &self.caller.org
    }

    /// The decision point (`domain::authz::authorize`) for an operation on a loaded resource.
    pub fn authorize(
        &self,
        operation: Operation,
        resource: Resource<'_>,
    ) -> Result<(), ServiceError> {
        authz::authorize(&self.caller, operation, resource).map_err(ServiceError::Forbidden)
    }

    /// An audit event of this caller's organization naming this caller as its actor: the one
    /// place the audit actor is derived from the caller.
    pub fn audit(&self, state: &AppState, action: &'static str, outcome: Outcome) -> AuditDraft {
        state.audit(self.org().as_str(), self.caller.actor(), action, outcome)
    }
}

/// Failures of the operations; mapped to problems in one place (`http::error`).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// Missing or another organization's: deliberately indistinguishable.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the agent is decommissioned; decommissioning is terminal")]
    Decommissioned,
    #[error("another agent of this organization already uses that email")]
    EmailTaken,
    #[error("the {tier} tier allows at most {limit} agents per organization")]
    AgentLimit { tier: &'static str, limit: i64 },
    #[error("only client secrets can be rotated; register a new key instead")]
    NotRotatable,
    #[error("the credential is revoked")]
    CredentialRevoked,
    #[error("the agent was changed concurrently; retry")]
    Contention,
    /// A webhook URL the SSRF rules refuse; the text says why.
    #[error("url: {0}")]
    UrlNotAllowed(String),
    #[error("the {tier} tier allows at most {limit} {}", .collection.noun())]
    CollectionLimit {
        collection: Collection,
        tier: &'static str,
        limit: i64,
    },
    #[error("an organization may have at most {limit} webhook subscriptions")]
    SubscriptionLimit { limit: i64 },
    #[error("the webhook subscription is disabled; enable it first")]
    WebhookDisabled,
    #[error("only a failed delivery can be retried")]
    DeliveryNotFailed,
    #[error("billing is not configured on this deployment")]
    BillingNotConfigured,
    #[error(transparent)]
    BadSignature(SignatureError),
    #[error("the trust policy may register at most {limit} agents")]
    RegistrationLimit { limit: i64 },
    /// A trusted OIDC issuer's keys cannot be read right now.
    #[error("{0}")]
    IssuerUnavailable(String),
    #[error("the secret was rotated concurrently by another request; read the credential again before retrying")]
    RotatedConcurrently,
    #[error("the previous secret is still in its grace period (until {until}); rotating again with a grace period would end it early: wait for it to end, or rotate with \"grace_period_seconds\": 0 to end every earlier secret now")]
    GracePeriodRunning { until: String },
    #[error("this is the organization's last active admin credential; create another one first (POST /v1/orgs/credentials), so the organization is never left without an admin")]
    LastAdminCredential,
    /// The decision point refused the caller.
    #[error(transparent)]
    Forbidden(Denied),
    /// A policy text or description the API refuses, with where and why.
    #[error(transparent)]
    InvalidPolicy(PolicyInputError),
    #[error("an organization may have at most {limit} policies")]
    PolicyLimit { limit: i64 },
    /// The policy is at another version than the one the request was based on.
    #[error("the policy was changed since (it is at version {version}); read it again and retry")]
    PolicyChanged { version: i64, conditional: bool },
    /// A stored policy that no longer compiles: the set fails closed.
    #[error("the organization's policies cannot be compiled: {0}")]
    PolicySetUnusable(String),
    /// This deployment's signing key could not sign a document.
    #[error("signing failed: {0}")]
    Signing(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Kv(#[from] KvError),
}
