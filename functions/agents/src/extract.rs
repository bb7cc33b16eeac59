//! Extractors this function needs beyond the shared ones: path ids and optional JSON bodies.

use agentidp_shared::axum::extract::{FromRequest, FromRequestParts, Path, Request};
use agentidp_shared::axum::http::header;
use agentidp_shared::axum::http::request::Parts;
use agentidp_shared::http::error::ApiError;
use agentidp_shared::http::extract::ApiJson;
use serde::de::DeserializeOwned;

/// Path parameters. A value that cannot even be decoded answers like a missing object, so probing
/// with odd ids learns nothing a well-formed unknown id would not.
pub struct Ids<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Ids<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(ids)| Ids(ids))
            .map_err(|_| ApiError::not_found("agent"))
    }
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
