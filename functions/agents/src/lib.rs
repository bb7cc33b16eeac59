//! The agents function: organizations and their admin credentials, agents and their credentials,
//! and trust policies, as routes over the shared core.

mod admin_credentials;
mod agents;
mod credentials;
mod extract;
mod orgs;
mod policies;
mod trust_policies;
mod usage;

use agentidp_shared::axum::Router;
use agentidp_shared::domain::authz::Operation;
use agentidp_shared::http::routes::{Function, Mount};
use agentidp_shared::state::AppState;

/// This function's routes, mounted from the route table.
pub fn routes() -> Router<AppState> {
    Mount::new(Function::Agents)
        .handle(Operation::CreateOrganization, orgs::create)
        .handle(Operation::ListAdminCredentials, admin_credentials::list)
        .handle(Operation::CreateAdminCredential, admin_credentials::create)
        .handle(Operation::RotateAdminCredential, admin_credentials::rotate)
        .handle(Operation::RevokeAdminCredential, admin_credentials::revoke)
        .handle(Operation::CreateAgent, agents::create)
        .handle(Operation::ListAgents, agents::list)
        .handle(Operation::GetAgent, agents::read)
        .handle(Operation::UpdateAgent, agents::update)
        .handle(Operation::DecommissionAgent, agents::decommission)
        .handle(Operation::CreateCredential, credentials::create)
        .handle(Operation::ListCredentials, credentials::list)
        .handle(Operation::RevokeCredential, credentials::revoke)
        .handle(Operation::RotateCredential, credentials::rotate)
        .handle(Operation::GetUsage, usage::read)
        .handle(Operation::CreateTrustPolicy, trust_policies::create)
        .handle(Operation::ListTrustPolicies, trust_policies::list)
        .handle(Operation::EvaluateTrustPolicies, trust_policies::evaluate)
        .handle(Operation::GetTrustPolicy, trust_policies::read)
        .handle(Operation::DeleteTrustPolicy, trust_policies::delete)
        .handle(Operation::ListPolicies, policies::list)
        .handle(Operation::CreatePolicy, policies::create)
        .handle(Operation::GetPolicySchema, policies::schema)
        .handle(Operation::EvaluatePolicies, policies::evaluate)
        .handle(Operation::GetPolicy, policies::read)
        .handle(Operation::PutPolicy, policies::replace)
        .handle(Operation::DeletePolicy, policies::delete)
        .finish()
}

agentidp_shared::edge_entry_points!(routes);
