//! `agentidp-dev`: developer tools that are not part of the product: local stand-ins for Turso,
//! Upstash and GitHub Actions' OIDC issuer, and the edge's path router, so the wasm builds run
//! locally without a cloud account.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod auth;
mod hrana;
mod oidc_issuer;
mod router;
mod upstash;

#[derive(Parser)]
#[command(
    name = "agentidp-dev",
    version,
    about = "AgentIdP developer tools: local stand-ins for the edge's managed backends and routing"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve local stand-ins for Turso (libSQL's Hrana protocol over HTTP) and Upstash (its REST
    /// protocol over a real Redis), so the wasm builds can run in workerd and wasmtime.
    Backends {
        /// Directory of the stand-in database file
        #[arg(long, default_value = "data/dev-backends")]
        data_dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080")]
        hrana_listen: SocketAddr,
        #[arg(long, default_value = "127.0.0.1:8079")]
        upstash_listen: SocketAddr,
        /// The Redis the Upstash stand-in talks to
        #[arg(long, default_value = "redis://127.0.0.1:6379")]
        redis_url: String,
        /// Bearer token both stand-ins require (none: open)
        #[arg(long)]
        token: Option<String>,
    },
    /// Route requests by path prefix to separately running functions (a local stand-in for the
    /// Workers zone routes and Spin trigger routes).
    Router {
        #[arg(long)]
        listen: SocketAddr,
        /// PREFIX=URL, repeatable, e.g. --route /oauth2/=http://127.0.0.1:9101
        #[arg(long = "route", required = true)]
        routes: Vec<router::Route>,
    },
    /// Stand in for GitHub Actions' OIDC issuer: the JWKS of the RSA key in --key-file (created if
    /// missing) at /.well-known/jwks, and the runner's ID-token request protocol at /token
    /// (ACTIONS_ID_TOKEN_REQUEST_URL=http://ADDR/token?api-version=2.0).
    OidcIssuer {
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: SocketAddr,
        /// PEM file of the RSA signing key; generated when it does not exist
        #[arg(long)]
        key_file: PathBuf,
        /// The `iss` of minted tokens (default: http://LISTEN)
        #[arg(long)]
        issuer: Option<String>,
        /// JSON object of claims merged over GitHub's defaults, re-read for every token
        #[arg(long)]
        claims_file: Option<PathBuf>,
        /// Bearer token /token requires (ACTIONS_ID_TOKEN_REQUEST_TOKEN)
        #[arg(long, default_value = "dev-request-token")]
        request_token: String,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AGENTIDP_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("agentidp-dev: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Backends {
                data_dir,
                hrana_listen,
                upstash_listen,
                redis_url,
                token,
            } => serve_backends(data_dir, hrana_listen, upstash_listen, &redis_url, token).await,
            Command::Router { listen, routes } => router::serve(listen, routes).await,
            Command::OidcIssuer {
                listen,
                key_file,
                issuer,
                claims_file,
                request_token,
            } => oidc_issuer::serve(listen, key_file, issuer, claims_file, request_token).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("agentidp-dev: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Both stand-ins, each on its own port, until the process is stopped.
async fn serve_backends(
    data_dir: PathBuf,
    hrana_listen: SocketAddr,
    upstash_listen: SocketAddr,
    redis_url: &str,
    token: Option<String>,
) -> Result<(), String> {
    let hrana_app = hrana::app(&data_dir, token.clone())?;
    let upstash_app = upstash::app(redis_url, token).await?;
    let hrana_listener = tokio::net::TcpListener::bind(hrana_listen)
        .await
        .map_err(|e| format!("cannot listen on {hrana_listen}: {e}"))?;
    let upstash_listener = tokio::net::TcpListener::bind(upstash_listen)
        .await
        .map_err(|e| format!("cannot listen on {upstash_listen}: {e}"))?;
    tracing::info!(%hrana_listen, %upstash_listen, "local Turso and Upstash stand-ins serving");
    let (a, b) = tokio::join!(
        axum::serve(hrana_listener, hrana_app),
        axum::serve(upstash_listener, upstash_app)
    );
    a.and(b).map_err(|e| e.to_string())
}
