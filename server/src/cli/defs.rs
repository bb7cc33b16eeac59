//! The command line, defined once: every command and flag with its help and an example (clap
//! derive). These are the raw parsed values; `hiargs` derives what they mean (defaults, the
//! environment, the profile, the terminal).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Printed under every command's help.
pub const EXIT_CODES: &str = "Exit codes: 0 success; 1 failure (e.g. a broken audit chain, a file \
that cannot be written); 2 usage (bad arguments, or a request the server refused as invalid); \
3 authentication (not logged in, wrong credentials, missing scope); 4 not found; 5 conflict; \
6 rate limited; 7 server error or no answer.";

#[derive(Parser)]
#[command(
    name = "agentidp",
    version,
    about = "AgentIdP: an OAuth 2.0 identity provider for AI agents",
    long_about = "AgentIdP: an OAuth 2.0 identity provider for AI agents.\n\n`serve` runs the \
                  server; every other command talks to a deployment over its HTTP API (the local \
                  server, Workers or Spin alike), as the profile saved by `login` or the \
                  credentials given by flags or the environment.",
    after_help = "Example:\n  agentidp serve\n  agentidp orgs create acme --login\n  agentidp \
                  agents register --name doc-bot --type assistant --capability read:docs\n\n\
                  Exit codes: see `agentidp help <command>`."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every API command takes.
