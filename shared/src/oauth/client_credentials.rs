//! The `client_credentials` grant (RFC 6749 §4.4): an authenticated client receives an RFC 9068
//! access token for a subset of its capabilities, for the audiences it names (RFC 8707).

use serde_json::json;

use crate::audit::Outcome;
use crate::error::OAuthError;
use crate::http::OAuthForm;
use crate::oauth::client_auth::AuthenticatedClient;
use crate::oauth::TokenResponse;
use crate::rate_limit::{self, DecisionSlot, Meter, Subject};
use crate::sql::{Change, Statement};
use crate::state::AppState;
use crate::tokens::{self, TokenRequest};

pub async fn grant(
    state: &AppState,
    slot: &DecisionSlot,
    client: &AuthenticatedClient,
    form: &OAuthForm,
) -> Result<TokenResponse, OAuthError> {
    let scope = granted_scope(form.get("scope"), &client.allowed_scopes)?;
    let audiences = audiences(form, &state.config.issuer)?;
    // Counted once the request is known to be valid, so the meter counts tokens actually issued.
    let meter = Meter::TokenIssued {
        org_id: &client.org_id,
    };
    let subject = Subject::Client(&client.client_id);
    rate_limit::admit(state, slot, subject, meter, Vec::new()).await?;
    let now_millis = state.now_millis();
    let now = now_millis.div_euclid(1000);
    let ttl = state.config.token_ttl_seconds;
    let jti = state.new_id();
    let keys = state.key_set().await?;
    let access_token = tokens::mint(
        &keys,
        &TokenRequest {
            issuer: &state.config.issuer,
            subject: client.subject(),
            audiences: &audiences,
            client_id: &client.client_id,
            org_id: &client.org_id,
            scope: &scope,
            jti: &jti,
            now_seconds: now,
            ttl_seconds: ttl,
        },
    )
    .map_err(OAuthError::server_error)?;

    let mut event = state
        .audit(
            &client.org_id,
            &client.client_id,
            "token.issued",
            Outcome::Success,
        )
        .target(jti.clone())
        // The client id and the jti are the event's actor and target: not repeated here, since
        // every byte of an event is written once per token issued.
        .details(json!({
            "method": client.method.as_str(),
            "scope": scope,
            "aud": audiences,
            "expires_at": now + ttl,
        }));
    let mut change = Change::new().statement(
        // At most one write per second per client: the same information, far fewer dirty pages.
        Statement::new(
            "UPDATE credentials SET last_used_at = ?1 \
             WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at <= ?1 - 1000)",
        )
        .bind(now_millis)
        .bind(&client.credential_id),
    );
    if let Some(agent_id) = &client.agent_id {
        event = event.agent(agent_id);
        change = change.statement(
            Statement::new(
                "UPDATE agents SET last_auth_at = ?1 \
                 WHERE id = ?2 AND (last_auth_at IS NULL OR last_auth_at <= ?1 - 1000)",
            )
            .bind(now_millis)
            .bind(agent_id),
        );
    }
    // The issuance is on record before the token leaves the server.
    state.db.commit(change.event(event)).await?;

    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        scope,
    })
}

/// No `scope` means every allowed scope; otherwise each requested scope must be allowed.
fn granted_scope(requested: Option<&str>, allowed: &[String]) -> Result<String, OAuthError> {
    let Some(requested) = requested else {
        return Ok(allowed.join(" "));
    };
    let mut granted: Vec<&str> = Vec::new();
    for scope in requested.split(' ') {
        if scope.is_empty() {
            continue;
        }
        if !allowed.iter().any(|a| a == scope) {
            return Err(OAuthError::invalid_scope(format!(
                "scope `{scope}` is not among this client's capabilities"
            )));
        }
        if !granted.contains(&scope) {
            granted.push(scope);
        }
    }
    Ok(granted.join(" "))
}

/// RFC 8707 `resource` (absolute URIs without fragment) and `audience` values; the API itself
/// (the issuer) when none is named.
fn audiences(form: &OAuthForm, issuer: &str) -> Result<Vec<String>, OAuthError> {
    let mut audiences: Vec<String> = Vec::new();
    for resource in form.get_all("resource") {
        let absolute = resource
            .split_once("://")
            .is_some_and(|(scheme, rest)| !scheme.is_empty() && !rest.is_empty());
        if !absolute || resource.contains('#') || resource.contains(char::is_whitespace) {
            return Err(OAuthError::invalid_target(format!(
                "resource `{resource}` must be an absolute URI without a fragment"
            )));
        }
        if !audiences.iter().any(|a| a == resource) {
            audiences.push(resource.to_owned());
        }
    }
    for audience in form.get_all("audience") {
        if audience.is_empty() || audience.len() > 512 || audience.contains(char::is_whitespace) {
            return Err(OAuthError::invalid_target(
                "audience values must be non-empty without spaces",
            ));
        }
        if !audiences.iter().any(|a| a == audience) {
            audiences.push(audience.to_owned());
        }
    }
    if audiences.len() > 10 {
        return Err(OAuthError::invalid_target("at most 10 audiences per token"));
    }
    if audiences.is_empty() {
        audiences.push(issuer.to_owned());
    }
    Ok(audiences)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        vec!["read:docs".into(), "write:docs".into()]
    }

    #[test]
    fn scope_defaults_to_every_capability() {
        assert_eq!(
            granted_scope(None, &allowed()).unwrap(),
            "read:docs write:docs"
        );
    }

    #[test]
    fn scope_must_be_a_subset() {
        assert_eq!(
            granted_scope(Some("read:docs read:docs"), &allowed()).unwrap(),
            "read:docs"
        );
        let err = granted_scope(Some("read:docs admin"), &allowed()).unwrap_err();
        assert_eq!(err.error, "invalid_scope");
    }

    #[test]
    fn resources_must_be_absolute() {
        let form = OAuthForm::parse(
            b"resource=https%3A%2F%2Fapi.example.com&resource=https%3A%2F%2Fb.example",
        )
        .unwrap();
        assert_eq!(audiences(&form, "http://iss").unwrap().len(), 2);
        let form = OAuthForm::parse(b"resource=api").unwrap();
        assert_eq!(
            audiences(&form, "http://iss").unwrap_err().error,
            "invalid_target"
        );
        let form = OAuthForm::parse(b"").unwrap();
        assert_eq!(
            audiences(&form, "http://iss").unwrap(),
            vec!["http://iss".to_owned()]
        );
    }
}
