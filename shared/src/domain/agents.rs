//! Agents as the domain sees them: identity record, lifecycle states, and the validation of what a
//! caller may set.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::domain::scopes;
use crate::domain::time::{optional_timestamp, timestamp};
use crate::domain::validate::{bounded_text, is_invisible_or_bidi, not_null, Invalid};

const MAX_NAME_CHARS: usize = 200;
const MAX_EMAIL_CHARS: usize = 254;
const MAX_AGENT_TYPE_CHARS: usize = 64;
const MAX_VERSION_CHARS: usize = 64;
const MAX_OWNER_CHARS: usize = 200;
const MAX_CAPABILITIES: usize = 100;
const MAX_CAPABILITY_CHARS: usize = 128;
/// Metadata is descriptive, not a document store; the cap keeps rows and list pages small.
pub const MAX_METADATA_BYTES: usize = 8 * 1024;

/// Where an agent runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentEnv {
    #[default]
    Development,
    Staging,
    Production,
}

impl DeploymentEnv {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentEnv::Development => "development",
            DeploymentEnv::Staging => "staging",
            DeploymentEnv::Production => "production",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Development, Self::Staging, Self::Production]
            .into_iter()
            .find(|v| v.as_str() == text)
    }
}

/// Whether the public marketplace lists the agent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    #[default]
    Private,
    Public,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Public => "public",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Private, Self::Public]
            .into_iter()
            .find(|v| v.as_str() == text)
    }
}

/// `decommissioned` is terminal; the schema refuses to leave it too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Active,
    Suspended,
    Decommissioned,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Active => "active",
            AgentStatus::Suspended => "suspended",
            AgentStatus::Decommissioned => "decommissioned",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Active, Self::Suspended, Self::Decommissioned]
            .into_iter()
            .find(|v| v.as_str() == text)
    }
}

/// An agent's identity record. Timestamps are Unix milliseconds, serialized as RFC 3339.
#[derive(Clone, Debug, Serialize)]
pub struct Agent {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub email: Option<String>,
    pub agent_type: String,
    pub version: Option<String>,
    pub capabilities: Vec<String>,
    pub owner: Option<String>,
    pub deployment_env: DeploymentEnv,
    pub metadata: Map<String, Value>,
    pub visibility: Visibility,
    pub status: AgentStatus,
    #[serde(serialize_with = "timestamp")]
    pub created_at: i64,
    #[serde(serialize_with = "timestamp")]
    pub updated_at: i64,
    #[serde(serialize_with = "optional_timestamp")]
    pub last_auth_at: Option<i64>,
}

/// Body of `POST /v1/agents`. Required fields are optional here so a missing one is reported by
/// name rather than as a malformed body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub agent_type: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub deployment_env: DeploymentEnv,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub visibility: Visibility,
    /// Must be `true` for `capabilities` to include management scopes (see
    /// [`valid_capabilities`]), so no agent becomes an administrator by accident.
    #[serde(default)]
    pub allow_management_scopes: bool,
}

/// Body of `PATCH /v1/agents/{id}`: the outer `Option` is "sent", the inner one is JSON `null`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentPatch {
    #[serde(default, deserialize_with = "sent")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "sent")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "sent")]
    pub agent_type: Option<Option<String>>,
    #[serde(default, deserialize_with = "sent")]
    pub version: Option<Option<String>>,
    #[serde(default, deserialize_with = "sent")]
    pub capabilities: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "sent")]
    pub owner: Option<Option<String>>,
    #[serde(default, deserialize_with = "sent")]
    pub deployment_env: Option<Option<DeploymentEnv>>,
    #[serde(default, deserialize_with = "sent")]
    pub metadata: Option<Option<Map<String, Value>>>,
    #[serde(default, deserialize_with = "sent")]
    pub visibility: Option<Option<Visibility>>,
    #[serde(default, deserialize_with = "sent")]
    pub status: Option<Option<AgentStatus>>,
    /// Must be `true` for `capabilities` to add management scopes the agent does not hold yet.
    #[serde(default)]
    pub allow_management_scopes: bool,
}

