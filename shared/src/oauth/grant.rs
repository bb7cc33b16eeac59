//! The grant contract. Each grant type (one file each) says how its caller authenticates, validates
//! its request and decides what to issue; one path, [`issue`], then mints, meters, audits and
//! answers for every grant, so a new grant never repeats any of that.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::domain::audit::Outcome;
use crate::domain::caller::OrgId;
use crate::domain::policies::{
    decide, PolicyAction, PolicyPrincipal, RequestFacts, ScopeDecision, TokenRequest,
};
use crate::jose::access_token::{self, ClaimExtensions, MintRequest};
use crate::limits::{DecisionSlot, Meter, Subject};
use crate::oauth::client_auth::AuthenticatedClient;
use crate::oauth::error::OAuthError;
use crate::oauth::form::OAuthForm;
use crate::ports::sql::{Change, Statement};
use crate::services::policies;
use crate::state::AppState;

/// How the caller of a grant proves who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallerAuthentication {
    /// Client authentication (RFC 6749 §2.3: a client secret or an RFC 7523 client assertion)
    /// before the grant runs.
    Client,
    /// The grant's own parameters are the credential (a subject token, an assertion grant).
    GrantParameters,
}

/// What a grant handler receives.
pub struct GrantRequest<'a> {
    pub form: &'a OAuthForm,
    /// The authenticated client, when the grant asks for client authentication.
    pub client: Option<&'a AuthenticatedClient>,
}

impl<'a> GrantRequest<'a> {
    /// The authenticated client of a grant that declared [`CallerAuthentication::Client`].
    pub fn client(&self) -> Result<&'a AuthenticatedClient, OAuthError> {
        self.client.ok_or_else(|| {
            OAuthError::server_error("a client grant ran without client authentication")
        })
    }
}

/// What a grant decided to issue: the one input of [`issue`].
pub struct Issuance {
    pub org_id: String,
    /// `sub`: the agent id (so revoking the agent revokes the token, whatever the grant), or the
    /// client id of an organization's admin.
    pub subject: String,
    /// The `client_id` claim.
    pub client_id: String,
    pub agent_id: Option<String>,
    pub scope: String,
    pub audiences: Vec<String>,
    /// Claims beyond the core ones (`act`, `cnf`, ...).
    pub extensions: ClaimExtensions,
    /// Lifetime cap below the configured token lifetime, if the grant has one.
    pub max_lifetime_seconds: Option<i64>,
    /// Who the issuance counts against for rate limiting, and who the audit trail names as actor.
    pub actor: String,
    /// What the `token.issued` audit event records beyond the common fields.
    pub details: Map<String, Value>,
    /// Bookkeeping committed in the same transaction as the audit event (last use, pinning).
    pub statements: Vec<Statement>,
    /// RFC 8693 §2.2.1 `issued_token_type`, for grants that answer with it.
    pub issued_token_type: Option<&'static str>,
    /// What the organization's policies decide about; `None` for an admin's token, which
    /// policies do not govern (an organization cannot lock its own admin out).
    pub policy: Option<PolicyInput>,
}

/// The principal and action of an issuance, as the organization's Cedar policies see them.
pub struct PolicyInput {
    pub principal: PolicyPrincipal,
    pub action: PolicyAction,
    /// How the client authenticated (`client_secret_basic`, ..., or `none` when the grant's
    /// parameters are the credential).
    pub client_auth_method: &'static str,
    /// The version of the organization's policy set when the grant read it with its own data;
    /// `None` has it read.
    pub known_version: Option<i64>,
}

#[async_trait]
pub trait Grant: Send + Sync + 'static {
    /// The `grant_type` value this handler serves.
    fn grant_type(&self) -> &'static str;

    fn authentication(&self) -> CallerAuthentication;

    /// Whether this deployment's configuration enables the grant (federation needs a trusted
    /// issuer); a disabled grant is unsupported and left out of the metadata.
    fn is_enabled(&self, _config: &Config) -> bool {
        true
    }

    /// Validates the request and decides what to issue; issues nothing itself.
    async fn authorize(
        &self,
        state: &AppState,
        request: GrantRequest<'_>,
    ) -> Result<Issuance, OAuthError>;
}

/// A successful token response (RFC 6749 §5.1, RFC 8693 §2.2.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

