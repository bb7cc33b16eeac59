//! HTTP plumbing shared by every function: body limits, typed extractors that fail in the right
//! dialect, pagination cursors and the fallbacks for unknown routes.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, OAuthError};

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
        let bytes = read_body(&parts.headers, body).await.map_err(|e| match e {
            BodyError::TooLarge => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the request body exceeds {MAX_BODY_BYTES} bytes"),
            ),
            BodyError::TimedOut(m) => {
                ApiError::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", m)
            }
            BodyError::Unreadable(m) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", m),
        })?;
        parse_json(&bytes).map(ApiJson)
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

/// A query string parsed into `T`, or a problem naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                ApiError::invalid_field(path, e.into_inner().to_string())
            })
    }
}

/// Parameters that may appear more than once (RFC 8707 §2 and RFC 8693 §2.1).
const REPEATABLE_PARAMETERS: &[&str] = &["resource", "audience"];

/// An `application/x-www-form-urlencoded` OAuth request; RFC 6749 §3.2 forbids repeated parameters.
pub struct OAuthForm {
    params: Vec<(String, String)>,
}

impl OAuthForm {
    /// Every value of a parameter that RFC 8707 lets repeat (`resource`, `audience`).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.params
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// A parameter that must be present.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing `{name}` parameter")))
    }

    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let mut params: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(body) {
            let repeatable = REPEATABLE_PARAMETERS.contains(&k.as_ref());
            if !repeatable && params.iter().any(|(seen, _)| *seen == k) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter `{k}` is repeated"
                )));
            }
            params.push((k.into_owned(), v.into_owned()));
        }
        Ok(OAuthForm { params })
    }
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
            BodyError::TooLarge => OAuthError::payload_too_large(MAX_BODY_BYTES),
            BodyError::TimedOut(m) | BodyError::Unreadable(m) => OAuthError::invalid_request(m),
        })?;
        OAuthForm::parse(&bytes)
    }
}

/// Page size for list endpoints: `limit` defaults to 50 and is capped at 200.
pub fn page_limit(limit: Option<u32>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(50),
        Some(n @ 1..=200) => Ok(n.into()),
        Some(_) => Err(ApiError::invalid_field("limit", "must be from 1 to 200")),
    }
}

/// One page of a cursor-paginated list: `{"data": [...], "next_cursor": ...}`.
#[derive(Debug, serde::Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// The cursor for the next page; `None` on the last one.
    pub next_cursor: Option<String>,
}

/// An optional text query parameter: when present, non-empty and at most `max_chars` long.
pub fn optional_text(
    field: &str,
    value: Option<String>,
    max_chars: usize,
) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.is_empty() => Err(ApiError::invalid_field(field, "must not be empty")),
        Some(v) if v.chars().count() > max_chars => Err(ApiError::invalid_field(
            field,
            format!("must be at most {max_chars} characters"),
        )),
        other => Ok(other),
    }
}

/// Opaque keyset cursor: the sort key of the last item returned.
pub fn encode_cursor(position: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{position}:{id}"))
}

pub fn decode_cursor(cursor: &str) -> Result<(i64, String), ApiError> {
    let invalid = || ApiError::invalid_field("cursor", "not a cursor this API returned");
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    let (position, id) = text.split_once(':').ok_or_else(invalid)?;
    Ok((position.parse().map_err(|_| invalid())?, id.to_owned()))
}

/// Answer for paths no function serves.
pub async fn route_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such endpoint")
}

/// Answer for a known path with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method",
    )
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