/// Distinguishes a field sent as `null` from one not sent at all.
fn sent<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Query of `GET /v1/agents`. There is deliberately no organization parameter.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub owner: Option<String>,
    pub agent_type: Option<String>,
    pub status: Option<AgentStatus>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Shown in the public marketplace, so it must read as what it is: no bidirectional controls or
/// invisible characters.
fn valid_name(name: String) -> Result<String, Invalid> {
    let name = bounded_text("name", name, MAX_NAME_CHARS)?;
    if let Some(c) = name.chars().find(|c| is_invisible_or_bidi(*c)) {
        return Err(Invalid::new(
            "name",
            format!(
                "must not contain invisible or bidirectional control characters (U+{:04X})",
                u32::from(c)
            ),
        ));
    }
    Ok(name)
}

/// A deliberately basic check (one `@`, a dotted domain, no spaces); stored lowercased and in
/// Unicode NFC so uniqueness depends neither on letter case nor on how an accent was typed
/// (`café` precomposed or as `e` and a combining accent).
fn valid_email(email: String) -> Result<String, Invalid> {
    let invalid = || Invalid::new("email", "must be an email address such as bot@example.com");
    if email.len() > MAX_EMAIL_CHARS || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let domain_ok = !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with(['.', '-'])
        && !domain.ends_with(['.', '-'])
        && !domain.contains("..");
    if local.is_empty() || !domain_ok {
        return Err(invalid());
    }
    let lowered = email.to_lowercase();
    Ok(icu_normalizer::ComposingNormalizerBorrowed::new_nfc()
        .normalize(&lowered)
        .into_owned())
}

fn valid_agent_type(agent_type: String) -> Result<String, Invalid> {
    let ok_chars = agent_type
        .bytes()
        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-'));
    if agent_type.is_empty() || agent_type.len() > MAX_AGENT_TYPE_CHARS || !ok_chars {
        return Err(Invalid::new(
            "agent_type",
            format!("must be 1 to {MAX_AGENT_TYPE_CHARS} characters of a-z, 0-9, `_`, `.` and `-`"),
        ));
    }
    Ok(agent_type)
}

/// Capabilities are the scopes an agent may be granted, so each must be a valid scope token.
/// Management scopes (`agents:*`, `audit:*`, `webhooks:*`, ...; `domain::scopes::is_management`)
/// are reserved: one the agent does not already hold (`held`) is accepted only when the request
/// allows them explicitly, and the organization's own (`orgs:*`) never.
pub fn valid_capabilities(
    capabilities: Vec<String>,
    held: &[String],
    allow_management_scopes: bool,
) -> Result<Vec<String>, Invalid> {
    let mut unique: Vec<String> = Vec::with_capacity(capabilities.len());
    for (i, capability) in capabilities.into_iter().enumerate() {
        let field = || format!("capabilities[{i}]");
        if capability.is_empty()
            || capability.len() > MAX_CAPABILITY_CHARS
            || !capability.bytes().all(scopes::is_scope_char)
        {
            return Err(Invalid::new(
                &field(),
                format!(
                    "must be an OAuth scope token: 1 to {MAX_CAPABILITY_CHARS} printable ASCII characters without spaces, quotes or backslashes"
                ),
            ));
        }
        if scopes::is_admin_only(&capability) {
            return Err(Invalid::new(
                &field(),
                format!("`{capability}` manages the organization's admin credentials; only admin credentials hold it"),
            ));
        }
        let added = !held.contains(&capability);
        if scopes::is_management(&capability) && added && !allow_management_scopes {
            return Err(Invalid::new(
                &field(),
                format!(
                    "`{capability}` is a management scope: it would make the agent an administrator; send \"allow_management_scopes\": true if that is intended"
                ),
            ));
        }
        if !unique.contains(&capability) {
            unique.push(capability);
        }
    }
    if unique.len() > MAX_CAPABILITIES {
        return Err(Invalid::new(
            "capabilities",
            format!("at most {MAX_CAPABILITIES} capabilities"),
        ));
    }
    Ok(unique)
}

