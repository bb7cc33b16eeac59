//! Bearer authentication of `/v1/*` calls: the verified token is the only source of the caller and
//! its tenant, the decision point rules on the route's operation, and only calls that pass both
//! count against limits.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::StatusCode;

use crate::domain::authz::{authorize, Resource};
use crate::domain::caller::{AgentId, Caller, ClientId, Identity, KeyBinding, OrgId};
use crate::domain::revocation::revoked_by;
use crate::http::error::ApiError;
use crate::http::limits::slot_of;
use crate::http::routes::by_request;
use crate::jose::access_token::VerifiedToken;
use crate::limits::{Meter, Subject};
use crate::oauth::federation::TRUST_POLICY_CLAIM;
use crate::ports::kv::KvError;
use crate::services::{revocation, Context};
use crate::state::AppState;

/// The caller a verified token speaks for, derived once, in this one place: an admin's tokens
/// name its own client id as subject (RFC 9068 §2.2), an agent's its agent id, and a workflow's
/// carry the verified workflow as `act` with the trust policy as client (a registration token
/// names the policy in its own claim and has no agent).
pub fn caller_of(token: &VerifiedToken) -> Caller {
    let claims = &token.claims;
    let workflow = claims.extensions.act.clone();
    let registration_policy = claims
        .extensions
        .other
        .get(TRUST_POLICY_CLAIM)
        .and_then(|v| v.as_str());
    let identity = match (registration_policy, workflow) {
        (Some(policy_id), Some(claims)) => Identity::Workflow {
            agent_id: None,
            policy_id: policy_id.to_owned(),
            claims,
        },
        (_, Some(workflow)) => Identity::Workflow {
            agent_id: Some(AgentId::new(token.subject.as_str())),
            policy_id: claims.client_id.clone(),
            claims: workflow,
        },
        _ if token.subject == claims.client_id => Identity::Admin {
            client_id: ClientId::new(claims.client_id.as_str()),
        },
        _ => Identity::Agent {
            agent_id: AgentId::new(token.subject.as_str()),
            client_id: ClientId::new(claims.client_id.as_str()),
        },
    };
    let key_binding = claims
        .extensions
        .cnf
        .as_ref()
        .and_then(|cnf| cnf.get("jkt"))
        .and_then(|jkt| jkt.as_str())
        .map(|jkt| KeyBinding {
            jkt: jkt.to_owned(),
        });
    Caller {
        org: OrgId::new(claims.org_id.as_str()),
        identity,
        scopes: token.scopes().map(str::to_owned).collect(),
        key_binding,
    }
}

/// Extracts `Authorization: Bearer <token>` (RFC 6750 §2.1; the scheme is case-insensitive).
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Verifies signature and claims for use against this API (audience = issuer); revocation is
/// checked by the caller, folded into the request's rate-limit admission.
pub async fn verify_for_api(state: &AppState, token: &str) -> Result<VerifiedToken, ApiError> {
    let verified = state
        .verify_access_token(token)
        .await?
        .map_err(|e| ApiError::invalid_token(e.to_string()))?;
    let issuer = &state.config.issuer;
    if !verified.audiences.iter().any(|a| a == issuer) {
        return Err(ApiError::invalid_token(
            "the token is not meant for this API (aud)",
        ));
    }
    Ok(verified)
}

/// 503 rather than a guess: a token whose revocation cannot be checked is never accepted.
fn revocation_unavailable(e: KvError) -> ApiError {
    tracing::warn!(error = %e, "revocation store unavailable; refusing the token (fail closed)");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "revocation_check_unavailable",
        "the token's revocation status cannot be checked right now; retry shortly",
    )
}

/// Whether the store says `token` is revoked; `false` when it cannot tell (the call is refused
/// anyway).
async fn is_known_revoked(state: &AppState, token: &VerifiedToken) -> bool {
    let values = state.kv.get_many(&revocation::keys(token)).await;
    values.is_ok_and(|values| revoked_by(token.issued_at, &values))
}

impl FromRequestParts<AppState> for Context {
    type Rejection = ApiError;

    /// Verifies the token, derives the caller and asks the decision point about the route's
    /// operation; only then does one key-value round trip count the call, meter it, and read the
    /// token's revocation entries. A call counts against its organization's window and, for an
    /// agent, against its own share of it; an emergency action counts only against the caller's
    /// own window.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(|| {
            ApiError::invalid_token("send an access token as `Authorization: Bearer <token>`")
        })?;
        let token = verify_for_api(state, token).await?;
        let caller = caller_of(&token);
        // Every handler taking a `Context` is mounted from the table, so a request without an
        // entry is a bug: refused rather than let through unchecked.
        let route = by_request(parts.method.as_str(), parts.uri.path())
            .ok_or_else(|| ApiError::internal("a bearer request matched no route of the table"))?;
        if let Err(denied) = authorize(&caller, route.operation, Resource::Call) {
            // Refused either way and counted nowhere; a revoked token hears that it is revoked.
            return Err(if is_known_revoked(state, &token).await {
                ApiError::invalid_token("the token has been revoked")
            } else {
                denied.into()
            });
        }
        let org_id = caller.org.as_str();
        let own = Subject::OrganizationClient {
            org_id,
            client_id: &token.claims.client_id,
            is_agent: !caller.is_admin(),
        };
        let subjects: &[Subject<'_>] = match (route.emergency, caller.is_admin()) {
            (true, _) => &[own],
            // An admin's own window is the organization's whole limit: nothing to add.
            (false, true) => &[Subject::Organization(org_id)],
            (false, false) => &[Subject::Organization(org_id), own],
        };
        // A revoked token's call, like one refused for its scope, counts nowhere.
        let admitted = state
            .limiter
            .admit_unless_revoked(
                &slot_of(parts),
                subjects,
                Meter::ApiCall { org_id },
                revocation::keys(&token),
                token.issued_at,
            )
            .await?;
        let revoked = revocation::is_revoked(
            state.config.revocation_on_kv_failure,
            &token,
            admitted.reads,
        )
        .map_err(revocation_unavailable)?;
        if revoked {
            return Err(ApiError::invalid_token("the token has been revoked"));
        }
        Ok(Context {
            caller,
            now_millis: state.now_millis(),
        })
    }
}
