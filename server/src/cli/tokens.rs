//! `token`, `introspect` and `revoke`: OAuth over the credentials of the profile (or the flags).

use agentidp_client::TokenRequest;
use serde_json::json;

use super::defs::{TokenArg, TokenArgs};
use super::exit::CliError;
use super::hiargs::HiArgs;
use super::output::Printer;
use super::prompt;

/// The bare token (for `$(agentidp token)`) unless an output format was asked for.
pub async fn token(hi: &HiArgs, printer: Printer, args: TokenArgs) -> Result<(), CliError> {
    // One list syntax for scopes everywhere: `--scope a,b`, `--scope a --scope b` or `--scope "a b"`.
    let scopes: Vec<&str> = args
        .scopes
        .iter()
        .flat_map(|s| s.split_whitespace())
        .collect();
    let request = TokenRequest {
        scope: (!scopes.is_empty()).then(|| scopes.join(" ")),
        audiences: args.audience,
        resources: args.resource,
    };
    let token = hi.client()?.token(hi.credentials()?, &request).await?;
    if !hi.output_chosen {
        return printer.line(&token.access_token);
    }
    printer.record(&token)
}

fn token_argument(arg: &TokenArg) -> Result<String, CliError> {
    let token = prompt::value_or_stdin(&arg.token)?;
    if token.is_empty() {
        return Err(CliError::usage("no token given"));
    }
    Ok(token)
}

pub async fn introspect(hi: &HiArgs, printer: Printer, arg: TokenArg) -> Result<(), CliError> {
    let token = token_argument(&arg)?;
    let answer = hi.client()?.introspect(hi.credentials()?, &token).await?;
    printer.record(&answer)
}

pub async fn revoke(hi: &HiArgs, printer: Printer, arg: TokenArg) -> Result<(), CliError> {
    let token = token_argument(&arg)?;
    hi.client()?.revoke(hi.credentials()?, &token).await?;
    printer.record(&json!({ "revoked": true }))
}