/// RFC 8693 §3: the token type this server issues.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Issues what a grant decided, the same way for every grant: counts it against the actor's limit
/// and meters it, mints the RFC 9068 token, and commits the issuance's audit event and
/// bookkeeping before the token leaves the server.
pub async fn issue(
    state: &AppState,
    slot: &DecisionSlot,
    client_ip: &str,
    grant_type: &'static str,
    mut issuance: Issuance,
) -> Result<TokenResponse, OAuthError> {
    let decided_by = apply_policies(state, client_ip, grant_type, &mut issuance).await?;
    // Counted once the request is known to be valid, so the meter counts tokens actually issued.
    let meter = Meter::TokenIssued {
        org_id: &issuance.org_id,
    };
    state
        .limiter
        .admit(slot, Subject::Client(&issuance.actor), meter, Vec::new())
        .await?;
    let now = state.clock.now_seconds();
    let ttl = issuance
        .max_lifetime_seconds
        .map_or(state.config.token_ttl_seconds, |cap| {
            cap.clamp(1, state.config.token_ttl_seconds)
        });
    let jti = state.new_id();
    let keys = state.key_set().await?;
    let access_token = access_token::mint(
        &keys,
        &MintRequest {
            issuer: &state.config.issuer,
            subject: &issuance.subject,
            audiences: &issuance.audiences,
            client_id: &issuance.client_id,
            org_id: &issuance.org_id,
            scope: &issuance.scope,
            jti: &jti,
            now_seconds: now,
            ttl_seconds: ttl,
            extensions: &issuance.extensions,
        },
    )
    .map_err(OAuthError::server_error)?;

    // The jti is the event's target and the client its actor, so neither is repeated: every byte
    // of this event is written once per token issued.
    let mut details = json!({
        "grant_type": grant_type,
        "scope": issuance.scope,
        "aud": issuance.audiences,
        "expires_at": now + ttl,
    });
    if let Value::Object(common) = &mut details {
        if issuance.client_id != issuance.actor {
            common.insert("client_id".into(), json!(issuance.client_id));
        }
        if !decided_by.is_empty() {
            common.insert("policies".into(), json!(decided_by));
        }
        common.extend(issuance.details);
    }
    let mut event = state
        .audit(
            &issuance.org_id,
            &issuance.actor,
            "token.issued",
            Outcome::Success,
        )
        .target(jti.clone())
        .details(details);
    if let Some(agent_id) = &issuance.agent_id {
        event = event.agent(agent_id);
    }
    let mut change = Change::new().event(event);
    change.statements = issuance.statements;
    // The issuance is on record before the token leaves the server.
    state.db.commit(change).await?;

    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        scope: issuance.scope,
        issued_token_type: issuance.issued_token_type,
    })
}

