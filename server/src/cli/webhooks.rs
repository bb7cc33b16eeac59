//! `webhooks create|list|deliveries|test|update|delete|rotate|retry`: subscriptions (the signing secret printed once) and
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
        WebhooksCommand::Update {
            id,
            endpoint,
            events,
            description,
            enable,
            disable,
        } => {
            let mut changes = serde_json::Map::new();
            if let Some(url) = endpoint {
                changes.insert("url".into(), url.into());
            }
            if !events.is_empty() {
                changes.insert("events".into(), events.into());
            }
            if let Some(description) = description {
                changes.insert("description".into(), description.into());
            }
            if enable || disable {
                changes.insert("enabled".into(), enable.into());
            }
            if changes.is_empty() {
                return Err(CliError::usage(
                    "nothing to change: give --endpoint, --event, --description, --enable or \
                     --disable",
                ));
            }
            printer.record(&client.update_webhook(&id, &changes.into()).await?)
        }
        WebhooksCommand::Delete { id } => {
            client.delete_webhook(&id).await?;
            printer.record(&serde_json::json!({ "id": id, "deleted": true }))
        }
        WebhooksCommand::Rotate { id, grace_period } => {
            let rotated = client.rotate_webhook_secret(&id, grace_period).await?;
            eprintln!("agentidp: the new signing secret is shown only now; store it safely");
            printer.record(&rotated)
        }
        WebhooksCommand::Retry { id, delivery } => {
            printer.record(&client.retry_webhook_delivery(&id, &delivery).await?)
        }
    }
}
