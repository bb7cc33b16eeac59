//! The RFC 7523 §2.1 jwt-bearer authorization grant for workload identity federation: the same
//! trust engine as token exchange, in the shape MCP's workload identity federation expects.

use async_trait::async_trait;

use crate::config::Config;
use crate::oauth::error::OAuthError;
use crate::oauth::federation;
use crate::oauth::grant::{CallerAuthentication, Grant, GrantRequest, Issuance};
use crate::state::AppState;

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

pub struct JwtBearer;

#[async_trait]
impl Grant for JwtBearer {
    fn grant_type(&self) -> &'static str {
        GRANT_TYPE
    }

    fn authentication(&self) -> CallerAuthentication {
        CallerAuthentication::GrantParameters
    }

    fn is_enabled(&self, config: &Config) -> bool {
        !config.trusted_issuers.is_empty()
    }

    async fn authorize(
        &self,
        state: &AppState,
        request: GrantRequest<'_>,
    ) -> Result<Issuance, OAuthError> {
        let assertion = request.form.require("assertion")?;
        federation::authorize(state, request.form, assertion, None).await
    }
}
