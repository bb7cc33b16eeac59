//! The one mapping of every layer's errors to HTTP: RFC 9457 problems outside `/oauth2/*`, RFC 6749
//! §5.2 errors on it.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::config::tiers::Collection;
use crate::domain::authz::Denied;
use crate::domain::policies::PolicyInputError;
use crate::domain::validate::Invalid;
use crate::http::cache::uncached;
use crate::limits::Refusal;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::ports::kv::KvError;
use crate::ports::sql::DbError;
use crate::services::ServiceError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem with a stable machine-readable `code`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// Members beyond the standard ones. Boxed: errors travel in every handler's `Result`, and
    /// a map inline would make each of them as large as the map.
    pub extra: Box<Map<String, Value>>,
    pub www_authenticate: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            extra: Box::default(),
            www_authenticate: None,
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// A request field is missing, of the wrong type or out of range; `field` names it.
    pub fn invalid_field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", detail).with("field", field.into())
    }

    /// Missing, or belonging to another organization: the two are indistinguishable by design.
    pub fn not_found(what: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, code, detail)
    }

    /// RFC 6750 §3: the bearer token is missing, malformed, expired or revoked.
    pub fn invalid_token(detail: impl Into<String>) -> Self {
        let mut e = ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", detail);
        e.www_authenticate = Some(r#"Bearer realm="agentidp", error="invalid_token""#.into());
        e
    }

    pub fn insufficient_scope(scope: &str) -> Self {
        let mut e = ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("this call needs the `{scope}` scope"),
        );
        e.www_authenticate = Some(format!(
            r#"Bearer realm="agentidp", error="insufficient_scope", scope="{scope}""#
        ));
        e.with("required_scope", scope)
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the server could not complete the request; it has been logged",
        )
    }

    pub fn unavailable(detail: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %detail, "dependency unavailable");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "a backing service is unavailable; retry shortly",
        )
    }

    fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }
}

impl ApiError {
    /// The RFC 9457 document, for answers written outside a handler (the native listener's).
    pub fn problem_document(&self) -> Value {
        let mut body = json!({
            "type": format!("urn:agentidp:problem:{}", self.code),
            "title": self.title(),
            "status": self.status.as_u16(),
            "detail": self.detail,
            "code": self.code,
        });
        if let Value::Object(map) = &mut body {
            map.extend(self.extra.as_ref().clone());
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.problem_document();
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(challenge) = self
            .www_authenticate
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(_) => ApiError::unavailable(e),
            DbError::SchemaNewer {
                ref database,
                ref binary,
            } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "schema_newer_than_binary",
                e.to_string(),
            )
            .with("database_schema", database.clone())
            .with("binary_schema", binary.clone()),
            _ => ApiError::internal(e),
        }
    }
}

impl From<KvError> for ApiError {
    fn from(e: KvError) -> Self {
        ApiError::unavailable(e)
    }
}

