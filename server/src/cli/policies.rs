//! `policies list|get|put|delete|evaluate|schema`: the organization's Cedar policies, their schema,
//! and a dry run of them for an agent or a workflow.

use agentidp_client::{all_pages, PolicyBody, PolicyEvaluationRequest};
use serde_json::Value;

use super::agents::page_query;
use super::defs::{OutputFormat, PoliciesCommand};
use super::exit::CliError;
use super::hiargs::HiArgs;
use super::output::{Column, Printer};
use super::prompt;

const COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("VERSION", "version"),
    ("DESCRIPTION", "description"),
    ("UPDATED", "updated_at"),
];

const DECISION_COLUMNS: &[Column] = &[
    ("SCOPE", "scope"),
    ("DECISION", "decision"),
    ("POLICIES", "policies"),
    ("REASON", "reason"),
    ("MAX LIFETIME", "max_lifetime_seconds"),
];

/// A JSON object given inline or as @FILE.
fn object(flag: &str, raw: &str) -> Result<Value, CliError> {
    let text = match raw.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| CliError::usage(format!("cannot read {path}: {e}")))?,
        None => raw.to_owned(),
    };
    serde_json::from_str::<Value>(&text)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            CliError::usage(format!(
                "{flag} must be a JSON object (or @FILE holding one)"
            ))
        })
}

fn cedar_text(file: Option<String>, cedar: Option<String>) -> Result<String, CliError> {
    match (file, cedar) {
        (Some(path), _) if path == "-" => prompt::value_or_stdin("-"),
        (Some(path), _) => std::fs::read_to_string(&path)
            .map_err(|e| CliError::usage(format!("cannot read {path}: {e}"))),
        (None, Some(text)) => Ok(text),
        (None, None) => Err(CliError::usage("give the policy with --file or --cedar")),
    }
}

pub async fn run(hi: &HiArgs, printer: Printer, command: PoliciesCommand) -> Result<(), CliError> {
    let client = hi.authorized().await?;
    match command {
        PoliciesCommand::List { page } => {
            let result = if page.all {
                all_pages(page_query(&page), |p| {
                    let client = client.clone();
                    async move { client.list_policies(&p).await }
                })
                .await?
            } else {
                client.list_policies(&page_query(&page)).await?
            };
            printer.page(&result, COLUMNS)
        }
        PoliciesCommand::Get { id } => printer.record(&client.get_policy(&id).await?),
        PoliciesCommand::Put {
            id,
            file,
            cedar,
            description,
            if_match,
        } => {
            let body = PolicyBody {
                cedar: cedar_text(file, cedar)?,
                description,
            };
            let policy = match id {
                Some(id) => client.put_policy(&id, &body, if_match).await?,
                None => client.create_policy(&body).await?,
            };
            printer.record(&policy)
        }
        PoliciesCommand::Delete { id } => printer.record(&client.delete_policy(&id).await?),
        PoliciesCommand::Evaluate {
            agent_id,
            workflow,
            scopes,
            audience,
            action,
            context,
        } => {
            let request = PolicyEvaluationRequest {
                agent_id,
                workflow: workflow
                    .as_deref()
                    .map(|w| object("--workflow", w))
                    .transpose()?,
                scopes,
                audience,
                action,
                context: context
                    .as_deref()
                    .map(|c| object("--context", c))
                    .transpose()?,
            };
            let evaluation = client.evaluate_policies(&request).await?;
            match printer.format {
                OutputFormat::Json => printer.record(&evaluation),
                OutputFormat::Table => {
                    let page = agentidp_client::Page {
                        data: evaluation.decisions,
                        next_cursor: None,
                    };
                    printer.page(&page, DECISION_COLUMNS)
                }
            }
        }
        PoliciesCommand::Schema => {
            let schema = client.policy_schema().await?;
            match printer.format {
                OutputFormat::Json => printer.record(&schema),
                OutputFormat::Table => printer.line(schema.cedar_schema.trim_end()),
            }
        }
    }
}
