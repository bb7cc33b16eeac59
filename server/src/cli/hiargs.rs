//! What the flags mean once everything is applied: the deployment's URL, the credentials to act
//! with, the profile, and the output format (flags, then the environment, then the saved profile,
//! then defaults; table output only on a terminal).

use std::io::IsTerminal;
use std::path::PathBuf;

use agentidp_client::{Client, ClientCredentials, TokenRequest};

use super::defs::{Global, OutputFormat};
use super::exit::CliError;
use super::profiles::{self, Profiles};
use super::token_cache;

/// The local server's address, where an unconfigured CLI looks.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8787";
pub const DEFAULT_PROFILE: &str = "default";

/// The derived configuration of one invocation.
pub struct HiArgs {
    pub url: String,
    pub profile_name: String,
    /// From the flags or environment (both id and secret), else the profile's.
    pub credentials: Option<ClientCredentials>,
    /// An id given without a secret (login prompts for the secret).
    pub client_id_only: Option<String>,
    pub config_dir: PathBuf,
    pub output: OutputFormat,
    /// Whether `--output` (or `AGENTIDP_OUTPUT`) chose the format.
    pub output_chosen: bool,
}

impl HiArgs {
    pub fn derive(global: &Global) -> Result<HiArgs, CliError> {
        let config_dir = match &global.config_dir {
            Some(dir) => dir.clone(),
            None => profiles::default_dir().ok_or_else(|| {
                CliError::usage("no config directory on this platform: set AGENTIDP_CONFIG_DIR")
            })?,
        };
        let profile_name = global
            .profile
            .clone()
            .unwrap_or_else(|| DEFAULT_PROFILE.to_owned());
        let profile = Profiles::load(&config_dir)?.get(&profile_name).cloned();
        let url = global
            .url
            .clone()
            .or_else(|| profile.as_ref().map(|p| p.url.clone()))
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        let credentials = match (&global.client_id, &global.client_secret) {
            (Some(id), Some(secret)) => Some(ClientCredentials {
                client_id: id.clone(),
                client_secret: secret.clone(),
            }),
            (None, _) => profile.as_ref().map(|p| ClientCredentials {
                client_id: p.client_id.clone(),
                client_secret: p.client_secret.clone(),
            }),
            (Some(_), None) => None,
        };
        let client_id_only = match (&global.client_id, &global.client_secret) {
            (Some(id), None) => Some(id.clone()),
            _ => None,
        };
        let output = global.output.unwrap_or(if std::io::stdout().is_terminal() {
            OutputFormat::Table
        } else {
            OutputFormat::Json
        });
        Ok(HiArgs {
            url,
            profile_name,
            credentials,
            client_id_only,
            config_dir,
            output,
            output_chosen: global.output.is_some(),
        })
    }

    /// A client for the deployment, without credentials.
    pub fn client(&self) -> Result<Client, CliError> {
        Client::new(&self.url).map_err(|e| CliError::usage(e.to_string()))
    }

    /// The credentials to act with, or why there are none.
    pub fn credentials(&self) -> Result<&ClientCredentials, CliError> {
        if let Some(id) = &self.client_id_only {
            return Err(CliError::usage(format!(
                "--client-id {id} needs a secret: set AGENTIDP_CLIENT_SECRET (or --client-secret)"
            )));
        }
        self.credentials.as_ref().ok_or_else(|| {
            CliError::authentication(format!(
                "not logged in (no profile `{}`): run `agentidp login --url URL`, or set \
                 AGENTIDP_CLIENT_ID and AGENTIDP_CLIENT_SECRET",
                self.profile_name
            ))
        })
    }

    /// A client holding an access token of the credentials, for the `/v1/*` calls: the cached
    /// one while it is good (`token_cache`), else a fresh one, then cached.
    pub async fn authorized(&self) -> Result<Client, CliError> {
        Ok(self.client()?.authorized(&self.access_token().await?))
    }

    /// Like [`HiArgs::authorized`], after forgetting the cached token (the server refused it).
    pub async fn reauthorized(&self) -> Result<Client, CliError> {
        token_cache::forget(&self.config_dir, &self.profile_name);
        self.authorized().await
    }

    /// The access token the CLI acts with: the cached one while it is good, else a fresh one.
    pub async fn access_token(&self) -> Result<String, CliError> {
        let credentials = self.credentials()?;
        let (dir, profile) = (&self.config_dir, &self.profile_name);
        if let Some(token) = token_cache::get(dir, profile, &self.url, credentials) {
            return Ok(token);
        }
        let token = self
            .client()?
            .token(credentials, &TokenRequest::default())
            .await?;
        token_cache::put(
            dir,
            profile,
            &self.url,
            credentials,
            &token.access_token,
            token.expires_in,
        );
        Ok(token.access_token)
    }
}
