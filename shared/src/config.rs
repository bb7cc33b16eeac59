//! Configuration: every variable declared once (name, default, range, one line of doc), read once at
//! start from whatever the platform offers (environment, Worker vars, the component's environment).

pub mod tiers;

use tiers::{Tier, Tiers};

/// Where configuration values come from: a lookup by variable name.
pub trait ConfigSource {
    fn get(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> ConfigSource for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration variable {variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

/// What values a variable takes, with its default.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Integer {
        default: i64,
        min: i64,
        max: i64,
    },
    Choice {
        default: &'static str,
        choices: &'static [&'static str],
    },
    /// Free text; `default` is how the README shows its absence.
    Text {
        default: &'static str,
    },
}

/// Which deployments read a variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Everywhere,
    /// The native server (`agentidp serve`) only.
    Native,
}

/// One configuration variable.
#[derive(Clone, Copy, Debug)]
pub struct Variable {
    pub name: &'static str,
    pub kind: Kind,
    pub scope: Scope,
    pub doc: &'static str,
    /// A credential: set through the platform's secrets (`wrangler secret put`, the process
    /// environment), never written into a descriptor.
    pub secret: bool,
}

impl Variable {
    fn raw(&self, source: &dyn ConfigSource) -> Option<String> {
        source.get(self.name).filter(|v| !v.trim().is_empty())
    }

    fn error(&self, reason: String) -> ConfigError {
        ConfigError {
            variable: self.name,
            reason,
        }
    }

    /// An integer variable within its declared range, or its default.
    pub fn integer(&self, source: &dyn ConfigSource) -> Result<i64, ConfigError> {
        let Kind::Integer { default, min, max } = self.kind else {
            panic!("{} is not declared as an integer", self.name);
        };
        let Some(raw) = self.raw(source) else {
            return Ok(default);
        };
        match raw.trim().parse::<i64>() {
            Ok(v) if (min..=max).contains(&v) => Ok(v),
            _ => Err(self.error(format!("`{raw}` is not an integer from {min} to {max}"))),
        }
    }

