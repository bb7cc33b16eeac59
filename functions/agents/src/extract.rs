//! Extractors this function needs beyond the shared ones: path ids (and, re-exported, optional
//! JSON bodies).

use agentidp_shared::axum::extract::{FromRequestParts, Path};
use agentidp_shared::axum::http::request::Parts;
use agentidp_shared::http::error::ApiError;
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

pub use agentidp_shared::http::extract::OptionalJson;
