//! `agents register|list|show|update|suspend|resume|decommission`.

use agentidp_client::{
    all_pages, AgentCreate, AgentProfile, AgentQuery, AgentUpdate, PageQuery, Skill,
};

use super::defs::{AgentFields, AgentStatus, AgentsCommand, DeploymentEnv, PageArgs, Visibility};
use super::exit::CliError;
use super::hiargs::HiArgs;
use super::output::{Column, Printer};
use super::prompt;

const COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("TYPE", "agent_type"),
    ("STATUS", "status"),
    ("ENV", "deployment_env"),
    ("VISIBILITY", "visibility"),
    ("CAPABILITIES", "capabilities"),
    ("LAST AUTH", "last_auth_at"),
];

pub fn page_query(page: &PageArgs) -> PageQuery {
    PageQuery {
        limit: page.limit,
        cursor: page.cursor.clone(),
    }
}

fn env_name(env: DeploymentEnv) -> String {
    match env {
        DeploymentEnv::Development => "development",
        DeploymentEnv::Staging => "staging",
        DeploymentEnv::Production => "production",
    }
    .to_owned()
}

fn visibility_name(visibility: Visibility) -> String {
    match visibility {
        Visibility::Private => "private",
        Visibility::Public => "public",
    }
    .to_owned()
}

fn metadata(raw: Option<&str>) -> Result<Option<serde_json::Value>, CliError> {
    raw.map(|text| {
        serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .filter(serde_json::Value::is_object)
            .ok_or_else(|| {
                CliError::usage("--metadata must be a JSON object, e.g. '{\"team\":\"docs\"}'")
            })
    })
    .transpose()
}

/// What the agent publishes, from its flags.
fn profile(fields: &AgentFields) -> Result<AgentProfile, CliError> {
    let skills = fields
        .skills
        .as_deref()
        .map(|text| {
            serde_json::from_str::<Vec<Skill>>(text).map_err(|e| {
                CliError::usage(format!(
                    "--skills must be a JSON array of {{\"id\", \"name\", \"description\", \"tags\", \"examples\"}}: {e}"
                ))
            })
        })
        .transpose()?;
    Ok(AgentProfile {
        description: fields.description.clone(),
        tags: (!fields.tags.is_empty()).then(|| fields.tags.clone()),
        homepage_url: fields.homepage_url.clone(),
        a2a_url: fields.a2a_url.clone(),
        skills,
    })
}

fn capabilities(fields: &AgentFields) -> Option<Vec<String>> {
    (!fields.capabilities.is_empty()).then(|| fields.capabilities.clone())
}

pub async fn run(hi: &HiArgs, printer: Printer, command: AgentsCommand) -> Result<(), CliError> {
    let client = hi.authorized().await?;
    match command {
        AgentsCommand::Register {
            name,
            agent_type,
            fields,
        } => {
            let agent = AgentCreate {
                name,
                agent_type,
                email: fields.email.clone(),
                version: fields.version.clone(),
                capabilities: capabilities(&fields),
                owner: fields.owner.clone(),
                deployment_env: fields.deployment_env.map(env_name),
                metadata: metadata(fields.metadata.as_deref())?,
                visibility: fields.visibility.map(visibility_name),
                profile: profile(&fields)?,
                allow_management_scopes: fields.allow_management_scopes,
            };
            printer.record(&client.create_agent(&agent).await?)
        }
        AgentsCommand::List {
            status,
            owner,
            agent_type,
            page,
        } => {
            let query = |page: PageQuery| AgentQuery {
                owner: owner.clone(),
                agent_type: agent_type.clone(),
                status: status.map(|s| {
                    match s {
                        AgentStatus::Active => "active",
                        AgentStatus::Suspended => "suspended",
                        AgentStatus::Decommissioned => "decommissioned",
                    }
                    .to_owned()
                }),
                page,
            };
            let result = if page.all {
                all_pages(page_query(&page), |p| {
                    let query = query(p);
                    let client = client.clone();
                    async move { client.list_agents(&query).await }
                })
                .await?
            } else {
                client.list_agents(&query(page_query(&page))).await?
            };
            printer.page(&result, COLUMNS)
        }
        AgentsCommand::Show { id } => printer.record(&client.get_agent(&id).await?),
        AgentsCommand::Update {
            id,
            name,
            agent_type,
            fields,
        } => {
            let update = AgentUpdate {
                name,
                agent_type,
                email: fields.email.clone(),
                version: fields.version.clone(),
                capabilities: capabilities(&fields),
                owner: fields.owner.clone(),
                deployment_env: fields.deployment_env.map(env_name),
                metadata: metadata(fields.metadata.as_deref())?,
                visibility: fields.visibility.map(visibility_name),
                profile: profile(&fields)?,
                allow_management_scopes: fields.allow_management_scopes,
                status: None,
            };
            if update.is_empty() {
                return Err(CliError::usage(
                    "nothing to update: give at least one field, e.g. --name",
                ));
            }
            printer.record(&client.update_agent(&id, &update).await?)
        }
        AgentsCommand::Suspend { id } => {
            printer.record(&client.update_agent(&id, &status("suspended")).await?)
        }
        AgentsCommand::Resume { id } => {
            printer.record(&client.update_agent(&id, &status("active")).await?)
        }
        AgentsCommand::Decommission { id, yes } => {
            if !yes {
                if !prompt::stdin_is_terminal() {
                    return Err(CliError::usage(
                        "decommissioning cannot be undone: pass --yes to confirm",
                    ));
                }
                let question = format!("Decommission agent {id}? This cannot be undone.");
                if !prompt::confirm(&question)? {
                    return Err(CliError::failure("not decommissioned"));
                }
            }
            printer.record(&client.decommission_agent(&id).await?)
        }
    }
}

fn status(status: &str) -> AgentUpdate {
    AgentUpdate {
        status: Some(status.to_owned()),
        ..AgentUpdate::default()
    }
}
