//! The webhooks function: subscriptions, the delivery log, the dispatcher endpoint and the Stripe
//! billing webhook, as routes over the shared core; on Workers also the Cron Trigger's dispatcher.

mod billing;
mod deliveries;
mod dispatch;
mod extract;
mod subscriptions;

use agentidp_shared::axum::Router;
use agentidp_shared::domain::authz::Operation;
use agentidp_shared::http::routes::{Function, Mount};
use agentidp_shared::state::AppState;

/// This function's routes, mounted from the route table.
pub fn routes() -> Router<AppState> {
    Mount::new(Function::Webhooks)
        .handle(Operation::CreateWebhook, subscriptions::create)
        .handle(Operation::ListWebhooks, subscriptions::list)
        .handle(Operation::GetWebhook, subscriptions::read)
        .handle(Operation::UpdateWebhook, subscriptions::update)
        .handle(Operation::DeleteWebhook, subscriptions::delete)
        .handle(Operation::RotateWebhookSecret, subscriptions::rotate)
        .handle(Operation::TestWebhook, subscriptions::test)
        .handle(Operation::ListWebhookDeliveries, deliveries::list)
        .handle(Operation::RetryWebhookDelivery, deliveries::retry)
        .handle(Operation::DispatchWebhooks, dispatch::dispatch)
        .handle(Operation::ReceiveStripeEvent, billing::stripe)
        .finish()
}

agentidp_shared::edge_entry_points!(routes, dispatcher);