    /// A choice variable, lowercased, or its default.
    pub fn choice(&self, source: &dyn ConfigSource) -> Result<&'static str, ConfigError> {
        let Kind::Choice { default, choices } = self.kind else {
            panic!("{} is not declared as a choice", self.name);
        };
        let Some(raw) = self.raw(source) else {
            return Ok(default);
        };
        let value = raw.trim().to_ascii_lowercase();
        choices
            .iter()
            .find(|c| **c == value)
            .copied()
            .ok_or_else(|| {
                self.error(format!(
                    "`{raw}` is not one of {}",
                    choices
                        .iter()
                        .map(|c| format!("`{c}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }

    /// A text variable, if set and not blank.
    pub fn text(&self, source: &dyn ConfigSource) -> Option<String> {
        self.raw(source)
    }

    /// A text variable that must be set.
    pub fn required(&self, source: &dyn ConfigSource) -> Result<String, ConfigError> {
        self.raw(source)
            .ok_or_else(|| self.error("is required".into()))
    }

    fn default_cell(&self) -> String {
        match self.kind {
            Kind::Integer { default, .. } => format!("`{default}`"),
            Kind::Choice { default, .. } => format!("`{default}`"),
            Kind::Text { default } => default.to_owned(),
        }
    }

    fn meaning_cell(&self) -> String {
        let range = match self.kind {
            Kind::Integer { min, max, .. } => format!(" ({min} to {max})"),
            Kind::Choice { choices, .. } => format!(
                " ({})",
                choices
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            Kind::Text { .. } => String::new(),
        };
        let scope = match self.scope {
            Scope::Everywhere => "",
            Scope::Native => " [native server]",
        };
        let secret = if self.secret { " [secret]" } else { "" };
        format!("{}{range}{scope}{secret}", self.doc)
    }
}

const fn integer(
    name: &'static str,
    default: i64,
    min: i64,
    max: i64,
    doc: &'static str,
) -> Variable {
    Variable {
        name,
        kind: Kind::Integer { default, min, max },
        scope: Scope::Everywhere,
        doc,
        secret: false,
    }
}

const fn policy(name: &'static str, default: &'static str, doc: &'static str) -> Variable {
    Variable {
        name,
        kind: Kind::Choice {
            default,
            choices: &["open", "closed"],
        },
        scope: Scope::Everywhere,
        doc,
        secret: false,
    }
}

const fn text(name: &'static str, default: &'static str, doc: &'static str) -> Variable {
    Variable {
        name,
        kind: Kind::Text { default },
        scope: Scope::Everywhere,
        doc,
        secret: false,
    }
}

const fn secret(variable: Variable) -> Variable {
    Variable {
        secret: true,
        ..variable
    }
}

const fn native(variable: Variable) -> Variable {
    Variable {
        scope: Scope::Native,
        ..variable
    }
}

/// Largest configurable rate limit; `0` means unlimited.
pub(crate) const MAX_LIMIT: i64 = 100_000_000;

pub const ISSUER: Variable = text(
    "AGENTIDP_ISSUER",
    "`http://<listen address>` natively; required at the edge",
    "public base URL: the `iss` of every token and the base of every advertised endpoint",
);
pub const LISTEN: Variable = native(text(
    "AGENTIDP_LISTEN",
    "`127.0.0.1:8787`",
    "address to listen on (`--listen` wins)",
));
pub const DATA_DIR: Variable = native(text(
    "AGENTIDP_DATA_DIR",
    "`./data`",
    "directory of the database file `agentidp.db` (`--data-dir` wins)",
));
pub const DB_SYNCHRONOUS: Variable = native(Variable {
    name: "AGENTIDP_DB_SYNCHRONOUS",
    kind: Kind::Choice {
        default: "full",
        choices: &["full", "normal"],
    },
    scope: Scope::Native,
    doc: "durability of the embedded database (see Durability below)",
    secret: false,
});
pub const LOG: Variable = native(text(
    "AGENTIDP_LOG",
    "`info`",
    "log filter (`tracing` syntax, e.g. `warn`, `agentidp_shared=debug`); logs go to stderr",
));
pub const HEADER_TIMEOUT_SECONDS: Variable = native(integer(
    "AGENTIDP_HEADER_TIMEOUT_SECONDS",
    10,
    1,
    3600,
    "seconds from a new connection, or a later request's first byte, to its complete head",
));
pub const BODY_TIMEOUT_SECONDS: Variable = native(integer(
    "AGENTIDP_BODY_TIMEOUT_SECONDS",
    30,
    1,
    3600,
    "seconds from a request's complete head to the end of its body",
));
pub const IDLE_TIMEOUT_SECONDS: Variable = native(integer(
    "AGENTIDP_IDLE_TIMEOUT_SECONDS",
    60,
    1,
    3600,
    "seconds a keep-alive connection may wait for its next request",
));
pub const MAX_CONNECTIONS: Variable = native(integer(
    "AGENTIDP_MAX_CONNECTIONS",
    1024,
    1,
    1_000_000,
    "open client connections at most (idle ones are shed first; lowered to fit the descriptor limit)",
));
pub const SHUTDOWN_GRACE_SECONDS: Variable = native(integer(
    "AGENTIDP_SHUTDOWN_GRACE_SECONDS",
    10,
    0,
    3600,
    "seconds a shutdown waits for requests in flight before closing their connections",
));
pub const METRICS_LISTEN: Variable = native(text(
    "AGENTIDP_METRICS_LISTEN",
    "unset (no metrics)",
    "address of a separate listener serving `GET /metrics` in the Prometheus text format, e.g. `127.0.0.1:9464`; never the API's port; off loopback it requires `AGENTIDP_METRICS_TOKEN`",
));
pub const METRICS_TOKEN: Variable = secret(native(text(
    "AGENTIDP_METRICS_TOKEN",
    "unset",
    "when set, `/metrics` requires `Authorization: Bearer <this>`",
)));
pub const TOKEN_TTL_SECONDS: Variable = integer(
    "AGENTIDP_TOKEN_TTL_SECONDS",
    3600,
    60,
    86_400,
    "access-token lifetime in seconds",
);
pub const SIGNING_KEY_ROTATION_DAYS: Variable = integer(
    "AGENTIDP_SIGNING_KEY_ROTATION_DAYS",
    30,
    0,
    3650,
    "days each token-signing key signs before the next one takes over on its own; `0` turns scheduled rotation off",
);
pub const SIGNING_KEY_PUBLISH_AHEAD_SECONDS: Variable = integer(
    "AGENTIDP_SIGNING_KEY_PUBLISH_AHEAD_SECONDS",
    86_400,
    60,
    2_592_000,
    "how long the next signing key is in the JWKS before it signs, so verifiers' caches already hold it; less than the rotation period",
);
pub const MAX_AGENTS_PER_ORG: Variable = integer(
    "AGENTIDP_MAX_AGENTS_PER_ORG",
    100,
    1,
    1_000_000,
    "free-tier cap on agents (not decommissioned) per organization",
);
pub const AGENT_LIMIT_TIERS: Variable = text(
    "AGENTIDP_AGENT_LIMIT_TIERS",
    "`pro=1000,enterprise=0`",
    "per-tier caps on agents per organization (`0` = unlimited); `free` defaults to `AGENTIDP_MAX_AGENTS_PER_ORG`",
);
pub const SIGNUP: Variable = Variable {
    name: "AGENTIDP_SIGNUP",
    kind: Kind::Choice {
        default: "auto",
        choices: &["auto", "open", "closed"],
    },
    scope: Scope::Everywhere,
    secret: false,
    doc: "who may create organizations (`POST /v1/orgs`): `open` lets anyone; `closed` only callers presenting `AGENTIDP_SIGNUP_TOKEN`; `auto` is open only on a native server whose listen address and issuer are both loopback, closed everywhere else and always at the edge",
};
pub const SIGNUP_TOKEN: Variable = secret(text(
    "AGENTIDP_SIGNUP_TOKEN",
    "unset",
    "lets a caller presenting `Authorization: Bearer <this>` create organizations while sign-up is closed",
));
pub const OPERATOR_TOKEN: Variable = secret(text(
    "AGENTIDP_OPERATOR_TOKEN",
    "unset (`/v1/operator/` answers 404)",
    "the deployment's operator credential: `Authorization: Bearer <this>` on `/v1/operator/` (signing-key rotation, migration status, detailed health), never valid on tenant routes; at least 32 characters",
));
pub const KEY_ENCRYPTION_KEY: Variable = secret(text(
    "AGENTIDP_KEY_ENCRYPTION_KEY",
    "natively, a key file in the data directory (created on the first `serve`); required at the edge",
    "the key-encryption key that seals the stored signing keys and webhook signing secrets: 32 random bytes as base64url or 64 hex digits (`openssl rand -hex 32`); a database sealed under it opens with nothing else",
));
pub const DATABASE_URL: Variable = text(
    "AGENTIDP_DATABASE_URL",
    "unset natively (embedded file); required at the edge",
    "libSQL over HTTP (Turso, or the local stand-in) instead of the embedded file",
);
pub const DATABASE_AUTH_TOKEN: Variable = secret(text(
    "AGENTIDP_DATABASE_AUTH_TOKEN",
    "unset",
    "bearer token for `AGENTIDP_DATABASE_URL`",
));
pub const REDIS_URL: Variable = native(text(
    "REDIS_URL",
    "unset",
    "keep revocations, replay guards, rate-limit windows and usage counters in a real Redis instead of the embedded database",
));
pub const UPSTASH_URL: Variable = text(
    "UPSTASH_REDIS_REST_URL",
    "unset natively; required at the edge",
    "the same in Upstash Redis over its REST API",
);
pub const UPSTASH_TOKEN: Variable = secret(text(
    "UPSTASH_REDIS_REST_TOKEN",
    "unset natively; required at the edge",
    "bearer token for `UPSTASH_REDIS_REST_URL`",
));
pub const KV_TIMEOUT_MS: Variable = integer(
    "AGENTIDP_KV_TIMEOUT_MS",
    50,
    1,
    60_000,
    "a remote key-value store that has not answered by then (milliseconds) counts as failed",
);
pub const RATE_LIMIT_PER_MINUTE: Variable = integer(
    "RATE_LIMIT_PER_MINUTE",
    100,
    0,
    MAX_LIMIT,
    "requests per window per organization of the free tier on authenticated `/v1/*` (`0` = unlimited)",
);
pub const RATE_LIMIT_TIERS: Variable = text(
    "AGENTIDP_RATE_LIMIT_TIERS",
    "`pro=1000,enterprise=0`",
    "per-tier organization request limits (`0` = unlimited), e.g. `free=100,pro=5000`; `free` defaults to `RATE_LIMIT_PER_MINUTE`",
);
pub const RATE_LIMIT_CLIENT_PER_MINUTE: Variable = integer(
    "AGENTIDP_RATE_LIMIT_CLIENT_PER_MINUTE",
    600,
    0,
    MAX_LIMIT,
    "per client on `/oauth2/token`, `/oauth2/introspect`, `/oauth2/revoke` (`0` = unlimited)",
);
pub const RATE_LIMIT_IP_PER_MINUTE: Variable = integer(
    "AGENTIDP_RATE_LIMIT_IP_PER_MINUTE",
    60,
    0,
    MAX_LIMIT,
    "per IP on unauthenticated endpoints, and separately on failed client authentications (`0` = unlimited)",
);
pub const RATE_LIMIT_IPV6_PREFIX: Variable = integer(
    "AGENTIDP_RATE_LIMIT_IPV6_PREFIX",
    64,
    32,
    128,
    "per-address limits count an IPv6 address by its network of this prefix length, since one host usually holds a whole /64 (IPv4 addresses count one by one)",
);
pub const RATE_LIMIT_CLIENT_FAILURES_PER_MINUTE: Variable = integer(
    "AGENTIDP_RATE_LIMIT_CLIENT_FAILURES_PER_MINUTE",
    300,
    0,
    MAX_LIMIT,
    "failed authentications per client, from all addresses together, before the client is refused (429, even with the right secret) until the window moves on (`0` = unlimited)",
);
pub const RATE_LIMIT_AGENT_SHARE_PERCENT: Variable = integer(
    "AGENTIDP_RATE_LIMIT_AGENT_SHARE_PERCENT",
    50,
    1,
    100,
    "largest share of its organization's `/v1/*` limit one agent may use, so no agent can starve the admin",
);
pub const RATE_LIMIT_WINDOW_SECONDS: Variable = integer(
    "AGENTIDP_RATE_LIMIT_WINDOW_SECONDS",
    60,
    1,
    3600,
    "length of the sliding window the limits count over",
);
pub const RATE_LIMIT_ON_KV_FAILURE: Variable = policy(
    "AGENTIDP_RATE_LIMIT_ON_KV_FAILURE",
    "open",
    "key-value store unreachable: `open` lets requests through unlimited (logged, counted), `closed` answers 503",
);
pub const REVOCATION_ON_KV_FAILURE: Variable = policy(
    "AGENTIDP_REVOCATION_ON_KV_FAILURE",
    "closed",
    "key-value store unreachable: `closed` answers 503 rather than accept a possibly revoked token; `open` skips the check",
);
pub const WEBHOOK_DISPATCH_TOKEN: Variable = secret(text(
    "AGENTIDP_WEBHOOK_DISPATCH_TOKEN",
    "unset",
    "when set, `POST /v1/webhooks/dispatch` with `Authorization: Bearer <this>` delivers every organization's due webhooks (cron jobs, Spin deployments)",
));
pub const WEBHOOK_DISPATCH_INTERVAL_SECONDS: Variable = native(integer(
    "AGENTIDP_WEBHOOK_DISPATCH_INTERVAL_SECONDS",
    5,
    0,
    3600,
    "how often the server delivers due webhook retries (`0` = never: only requests and `POST /v1/webhooks/dispatch` deliver)",
));
pub const AUDIT_RETENTION_TIERS: Variable = text(
    "AGENTIDP_AUDIT_RETENTION_TIERS",
    "`free=90,pro=365,enterprise=0`",
    "per-tier days audit events are kept before removal behind a signed checkpoint (`0` = forever)",
);
pub const AUDIT_CHECKPOINT_SECONDS: Variable = native(integer(
    "AGENTIDP_AUDIT_CHECKPOINT_SECONDS",
    300,
    0,
    86_400,
    "how often the server signs a checkpoint of every audit log that grew and removes events past retention (`0` = never: checkpoints only on request)",
));
pub const STRIPE_WEBHOOK_SECRET: Variable = secret(text(
    "STRIPE_WEBHOOK_SECRET",
    "unset (billing off)",
    "signing secret (`whsec_…`) of the Stripe endpoint `POST /v1/billing/stripe`; unset, that endpoint answers 404",
));
pub const STRIPE_PRICE_TIERS: Variable = text(
    "AGENTIDP_STRIPE_PRICE_TIERS",
    "unset",
    "Stripe price ids and the tier each buys, e.g. `price_123=pro,price_456=enterprise` (else the object's `metadata.tier`, else `pro`)",
);
pub const DEV_WEBHOOKS_ALLOW_LOOPBACK: Variable = Variable {
    name: "AGENTIDP_DEV_WEBHOOKS_ALLOW_LOOPBACK",
    kind: Kind::Choice {
        default: "off",
        choices: &["off", "on"],
    },
    scope: Scope::Everywhere,
    doc: "DEVELOPMENT ONLY, logged loudly: `on` lets webhooks target `http://127.0.0.1`, `http://[::1]` and `http://localhost`; never in production",
    secret: false,
};
pub const DEV_CLOCK_FILE: Variable = native(text(
    "AGENTIDP_DEV_CLOCK_FILE",
    "unset",
    "DEVELOPMENT ONLY, logged loudly: the server's clock runs ahead by the milliseconds this file holds (tests move time through the clock seam instead of sleeping); never in production",
));
pub const DEV_TIME_TRAVEL: Variable = Variable {
    name: "AGENTIDP_DEV_TIME_TRAVEL",
    kind: Kind::Choice {
        default: "off",
        choices: &["off", "on"],
    },
    scope: Scope::Everywhere,
    doc: "DEVELOPMENT ONLY, logged loudly: `on` lets `POST /v1/webhooks/dispatch?at=<unix seconds>` run the dispatcher as if its clock read `at` (tests drive retry schedules so); never in production",
    secret: false,
};

pub const GITHUB_OIDC_ISSUER: Variable = text(
    "GITHUB_OIDC_ISSUER",
    "`https://token.actions.githubusercontent.com`",
    "the GitHub Actions OIDC issuer trusted for workload identity federation (`iss` must equal it)",
);
pub const GITHUB_OIDC_JWKS_URL: Variable = text(
    "GITHUB_OIDC_JWKS_URL",
    "the issuer's `/.well-known/jwks`",
    "where that issuer's signing keys are fetched",
);
pub const GITHUB_OIDC_AUDIENCE: Variable = text(
    "GITHUB_OIDC_AUDIENCE",
    "unset (GitHub Actions federation off)",
    "the `aud` GitHub OIDC tokens must carry for this deployment, e.g. its issuer URL; never GitHub's default `https://github.com/OWNER`",
);

/// Every variable, in the order the README lists them.
pub const VARIABLES: &[Variable] = &[
    ISSUER,
    LISTEN,
    DATA_DIR,
    DB_SYNCHRONOUS,
    LOG,
    HEADER_TIMEOUT_SECONDS,
    BODY_TIMEOUT_SECONDS,
    IDLE_TIMEOUT_SECONDS,
    MAX_CONNECTIONS,
    SHUTDOWN_GRACE_SECONDS,
    METRICS_LISTEN,
    METRICS_TOKEN,
    TOKEN_TTL_SECONDS,
    SIGNING_KEY_ROTATION_DAYS,
    SIGNING_KEY_PUBLISH_AHEAD_SECONDS,
    MAX_AGENTS_PER_ORG,
    AGENT_LIMIT_TIERS,
    SIGNUP,
    SIGNUP_TOKEN,
    OPERATOR_TOKEN,
    KEY_ENCRYPTION_KEY,
    DATABASE_URL,
    DATABASE_AUTH_TOKEN,
    REDIS_URL,
    UPSTASH_URL,
    UPSTASH_TOKEN,
    KV_TIMEOUT_MS,
    RATE_LIMIT_PER_MINUTE,
    RATE_LIMIT_TIERS,
    AUDIT_RETENTION_TIERS,
    AUDIT_CHECKPOINT_SECONDS,
    RATE_LIMIT_CLIENT_PER_MINUTE,
    RATE_LIMIT_IP_PER_MINUTE,
    RATE_LIMIT_IPV6_PREFIX,
    RATE_LIMIT_CLIENT_FAILURES_PER_MINUTE,
    RATE_LIMIT_AGENT_SHARE_PERCENT,
    RATE_LIMIT_WINDOW_SECONDS,
    RATE_LIMIT_ON_KV_FAILURE,
    REVOCATION_ON_KV_FAILURE,
    WEBHOOK_DISPATCH_TOKEN,
    WEBHOOK_DISPATCH_INTERVAL_SECONDS,
    STRIPE_WEBHOOK_SECRET,
    STRIPE_PRICE_TIERS,
    DEV_WEBHOOKS_ALLOW_LOOPBACK,
    DEV_TIME_TRAVEL,
    DEV_CLOCK_FILE,
    GITHUB_OIDC_ISSUER,
    GITHUB_OIDC_JWKS_URL,
    GITHUB_OIDC_AUDIENCE,
];

/// The README's configuration table, generated from [`VARIABLES`] (a test keeps the two equal).
pub fn markdown_table() -> String {
    let mut table = String::from("| variable | default | meaning |\n| --- | --- | --- |\n");
    for variable in VARIABLES {
        table.push_str(&format!(
            "| `{}` | {} | {} |\n",
            variable.name,
            variable.default_cell(),
            variable.meaning_cell()
        ));
    }
    table
}

/// What a check does when the key-value store cannot answer in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Let the request through unchecked (logged and counted).
    Open,
    /// Refuse the request with 503.
    Closed,
}

impl FailurePolicy {
    fn load(source: &dyn ConfigSource, variable: &Variable) -> Result<Self, ConfigError> {
        Ok(match variable.choice(source)? {
            "open" => FailurePolicy::Open,
            _ => FailurePolicy::Closed,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Open => "open",
            FailurePolicy::Closed => "closed",
        }
    }
}

/// The configured limits besides the tiers' (`tiers.rs`). Each count is per window (one minute
/// unless configured otherwise).
#[derive(Clone, Debug)]
pub struct RateLimits {
    pub window_seconds: i64,
    /// Per client on `/oauth2/token`, `/oauth2/introspect` and `/oauth2/revoke`.
    pub client: u64,
    /// Per client IP on unauthenticated endpoints, and (in its own window) on failed client
    /// authentications.
    pub ip: u64,
    /// The prefix length an IPv6 address is counted by in the per-address limits.
    pub ipv6_prefix: u8,
    /// Failed authentications per client, from every address together.
    pub client_failures: u64,
    /// The largest share, in percent, of its organization's limit that one agent may use.
    pub agent_share_percent: u64,
    pub on_kv_failure: FailurePolicy,
}

impl RateLimits {
    pub fn load(source: &dyn ConfigSource) -> Result<Self, ConfigError> {
        let limit = |variable: &Variable| variable.integer(source).map(i64::unsigned_abs);
        Ok(RateLimits {
            window_seconds: RATE_LIMIT_WINDOW_SECONDS.integer(source)?,
            client: limit(&RATE_LIMIT_CLIENT_PER_MINUTE)?,
            ip: limit(&RATE_LIMIT_IP_PER_MINUTE)?,
            ipv6_prefix: u8::try_from(RATE_LIMIT_IPV6_PREFIX.integer(source)?).unwrap_or(64),
            client_failures: limit(&RATE_LIMIT_CLIENT_FAILURES_PER_MINUTE)?,
            agent_share_percent: limit(&RATE_LIMIT_AGENT_SHARE_PERCENT)?,
            on_kv_failure: FailurePolicy::load(source, &RATE_LIMIT_ON_KV_FAILURE)?,
        })
    }

    pub fn window_millis(&self) -> i64 {
        self.window_seconds * 1000
    }

    /// One agent's share of an organization limit: rounded up, so a share is never zero while the
    /// organization has any budget; unlimited (0) stays unlimited.
    pub fn agent_share(&self, organization_limit: u64) -> u64 {
        (organization_limit * self.agent_share_percent).div_ceil(100)
    }
}

/// Webhook delivery settings, including the two development switches.
#[derive(Clone, Debug, Default)]
pub struct WebhookSettings {
    /// DEVELOPMENT ONLY: webhook URLs may name loopback addresses over plain HTTP.
    pub allow_loopback: bool,
    /// DEVELOPMENT ONLY: the dispatch endpoint accepts `at`, a time to dispatch as of.
    pub time_travel: bool,
    /// The operator's token for dispatching every organization's due deliveries.
    pub dispatch_token: Option<String>,
}

impl WebhookSettings {
    fn load(source: &dyn ConfigSource) -> Result<Self, ConfigError> {
        Ok(WebhookSettings {
            allow_loopback: DEV_WEBHOOKS_ALLOW_LOOPBACK.choice(source)? == "on",
            time_travel: DEV_TIME_TRAVEL.choice(source)? == "on",
            dispatch_token: WEBHOOK_DISPATCH_TOKEN.text(source),
        })
    }
}

/// The Stripe billing webhook, when configured.
#[derive(Clone, Debug)]
pub struct StripeSettings {
    /// The endpoint's signing secret; Stripe keys its HMAC with this text as is.
    pub secret: String,
    /// Price ids and the tier each buys.
    pub price_tiers: Vec<(String, Tier)>,
}

impl StripeSettings {
    fn load(source: &dyn ConfigSource) -> Result<Option<Self>, ConfigError> {
        let Some(secret) = STRIPE_WEBHOOK_SECRET.text(source) else {
            return Ok(None);
        };
        let mut price_tiers: Vec<(String, Tier)> = Vec::new();
        let raw = STRIPE_PRICE_TIERS.text(source).unwrap_or_default();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let parsed = entry
                .split_once('=')
                .and_then(|(price, tier)| Some((price.trim(), Tier::parse(tier.trim())?)))
                .filter(|(price, _)| !price.is_empty());
            let Some((price, tier)) = parsed else {
                return Err(STRIPE_PRICE_TIERS.error(format!(
                    "`{entry}` is not PRICE_ID=TIER with a tier of `free`, `pro` or `enterprise`"
                )));
            };
            price_tiers.push((price.to_owned(), tier));
        }
        Ok(Some(StripeSettings {
            secret: secret.trim().to_owned(),
            price_tiers,
        }))
    }
}

/// Who may create organizations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signup {
    /// Anyone (rate limited per address).
    Open,
    /// Only a caller presenting this token.
    Token(String),
    /// Nobody: sign-up is closed and no token is configured.
    Closed,
}

impl Signup {
    /// `listen` is the native server's listen address; `None` at the edge, which is never
    /// loopback however its issuer reads.
    fn load(
        source: &dyn ConfigSource,
        issuer: &str,
        listen: Option<std::net::IpAddr>,
    ) -> Result<Self, ConfigError> {
        let token = SIGNUP_TOKEN.text(source).map(|t| t.trim().to_owned());
        let local = listen.is_some_and(|ip| ip.is_loopback()) && is_loopback_url(issuer);
        Ok(match (SIGNUP.choice(source)?, token) {
            ("open", _) => Signup::Open,
            (_, Some(token)) => Signup::Token(token),
            ("auto", None) if local => Signup::Open,
            _ => Signup::Closed,
        })
    }
}

/// A guessable operator credential would open every deployment-wide operation.
const MIN_OPERATOR_TOKEN_CHARS: usize = 32;

fn operator_token(source: &dyn ConfigSource) -> Result<Option<String>, ConfigError> {
    let Some(token) = OPERATOR_TOKEN.text(source).map(|t| t.trim().to_owned()) else {
        return Ok(None);
    };
    if token.chars().count() < MIN_OPERATOR_TOKEN_CHARS {
        return Err(OPERATOR_TOKEN.error(format!(
            "must be at least {MIN_OPERATOR_TOKEN_CHARS} characters (e.g. `openssl rand -hex 32`)"
        )));
    }
    Ok(Some(token))
}

/// Whether an http(s) URL's host is a loopback address or `localhost`.
fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// When signing keys rotate on their own (`jose::keys`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRotation {
    /// How long each key signs.
    pub period_ms: i64,
    /// How long the next key is published before it signs.
    pub publish_ahead_ms: i64,
}

impl KeyRotation {
    fn load(source: &dyn ConfigSource) -> Result<Option<Self>, ConfigError> {
        let days = SIGNING_KEY_ROTATION_DAYS.integer(source)?;
        let ahead_seconds = SIGNING_KEY_PUBLISH_AHEAD_SECONDS.integer(source)?;
        if days == 0 {
            return Ok(None);
        }
        if ahead_seconds >= days * 86_400 {
            return Err(SIGNING_KEY_PUBLISH_AHEAD_SECONDS.error(format!(
                "({ahead_seconds} s) must be less than the rotation period ({days} days)"
            )));
        }
        Ok(Some(KeyRotation {
            period_ms: days * 86_400_000,
            publish_ahead_ms: ahead_seconds * 1000,
        }))
    }
}

/// Everything the core needs to know about its deployment.
#[derive(Clone, Debug)]
pub struct Config {
    /// The `iss` of every token and the base of every advertised endpoint, without a trailing slash.
    pub issuer: String,
    /// Lifetime of access tokens.
    pub token_ttl_seconds: i64,
    /// Scheduled signing-key rotation; `None` when turned off.
    pub key_rotation: Option<KeyRotation>,
    /// What each tier allows (requests, agents): what the limiter, the agent cap and usage read.
    pub tiers: Tiers,
    /// Who may create organizations.
    pub signup: Signup,
    /// The operator credential; `None` turns `/v1/operator/` off.
    pub operator_token: Option<String>,
    pub rate_limits: RateLimits,
    /// Closed by default: a token whose revocation cannot be checked is refused.
    pub revocation_on_kv_failure: FailurePolicy,
    /// How long a key-value call may take before it counts as failed (applied by the platform).
    pub kv_timeout_ms: i64,
    pub webhooks: WebhookSettings,
    /// `None` when `STRIPE_WEBHOOK_SECRET` is unset: the billing webhook answers 404.
    pub stripe: Option<StripeSettings>,
    /// OIDC issuers whose tokens may be exchanged for agent tokens (workload identity federation).
    pub trusted_issuers: Vec<TrustedIssuer>,
}

/// An OIDC issuer whose tokens trust policies may accept: who it is, where its keys are, and the
/// audience its tokens must name for this deployment. A new kind of issuer (GitLab, a Kubernetes
/// cluster) is one more provider name and its variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedIssuer {
    /// The `provider` trust policies name (`github`).
    pub provider: &'static str,
    /// The exact `iss` of its tokens.
    pub issuer: String,
    pub jwks_url: String,
    /// The exact `aud` its tokens must carry: a value unique to this deployment.
    pub audience: String,
}

impl Config {
    /// The trusted issuer whose `iss` is exactly `issuer`.
    pub fn trusted_issuer(&self, issuer: &str) -> Option<&TrustedIssuer> {
        self.trusted_issuers.iter().find(|i| i.issuer == issuer)
    }

    /// The trusted issuer of a trust-policy provider.
    pub fn issuer_of_provider(&self, provider: &str) -> Option<&TrustedIssuer> {
        self.trusted_issuers.iter().find(|i| i.provider == provider)
    }
}

/// GitHub's own default audiences (the owner's URL) and the cloud providers' documented ones are
/// shared by every relying party: a token minted for any of them must never open this deployment.
fn shared_audience(audience: &str) -> bool {
    let lower = audience.to_ascii_lowercase();
    lower.starts_with("https://github.com")
        || lower.starts_with("http://github.com")
        || ["sts.amazonaws.com", "api://azureadtokenexchange"].contains(&lower.as_str())
        || lower.starts_with("//iam.googleapis.com/")
        || lower.starts_with("https://iam.googleapis.com/")
}

/// GitHub Actions, trusted when `GITHUB_OIDC_AUDIENCE` is set.
fn github_issuer(source: &dyn ConfigSource) -> Result<Option<TrustedIssuer>, ConfigError> {
    let Some(audience) = GITHUB_OIDC_AUDIENCE.text(source) else {
        return Ok(None);
    };
    let audience = audience.trim().to_owned();
    if shared_audience(&audience) {
        return Err(GITHUB_OIDC_AUDIENCE.error(format!(
            "`{audience}` is an audience other relying parties share (GitHub's default is the \
             owner's URL); use a value unique to this deployment, such as its issuer URL"
        )));
    }
    if audience
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
        || audience.len() > 512
    {
        return Err(GITHUB_OIDC_AUDIENCE.error("must be one value without spaces".into()));
    }
    let issuer = match GITHUB_OIDC_ISSUER.text(source) {
        Some(v) => https_url(&GITHUB_OIDC_ISSUER, &v)?,
        None => "https://token.actions.githubusercontent.com".to_owned(),
    };
    let jwks_url = match GITHUB_OIDC_JWKS_URL.text(source) {
        Some(v) => https_url(&GITHUB_OIDC_JWKS_URL, &v)?,
        None => format!("{issuer}/.well-known/jwks"),
    };
    Ok(Some(TrustedIssuer {
        provider: "github",
        issuer,
        jwks_url,
        audience,
    }))
}

/// An http(s) URL without query or fragment (http for local stand-ins), without trailing slash.
fn https_url(variable: &Variable, value: &str) -> Result<String, ConfigError> {
    let trimmed = value.trim().trim_end_matches('/');
    let host = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .unwrap_or("");
    if host.is_empty() || trimmed.contains(['?', '#', ' ']) {
        return Err(variable.error(format!(
            "`{value}` is not an http(s) URL without query or fragment"
        )));
    }
    Ok(trimmed.to_owned())
}

impl Config {
    /// Reads the configuration; `default_issuer` applies where the platform can infer one.
    pub fn load(
        source: &dyn ConfigSource,
        default_issuer: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let issuer = match ISSUER
            .text(source)
            .or_else(|| default_issuer.map(str::to_owned))
        {
            Some(v) => parse_issuer(&v)?,
            None => {
                return Err(ISSUER.error(
                    "is required (the public base URL, e.g. https://id.example.com)".into(),
                ))
            }
        };
        Ok(Config {
            issuer: issuer.clone(),
            token_ttl_seconds: TOKEN_TTL_SECONDS.integer(source)?,
            key_rotation: KeyRotation::load(source)?,
            tiers: Tiers::load(source)?,
            signup: Signup::load(source, &issuer, None)?,
            operator_token: operator_token(source)?,
            rate_limits: RateLimits::load(source)?,
            revocation_on_kv_failure: FailurePolicy::load(source, &REVOCATION_ON_KV_FAILURE)?,
            kv_timeout_ms: KV_TIMEOUT_MS.integer(source)?,
            webhooks: WebhookSettings::load(source)?,
            stripe: StripeSettings::load(source)?,
            trusted_issuers: github_issuer(source)?.into_iter().collect(),
        })
    }

    /// The native server's configuration: the issuer defaults to the listen address, and
    /// sign-up's `auto` is open only when both are loopback.
    pub fn load_native(
        source: &dyn ConfigSource,
        listen: std::net::SocketAddr,
    ) -> Result<Self, ConfigError> {
        let mut config = Config::load(source, Some(&format!("http://{listen}")))?;
        config.signup = Signup::load(source, &config.issuer, Some(listen.ip()))?;
        Ok(config)
    }

    /// The token endpoint URL, which is also a valid `aud` for RFC 7523 client assertions.
    pub fn token_endpoint(&self) -> String {
        format!("{}/oauth2/token", self.issuer)
    }
}

fn parse_issuer(value: &str) -> Result<String, ConfigError> {
    let trimmed = value.trim_end_matches('/');
    let scheme_ok = trimmed.starts_with("https://") || trimmed.starts_with("http://");
    let host = trimmed
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or("");
    if !scheme_ok || host.is_empty() || trimmed.contains(['?', '#', ' ']) {
        return Err(ISSUER.error(format!(
            "`{value}` is not an http(s) URL without query or fragment"
        )));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration source from fixed pairs (also for the tiers' tests).
    pub(super) fn source(
        pairs: &'static [(&'static str, &'static str)],
    ) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn malformed_values_name_the_variable() {
        let err = Config::load(
            &source(&[("AGENTIDP_TOKEN_TTL_SECONDS", "soon")]),
            Some("http://x"),
        )
        .unwrap_err();
        assert_eq!(err.variable, TOKEN_TTL_SECONDS.name);
        let err = Config::load(&source(&[("AGENTIDP_ISSUER", "ftp://x")]), None).unwrap_err();
        assert_eq!(err.variable, ISSUER.name);
        let err = Config::load(&source(&[]), None).unwrap_err();
        assert_eq!(err.variable, ISSUER.name);
        let err = Config::load(
            &source(&[("AGENTIDP_REVOCATION_ON_KV_FAILURE", "ajar")]),
            Some("http://x"),
        )
        .unwrap_err();
        assert_eq!(err.variable, REVOCATION_ON_KV_FAILURE.name);
    }

    #[test]
    fn issuer_loses_its_trailing_slash() {
        let config = Config::load(
            &source(&[("AGENTIDP_ISSUER", "https://id.example.com/")]),
            None,
        )
        .unwrap();
        assert_eq!(config.issuer, "https://id.example.com");
        assert_eq!(
            config.token_endpoint(),
            "https://id.example.com/oauth2/token"
        );
    }

    #[test]
    fn limits_and_switches_name_their_variable() {
        let many = source(&[("RATE_LIMIT_PER_MINUTE", "many")]);
        assert_eq!(
            Config::load(&many, Some("http://x")).unwrap_err().variable,
            RATE_LIMIT_PER_MINUTE.name
        );
        let ajar = source(&[("AGENTIDP_RATE_LIMIT_ON_KV_FAILURE", "ajar")]);
        assert_eq!(
            RateLimits::load(&ajar).unwrap_err().variable,
            RATE_LIMIT_ON_KV_FAILURE.name
        );
        let maybe = source(&[("AGENTIDP_DEV_WEBHOOKS_ALLOW_LOOPBACK", "maybe")]);
        assert_eq!(
            Config::load(&maybe, Some("http://x")).unwrap_err().variable,
            DEV_WEBHOOKS_ALLOW_LOOPBACK.name
        );
        let prices = source(&[
            ("STRIPE_WEBHOOK_SECRET", "whsec_x"),
            ("AGENTIDP_STRIPE_PRICE_TIERS", "price_1=gold"),
        ]);
        assert_eq!(
            Config::load(&prices, Some("http://x"))
                .unwrap_err()
                .variable,
            STRIPE_PRICE_TIERS.name
        );
    }

    #[test]
    fn development_switches_are_off_and_billing_unconfigured_by_default() {
        let config = Config::load(&source(&[]), Some("http://x")).unwrap();
        assert!(!config.webhooks.allow_loopback && !config.webhooks.time_travel);
        assert!(config.stripe.is_none());
        let config = Config::load(
            &source(&[
                ("STRIPE_WEBHOOK_SECRET", " whsec_abc "),
                (
                    "AGENTIDP_STRIPE_PRICE_TIERS",
                    "price_1=pro, price_2=enterprise",
                ),
            ]),
            Some("http://x"),
        )
        .unwrap();
        let stripe = config.stripe.unwrap();
        assert_eq!(stripe.secret, "whsec_abc");
        assert_eq!(
            stripe.price_tiers,
            vec![
                ("price_1".to_owned(), Tier::Pro),
                ("price_2".to_owned(), Tier::Enterprise)
            ]
        );
    }

    #[test]
    fn github_federation_needs_a_deployment_specific_audience() {
        let config = Config::load(&source(&[]), Some("http://x")).unwrap();
        assert!(config.trusted_issuers.is_empty());
        let config = Config::load(
            &source(&[("GITHUB_OIDC_AUDIENCE", "https://id.example.com")]),
            Some("http://x"),
        )
        .unwrap();
        let github = config
            .trusted_issuer("https://token.actions.githubusercontent.com")
            .unwrap();
        assert_eq!(
            github.jwks_url,
            "https://token.actions.githubusercontent.com/.well-known/jwks"
        );
        assert_eq!(config.issuer_of_provider("github"), Some(github));
        for shared in [
            "https://github.com/octo-org",
            "sts.amazonaws.com",
            "api://AzureADTokenExchange",
        ] {
            let pairs: &'static [(&str, &str)] =
                Box::leak(Box::new([("GITHUB_OIDC_AUDIENCE", shared)]));
            let err = Config::load(&source(pairs), Some("http://x")).unwrap_err();
            assert_eq!(err.variable, GITHUB_OIDC_AUDIENCE.name, "{shared}");
        }
        let err = Config::load(
            &source(&[
                ("GITHUB_OIDC_AUDIENCE", "agentidp"),
                ("GITHUB_OIDC_ISSUER", "token.actions"),
            ]),
            Some("http://x"),
        )
        .unwrap_err();
        assert_eq!(err.variable, GITHUB_OIDC_ISSUER.name);
    }

    #[test]
    fn signup_is_open_only_on_a_loopback_server_unless_opened() {
        let loopback: std::net::SocketAddr = "127.0.0.1:8787".parse().unwrap();
        let anywhere: std::net::SocketAddr = "0.0.0.0:8787".parse().unwrap();
        let signup = |pairs: &'static [(&'static str, &'static str)], listen| {
            Config::load_native(&source(pairs), listen).unwrap().signup
        };
        assert_eq!(signup(&[], loopback), Signup::Open);
        assert_eq!(
            signup(&[("AGENTIDP_ISSUER", "http://localhost:8787")], loopback),
            Signup::Open
        );
        assert_eq!(signup(&[], anywhere), Signup::Closed);
        assert_eq!(
            signup(&[("AGENTIDP_ISSUER", "https://id.example.com")], loopback),
            Signup::Closed
        );
        assert_eq!(
            signup(&[("AGENTIDP_SIGNUP", "closed")], loopback),
            Signup::Closed
        );
        assert_eq!(
            signup(&[("AGENTIDP_SIGNUP_TOKEN", "t")], anywhere),
            Signup::Token("t".into())
        );
        assert_eq!(
            signup(&[("AGENTIDP_SIGNUP", "open")], anywhere),
            Signup::Open
        );
        // The edge is never loopback, whatever its issuer says.
        let edge = Config::load(&source(&[("AGENTIDP_ISSUER", "http://127.0.0.1:1")]), None);
        assert_eq!(edge.unwrap().signup, Signup::Closed);
    }

    #[test]
    fn every_variable_is_declared_once() {
        for (i, a) in VARIABLES.iter().enumerate() {
            for b in &VARIABLES[i + 1..] {
                assert_ne!(a.name, b.name);
            }
        }
    }
}
