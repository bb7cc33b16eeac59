//! Edge deployments from the command line: `edge init` writes the descriptors generated from the
//! route table, and `keys rotate --url` rotates a deployment's signing key through its operator API.

use std::path::Path;

use agentidp_client::Client;
use agentidp_shared::http::descriptors::{self, EdgeSettings};

use crate::cli::defs::EdgeCommand;

pub fn run(command: EdgeCommand) -> Result<(), String> {
    let EdgeCommand::Init {
        host,
        zone,
        spin_host,
        database_url,
        upstash_url,
        dir,
    } = command;
    let host = host.trim().trim_end_matches('/').to_owned();
    if host.is_empty() || host.contains(['/', ':', ' ']) {
        return Err(format!(
            "--host `{host}`: a host name such as id.example.com (no scheme, port or path)"
        ));
    }
    let mut settings = EdgeSettings::for_host(&host);
    if let Some(zone) = zone {
        settings.zone = zone;
    }
    if let Some(spin_host) = spin_host {
        settings.spin_host = spin_host;
    }
    if let Some(url) = database_url {
        settings.database_url = url;
    }
    if let Some(url) = upstash_url {
        settings.upstash_url = url;
    }
    write(
        &dir.join("wrangler.toml"),
        &descriptors::wrangler_toml(&settings),
    )?;
    write(&dir.join("spin.toml"), &descriptors::spin_toml(&settings))?;
    println!(
        "Wrote {} and {} for https://{host}.\n\nSet each Worker's secrets (export them in this \
         shell first; unset ones are skipped):\n{}\n\nThen deploy:\n  for env in token agents \
         audit marketplace webhooks; do npx wrangler deploy --env $env; done\nand verify:\n  \
         agentidp doctor --url https://{host}",
        dir.join("wrangler.toml").display(),
        dir.join("spin.toml").display(),
        descriptors::wrangler_secret_loop()
    );
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `agentidp keys rotate --url`: through `POST /v1/operator/keys/rotate`.
pub async fn rotate_keys_remotely(
    url: &str,
    operator_token: Option<String>,
    alg: &str,
) -> Result<(), String> {
    let token = operator_token.ok_or_else(|| {
        "rotating through a deployment needs its operator credential: set \
         AGENTIDP_OPERATOR_TOKEN (the value the deployment was given)"
            .to_owned()
    })?;
    let client = Client::new(url).map_err(|e| e.to_string())?;
    let rotated = client
        .authorized(&token)
        .rotate_signing_key(alg)
        .await
        .map_err(|e| match e.api().and_then(|a| a.code()) {
            Some("operator_api_off" | "route_not_found") => format!(
                "{url} has no operator API: set AGENTIDP_OPERATOR_TOKEN on the deployment \
                 (every Worker: `wrangler secret put AGENTIDP_OPERATOR_TOKEN --env token`)"
            ),
            Some("operator_credential_required") => format!(
                "{url} refused the operator credential: AGENTIDP_OPERATOR_TOKEN here must equal \
                 the deployment's"
            ),
            _ => e.to_string(),
        })?;
    println!("{}", rotated["kid"].as_str().unwrap_or_default());
    Ok(())
}
