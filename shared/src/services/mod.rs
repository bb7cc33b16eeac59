//! What a caller can do: the operations behind the management API, each validating through the
//! domain, writing through the store in one atomic change with its audit events.

pub mod agents;
pub mod audit_trail;
pub mod billing;
pub mod credentials;
pub mod marketplace;
pub mod orgs;
pub mod revocation;
pub mod usage;
pub mod webhooks;

use crate::domain::billing::SignatureError;
use crate::domain::validate::Invalid;
use crate::ports::kv::KvError;
use crate::ports::sql::DbError;

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
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Kv(#[from] KvError),
}
