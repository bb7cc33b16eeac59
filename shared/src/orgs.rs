//! Organizations (tenants): sign-up, which creates the organization and its one-time admin credential.

use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::agents::{bounded_text, timestamp, AgentError};
use crate::audit::Outcome;
use crate::auth::scopes;
use crate::credentials::ClientSecret;
use crate::secrets;
use crate::sql::{Change, Statement};
use crate::state::AppState;

const MAX_NAME_CHARS: usize = 200;

/// Who signs up is not yet anyone the audit trail knows.
const SIGNUP_ACTOR: &str = "signup";

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

#[derive(Debug, Serialize)]
pub struct CreatedOrganization {
    pub organization: Organization,
    pub admin_credential: AdminCredential,
}

/// Compares a presented signup token with the configured one in constant time. Both are hashed
/// first so neither their contents nor their lengths show in the timing.
pub fn signup_token_matches(configured: &str, presented: &str) -> bool {
    let expected = secrets::hash_secret(configured);
    bool::from(secrets::hash_secret(presented).ct_eq(&expected))
}

fn valid_name(name: Option<String>) -> Result<String, AgentError> {
    let name = name.ok_or_else(|| AgentError::invalid("name", "is required"))?;
    bounded_text("name", name, MAX_NAME_CHARS)
}

/// Creates an organization and its admin credential in one transaction with its first audit event.
pub async fn create(
    state: &AppState,
    new: NewOrganization,
) -> Result<CreatedOrganization, AgentError> {
    let organization = Organization {
        id: state.new_id(),
        name: valid_name(new.name)?,
        tier: "free",
        created_at: state.now_millis(),
    };
    let (secret, secret_hash) = secrets::new_client_secret(state.entropy.as_ref());
    let admin = AdminCredential {
        id: state.new_id(),
        client_id: secrets::new_client_id(state.entropy.as_ref()),
        client_secret: ClientSecret(secret),
        scope: scopes::ADMIN.join(" "),
    };
    let org_row =
        Statement::new("INSERT INTO orgs (id, name, tier, created_at) VALUES (?1, ?2, ?3, ?4)")
            .bind(&organization.id)
            .bind(&organization.name)
            .bind(organization.tier)
            .bind(organization.created_at);
    let credential_row = Statement::new(
        "INSERT INTO credentials (id, org_id, agent_id, role, kind, client_id, secret_hash, status, \
         created_at) VALUES (?1, ?2, NULL, 'admin', 'client_secret', ?3, ?4, 'active', ?5)",
    )
    .bind(&admin.id)
    .bind(&organization.id)
    .bind(&admin.client_id)
    .bind(secret_hash)
    .bind(organization.created_at);
    let event = state
        .audit(
            &organization.id,
            SIGNUP_ACTOR,
            "org.created",
            Outcome::Success,
        )
        .target(organization.id.clone())
        .details(json!({
            "name": organization.name,
            "admin_credential_id": admin.id,
            "admin_client_id": admin.client_id,
        }));
    state
        .db
        .commit(
            Change::new()
                .statement(org_row)
                .statement(credential_row)
                .event(event),
        )
        .await?;
    Ok(CreatedOrganization {
        organization,
        admin_credential: admin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signup_tokens_match_only_exactly() {
        assert!(signup_token_matches("s3cret", "s3cret"));
        assert!(!signup_token_matches("s3cret", "s3cret "));
        assert!(!signup_token_matches("s3cret", ""));
    }

    #[test]
    fn names_are_required_and_bounded() {
        assert!(valid_name(None).is_err());
        assert!(valid_name(Some("  ".into())).is_err());
        assert!(valid_name(Some("x".repeat(201))).is_err());
        assert_eq!(valid_name(Some("Acme".into())).unwrap(), "Acme");
    }
}
