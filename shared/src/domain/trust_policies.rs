//! Trust policies for workload identity federation: which CI workflows (by their OIDC claims) may
//! act as which agent, validated on creation and matched claim by claim, each refusal explained.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::domain::agents::valid_capabilities;
use crate::domain::scopes;
use crate::domain::time::timestamp;
use crate::domain::validate::{is_id, Invalid};

/// The issuers a policy may name; each is configured per deployment (`config::TrustedIssuer`).
pub const PROVIDERS: &[&str] = &["github"];

/// Events that run code from outside the repository (a fork's pull request, a comment's author, a
/// triggering workflow's artifacts) with the base repository's identity: refused unless a policy
/// lists them in `event_names`.
pub const UNTRUSTED_EVENTS: &[&str] = &["pull_request_target", "issue_comment", "workflow_run"];

/// How many agents a registration policy may register when it does not say.
pub const DEFAULT_MAX_REGISTRATIONS: i64 = 10;
const MAX_MAX_REGISTRATIONS: i64 = 1000;
const MAX_PATTERN_CHARS: usize = 255;
const MAX_EVENT_NAMES: usize = 32;
/// GitHub's limits: owner 39 characters, repository name 100.
const MAX_OWNER_CHARS: usize = 39;
const MAX_REPOSITORY_NAME_CHARS: usize = 100;

/// Body of `POST /v1/oidc/trust-policies`. Required fields are optional here so a missing one is
/// reported by name.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTrustPolicy {
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub repository: Option<String>,
    #[serde(default, deserialize_with = "string_like")]
    pub repository_id: Option<String>,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub job_workflow_ref: Option<String>,
    #[serde(default)]
    pub event_names: Option<Vec<String>>,
    #[serde(default)]
    pub runner_environment: Option<String>,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub allow_registration: bool,
    #[serde(default)]
    pub max_registrations: Option<i64>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

/// A trust policy. Timestamps are Unix milliseconds, serialized as RFC 3339.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrustPolicy {
    pub id: String,
    pub org_id: String,
    pub provider: String,
    /// `owner/name`, or `owner/<pattern>`.
    pub repository: String,
    /// The immutable repository id: given, or pinned on first successful use of an exact repository.
    pub repository_id: Option<String>,
    /// The immutable owner id, pinned on first successful use.
    pub repository_owner_id: Option<String>,
    pub branch: Option<String>,
    pub environment: Option<String>,
    pub job_workflow_ref: Option<String>,
    pub event_names: Option<Vec<String>>,
    pub runner_environment: Option<String>,
    /// The agent a matching workflow acts as; `None` for a registration policy.
    pub agent_id: Option<String>,
    pub allow_registration: bool,
    /// Registration policies only: how many agents it may register.
    pub max_registrations: Option<i64>,
    /// Agent policies: the scopes its tokens may carry (a subset of the agent's capabilities).
    /// Registration policies: the capabilities a registered agent may have. `None`: the agent's.
    pub scopes: Option<Vec<String>>,
    /// Registration policies only: how many agents it has registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered_agents: Option<i64>,
    #[serde(serialize_with = "timestamp")]
    pub created_at: i64,
    #[serde(serialize_with = "timestamp")]
    pub updated_at: i64,
}

/// The claims of a CI workflow's OIDC token that policies look at (GitHub's names; other issuers'
/// tokens map onto them). Ids arrive as strings from GitHub; numbers are accepted too.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkflowClaims {
    #[serde(default, deserialize_with = "string_like")]
    pub sub: Option<String>,
    #[serde(default, deserialize_with = "string_like")]
    pub repository: Option<String>,
    #[serde(default, deserialize_with = "string_like")]
    pub repository_id: Option<String>,
    #[serde(default, deserialize_with = "string_like")]
    pub repository_owner: Option<String>,
    #[serde(default, deserialize_with = "string_like")]
    pub repository_owner_id: Option<String>,
    #[serde(rename = "ref", default, deserialize_with = "string_like")]
    pub git_ref: Option<String>,
    #[serde(default, deserialize_with = "string_like")]
    pub ref_type: Option<String>,
    #[serde(default, deserialize_with = "string_like")]
    pub environment: Option<String>,
    #[serde(default, deserialize_with = "string_like")]
    pub event_name: Option<String>,
    #[serde(default, deserialize_with = "string_like")]
    pub job_workflow_ref: Option<String>,
    #[serde(default, deserialize_with = "string_like")]
    pub workflow_ref: Option<String>,
    #[serde(default, deserialize_with = "string_like")]
    pub run_id: Option<String>,
    #[serde(default, deserialize_with = "string_like")]
    pub run_attempt: Option<String>,
    #[serde(default, deserialize_with = "string_like")]
    pub runner_environment: Option<String>,
    #[serde(default, deserialize_with = "string_like")]
    pub actor: Option<String>,
}

