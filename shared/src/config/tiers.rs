//! Tiers: what each plan (`free`, `pro`, `enterprise`) allows, from configuration, in one place the
//! rate limiter, the agent cap and usage all read.

use serde::Serialize;

use super::{
    ConfigError, ConfigSource, Variable, AGENT_LIMIT_TIERS, AUDIT_RETENTION_TIERS,
    MAX_AGENTS_PER_ORG, MAX_LIMIT, RATE_LIMIT_PER_MINUTE, RATE_LIMIT_TIERS,
};

/// An organization's plan, as stored in `orgs.tier`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Free,
    Pro,
    Enterprise,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Free, Tier::Pro, Tier::Enterprise];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Pro => "pro",
            Tier::Enterprise => "enterprise",
        }
    }

    pub fn parse(name: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Higher allows more: of several subscriptions, the highest-ranked active one applies.
    pub fn rank(self) -> i64 {
        match self {
            Tier::Free => 0,
            Tier::Pro => 1,
            Tier::Enterprise => 2,
        }
    }
}

/// The collections of an organization each tier bounds besides agents, so that no tenant grows a
/// table without end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collection {
    /// Active credentials of one agent.
    CredentialsPerAgent,
    /// Trust policies of an organization.
    TrustPolicies,
    /// Active admin credentials of an organization.
    AdminCredentials,
}

impl Collection {
    /// What the cap counts, as an error message names it.
    pub fn noun(self) -> &'static str {
        match self {
            Collection::CredentialsPerAgent => "active credentials per agent",
            Collection::TrustPolicies => "trust policies per organization",
            Collection::AdminCredentials => "active admin credentials per organization",
        }
    }
}

impl Tier {
    /// The cap of a collection on this tier: enough for rotation overlaps (a new credential made
    /// before the old one is revoked) and many repositories, far below what would hurt a table.
    pub fn cap(self, collection: Collection) -> i64 {
        match (self, collection) {
            (Tier::Free, Collection::CredentialsPerAgent) => 10,
            (Tier::Pro, Collection::CredentialsPerAgent) => 25,
            (Tier::Enterprise, Collection::CredentialsPerAgent) => 50,
            (Tier::Free, Collection::TrustPolicies) => 25,
            (Tier::Pro, Collection::TrustPolicies) => 250,
            (Tier::Enterprise, Collection::TrustPolicies) => 1000,
            (Tier::Free, Collection::AdminCredentials) => 10,
            (Tier::Pro, Collection::AdminCredentials) => 25,
            (Tier::Enterprise, Collection::AdminCredentials) => 50,
        }
    }
}

/// Defaults of the paid tiers, unless configured otherwise: ten times the free tier's default
/// request rate and agents, and no limits at all for enterprise.
const PRO_REQUESTS: u64 = 1000;
const PRO_AGENTS: u64 = 1000;
/// Audit retention by default: the free tier keeps 90 days, pro a year, enterprise everything.
const FREE_RETENTION_DAYS: u64 = 90;
const PRO_RETENTION_DAYS: u64 = 365;

/// What one tier allows. `0` means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowance {
    /// Requests per rate-limit window on authenticated `/v1/*`.
    pub requests_per_window: u64,
    /// Agents that are not decommissioned.
    pub agents: u64,
    /// Days audit events are kept before retention removes them (behind a checkpoint).
    pub audit_retention_days: u64,
}

impl Allowance {
    /// The request limit, `None` when unlimited.
    pub fn request_limit(&self) -> Option<u64> {
        (self.requests_per_window > 0).then_some(self.requests_per_window)
    }

    /// How long audit events are kept, in milliseconds; `None` keeps them forever.
    pub fn audit_retention_millis(&self) -> Option<i64> {
        (self.audit_retention_days > 0)
            .then(|| i64::try_from(self.audit_retention_days * 86_400_000).unwrap_or(i64::MAX))
    }

