//! Operator authentication of `/v1/operator/*` calls: the deployment's operator credential from
//! configuration, compared in constant time, then the decision point on the route's operation.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;

use crate::domain::authz::authorize_operator;
use crate::domain::caller::Operator;
use crate::domain::secrets;
use crate::http::auth::bearer;
use crate::http::error::ApiError;
use crate::http::routes::by_request;
use crate::state::AppState;

/// The verified operator of a `/v1/operator/*` call. Handlers take it after `IpLimited`, so
/// guesses count against the caller's address before the comparison.
pub struct OperatorCall(pub Operator);

impl FromRequestParts<AppState> for OperatorCall {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(expected) = state.config.operator_token.as_deref() else {
            // Off unless configured: nothing to find here.
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "operator_api_off",
                "the operator API is off on this deployment: AGENTIDP_OPERATOR_TOKEN is not set",
            ));
        };
        // A tenant's token, however privileged, is not the operator credential.
        if !bearer(parts).is_some_and(|presented| secrets::token_matches(expected, presented)) {
            let mut e = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "operator_credential_required",
                "send the deployment's operator credential as `Authorization: Bearer \
                 <AGENTIDP_OPERATOR_TOKEN>`; tenants' tokens are never valid here",
            );
            e.www_authenticate = Some(r#"Bearer realm="agentidp-operator""#.into());
            return Err(e);
        }
        let operator = Operator::verified();
        let route = by_request(parts.method.as_str(), parts.uri.path()).ok_or_else(|| {
            ApiError::internal("an operator request matched no route of the table")
        })?;
        authorize_operator(&operator, route.operation)?;
        Ok(OperatorCall(operator))
    }
}
