//! The webhooks function: subscriptions, the delivery log, the dispatcher endpoint and the Stripe
//! billing webhook, as routes over the shared core; on Workers also the Cron Trigger's dispatcher.

mod billing;
mod deliveries;
mod dispatch;
mod extract;
mod subscriptions;

use agentidp_shared::axum::Router;
use agentidp_shared::http::routes::{Function, Mount};
use agentidp_shared::state::AppState;

/// This function's routes, mounted from the route table.
pub fn routes() -> Router<AppState> {
    Mount::new(Function::Webhooks)
        .handle("createWebhook", subscriptions::create)
        .handle("listWebhooks", subscriptions::list)
        .handle("getWebhook", subscriptions::read)
        .handle("updateWebhook", subscriptions::update)
        .handle("deleteWebhook", subscriptions::delete)
        .handle("rotateWebhookSecret", subscriptions::rotate)
        .handle("testWebhook", subscriptions::test)
        .handle("listWebhookDeliveries", deliveries::list)
        .handle("retryWebhookDelivery", deliveries::retry)
        .handle("dispatchWebhooks", dispatch::dispatch)
        .handle("receiveStripeEvent", billing::stripe)
        .finish()
}

agentidp_shared::edge_entry_points!(routes, dispatcher);