    /// The agent cap, `None` when unlimited.
    pub fn agent_limit(&self) -> Option<i64> {
        (self.agents > 0).then(|| i64::try_from(self.agents).unwrap_or(i64::MAX))
    }
}

/// Every tier's allowance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tiers {
    free: Allowance,
    pro: Allowance,
    enterprise: Allowance,
}

impl Tiers {
    pub fn load(source: &dyn ConfigSource) -> Result<Self, ConfigError> {
        let free_requests = RATE_LIMIT_PER_MINUTE.integer(source)?.unsigned_abs();
        let free_agents = MAX_AGENTS_PER_ORG.integer(source)?.unsigned_abs();
        let mut tiers = Tiers {
            free: Allowance {
                requests_per_window: free_requests,
                agents: free_agents,
                audit_retention_days: FREE_RETENTION_DAYS,
            },
            pro: Allowance {
                requests_per_window: PRO_REQUESTS,
                agents: PRO_AGENTS,
                audit_retention_days: PRO_RETENTION_DAYS,
            },
            enterprise: Allowance {
                requests_per_window: 0,
                agents: 0,
                audit_retention_days: 0,
            },
        };
        let raw = AUDIT_RETENTION_TIERS.text(source).unwrap_or_default();
        for (tier, days) in parse_tier_list(&AUDIT_RETENTION_TIERS, &raw)? {
            tiers.slot(tier).audit_retention_days = days;
        }
        let raw = RATE_LIMIT_TIERS.text(source).unwrap_or_default();
        for (tier, limit) in parse_tier_list(&RATE_LIMIT_TIERS, &raw)? {
            tiers.slot(tier).requests_per_window = limit;
        }
        let raw = AGENT_LIMIT_TIERS.text(source).unwrap_or_default();
        for (tier, limit) in parse_tier_list(&AGENT_LIMIT_TIERS, &raw)? {
            tiers.slot(tier).agents = limit;
        }
        Ok(tiers)
    }

    fn slot(&mut self, tier: Tier) -> &mut Allowance {
        match tier {
            Tier::Free => &mut self.free,
            Tier::Pro => &mut self.pro,
            Tier::Enterprise => &mut self.enterprise,
        }
    }

    pub fn allowance(&self, tier: Tier) -> Allowance {
        match tier {
            Tier::Free => self.free,
            Tier::Pro => self.pro,
            Tier::Enterprise => self.enterprise,
        }
    }

    /// The allowance of a tier named as `orgs.tier` stores it; a name this version does not know
    /// gets the free tier's, the safe side.
    pub fn of(&self, name: &str) -> Allowance {
        self.allowance(Tier::parse(name).unwrap_or(Tier::Free))
    }

    /// Whether the tiers differ in request limits: when they do not, a request's limit is known
    /// without reading its organization's tier.
    pub fn requests_vary(&self) -> bool {
        let free = self.free.requests_per_window;
        self.pro.requests_per_window != free || self.enterprise.requests_per_window != free
    }
}

/// `free=100,pro=1000,enterprise=0`: tier names and limits (`0` = unlimited).
fn parse_tier_list(variable: &Variable, raw: &str) -> Result<Vec<(Tier, u64)>, ConfigError> {
    let invalid = |reason: String| ConfigError {
        variable: variable.name,
        reason,
    };
    let mut tiers: Vec<(Tier, u64)> = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, limit) = entry
            .split_once('=')
            .ok_or_else(|| invalid(format!("`{entry}` is not TIER=LIMIT")))?;
        let name = name.trim();
        let tier = Tier::parse(name).ok_or_else(|| {
            invalid(format!(
                "`{name}` is not a tier (`free`, `pro` or `enterprise`)"
            ))
        })?;
        let limit = limit
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|l| *l <= MAX_LIMIT.unsigned_abs())
            .ok_or_else(|| {
                invalid(format!(
                    "the limit of tier `{name}` is not an integer from 0 to {MAX_LIMIT}"
                ))
            })?;
        if tiers.iter().any(|(t, _)| *t == tier) {
            return Err(invalid(format!("tier `{name}` is listed twice")));
        }
        tiers.push((tier, limit));
    }
    Ok(tiers)
}

