//! The decision point: every operation of the API and every grant named once with the scope it
//! needs, and the one function that decides whether a caller may perform one on a resource.

use crate::domain::caller::{Caller, Identity, Operator};
use crate::domain::scopes::{
    self, AGENTS_READ, AGENTS_REGISTER, AGENTS_WRITE, AUDIT_READ, ORGS_READ, ORGS_WRITE,
    POLICIES_READ, POLICIES_WRITE, WEBHOOKS_READ, WEBHOOKS_WRITE,
};

/// What an operation requires of a bearer token, as the route table's default rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub scope: &'static str,
    /// A scope that serves in place of `scope` for a narrower caller (a workflow registering
    /// agents through its trust policy).
    pub alternative: Option<&'static str>,
}

macro_rules! operations {
    ($($variant:ident => $id:literal $(needs $scope:ident $(or $alt:ident)?)?),* $(,)?) => {
        /// Every operation of the route table, and every grant of the token endpoint.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Operation {
            $($variant,)*
        }

        impl Operation {
            pub const ALL: &'static [Operation] = &[$(Operation::$variant,)*];

            /// The OpenAPI `operationId` (for a grant, `grant:<grant_type>`).
            pub const fn id(self) -> &'static str {
                match self {
                    $(Operation::$variant => $id,)*
                }
            }

            /// The scope a bearer call needs; `None` for operations not reached with a bearer token.
            pub const fn requirement(self) -> Option<Requirement> {
                match self {
                    $(Operation::$variant => operations!(@requirement $($scope $(, $alt)?)?),)*
                }
            }
        }
    };
    (@requirement) => { None };
    (@requirement $scope:ident) => { Some(Requirement { scope: $scope, alternative: None }) };
    (@requirement $scope:ident, $alt:ident) => {
        Some(Requirement { scope: $scope, alternative: Some($alt) })
    };
}

