//! The outbound HTTP seam: each platform sends requests its own way (Workers fetch, WASI HTTP,
//! a native client); protocol clients such as libSQL-over-HTTP and Upstash REST are written once on top.

use async_trait::async_trait;

#[derive(Clone, Debug)]
pub struct OutboundRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// Who chose the URL; a platform that resolves names itself guards tenants' URLs.
    pub target: Target,
}

/// Who chose where a request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The operator, through configuration: the database, the key-value store, trusted
    /// issuers' key sets. May be anywhere the operator put it, loopback included.
    Operator,
    /// A tenant (a webhook URL): natively, every address its name resolves to is checked against
    /// the SSRF rules before connecting, and the answer is read only in part.
    Tenant,
}

impl OutboundRequest {
    /// A JSON POST with an optional bearer token, the shape both HTTP backends use.
    pub fn post_json(url: String, bearer: Option<&str>, body: Vec<u8>) -> Self {
        let mut headers = vec![("content-type", "application/json".to_owned())];
        if let Some(token) = bearer {
            headers.push(("authorization", format!("Bearer {token}")));
        }
        OutboundRequest {
            method: "POST",
            url,
            headers,
            body,
            target: Target::Operator,
        }
    }

    /// A GET without a body (JWKS and discovery documents).
    pub fn get(url: String) -> Self {
        OutboundRequest {
            method: "GET",
            url,
            headers: vec![("accept", "application/json".to_owned())],
            body: Vec::new(),
            target: Target::Operator,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct OutboundResponse {
    pub status: u16,
    /// Response headers, names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl OutboundResponse {
    /// The first value of a header (`name` in lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("request to {url} failed: {reason}")]
    Transport { url: String, reason: String },
    #[error("request to {url} timed out")]
    Timeout { url: String },
}

#[async_trait]
pub trait Outbound: Send + Sync + 'static {
    async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, OutboundError>;
}

/// A short, log-safe excerpt of a response body for error messages.
pub fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.chars().take(200).collect()
}
