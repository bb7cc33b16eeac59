//! Bearer authentication of `/v1/*` calls: the verified token is the only source of the tenant, the
//! route table says which scope a call needs, and only calls that pass both count against limits.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::StatusCode;

use crate::domain::revocation::revoked_by;
use crate::http::error::ApiError;
use crate::http::limits::slot_of;
use crate::http::routes::by_request;
use crate::jose::access_token::VerifiedToken;
use crate::limits::{Meter, Subject};
use crate::ports::kv::KvError;
use crate::services::revocation;
use crate::state::AppState;

/// The authenticated caller of a `/v1/*` endpoint.
#[derive(Clone, Debug)]
pub struct Principal {
    pub org_id: String,
    /// Agent id for agents, client id for an organization's admin.
    pub subject: String,
    pub client_id: String,
    pub token: VerifiedToken,
}

impl Principal {
    /// An organization's admin: its tokens' subject is its own client id (RFC 9068 §2.2), an
    /// agent's is the agent id.
    pub fn is_admin(&self) -> bool {
        self.subject == self.client_id
    }

    /// Checks a scope beyond the one the route table declares (which the extractor has checked).
    pub fn require(&self, scope: &str) -> Result<(), ApiError> {
        if self.token.scopes().any(|s| s == scope) {
            Ok(())
        } else {
            Err(ApiError::insufficient_scope(scope))
        }
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

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    /// Verifies the token and checks the scope the route table declares for the route; only then
    /// does one key-value round trip count the call, meter it, and read the token's revocation
    /// entries. A call counts against its organization's window and, for an agent, against its
    /// own share of it; an emergency action counts only against the caller's own window.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(|| {
            ApiError::invalid_token("send an access token as `Authorization: Bearer <token>`")
        })?;
        let token = verify_for_api(state, token).await?;
        let principal = Principal {
            org_id: token.claims.org_id.clone(),
            subject: token.subject.clone(),
            client_id: token.claims.client_id.clone(),
            token,
        };
        // Every handler taking a `Principal` is mounted from the table, so a request without an
        // entry is a bug: refused rather than let through unchecked.
        let route = by_request(parts.method.as_str(), parts.uri.path())
            .ok_or_else(|| ApiError::internal("a bearer request matched no route of the table"))?;
        if let Some(scope) = route.scope {
            let alternative = route
                .alternative_scope
                .is_some_and(|other| principal.require(other).is_ok());
            if let Err(refused) =
                principal
                    .require(scope)
                    .or_else(|e| if alternative { Ok(()) } else { Err(e) })
            {
                // Refused either way and counted nowhere; a revoked token hears that it is revoked.
                return Err(if is_known_revoked(state, &principal.token).await {
                    ApiError::invalid_token("the token has been revoked")
                } else {
                    refused
                });
            }
        }
        let org_id = principal.org_id.as_str();
        let own = Subject::OrganizationClient {
            org_id,
            client_id: &principal.client_id,
            is_agent: !principal.is_admin(),
        };
        let subjects: &[Subject<'_>] = match (route.emergency, principal.is_admin()) {
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
                revocation::keys(&principal.token),
                principal.token.issued_at,
            )
            .await?;
        let revoked = revocation::is_revoked(
            state.config.revocation_on_kv_failure,
            &principal.token,
            admitted.reads,
        )
        .map_err(revocation_unavailable)?;
        if revoked {
            return Err(ApiError::invalid_token("the token has been revoked"));
        }
        Ok(principal)
    }
}