operations! {
    Health => "health",
    HealthDetailed => "healthDetailed",
    GetOpenApi => "getOpenApi",
    IssueToken => "issueToken",
    IntrospectToken => "introspectToken",
    RevokeToken => "revokeToken",
    GetJwks => "getJwks",
    GetAuthorizationServerMetadata => "getAuthorizationServerMetadata",
    GetOpenidConfiguration => "getOpenidConfiguration",
    CreateOrganization => "createOrganization",
    ListAdminCredentials => "listAdminCredentials" needs ORGS_READ,
    CreateAdminCredential => "createAdminCredential" needs ORGS_WRITE,
    RotateAdminCredential => "rotateAdminCredential" needs ORGS_WRITE,
    RevokeAdminCredential => "revokeAdminCredential" needs ORGS_WRITE,
    CreateAgent => "createAgent" needs AGENTS_WRITE or AGENTS_REGISTER,
    ListAgents => "listAgents" needs AGENTS_READ,
    GetAgent => "getAgent" needs AGENTS_READ,
    UpdateAgent => "updateAgent" needs AGENTS_WRITE,
    DecommissionAgent => "decommissionAgent" needs AGENTS_WRITE,
    CreateCredential => "createCredential" needs AGENTS_WRITE,
    ListCredentials => "listCredentials" needs AGENTS_READ,
    RevokeCredential => "revokeCredential" needs AGENTS_WRITE,
    RotateCredential => "rotateCredential" needs AGENTS_WRITE,
    // Usage is the organization's own bookkeeping, as readable as its agents.
    GetUsage => "getUsage" needs AGENTS_READ,
    CreateTrustPolicy => "createTrustPolicy" needs AGENTS_WRITE,
    ListTrustPolicies => "listTrustPolicies" needs AGENTS_READ,
    EvaluateTrustPolicies => "evaluateTrustPolicies" needs AGENTS_READ,
    GetTrustPolicy => "getTrustPolicy" needs AGENTS_READ,
    DeleteTrustPolicy => "deleteTrustPolicy" needs AGENTS_WRITE,
    ListPolicies => "listPolicies" needs POLICIES_READ,
    CreatePolicy => "createPolicy" needs POLICIES_WRITE,
    GetPolicySchema => "getPolicySchema" needs POLICIES_READ,
    EvaluatePolicies => "evaluatePolicies" needs POLICIES_READ,
    GetPolicy => "getPolicy" needs POLICIES_READ,
    PutPolicy => "putPolicy" needs POLICIES_WRITE,
    DeletePolicy => "deletePolicy" needs POLICIES_WRITE,
    ListAuditEvents => "listAuditEvents" needs AUDIT_READ,
    VerifyAuditChain => "verifyAuditChain" needs AUDIT_READ,
    ExportAuditEvents => "exportAuditEvents" needs AUDIT_READ,
    GetLatestAuditCheckpoint => "getLatestAuditCheckpoint" needs AUDIT_READ,
    // The checkpoint verifier key is published: whoever holds a checkpoint must be able to check it.
    GetAuditCheckpointKey => "getAuditCheckpointKey",
    GetAuditInclusionProof => "getAuditInclusionProof" needs AUDIT_READ,
    GetAuditConsistencyProof => "getAuditConsistencyProof" needs AUDIT_READ,
    GetTokenAnalytics => "getTokenAnalytics" needs AUDIT_READ,
    GetComplianceReport => "getComplianceReport" needs AUDIT_READ,
    SearchMarketplace => "searchMarketplace",
    GetMarketplaceAgent => "getMarketplaceAgent",
    GetAgentCard => "getAgentCard",
    GetAgentDidDocument => "getAgentDidDocument",
    GetApiReference => "getApiReference",
    GetApiReferenceFile => "getApiReferenceFile",
    GetPortal => "getPortal",
    GetPortalFile => "getPortalFile",
    CreateWebhook => "createWebhook" needs WEBHOOKS_WRITE,
    ListWebhooks => "listWebhooks" needs WEBHOOKS_READ,
    DispatchWebhooks => "dispatchWebhooks" needs WEBHOOKS_WRITE,
    GetWebhook => "getWebhook" needs WEBHOOKS_READ,
    UpdateWebhook => "updateWebhook" needs WEBHOOKS_WRITE,
    DeleteWebhook => "deleteWebhook" needs WEBHOOKS_WRITE,
    RotateWebhookSecret => "rotateWebhookSecret" needs WEBHOOKS_WRITE,
    TestWebhook => "testWebhook" needs WEBHOOKS_WRITE,
    ListWebhookDeliveries => "listWebhookDeliveries" needs WEBHOOKS_READ,
    RetryWebhookDelivery => "retryWebhookDelivery" needs WEBHOOKS_WRITE,
    ReceiveStripeEvent => "receiveStripeEvent",
    // The deployment's own operations, for its operator only (`Operation::is_operator`).
    RotateSigningKey => "rotateSigningKey",
    GetMigrationStatus => "getMigrationStatus",
    GetOperatorHealth => "getOperatorHealth",
    RedirectToPortal => "redirectToPortal",
    // The grants: their scope decision is the capability ceiling narrowed by the organization's
    // policies, made per scope in `oauth::grant::issue`.
    ClientCredentialsGrant => "grant:client_credentials",
    TokenExchangeGrant => "grant:token-exchange",
    JwtBearerGrant => "grant:jwt-bearer",
}

impl Operation {
    /// Whether the operation is deployment-wide, for the operator credential alone: no tenant's
    /// caller may perform it, and the operator performs nothing else.
    pub const fn is_operator(self) -> bool {
        matches!(
            self,
            Operation::RotateSigningKey
                | Operation::GetMigrationStatus
                | Operation::GetOperatorHealth
        )
    }

    /// The operation with `id`.
    pub fn by_id(id: &str) -> Option<Operation> {
        Operation::ALL.iter().copied().find(|op| op.id() == id)
    }
}

