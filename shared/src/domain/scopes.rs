//! Scopes: the management API's own, what an organization's admin is granted, and the syntax every
//! scope token follows (RFC 6749 §3.3).

pub const AGENTS_READ: &str = "agents:read";
pub const AGENTS_WRITE: &str = "agents:write";
pub const AUDIT_READ: &str = "audit:read";
pub const WEBHOOKS_READ: &str = "webhooks:read";
pub const WEBHOOKS_WRITE: &str = "webhooks:write";
/// Registering agents and nothing else: granted only to workflows a trust policy with
/// `allow_registration` admits, never to an admin.
pub const AGENTS_REGISTER: &str = "agents:register";

/// What an organization's admin credential is granted.
pub const ADMIN: &[&str] = &[
    AGENTS_READ,
    AGENTS_WRITE,
    AUDIT_READ,
    WEBHOOKS_READ,
    WEBHOOKS_WRITE,
];

/// RFC 6749 §3.3 scope-token characters: printable ASCII except space, `"` and `\`.
pub fn is_scope_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}
