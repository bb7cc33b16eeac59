//! `login`, `logout` and `orgs create`: saving a deployment and a client's credentials as a
//! profile (the secret never printed back), and creating an organization.

use agentidp_client::{ClientCredentials, TokenRequest};
use serde_json::json;

use super::defs::{Global, OrgsCommand};
use super::exit::CliError;
use super::hiargs::HiArgs;
use super::output::Printer;
use super::profiles::{self, Profile, Profiles};
use super::prompt;

/// Checks the credentials by getting a token with them, then saves the profile.
pub async fn login(global: &Global, hi: &HiArgs, printer: Printer) -> Result<(), CliError> {
    let client_id = match &global.client_id {
        Some(id) => id.clone(),
        None if prompt::stdin_is_terminal() => prompt::line("Client id: ")?,
        None => {
            return Err(CliError::usage(
                "give the client id with --client-id or AGENTIDP_CLIENT_ID",
            ))
        }
    };
    let client_secret = match &global.client_secret {
        Some(secret) => secret.clone(),
        None => prompt::secret("Client secret: ")?,
    };
    if client_id.trim().is_empty() || client_secret.trim().is_empty() {
        return Err(CliError::usage(
            "the client id and secret must not be empty",
        ));
    }
    let credentials = ClientCredentials {
        client_id: client_id.trim().to_owned(),
        client_secret: client_secret.trim().to_owned(),
    };
    let token = hi
        .client()?
        .token(&credentials, &TokenRequest::default())
        .await?;
    let path = save_profile(hi, credentials.clone())?;
    printer.record(&json!({
        "profile": hi.profile_name,
        "url": hi.url,
        "client_id": credentials.client_id,
        "scope": token.scope,
        "saved_in": path.display().to_string(),
    }))
}

fn save_profile(
    hi: &HiArgs,
    credentials: ClientCredentials,
) -> Result<std::path::PathBuf, CliError> {
    let mut saved = Profiles::load(&hi.config_dir)?;
    saved.set(
        &hi.profile_name,
        Profile {
            url: hi.url.clone(),
            client_id: credentials.client_id,
            client_secret: credentials.client_secret,
        },
    );
    saved.save(&hi.config_dir)
}

pub fn logout(hi: &HiArgs, printer: Printer) -> Result<(), CliError> {
    let mut saved = Profiles::load(&hi.config_dir)?;
    if !saved.remove(&hi.profile_name) {
        return Err(CliError::usage(format!(
            "no profile `{}` in {}",
            hi.profile_name,
            profiles::path(&hi.config_dir).display()
        )));
    }
    saved.save(&hi.config_dir)?;
    super::token_cache::forget(&hi.config_dir, &hi.profile_name);
    printer.record(&json!({ "profile": hi.profile_name, "removed": true }))
}

pub async fn orgs(hi: &HiArgs, printer: Printer, command: OrgsCommand) -> Result<(), CliError> {
    let (name, signup_token, login, force) = match command {
        OrgsCommand::Create {
            name,
            signup_token,
            login,
            force,
        } => (name, signup_token, login, force),
        OrgsCommand::Credentials(command) => {
            return super::credentials::admin(hi, printer, command).await
        }
    };
    // Checked before creating anything: an organization whose credential cannot be saved would
    // only be printed.
    if login
        && !force
        && Profiles::load(&hi.config_dir)?
            .get(&hi.profile_name)
            .is_some()
    {
        return Err(CliError::usage(format!(
            "profile `{}` already exists: add --force to replace it, or choose another with \
             --profile NAME",
            hi.profile_name
        )));
    }
    let created = hi
        .client()?
        .create_organization(&name, signup_token.as_deref())
        .await?;
    let admin = &created.admin_credential;
    if login {
        save_profile(
            hi,
            ClientCredentials {
                client_id: admin.client_id.clone(),
                client_secret: admin.client_secret.clone(),
            },
        )?;
        eprintln!(
            "agentidp: saved the admin credential as profile `{}`",
            hi.profile_name
        );
    }
    eprintln!("agentidp: the admin client secret is shown only now; store it safely");
    match printer.format {
        super::defs::OutputFormat::Json => printer.record(&created),
        super::defs::OutputFormat::Table => printer.record(&json!({
            "id": created.organization.id,
            "name": created.organization.name,
            "tier": created.organization.tier,
            "admin_client_id": admin.client_id,
            "admin_client_secret": admin.client_secret,
            "admin_scope": admin.scope,
        })),
    }
}

/// `agentidp whoami`: the deployment, the profile, and what the server says about the token the
/// CLI acts with (introspected: no new token is issued for it).
pub async fn whoami(hi: &HiArgs, printer: Printer) -> Result<(), CliError> {
    let credentials = hi.credentials()?.clone();
    let token = hi.access_token().await?;
    let introspection = hi.client()?.introspect(&credentials, &token).await?;
    let introspection = serde_json::to_value(&introspection)
        .map_err(|e| CliError::failure(format!("cannot encode: {e}")))?;
    let field = |name: &str| introspection.get(name).cloned().unwrap_or_default();
    printer.record(&json!({
        "url": hi.url,
        "profile": hi.profile_name,
        "client_id": credentials.client_id,
        "subject": field("sub"),
        "organization": field("org_id"),
        "scope": field("scope"),
        "token_expires_at": field("exp"),
    }))
}

/// `agentidp profiles list`.
pub fn list_profiles(hi: &HiArgs, printer: Printer) -> Result<(), CliError> {
    let saved = Profiles::load(&hi.config_dir)?;
    let rows: Vec<serde_json::Value> = saved
        .names()
        .into_iter()
        .filter_map(|name| {
            saved.get(&name).map(|p| {
                json!({
                    "name": name,
                    "url": p.url,
                    "client_id": p.client_id,
                    "current": name == hi.profile_name,
                })
            })
        })
        .collect();
    match printer.format {
        super::defs::OutputFormat::Json => printer.json(&json!(rows)),
        super::defs::OutputFormat::Table => printer.line(
            super::output::render_table(
                &[
                    ("NAME", "name"),
                    ("URL", "url"),
                    ("CLIENT ID", "client_id"),
                    ("CURRENT", "current"),
                ],
                &rows,
            )
            .trim_end(),
        ),
    }
}
