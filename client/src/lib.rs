//! A typed client for the AgentIdP HTTP API: one method per operation of the OpenAPI document,
//! errors as the server's problem documents and OAuth errors, over any deployment's base URL.
//!
//! ```no_run
//! # async fn run() -> Result<(), agentidp_client::Error> {
//! use agentidp_client::{Client, ClientCredentials, TokenRequest};
//! let client = Client::new("http://127.0.0.1:8787")?;
//! let admin = ClientCredentials { client_id: "…".into(), client_secret: "…".into() };
//! let token = client.token(&admin, &TokenRequest::default()).await?;
//! let agents = client.authorized(&token.access_token).list_agents(&Default::default()).await?;
//! # Ok(()) }
//! ```

pub mod types;

use std::time::Duration;

use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, Url};
use serde::de::DeserializeOwned;

pub use types::*;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error status.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// No answer: the connection was refused, timed out, or TLS failed.
    #[error("no answer from {url}: {reason}")]
    Transport { url: String, reason: String },
    /// An answer that is not what the API documents.
    #[error("unexpected answer from {url}: {reason}")]
    Decode { url: String, reason: String },
    #[error("invalid base URL {0}")]
    InvalidUrl(String),
}

/// An error answer: its status and body, parsed as a problem document or an OAuth error when it
/// is one.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: u16,
    /// Seconds from `Retry-After`, on 429 and 503.
    pub retry_after: Option<u64>,
    pub problem: Option<Problem>,
    pub oauth: Option<OAuthErrorBody>,
    /// The raw body, when it was neither.
    pub body: String,
}

impl ApiError {
    /// The stable machine-readable code: the problem's `code` or the OAuth `error`.
    pub fn code(&self) -> Option<&str> {
        match (&self.problem, &self.oauth) {
            (Some(p), _) if !p.code.is_empty() => Some(&p.code),
            (_, Some(o)) => Some(&o.error),
            _ => None,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.problem, &self.oauth) {
            (Some(p), _) => write!(
                f,
                "{}: {} ({}, HTTP {})",
                p.title, p.detail, p.code, self.status
            ),
            (_, Some(o)) => write!(
                f,
                "{} ({}, HTTP {})",
                o.error_description.as_deref().unwrap_or(&o.error),
                o.error,
                self.status
            ),
            _ => write!(f, "HTTP {}: {}", self.status, self.body.trim()),
        }
    }
}

impl Error {
    /// The HTTP status of an error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(e) => Some(e.status),
            _ => None,
        }
    }

    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }
}

/// How long to wait for a connection; answers may take longer (an export streams for a while).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence while reading an answer.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A client for one deployment, optionally holding an access token for the `/v1/*` calls.
#[derive(Clone, Debug)]
pub struct Client {
    base: Url,
    http: reqwest::Client,
    access_token: Option<String>,
}

