//! The agents function: organizations and their admin credentials, agents and their credentials,
//! and trust policies, as routes over the shared core.

mod admin_credentials;
mod agents;
mod credentials;
mod extract;
mod orgs;
mod trust_policies;
mod usage;

use agentidp_shared::axum::Router;
use agentidp_shared::http::routes::{Function, Mount};
use agentidp_shared::state::AppState;

/// This function's routes, mounted from the route table.
pub fn routes() -> Router<AppState> {
    Mount::new(Function::Agents)
        .handle("createOrganization", orgs::create)
        .handle("listAdminCredentials", admin_credentials::list)
        .handle("createAdminCredential", admin_credentials::create)
        .handle("rotateAdminCredential", admin_credentials::rotate)
        .handle("revokeAdminCredential", admin_credentials::revoke)
        .handle("createAgent", agents::create)
        .handle("listAgents", agents::list)
        .handle("getAgent", agents::read)
        .handle("updateAgent", agents::update)
        .handle("decommissionAgent", agents::decommission)
        .handle("createCredential", credentials::create)
        .handle("listCredentials", credentials::list)
        .handle("revokeCredential", credentials::revoke)
        .handle("rotateCredential", credentials::rotate)
        .handle("getUsage", usage::read)
        .handle("createTrustPolicy", trust_policies::create)
        .handle("listTrustPolicies", trust_policies::list)
        .handle("evaluateTrustPolicies", trust_policies::evaluate)
        .handle("getTrustPolicy", trust_policies::read)
        .handle("deleteTrustPolicy", trust_policies::delete)
        .finish()
}

agentidp_shared::edge_entry_points!(routes);
