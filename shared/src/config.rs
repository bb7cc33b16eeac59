//! Configuration, read once at start from whatever the platform offers (environment, Worker vars).

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
