//! `webhooks create|list|deliveries|test`: subscriptions (the signing secret printed once) and
//! their delivery log, over the API of the webhooks function (`/v1/webhooks`).

use agentidp_client::{all_pages, WebhookCreate};

use super::agents::page_query;
use super::defs::WebhooksCommand;
use super::exit::CliError;
use super::hiargs::HiArgs;
use super::output::{Column, Printer};

const COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("URL", "url"),
    ("EVENTS", "events"),
    ("ENABLED", "enabled"),
    ("FAILING SINCE", "failing_since"),
    ("DISABLED REASON", "disabled_reason"),
];

const DELIVERY_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("EVENT", "event_type"),
    ("STATUS", "status"),
    ("CREATED", "created_at"),
    ("NEXT ATTEMPT", "next_attempt_at"),
];

pub async fn run(hi: &HiArgs, printer: Printer, command: WebhooksCommand) -> Result<(), CliError> {
    let client = hi.authorized().await?;
    match command {
        WebhooksCommand::Create {
            endpoint,
            events,
            description,
            disabled,
        } => {
            let webhook = WebhookCreate {
                url: endpoint,
                events,
                description,
                enabled: disabled.then_some(false),
            };
            let created = client.create_webhook(&webhook).await?;
            if created.secret.is_some() {
                eprintln!("agentidp: the signing secret is shown only now; store it safely");
            }
            printer.record(&created)
        }
        WebhooksCommand::List { page } => {
            let result = if page.all {
                all_pages(page_query(&page), |p| {
                    let client = client.clone();
                    async move { client.list_webhooks(&p).await }
                })
                .await?
            } else {
                client.list_webhooks(&page_query(&page)).await?
            };
            printer.page(&result, COLUMNS)
        }
        WebhooksCommand::Deliveries { id, page } => {
            let result = if page.all {
                all_pages(page_query(&page), |p| {
                    let (client, id) = (client.clone(), id.clone());
                    async move { client.list_webhook_deliveries(&id, &p).await }
                })
                .await?
            } else {
                client
                    .list_webhook_deliveries(&id, &page_query(&page))
                    .await?
            };
            printer.page(&result, DELIVERY_COLUMNS)
        }
        WebhooksCommand::Test { id } => printer.record(&client.test_webhook(&id).await?),
    }
}
