//! Token revocation (RFC 7009): a client revokes its own tokens, an organization's admin any token of
//! the organization. Unknown, invalid and foreign tokens answer 200 as the RFC requires.

use serde_json::json;

use crate::domain::audit::Outcome;
use crate::domain::caller::OrgId;
use crate::domain::webhooks::EventType;
use crate::limits::DecisionSlot;
use crate::oauth::client_auth::AuthenticatedClient;
use crate::oauth::error::OAuthError;
use crate::oauth::introspection::admit_with_live_token;
use crate::ports::sql::Change;
use crate::services::{revocation, webhooks};
use crate::state::AppState;

pub async fn revoke(
    state: &AppState,
    slot: &DecisionSlot,
    caller: &AuthenticatedClient,
    token: &str,
) -> Result<(), OAuthError> {
    let Some(verified) = admit_with_live_token(state, slot, caller, token).await? else {
        return Ok(());
    };
    if verified.claims.org_id != caller.org_id {
        return Ok(());
    }
    let is_admin = caller.agent_id.is_none();
    if !is_admin && verified.claims.client_id != caller.client_id {
        return Err(OAuthError::unauthorized_client(
            "a client may revoke only the tokens issued to it",
        ));
    }
    let now = state.clock.now_seconds();
    // Revoke first: if the audit write then fails the token is still dead, which is the safe order.
    revocation::revoke_token(state.kv.as_ref(), &verified.jti, verified.expires_at, now).await?;
    let mut event = state
        .audit(
            &caller.org_id,
            &caller.client_id,
            "token.revoked",
            Outcome::Success,
        )
        .target(verified.jti.clone())
        .details(json!({ "jti": verified.jti, "token_client_id": verified.claims.client_id }));
    let agent_id = (verified.subject != verified.claims.client_id).then_some(&verified.subject);
    if let Some(agent_id) = agent_id {
        event = event.agent(agent_id);
    }
    let announcement = webhooks::event(
        state,
        &OrgId::new(caller.org_id.as_str()),
        EventType::TokenRevoked,
        json!({
            "jti": verified.jti,
            "client_id": verified.claims.client_id,
            "agent_id": agent_id,
            "revoked_by": caller.client_id,
        }),
    );
    state
        .db
        .commit(Change::new().statement(announcement).event(event))
        .await?;
    Ok(())
}
