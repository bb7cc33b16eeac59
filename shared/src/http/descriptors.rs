//! The edge deployment descriptors (`wrangler.toml`, `spin.toml`) generated from the route table and
//! the configuration declarations, so routes and variable blocks are never edited by hand.

use crate::config::{self, Scope, Variable, VARIABLES};
use crate::http::routes::{Function, ROUTES};

/// What differs between deployments: the hosts and the stores' URLs. Secrets are never here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdgeSettings {
    /// The public host of the Workers deployment, e.g. `id.example.com`.
    pub host: String,
    /// The Cloudflare zone the host belongs to (`example.com`).
    pub zone: String,
    /// The public host of the Spin deployment (often the same as `host`).
    pub spin_host: String,
    /// libSQL over HTTP: `libsql://<db>-<org>.turso.io`.
    pub database_url: String,
    /// Upstash Redis REST: `https://<name>.upstash.io`.
    pub upstash_url: String,
}

impl EdgeSettings {
    /// Placeholders for a host, the zone being its parent domain.
    pub fn for_host(host: &str) -> EdgeSettings {
        let zone = host
            .split_once('.')
            .map(|(_, parent)| parent)
            .filter(|parent| parent.contains('.'))
            .unwrap_or(host);
        EdgeSettings {
            host: host.to_owned(),
            zone: zone.to_owned(),
            spin_host: host.to_owned(),
            database_url: "libsql://agentidp-example.turso.io".to_owned(),
            upstash_url: "https://example.upstash.io".to_owned(),
        }
    }

    /// The settings the repository's own descriptors are generated with.
    pub fn example() -> EdgeSettings {
        EdgeSettings::for_host("id.example.com")
    }

    /// The `agentidp edge init` command that regenerates descriptors for these settings.
    pub fn command(&self) -> String {
        let mut command = format!("agentidp edge init --host {}", self.host);
        let defaults = EdgeSettings::for_host(&self.host);
        if self.zone != defaults.zone {
            command.push_str(&format!(" --zone {}", self.zone));
        }
        if self.spin_host != defaults.spin_host {
            command.push_str(&format!(" --spin-host {}", self.spin_host));
        }
        if self.database_url != defaults.database_url {
            command.push_str(&format!(" --database-url {}", self.database_url));
        }
        if self.upstash_url != defaults.upstash_url {
            command.push_str(&format!(" --upstash-url {}", self.upstash_url));
        }
        command
    }
}

/// How a path prefix is routed: exactly, everything under it (`/prefix/…`), or it and everything
/// under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    Exact,
    Under,
    ItselfAndUnder,
}

/// The path prefixes routed to `function`, in route-table order: the routes grouped by their
/// first segment (by the first two under `/v1/`).
pub fn prefixes(function: Function) -> Vec<(String, Reach)> {
    let mut groups: Vec<(String, Reach)> = Vec::new();
    for route in ROUTES
        .iter()
        .filter(|r| r.function == function && !r.every_function)
        .chain(
            ROUTES
                .iter()
                .filter(|r| r.every_function && function == Function::Token),
        )
    {
        let segments: Vec<&str> = route.path.split('/').skip(1).collect();
        let depth = if segments.first() == Some(&"v1") {
            2
        } else {
            1
        };
        let key = format!("/{}", segments[..depth.min(segments.len())].join("/"));
        let reach = if route.path == key {
            Reach::Exact
        } else {
            Reach::Under
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, existing)) if *existing != reach => *existing = Reach::ItselfAndUnder,
            Some(_) => {}
            None => groups.push((key, reach)),
        }
    }
    groups
}

/// The variables every function gets in its descriptor, with their values for `settings`: the
/// edge's required non-secret configuration.
fn plain_variables(settings: &EdgeSettings, host: &str) -> Vec<(&'static str, String)> {
    let issuer = format!("https://{host}");
    vec![
        (config::ISSUER.name, issuer.clone()),
        (config::DATABASE_URL.name, settings.database_url.clone()),
        (config::UPSTASH_URL.name, settings.upstash_url.clone()),
        (config::GITHUB_OIDC_AUDIENCE.name, issuer),
    ]
}

