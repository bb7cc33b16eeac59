//! `trust-policies create|list|show|delete|evaluate`: which GitHub workflows may act as which
//! agents, and a dry run of the policies against a workflow's token or claims.

use agentidp_client::{all_pages, TrustPolicyCreate, TrustPolicyEvaluationRequest};

use super::agents::page_query;
use super::defs::TrustPoliciesCommand;
use super::exit::CliError;
use super::hiargs::HiArgs;
use super::output::{Column, Printer};
use super::prompt;

const COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("REPOSITORY", "repository"),
    ("BRANCH", "branch"),
    ("ENVIRONMENT", "environment"),
    ("AGENT", "agent_id"),
    ("REGISTRATION", "allow_registration"),
    ("SCOPES", "scopes"),
];

fn claims(raw: &str) -> Result<serde_json::Value, CliError> {
    let text = match raw.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| CliError::usage(format!("cannot read {path}: {e}")))?,
        None => prompt::value_or_stdin(raw)?,
    };
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .filter(serde_json::Value::is_object)
        .ok_or_else(|| CliError::usage("--claims must be a JSON object (or @FILE holding one)"))
}

pub async fn run(
    hi: &HiArgs,
    printer: Printer,
    command: TrustPoliciesCommand,
) -> Result<(), CliError> {
    let client = hi.authorized().await?;
    match command {
        TrustPoliciesCommand::Create {
            repository,
            provider,
            repository_id,
            branch,
            environment,
            job_workflow_ref,
            event_names,
            runner_environment,
            agent_id,
            allow_registration,
            max_registrations,
            scopes,
        } => {
            let policy = TrustPolicyCreate {
                provider,
                repository,
                repository_id,
                branch,
                environment,
                job_workflow_ref,
                event_names: (!event_names.is_empty()).then_some(event_names),
                runner_environment,
                agent_id,
                allow_registration: allow_registration.then_some(true),
                max_registrations,
                scopes: (!scopes.is_empty()).then_some(scopes),
            };
            printer.record(&client.create_trust_policy(&policy).await?)
        }
        TrustPoliciesCommand::List { agent_id, page } => {
            let result = if page.all {
                all_pages(page_query(&page), |p| {
                    let (client, agent_id) = (client.clone(), agent_id.clone());
                    async move { client.list_trust_policies(agent_id.as_deref(), &p).await }
                })
                .await?
            } else {
                client
                    .list_trust_policies(agent_id.as_deref(), &page_query(&page))
                    .await?
            };
            printer.page(&result, COLUMNS)
        }
        TrustPoliciesCommand::Show { id } => printer.record(&client.get_trust_policy(&id).await?),
        TrustPoliciesCommand::Delete { id } => {
            printer.record(&client.delete_trust_policy(&id).await?)
        }
        TrustPoliciesCommand::Evaluate {
            token,
            claims: raw_claims,
            agent_id,
        } => {
            let request = TrustPolicyEvaluationRequest {
                token: token.as_deref().map(prompt::value_or_stdin).transpose()?,
                claims: raw_claims.as_deref().map(claims).transpose()?,
                agent_id,
            };
            printer.record(&client.evaluate_trust_policies(&request).await?)
        }
    }
}
