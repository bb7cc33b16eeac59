//! Extractors shared by every function: body limits, JSON bodies, query strings and OAuth forms
//! that fail in the right dialect, and the client address.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::http::error::ApiError;
use crate::oauth::error::OAuthError;
use crate::oauth::form::OAuthForm;

/// Largest request body any endpoint reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub enum BodyError {
    TooLarge,
    /// The platform gave up waiting for the rest of the body (a slow or stalled client).
    TimedOut(String),
    Unreadable(String),
}

/// Most of an oversized body read and discarded so the connection stays usable for the client's
/// next request; anything larger ends the connection.
const MAX_DRAIN_BYTES: usize = 1024 * 1024;

/// Reads the whole body, refusing more than `MAX_BODY_BYTES`.
pub async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_DRAIN_BYTES as u64) {
        return Err(BodyError::TooLarge);
    }
    match axum::body::to_bytes(body, MAX_DRAIN_BYTES).await {
        Ok(bytes) if bytes.len() > MAX_BODY_BYTES => Err(BodyError::TooLarge),
        Ok(bytes) => Ok(bytes),
        Err(e) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            let timed_out = std::iter::successors(std::error::Error::source(&e), |s| s.source())
                .any(|s| {
                    s.downcast_ref::<std::io::Error>()
                        .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
                });
            if too_large {
                Err(BodyError::TooLarge)
            } else if timed_out {
                Err(BodyError::TimedOut(e.to_string()))
            } else {
                Err(BodyError::Unreadable(e.to_string()))
            }
        }
    }
}

fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// A body that could not be read, as a problem.
fn body_problem(e: BodyError) -> ApiError {
    match e {
        BodyError::TooLarge => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body exceeds {MAX_BODY_BYTES} bytes"),
        ),
        BodyError::TimedOut(m) => ApiError::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", m),
        BodyError::Unreadable(m) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", m),
    }
}

/// A JSON body parsed into `T`, or a problem naming what is wrong with it.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let media = media_type(&parts.headers);
        if media != "application/json" && !media.ends_with("+json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        let bytes = read_body(&parts.headers, body)
            .await
            .map_err(body_problem)?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The body exactly as sent (signed payloads are verified byte for byte), within the limit.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let bytes = read_body(&parts.headers, body)
            .await
            .map_err(body_problem)?;
        Ok(RawBody(bytes))
    }
}

/// Parses JSON, naming the offending field on type errors and unknown enum values.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() || path == "." {
            if inner.is_data() {
                return ApiError::invalid_field("body", inner.to_string());
            }
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("the body is not valid JSON: {inner}"),
            );
        }
        ApiError::invalid_field(path, inner.to_string())
    })
}

/// A JSON body that may be omitted entirely (no body and no `Content-Type`), meaning `{}`.
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let headers = req.headers();
        let declared_empty = headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() == b"0");
        let untyped = !headers.contains_key(header::CONTENT_TYPE);
        let chunked = headers.contains_key(header::TRANSFER_ENCODING);
        if untyped
            && (declared_empty || (!chunked && !headers.contains_key(header::CONTENT_LENGTH)))
        {
            return Ok(OptionalJson(T::default()));
        }
        ApiJson::<T>::from_request(req, state)
            .await
            .map(|ApiJson(value)| OptionalJson(value))
    }
}

/// A query string parsed into `T`, or a problem naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parse_query(parts.uri.query().unwrap_or("")).map(ApiQuery)
    }
}

/// Parses a query string, naming the offending parameter.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let deserializer =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        ApiError::invalid_field(path, e.into_inner().to_string())
    })
}

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = OAuthError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, OAuthError> {
        let (parts, body) = req.into_parts();
        if media_type(&parts.headers) != "application/x-www-form-urlencoded" {
            return Err(OAuthError::invalid_request(
                "send parameters as application/x-www-form-urlencoded",
            ));
        }
        let bytes = read_body(&parts.headers, body).await.map_err(|e| match e {
            BodyError::TooLarge => OAuthError::request_too_large(MAX_BODY_BYTES),
            BodyError::TimedOut(m) | BodyError::Unreadable(m) => OAuthError::invalid_request(m),
        })?;
        OAuthForm::parse(&bytes)
    }
}

/// Client address as the platform reported it (socket peer natively, `CF-Connecting-IP` at the edge).
#[derive(Clone, Debug)]
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientIp>()
            .cloned()
            .unwrap_or_else(|| ClientIp("unknown".into())))
    }
}