/// The edge's secrets, from the declarations: what `wrangler secret put` (or Spin's environment)
/// must provide; the first two are required, the rest turn features on.
pub fn secrets() -> Vec<&'static Variable> {
    VARIABLES
        .iter()
        .filter(|v| v.secret && v.scope == Scope::Everywhere)
        .collect()
}

fn inline_table(pairs: &[(&str, String)]) -> String {
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k} = {}", quoted(v)))
        .collect();
    format!("{{ {} }}", body.join(", "))
}

fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

fn header(settings: &EdgeSettings, what: &str) -> String {
    format!(
        "# {what}.\n# Generated from the route table and the configuration declarations by\n\
         #   {}\n# Regenerate rather than edit by hand.\n",
        settings.command()
    )
}

/// The `wrangler secret put` loop for every Worker: each has its own secrets.
pub fn wrangler_secret_loop() -> String {
    let names: Vec<&str> = secrets().iter().map(|v| v.name).collect();
    let envs: Vec<&str> = Function::ALL.iter().map(|f| f.name()).collect();
    format!(
        "for env in {}; do\n  for name in {}; do\n    # Unset ones are skipped; each value is read from your shell's environment.\n    [ -n \"${{!name:-}}\" ] && printf %s \"${{!name}}\" | npx wrangler secret put \"$name\" --env \"$env\"\n  done\ndone",
        envs.join(" "),
        names.join(" ")
    )
}

/// `wrangler.toml`: one Worker per function, routed on one host.
pub fn wrangler_toml(settings: &EdgeSettings) -> String {
    let mut out = header(
        settings,
        "One Cloudflare Worker per function, all routed on one host",
    );
    out.push_str(
        "#\n# Deploy every Worker (scripts/build-edge.sh builds each with worker-build):\n\
         #   for env in token agents audit marketplace webhooks; do npx wrangler deploy --env $env; done\n\
         # Secrets are never in this file; each Worker has its own (see README, \"Deploy\"):\n",
    );
    for line in wrangler_secret_loop().lines() {
        out.push_str(&format!("#   {line}\n"));
    }
    out.push_str(
        "name = \"agentidp\"\nmain = \"functions/token/build/index.js\"\n\
         compatibility_date = \"2026-04-20\"\nworkers_dev = false\n",
    );
    let vars = inline_table(&plain_variables(settings, &settings.host));
    for function in Function::ALL {
        let name = function.name();
        out.push_str(&format!(
            "\n[env.{name}]\nname = \"agentidp-{name}\"\nmain = \"functions/{name}/build/index.js\"\n\
             build = {{ command = \"bash scripts/build-edge.sh workers {name}\" }}\nroutes = [\n"
        ));
        for (prefix, reach) in prefixes(function) {
            let pattern = match reach {
                Reach::Exact => prefix,
                Reach::Under => format!("{prefix}/*"),
                Reach::ItselfAndUnder => format!("{prefix}*"),
            };
            out.push_str(&format!(
                "    {{ pattern = \"{}{pattern}\", zone_name = \"{}\" }},\n",
                settings.host, settings.zone
            ));
        }
        out.push_str("]\n");
        if function == Function::Webhooks {
            out.push_str(
                "# The dispatcher: every minute, the due webhook deliveries of every organization.\n\
                 triggers = { crons = [\"* * * * *\"] }\n",
            );
        }
        out.push_str(&format!("vars = {vars}\n"));
    }
    out
}

/// The hosts a component may call: the database and the key-value store, the trusted issuer's
/// keys and the deployment itself (the operator's health check), any HTTPS host for webhooks.
fn outbound_hosts(settings: &EdgeSettings, function: Function) -> Vec<String> {
    if function == Function::Webhooks {
        return vec!["https://*:*".to_owned()];
    }
    let https = |url: &str| {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        format!("https://{}", rest.split('/').next().unwrap_or(rest))
    };
    let mut hosts = vec![https(&settings.database_url), https(&settings.upstash_url)];
    if matches!(function, Function::Token | Function::Agents) {
        hosts.push("https://token.actions.githubusercontent.com".to_owned());
    }
    if function == Function::Token {
        hosts.push(format!("https://{}", settings.spin_host));
    }
    hosts
}