#[derive(Args, Clone, Debug, Default)]
pub struct Global {
    /// Base URL of the deployment [default: the profile's, else http://127.0.0.1:8787]
    #[arg(long, env = "AGENTIDP_URL", global = true, help_heading = "Connection")]
    pub url: Option<String>,
    /// Profile saved by `login` [default: default]
    #[arg(
        long,
        env = "AGENTIDP_PROFILE",
        global = true,
        help_heading = "Connection"
    )]
    pub profile: Option<String>,
    /// Client id to act as, instead of the profile's
    #[arg(
        long,
        env = "AGENTIDP_CLIENT_ID",
        global = true,
        help_heading = "Connection"
    )]
    pub client_id: Option<String>,
    /// Client secret to act as, instead of the profile's (prefer the environment variable: a flag
    /// shows in the process list)
    #[arg(
        long,
        env = "AGENTIDP_CLIENT_SECRET",
        hide_env_values = true,
        global = true,
        help_heading = "Connection"
    )]
    pub client_secret: Option<String>,
    /// Where profiles are kept [default: the platform's config directory, e.g.
    /// ~/.config/agentidp]
    #[arg(
        long,
        env = "AGENTIDP_CONFIG_DIR",
        global = true,
        help_heading = "Connection"
    )]
    pub config_dir: Option<PathBuf>,
    /// Output format [default: table on a terminal, json otherwise]
    #[arg(
        long,
        short = 'o',
        value_enum,
        env = "AGENTIDP_OUTPUT",
        global = true,
        help_heading = "Output"
    )]
    pub output: Option<OutputFormat>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve every function on one port, on an embedded libSQL database.
    #[command(after_help = "Example:\n  agentidp serve --listen 127.0.0.1:8787 --data-dir ./data")]
    Serve {
        /// Address to listen on [env: AGENTIDP_LISTEN] [default: 127.0.0.1:8787]
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Directory of the database file [env: AGENTIDP_DATA_DIR] [default: ./data]
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Manage token signing keys (on the server's data directory).
    #[command(after_help = "Example:\n  agentidp keys rotate --data-dir ./data")]
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Check a deployment end to end: metadata, keys, health, a token round trip (with the
    /// profile's or the environment's credentials, else a throwaway organization where sign-up
    /// is open), and every route reaching a function that serves it.
    #[command(after_help = format!("Example:\n  agentidp doctor --url https://id.example.com\n\n{EXIT_CODES}"))]
    Doctor,
    /// Edge deployments (Cloudflare Workers, Spin): their descriptors.
    #[command(subcommand, after_help = format!("Example:\n  agentidp edge init --host id.example.com\n\n{EXIT_CODES}"))]
    Edge(EdgeCommand),
    /// Save a deployment's URL and a client's credentials as a profile (0600, never printed).
    #[command(after_help = format!("Example:\n  agentidp login --url http://127.0.0.1:8787 --client-id \"$ADMIN_ID\"\n  \
        (the secret from AGENTIDP_CLIENT_SECRET, else a prompt, else a line of stdin)\n\n{EXIT_CODES}"))]
    Login,
    /// Who the CLI acts as: the deployment, the profile, and the token's subject, client and
    /// scopes (one token request, reused by the next commands).
    #[command(after_help = format!("Example:\n  agentidp whoami\n\n{EXIT_CODES}"))]
    Whoami,
    /// The saved profiles (never their secrets).
    #[command(subcommand, after_help = format!("Example:\n  agentidp profiles list\n\n{EXIT_CODES}"))]
    Profiles(ProfilesCommand),
    /// This month's usage against the tier's allowances.
    #[command(after_help = format!("Example:\n  agentidp usage\n\n{EXIT_CODES}"))]
    Usage,
    /// Forget a profile.
    #[command(after_help = format!("Example:\n  agentidp logout --profile staging\n\n{EXIT_CODES}"))]
    Logout,
    /// Organizations.
    #[command(subcommand, after_help = format!("Example:\n  agentidp orgs create acme --login\n\n{EXIT_CODES}"))]
    Orgs(OrgsCommand),
    /// Agents of the organization.
    #[command(subcommand, after_help = format!("Example:\n  agentidp agents list --status active\n\n{EXIT_CODES}"))]
    Agents(AgentsCommand),
    /// An agent's credentials.
    #[command(subcommand, after_help = format!("Example:\n  agentidp credentials create $AGENT\n\n{EXIT_CODES}"))]
    Credentials(CredentialsCommand),
    /// Get an access token (client credentials): the bare token, or JSON with --output json.
    #[command(after_help = format!("Example:\n  TOKEN=$(agentidp token --scope read:docs)\n  \
        AGENTIDP_CLIENT_ID=$CID AGENTIDP_CLIENT_SECRET=$SECRET agentidp token -o json\n\n{EXIT_CODES}"))]
    Token(TokenArgs),
    /// Ask whether a token is active (RFC 7662).
    #[command(after_help = format!("Example:\n  agentidp introspect \"$TOKEN\"\n  echo \"$TOKEN\" | agentidp introspect -\n\n{EXIT_CODES}"))]
    Introspect(TokenArg),
    /// Revoke a token (RFC 7009).
    #[command(after_help = format!("Example:\n  agentidp revoke \"$TOKEN\"\n\n{EXIT_CODES}"))]
    Revoke(TokenArg),
    /// The organization's hash-chained audit trail.
    #[command(subcommand, after_help = format!("Example:\n  agentidp audit verify\n\n{EXIT_CODES}"))]
    Audit(AuditCommand),
    /// Trust policies for GitHub Actions workload identity federation.
    #[command(subcommand, after_help = format!("Example:\n  agentidp trust-policies list\n\n{EXIT_CODES}"))]
    TrustPolicies(TrustPoliciesCommand),
    /// The organization's Cedar policies: which scopes agents and workflows may be issued.
    #[command(subcommand, after_help = format!("Example:\n  agentidp policies put --file payments.cedar\n\n{EXIT_CODES}"))]
    Policies(PoliciesCommand),
    /// Webhook subscriptions and their deliveries.
    #[command(subcommand, after_help = format!("Example:\n  agentidp webhooks list\n\n{EXIT_CODES}"))]
    Webhooks(WebhooksCommand),
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  agentidp completions bash > ~/.local/share/bash-completion/completions/agentidp\n  \
        agentidp completions zsh > \"${fpath[1]}/_agentidp\"\n  \
        agentidp completions fish > ~/.config/fish/completions/agentidp.fish"
    )]
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key active; previous keys stay in the JWKS until their tokens expire.
    /// A running server picks the new key up within 30 seconds. With the global `--url` (or
    /// AGENTIDP_URL) and no `--data-dir`, through a deployment's operator API (edge deployments
    /// included) with AGENTIDP_OPERATOR_TOKEN; otherwise on the local server's data directory.
    #[command(after_help = "Example:\n  agentidp keys rotate --alg EdDSA\n  \
        AGENTIDP_OPERATOR_TOKEN=... agentidp keys rotate --url https://id.example.com")]
    Rotate {
        /// The local server's data directory (the default without the global --url)
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The deployment's operator credential (prefer the environment variable)
        #[arg(long, env = "AGENTIDP_OPERATOR_TOKEN", hide_env_values = true)]
        operator_token: Option<String>,
        /// ES256 (default) or EdDSA
        #[arg(long, default_value = "ES256")]
        alg: String,
    },
}

