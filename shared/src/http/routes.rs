//! The route table: every route of the API declared once (method, path, the function that serves it,
//! who may call it and with which scope, its OpenAPI operation). Function routers are mounted from
//! it, and the edge descriptors, the dev router, the edge harness and the OpenAPI test are checked
//! against it.

use axum::handler::Handler;
use axum::routing::{on, MethodFilter};
use axum::Router;

use crate::domain::authz::{Operation, Requirement};
use crate::state::AppState;

/// The five functions, each its own edge build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    Token,
    Agents,
    Audit,
    Marketplace,
    Webhooks,
}

impl Function {
    pub const ALL: [Function; 5] = [
        Function::Token,
        Function::Agents,
        Function::Audit,
        Function::Marketplace,
        Function::Webhooks,
    ];

    /// The name used by the crates, `wrangler.toml` environments and `spin.toml` components.
    pub fn name(self) -> &'static str {
        match self {
            Function::Token => "token",
            Function::Agents => "agents",
            Function::Audit => "audit",
            Function::Marketplace => "marketplace",
            Function::Webhooks => "webhooks",
        }
    }
}

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone; limited per client IP where it does work.
    Public,
    /// Anyone while sign-up is open; the configured signup token otherwise.
    Signup,
    /// OAuth client authentication (or, for some grants, the grant's own credential).
    Client,
    /// An access token for this API (`Authorization: Bearer`).
    Bearer,
    /// Anyone, from a browser: an HTML page or one of its static files, served with the pages'
    /// security headers (`http::pages`). Not rate limited: it does no work beyond copying bytes.
    Page,
    /// A signature over the body by a party that shares a secret with the deployment (Stripe's
    /// `Stripe-Signature`); `404` where that secret is not configured.
    Signature,
    /// The deployment's operator credential (`Authorization: Bearer <AGENTIDP_OPERATOR_TOKEN>`),
    /// never a tenant's token; `404` where no operator credential is configured.
    Operator,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Method::Get => MethodFilter::GET,
            Method::Post => MethodFilter::POST,
            Method::Put => MethodFilter::PUT,
            Method::Patch => MethodFilter::PATCH,
            Method::Delete => MethodFilter::DELETE,
        }
    }
}

/// One route.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub method: Method,
    /// axum's syntax: `{name}` is one path segment.
    pub path: &'static str,
    /// The function that serves it at the edge.
    pub function: Function,
    /// Served by every function (health, the OpenAPI document); the edge routes it to `function`.
    pub every_function: bool,
    pub access: Access,
    /// What the route does; its OpenAPI `operationId` is `operation.id()`, and the scope a
    /// bearer call needs is declared with it (`domain::authz`), checked before the call counts
    /// against any rate limit, so a refused call spends nothing.
    pub operation: Operation,
    /// An action an admin needs to stop a misbehaving agent (suspend, decommission, revoke or
    /// rotate a credential): counted only against the caller's own window, never the
    /// organization's, so agents that exhausted the organization's budget cannot block it.
    pub emergency: bool,
}

impl Route {
    /// The OpenAPI `operationId`.
    pub const fn operation_id(&self) -> &'static str {
        self.operation.id()
    }

    /// What a bearer call of this route needs (the operation's declaration).
    pub const fn requirement(&self) -> Option<Requirement> {
        self.operation.requirement()
    }

    /// The route, as an emergency action (see [`Route::emergency`]).
    pub const fn emergency(self) -> Route {
        Route {
            emergency: true,
            ..self
        }
    }
}

const fn route(
    method: Method,
    path: &'static str,
    function: Function,
    access: Access,
    operation: Operation,
) -> Route {
    Route {
        method,
        path,
        function,
        every_function: false,
        access,
        operation,
        emergency: false,
    }
}

const fn everywhere(path: &'static str, operation: Operation) -> Route {
    Route {
        every_function: true,
        ..route(
            Method::Get,
            path,
            Function::Token,
            Access::Public,
            operation,
        )
    }
}