/// `spin.toml`: one component per function, configured through plain environment variables.
pub fn spin_toml(settings: &EdgeSettings) -> String {
    let mut out = header(
        settings,
        "One Spin app, one component per function, all routed on one host",
    );
    let secret_names: Vec<&str> = secrets().iter().map(|v| v.name).collect();
    out.push_str(&format!(
        "#\n# Build: `spin build`; run: `spin up` / deploy: `spin deploy`.\n\
         # Configuration reaches each component as plain environment variables (not Spin variables),\n\
         # so the components import only wasi:* interfaces and the same builds run under `wasmtime\n\
         # serve` (the tests). Secrets are never in this file: give them at start, e.g.\n\
         #   spin up -e AGENTIDP_DATABASE_AUTH_TOKEN=\"$AGENTIDP_DATABASE_AUTH_TOKEN\" -e ...\n\
         # (secrets: {}).\n",
        secret_names.join(", ")
    ));
    out.push_str(&format!(
        "spin_manifest_version = 2\n\n[application]\nname = \"agentidp\"\nversion = \"{}\"\n\
         description = \"AgentIdP: OAuth 2.0 identity provider for AI agents\"\n\n\
         [application.trigger.http]\nbase = \"/\"\n",
        env!("CARGO_PKG_VERSION")
    ));
    for function in Function::ALL {
        for (prefix, reach) in prefixes(function) {
            let route = match reach {
                Reach::Exact => prefix,
                Reach::Under | Reach::ItselfAndUnder => format!("{prefix}/..."),
            };
            out.push_str(&format!(
                "\n[[trigger.http]]\nroute = \"{route}\"\ncomponent = \"{}\"\n",
                function.name()
            ));
        }
    }
    let environment = inline_table(&plain_variables(settings, &settings.spin_host));
    for function in Function::ALL {
        let name = function.name();
        let hosts: Vec<String> = outbound_hosts(settings, function)
            .iter()
            .map(|h| quoted(h))
            .collect();
        let watch = if function == Function::Marketplace {
            ", \"portal/**/*\""
        } else {
            ""
        };
        out.push_str(&format!(
            "\n[component.{name}]\nsource = \"build/spin/{name}.wasm\"\n\
             allowed_outbound_hosts = [{}]\nenvironment = {environment}\n\
             [component.{name}.build]\ncommand = \"bash scripts/build-edge.sh spin {name}\"\n\
             watch = [\"shared/src/**/*.rs\", \"functions/{name}/src/**/*.rs\"{watch}]\n",
            hosts.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_group_routes_by_their_leading_segments() {
        let token = prefixes(Function::Token);
        assert!(token.contains(&("/oauth2".into(), Reach::Under)));
        assert!(token.contains(&("/health".into(), Reach::ItselfAndUnder)));
        assert!(token.contains(&("/openapi.json".into(), Reach::Exact)));
        let agents = prefixes(Function::Agents);
        assert!(agents.contains(&("/v1/usage".into(), Reach::Exact)));
        assert!(agents.contains(&("/v1/orgs".into(), Reach::ItselfAndUnder)));
        assert!(prefixes(Function::Marketplace).contains(&("/".into(), Reach::Exact)));
    }

    #[test]
    fn secrets_stay_out_of_the_descriptors() {
        let settings = EdgeSettings::example();
        for descriptor in [wrangler_toml(&settings), spin_toml(&settings)] {
            for secret in secrets() {
                assert!(
                    !descriptor.contains(&format!("{} =", secret.name)),
                    "{} is written into a descriptor",
                    secret.name
                );
            }
        }
    }
}