/// What the operation acts on, as far as the decision depends on it.
#[derive(Clone, Copy, Debug)]
pub enum Resource<'a> {
    /// Nothing loaded yet: the decision every call gets before it counts against a limit.
    Call,
    /// Power over an agent that holds `capabilities`: a credential for it (create, rotate), a
    /// trust policy naming it, a delegation to it. Whoever gains that power can obtain tokens
    /// with every one of them.
    PowerOverAgent { capabilities: &'a [String] },
    /// Capabilities an update adds to an existing agent, which whoever already has power over it
    /// (a credential, a trust policy) would gain.
    GrantingCapabilities { added: &'a [String] },
    /// A new agent's capabilities: nobody has power over it yet (giving it a credential or a
    /// trust policy is decided as [`Resource::PowerOverAgent`]), so only management scopes
    /// need an admin.
    NewAgent { capabilities: &'a [String] },
    /// An access token of the caller's organization, to introspect: an admin sees every one, an
    /// agent its own and those meant for it (its id or client id among the audiences).
    Token {
        subject: &'a str,
        audiences: &'a [String],
    },
}

/// Why a caller may not.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("this call needs the `{0}` scope")]
    MissingScope(&'static str),
    #[error("only an organization's admin credential may give an agent management scopes")]
    ManagementScopesNeedAnAdmin,
    #[error(
        "the caller does not hold every capability it would gain power over ({}); only an admin \
         or a caller holding them may do this",
        .0.join(", ")
    )]
    BeyondCallersCapabilities(Vec<String>),
    #[error("the token is neither the caller's own nor meant for it")]
    NotTheCallersToken,
    #[error("this is a deployment operation: only the operator credential may call it")]
    OperatorOnly,
    #[error("the operator credential is valid on `/v1/operator/` operations only")]
    NotAnOperatorOperation,
}

/// Decides whether `caller` may perform `operation` on `resource`. The operation's declared
/// scope is the default rule; the resource adds that no caller but an admin reaches, through any
/// path, a capability it does not hold itself.
pub fn authorize(
    caller: &Caller,
    operation: Operation,
    resource: Resource<'_>,
) -> Result<(), Denied> {
    // Whatever its scopes, a tenant's caller never reaches the deployment's own operations.
    if operation.is_operator() {
        return Err(Denied::OperatorOnly);
    }
    if let Some(requirement) = operation.requirement() {
        let alternative = requirement.alternative.is_some_and(|alt| {
            caller.holds(alt)
                && matches!(caller.identity, Identity::Workflow { agent_id: None, .. })
        });
        if !caller.holds(requirement.scope) && !alternative {
            return Err(Denied::MissingScope(requirement.scope));
        }
    }
    if caller.is_admin() {
        return Ok(());
    }
    match resource {
        Resource::Call => Ok(()),
        Resource::GrantingCapabilities { added } => {
            if added.iter().any(|scope| scopes::is_management(scope)) {
                return Err(Denied::ManagementScopesNeedAnAdmin);
            }
            beyond_caller(caller, added)
        }
        Resource::NewAgent { capabilities } => {
            if capabilities
                .iter()
                .any(|scope| scopes::is_management(scope))
            {
                return Err(Denied::ManagementScopesNeedAnAdmin);
            }
            Ok(())
        }
        Resource::PowerOverAgent { capabilities } => beyond_caller(caller, capabilities),
        Resource::Token { subject, audiences } => {
            let own = caller.agent_id().is_some_and(|id| id.as_str() == subject);
            let meant_for_caller = audiences.iter().any(|audience| {
                caller.agent_id().is_some_and(|id| id.as_str() == audience)
                    || caller.client_id().is_some_and(|id| id.as_str() == audience)
            });
            if own || meant_for_caller {
                Ok(())
            } else {
                Err(Denied::NotTheCallersToken)
            }
        }
    }
}

/// Decides whether the deployment's operator (its verified credential) may perform `operation`:
/// the operator's operations and nothing else, so the credential opens no tenant's data.
pub fn authorize_operator(_: &Operator, operation: Operation) -> Result<(), Denied> {
    if operation.is_operator() {
        Ok(())
    } else {
        Err(Denied::NotAnOperatorOperation)
    }
}

fn beyond_caller(caller: &Caller, capabilities: &[String]) -> Result<(), Denied> {
    let missing: Vec<String> = capabilities
        .iter()
        .filter(|scope| !caller.holds(scope))
        .cloned()
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Denied::BeyondCallersCapabilities(missing))
    }
}

