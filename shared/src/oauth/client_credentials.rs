//! The `client_credentials` grant (RFC 6749 §4.4): an authenticated client receives an access
//! token for a subset of its capabilities, for the audiences it names (RFC 8707).

use async_trait::async_trait;
use serde_json::{json, Map};

use crate::domain::policies::{PolicyAction, PolicyPrincipal};
use crate::jose::access_token::ClaimExtensions;
use crate::oauth::error::OAuthError;
use crate::oauth::grant::{
    granted_scope, requested_audiences, CallerAuthentication, Grant, GrantRequest, Issuance,
    PolicyInput,
};
use crate::state::AppState;
use crate::store::{agents, credentials};

pub struct ClientCredentials;

#[async_trait]
impl Grant for ClientCredentials {
    fn grant_type(&self) -> &'static str {
        "client_credentials"
    }

    fn authentication(&self) -> CallerAuthentication {
        CallerAuthentication::Client
    }

    async fn authorize(
        &self,
        state: &AppState,
        request: GrantRequest<'_>,
    ) -> Result<Issuance, OAuthError> {
        let client = request.client()?;
        let scope = granted_scope(request.form.get("scope"), &client.allowed_scopes)?;
        let audiences = requested_audiences(request.form, &state.config.issuer)?;
        let now = state.now_millis();
        let mut statements = vec![credentials::touch_last_used(&client.credential_id, now)];
        if let Some(agent_id) = &client.agent_id {
            statements.push(agents::touch_last_auth(agent_id, now));
        }
        let mut details = Map::new();
        details.insert("method".into(), json!(client.method.as_str()));
        Ok(Issuance {
            org_id: client.org_id.clone(),
            subject: client.subject().to_owned(),
            client_id: client.client_id.clone(),
            agent_id: client.agent_id.clone(),
            scope,
            audiences,
            extensions: ClaimExtensions::default(),
            max_lifetime_seconds: None,
            actor: client.client_id.clone(),
            details,
            statements,
            issued_token_type: None,
            policy: client.policy_facts.clone().map(|agent| PolicyInput {
                principal: PolicyPrincipal::Agent(agent),
                action: PolicyAction::IssueToken,
                client_auth_method: client.method.as_str(),
                known_version: Some(client.policy_version),
            }),
        })
    }
}
