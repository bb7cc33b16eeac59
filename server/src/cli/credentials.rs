//! `credentials create|list|rotate|revoke` (an agent's) and `orgs credentials` (the admin's): a new
//! secret is printed once, to stdout only.

use agentidp_client::{all_pages, Credential, CredentialCreate, OrgCredential};

use agentidp_shared::domain::secrets::CLIENT_ID_PREFIX;

use super::agents::page_query;
use super::defs::{AdminCredentialsCommand, CredentialsCommand};
use super::exit::CliError;
use super::hiargs::HiArgs;
use super::output::{Column, Printer};

const COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("CLIENT ID", "client_id"),
    ("KIND", "kind"),
    ("STATUS", "status"),
    ("CREATED", "created_at"),
    ("LAST USED", "last_used_at"),
];

fn read_jwk(path: &std::path::Path) -> Result<serde_json::Value, CliError> {
    let text = if path.as_os_str() == "-" {
        super::prompt::value_or_stdin("-")?
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?
    };
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .filter(serde_json::Value::is_object)
        .ok_or_else(|| CliError::usage(format!("{} is not a JWK (a JSON object)", path.display())))
}

/// A credential that carries a new secret: printed to stdout (never stderr), with the reminder
/// that it is not shown again on stderr.
fn print_new(printer: Printer, credential: &Credential) -> Result<(), CliError> {
    if credential.client_secret.is_some() {
        eprintln!("agentidp: the client secret is shown only now; store it safely");
    }
    printer.record(credential)
}

pub async fn run(
    hi: &HiArgs,
    printer: Printer,
    command: CredentialsCommand,
) -> Result<(), CliError> {
    let client = hi.authorized().await?;
    match command {
        CredentialsCommand::Create { agent, public_jwk } => {
            let request = match public_jwk {
                Some(path) => CredentialCreate::PrivateKeyJwt {
                    public_jwk: read_jwk(&path)?,
                },
                None => CredentialCreate::ClientSecret,
            };
            print_new(printer, &client.create_credential(&agent, &request).await?)
        }
        CredentialsCommand::List { agent, page } => {
            let result = if page.all {
                all_pages(page_query(&page), |p| {
                    let (client, agent) = (client.clone(), agent.clone());
                    async move { client.list_credentials(&agent, &p).await }
                })
                .await?
            } else {
                client.list_credentials(&agent, &page_query(&page)).await?
            };
            printer.page(&result, COLUMNS)
        }
        CredentialsCommand::Rotate {
            agent,
            credential,
            grace_period,
        } => {
            let credential = agent_credential_id(&client, &agent, credential).await?;
            let rotated = client
                .rotate_credential(&agent, &credential, grace_period)
                .await?;
            print_new(printer, &rotated)
        }
        CredentialsCommand::Revoke { agent, credential } => {
            let credential = agent_credential_id(&client, &agent, credential).await?;
            printer.record(&client.revoke_credential(&agent, &credential).await?)
        }
    }
}

const ADMIN_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("CLIENT ID", "client_id"),
    ("STATUS", "status"),
    ("SCOPE", "scope"),
    ("CREATED", "created_at"),
    ("LAST USED", "last_used_at"),
];

fn print_new_admin(printer: Printer, credential: &OrgCredential) -> Result<(), CliError> {
    if credential.client_secret.is_some() {
        eprintln!("agentidp: the admin client secret is shown only now; store it safely");
    }
    printer.record(credential)
}

pub async fn admin(
    hi: &HiArgs,
    printer: Printer,
    command: AdminCredentialsCommand,
) -> Result<(), CliError> {
    let client = hi.authorized().await?;
    match command {
        AdminCredentialsCommand::List { page } => {
            let result = if page.all {
                all_pages(page_query(&page), |p| {
                    let client = client.clone();
                    async move { client.list_admin_credentials(&p).await }
                })
                .await?
            } else {
                client.list_admin_credentials(&page_query(&page)).await?
            };
            printer.page(&result, ADMIN_COLUMNS)
        }
        AdminCredentialsCommand::Create => {
            print_new_admin(printer, &client.create_admin_credential().await?)
        }
        AdminCredentialsCommand::Rotate {
            credential,
            grace_period,
        } => {
            let credential = admin_credential_id(&client, credential).await?;
            print_new_admin(
                printer,
                &client
                    .rotate_admin_credential(&credential, grace_period)
                    .await?,
            )
        }
        AdminCredentialsCommand::Revoke { credential } => {
            let credential = admin_credential_id(&client, credential).await?;
            printer.record(&client.revoke_admin_credential(&credential).await?)
        }
    }
}

/// A credential named by its id or by its client id (what a person has at hand after `login`):
/// the id, looked up among the agent's credentials when the given value is a client id.
async fn agent_credential_id(
    client: &agentidp_client::Client,
    agent: &str,
    given: String,
) -> Result<String, CliError> {
    if !given.starts_with(CLIENT_ID_PREFIX) {
        return Ok(given);
    }
    let all = all_pages(agentidp_client::PageQuery::default(), |p| {
        let (client, agent) = (client.clone(), agent.to_owned());
        async move { client.list_credentials(&agent, &p).await }
    })
    .await?;
    Ok(all
        .data
        .into_iter()
        .find(|c| c.client_id == given)
        .map_or(given, |c| c.id))
}

/// The admin credential named by its id or its client id.
async fn admin_credential_id(
    client: &agentidp_client::Client,
    given: String,
) -> Result<String, CliError> {
    if !given.starts_with(CLIENT_ID_PREFIX) {
        return Ok(given);
    }
    let all = all_pages(agentidp_client::PageQuery::default(), |p| {
        let client = client.clone();
        async move { client.list_admin_credentials(&p).await }
    })
    .await?;
    Ok(all
        .data
        .into_iter()
        .find(|c| c.client_id == given)
        .map_or(given, |c| c.id))
}
