//! RFC 6749 §5.2 errors, as every `/oauth2/*` endpoint answers; `http::error` gives each its status.

use crate::limits::Refusal;
use crate::ports::kv::KvError;
use crate::ports::sql::DbError;
use crate::services::ServiceError;

/// The registered error codes this server answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    /// The body exceeds the limit: `invalid_request`, answered with 413.
    RequestTooLarge,
    /// Always 401 with a `WWW-Authenticate` challenge (RFC 6749 §5.2).
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    /// RFC 8707 §2: the requested resource or audience is not acceptable.
    InvalidTarget,
    /// RFC 7009 §2.2.1.
    UnsupportedTokenType,
    /// A rate limit or failure budget refuses the request: 429 with `Retry-After` (RFC 6585),
    /// as `temporarily_unavailable`, RFC 6749's error for a server that cannot handle the request
    /// for now. Not `slow_down`: that is the device flow's polling error (RFC 8628 §3.5).
    TooManyRequests,
    TemporarilyUnavailable,
    ServerError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest | ErrorCode::RequestTooLarge => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::TemporarilyUnavailable | ErrorCode::TooManyRequests => {
                "temporarily_unavailable"
            }
            ErrorCode::ServerError => "server_error",
        }
    }
}

#[derive(Debug)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
}

impl OAuthError {
    fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: description.into(),
        }
    }

    /// The `error` member.
    pub fn error(&self) -> &'static str {
        self.code.as_str()
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
    }
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }
    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, description)
    }
    pub fn unsupported_grant_type(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnsupportedGrantType, description)
    }
    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidScope, description)
    }
    pub fn invalid_target(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidTarget, description)
    }
    pub fn unsupported_token_type(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnsupportedTokenType, description)
    }
    pub fn request_too_large(limit: usize) -> Self {
        Self::new(
            ErrorCode::RequestTooLarge,
            format!("the request body exceeds {limit} bytes"),
        )
    }
    pub fn too_many_requests(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::TooManyRequests, description)
    }
    pub fn server_error(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "token endpoint internal error");
        Self::new(
            ErrorCode::ServerError,
            "the server could not complete the request",
        )
    }
    pub fn temporarily_unavailable(detail: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %detail, "token endpoint dependency unavailable");
        Self::new(
            ErrorCode::TemporarilyUnavailable,
            "a backing service is unavailable; retry shortly",
        )
    }
}

impl From<DbError> for OAuthError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(_) => OAuthError::temporarily_unavailable(e),
            _ => OAuthError::server_error(e),
        }
    }
}

impl From<ServiceError> for OAuthError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Db(db) => db.into(),
            ServiceError::Kv(kv) => kv.into(),
            other => OAuthError::server_error(other),
        }
    }
}

impl From<KvError> for OAuthError {
    fn from(e: KvError) -> Self {
        OAuthError::temporarily_unavailable(e)
    }
}

impl From<Refusal> for OAuthError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Limited(decision) => OAuthError::too_many_requests(format!(
                "too many requests; retry in {} s",
                decision.reset_seconds
            )),
            Refusal::Unavailable(e) => OAuthError::temporarily_unavailable(e),
        }
    }
}
