//! Who a request acts as, derived once from what was verified: the only input `authorize` and the
//! audit trail take about the caller.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

typed_id!(
    /// An organization (tenant) id.
    OrgId
);
typed_id!(
    /// An agent's immutable id.
    AgentId
);
typed_id!(
    /// An OAuth `client_id`: an admin credential's, an agent credential's, or a trust policy's.
    ClientId
);

/// What kind of party is calling.
#[derive(Clone, Debug, PartialEq)]
pub enum Identity {
    /// An organization's admin credential.
    Admin { client_id: ClientId },
    /// An agent, through one of its credentials.
    Agent {
        agent_id: AgentId,
        client_id: ClientId,
    },
    /// A CI workflow admitted by a trust policy: acting as `agent_id`, or, without one, holding a
    /// registration token of the policy. `claims` is the verified workflow (the token's `act`).
    Workflow {
        agent_id: Option<AgentId>,
        policy_id: String,
        claims: Value,
    },
}

/// A key the caller proved possession of (RFC 7800 `cnf`), when its token is sender-constrained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyBinding {
    /// RFC 7638 thumbprint of the key (`cnf.jkt`).
    pub jkt: String,
}

/// The verified caller of a request.
#[derive(Clone, Debug, PartialEq)]
pub struct Caller {
    pub org: OrgId,
    pub identity: Identity,
    /// The scopes its token carries.
    pub scopes: Vec<String>,
    pub key_binding: Option<KeyBinding>,
}

impl Caller {
    /// What the audit trail names as the actor: the admin's client id, the agent's id, or the
    /// trust policy through which a workflow acts.
    pub fn actor(&self) -> &str {
        match &self.identity {
            Identity::Admin { client_id } => client_id.as_str(),
            Identity::Agent { agent_id, .. } => agent_id.as_str(),
            Identity::Workflow {
                agent_id: Some(agent_id),
                ..
            } => agent_id.as_str(),
            Identity::Workflow { policy_id, .. } => policy_id,
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(self.identity, Identity::Admin { .. })
    }

    /// The agent the caller is, if it is one (directly or through a workflow).
    pub fn agent_id(&self) -> Option<&AgentId> {
        match &self.identity {
            Identity::Agent { agent_id, .. } => Some(agent_id),
            Identity::Workflow { agent_id, .. } => agent_id.as_ref(),
            Identity::Admin { .. } => None,
        }
    }

    /// The OAuth client the caller authenticated as, where it is one of its own.
    pub fn client_id(&self) -> Option<&ClientId> {
        match &self.identity {
            Identity::Admin { client_id } | Identity::Agent { client_id, .. } => Some(client_id),
            Identity::Workflow { .. } => None,
        }
    }

    pub fn holds(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// The deployment's operator, proven by the operator credential from configuration
/// (`AGENTIDP_OPERATOR_TOKEN`). Not a [`Caller`]: it belongs to no organization, and
/// `authorize_operator` lets it perform the deployment's own operations only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operator(());

impl Operator {
    /// The operator, once its credential has been compared with the configured one (in constant
    /// time, by `http::operator`).
    pub fn verified() -> Self {
        Operator(())
    }
}