/// A string, or a number given as one; anything else (objects, arrays) counts as absent.
fn string_like<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

impl WorkflowClaims {
    /// The owner half of `repository`, lowercased (how registration policies are looked up).
    pub fn owner(&self) -> Option<String> {
        let repository = self.repository.as_deref()?;
        let (owner, _) = repository.split_once('/')?;
        Some(owner.to_ascii_lowercase())
    }

    /// The branch name when the workflow runs for a branch.
    fn branch(&self) -> Option<&str> {
        self.git_ref.as_deref()?.strip_prefix("refs/heads/")
    }
}

/// The first claim that did not match a policy, and why: what the refusal explains.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub claim: &'static str,
    /// What the policy expects, as the policy says it.
    pub expected: String,
    /// What the token carried, if anything.
    pub actual: Option<String>,
    #[serde(skip)]
    repository: String,
    #[serde(skip)]
    hint: Option<&'static str>,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (claim, repository, expected) = (self.claim, &self.repository, &self.expected);
        match &self.actual {
            Some(actual) => write!(
                f,
                "{claim} {actual} does not match the trust policy for {repository} ({expected})"
            )?,
            None => write!(
                f,
                "the token has no {claim}; the trust policy for {repository} expects {expected}"
            )?,
        }
        if let Some(hint) = self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl TrustPolicy {
    /// A new policy from a creation request, every field validated except what needs the store
    /// (that the agent is the organization's, that the scopes are among its capabilities).
    pub fn create(
        new: NewTrustPolicy,
        id: String,
        org_id: &str,
        now: i64,
    ) -> Result<TrustPolicy, Invalid> {
        let provider = new
            .provider
            .ok_or_else(|| Invalid::new("provider", "is required (`github`)"))?;
        if !PROVIDERS.contains(&provider.as_str()) {
            return Err(Invalid::new(
                "provider",
                format!("`{provider}` is not a supported provider (`github`)"),
            ));
        }
        let repository = valid_repository(
            new.repository
                .ok_or_else(|| Invalid::new("repository", "is required (`owner/name`)"))?,
        )?;
        if let Some(repository_id) = &new.repository_id {
            if is_pattern(&repository) {
                return Err(Invalid::new(
                    "repository_id",
                    "pins one repository; name it exactly in `repository`",
                ));
            }
            valid_numeric_id("repository_id", repository_id)?;
        }
        let branch = new
            .branch
            .map(|b| valid_pattern("branch", b, true))
            .transpose()?;
        let environment = new
            .environment
            .map(|e| valid_literal("environment", e))
            .transpose()?;
        let job_workflow_ref = new
            .job_workflow_ref
            .map(valid_job_workflow_ref)
            .transpose()?;
        let event_names = new.event_names.map(valid_event_names).transpose()?;
        let runner_environment = new
            .runner_environment
            .map(|r| valid_literal("runner_environment", r))
            .transpose()?;
        // An agent policy's scopes are checked against the agent's capabilities (which may hold
        // management scopes an admin allowed); a registration policy never hands one out.
        let allow_management_scopes = !new.allow_registration;
        let scopes = new
            .scopes
            .map(|s| {
                valid_capabilities(s, &[], allow_management_scopes)
                    .map_err(|e| Invalid::new("scopes", e.reason.to_string()))
            })
            .transpose()?;
        let (agent_id, max_registrations) = match (new.agent_id, new.allow_registration) {
            (Some(_), true) => {
                return Err(Invalid::new(
                    "allow_registration",
                    "a policy either names an agent (`agent_id`) or allows registration, not both",
                ))
            }
            (None, false) => {
                return Err(Invalid::new(
                    "agent_id",
                    "name the agent a matching workflow acts as, or set `allow_registration`",
                ))
            }
            (Some(agent_id), false) => {
                if new.max_registrations.is_some() {
                    return Err(Invalid::new(
                        "max_registrations",
                        "applies only to policies with `allow_registration`",
                    ));
                }
                if !is_id(&agent_id) {
                    return Err(Invalid::new("agent_id", "agent not found"));
                }
                (Some(agent_id), None)
            }
            (None, true) => {
                let max = new.max_registrations.unwrap_or(DEFAULT_MAX_REGISTRATIONS);
                if !(1..=MAX_MAX_REGISTRATIONS).contains(&max) {
                    return Err(Invalid::new(
                        "max_registrations",
                        format!("must be from 1 to {MAX_MAX_REGISTRATIONS}"),
                    ));
                }
                if let Some(admin) = scopes
                    .iter()
                    .flatten()
                    .find(|s| scopes::ADMIN.contains(&s.as_str()))
                {
                    return Err(Invalid::new(
                        "scopes",
                        format!(
                            "`{admin}` manages the organization; registered agents cannot be given it"
                        ),
                    ));
                }
                (None, Some(max))
            }
        };
        Ok(TrustPolicy {
            id,
            org_id: org_id.to_owned(),
            provider,
            repository,
            repository_id: new.repository_id,
            repository_owner_id: None,
            branch,
            environment,
            job_workflow_ref,
            event_names,
            runner_environment,
            allow_registration: agent_id.is_none(),
            agent_id,
            max_registrations,
            scopes,
            registered_agents: None,
            created_at: now,
            updated_at: now,
        })
    }

    /// The owner half of `repository`, lowercased.
    pub fn repository_owner(&self) -> String {
        self.repository
            .split_once('/')
            .map(|(owner, _)| owner.to_ascii_lowercase())
            .unwrap_or_default()
    }

    /// Whether the policy names a repository pattern rather than one repository.
    pub fn is_repository_pattern(&self) -> bool {
        is_pattern(&self.repository)
    }

    /// Whether the workflow's repository is the one (or one of those) the policy names: the first
    /// test, and the only one whose failure a workflow of another repository learns nothing from.
    pub fn names_repository(&self, claims: &WorkflowClaims) -> bool {
        claims.repository.as_deref().is_some_and(|repository| {
            glob_matches(
                &self.repository.to_ascii_lowercase(),
                &repository.to_ascii_lowercase(),
            )
        })
    }

    /// Matches the workflow's claims one by one, never the `sub` string as a whole (so GitHub's
    /// default and customised subject formats both work); the first that fails is the answer.
    pub fn check(&self, claims: &WorkflowClaims) -> Result<(), Mismatch> {
        let mismatch = |claim: &'static str, expected: &str, actual: Option<&str>| Mismatch {
            claim,
            expected: expected.to_owned(),
            actual: actual.map(str::to_owned),
            repository: self.repository.clone(),
            hint: None,
        };
        if !self.names_repository(claims) {
            return Err(mismatch(
                "repository",
                &self.repository,
                claims.repository.as_deref(),
            ));
        }
        if let Some(expected) = &self.repository_id {
            if claims.repository_id.as_deref() != Some(expected) {
                return Err(Mismatch {
                    hint: Some("a re-created repository needs a new trust policy"),
                    ..mismatch("repository_id", expected, claims.repository_id.as_deref())
                });
            }
        }
        if let Some(expected) = &self.repository_owner_id {
            if claims.repository_owner_id.as_deref() != Some(expected) {
                return Err(Mismatch {
                    hint: Some("a re-created or renamed owner needs a new trust policy"),
                    ..mismatch(
                        "repository_owner_id",
                        expected,
                        claims.repository_owner_id.as_deref(),
                    )
                });
            }
        }
        if let Some(branch) = &self.branch {
            let matches = claims.branch().is_some_and(|b| glob_matches(branch, b));
            if !matches {
                let expected = format!("refs/heads/{branch}");
                return Err(mismatch("ref", &expected, claims.git_ref.as_deref()));
            }
        }
        if let Some(expected) = &self.environment {
            if claims.environment.as_deref() != Some(expected) {
                return Err(mismatch(
                    "environment",
                    expected,
                    claims.environment.as_deref(),
                ));
            }
        }
        if let Some(expected) = &self.job_workflow_ref {
            if claims.job_workflow_ref.as_deref() != Some(expected) {
                return Err(mismatch(
                    "job_workflow_ref",
                    expected,
                    claims.job_workflow_ref.as_deref(),
                ));
            }
        }
        // GitHub's event names are lowercase, as policies store them: a differently cased claim
        // must not slip past the untrusted ones, nor fail a listed one.
        let event = claims.event_name.as_deref().map(str::to_ascii_lowercase);
        let event = event.as_deref();
        match &self.event_names {
            Some(allowed) => {
                if !event.is_some_and(|e| allowed.iter().any(|a| a == e)) {
                    return Err(mismatch("event_name", &allowed.join(", "), event));
                }
            }
            None => {
                // Without the claim the event cannot be told apart from an untrusted one.
                if event.is_none() {
                    return Err(mismatch(
                        "event_name",
                        "any event but pull_request_target, issue_comment and workflow_run",
                        None,
                    ));
                }
                if let Some(untrusted) = event.filter(|e| UNTRUSTED_EVENTS.contains(e)) {
                    return Err(Mismatch {
                        hint: Some(
                            "it runs code from outside the repository with the repository's \
                             identity; list it in the policy's event_names to allow it",
                        ),
                        ..mismatch(
                            "event_name",
                            "any event but pull_request_target, issue_comment and workflow_run",
                            Some(untrusted),
                        )
                    });
                }
            }
        }
        if let Some(expected) = &self.runner_environment {
            if claims.runner_environment.as_deref() != Some(expected) {
                return Err(mismatch(
                    "runner_environment",
                    expected,
                    claims.runner_environment.as_deref(),
                ));
            }
        }
        Ok(())
    }

    /// The scopes a token for an agent with `capabilities` may carry through this policy.
    pub fn allowed_scopes(&self, capabilities: &[String]) -> Vec<String> {
        match &self.scopes {
            Some(scopes) => capabilities
                .iter()
                .filter(|c| scopes.contains(c))
                .cloned()
                .collect(),
            None => capabilities.to_vec(),
        }
    }
}

