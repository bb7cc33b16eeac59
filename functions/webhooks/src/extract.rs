//! Path ids of this function: a value that cannot even be decoded answers like a missing webhook.

use agentidp_shared::axum::extract::{FromRequestParts, Path};
use agentidp_shared::axum::http::request::Parts;
use agentidp_shared::http::error::ApiError;
use serde::de::DeserializeOwned;

pub struct Ids<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Ids<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(ids)| Ids(ids))
            .map_err(|_| ApiError::not_found("webhook"))
    }
}