/// Whether the caller registers agents through a trust policy rather than managing them.
pub fn registers_through_policy(caller: &Caller) -> Option<&str> {
    match &caller.identity {
        Identity::Workflow {
            agent_id: None,
            policy_id,
            ..
        } if !caller.holds(AGENTS_WRITE) => Some(policy_id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::caller::{AgentId, ClientId, OrgId};

    fn agent(scopes: &[&str]) -> Caller {
        Caller {
            org: OrgId::new("org"),
            identity: Identity::Agent {
                agent_id: AgentId::new("a1"),
                client_id: ClientId::new("c1"),
            },
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            key_binding: None,
        }
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_declared_scope_is_the_default_rule() {
        let reader = agent(&[AGENTS_READ]);
        assert_eq!(
            authorize(&reader, Operation::CreateAgent, Resource::Call),
            Err(Denied::MissingScope(AGENTS_WRITE))
        );
        assert!(authorize(&reader, Operation::ListAgents, Resource::Call).is_ok());
        assert!(authorize(&reader, Operation::SearchMarketplace, Resource::Call).is_ok());
    }

    #[test]
    fn the_registration_scope_serves_only_a_workflow_registering() {
        let mut registering = agent(&[AGENTS_REGISTER]);
        assert!(authorize(&registering, Operation::CreateAgent, Resource::Call).is_err());
        registering.identity = Identity::Workflow {
            agent_id: None,
            policy_id: "p1".into(),
            claims: serde_json::Value::Null,
        };
        assert!(authorize(&registering, Operation::CreateAgent, Resource::Call).is_ok());
        assert!(authorize(&registering, Operation::ListAgents, Resource::Call).is_err());
        assert_eq!(registers_through_policy(&registering), Some("p1"));
    }

    #[test]
    fn an_agent_never_gains_power_over_more_than_it_holds() {
        let writer = agent(&[AGENTS_WRITE, "read:docs"]);
        let privileged = strings(&["read:docs", AUDIT_READ]);
        assert_eq!(
            authorize(
                &writer,
                Operation::CreateCredential,
                Resource::PowerOverAgent {
                    capabilities: &privileged
                }
            ),
            Err(Denied::BeyondCallersCapabilities(strings(&[AUDIT_READ])))
        );
        let modest = strings(&["read:docs"]);
        assert!(authorize(
            &writer,
            Operation::CreateCredential,
            Resource::PowerOverAgent {
                capabilities: &modest
            }
        )
        .is_ok());
        assert_eq!(
            authorize(
                &writer,
                Operation::UpdateAgent,
                Resource::GrantingCapabilities { added: &privileged }
            ),
            Err(Denied::ManagementScopesNeedAnAdmin)
        );
    }

    #[test]
    fn an_admin_may_do_what_its_scopes_allow() {
        let mut admin = agent(&[AGENTS_WRITE]);
        admin.identity = Identity::Admin {
            client_id: ClientId::new("c1"),
        };
        let privileged = strings(&[AUDIT_READ, "payments:write"]);
        assert!(authorize(
            &admin,
            Operation::CreateCredential,
            Resource::PowerOverAgent {
                capabilities: &privileged
            }
        )
        .is_ok());
        assert!(authorize(&admin, Operation::ListPolicies, Resource::Call).is_err());
    }

    #[test]
    fn operator_and_tenants_never_reach_each_others_operations() {
        let mut admin = agent(scopes::ADMIN);
        admin.identity = Identity::Admin {
            client_id: ClientId::new("c1"),
        };
        for operation in Operation::ALL.iter().copied() {
            let tenant = authorize(&admin, operation, Resource::Call);
            let operator = authorize_operator(&Operator::verified(), operation);
            if operation.is_operator() {
                assert_eq!(tenant, Err(Denied::OperatorOnly), "{operation:?}");
                assert!(operator.is_ok(), "{operation:?}");
            } else {
                assert_eq!(
                    operator,
                    Err(Denied::NotAnOperatorOperation),
                    "{operation:?}"
                );
            }
        }
    }

    #[test]
    fn operation_ids_are_unique() {
        for (i, a) in Operation::ALL.iter().enumerate() {
            for b in &Operation::ALL[i + 1..] {
                assert_ne!(a.id(), b.id());
            }
            assert_eq!(Operation::by_id(a.id()), Some(*a));
        }
    }
}