#[cfg(test)]
mod tests {
    use super::super::tests::source;
    use super::*;

    #[test]
    fn paid_tiers_lift_the_free_limits_by_default() {
        let tiers = Tiers::load(&source(&[])).unwrap();
        assert_eq!(
            tiers.allowance(Tier::Free),
            Allowance {
                requests_per_window: 100,
                agents: 100,
                audit_retention_days: 90,
            }
        );
        assert_eq!(
            tiers.allowance(Tier::Free).audit_retention_millis(),
            Some(90 * 86_400_000)
        );
        assert_eq!(tiers.allowance(Tier::Pro).audit_retention_days, 365);
        assert_eq!(
            tiers.allowance(Tier::Enterprise).audit_retention_millis(),
            None
        );
        assert_eq!(tiers.allowance(Tier::Pro).request_limit(), Some(1000));
        assert_eq!(tiers.allowance(Tier::Enterprise).request_limit(), None);
        assert_eq!(tiers.allowance(Tier::Enterprise).agent_limit(), None);
        assert_eq!(tiers.of("platinum"), tiers.allowance(Tier::Free));
        assert!(tiers.requests_vary());
    }

    #[test]
    fn lists_override_each_tier_and_the_free_variables_set_its_defaults() {
        let tiers = Tiers::load(&source(&[
            ("RATE_LIMIT_PER_MINUTE", "7"),
            ("AGENTIDP_MAX_AGENTS_PER_ORG", "3"),
            ("AGENTIDP_RATE_LIMIT_TIERS", " pro=50 ,enterprise=500"),
            ("AGENTIDP_AGENT_LIMIT_TIERS", "free=2,pro=0"),
            ("AGENTIDP_AUDIT_RETENTION_TIERS", "free=30,enterprise=3650"),
        ]))
        .unwrap();
        assert_eq!(
            tiers.allowance(Tier::Free),
            Allowance {
                requests_per_window: 7,
                agents: 2,
                audit_retention_days: 30,
            }
        );
        assert_eq!(tiers.allowance(Tier::Pro).audit_retention_days, 365);
        assert_eq!(tiers.allowance(Tier::Enterprise).audit_retention_days, 3650);
        assert_eq!(tiers.allowance(Tier::Pro).agent_limit(), None);
        assert_eq!(tiers.allowance(Tier::Pro).request_limit(), Some(50));
        assert_eq!(tiers.allowance(Tier::Enterprise).request_limit(), Some(500));
        let uniform = Tiers::load(&source(&[(
            "AGENTIDP_RATE_LIMIT_TIERS",
            "free=5,pro=5,enterprise=5",
        )]))
        .unwrap();
        assert!(!uniform.requests_vary());
    }

    #[test]
    fn malformed_lists_name_the_variable() {
        for bad in [
            "free",
            "free=lots",
            "=5",
            "free=1,free=2",
            "free=-1",
            "gold=5",
        ] {
            let pairs: &'static [(&'static str, &'static str)] =
                Box::leak(Box::new([("AGENTIDP_RATE_LIMIT_TIERS", bad)]));
            assert_eq!(
                Tiers::load(&source(pairs)).unwrap_err().variable,
                RATE_LIMIT_TIERS.name,
                "{bad}"
            );
            let pairs: &'static [(&'static str, &'static str)] =
                Box::leak(Box::new([("AGENTIDP_AGENT_LIMIT_TIERS", bad)]));
            assert_eq!(
                Tiers::load(&source(pairs)).unwrap_err().variable,
                AGENT_LIMIT_TIERS.name,
                "{bad}"
            );
        }
    }
}
