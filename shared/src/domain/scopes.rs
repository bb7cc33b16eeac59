//! Scopes: the management API's own, what an organization's admin is granted, which of them an
//! agent may hold, and the syntax every scope token follows (RFC 6749 §3.3).

pub const AGENTS_READ: &str = "agents:read";
pub const AGENTS_WRITE: &str = "agents:write";
pub const AUDIT_READ: &str = "audit:read";
pub const WEBHOOKS_READ: &str = "webhooks:read";
pub const WEBHOOKS_WRITE: &str = "webhooks:write";
/// Registering agents and nothing else: granted only to workflows a trust policy with
/// `allow_registration` admits, never to an admin.
pub const AGENTS_REGISTER: &str = "agents:register";
/// Reading the organization's admin credentials.
pub const ORGS_READ: &str = "orgs:read";
/// Creating, rotating and revoking the organization's admin credentials.
pub const ORGS_WRITE: &str = "orgs:write";
/// Reading the organization's Cedar policies and deciding hypothetical requests with them.
pub const POLICIES_READ: &str = "policies:read";
/// Writing the organization's Cedar policies.
pub const POLICIES_WRITE: &str = "policies:write";

/// What an organization's admin credential is granted.
pub const ADMIN: &[&str] = &[
    AGENTS_READ,
    AGENTS_WRITE,
    AUDIT_READ,
    WEBHOOKS_READ,
    WEBHOOKS_WRITE,
    ORGS_READ,
    ORGS_WRITE,
    POLICIES_READ,
    POLICIES_WRITE,
];

/// Resource names of the management API. A scope `<name>:<anything>` is a management scope,
/// including ones a later release adds (`billing:read`, `agents:admin`, ...), so reserving them
/// does not depend on keeping a list of actions up to date.
const MANAGEMENT_RESOURCES: &[&str] = &[
    "agents",
    "audit",
    "webhooks",
    "orgs",
    "billing",
    "usage",
    "oidc",
    "credentials",
    "tokens",
    "policies",
];

/// Resources whose scopes never go to an agent, even when management scopes are allowed: control
/// of the organization's own admin credentials stays with admin credentials.
const ADMIN_ONLY_RESOURCES: &[&str] = &["orgs"];

fn resource(scope: &str) -> Option<&str> {
    scope.split_once(':').map(|(resource, _)| resource)
}

/// Whether `scope` belongs to the management API: reserved, so that no agent becomes an
/// administrator by a capability that merely looks like one of its own.
pub fn is_management(scope: &str) -> bool {
    resource(scope).is_some_and(|r| MANAGEMENT_RESOURCES.contains(&r))
}

/// Whether `scope` is for admin credentials only, never an agent's capability.
pub fn is_admin_only(scope: &str) -> bool {
    resource(scope).is_some_and(|r| ADMIN_ONLY_RESOURCES.contains(&r))
}

/// RFC 6749 §3.3 scope-token characters: printable ASCII except space, `"` and `\`.
pub fn is_scope_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn management_scopes_are_reserved_by_resource() {
        for scope in ADMIN {
            assert!(is_management(scope), "{scope}");
        }
        for scope in ["agents:admin", "billing:read", "orgs:write", "audit:export"] {
            assert!(is_management(scope), "{scope}");
        }
        for scope in ["read:docs", "agents", "docs:agents", "agentsx:read"] {
            assert!(!is_management(scope), "{scope}");
        }
        assert!(is_admin_only(ORGS_WRITE) && is_admin_only(ORGS_READ));
        assert!(!is_admin_only(AGENTS_WRITE));
    }
}
