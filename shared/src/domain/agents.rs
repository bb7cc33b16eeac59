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
const MAX_DESCRIPTION_CHARS: usize = 2_000;
const MAX_TAGS: usize = 20;
const MAX_TAG_CHARS: usize = 32;
const MAX_URL_CHARS: usize = 2_048;
const MAX_SKILLS: usize = 32;
const MAX_SKILL_ID_CHARS: usize = 64;
const MAX_SKILL_TAGS: usize = 20;
const MAX_SKILL_TAG_CHARS: usize = 64;
const MAX_SKILL_EXAMPLES: usize = 10;
const MAX_SKILL_EXAMPLE_CHARS: usize = 500;

/// One thing an agent can do, as the A2A specification's `AgentSkill` describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Skill {
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
}

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
    /// What the agent does, in prose; searched and shown in the marketplace.
    pub description: String,
    pub tags: Vec<String>,
    pub homepage_url: Option<String>,
    /// The agent's own A2A endpoint: the `url` of its Agent Card.
    pub a2a_url: Option<String>,
    pub skills: Vec<Skill>,
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
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub homepage_url: Option<String>,
    #[serde(default)]
    pub a2a_url: Option<String>,
    #[serde(default)]
    pub skills: Vec<Skill>,
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
    #[serde(default, deserialize_with = "sent")]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "sent")]
    pub tags: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "sent")]
    pub homepage_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "sent")]
    pub a2a_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "sent")]
    pub skills: Option<Option<Vec<Skill>>>,
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

/// Published prose: shown to others, so no invisible or bidirectional controls; empty clears it.
fn valid_description(description: String) -> Result<String, Invalid> {
    if description.is_empty() {
        return Ok(description);
    }
    let description = bounded_text("description", description, MAX_DESCRIPTION_CHARS)?;
    visible_only("description", description)
}

fn visible_only(field: &str, text: String) -> Result<String, Invalid> {
    match text.chars().find(|c| is_invisible_or_bidi(*c)) {
        Some(c) => Err(Invalid::new(
            field,
            format!(
                "must not contain invisible or bidirectional control characters (U+{:04X})",
                u32::from(c)
            ),
        )),
        None => Ok(text),
    }
}

/// Tags are facets and filters, so they are one spelling each: lowercase ASCII words joined by `-`,
/// deduplicated in order.
fn valid_tags(tags: Vec<String>) -> Result<Vec<String>, Invalid> {
    let mut unique: Vec<String> = Vec::with_capacity(tags.len());
    for (i, tag) in tags.into_iter().enumerate() {
        let ok = !tag.is_empty()
            && tag.len() <= MAX_TAG_CHARS
            && tag
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'));
        if !ok {
            return Err(Invalid::new(
                &format!("tags[{i}]"),
                format!("must be 1 to {MAX_TAG_CHARS} characters of a-z, 0-9 and `-`"),
            ));
        }
        if !unique.contains(&tag) {
            unique.push(tag);
        }
    }
    if unique.len() > MAX_TAGS {
        return Err(Invalid::new("tags", format!("at most {MAX_TAGS} tags")));
    }
    Ok(unique)
}

/// An absolute `https` URL (`http` only for loopback hosts, so local agents can be described),
/// without credentials; kept as sent, since a signed card must carry strings as given.
fn valid_url(field: &str, text: String) -> Result<String, Invalid> {
    let invalid = || {
        Invalid::new(
            field,
            "must be an absolute https URL without credentials (http only for localhost)",
        )
    };
    if text.is_empty() || text.len() > MAX_URL_CHARS || text.chars().any(|c| c.is_whitespace()) {
        return Err(invalid());
    }
    let url = url::Url::parse(&text).map_err(|_| invalid())?;
    let loopback = matches!(
        url.host(),
        Some(url::Host::Domain("localhost"))
            | Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
            | Some(url::Host::Ipv6(std::net::Ipv6Addr::LOCALHOST))
    );
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    if !scheme_ok || url.host().is_none() || !url.username().is_empty() || url.password().is_some()
    {
        return Err(invalid());
    }
    Ok(text)
}