fn valid_numeric_id(field: &str, id: &str) -> Result<(), Invalid> {
    if id.is_empty() || id.len() > 20 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Invalid::new(
            field,
            "must be the numeric id GitHub assigned, e.g. \"123456789\"",
        ));
    }
    Ok(())
}

/// `owner/name` or `owner/<pattern>`: the owner is always literal, so no pattern reaches beyond
/// one owner.
fn valid_repository(repository: String) -> Result<String, Invalid> {
    let field = "repository";
    let (owner, name) = repository
        .split_once('/')
        .ok_or_else(|| Invalid::new(field, "must be `owner/name`"))?;
    let owner_ok = !owner.is_empty()
        && owner.len() <= MAX_OWNER_CHARS
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if owner.contains('*') || (name.chars().all(|c| c == '*') && owner.is_empty()) {
        return Err(Invalid::new(
            field,
            "the owner must be named exactly: a pattern may only follow `owner/`",
        ));
    }
    if !owner_ok {
        return Err(Invalid::new(
            field,
            format!("owner `{owner}` is not a GitHub user or organization name"),
        ));
    }
    let name_ok = !name.is_empty()
        && name.len() <= MAX_REPOSITORY_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*'))
        && !name.contains("**");
    if !name_ok {
        return Err(Invalid::new(
            field,
            format!("`{name}` is not a repository name or pattern (letters, digits, `-`, `_`, `.`, `*`)"),
        ));
    }
    Ok(repository)
}