use Access::{Bearer, Client, Operator, Page, Public, Signature, Signup};
use Function::{Agents, Audit, Marketplace, Token, Webhooks};
use Method::{Delete, Get, Patch, Post, Put};
use Operation as Op;

/// Every route of the API.
pub const ROUTES: &[Route] = &[
    everywhere("/health", Op::Health),
    everywhere("/health/detailed", Op::HealthDetailed),
    everywhere("/openapi.json", Op::GetOpenApi),
    route(Post, "/oauth2/token", Token, Client, Op::IssueToken),
    route(
        Post,
        "/oauth2/introspect",
        Token,
        Client,
        Op::IntrospectToken,
    ),
    route(Post, "/oauth2/revoke", Token, Client, Op::RevokeToken),
    // The deployment's own operations, served by the function that owns the signing keys.
    route(
        Post,
        "/v1/operator/keys/rotate",
        Token,
        Operator,
        Op::RotateSigningKey,
    ),
    route(
        Get,
        "/v1/operator/migrations",
        Token,
        Operator,
        Op::GetMigrationStatus,
    ),
    route(
        Get,
        "/v1/operator/health",
        Token,
        Operator,
        Op::GetOperatorHealth,
    ),
    route(Get, "/.well-known/jwks.json", Token, Public, Op::GetJwks),
    route(
        Get,
        "/.well-known/oauth-authorization-server",
        Token,
        Public,
        Op::GetAuthorizationServerMetadata,
    ),
    route(
        Get,
        "/.well-known/openid-configuration",
        Token,
        Public,
        Op::GetOpenidConfiguration,
    ),
    route(Post, "/v1/orgs", Agents, Signup, Op::CreateOrganization),
    route(
        Get,
        "/v1/orgs/credentials",
        Agents,
        Bearer,
        Op::ListAdminCredentials,
    ),
    route(
        Post,
        "/v1/orgs/credentials",
        Agents,
        Bearer,
        Op::CreateAdminCredential,
    ),
    route(
        Post,
        "/v1/orgs/credentials/{cid}/rotate",
        Agents,
        Bearer,
        Op::RotateAdminCredential,
    )
    .emergency(),
    route(
        Delete,
        "/v1/orgs/credentials/{cid}",
        Agents,
        Bearer,
        Op::RevokeAdminCredential,
    )
    .emergency(),
    // A trust policy's registration token carries only `agents:register`.
    route(Post, "/v1/agents", Agents, Bearer, Op::CreateAgent),
    route(Get, "/v1/agents", Agents, Bearer, Op::ListAgents),
    route(Get, "/v1/agents/{id}", Agents, Bearer, Op::GetAgent),
    // Suspension is an update.
    route(Patch, "/v1/agents/{id}", Agents, Bearer, Op::UpdateAgent).emergency(),
    route(
        Delete,
        "/v1/agents/{id}",
        Agents,
        Bearer,
        Op::DecommissionAgent,
    )
    .emergency(),
    route(
        Post,
        "/v1/agents/{id}/credentials",
        Agents,
        Bearer,
        Op::CreateCredential,
    ),
    route(
        Get,
        "/v1/agents/{id}/credentials",
        Agents,
        Bearer,
        Op::ListCredentials,
    ),
    route(
        Delete,
        "/v1/agents/{id}/credentials/{cid}",
        Agents,
        Bearer,
        Op::RevokeCredential,
    )
    .emergency(),
    route(
        Post,
        "/v1/agents/{id}/credentials/{cid}/rotate",
        Agents,
        Bearer,
        Op::RotateCredential,
    )
    .emergency(),
    // Usage is the organization's own bookkeeping, as readable as its agents.
    route(Get, "/v1/usage", Agents, Bearer, Op::GetUsage),
    route(
        Post,
        "/v1/oidc/trust-policies",
        Agents,
        Bearer,
        Op::CreateTrustPolicy,
    ),
    route(
        Get,
        "/v1/oidc/trust-policies",
        Agents,
        Bearer,
        Op::ListTrustPolicies,
    ),
    route(
        Post,
        "/v1/oidc/trust-policies/evaluate",
        Agents,
        Bearer,
        Op::EvaluateTrustPolicies,
    ),
    route(
        Get,
        "/v1/oidc/trust-policies/{id}",
        Agents,
        Bearer,
        Op::GetTrustPolicy,
    ),
    route(
        Delete,
        "/v1/oidc/trust-policies/{id}",
        Agents,
        Bearer,
        Op::DeleteTrustPolicy,
    ),
    route(Get, "/v1/policies", Agents, Bearer, Op::ListPolicies),
    route(Post, "/v1/policies", Agents, Bearer, Op::CreatePolicy),
    route(
        Get,
        "/v1/policies/schema",
        Agents,
        Bearer,
        Op::GetPolicySchema,
    ),
    route(
        Post,
        "/v1/policies/evaluate",
        Agents,
        Bearer,
        Op::EvaluatePolicies,
    ),
    route(Get, "/v1/policies/{id}", Agents, Bearer, Op::GetPolicy),
    route(Put, "/v1/policies/{id}", Agents, Bearer, Op::PutPolicy),
    route(
        Delete,
        "/v1/policies/{id}",
        Agents,
        Bearer,
        Op::DeletePolicy,
    ),
    route(Get, "/v1/audit/events", Audit, Bearer, Op::ListAuditEvents),
    route(Get, "/v1/audit/verify", Audit, Bearer, Op::VerifyAuditChain),
    route(
        Get,
        "/v1/audit/export",
        Audit,
        Bearer,
        Op::ExportAuditEvents,
    ),
    route(
        Get,
        "/v1/audit/checkpoints/latest",
        Audit,
        Bearer,
        Op::GetLatestAuditCheckpoint,
    ),
    route(
        Get,
        "/v1/audit/checkpoints/key",
        Audit,
        Public,
        Op::GetAuditCheckpointKey,
    ),
    route(
        Get,
        "/v1/audit/events/{seq}/proof",
        Audit,
        Bearer,
        Op::GetAuditInclusionProof,
    ),
    route(
        Get,
        "/v1/audit/consistency",
        Audit,
        Bearer,
        Op::GetAuditConsistencyProof,
    ),
    route(
        Get,
        "/v1/analytics/tokens",
        Audit,
        Bearer,
        Op::GetTokenAnalytics,
    ),
    route(
        Get,
        "/v1/compliance/report",
        Audit,
        Bearer,
        Op::GetComplianceReport,
    ),
    route(
        Get,
        "/v1/marketplace/agents",
        Marketplace,
        Public,
        Op::SearchMarketplace,
    ),
    route(
        Get,
        "/v1/marketplace/agents/{id}",
        Marketplace,
        Public,
        Op::GetMarketplaceAgent,
    ),
    route(
        Get,
        "/v1/marketplace/agents/{id}/agent-card.json",
        Marketplace,
        Public,
        Op::GetAgentCard,
    ),
    // Where did:web resolution maps `did:web:<host>:agents:<id>`.
    route(
        Get,
        "/agents/{id}/did.json",
        Marketplace,
        Public,
        Op::GetAgentDidDocument,
    ),
    // The browser pages, embedded in the marketplace function (the smallest artifact with room).
    route(Get, "/docs", Marketplace, Page, Op::GetApiReference),
    route(
        Get,
        "/docs/{asset}",
        Marketplace,
        Page,
        Op::GetApiReferenceFile,
    ),
    // The site's root sends a browser to the portal.
    route(Get, "/", Marketplace, Page, Op::RedirectToPortal),
    route(Get, "/portal", Marketplace, Page, Op::GetPortal),
    route(Get, "/portal/{asset}", Marketplace, Page, Op::GetPortalFile),
    route(Post, "/v1/webhooks", Webhooks, Bearer, Op::CreateWebhook),
    route(Get, "/v1/webhooks", Webhooks, Bearer, Op::ListWebhooks),
    route(
        Post,
        "/v1/webhooks/dispatch",
        Webhooks,
        Bearer,
        Op::DispatchWebhooks,
    ),
    route(Get, "/v1/webhooks/{id}", Webhooks, Bearer, Op::GetWebhook),
    route(
        Patch,
        "/v1/webhooks/{id}",
        Webhooks,
        Bearer,
        Op::UpdateWebhook,
    ),
    route(
        Delete,
        "/v1/webhooks/{id}",
        Webhooks,
        Bearer,
        Op::DeleteWebhook,
    ),
    route(
        Post,
        "/v1/webhooks/{id}/rotate",
        Webhooks,
        Bearer,
        Op::RotateWebhookSecret,
    ),
    route(
        Post,
        "/v1/webhooks/{id}/test",
        Webhooks,
        Bearer,
        Op::TestWebhook,
    ),
    route(
        Get,
        "/v1/webhooks/{id}/deliveries",
        Webhooks,
        Bearer,
        Op::ListWebhookDeliveries,
    ),
    route(
        Post,
        "/v1/webhooks/{id}/deliveries/{delivery_id}/retry",
        Webhooks,
        Bearer,
        Op::RetryWebhookDelivery,
    ),
    route(
        Post,
        "/v1/billing/stripe",
        Webhooks,
        Signature,
        Op::ReceiveStripeEvent,
    ),
];