fn valid_skills(skills: Vec<Skill>) -> Result<Vec<Skill>, Invalid> {
    if skills.len() > MAX_SKILLS {
        return Err(Invalid::new(
            "skills",
            format!("at most {MAX_SKILLS} skills"),
        ));
    }
    let mut ids: Vec<String> = Vec::with_capacity(skills.len());
    let mut valid = Vec::with_capacity(skills.len());
    for (i, skill) in skills.into_iter().enumerate() {
        let field = |name: &str| format!("skills[{i}].{name}");
        let id = bounded_text(&field("id"), skill.id, MAX_SKILL_ID_CHARS)?;
        if ids.contains(&id) {
            return Err(Invalid::new(
                &field("id"),
                "must be unique among the skills",
            ));
        }
        ids.push(id.clone());
        let name = visible_only(
            &field("name"),
            bounded_text(&field("name"), skill.name, MAX_NAME_CHARS)?,
        )?;
        let description = visible_only(
            &field("description"),
            bounded_text(
                &field("description"),
                skill.description,
                MAX_DESCRIPTION_CHARS,
            )?,
        )?;
        if skill.tags.len() > MAX_SKILL_TAGS {
            return Err(Invalid::new(
                &field("tags"),
                format!("at most {MAX_SKILL_TAGS} tags"),
            ));
        }
        let tags = skill
            .tags
            .into_iter()
            .enumerate()
            .map(|(j, t)| bounded_text(&field(&format!("tags[{j}]")), t, MAX_SKILL_TAG_CHARS))
            .collect::<Result<_, _>>()?;
        if skill.examples.len() > MAX_SKILL_EXAMPLES {
            return Err(Invalid::new(
                &field("examples"),
                format!("at most {MAX_SKILL_EXAMPLES} examples"),
            ));
        }
        let examples = skill
            .examples
            .into_iter()
            .enumerate()
            .map(|(j, e)| {
                bounded_text(
                    &field(&format!("examples[{j}]")),
                    e,
                    MAX_SKILL_EXAMPLE_CHARS,
                )
            })
            .collect::<Result<_, _>>()?;
        valid.push(Skill {
            id,
            name,
            description,
            tags,
            examples,
        });
    }
    Ok(valid)
}

pub fn serialize_tags(tags: &[String]) -> String {
    Value::from(tags.to_vec()).to_string()
}

pub fn serialize_skills(skills: &[Skill]) -> String {
    serde_json::to_string(skills).unwrap_or_else(|_| "[]".to_owned())
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
            description: valid_description(new.description.unwrap_or_default())?,
            tags: valid_tags(new.tags)?,
            homepage_url: new
                .homepage_url
                .map(|u| valid_url("homepage_url", u))
                .transpose()?,
            a2a_url: new.a2a_url.map(|u| valid_url("a2a_url", u)).transpose()?,
            skills: valid_skills(new.skills)?,
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
        if let Some(description) = patch.description {
            next.description = valid_description(description.unwrap_or_default())?;
        }
        if let Some(tags) = patch.tags {
            next.tags = valid_tags(tags.unwrap_or_default())?;
        }
        if let Some(url) = patch.homepage_url {
            next.homepage_url = url.map(|u| valid_url("homepage_url", u)).transpose()?;
        }
        if let Some(url) = patch.a2a_url {
            next.a2a_url = url.map(|u| valid_url("a2a_url", u)).transpose()?;
        }
        if let Some(skills) = patch.skills {
            next.skills = valid_skills(skills.unwrap_or_default())?;
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
        let fields: [(&'static str, bool); 14] = [
            ("name", next.name != self.name),
            ("email", next.email != self.email),
            ("agent_type", next.agent_type != self.agent_type),
            ("version", next.version != self.version),
            ("capabilities", next.capabilities != self.capabilities),
            ("owner", next.owner != self.owner),
            ("deployment_env", next.deployment_env != self.deployment_env),
            ("metadata", next.metadata != self.metadata),
            ("visibility", next.visibility != self.visibility),
            ("description", next.description != self.description),
            ("tags", next.tags != self.tags),
            ("homepage_url", next.homepage_url != self.homepage_url),
            ("a2a_url", next.a2a_url != self.a2a_url),
            ("skills", next.skills != self.skills),
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
            && self.description.is_none()
            && self.tags.is_none()
            && self.homepage_url.is_none()
            && self.a2a_url.is_none()
            && self.skills.is_none()
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
            description: String::new(),
            tags: vec![],
            homepage_url: None,
            a2a_url: None,
            skills: vec![],
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
    fn published_fields_are_bounded_and_tags_are_one_spelling() {
        assert_eq!(
            valid_tags(vec!["code-review".into(), "i18n".into(), "i18n".into()]).unwrap(),
            vec!["code-review", "i18n"]
        );
        for bad in ["", "Upper", "with space", "under_score", &"x".repeat(33)] {
            assert!(valid_tags(vec![bad.into()]).is_err(), "{bad:?}");
        }
        assert!(valid_tags((0..21).map(|i| format!("t{i}")).collect()).is_err());
        assert!(valid_description("x".repeat(2_000)).is_ok());
        assert!(valid_description("x".repeat(2_001)).is_err());
        assert!(valid_description("a\u{202E}b".into()).is_err());
        for ok in [
            "https://agent.example/a2a",
            "http://localhost:9999/a2a",
            "http://127.0.0.1/",
        ] {
            assert!(valid_url("a2a_url", ok.into()).is_ok(), "{ok}");
        }
        for bad in [
            "http://agent.example/",
            "https://user:pw@agent.example/",
            "ftp://agent.example/",
            "/relative",
            "https://agent.example/ x",
        ] {
            assert!(valid_url("a2a_url", bad.into()).is_err(), "{bad}");
        }
        let skill = |id: &str| Skill {
            id: id.into(),
            name: "Translate".into(),
            description: "Translates text".into(),
            tags: vec!["nlp".into()],
            examples: vec![],
        };
        assert!(valid_skills(vec![skill("a"), skill("b")]).is_ok());
        assert!(valid_skills(vec![skill("a"), skill("a")]).is_err());
        assert!(valid_skills((0..33).map(|i| skill(&i.to_string())).collect()).is_err());
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
