//! Organizations (tenants) as the domain sees them, the admin credential sign-up hands out once,
//! and the admin credentials as they are listed, rotated and revoked afterwards.

use serde::{Deserialize, Serialize};

use crate::domain::credentials::ClientSecret;
use crate::domain::time::{optional_timestamp, timestamp};
use crate::domain::validate::{bounded_text, Invalid};

const MAX_NAME_CHARS: usize = 200;

/// Who signs up is not yet anyone the audit trail knows.
pub const SIGNUP_ACTOR: &str = "signup";

/// Body of `POST /v1/orgs`; `name` is optional here so its absence is reported by name.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrganization {
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub tier: &'static str,
    #[serde(serialize_with = "timestamp")]
    pub created_at: i64,
}

/// The admin credential, with its secret shown this once.
#[derive(Debug, Serialize)]
pub struct AdminCredential {
    pub id: String,
    pub client_id: String,
    pub client_secret: ClientSecret,
    pub scope: String,
}

/// An admin credential's metadata: never its secret or the secret's hash.
#[derive(Clone, Debug, Serialize)]
pub struct OrgCredential {
    pub id: String,
    pub client_id: String,
    pub status: String,
    /// Space-separated scopes the credential's tokens carry.
    pub scope: String,
    #[serde(serialize_with = "timestamp")]
    pub created_at: i64,
    #[serde(serialize_with = "optional_timestamp")]
    pub rotated_at: Option<i64>,
    #[serde(serialize_with = "optional_timestamp")]
    pub revoked_at: Option<i64>,
    #[serde(serialize_with = "optional_timestamp")]
    pub last_used_at: Option<i64>,
    #[serde(serialize_with = "optional_timestamp")]
    pub previous_secret_expires_at: Option<i64>,
}

impl OrgCredential {
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }

    /// The details every admin credential audit event carries: never a secret.
    pub fn audit_details(&self) -> serde_json::Value {
        serde_json::json!({ "credential_id": self.id, "client_id": self.client_id, "role": "admin" })
    }
}

/// An admin credential with the secret just generated for it (creation and rotation only).
#[derive(Debug, Serialize)]
pub struct IssuedOrgCredential {
    #[serde(flatten)]
    pub credential: OrgCredential,
    pub client_secret: ClientSecret,
}

#[derive(Debug, Serialize)]
pub struct CreatedOrganization {
    pub organization: Organization,
    pub admin_credential: AdminCredential,
}

pub fn valid_name(name: Option<String>) -> Result<String, Invalid> {
    let name = name.ok_or_else(|| Invalid::new("name", "is required"))?;
    bounded_text("name", name, MAX_NAME_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_required_and_bounded() {
        assert!(valid_name(None).is_err());
        assert!(valid_name(Some("  ".into())).is_err());
        assert!(valid_name(Some("x".repeat(201))).is_err());
        assert_eq!(valid_name(Some("Acme".into())).unwrap(), "Acme");
    }
}
