//! The public marketplace's model: what a listing shows (never an email, owner, metadata or
//! organization) and how it is searched.

use serde::{Deserialize, Serialize};

/// Longest accepted search text or filter value.
pub const MAX_FILTER_CHARS: usize = 100;

/// Query parameters of `GET /v1/marketplace/agents`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Case-insensitive (ASCII) substring of the name or agent type.
    pub q: Option<String>,
    pub agent_type: Option<String>,
    pub capability: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// An agent as the marketplace shows it.
#[derive(Clone, Debug, Serialize)]
pub struct PublicAgent {
    pub id: String,
    pub name: String,
    pub agent_type: String,
    pub version: Option<String>,
    pub capabilities: Vec<String>,
    pub deployment_env: String,
    pub created_at: String,
}