#[derive(Subcommand)]
pub enum ProfilesCommand {
    /// Each profile's name and deployment URL, and its client id.
    #[command(after_help = format!("Example:\n  agentidp profiles list -o json\n\n{EXIT_CODES}"))]
    List,
}

#[derive(Subcommand)]
pub enum EdgeCommand {
    /// Write wrangler.toml and spin.toml for your hosts, generated from the route table and the
    /// configuration declarations (routes and variable blocks are never edited by hand), and
    /// print the per-Worker `wrangler secret put` loop.
    #[command(
        after_help = "Example:\n  agentidp edge init --host id.example.com \\\n    \
        --database-url libsql://agentidp-me.turso.io --upstash-url https://me.upstash.io"
    )]
    Init {
        /// The public host of the Workers deployment
        #[arg(long)]
        host: String,
        /// The Cloudflare zone the host is in [default: the host's parent domain]
        #[arg(long)]
        zone: Option<String>,
        /// The public host of the Spin deployment [default: --host]
        #[arg(long)]
        spin_host: Option<String>,
        /// libSQL URL of the Turso database (`turso db show --url NAME`)
        #[arg(long)]
        database_url: Option<String>,
        /// Upstash Redis REST URL
        #[arg(long)]
        upstash_url: Option<String>,
        /// Directory to write the two files into
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Subcommand)]
pub enum OrgsCommand {
    /// Create an organization; its admin credential is printed once.
    #[command(after_help = format!("Example:\n  agentidp orgs create acme --login   \
        # and save the admin credential as the profile\n\n{EXIT_CODES}"))]
    Create {
        /// The organization's name
        name: String,
        /// Sign-up token, when the deployment requires one
        #[arg(long, env = "AGENTIDP_SIGNUP_TOKEN", hide_env_values = true)]
        signup_token: Option<String>,
        /// Save the admin credential as the profile (as `login` would)
        #[arg(long)]
        login: bool,
        /// With --login, replace an existing profile of that name
        #[arg(long, requires = "login")]
        force: bool,
    },
    /// The organization's admin credentials: list, create, rotate, revoke.
    #[command(subcommand, after_help = format!("Example:\n  agentidp orgs credentials rotate $CREDENTIAL --grace-period 3600\n\n{EXIT_CODES}"))]
    Credentials(AdminCredentialsCommand),
}

