//! Configuration, read once at start from whatever the platform offers (environment, Worker vars).

use crate::rate_limit::RateLimits;

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

pub const ISSUER: &str = "AGENTIDP_ISSUER";
pub const TOKEN_TTL_SECONDS: &str = "AGENTIDP_TOKEN_TTL_SECONDS";
pub const MAX_AGENTS_PER_ORG: &str = "AGENTIDP_MAX_AGENTS_PER_ORG";
pub const SIGNUP_TOKEN: &str = "AGENTIDP_SIGNUP_TOKEN";
pub const REVOCATION_ON_KV_FAILURE: &str = "AGENTIDP_REVOCATION_ON_KV_FAILURE";
pub const KV_TIMEOUT_MS: &str = "AGENTIDP_KV_TIMEOUT_MS";

/// What a check does when the key-value store cannot answer in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Let the request through unchecked (logged and counted).
    Open,
    /// Refuse the request with 503.
    Closed,
}

impl FailurePolicy {
    pub fn load(
        source: &dyn ConfigSource,
        variable: &'static str,
        default: FailurePolicy,
    ) -> Result<Self, ConfigError> {
        match source.get(variable).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v.is_empty() => Ok(default),
            Some(v) if v == "open" => Ok(FailurePolicy::Open),
            Some(v) if v == "closed" => Ok(FailurePolicy::Closed),
            Some(v) => Err(ConfigError {
                variable,
                reason: format!("`{v}` is neither `open` nor `closed`"),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Open => "open",
            FailurePolicy::Closed => "closed",
        }
    }
}

/// Everything the core needs to know about its deployment.
#[derive(Clone, Debug)]
pub struct Config {
    /// The `iss` of every token and the base of every advertised endpoint, without a trailing slash.
    pub issuer: String,
    /// Lifetime of access tokens.
    pub token_ttl_seconds: i64,
    /// Free-tier cap on agents that are not decommissioned, per organization.
    pub max_agents_per_org: i64,
    /// When set, `POST /v1/orgs` requires `Authorization: Bearer <this>`.
    pub signup_token: Option<String>,
    pub rate_limits: RateLimits,
    /// Closed by default: a token whose revocation cannot be checked is refused.
    pub revocation_on_kv_failure: FailurePolicy,
    /// How long a key-value call may take before it counts as failed (applied by the platform).
    pub kv_timeout_ms: i64,
}

impl Config {
    /// Reads the configuration; `default_issuer` applies where the platform can infer one.
    pub fn load(
        source: &dyn ConfigSource,
        default_issuer: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let issuer = match source
            .get(ISSUER)
            .or_else(|| default_issuer.map(str::to_owned))
        {
            Some(v) => parse_issuer(&v)?,
            None => {
                return Err(ConfigError {
                    variable: ISSUER,
                    reason: "is required (the public base URL, e.g. https://id.example.com)".into(),
                })
            }
        };
        Ok(Config {
            issuer,
            token_ttl_seconds: int_in(source, TOKEN_TTL_SECONDS, 3600, 60..=86_400)?,
            max_agents_per_org: int_in(source, MAX_AGENTS_PER_ORG, 100, 1..=1_000_000)?,
            signup_token: source.get(SIGNUP_TOKEN).filter(|t| !t.is_empty()),
            rate_limits: RateLimits::load(source)?,
            revocation_on_kv_failure: FailurePolicy::load(
                source,
                REVOCATION_ON_KV_FAILURE,
                FailurePolicy::Closed,
            )?,
            kv_timeout_ms: int_in(source, KV_TIMEOUT_MS, 50, 1..=60_000)?,
        })
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
        return Err(ConfigError {
            variable: ISSUER,
            reason: format!("`{value}` is not an http(s) URL without query or fragment"),
        });
    }
    Ok(trimmed.to_owned())
}

/// Reads an optional integer variable within a range.
pub fn int_in(
    source: &dyn ConfigSource,
    variable: &'static str,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, ConfigError> {
    let Some(raw) = source.get(variable) else {
        return Ok(default);
    };
    match raw.trim().parse::<i64>() {
        Ok(v) if range.contains(&v) => Ok(v),
        _ => Err(ConfigError {
            variable,
            reason: format!(
                "`{raw}` is not an integer from {} to {}",
                range.start(),
                range.end()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn malformed_values_name_the_variable() {
        let err =
            Config::load(&source(&[(TOKEN_TTL_SECONDS, "soon")]), Some("http://x")).unwrap_err();
        assert_eq!(err.variable, TOKEN_TTL_SECONDS);
        let err = Config::load(&source(&[(ISSUER, "ftp://x")]), None).unwrap_err();
        assert_eq!(err.variable, ISSUER);
        let err = Config::load(&source(&[]), None).unwrap_err();
        assert_eq!(err.variable, ISSUER);
    }

    #[test]
    fn issuer_loses_its_trailing_slash() {
        let config = Config::load(&source(&[(ISSUER, "https://id.example.com/")]), None).unwrap();
        assert_eq!(config.issuer, "https://id.example.com");
        assert_eq!(
            config.token_endpoint(),
            "https://id.example.com/oauth2/token"
        );
    }
}