fn is_pattern(text: &str) -> bool {
    text.contains('*')
}

/// A literal claim value (environment, runner environment): non-empty, printable, bounded.
fn valid_literal(field: &str, value: String) -> Result<String, Invalid> {
    if value.trim().is_empty()
        || value.chars().count() > MAX_PATTERN_CHARS
        || value.chars().any(char::is_control)
    {
        return Err(Invalid::new(
            field,
            format!("must be 1 to {MAX_PATTERN_CHARS} printable characters"),
        ));
    }
    if value.contains('*') {
        return Err(Invalid::new(
            field,
            "is matched exactly; patterns are not accepted",
        ));
    }
    Ok(value)
}

/// `owner/repo/.github/workflows/file.yml@ref`, exactly.
fn valid_job_workflow_ref(value: String) -> Result<String, Invalid> {
    let field = "job_workflow_ref";
    let value = valid_literal(field, value)?;
    let shaped = value
        .split_once('@')
        .is_some_and(|(path, r)| path.contains("/.github/workflows/") && !r.is_empty());
    if !shaped {
        return Err(Invalid::new(
            field,
            "must be `owner/repo/.github/workflows/file.yml@refs/heads/branch`",
        ));
    }
    Ok(value)
}

fn valid_event_names(names: Vec<String>) -> Result<Vec<String>, Invalid> {
    if names.is_empty() || names.len() > MAX_EVENT_NAMES {
        return Err(Invalid::new(
            "event_names",
            format!("list 1 to {MAX_EVENT_NAMES} events, or omit it"),
        ));
    }
    let mut unique: Vec<String> = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        if !ok {
            return Err(Invalid::new(
                &format!("event_names[{i}]"),
                "must be a GitHub event name such as `push` or `workflow_dispatch`",
            ));
        }
        if !unique.contains(&name) {
            unique.push(name);
        }
    }
    Ok(unique)
}