#[derive(Subcommand)]
pub enum AdminCredentialsCommand {
    /// List the organization's admin credentials (never their secrets).
    #[command(after_help = format!("Example:\n  agentidp orgs credentials list -o json\n\n{EXIT_CODES}"))]
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Create a further admin credential; its secret is printed once, to stdout.
    #[command(after_help = format!("Example:\n  agentidp orgs credentials create -o json > admin.json\n\n{EXIT_CODES}"))]
    Create,
    /// Replace an admin secret; the new one is printed once, the old one works for the grace period.
    #[command(after_help = format!("Example:\n  agentidp orgs credentials rotate $CREDENTIAL --grace-period 3600\n\n{EXIT_CODES}"))]
    Rotate {
        credential: String,
        /// Seconds the previous secret keeps working
        #[arg(long, value_name = "SECONDS")]
        grace_period: Option<i64>,
    },
    /// Revoke an admin credential and every token issued through it.
    #[command(after_help = format!("Example:\n  agentidp orgs credentials revoke $CREDENTIAL\n\n{EXIT_CODES}"))]
    Revoke { credential: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeploymentEnv {
    Development,
    Staging,
    Production,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Visibility {
    Private,
    Public,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AgentStatus {
    Active,
    Suspended,
    Decommissioned,
}

/// An agent's descriptive fields, shared by `register` and `update`.
#[derive(Args, Debug, Default)]
pub struct AgentFields {
    /// Contact email
    #[arg(long)]
    pub email: Option<String>,
    /// The agent's version
    #[arg(long = "agent-version", value_name = "VERSION")]
    pub version: Option<String>,
    /// Scopes it may be granted (repeat, or comma-separated)
    #[arg(long = "capability", value_name = "SCOPE", value_delimiter = ',')]
    pub capabilities: Vec<String>,
    /// Who runs it
    #[arg(long)]
    pub owner: Option<String>,
    /// Deployment environment
    #[arg(long = "env", value_enum, value_name = "ENV")]
    pub deployment_env: Option<DeploymentEnv>,
    /// Free-form metadata, a JSON object
    #[arg(long, value_name = "JSON")]
    pub metadata: Option<String>,
    /// `public` lists it in the marketplace
    #[arg(long, value_enum)]
    pub visibility: Option<Visibility>,
    /// What it does, in prose (searched in the marketplace)
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Tags of a-z, 0-9 and `-` (repeat, or comma-separated)
    #[arg(long = "tag", value_name = "TAG", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Its home page (https)
    #[arg(long, value_name = "URL")]
    pub homepage_url: Option<String>,
    /// Its own A2A endpoint (https): the `url` of its Agent Card
    #[arg(long, value_name = "URL")]
    pub a2a_url: Option<String>,
    /// A2A skills, a JSON array of {id, name, description, tags, examples}
    #[arg(long, value_name = "JSON")]
    pub skills: Option<String>,
    /// Let --capability add management scopes (agents:*, audit:*, webhooks:*, ...): the agent
    /// becomes an administrator of those APIs
    #[arg(long)]
    pub allow_management_scopes: bool,
}

/// Paging of list commands.
#[derive(Args, Debug, Default)]
pub struct PageArgs {
    /// Page size, 1 to 200
    #[arg(long)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page
    #[arg(long, conflicts_with = "all")]
    pub cursor: Option<String>,
    /// Follow `next_cursor` and print every page
    #[arg(long)]
    pub all: bool,
}

#[derive(Subcommand)]
pub enum AgentsCommand {
    /// Register an agent.
    #[command(after_help = format!("Example:\n  agentidp agents register --name doc-bot --type assistant \
        --capability read:docs,write:docs --env production\n\n{EXIT_CODES}"))]
    Register {
        #[arg(long)]
        name: String,
        /// Agent type, e.g. assistant
        #[arg(long = "type", value_name = "TYPE")]
        agent_type: String,
        #[command(flatten)]
        fields: AgentFields,
    },
    /// List the organization's agents.
    #[command(after_help = format!("Example:\n  agentidp agents list --status active --all -o json\n\n{EXIT_CODES}"))]
    List {
        #[arg(long, value_enum)]
        status: Option<AgentStatus>,
        #[arg(long)]
        owner: Option<String>,
        #[arg(long = "type", value_name = "TYPE")]
        agent_type: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one agent.
    #[command(after_help = format!("Example:\n  agentidp agents show $AGENT\n\n{EXIT_CODES}"))]
    Show { id: String },
    /// Change an agent's fields (only those given).
    #[command(after_help = format!("Example:\n  agentidp agents update $AGENT --capability read:docs --visibility public\n\n{EXIT_CODES}"))]
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "type", value_name = "TYPE")]
        agent_type: Option<String>,
        #[command(flatten)]
        fields: AgentFields,
    },
    /// Suspend an agent: its tokens stop working until it is resumed.
    #[command(after_help = format!("Example:\n  agentidp agents suspend $AGENT\n\n{EXIT_CODES}"))]
    Suspend { id: String },
    /// Reactivate a suspended agent.
    #[command(after_help = format!("Example:\n  agentidp agents resume $AGENT\n\n{EXIT_CODES}"))]
    Resume { id: String },
    /// Decommission an agent, for good: its tokens and credentials stop working.
    #[command(after_help = format!("Example:\n  agentidp agents decommission $AGENT --yes\n\n{EXIT_CODES}"))]
    Decommission {
        id: String,
        /// Do not ask (required when stdin is not a terminal)
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
pub enum CredentialsCommand {
    /// Give an agent a client secret (printed once, to stdout) or register its public key.
    #[command(after_help = format!("Example:\n  agentidp credentials create $AGENT\n  \
        agentidp credentials create $AGENT --public-jwk key.pub.jwk\n\n{EXIT_CODES}"))]
    Create {
        agent: String,
        /// A public JWK (EC P-256 or Ed25519) for private_key_jwt, from a file or `-` for stdin
        #[arg(long, value_name = "FILE")]
        public_jwk: Option<PathBuf>,
    },
    /// List an agent's credentials (never their secrets).
    #[command(after_help = format!("Example:\n  agentidp credentials list $AGENT\n\n{EXIT_CODES}"))]
    List {
        agent: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Replace a client secret; the new one is printed once, the old one works for the grace period.
    #[command(after_help = format!("Example:\n  agentidp credentials rotate $AGENT $CREDENTIAL --grace-period 3600\n\n{EXIT_CODES}"))]
    Rotate {
        agent: String,
        credential: String,
        /// Seconds the previous secret keeps working
        #[arg(long, value_name = "SECONDS")]
        grace_period: Option<i64>,
    },
    /// Revoke a credential and every token issued through it.
    #[command(after_help = format!("Example:\n  agentidp credentials revoke $AGENT $CREDENTIAL\n\n{EXIT_CODES}"))]
    Revoke { agent: String, credential: String },
}

#[derive(Args, Debug)]
pub struct TokenArgs {
    /// Scopes to request (repeat, or comma- or space-separated, as --capability) [default: all
    /// the client may have]
    #[arg(long = "scope", value_name = "SCOPE", value_delimiter = ',')]
    pub scopes: Vec<String>,
    /// RFC 8707 audience (repeat for several)
    #[arg(long)]
    pub audience: Vec<String>,
    /// RFC 8707 resource URI (repeat for several)
    #[arg(long)]
    pub resource: Vec<String>,
}

#[derive(Args, Debug)]
pub struct TokenArg {
    /// The access token, or `-` to read it from stdin
    pub token: String,
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Show the newest events, oldest of them first; --follow keeps printing new ones.
    #[command(after_help = format!("Example:\n  agentidp audit tail -n 50 --action token.issued\n  \
        agentidp audit tail --follow -o json | jq .action\n\n{EXIT_CODES}"))]
    Tail {
        /// How many of the newest events
        #[arg(long, short = 'n', default_value_t = 20)]
        lines: u32,
        /// Keep printing events as they are appended (Ctrl-C to stop)
        #[arg(long, short = 'f')]
        follow: bool,
        /// Seconds between polls with --follow
        #[arg(long, default_value_t = 2)]
        interval: u64,
        #[arg(long)]
        action: Option<String>,
        /// Leave these actions out (repeat, or comma-separated), e.g. `token.issued`
        #[arg(long = "exclude-action", value_name = "ACTION", value_delimiter = ',')]
        exclude_actions: Vec<String>,
        /// Only this agent's events
        #[arg(long = "agent", value_name = "AGENT")]
        agent_id: Option<String>,
        /// success or failure
        #[arg(long)]
        outcome: Option<String>,
    },
    /// Recompute the hash chain on the server; with --checkpoint, prove the server's latest signed
    /// checkpoint extends one saved earlier; with --offline, verify an export against a signed
    /// checkpoint with no server. Exits 1 when anything does not hold.
    #[command(after_help = format!("Example:\n  agentidp audit verify && echo intact\n  \
        agentidp audit verify --checkpoint saved.note --save saved.note\n  \
        agentidp audit verify --offline audit.ndjson --checkpoint saved.note --key \"$(cat key.txt)\"\n\n{EXIT_CODES}"))]
    Verify {
        /// An export (NDJSON from `audit export`) to verify offline against --checkpoint: every
        /// event's hash and link, and the checkpoint's Merkle root over them
        #[arg(long, value_name = "EXPORT", requires_all = ["checkpoint", "key"])]
        offline: Option<PathBuf>,
        /// A signed checkpoint note saved earlier (`GET /v1/audit/checkpoints/latest`)
        #[arg(long, value_name = "NOTE")]
        checkpoint: Option<PathBuf>,
        /// The checkpoint verifier key (name+hash+base64) or a file holding it [default online:
        /// the server's]
        #[arg(long, value_name = "KEY")]
        key: Option<String>,
        /// Once the server's latest checkpoint is verified, write it here (to verify against next time)
        #[arg(long, value_name = "FILE", conflicts_with = "offline")]
        save: Option<PathBuf>,
    },
    /// Stream the trail as NDJSON (oldest first) to a file, with progress on a terminal.
    #[command(after_help = format!("Example:\n  agentidp audit export --file audit.ndjson\n  \
        agentidp audit export --after-seq 1000 > newer.ndjson\n\n{EXIT_CODES}"))]
    Export {
        /// Where to write [default: stdout]; written to FILE.partial and renamed when complete
        #[arg(long, short = 'f', value_name = "FILE")]
        file: Option<PathBuf>,
        /// Events at or after this time (RFC 3339)
        #[arg(long)]
        from: Option<String>,
        /// Events before this time (RFC 3339)
        #[arg(long)]
        to: Option<String>,
        /// Events after this sequence number
        #[arg(long)]
        after_seq: Option<i64>,
    },
}

#[derive(Subcommand)]
pub enum PoliciesCommand {
    /// List the organization's policies.
    #[command(after_help = format!("Example:\n  agentidp policies list --all\n\n{EXIT_CODES}"))]
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one policy (its text, description and version).
    #[command(after_help = format!("Example:\n  agentidp policies get $POLICY\n\n{EXIT_CODES}"))]
    Get { id: String },
    /// Upload a policy, or replace one with --id (validated against the schema first).
    #[command(after_help = format!("Example:\n  agentidp policies put --file payments.cedar --description 'payments only for the payment API'\n  \
        agentidp policies put --id $POLICY --file payments.cedar --if-match 3\n\n{EXIT_CODES}"))]
    Put {
        /// The policy to replace; without it a new policy is created
        #[arg(long)]
        id: Option<String>,
        /// The Cedar text in a file (`-` for stdin)
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "cedar",
            conflicts_with = "cedar"
        )]
        file: Option<String>,
        /// The Cedar text itself
        #[arg(long)]
        cedar: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Replace only if the policy is still at this version (412 otherwise)
        #[arg(long, value_name = "VERSION", requires = "id")]
        if_match: Option<i64>,
    },
    /// Delete a policy.
    #[command(after_help = format!("Example:\n  agentidp policies delete $POLICY\n\n{EXIT_CODES}"))]
    Delete { id: String },
    /// Dry-run the policies for an agent or a workflow; issues nothing.
    #[command(after_help = format!("Example:\n  agentidp policies evaluate --agent $AGENT --scope payments:write,read:docs \
        --audience https://pay.example\n  \
        agentidp policies evaluate --workflow '{{\"repository\":\"octo/app\",\"ref\":\"refs/heads/main\"}}' \
        --scope deploy:prod --action exchange_token\n\n{EXIT_CODES}"))]
    Evaluate {
        #[arg(
            long = "agent",
            value_name = "AGENT",
            required_unless_present = "workflow",
            conflicts_with = "workflow"
        )]
        agent_id: Option<String>,
        /// A workflow's claims as a JSON object, or @FILE
        #[arg(long)]
        workflow: Option<String>,
        /// Scopes to decide (repeat, or comma-separated)
        #[arg(
            long = "scope",
            value_name = "SCOPE",
            value_delimiter = ',',
            required = true
        )]
        scopes: Vec<String>,
        /// The audience (RFC 8707 resource); the issuer when absent
        #[arg(long)]
        audience: Option<String>,
        /// issue_token (client credentials) or exchange_token (federation)
        #[arg(long)]
        action: Option<String>,
        /// Context members as a JSON object (key_bound, lifetime_seconds, client_ip, ...)
        #[arg(long)]
        context: Option<String>,
    },
    /// Print the Cedar schema policies are validated against.
    #[command(after_help = format!("Example:\n  agentidp policies schema > agentidp.cedarschema\n\n{EXIT_CODES}"))]
    Schema,
}

