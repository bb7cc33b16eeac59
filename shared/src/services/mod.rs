//! What a caller can do: the operations behind the management API, each validating through the
//! domain, writing through the store in one atomic change with its audit events.

pub mod agents;
pub mod audit_trail;
pub mod credentials;
pub mod marketplace;
pub mod orgs;
pub mod revocation;
pub mod trust_policies;
pub mod usage;

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
    #[error("the free tier allows at most {limit} agents per organization")]
    FreeTierLimit { limit: i64 },
    #[error("only client secrets can be rotated; register a new key instead")]
    NotRotatable,
    #[error("the credential is revoked")]
    CredentialRevoked,
    #[error("the agent was changed concurrently; retry")]
    Contention,
    #[error("the trust policy may register at most {limit} agents")]
    RegistrationLimit { limit: i64 },
    /// A trusted OIDC issuer's keys cannot be read right now.
    #[error("{0}")]
    IssuerUnavailable(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Kv(#[from] KvError),
}