impl Client {
    /// A client for the deployment at `base_url` (`http` or `https`, possibly with a path prefix).
    pub fn new(base_url: &str) -> Result<Client, Error> {
        let trimmed = base_url.trim().trim_end_matches('/');
        let base =
            Url::parse(trimmed).map_err(|e| Error::InvalidUrl(format!("`{base_url}`: {e}")))?;
        if !matches!(base.scheme(), "http" | "https")
            || base.cannot_be_a_base()
            || base.query().is_some()
            || base.fragment().is_some()
        {
            return Err(Error::InvalidUrl(format!(
                "`{base_url}`: expected an http(s) URL without query or fragment"
            )));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("agentidp-client/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .build()
            .map_err(|e| Error::InvalidUrl(e.to_string()))?;
        Ok(Client {
            base,
            http,
            access_token: None,
        })
    }

    /// The same client, sending `access_token` as `Authorization: Bearer` on `/v1/*` calls.
    pub fn authorized(&self, access_token: &str) -> Client {
        Client {
            access_token: Some(access_token.to_owned()),
            ..self.clone()
        }
    }

    pub fn base_url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// The URL of a path given as segments (each percent-encoded, so an id cannot change the path).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn request(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        let builder = self.http.request(method, self.url(segments));
        match &self.access_token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    async fn send(&self, builder: RequestBuilder) -> Result<Response, Error> {
        let (client, request) = builder.build_split();
        let request = request.map_err(|e| Error::InvalidUrl(e.to_string()))?;
        let url = request.url().to_string();
        let response = client
            .execute(request)
            .await
            .map_err(|e| Error::Transport {
                url: url.clone(),
                reason: transport_reason(&e),
            })?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(Error::Api(Box::new(error_answer(response).await)))
    }

    async fn json<T: DeserializeOwned>(&self, builder: RequestBuilder) -> Result<T, Error> {
        let response = self.send(builder).await?;
        let url = response.url().to_string();
        let bytes = response.bytes().await.map_err(|e| Error::Transport {
            url: url.clone(),
            reason: transport_reason(&e),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            url,
            reason: e.to_string(),
        })
    }

    // ---- OAuth -----------------------------------------------------------------------------

    /// `POST /oauth2/token` with `client_credentials` (`client_secret_basic`).
    pub async fn token(
        &self,
        client: &ClientCredentials,
        request: &TokenRequest,
    ) -> Result<TokenResponse, Error> {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &request.scope {
            form.push(("scope", scope));
        }
        form.extend(request.audiences.iter().map(|a| ("audience", a.as_str())));
        form.extend(request.resources.iter().map(|r| ("resource", r.as_str())));
        let builder = self
            .http
            .post(self.url(&["oauth2", "token"]))
            .basic_auth(&client.client_id, Some(&client.client_secret))
            .form(&form);
        self.json(builder).await
    }

    /// `POST /oauth2/introspect` (RFC 7662), authenticated as `client`.
    pub async fn introspect(
        &self,
        client: &ClientCredentials,
        token: &str,
    ) -> Result<Introspection, Error> {
        let builder = self
            .http
            .post(self.url(&["oauth2", "introspect"]))
            .basic_auth(&client.client_id, Some(&client.client_secret))
            .form(&[("token", token)]);
        self.json(builder).await
    }

    /// `POST /oauth2/revoke` (RFC 7009), authenticated as `client`. Unknown tokens succeed too.
    pub async fn revoke(&self, client: &ClientCredentials, token: &str) -> Result<(), Error> {
        let builder = self
            .http
            .post(self.url(&["oauth2", "revoke"]))
            .basic_auth(&client.client_id, Some(&client.client_secret))
            .form(&[("token", token)]);
        self.send(builder).await.map(|_| ())
    }

    // ---- organizations ---------------------------------------------------------------------

    /// `POST /v1/orgs`: the admin credential is in the answer, once.
    pub async fn create_organization(
        &self,
        name: &str,
        signup_token: Option<&str>,
    ) -> Result<OrganizationCreated, Error> {
        let mut builder = self
            .http
            .post(self.url(&["v1", "orgs"]))
            .json(&serde_json::json!({ "name": name }));
        if let Some(token) = signup_token {
            builder = builder.bearer_auth(token);
        }
        self.json(builder).await
    }

    /// `GET /v1/orgs/credentials`: the organization's admin credentials, never their secrets.
    pub async fn list_admin_credentials(
        &self,
        page: &PageQuery,
    ) -> Result<Page<OrgCredential>, Error> {
        let path = ["v1", "orgs", "credentials"];
        self.json(self.request(Method::GET, &path).query(page))
            .await
    }

    /// `POST /v1/orgs/credentials`: a further admin credential, its secret in the answer, once.
    pub async fn create_admin_credential(&self) -> Result<OrgCredential, Error> {
        let path = ["v1", "orgs", "credentials"];
        self.json(self.request(Method::POST, &path)).await
    }

    /// A new secret is in the answer, once; the old one works for `grace_period_seconds`.
    pub async fn rotate_admin_credential(
        &self,
        credential_id: &str,
        grace_period_seconds: Option<i64>,
    ) -> Result<OrgCredential, Error> {
        let mut body = serde_json::json!({});
        if let Some(grace) = grace_period_seconds {
            body["grace_period_seconds"] = grace.into();
        }
        let path = ["v1", "orgs", "credentials", credential_id, "rotate"];
        self.json(self.request(Method::POST, &path).json(&body))
            .await
    }

    pub async fn revoke_admin_credential(
        &self,
        credential_id: &str,
    ) -> Result<OrgCredential, Error> {
        let path = ["v1", "orgs", "credentials", credential_id];
        self.json(self.request(Method::DELETE, &path)).await
    }

    // ---- the operator's (`authorized` with the operator credential) --------------------------

    /// `POST /v1/operator/keys/rotate`: the new key (`kid`, `alg`, `previous_kid`, ...).
    pub async fn rotate_signing_key(&self, alg: &str) -> Result<serde_json::Value, Error> {
        let request = self
            .request(Method::POST, &["v1", "operator", "keys", "rotate"])
            .json(&serde_json::json!({ "alg": alg }));
        self.json(request).await
    }

    /// `GET /v1/operator/migrations`.
    pub async fn migration_status(&self) -> Result<serde_json::Value, Error> {
        self.json(self.request(Method::GET, &["v1", "operator", "migrations"]))
            .await
    }

    /// `GET /v1/operator/health`.
    pub async fn operator_health(&self) -> Result<serde_json::Value, Error> {
        self.json(self.request(Method::GET, &["v1", "operator", "health"]))
            .await
    }

    // ---- the organization ------------------------------------------------------------------

    /// `GET /v1/usage`: this month's usage and the tier's allowances.
    pub async fn usage(&self) -> Result<serde_json::Value, Error> {
        self.json(self.request(Method::GET, &["v1", "usage"])).await
    }

    // ---- agents ----------------------------------------------------------------------------

    pub async fn create_agent(&self, agent: &AgentCreate) -> Result<Agent, Error> {
        self.json(self.request(Method::POST, &["v1", "agents"]).json(agent))
            .await
    }

    pub async fn list_agents(&self, query: &AgentQuery) -> Result<Page<Agent>, Error> {
        self.json(self.request(Method::GET, &["v1", "agents"]).query(query))
            .await
    }

    pub async fn get_agent(&self, id: &str) -> Result<Agent, Error> {
        self.json(self.request(Method::GET, &["v1", "agents", id]))
            .await
    }

    pub async fn update_agent(&self, id: &str, update: &AgentUpdate) -> Result<Agent, Error> {
        self.json(
            self.request(Method::PATCH, &["v1", "agents", id])
                .json(update),
        )
        .await
    }

    /// `DELETE /v1/agents/{id}`: terminal; revokes every token of the agent.
    pub async fn decommission_agent(&self, id: &str) -> Result<Agent, Error> {
        self.json(self.request(Method::DELETE, &["v1", "agents", id]))
            .await
    }

    // ---- marketplace (public) --------------------------------------------------------------

    /// `GET /v1/marketplace/agents`: published agents of every organization, no credentials needed.
    pub async fn search_marketplace(
        &self,
        query: &MarketplaceQuery,
    ) -> Result<MarketplacePage, Error> {
        let url = self.url(&["v1", "marketplace", "agents"]);
        self.json(self.http.get(url).query(&query.pairs())).await
    }

    /// `GET /v1/marketplace/agents/{id}`.
    pub async fn get_marketplace_agent(&self, id: &str) -> Result<PublicAgent, Error> {
        let url = self.url(&["v1", "marketplace", "agents", id]);
        self.json(self.http.get(url)).await
    }

    // ---- credentials -----------------------------------------------------------------------

    /// A client secret is in the answer, once.
    pub async fn create_credential(
        &self,
        agent_id: &str,
        credential: &CredentialCreate,
    ) -> Result<Credential, Error> {
        let body = match credential {
            // The API's documented form for a client secret is an empty object.
            CredentialCreate::ClientSecret => serde_json::json!({}),
            other => serde_json::to_value(other).unwrap_or_default(),
        };
        let path = ["v1", "agents", agent_id, "credentials"];
        self.json(self.request(Method::POST, &path).json(&body))
            .await
    }

    pub async fn list_credentials(
        &self,
        agent_id: &str,
        page: &PageQuery,
    ) -> Result<Page<Credential>, Error> {
        let path = ["v1", "agents", agent_id, "credentials"];
        self.json(self.request(Method::GET, &path).query(page))
            .await
    }

    /// A new secret is in the answer, once; the old one works for `grace_period_seconds`.
    pub async fn rotate_credential(
        &self,
        agent_id: &str,
        credential_id: &str,
        grace_period_seconds: Option<i64>,
    ) -> Result<Credential, Error> {
        let mut body = serde_json::json!({});
        if let Some(grace) = grace_period_seconds {
            body["grace_period_seconds"] = grace.into();
        }
        let path = [
            "v1",
            "agents",
            agent_id,
            "credentials",
            credential_id,
            "rotate",
        ];
        self.json(self.request(Method::POST, &path).json(&body))
            .await
    }

    pub async fn revoke_credential(
        &self,
        agent_id: &str,
        credential_id: &str,
    ) -> Result<Credential, Error> {
        let path = ["v1", "agents", agent_id, "credentials", credential_id];
        self.json(self.request(Method::DELETE, &path)).await
    }

    // ---- audit -----------------------------------------------------------------------------

    /// Newest first.
    pub async fn list_audit_events(&self, query: &AuditQuery) -> Result<Page<AuditEvent>, Error> {
        let path = ["v1", "audit", "events"];
        self.json(self.request(Method::GET, &path).query(query))
            .await
    }

    pub async fn verify_audit_chain(&self) -> Result<ChainVerification, Error> {
        self.json(self.request(Method::GET, &["v1", "audit", "verify"]))
            .await
    }

    /// `GET /v1/audit/export`: NDJSON, oldest first, streamed.
    pub async fn export_audit_events(&self, query: &ExportQuery) -> Result<AuditExport, Error> {
        let path = ["v1", "audit", "export"];
        let response = self
            .send(self.request(Method::GET, &path).query(query))
            .await?;
        Ok(AuditExport { response })
    }

    /// `GET /v1/audit/checkpoints/latest`: the latest signed checkpoint note, as text.
    pub async fn latest_audit_checkpoint(&self) -> Result<String, Error> {
        self.text(self.request(Method::GET, &["v1", "audit", "checkpoints", "latest"]))
            .await
    }

    /// `GET /v1/audit/checkpoints/key`: the checkpoint note verifier key.
    pub async fn audit_checkpoint_key(&self) -> Result<String, Error> {
        self.text(self.request(Method::GET, &["v1", "audit", "checkpoints", "key"]))
            .await
    }

    /// `GET /v1/audit/consistency?from=&to=`: the RFC 9162 consistency proof.
    pub async fn audit_consistency(&self, from: u64, to: u64) -> Result<ConsistencyProof, Error> {
        let path = ["v1", "audit", "consistency"];
        self.json(
            self.request(Method::GET, &path)
                .query(&[("from", from), ("to", to)]),
        )
        .await
    }

    async fn text(&self, builder: RequestBuilder) -> Result<String, Error> {
        let response = self.send(builder).await?;
        let url = response.url().to_string();
        response.text().await.map_err(|e| Error::Transport {
            url,
            reason: transport_reason(&e),
        })
    }

    // ---- trust policies --------------------------------------------------------------------

    pub async fn create_trust_policy(
        &self,
        policy: &TrustPolicyCreate,
    ) -> Result<TrustPolicy, Error> {
        let path = ["v1", "oidc", "trust-policies"];
        self.json(self.request(Method::POST, &path).json(policy))
            .await
    }

    pub async fn list_trust_policies(
        &self,
        agent_id: Option<&str>,
        page: &PageQuery,
    ) -> Result<Page<TrustPolicy>, Error> {
        let path = ["v1", "oidc", "trust-policies"];
        let mut builder = self.request(Method::GET, &path).query(page);
        if let Some(agent) = agent_id {
            builder = builder.query(&[("agent_id", agent)]);
        }
        self.json(builder).await
    }

    pub async fn get_trust_policy(&self, id: &str) -> Result<TrustPolicy, Error> {
        let path = ["v1", "oidc", "trust-policies", id];
        self.json(self.request(Method::GET, &path)).await
    }

    pub async fn delete_trust_policy(&self, id: &str) -> Result<TrustPolicy, Error> {
        let path = ["v1", "oidc", "trust-policies", id];
        self.json(self.request(Method::DELETE, &path)).await
    }

    /// A dry run: which policy would match the token or claims; issues nothing.
    pub async fn evaluate_trust_policies(
        &self,
        request: &TrustPolicyEvaluationRequest,
    ) -> Result<TrustPolicyEvaluation, Error> {
        let path = ["v1", "oidc", "trust-policies", "evaluate"];
        self.json(self.request(Method::POST, &path).json(request))
            .await
    }

    // ---- policies --------------------------------------------------------------------------

    pub async fn create_policy(&self, policy: &PolicyBody) -> Result<Policy, Error> {
        self.json(self.request(Method::POST, &["v1", "policies"]).json(policy))
            .await
    }

    pub async fn list_policies(&self, page: &PageQuery) -> Result<Page<Policy>, Error> {
        self.json(self.request(Method::GET, &["v1", "policies"]).query(page))
            .await
    }

    pub async fn get_policy(&self, id: &str) -> Result<Policy, Error> {
        self.json(self.request(Method::GET, &["v1", "policies", id]))
            .await
    }

    /// Replaces a policy; with `if_match` (its `version`), only if nobody changed it since.
    pub async fn put_policy(
        &self,
        id: &str,
        policy: &PolicyBody,
        if_match: Option<i64>,
    ) -> Result<Policy, Error> {
        let mut builder = self
            .request(Method::PUT, &["v1", "policies", id])
            .json(policy);
        if let Some(version) = if_match {
            builder = builder.header("if-match", format!("\"{version}\""));
        }
        self.json(builder).await
    }

    pub async fn delete_policy(&self, id: &str) -> Result<Policy, Error> {
        self.json(self.request(Method::DELETE, &["v1", "policies", id]))
            .await
    }

    pub async fn policy_schema(&self) -> Result<PolicySchema, Error> {
        self.json(self.request(Method::GET, &["v1", "policies", "schema"]))
            .await
    }

    /// A dry run: what the organization's policies decide for each scope; issues nothing.
    pub async fn evaluate_policies(
        &self,
        request: &PolicyEvaluationRequest,
    ) -> Result<PolicyEvaluation, Error> {
        let path = ["v1", "policies", "evaluate"];
        self.json(self.request(Method::POST, &path).json(request))
            .await
    }

    // ---- webhooks --------------------------------------------------------------------------

    /// The signing secret is in the answer, once.
    pub async fn create_webhook(&self, webhook: &WebhookCreate) -> Result<Webhook, Error> {
        self.json(
            self.request(Method::POST, &["v1", "webhooks"])
                .json(webhook),
        )
        .await
    }

    pub async fn list_webhooks(&self, page: &PageQuery) -> Result<Page<Webhook>, Error> {
        self.json(self.request(Method::GET, &["v1", "webhooks"]).query(page))
            .await
    }

    /// Newest first, each with its attempts.
    pub async fn list_webhook_deliveries(
        &self,
        webhook_id: &str,
        page: &PageQuery,
    ) -> Result<Page<WebhookDelivery>, Error> {
        let path = ["v1", "webhooks", webhook_id, "deliveries"];
        self.json(self.request(Method::GET, &path).query(page))
            .await
    }

    /// Enqueues a `webhook.test` event for this subscription alone.
    /// `PATCH /v1/webhooks/{id}` with the fields to change (`url`, `events`, `description`,
    /// `enabled`).
    pub async fn update_webhook(
        &self,
        webhook_id: &str,
        changes: &serde_json::Value,
    ) -> Result<Webhook, Error> {
        let path = ["v1", "webhooks", webhook_id];
        self.json(self.request(Method::PATCH, &path).json(changes))
            .await
    }

    /// `DELETE /v1/webhooks/{id}`.
    pub async fn delete_webhook(&self, webhook_id: &str) -> Result<(), Error> {
        self.send(self.request(Method::DELETE, &["v1", "webhooks", webhook_id]))
            .await
            .map(drop)
    }

    /// `POST /v1/webhooks/{id}/rotate`: the new signing secret (shown once), the old one valid
    /// for the grace period (a day unless given).
    pub async fn rotate_webhook_secret(
        &self,
        webhook_id: &str,
        grace_period_seconds: Option<i64>,
    ) -> Result<serde_json::Value, Error> {
        let body = match grace_period_seconds {
            Some(seconds) => serde_json::json!({ "grace_period_seconds": seconds }),
            None => serde_json::json!({}),
        };
        let path = ["v1", "webhooks", webhook_id, "rotate"];
        self.json(self.request(Method::POST, &path).json(&body))
            .await
    }

    /// `POST /v1/webhooks/{id}/deliveries/{delivery_id}/retry`: a failed delivery, again.
    pub async fn retry_webhook_delivery(
        &self,
        webhook_id: &str,
        delivery_id: &str,
    ) -> Result<serde_json::Value, Error> {
        let path = [
            "v1",
            "webhooks",
            webhook_id,
            "deliveries",
            delivery_id,
            "retry",
        ];
        self.json(self.request(Method::POST, &path)).await
    }

    pub async fn test_webhook(&self, webhook_id: &str) -> Result<WebhookDelivery, Error> {
        let path = ["v1", "webhooks", webhook_id, "test"];
        self.json(self.request(Method::POST, &path)).await
    }
}

/// An audit export being received.
pub struct AuditExport {
    response: Response,
}

impl AuditExport {
    /// The next bytes of the NDJSON body; `None` at its end. An export the server had to cut
    /// short ends in an error, never silently.
    pub async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>, Error> {
        self.response.chunk().await.map_err(|e| Error::Transport {
            url: self.response.url().to_string(),
            reason: format!("the export was interrupted: {}", transport_reason(&e)),
        })
    }
}

/// The innermost cause, which names what actually went wrong (refused, timed out, DNS).
fn transport_reason(e: &reqwest::Error) -> String {
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason = s.to_string();
        source = s.source();
    }
    if e.is_timeout() {
        format!("timed out ({reason})")
    } else {
        reason
    }
}

fn retry_after(headers: &HeaderMap) -> Option<u64> {
    headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()
}

async fn error_answer(response: Response) -> ApiError {
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let body = response.text().await.unwrap_or_default();
    let value: Option<serde_json::Value> = if is_json {
        serde_json::from_str(&body).ok()
    } else {
        None
    };
    let problem = value
        .as_ref()
        .filter(|v| v.get("title").is_some() || v.get("code").is_some())
        .and_then(|v| serde_json::from_value::<Problem>(v.clone()).ok());
    let oauth = value
        .as_ref()
        .filter(|v| v.get("error").is_some_and(serde_json::Value::is_string))
        .and_then(|v| serde_json::from_value::<OAuthErrorBody>(v.clone()).ok());
    ApiError {
        status,
        retry_after,
        problem,
        oauth,
        body,
    }
}

/// Fetches every page of a list, following `next_cursor`.
pub async fn all_pages<T, F, Fut>(mut page: PageQuery, mut fetch: F) -> Result<Page<T>, Error>
where
    F: FnMut(PageQuery) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, Error>>,
{
    let mut data = Vec::new();
    loop {
        let next = fetch(page.clone()).await?;
        data.extend(next.data);
        match next.next_cursor {
            Some(cursor) => page.cursor = Some(cursor),
            None => {
                return Ok(Page {
                    data,
                    next_cursor: None,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_change_the_path() {
        let client = Client::new("https://id.example.com/prefix/").unwrap();
        assert_eq!(
            client.url(&["v1", "agents", "a/../b?x"]).as_str(),
            "https://id.example.com/prefix/v1/agents/a%2F..%2Fb%3Fx"
        );
        assert_eq!(client.base_url(), "https://id.example.com/prefix");
    }

    #[test]
    fn base_urls_are_http_without_query() {
        assert!(Client::new("ftp://x").is_err());
        assert!(Client::new("http://x/?a=b").is_err());
        assert!(Client::new("not a url").is_err());
        assert!(Client::new("http://127.0.0.1:8787").is_ok());
    }

    #[test]
    fn a_client_secret_is_created_with_an_empty_object_and_a_key_with_its_jwk() {
        let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": "abc"});
        let body = serde_json::to_value(CredentialCreate::PrivateKeyJwt {
            public_jwk: jwk.clone(),
        })
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"kind": "private_key_jwt", "public_jwk": jwk})
        );
    }
}