/// A branch name or an anchored pattern: `*` matches within one path segment, `**` across them.
/// The pattern must start with a literal character (`release/*`, not `*-release`): a leading
/// wildcard is unanchored, and "any branch" is said by omitting the field.
fn valid_pattern(field: &str, pattern: String, ref_like: bool) -> Result<String, Invalid> {
    if pattern.is_empty() || pattern.chars().count() > MAX_PATTERN_CHARS {
        return Err(Invalid::new(
            field,
            format!("must be 1 to {MAX_PATTERN_CHARS} characters"),
        ));
    }
    if pattern.starts_with('*') {
        return Err(Invalid::new(
            field,
            "an unanchored pattern is not accepted: start with a literal (e.g. `release/*`), or omit the field to allow any value",
        ));
    }
    if pattern.starts_with("refs/") {
        return Err(Invalid::new(
            field,
            "name the branch without `refs/heads/` (e.g. `main`)",
        ));
    }
    // git's own rules for ref names (git check-ref-format), plus `*` only as `*` or `**`.
    let forbidden = |c: char| c.is_whitespace() || c.is_control() || "~^:?[\\{}".contains(c);
    let invalid = pattern.chars().any(forbidden)
        || pattern.contains("..")
        || pattern.contains("//")
        || pattern.contains("***")
        || pattern.ends_with('/')
        || pattern.ends_with(".lock")
        || (ref_like && pattern.contains("@{"));
    if invalid {
        return Err(Invalid::new(
            field,
            format!("`{pattern}` is not a valid branch name or pattern"),
        ));
    }
    Ok(pattern)
}