fn valid_metadata(metadata: Map<String, Value>) -> Result<Map<String, Value>, Invalid> {
    if serialize_metadata(&metadata).len() > MAX_METADATA_BYTES {
        return Err(Invalid::new(
            "metadata",
            format!("must serialize to at most {MAX_METADATA_BYTES} bytes"),
        ));
    }
    Ok(metadata)
}

pub fn serialize_metadata(metadata: &Map<String, Value>) -> String {
    Value::Object(metadata.clone()).to_string()
}

pub fn serialize_capabilities(capabilities: &[String]) -> String {
    Value::from(capabilities.to_vec()).to_string()
}

impl Agent {
    /// A new active agent from a registration request, every field validated.
    pub fn register(new: NewAgent, id: String, org_id: &str, now: i64) -> Result<Agent, Invalid> {
        Ok(Agent {
            id,
            org_id: org_id.to_owned(),
            name: valid_name(
                new.name
                    .ok_or_else(|| Invalid::new("name", "is required"))?,
            )?,
            email: new.email.map(valid_email).transpose()?,
            agent_type: valid_agent_type(
                new.agent_type
                    .ok_or_else(|| Invalid::new("agent_type", "is required"))?,
            )?,
            version: new
                .version
                .map(|v| bounded_text("version", v, MAX_VERSION_CHARS))
                .transpose()?,
            capabilities: valid_capabilities(new.capabilities, &[], new.allow_management_scopes)?,
            owner: new
                .owner
                .map(|o| bounded_text("owner", o, MAX_OWNER_CHARS))
                .transpose()?,
            deployment_env: new.deployment_env,
            metadata: valid_metadata(new.metadata)?,
            visibility: new.visibility,
            status: AgentStatus::Active,
            created_at: now,
            updated_at: now,
            last_auth_at: None,
        })
    }

    /// The management scopes among this agent's capabilities that `before` did not hold.
    pub fn added_management_scopes<'a>(&'a self, before: &'a [String]) -> Vec<&'a str> {
        self.capabilities
            .iter()
            .filter(|c| scopes::is_management(c) && !before.contains(c))
            .map(String::as_str)
            .collect()
    }

    /// Whether this agent lost a capability `before` had: its live tokens may carry it.
    pub fn lost_capabilities(&self, before: &[String]) -> bool {
        before.iter().any(|c| !self.capabilities.contains(c))
    }

    /// The agent with `patch` applied (validated), and the names of the fields it changes.
    pub fn patched(&self, patch: AgentPatch) -> Result<(Agent, Vec<&'static str>), Invalid> {
        let mut next = self.clone();
        if let Some(name) = patch.name {
            next.name = valid_name(not_null("name", name)?)?;
        }
        if let Some(email) = patch.email {
            next.email = email.map(valid_email).transpose()?;
        }
        if let Some(agent_type) = patch.agent_type {
            next.agent_type = valid_agent_type(not_null("agent_type", agent_type)?)?;
        }
        if let Some(version) = patch.version {
            next.version = version
                .map(|v| bounded_text("version", v, MAX_VERSION_CHARS))
                .transpose()?;
        }
        if let Some(capabilities) = patch.capabilities {
            next.capabilities = valid_capabilities(
                not_null("capabilities", capabilities)?,
                &self.capabilities,
                patch.allow_management_scopes,
            )?;
        }
        if let Some(owner) = patch.owner {
            next.owner = owner
                .map(|o| bounded_text("owner", o, MAX_OWNER_CHARS))
                .transpose()?;
        }
        if let Some(env) = patch.deployment_env {
            next.deployment_env = not_null("deployment_env", env)?;
        }
        if let Some(metadata) = patch.metadata {
            next.metadata = valid_metadata(not_null("metadata", metadata)?)?;
        }
        if let Some(visibility) = patch.visibility {
            next.visibility = not_null("visibility", visibility)?;
        }
        if let Some(status) = patch.status {
            next.status = match not_null("status", status)? {
                AgentStatus::Decommissioned => {
                    return Err(Invalid::new(
                        "status",
                        "cannot be set to decommissioned; use DELETE /v1/agents/{id}",
                    ));
                }
                other => other,
            };
        }
        let mut changed = Vec::new();
        let fields: [(&'static str, bool); 9] = [
            ("name", next.name != self.name),
            ("email", next.email != self.email),
            ("agent_type", next.agent_type != self.agent_type),
            ("version", next.version != self.version),
            ("capabilities", next.capabilities != self.capabilities),
            ("owner", next.owner != self.owner),
            ("deployment_env", next.deployment_env != self.deployment_env),
            ("metadata", next.metadata != self.metadata),
            ("visibility", next.visibility != self.visibility),
        ];
        for (field, differs) in fields {
            if differs {
                changed.push(field);
            }
        }
        Ok((next, changed))
    }
}

impl AgentPatch {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.email.is_none()
            && self.agent_type.is_none()
            && self.version.is_none()
            && self.capabilities.is_none()
            && self.owner.is_none()
            && self.deployment_env.is_none()
            && self.metadata.is_none()
            && self.visibility.is_none()
            && self.status.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> Agent {
        Agent {
            id: "00000000-0000-4000-8000-000000000001".into(),
            org_id: "org".into(),
            name: "bot".into(),
            email: None,
            agent_type: "assistant".into(),
            version: None,
            capabilities: vec![],
            owner: None,
            deployment_env: DeploymentEnv::Development,
            metadata: Map::new(),
            visibility: Visibility::Private,
            status: AgentStatus::Active,
            created_at: 0,
            updated_at: 0,
            last_auth_at: None,
        }
    }