/// Narrows the issuance to the scopes the organization's policies permit, one authorization
/// query per scope and audience, and caps its lifetime by the lowest `@max_lifetime_seconds` of
/// the permits that decided; refuses it (`invalid_scope`, naming the forbidding policies) when
/// none is permitted. Returns the determining policies. An organization without policies, and
/// an admin's token, pass untouched. Capabilities stay the ceiling: only granted scopes are asked.
async fn apply_policies(
    state: &AppState,
    client_ip: &str,
    grant_type: &'static str,
    issuance: &mut Issuance,
) -> Result<Vec<String>, OAuthError> {
    let Some(input) = &issuance.policy else {
        return Ok(Vec::new());
    };
    let compiled = policies::compiled(
        state,
        &OrgId::new(issuance.org_id.as_str()),
        input.known_version,
    )
    .await?;
    if compiled.is_empty() {
        return Ok(Vec::new());
    }
    let ttl = issuance
        .max_lifetime_seconds
        .map_or(state.config.token_ttl_seconds, |cap| {
            cap.clamp(1, state.config.token_ttl_seconds)
        });
    let facts = RequestFacts {
        grant_type: grant_type.to_owned(),
        client_auth_method: input.client_auth_method.to_owned(),
        now: state.clock.now_seconds(),
        client_ip: client_ip.to_owned(),
        key_bound: issuance.extensions.cnf.is_some(),
        lifetime_seconds: ttl,
    };
    let scopes: Vec<&str> = issuance
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    let decisions = decide(
        &compiled,
        &TokenRequest {
            principal: &input.principal,
            action: input.action,
            audiences: &issuance.audiences,
            facts: &facts,
        },
        &scopes,
    );
    let permitted: Vec<&ScopeDecision> = decisions.iter().filter(|d| d.allowed).collect();
    if permitted.is_empty() {
        let forbidding: Vec<&str> = decisions
            .iter()
            .flat_map(|d| d.policies.iter().map(String::as_str))
            .collect();
        let reason = decisions.iter().find_map(|d| d.reason.as_deref());
        let mut description = if forbidding.is_empty() {
            "no policy of the organization permits any requested scope".to_owned()
        } else {
            format!(
                "the organization's policies forbid every requested scope (policy {})",
                forbidding.join(", ")
            )
        };
        if let Some(reason) = reason {
            description.push_str(&format!(": {reason}"));
        }
        return Err(OAuthError::invalid_scope(description));
    }
    let mut decided_by: Vec<String> = permitted
        .iter()
        .flat_map(|d| d.policies.iter().cloned())
        .collect();
    decided_by.sort();
    decided_by.dedup();
    if let Some(cap) = permitted
        .iter()
        .filter_map(|d| d.max_lifetime_seconds)
        .min()
    {
        issuance.max_lifetime_seconds =
            Some(issuance.max_lifetime_seconds.map_or(cap, |c| c.min(cap)));
    }
    issuance.scope = permitted
        .iter()
        .map(|d| d.scope.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(decided_by)
}

/// No `scope` means every allowed scope; otherwise each requested scope must be allowed.
pub fn granted_scope(requested: Option<&str>, allowed: &[String]) -> Result<String, OAuthError> {
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

/// Most `resource` and `audience` values one token may name, together.
pub const MAX_AUDIENCES: usize = 10;
/// Longest `resource` or `audience` value. With [`MAX_AUDIENCES`] it bounds the token, so every
/// token minted stays one that introspection, revocation and the API accept.
pub const MAX_AUDIENCE_CHARS: usize = 512;

/// RFC 8707 `resource` (absolute URIs without fragment) and `audience` values, at most
/// [`MAX_AUDIENCES`] of at most [`MAX_AUDIENCE_CHARS`] each; the API itself (the issuer) when none
/// is named.
pub fn requested_audiences(form: &OAuthForm, issuer: &str) -> Result<Vec<String>, OAuthError> {
    let named = form.get_all("resource").count() + form.get_all("audience").count();
    if named > MAX_AUDIENCES {
        return Err(OAuthError::invalid_target(format!(
            "at most {MAX_AUDIENCES} resource and audience values per token"
        )));
    }
    let mut audiences: Vec<String> = Vec::new();
    for resource in form.get_all("resource") {
        let absolute = resource
            .split_once("://")
            .is_some_and(|(scheme, rest)| !scheme.is_empty() && !rest.is_empty());
        if !absolute || resource.contains('#') || resource.contains(char::is_whitespace) {
            return Err(OAuthError::invalid_target(
                "each resource must be an absolute URI without a fragment",
            ));
        }
        if resource.chars().count() > MAX_AUDIENCE_CHARS {
            return Err(OAuthError::invalid_target(format!(
                "each resource must be at most {MAX_AUDIENCE_CHARS} characters"
            )));
        }
        if !audiences.iter().any(|a| a == resource) {
            audiences.push(resource.to_owned());
        }
    }
    for audience in form.get_all("audience") {
        if audience.is_empty()
            || audience.chars().count() > MAX_AUDIENCE_CHARS
            || audience.contains(char::is_whitespace)
        {
            return Err(OAuthError::invalid_target(format!(
                "audience values must be 1 to {MAX_AUDIENCE_CHARS} characters without spaces"
            )));
        }
        if !audiences.iter().any(|a| a == audience) {
            audiences.push(audience.to_owned());
        }
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
        assert_eq!(err.error(), "invalid_scope");
    }

    #[test]
    fn resources_must_be_absolute() {
        let form = OAuthForm::parse(
            b"resource=https%3A%2F%2Fapi.example.com&resource=https%3A%2F%2Fb.example",
        )
        .unwrap();
        assert_eq!(requested_audiences(&form, "http://iss").unwrap().len(), 2);
        let form = OAuthForm::parse(b"resource=api").unwrap();
        assert_eq!(
            requested_audiences(&form, "http://iss")
                .unwrap_err()
                .error(),
            "invalid_target"
        );
        let form = OAuthForm::parse(b"").unwrap();
        assert_eq!(
            requested_audiences(&form, "http://iss").unwrap(),
            vec!["http://iss".to_owned()]
        );
    }

    #[test]
    fn audiences_are_bounded_in_length_and_number() {
        let long = format!("resource=https://a.example/{}", "x".repeat(500));
        let form = OAuthForm::parse(long.as_bytes()).unwrap();
        let error = requested_audiences(&form, "http://iss").unwrap_err();
        assert_eq!(error.error(), "invalid_target");
        let eleven = (0..11)
            .map(|i| format!("audience=a{i}"))
            .collect::<Vec<_>>()
            .join("&");
        let form = OAuthForm::parse(eleven.as_bytes()).unwrap();
        assert!(requested_audiences(&form, "http://iss").is_err());
        let ten = (0..10)
            .map(|i| format!("audience={}{i}", "a".repeat(511)))
            .collect::<Vec<_>>()
            .join("&");
        let form = OAuthForm::parse(ten.as_bytes()).unwrap();
        assert_eq!(requested_audiences(&form, "http://iss").unwrap().len(), 10);
    }
}
