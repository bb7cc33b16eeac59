//! The API commands of `agentidp` (everything but `serve` and `keys`), organized like ripgrep's
//! flags: `defs` declares every command and flag, `hiargs` derives what they mean, and one module
//! per resource runs the commands over the typed client (`agentidp-client`), HTTP only.

pub mod defs;

mod agents;
mod audit;
mod credentials;
mod doctor;
mod exit;
mod hiargs;
mod login;
mod output;
mod policies;
mod profiles;
mod prompt;
mod token_cache;
mod tokens;
mod trust_policies;
mod webhooks;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::CommandFactory;

use defs::{Cli, Command, Global, OutputFormat, Shell};
use exit::CliError;
use hiargs::HiArgs;
use output::Printer;

/// Runs an API command (or `completions`) and returns its documented exit code.
pub async fn run(global: Global, command: Command) -> ExitCode {
    // Errors before the configuration is known are reported in the format asked for.
    let fallback = global.output.unwrap_or(if std::io::stdout().is_terminal() {
        OutputFormat::Table
    } else {
        OutputFormat::Json
    });
    let result = match HiArgs::derive(&global) {
        Ok(hi) => {
            let result = dispatch(&global, &hi, command).await;
            // A refused token (revoked, rotated key, changed secret) is not offered again.
            if result
                .as_ref()
                .is_err_and(|e| e.class == exit::Class::Authentication)
            {
                token_cache::forget(&hi.config_dir, &hi.profile_name);
            }
            result
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            e.report(fallback);
            e.exit_code()
        }
    }
}

/// Prints the completion script of `shell` for the whole command line.
pub fn completions(shell: Shell) -> ExitCode {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "agentidp",
        &mut std::io::stdout(),
    );
    ExitCode::SUCCESS
}

async fn dispatch(global: &Global, hi: &HiArgs, command: Command) -> Result<(), CliError> {
    let printer = Printer { format: hi.output };
    match command {
        Command::Login => login::login(global, hi, printer).await,
        Command::Doctor => doctor::doctor(hi, printer).await,
        Command::Whoami => login::whoami(hi, printer).await,
        Command::Profiles(defs::ProfilesCommand::List) => login::list_profiles(hi, printer),
        Command::Usage => printer.record(&hi.authorized().await?.usage().await?),
        Command::Logout => login::logout(hi, printer),
        Command::Orgs(command) => login::orgs(hi, printer, command).await,
        Command::Agents(command) => agents::run(hi, printer, command).await,
        Command::Credentials(command) => credentials::run(hi, printer, command).await,
        Command::Token(args) => tokens::token(hi, printer, args).await,
        Command::Introspect(arg) => tokens::introspect(hi, printer, arg).await,
        Command::Revoke(arg) => tokens::revoke(hi, printer, arg).await,
        Command::Audit(command) => audit::run(hi, printer, command).await,
        Command::TrustPolicies(command) => trust_policies::run(hi, printer, command).await,
        Command::Policies(command) => policies::run(hi, printer, command).await,
        Command::Webhooks(command) => webhooks::run(hi, printer, command).await,
        Command::Serve { .. }
        | Command::Keys { .. }
        | Command::Edge(_)
        | Command::Completions { .. } => {
            Err(CliError::failure("not an API command (handled by main)"))
        }
    }
}