/// Whole-string match of an anchored glob: `**` matches any run of characters, `*` any run
/// without `/`, everything else itself. Dynamic programming: linear in pattern × text.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Token {
        Char(char),
        Star,
        DoubleStar,
    }
    let mut tokens = Vec::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '*' {
            if chars.get(i + 1) == Some(&'*') {
                tokens.push(Token::DoubleStar);
                i += 2;
            } else {
                tokens.push(Token::Star);
                i += 1;
            }
        } else {
            tokens.push(Token::Char(chars[i]));
            i += 1;
        }
    }
    let text: Vec<char> = text.chars().collect();
    // matched[j]: the tokens so far match text[..j].
    let mut matched = vec![false; text.len() + 1];
    matched[0] = true;
    for token in tokens {
        let mut next = vec![false; text.len() + 1];
        match token {
            Token::Char(c) => {
                for j in 0..text.len() {
                    next[j + 1] = matched[j] && text[j] == c;
                }
            }
            Token::Star | Token::DoubleStar => {
                next[0] = matched[0];
                for j in 0..text.len() {
                    let crosses = token == Token::Star && text[j] == '/';
                    next[j + 1] = matched[j + 1] || (next[j] && !crosses);
                }
            }
        }
        matched = next;
    }
    matched[text.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(body: &str) -> Result<TrustPolicy, Invalid> {
        let new: NewTrustPolicy = serde_json::from_str(body).unwrap();
        TrustPolicy::create(new, "p".into(), "o", 1)
    }

    fn claims() -> WorkflowClaims {
        serde_json::from_value(serde_json::json!({
            "sub": "repo:octo/app:ref:refs/heads/main",
            "repository": "octo/app",
            "repository_id": "111",
            "repository_owner": "octo",
            "repository_owner_id": 7,
            "ref": "refs/heads/main",
            "ref_type": "branch",
            "environment": "prod",
            "event_name": "push",
            "job_workflow_ref": "octo/app/.github/workflows/ci.yml@refs/heads/main",
            "runner_environment": "github-hosted",
        }))
        .unwrap()
    }

    const AGENT: &str = "00000000-0000-4000-8000-000000000001";

    #[test]
    fn globs_are_anchored_and_segment_aware() {
        assert!(glob_matches("main", "main"));
        assert!(!glob_matches("main", "main2"));
        assert!(glob_matches("release/*", "release/1.0"));
        assert!(!glob_matches("release/*", "release/1.0/hotfix"));
        assert!(glob_matches("release/**", "release/1.0/hotfix"));
        assert!(glob_matches("app-*", "app-web"));
        assert!(!glob_matches("app-*", "xapp-web"));
        assert!(glob_matches("a*b*c", "aXbYc"));
        assert!(!glob_matches("a*b*c", "aXbY"));
        // Long texts cost linear time, not exponential.
        let text = "a".repeat(2000);
        assert!(!glob_matches("a*a*a*a*a*a*a*a*b", &text));
    }

    #[test]
    fn creation_refuses_what_would_trust_too_much() {
        let bad = [
            (
                r#"{"provider":"github","repository":"*","agent_id":"A"}"#,
                "repository",
            ),
            (
                r#"{"provider":"github","repository":"*/*","agent_id":"A"}"#,
                "repository",
            ),
            (
                r#"{"provider":"github","repository":"oc*/app","agent_id":"A"}"#,
                "repository",
            ),
            (
                r#"{"provider":"github","repository":"octo","agent_id":"A"}"#,
                "repository",
            ),
            (
                r#"{"provider":"github","repository":"octo/app","branch":"*","agent_id":"A"}"#,
                "branch",
            ),
            (
                r#"{"provider":"github","repository":"octo/app","branch":"*-rel","agent_id":"A"}"#,
                "branch",
            ),
            (
                r#"{"provider":"github","repository":"octo/app","branch":"a..b","agent_id":"A"}"#,
                "branch",
            ),
            (
                r#"{"provider":"github","repository":"octo/app","branch":"a b","agent_id":"A"}"#,
                "branch",
            ),
            (
                r#"{"provider":"github","repository":"octo/app","branch":"[ab]","agent_id":"A"}"#,
                "branch",
            ),
            (
                r#"{"provider":"gitlab","repository":"octo/app","agent_id":"A"}"#,
                "provider",
            ),
            (
                r#"{"provider":"github","repository":"octo/*","repository_id":"1","agent_id":"A"}"#,
                "repository_id",
            ),
            (
                r#"{"provider":"github","repository":"octo/app","repository_id":"x1","agent_id":"A"}"#,
                "repository_id",
            ),
            (
                r#"{"provider":"github","repository":"octo/app"}"#,
                "agent_id",
            ),
            (
                r#"{"provider":"github","repository":"octo/app","agent_id":"A","allow_registration":true}"#,
                "allow_registration",
            ),
            (
                r#"{"provider":"github","repository":"octo/app","allow_registration":true,"scopes":["agents:write"]}"#,
                "scopes",
            ),
            (
                r#"{"provider":"github","repository":"octo/app","allow_registration":true,"max_registrations":0}"#,
                "max_registrations",
            ),
            (
                r#"{"provider":"github","repository":"octo/app","agent_id":"A","event_names":[]}"#,
                "event_names",
            ),
            (
                r#"{"provider":"github","repository":"octo/app","agent_id":"A","environment":"pr*d"}"#,
                "environment",
            ),
        ];
        for (body, field) in bad {
            let body = body.replace("\"A\"", &format!("\"{AGENT}\""));
            let err = new(&body).unwrap_err();
            assert_eq!(err.field, field, "{body}: {err}");
        }
        let ok = new(&format!(
            r#"{{"provider":"github","repository":"octo/app","branch":"release/*","agent_id":"{AGENT}"}}"#
        ))
        .unwrap();
        assert_eq!(ok.agent_id.as_deref(), Some(AGENT));
        assert!(!ok.allow_registration);
        let registration =
            new(r#"{"provider":"github","repository":"octo/*","allow_registration":true}"#)
                .unwrap();
        assert_eq!(
            registration.max_registrations,
            Some(DEFAULT_MAX_REGISTRATIONS)
        );
        assert!(registration.is_repository_pattern());
    }

    fn policy(extra: &str) -> TrustPolicy {
        new(&format!(
            r#"{{"provider":"github","repository":"octo/app","agent_id":"{AGENT}"{extra}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn each_claim_can_refuse_and_says_why() {
        assert_eq!(policy("").check(&claims()), Ok(()));
        let cases: Vec<(&str, WorkflowClaims, &str)> = vec![
            (
                "",
                WorkflowClaims {
                    repository: Some("octo/other".into()),
                    ..claims()
                },
                "repository",
            ),
            (r#","repository_id":"999""#, claims(), "repository_id"),
            (r#","branch":"release/*""#, claims(), "ref"),
            (
                "",
                WorkflowClaims {
                    event_name: Some("pull_request_target".into()),
                    ..claims()
                },
                "event_name",
            ),
            (r#","environment":"staging""#, claims(), "environment"),
            (
                r#","environment":"prod""#,
                WorkflowClaims {
                    environment: None,
                    ..claims()
                },
                "environment",
            ),
            (
                r#","job_workflow_ref":"octo/app/.github/workflows/deploy.yml@refs/heads/main""#,
                claims(),
                "job_workflow_ref",
            ),
            (
                r#","event_names":["workflow_dispatch"]"#,
                claims(),
                "event_name",
            ),
            // A missing claim is a mismatch, not a pass; case does not hide an untrusted event.
            (
                "",
                WorkflowClaims {
                    event_name: None,
                    ..claims()
                },
                "event_name",
            ),
            (
                "",
                WorkflowClaims {
                    event_name: Some("Pull_Request_Target".into()),
                    ..claims()
                },
                "event_name",
            ),
            (
                r#","runner_environment":"self-hosted""#,
                claims(),
                "runner_environment",
            ),
        ];
        for (extra, claims, claim) in cases {
            let err = policy(extra).check(&claims).unwrap_err();
            assert_eq!(err.claim, claim, "{extra}: {err}");
        }
        let err = policy(r#","repository_id":"111""#)
            .check(&WorkflowClaims {
                repository_id: Some("999".into()),
                ..claims()
            })
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "repository_id 999 does not match the trust policy for octo/app (111); a re-created repository needs a new trust policy"
        );
        let mut pinned = policy("");
        pinned.repository_owner_id = Some("8".into());
        assert_eq!(
            pinned.check(&claims()).unwrap_err().claim,
            "repository_owner_id"
        );
        // Listed explicitly, an untrusted event is allowed; a tag is not a branch.
        let listed = policy(r#","event_names":["pull_request_target"]"#);
        let event = WorkflowClaims {
            event_name: Some("pull_request_target".into()),
            ..claims()
        };
        assert_eq!(listed.check(&event), Ok(()));
        let shouted = WorkflowClaims {
            event_name: Some("PULL_REQUEST_TARGET".into()),
            ..claims()
        };
        assert_eq!(listed.check(&shouted), Ok(()));
        let tag = WorkflowClaims {
            git_ref: Some("refs/tags/main".into()),
            ..claims()
        };
        assert_eq!(
            policy(r#","branch":"main""#).check(&tag).unwrap_err().claim,
            "ref"
        );
        // Repository names compare without regard to case, as GitHub's do.
        let upper = WorkflowClaims {
            repository: Some("Octo/App".into()),
            ..claims()
        };
        assert_eq!(policy("").check(&upper), Ok(()));
    }

    #[test]
    fn scopes_narrow_the_agents_capabilities() {
        let caps = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(policy("").allowed_scopes(&caps), caps);
        assert_eq!(
            policy(r#","scopes":["b","c"]"#).allowed_scopes(&caps),
            vec!["b".to_owned()]
        );
    }
}
