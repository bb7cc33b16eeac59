//! Sign-up: creating an organization and its one-time admin credential in one transaction.

use serde_json::json;

use crate::config::Signup;
use crate::domain::audit::Outcome;
use crate::domain::credentials::ClientSecret;
use crate::domain::orgs::{
    valid_name, AdminCredential, CreatedOrganization, NewOrganization, Organization, SIGNUP_ACTOR,
};
use crate::domain::{scopes, secrets};
use crate::ports::sql::Change;
use crate::services::ServiceError;
use crate::state::AppState;
use crate::store::{credentials, orgs};

/// Whether a caller may sign up: always when sign-up is open, else with the configured token.
pub fn signup_allowed(state: &AppState, presented: Option<&str>) -> bool {
    match &state.config.signup {
        Signup::Open => true,
        Signup::Token(expected) => presented.is_some_and(|p| secrets::token_matches(expected, p)),
        Signup::Closed => false,
    }
}

/// Creates an organization and its admin credential in one transaction with its first audit event.
pub async fn create(
    state: &AppState,
    new: NewOrganization,
) -> Result<CreatedOrganization, ServiceError> {
    let organization = Organization {
        id: state.new_id(),
        name: valid_name(new.name)?,
        tier: "free",
        created_at: state.now_millis(),
    };
    let (secret, secret_hash) = secrets::client_secret_from(state.random());
    let admin = AdminCredential {
        id: state.new_id(),
        client_id: secrets::client_id_from(state.random()),
        client_secret: ClientSecret(secret),
        scope: scopes::ADMIN.join(" "),
    };
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
    let change = Change::new()
        .statement(orgs::insert(&organization))
        .statement(credentials::insert_admin(
            &organization.id,
            &admin.id,
            &admin.client_id,
            secret_hash,
            organization.created_at,
        ))
        .event(event);
    state.db.commit(change).await?;
    Ok(CreatedOrganization {
        organization,
        admin_credential: admin,
    })
}