    fn patch(json: &str) -> AgentPatch {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn null_clears_optional_fields_and_absent_fields_stay() {
        let mut with_email = agent();
        with_email.email = Some("a@b.co".into());
        let (next, changed) = with_email.patched(patch(r#"{"email": null}"#)).unwrap();
        assert_eq!(next.email, None);
        assert_eq!(changed, vec!["email"]);
        let (next, changed) = with_email.patched(patch(r#"{"version": "1"}"#)).unwrap();
        assert_eq!(next.email.as_deref(), Some("a@b.co"));
        assert_eq!(changed, vec!["version"]);
    }

    #[test]
    fn required_fields_cannot_be_nulled_and_decommission_needs_delete() {
        for body in [r#"{"name": null}"#, r#"{"capabilities": null}"#] {
            assert!(matches!(agent().patched(patch(body)), Err(Invalid { .. })));
        }
        let err = agent()
            .patched(patch(r#"{"status": "decommissioned"}"#))
            .unwrap_err();
        assert!(matches!(err, Invalid { field, .. } if field == "status"));
    }

    #[test]
    fn capabilities_are_scope_tokens_deduplicated_in_order() {
        let caps =
            valid_capabilities(vec!["b:x".into(), "a".into(), "b:x".into()], &[], false).unwrap();
        assert_eq!(caps, vec!["b:x", "a"]);
        for bad in ["", "two words", "quote\"", "back\\slash", "é"] {
            assert!(
                valid_capabilities(vec![bad.into()], &[], false).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn management_scopes_need_an_explicit_allowance_and_orgs_scopes_never_pass() {
        let write = || vec!["agents:write".to_owned()];
        assert!(valid_capabilities(write(), &[], false).is_err());
        assert_eq!(valid_capabilities(write(), &[], true).unwrap(), write());
        // Keeping one the agent already holds needs no allowance.
        assert_eq!(
            valid_capabilities(write(), &write(), false).unwrap(),
            write()
        );
        for never in ["orgs:write", "orgs:read"] {
            assert!(valid_capabilities(vec![never.into()], &[], true).is_err());
        }
    }

    #[test]
    fn emails_and_agent_types_are_checked() {
        assert_eq!(
            valid_email("Bot@Example.COM".into()).unwrap(),
            "bot@example.com"
        );
        for bad in [
            "bot",
            "@example.com",
            "bot@example",
            "a b@c.d",
            "a@b@c.d",
            "a@.b.c",
        ] {
            assert!(valid_email(bad.into()).is_err(), "{bad}");
        }
        assert!(valid_agent_type("llm.v2-beta_x".into()).is_ok());
        for bad in ["", "Upper", "with space", &"x".repeat(65)] {
            assert!(valid_agent_type(bad.into()).is_err(), "{bad}");
        }
    }
}