/// The route of `operation`.
pub fn by_operation(operation: Operation) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.operation == operation)
}

/// The route serving a request, from its method and concrete path. Where a literal segment and a
/// parameter both match (`/v1/policies/schema` and `/v1/policies/{id}`), the literal wins, as in
/// axum's router; a test keeps every other path to one route. `HEAD` runs the `GET` handler
/// (axum answers it without the body), so it is `GET`'s route.
pub fn by_request(method: &str, path: &str) -> Option<&'static Route> {
    let method = if method == "HEAD" { "GET" } else { method };
    ROUTES
        .iter()
        .filter(|r| r.method.as_str() == method && matches(r.path, path))
        .min_by_key(|r| r.path.matches('{').count())
}

/// A request path for a route: each `{parameter}` becomes a well-formed, unknown id.
pub fn concrete_path(route: &Route) -> String {
    route
        .path
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "00000000-0000-4000-8000-000000000001"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether `path` (a concrete request path) matches a route's template.
pub fn matches(template: &str, path: &str) -> bool {
    let mut template = template.split('/');
    let mut path = path.split('/');
    loop {
        match (template.next(), path.next()) {
            (None, None) => return true,
            (Some(t), Some(p)) if t.starts_with('{') && t.ends_with('}') => {
                if p.is_empty() {
                    return false;
                }
            }
            (Some(t), Some(p)) if t == p => {}
            _ => return false,
        }
    }
}

/// The function that serves a request path at the edge, by the route table.
pub fn function_for(path: &str) -> Option<Function> {
    ROUTES
        .iter()
        .find(|r| matches(r.path, path))
        .map(|r| r.function)
}

/// Builds a function's router from the table: each handler is mounted by its operation, at the
/// method and path the table gives, and [`Mount::finish`] refuses a function that leaves one of
/// its routes without a handler.
pub struct Mount {
    function: Function,
    router: Router<AppState>,
    mounted: Vec<Operation>,
}

impl Mount {
    pub fn new(function: Function) -> Self {
        Mount {
            function,
            router: Router::new(),
            mounted: Vec::new(),
        }
    }

    /// Mounts `handler` for `operation`.
    ///
    /// # Panics
    /// When the operation is not in the table, belongs to another function, or is mounted twice:
    /// a programming error that the first test starting the server reveals.
    #[track_caller]
    pub fn handle<H, T>(mut self, operation: Operation, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let route = by_operation(operation)
            .unwrap_or_else(|| panic!("operation `{operation:?}` is not in the route table"));
        assert!(
            route.function == self.function && !route.every_function,
            "operation `{operation:?}` belongs to the {} function",
            route.function.name()
        );
        assert!(
            !self.mounted.contains(&operation),
            "operation `{operation:?}` is mounted twice"
        );
        self.router = self
            .router
            .route(route.path, on(route.method.filter(), handler));
        self.mounted.push(operation);
        self
    }

    /// The function's router.
    ///
    /// # Panics
    /// When a route the table gives this function has no handler.
    #[track_caller]
    pub fn finish(self) -> Router<AppState> {
        let missing: Vec<Operation> = ROUTES
            .iter()
            .filter(|r| r.function == self.function && !r.every_function)
            .map(|r| r.operation)
            .filter(|op| !self.mounted.contains(op))
            .collect();
        assert!(
            missing.is_empty(),
            "the {} function has no handler for {missing:?}",
            self.function.name()
        );
        self.router
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_one_segment_per_parameter() {
        assert!(matches("/v1/agents/{id}", "/v1/agents/abc"));
        assert!(!matches("/v1/agents/{id}", "/v1/agents/"));
        assert!(!matches("/v1/agents/{id}", "/v1/agents/a/b"));
        assert!(matches("/v1/usage", "/v1/usage"));
        assert!(!matches("/v1/usage", "/v1/usages"));
    }

    #[test]
    fn a_request_finds_exactly_its_route() {
        let concrete = |template: &str| {
            template
                .split('/')
                .map(|s| if s.starts_with('{') { "x" } else { s })
                .collect::<Vec<_>>()
                .join("/")
        };
        for route in ROUTES {
            let path = concrete(route.path);
            let found = by_request(route.method.as_str(), &path).map(|r| r.operation);
            assert_eq!(found, Some(route.operation), "{path}");
            // Besides a literal segment beating a parameter, no two routes share a path.
            let equally_specific = ROUTES
                .iter()
                .filter(|r| r.method == route.method && matches(r.path, &path))
                .filter(|r| r.path.matches('{').count() == route.path.matches('{').count())
                .count();
            assert_eq!(equally_specific, 1, "{path}");
        }
        assert_eq!(
            by_request("GET", "/v1/policies/schema").map(|r| r.operation),
            Some(Operation::GetPolicySchema)
        );
        assert_eq!(
            by_request("DELETE", "/v1/orgs/credentials/abc").map(|r| r.operation),
            Some(Operation::RevokeAdminCredential)
        );
        assert!(by_request("PUT", "/v1/agents").is_none());
    }

    #[test]
    fn every_bearer_route_declares_its_scope() {
        for route in ROUTES {
            assert_eq!(
                route.requirement().is_some(),
                route.access == Access::Bearer,
                "{} {}: a bearer route's operation declares its scope, and only a bearer route's",
                route.method.as_str(),
                route.path
            );
            assert!(
                !route.emergency || route.access == Access::Bearer,
                "{} {}: only bearer routes are emergency actions",
                route.method.as_str(),
                route.path
            );
        }
    }

    #[test]
    fn operator_routes_are_the_operator_operations() {
        for route in ROUTES {
            assert_eq!(
                route.access == Access::Operator,
                route.operation.is_operator(),
                "{} {}",
                route.method.as_str(),
                route.path
            );
            assert_eq!(
                route.access == Access::Operator,
                route.path.starts_with("/v1/operator/"),
                "{}: operator routes, and only they, live under /v1/operator/",
                route.path
            );
        }
    }

    #[test]
    fn every_path_has_one_function_and_operations_are_unique() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert_ne!(a.operation, b.operation);
                assert!(
                    !(a.path == b.path && a.method == b.method),
                    "{} {} is declared twice",
                    a.method.as_str(),
                    a.path
                );
                if a.path == b.path {
                    assert_eq!(a.function, b.function, "{} is split", a.path);
                }
            }
        }
    }
}