#[derive(Subcommand)]
pub enum TrustPoliciesCommand {
    /// Let a GitHub repository's workflows act as an agent, or register agents.
    #[command(after_help = format!("Example:\n  agentidp trust-policies create --repository octo/app --branch main \
        --environment production --agent $AGENT --scope read:docs\n  \
        agentidp trust-policies create --repository 'octo/*' --allow-registration --max-registrations 5\n\n{EXIT_CODES}"))]
    Create {
        /// owner/name, or owner/<pattern>
        #[arg(long)]
        repository: String,
        /// Identity provider
        #[arg(long, default_value = "github")]
        provider: String,
        /// The repository's immutable id (else pinned on first use)
        #[arg(long)]
        repository_id: Option<String>,
        /// Branch, exact or an anchored pattern such as release/*
        #[arg(long)]
        branch: Option<String>,
        /// Deployment environment of the job
        #[arg(long)]
        environment: Option<String>,
        /// job_workflow_ref, e.g. octo/app/.github/workflows/deploy.yml@refs/heads/main
        #[arg(long = "workflow", value_name = "REF")]
        job_workflow_ref: Option<String>,
        /// Events allowed (repeat); some are refused unless listed
        #[arg(long = "event", value_name = "EVENT", value_delimiter = ',')]
        event_names: Vec<String>,
        /// github-hosted or self-hosted
        #[arg(long)]
        runner_environment: Option<String>,
        /// The agent workflows act as
        #[arg(
            long = "agent",
            value_name = "AGENT",
            conflicts_with = "allow_registration"
        )]
        agent_id: Option<String>,
        /// Let workflows register agents instead
        #[arg(long)]
        allow_registration: bool,
        /// Most agents the policy may register
        #[arg(long, requires = "allow_registration")]
        max_registrations: Option<i64>,
        /// Scopes granted (repeat, or comma-separated)
        #[arg(long = "scope", value_name = "SCOPE", value_delimiter = ',')]
        scopes: Vec<String>,
    },
    /// List the organization's trust policies.
    #[command(after_help = format!("Example:\n  agentidp trust-policies list --agent $AGENT\n\n{EXIT_CODES}"))]
    List {
        #[arg(long = "agent", value_name = "AGENT")]
        agent_id: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one trust policy.
    #[command(after_help = format!("Example:\n  agentidp trust-policies show $POLICY\n\n{EXIT_CODES}"))]
    Show { id: String },
    /// Delete a trust policy (its workflows' tokens stop working).
    #[command(after_help = format!("Example:\n  agentidp trust-policies delete $POLICY\n\n{EXIT_CODES}"))]
    Delete { id: String },
    /// Dry-run the policies against a workflow's OIDC token or claims; issues nothing.
    #[command(after_help = format!("Example:\n  agentidp trust-policies evaluate --claims \
        '{{\"repository\":\"octo/app\",\"ref\":\"refs/heads/main\"}}'\n  \
        agentidp trust-policies evaluate --token \"$GITHUB_OIDC_TOKEN\" --agent $AGENT\n\n{EXIT_CODES}"))]
    Evaluate {
        /// A GitHub Actions OIDC token (`-` for stdin)
        #[arg(long, required_unless_present = "claims", conflicts_with = "claims")]
        token: Option<String>,
        /// Claims as a JSON object, or @FILE
        #[arg(long)]
        claims: Option<String>,
        /// The agent the workflow would ask for
        #[arg(long = "agent", value_name = "AGENT")]
        agent_id: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum WebhooksCommand {
    /// Subscribe an HTTPS endpoint to events; the signing secret is printed once.
    #[command(after_help = format!("Example:\n  agentidp webhooks create --endpoint https://hooks.example.com/agentidp \
        --event agent.created --event credential.revoked\n\n{EXIT_CODES}"))]
    Create {
        /// The HTTPS endpoint deliveries are posted to (`--url` names the server)
        #[arg(long, value_name = "URL")]
        endpoint: String,
        /// Event type, or `*` for all (repeat, or comma-separated)
        #[arg(
            long = "event",
            value_name = "EVENT",
            value_delimiter = ',',
            required = true
        )]
        events: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        /// Create it disabled
        #[arg(long)]
        disabled: bool,
    },
    /// List the organization's subscriptions.
    #[command(after_help = format!("Example:\n  agentidp webhooks list -o json\n\n{EXIT_CODES}"))]
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// A subscription's delivery log, newest first.
    #[command(after_help = format!("Example:\n  agentidp webhooks deliveries $WEBHOOK --limit 10\n\n{EXIT_CODES}"))]
    Deliveries {
        id: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Send a `webhook.test` event to one subscription.
    #[command(after_help = format!("Example:\n  agentidp webhooks test $WEBHOOK\n\n{EXIT_CODES}"))]
    Test { id: String },
    /// Change a subscription's endpoint, events, description, or turn it on or off.
    #[command(after_help = format!("Example:\n  agentidp webhooks update $WEBHOOK --event agent.created,agent.updated --enable\n\n{EXIT_CODES}"))]
    Update {
        id: String,
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
        /// Event types replacing the current ones (repeat, or comma-separated)
        #[arg(long = "event", value_name = "EVENT", value_delimiter = ',')]
        events: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        /// Turn deliveries on (also re-enables one the dispatcher disabled)
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
    },
    /// Delete a subscription and its delivery log.
    #[command(after_help = format!("Example:\n  agentidp webhooks delete $WEBHOOK\n\n{EXIT_CODES}"))]
    Delete { id: String },
    /// A new signing secret (printed once); the old one keeps signing for the grace period.
    #[command(after_help = format!("Example:\n  agentidp webhooks rotate $WEBHOOK --grace-period 3600\n\n{EXIT_CODES}"))]
    Rotate {
        id: String,
        /// Seconds the old secret stays valid [default: a day]
        #[arg(long, value_name = "SECONDS")]
        grace_period: Option<i64>,
    },
    /// Deliver a failed delivery again.
    #[command(after_help = format!("Example:\n  agentidp webhooks retry $WEBHOOK $DELIVERY\n\n{EXIT_CODES}"))]
    Retry { id: String, delivery: String },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_an_example() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", command.get_name());
            let help = command
                .get_after_help()
                .map(ToString::to_string)
                .unwrap_or_default();
            if !help.contains("Example:") {
                missing.push(path.clone());
            }
            for sub in command.get_subcommands() {
                if sub.get_name() != "help" {
                    walk(sub, &path, missing);
                }
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "no example in the help of {missing:?}");
    }

    /// A command's own argument with the id of a global one (`url`, `profile`, ...) is silently
    /// merged with it: `webhooks create --url` once sent the endpoint as the server's URL.
    #[test]
    fn no_command_reuses_a_global_flag() {
        fn walk(command: &clap::Command, globals: &[String], clashes: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().to_string();
                let long = arg.get_long().map(str::to_owned);
                if globals.contains(&id) || long.is_some_and(|l| globals.contains(&l)) {
                    clashes.push(format!("{} {id}", command.get_name()));
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, globals, clashes);
            }
        }
        let cli = Cli::command();
        let globals: Vec<String> = cli
            .get_arguments()
            .filter(|a| a.is_global_set())
            .flat_map(|a| {
                [a.get_id().to_string()]
                    .into_iter()
                    .chain(a.get_long().map(str::to_owned))
            })
            .collect();
        assert!(globals.contains(&"url".to_owned()), "{globals:?}");
        let mut clashes = Vec::new();
        for sub in cli.get_subcommands() {
            walk(sub, &globals, &mut clashes);
        }
        assert!(
            clashes.is_empty(),
            "arguments that shadow a global flag: {clashes:?}"
        );
    }
}