fn oauth_status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
        ErrorCode::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::InvalidRequest
        | ErrorCode::InvalidGrant
        | ErrorCode::UnauthorizedClient
        | ErrorCode::UnsupportedGrantType
        | ErrorCode::InvalidScope
        | ErrorCode::InvalidTarget
        | ErrorCode::UnsupportedTokenType => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = oauth_status(self.code);
        let body = json!({ "error": self.error(), "error_description": self.description });
        let mut response = uncached((status, axum::Json(body)));
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="agentidp""#),
            );
        }
        response
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::invalid_field(e.field.clone(), e.to_string())
    }
}

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::MissingScope(scope) => ApiError::insufficient_scope(scope),
            Denied::ManagementScopesNeedAnAdmin => ApiError::new(
                StatusCode::FORBIDDEN,
                "management_scopes_need_an_admin",
                denied.to_string(),
            ),
            Denied::BeyondCallersCapabilities(ref missing) => ApiError::new(
                StatusCode::FORBIDDEN,
                "beyond_callers_capabilities",
                denied.to_string(),
            )
            .with("missing_capabilities", missing.clone()),
            // Introspection answers such a token as inactive rather than refusing: never reached.
            Denied::NotTheCallersToken => ApiError::new(
                StatusCode::FORBIDDEN,
                "not_the_callers_token",
                denied.to_string(),
            ),
            Denied::OperatorOnly => {
                ApiError::new(StatusCode::FORBIDDEN, "operator_only", denied.to_string())
            }
            Denied::NotAnOperatorOperation => ApiError::new(
                StatusCode::FORBIDDEN,
                "not_an_operator_operation",
                denied.to_string(),
            ),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(invalid) => invalid.into(),
            ServiceError::NotFound(what) => ApiError::not_found(what),
            ServiceError::Decommissioned => {
                ApiError::conflict("agent_decommissioned", e.to_string())
            }
            ServiceError::EmailTaken => ApiError::conflict("email_taken", e.to_string()),
            ServiceError::AgentLimit { tier, limit } => ApiError::new(
                StatusCode::FORBIDDEN,
                // The free tier keeps the code it always had; paid tiers have their own.
                if tier == "free" {
                    "free_tier_limit_exceeded"
                } else {
                    "tier_limit_exceeded"
                },
                e.to_string(),
            )
            .with("limit", limit)
            .with("tier", tier),
            ServiceError::NotRotatable => ApiError::conflict("not_rotatable", e.to_string()),
            ServiceError::CredentialRevoked => {
                ApiError::conflict("credential_revoked", e.to_string())
            }
            ServiceError::UrlNotAllowed(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "url_not_allowed", e.to_string())
                    .with("field", "url")
            }
            ServiceError::CollectionLimit {
                collection,
                tier,
                limit,
            } => ApiError::new(
                StatusCode::FORBIDDEN,
                match collection {
                    Collection::CredentialsPerAgent => "credential_limit_exceeded",
                    Collection::TrustPolicies => "trust_policy_limit_exceeded",
                    Collection::AdminCredentials => "admin_credential_limit_exceeded",
                },
                e.to_string(),
            )
            .with("limit", limit)
            .with("tier", tier),
            ServiceError::SubscriptionLimit { limit } => ApiError::new(
                StatusCode::FORBIDDEN,
                "webhook_limit_exceeded",
                e.to_string(),
            )
            .with("limit", limit),
            ServiceError::WebhookDisabled => ApiError::conflict("webhook_disabled", e.to_string()),
            ServiceError::DeliveryNotFailed => {
                ApiError::conflict("delivery_not_failed", e.to_string())
            }
            ServiceError::BillingNotConfigured => ApiError::new(
                StatusCode::NOT_FOUND,
                "billing_not_configured",
                "this deployment has no Stripe webhook (STRIPE_WEBHOOK_SECRET is unset)",
            ),
            ServiceError::BadSignature(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_signature", e.to_string())
            }
            ServiceError::RegistrationLimit { limit } => ApiError::new(
                StatusCode::FORBIDDEN,
                "registration_limit_exceeded",
                e.to_string(),
            )
            .with("limit", limit),
            ServiceError::IssuerUnavailable(detail) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "issuer_unavailable",
                detail,
            ),
            ServiceError::Contention | ServiceError::RotatedConcurrently => {
                ApiError::conflict("conflict", e.to_string())
            }
            ServiceError::GracePeriodRunning { .. } => {
                ApiError::conflict("grace_period_running", e.to_string())
            }
            ServiceError::LastAdminCredential => {
                ApiError::conflict("last_admin_credential", e.to_string())
            }
            ServiceError::Forbidden(denied) => denied.into(),
            ServiceError::InvalidPolicy(PolicyInputError::Problem(problem)) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_policy",
                format!("cedar: {problem}"),
            )
            .with("field", "cedar")
            .with("line", problem.line)
            .with("column", problem.column)
            .with("message", problem.message),
            ServiceError::InvalidPolicy(
                ref invalid @ (PolicyInputError::Missing(field)
                | PolicyInputError::TooLong(field, _)),
            ) => ApiError::invalid_field(field, invalid.to_string()),
            ServiceError::PolicyLimit { limit } => ApiError::new(
                StatusCode::FORBIDDEN,
                "policy_limit_exceeded",
                e.to_string(),
            )
            .with("limit", limit),
            ServiceError::PolicyChanged {
                version,
                conditional,
            } => ApiError::new(
                if conditional {
                    StatusCode::PRECONDITION_FAILED
                } else {
                    StatusCode::CONFLICT
                },
                "policy_changed",
                e.to_string(),
            )
            .with("version", version),
            ServiceError::PolicySetUnusable(ref why) => {
                tracing::error!(error = %why, "an organization's stored policies do not compile");
                ApiError::internal("the organization's policies cannot be evaluated")
            }
            ServiceError::Signing(ref why) => {
                tracing::error!(error = %why, "a document could not be signed");
                ApiError::internal("the document could not be signed")
            }
            ServiceError::Db(db) => db.into(),
            ServiceError::Kv(kv) => kv.into(),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Limited(decision) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "too many requests: at most {} per window; retry in {} s",
                    decision.limit, decision.reset_seconds
                ),
            ),
            Refusal::Unavailable(e) => ApiError::unavailable(e),
        }
    }
}
