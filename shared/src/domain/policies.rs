//! Organization policies in Cedar: the published schema, checking a policy against it at upload
//! (with the line and column of what is wrong), compiling an organization's set, and deciding one
//! scope of one token request. Policies only narrow: capabilities stay the ceiling.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName,
    EntityUid, Policy, PolicyId, PolicySet, PrincipalConstraint, Request, ResourceConstraint,
    RestrictedExpression, Schema, ValidationMode, Validator,
};
use miette::Diagnostic;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The Cedar schema every organization's policies are validated against (`GET
/// /v1/policies/schema`). Optional facts are empty strings or sets rather than absent, so
/// policies never need `has` checks.
pub const SCHEMA: &str = r#"namespace AgentIdP {
  // An agent asking for a token with its own credential.
  entity Agent = {
    id: String,
    agent_type: String,
    capabilities: Set<String>,
    deployment_env: String,
    owner: String,
    tags: Set<String>,
  };
  // A CI workflow, by the verified claims of its OIDC token (GitHub Actions).
  entity Workflow = {
    repository: String,
    repository_id: String,
    ref: String,
    environment: String,
    event_name: String,
    job_workflow_ref: String,
  };
  // Whom the token is for: the RFC 8707 resource or audience, or the issuer when none is named.
  entity Audience;
  type TokenContext = {
    scope: String,
    grant_type: String,
    client_auth_method: String,
    now: Long,
    client_ip: String,
    key_bound: Bool,
    lifetime_seconds: Long,
  };
  // client_credentials.
  action issue_token appliesTo {
    principal: [Agent, Workflow],
    resource: [Audience],
    context: TokenContext,
  };
  // Token exchange and jwt-bearer (a workflow's OIDC token).
  action exchange_token appliesTo {
    principal: [Agent, Workflow],
    resource: [Audience],
    context: TokenContext,
  };
}
"#;

/// Longest policy text accepted.
pub const MAX_CEDAR_BYTES: usize = 16 * 1024;
/// Longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;
/// Most policies one organization may hold: each is evaluated for every scope of every token.
pub const MAX_POLICIES_PER_ORGANIZATION: i64 = 100;
/// The annotation on a `permit` that caps the lifetime of the tokens it allows.
pub const MAX_LIFETIME_ANNOTATION: &str = "max_lifetime_seconds";
/// The annotation whose text a refusal quotes.
pub const REASON_ANNOTATION: &str = "reason";

fn schema() -> &'static Schema {
    static SCHEMA_PARSED: OnceLock<Schema> = OnceLock::new();
    SCHEMA_PARSED.get_or_init(|| {
        Schema::from_cedarschema_str(SCHEMA)
            .map(|(schema, _warnings)| schema)
            .expect("the published Cedar schema parses")
    })
}

/// A stored policy, as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OrgPolicy {
    pub id: String,
    pub cedar: String,
    pub description: String,
    /// Increases with every change; the policy's `ETag`.
    pub version: i64,
    #[serde(serialize_with = "crate::domain::time::timestamp")]
    pub created_at: i64,
    #[serde(serialize_with = "crate::domain::time::timestamp")]
    pub updated_at: i64,
}

/// Body of `POST /v1/policies` and `PUT /v1/policies/{id}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    pub cedar: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Why a policy text is refused, located in it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct PolicyProblem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// 1-based line and column of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn problem(text: &str, diagnostic: &dyn Diagnostic, message: String) -> PolicyProblem {
    let offset = diagnostic
        .labels()
        .and_then(|mut labels| labels.next())
        .map_or(0, |label| label.offset());
    let (line, column) = position(text, offset);
    let help = diagnostic
        .help()
        .map(|h| format!(" ({h})"))
        .unwrap_or_default();
    PolicyProblem {
        line,
        column,
        message: format!("{message}{help}"),
    }
}

/// Validated, the body's parts: the text (parsed and checked against [`SCHEMA`] in strict mode)
/// and the description.
pub fn check(body: PolicyBody) -> Result<(String, String), PolicyInputError> {
    let cedar = body.cedar.ok_or(PolicyInputError::Missing("cedar"))?;
    if cedar.len() > MAX_CEDAR_BYTES {
        return Err(PolicyInputError::TooLong("cedar", MAX_CEDAR_BYTES));
    }
    let description = body.description.unwrap_or_default();
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(PolicyInputError::TooLong(
            "description",
            MAX_DESCRIPTION_CHARS,
        ));
    }
    let set = parse(&cedar, "uploaded")?;
    if set.policies().next().is_none() {
        return Err(PolicyInputError::Problem(PolicyProblem {
            line: 1,
            column: 1,
            message: "the text holds no policy".into(),
        }));
    }
    if set.templates().next().is_some() {
        return Err(PolicyInputError::Problem(PolicyProblem {
            line: 1,
            column: 1,
            message: "templates (?principal, ?resource) are not supported; name the entities"
                .into(),
        }));
    }
    let result = Validator::new(schema().clone()).validate(&set, ValidationMode::Strict);
    if let Some(error) = result.validation_errors().next() {
        return Err(PolicyInputError::Problem(problem(
            &cedar,
            error,
            error.to_string(),
        )));
    }
    for policy in set.policies() {
        if let Some(cap) = policy.annotation(MAX_LIFETIME_ANNOTATION) {
            if cap.parse::<i64>().map_or(true, |seconds| seconds < 1) {
                return Err(PolicyInputError::Problem(PolicyProblem {
                    line: 1,
                    column: 1,
                    message: format!(
                        "@{MAX_LIFETIME_ANNOTATION} must be a whole number of seconds, at least 1"
                    ),
                }));
            }
        }
    }
    Ok((cedar, description))
}

/// What is wrong with a policy body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyInputError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{0} must be at most {1} long")]
    TooLong(&'static str, usize),
    #[error(transparent)]
    Problem(PolicyProblem),
}

/// Parses a text's statements, naming each after the stored policy: `<id>`, or `<id>#<n>` when
/// the text holds several, so a decision's determining statements map back to policy ids.
fn parse(text: &str, policy_id: &str) -> Result<PolicySet, PolicyInputError> {
    let parsed = PolicySet::from_str(text).map_err(|errors| {
        let message = errors.to_string();
        PolicyInputError::Problem(problem(text, &errors, message))
    })?;
    let count = parsed.policies().count();
    let mut named = PolicySet::new();
    for (n, policy) in parsed.policies().enumerate() {
        let id = if count == 1 {
            policy_id.to_owned()
        } else {
            format!("{policy_id}#{n}")
        };
        named
            .add(policy.new_id(PolicyId::new(id)))
            .map_err(|e| PolicyInputError::Problem(problem(text, &e, e.to_string())))?;
    }
    for template in parsed.templates() {
        named
            .add_template(template.clone())
            .map_err(|e| PolicyInputError::Problem(problem(text, &e, e.to_string())))?;
    }
    Ok(named)
}

/// An organization's policies, parsed once per policy-set version.
#[derive(Debug, Default)]
pub struct CompiledPolicies {
    /// Names this compilation in the decision memo: a recompiled set is a new one.
    id: u64,
    set: PolicySet,
    /// Each statement's annotations a decision quotes, read once: Cedar parses the key of every
    /// annotation lookup, which cost more than evaluating the whole set.
    annotations: HashMap<PolicyId, Annotations>,
    /// What the set reads of the principal and of the context: only that is built per request.
    principal_reads: Reads,
    context_reads: Reads,
    /// The statements whose scope can match a principal type, action and audience, by those three.
    applicable: Mutex<HashMap<(bool, PolicyAction, String), Arc<PolicySet>>>,
}

/// Audiences per organization whose applicable statements one set keeps; past it the memo starts
/// over, which costs rebuilding a subset, never a different decision.
const MAX_APPLICABLE_SETS: usize = 256;

impl CompiledPolicies {
    /// The statements whose head (`principal is`, `action ==`, `resource ==`) can match this
    /// request. Cedar evaluates any other statement to "not satisfied", so leaving it out changes
    /// no decision and no determining policy, and saves evaluating it per scope.
    fn applicable(&self, is_agent: bool, action: PolicyAction, audience: &str) -> Arc<PolicySet> {
        let key = (is_agent, action, audience.to_owned());
        let mut memo = self.applicable.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(set) = memo.get(&key) {
            return Arc::clone(set);
        }
        let principal_type = if is_agent {
            &names().agent
        } else {
            &names().workflow
        };
        let action_uid = uid(&names().action, action.id());
        let audience_uid = uid(&names().audience, audience);
        let statements = self.set.policies().filter(|statement| {
            head_can_match(statement, principal_type, &action_uid, &audience_uid)
        });
        let subset = match PolicySet::from_policies(statements.cloned()) {
            Ok(subset) => Arc::new(subset),
            // Cannot happen (the statements come from one valid set); the whole set is correct.
            Err(_) => Arc::new(self.set.clone()),
        };
        if memo.len() >= MAX_APPLICABLE_SETS {
            memo.clear();
        }
        memo.insert(key, Arc::clone(&subset));
        subset
    }
}

/// Whether a statement's scope can match. Conservative where it depends on more than the types
/// and the action and audience: a principal `==` or `in` is left to Cedar. Audiences and actions
/// have no parents in the schema, so `in` one of them is equality.
fn head_can_match(
    statement: &Policy,
    principal_type: &EntityTypeName,
    action: &EntityUid,
    audience: &EntityUid,
) -> bool {
    let principal = match statement.principal_constraint() {
        PrincipalConstraint::Is(t) | PrincipalConstraint::IsIn(t, _) => &t == principal_type,
        PrincipalConstraint::Any | PrincipalConstraint::In(_) | PrincipalConstraint::Eq(_) => true,
    };
    let action = match statement.action_constraint() {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(a) => &a == action,
        ActionConstraint::In(actions) => actions.contains(action),
    };
    let resource = match statement.resource_constraint() {
        ResourceConstraint::Any => true,
        ResourceConstraint::Eq(r) | ResourceConstraint::In(r) => &r == audience,
        ResourceConstraint::Is(t) => &t == audience.type_name(),
        ResourceConstraint::IsIn(t, r) => &t == audience.type_name() && &r == audience,
    };
    principal && action && resource
}

/// A statement's `@max_lifetime_seconds` and `@reason`.
#[derive(Debug, Default)]
struct Annotations {
    max_lifetime_seconds: Option<i64>,
    reason: Option<String>,
}

/// The attributes of one variable (`principal`, `context`) that a policy set reads.
#[derive(Debug, Default)]
enum Reads {
    /// The variable is used whole somewhere (compared, passed on): build every attribute.
    #[default]
    All,
    /// Only these are read, each as `var.attr`, `var["attr"]` or `var has attr`.
    Only(BTreeSet<String>),
}

impl Reads {
    /// Walks the policies' JSON form (Cedar's EST), where an attribute read is
    /// `{".": {"left": {"Var": v}, "attr": a}}` (or `"has"`), and any other `{"Var": v}` uses
    /// the variable whole. A policy that cannot be shown as JSON counts as reading everything.
    fn of(set: &PolicySet, variable: &str) -> Reads {
        let mut read = BTreeSet::new();
        for policy in set.policies() {
            let Ok(json) = policy.to_json() else {
                return Reads::All;
            };
            if !attributes_read(&json, variable, &mut read) {
                return Reads::All;
            }
        }
        Reads::Only(read)
    }

    fn includes(&self, attribute: &str) -> bool {
        match self {
            Reads::All => true,
            Reads::Only(read) => read.contains(attribute),
        }
    }
}

/// Adds to `read` the attributes of `variable` that `node` reads; false when it uses the variable
/// other than by reading an attribute.
fn attributes_read(node: &Value, variable: &str, read: &mut BTreeSet<String>) -> bool {
    match node {
        Value::Object(members) => members.iter().all(|(key, inner)| {
            if key == "Var" {
                return inner.as_str() != Some(variable);
            }
            if key == "." || key == "has" {
                let of_variable = inner["left"]["Var"].as_str() == Some(variable);
                if let (true, Some(attribute)) = (of_variable, inner["attr"].as_str()) {
                    read.insert(attribute.to_owned());
                    return true;
                }
            }
            attributes_read(inner, variable, read)
        }),
        Value::Array(items) => items
            .iter()
            .all(|item| attributes_read(item, variable, read)),
        _ => true,
    }
}

impl CompiledPolicies {
    /// Compiles stored `(id, text)` pairs. A text that no longer parses (it was validated at
    /// upload, so only a schema change could do that) is left out of the set: with Cedar's
    /// default deny, leaving out a `permit` only narrows, but leaving out a `forbid` would widen,
    /// so such a text fails the whole set closed instead.
    pub fn compile<'a>(
        policies: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        let mut set = PolicySet::new();
        for (id, text) in policies {
            let parsed = parse(text, id).map_err(|e| format!("policy {id}: {e}"))?;
            for policy in parsed.policies() {
                set.add(policy.clone())
                    .map_err(|e| format!("policy {id}: {e}"))?;
            }
        }
        let annotations = set
            .policies()
            .map(|statement| {
                let annotations = Annotations {
                    max_lifetime_seconds: statement
                        .annotation(MAX_LIFETIME_ANNOTATION)
                        .and_then(|cap| cap.parse().ok()),
                    reason: statement.annotation(REASON_ANNOTATION).map(str::to_owned),
                };
                (statement.id().clone(), annotations)
            })
            .collect();
        static COMPILATIONS: AtomicU64 = AtomicU64::new(0);
        Ok(CompiledPolicies {
            id: COMPILATIONS.fetch_add(1, Ordering::Relaxed) + 1,
            applicable: Mutex::default(),
            annotations,
            principal_reads: Reads::of(&set, "principal"),
            context_reads: Reads::of(&set, "context"),
            set,
        })
    }

    /// An organization without policies behaves as if Cedar were not there.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

/// The stored policy a statement belongs to.
fn policy_of(statement: &PolicyId) -> String {
    let id: &str = statement.as_ref();
    id.split_once('#')
        .map_or(id, |(policy, _)| policy)
        .to_owned()
}

/// Facts about an agent, as the schema's `Agent` entity.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct AgentFacts {
    pub id: String,
    pub agent_type: String,
    pub capabilities: Vec<String>,
    pub deployment_env: String,
    pub owner: String,
    pub tags: Vec<String>,
}

/// An agent's tags, as policies see them: the strings of its metadata's `tags` array.
pub fn tags_of(metadata: &Value) -> Vec<String> {
    metadata
        .get("tags")
        .and_then(Value::as_array)
        .map(|tags| {
            tags.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

impl AgentFacts {
    pub fn of(agent: &crate::domain::agents::Agent) -> Self {
        AgentFacts {
            id: agent.id.clone(),
            agent_type: agent.agent_type.clone(),
            capabilities: agent.capabilities.clone(),
            deployment_env: agent.deployment_env.as_str().to_owned(),
            owner: agent.owner.clone().unwrap_or_default(),
            tags: tags_of(&Value::Object(agent.metadata.clone())),
        }
    }
}

/// Facts about a workflow, as the schema's `Workflow` entity.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowFacts {
    #[serde(default)]
    pub repository: String,
    #[serde(default)]
    pub repository_id: String,
    #[serde(default, rename = "ref")]
    pub git_ref: String,
    #[serde(default)]
    pub environment: String,
    #[serde(default)]
    pub event_name: String,
    #[serde(default)]
    pub job_workflow_ref: String,
}

/// Who a token is being issued to, as policies see it.
#[derive(Clone, Debug, PartialEq)]
pub enum PolicyPrincipal {
    Agent(AgentFacts),
    Workflow(WorkflowFacts),
}

/// The schema's entity type names, parsed once.
struct Names {
    agent: EntityTypeName,
    workflow: EntityTypeName,
    audience: EntityTypeName,
    action: EntityTypeName,
}

fn names() -> &'static Names {
    static NAMES: OnceLock<Names> = OnceLock::new();
    NAMES.get_or_init(|| {
        let name = |n: &str| EntityTypeName::from_str(n).expect("a type name of the schema");
        Names {
            agent: name("AgentIdP::Agent"),
            workflow: name("AgentIdP::Workflow"),
            audience: name("AgentIdP::Audience"),
            action: name("AgentIdP::Action"),
        }
    })
}

fn uid(type_name: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name.clone(), EntityId::new(id))
}

fn text(value: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(value.to_owned())
}

fn texts(values: &[String]) -> RestrictedExpression {
    RestrictedExpression::new_set(values.iter().map(|v| text(v)))
}

impl PolicyPrincipal {
    fn uid(&self) -> EntityUid {
        match self {
            PolicyPrincipal::Agent(agent) => uid(&names().agent, &agent.id),
            PolicyPrincipal::Workflow(workflow) => uid(&names().workflow, &workflow.repository),
        }
    }

    /// The principal's attributes, as the schema's entity has them: one list for building the
    /// entity and for the decision memo's key, so the two cannot disagree on what is read.
    fn facts(&self) -> [(&'static str, Fact<'_>); 6] {
        match self {
            PolicyPrincipal::Agent(agent) => [
                ("id", Fact::Text(&agent.id)),
                ("agent_type", Fact::Text(&agent.agent_type)),
                ("capabilities", Fact::Texts(&agent.capabilities)),
                ("deployment_env", Fact::Text(&agent.deployment_env)),
                ("owner", Fact::Text(&agent.owner)),
                ("tags", Fact::Texts(&agent.tags)),
            ],
            PolicyPrincipal::Workflow(workflow) => [
                ("repository", Fact::Text(&workflow.repository)),
                ("repository_id", Fact::Text(&workflow.repository_id)),
                ("ref", Fact::Text(&workflow.git_ref)),
                ("environment", Fact::Text(&workflow.environment)),
                ("event_name", Fact::Text(&workflow.event_name)),
                ("job_workflow_ref", Fact::Text(&workflow.job_workflow_ref)),
            ],
        }
    }

    /// The principal as the schema's entity, with the attributes the policies read (all of them
    /// conform to [`SCHEMA`]; a test checks the whole entity against it).
    fn entity(&self, reads: &Reads) -> Option<Entity> {
        let attrs: HashMap<String, RestrictedExpression> = self
            .facts()
            .iter()
            .filter(|(name, _)| reads.includes(name))
            .map(|(name, fact)| ((*name).to_owned(), fact.expression()))
            .collect();
        Entity::new(self.uid(), attrs, HashSet::new()).ok()
    }
}

/// One attribute's value, as Cedar sees it.
enum Fact<'a> {
    Text(&'a str),
    Texts(&'a [String]),
    Long(i64),
    Bool(bool),
}

impl Fact<'_> {
    fn expression(&self) -> RestrictedExpression {
        match self {
            Fact::Text(value) => text(value),
            Fact::Texts(values) => texts(values),
            Fact::Long(value) => RestrictedExpression::new_long(*value),
            Fact::Bool(value) => RestrictedExpression::new_bool(*value),
        }
    }

    /// Feeds the value to a memo key, tagged and length-prefixed so that no two different
    /// values feed the same bytes.
    fn feed(&self, key: &mut Sha256) {
        match self {
            Fact::Text(value) => feed_text(key, b'T', value),
            Fact::Texts(values) => {
                key.update([b'S']);
                key.update((values.len() as u64).to_le_bytes());
                for value in values.iter() {
                    feed_text(key, b'T', value);
                }
            }
            Fact::Long(value) => {
                key.update([b'L']);
                key.update(value.to_le_bytes());
            }
            Fact::Bool(value) => key.update([b'B', u8::from(*value)]),
        }
    }
}

fn feed_text(key: &mut Sha256, tag: u8, value: &str) {
    key.update([tag]);
    key.update((value.len() as u64).to_le_bytes());
    key.update(value.as_bytes());
}

/// The schema's actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyAction {
    IssueToken,
    ExchangeToken,
}

impl PolicyAction {
    fn id(self) -> &'static str {
        match self {
            PolicyAction::IssueToken => "issue_token",
            PolicyAction::ExchangeToken => "exchange_token",
        }
    }
}

/// The context of a token request, less the scope (decided one at a time).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestFacts {
    pub grant_type: String,
    pub client_auth_method: String,
    pub now: i64,
    pub client_ip: String,
    pub key_bound: bool,
    pub lifetime_seconds: i64,
}

impl RequestFacts {
    /// The context's attributes but the scope (see [`PolicyPrincipal::facts`]).
    fn facts(&self) -> [(&'static str, Fact<'_>); 6] {
        [
            ("grant_type", Fact::Text(&self.grant_type)),
            ("client_auth_method", Fact::Text(&self.client_auth_method)),
            ("now", Fact::Long(self.now)),
            ("client_ip", Fact::Text(&self.client_ip)),
            ("key_bound", Fact::Bool(self.key_bound)),
            ("lifetime_seconds", Fact::Long(self.lifetime_seconds)),
        ]
    }
}

/// One token request, as policies see it.
#[derive(Clone, Debug)]
pub struct TokenRequest<'a> {
    pub principal: &'a PolicyPrincipal,
    pub action: PolicyAction,
    pub audiences: &'a [String],
    pub facts: &'a RequestFacts,
}

/// The decision about one scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScopeDecision {
    pub scope: String,
    pub allowed: bool,
    /// The determining policies: the permits that allowed it, or the forbids that refused it
    /// (empty when nothing permitted it).
    pub policies: Vec<String>,
    /// The `@reason` of a determining forbid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The lowest `@max_lifetime_seconds` among the permits that allowed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_lifetime_seconds: Option<i64>,
}

/// The entities and the fixed part of the context of one token request, built once for all its
/// scopes and audiences, with only what the policies read. Audiences have neither attributes nor
/// parents, so they need no entity: Cedar treats an entity it is not given as just that.
fn request_parts(
    compiled: &CompiledPolicies,
    request: &TokenRequest<'_>,
) -> Option<(Entities, Vec<(String, RestrictedExpression)>)> {
    let entities = match &compiled.principal_reads {
        Reads::Only(read) if read.is_empty() => Entities::empty(),
        reads => Entities::from_entities([request.principal.entity(reads)?], None).ok()?,
    };
    let context = request
        .facts
        .facts()
        .iter()
        .filter(|(name, _)| compiled.context_reads.includes(name))
        .map(|(name, fact)| ((*name).to_owned(), fact.expression()))
        .collect();
    Some((entities, context))
}

/// Cedar's answer to one query: what a decision keeps of it.
#[derive(Debug)]
struct Answer {
    allowed: bool,
    /// The determining statements.
    reasons: Vec<PolicyId>,
}

/// Answers already computed, by a digest of everything the query's outcome depends on: the
/// compiled set, the principal's uid, the action, the audience, the scope, and the attributes the
/// set reads. A decision is a pure function of those, so a repeated request (an agent renewing
/// its token) is answered without evaluating Cedar again. Shared by every organization and
/// bounded (a full shard starts over, which costs evaluating again, never a different answer).
struct DecisionMemo([Mutex<HashMap<[u8; 32], Arc<Answer>>>; MEMO_SHARDS]);

const MEMO_SHARDS: usize = 16;
const MEMO_ENTRIES_PER_SHARD: usize = 4096;

impl DecisionMemo {
    fn get() -> &'static DecisionMemo {
        static MEMO: OnceLock<DecisionMemo> = OnceLock::new();
        MEMO.get_or_init(|| DecisionMemo(std::array::from_fn(|_| Mutex::default())))
    }

    fn shard(&self, key: &[u8; 32]) -> &Mutex<HashMap<[u8; 32], Arc<Answer>>> {
        &self.0[usize::from(key[0]) % MEMO_SHARDS]
    }

    fn answer(&self, key: &[u8; 32]) -> Option<Arc<Answer>> {
        let shard = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        shard.get(key).cloned()
    }

    fn keep(&self, key: [u8; 32], answer: Arc<Answer>) {
        let mut shard = self.shard(&key).lock().unwrap_or_else(|p| p.into_inner());
        if shard.len() >= MEMO_ENTRIES_PER_SHARD {
            shard.clear();
        }
        shard.insert(key, answer);
    }
}

/// The part of a memo key one request shares across its scopes and audiences.
fn request_key(compiled: &CompiledPolicies, request: &TokenRequest<'_>) -> Sha256 {
    let mut key = Sha256::new();
    key.update(compiled.id.to_le_bytes());
    match request.principal {
        PolicyPrincipal::Agent(agent) => feed_text(&mut key, b'G', &agent.id),
        PolicyPrincipal::Workflow(workflow) => feed_text(&mut key, b'W', &workflow.repository),
    }
    feed_text(&mut key, b'A', request.action.id());
    for (name, fact) in request.principal.facts().iter() {
        if compiled.principal_reads.includes(name) {
            feed_text(&mut key, b'N', name);
            fact.feed(&mut key);
        }
    }
    for (name, fact) in request.facts.facts().iter() {
        if compiled.context_reads.includes(name) {
            feed_text(&mut key, b'N', name);
            fact.feed(&mut key);
        }
    }
    key
}

/// Decides each scope for every audience of the request: a scope is allowed when every audience
/// allows it. Entities and context are built from typed facts in the schema's shape (checked
/// against it by a test), so they are not re-validated per request; anything that fails to build
/// denies, failing closed. Cedar is asked only what the decision memo does not already hold.
pub fn decide(
    compiled: &CompiledPolicies,
    request: &TokenRequest<'_>,
    scopes: &[&str],
) -> Vec<ScopeDecision> {
    let memo = DecisionMemo::get();
    let shared_key = request_key(compiled, request);
    // Built on the first query the memo cannot answer, then reused for the request's others.
    let mut parts = None;
    let scope_read = compiled.context_reads.includes("scope");
    let is_agent = matches!(request.principal, PolicyPrincipal::Agent(_));
    let authorizer = Authorizer::new();
    let mut ask = |audience: &str, scope: &str| -> Option<Arc<Answer>> {
        let mut key = shared_key.clone();
        feed_text(&mut key, b'R', audience);
        feed_text(&mut key, b'S', scope);
        let key: [u8; 32] = key.finalize().into();
        if let Some(answer) = memo.answer(&key) {
            return Some(answer);
        }
        let (entities, context) = parts
            .get_or_insert_with(|| request_parts(compiled, request))
            .as_ref()?;
        let mut pairs = context.clone();
        if scope_read {
            pairs.push(("scope".to_owned(), text(scope)));
        }
        let cedar_request = Request::new(
            request.principal.uid(),
            uid(&names().action, request.action.id()),
            uid(&names().audience, audience),
            Context::from_pairs(pairs).ok()?,
            None,
        )
        .ok()?;
        let statements = compiled.applicable(is_agent, request.action, audience);
        let response = authorizer.is_authorized(&cedar_request, &statements, entities);
        let answer = Arc::new(Answer {
            allowed: response.decision() == Decision::Allow,
            reasons: response.diagnostics().reason().cloned().collect(),
        });
        memo.keep(key, Arc::clone(&answer));
        Some(answer)
    };
    scopes
        .iter()
        .map(|scope| {
            let mut decision = ScopeDecision {
                scope: (*scope).to_owned(),
                allowed: true,
                policies: Vec::new(),
                reason: None,
                max_lifetime_seconds: None,
            };
            let mut determining = BTreeSet::new();
            for audience in request.audiences {
                let Some(answer) = ask(audience, scope) else {
                    decision.allowed = false;
                    continue;
                };
                if answer.allowed {
                    for statement in &answer.reasons {
                        let annotations = compiled.annotations.get(statement);
                        if let Some(cap) = annotations.and_then(|a| a.max_lifetime_seconds) {
                            decision.max_lifetime_seconds =
                                Some(decision.max_lifetime_seconds.map_or(cap, |c| c.min(cap)));
                        }
                        if decision.allowed {
                            determining.insert(policy_of(statement));
                        }
                    }
                } else {
                    if decision.allowed {
                        determining.clear();
                    }
                    decision.allowed = false;
                    for statement in &answer.reasons {
                        if decision.reason.is_none() {
                            decision.reason = compiled
                                .annotations
                                .get(statement)
                                .and_then(|a| a.reason.clone());
                        }
                        determining.insert(policy_of(statement));
                    }
                }
            }
            decision.policies = determining.into_iter().collect();
            if !decision.allowed {
                decision.max_lifetime_seconds = None;
            }
            decision
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(cedar: &str) -> PolicyBody {
        PolicyBody {
            cedar: Some(cedar.into()),
            description: None,
        }
    }

    fn agent() -> PolicyPrincipal {
        PolicyPrincipal::Agent(AgentFacts {
            id: "a1".into(),
            agent_type: "ci".into(),
            capabilities: vec!["payments:write".into(), "read:docs".into()],
            deployment_env: "production".into(),
            owner: "team".into(),
            tags: vec!["trusted".into()],
        })
    }

    fn facts() -> RequestFacts {
        RequestFacts {
            grant_type: "client_credentials".into(),
            client_auth_method: "client_secret_basic".into(),
            now: 1_700_000_000,
            client_ip: "127.0.0.1".into(),
            key_bound: false,
            lifetime_seconds: 3600,
        }
    }

    fn decide_one(
        policies: &[(&str, &str)],
        scopes: &[&str],
        audience: &str,
    ) -> Vec<ScopeDecision> {
        let compiled = CompiledPolicies::compile(policies.iter().copied()).unwrap();
        let principal = agent();
        let facts = facts();
        let audiences = vec![audience.to_owned()];
        decide(
            &compiled,
            &TokenRequest {
                principal: &principal,
                action: PolicyAction::IssueToken,
                audiences: &audiences,
                facts: &facts,
            },
            scopes,
        )
    }

    #[test]
    fn the_schema_parses_and_valid_policies_pass() {
        let (cedar, _) = check(body(
            r#"@max_lifetime_seconds("300")
permit(principal is AgentIdP::Agent, action == AgentIdP::Action::"issue_token",
       resource == AgentIdP::Audience::"https://pay.example")
when { context.scope == "payments:write" && principal.deployment_env == "production" };"#,
        ))
        .unwrap();
        assert!(cedar.contains("permit"));
    }

    #[test]
    fn invalid_policies_are_refused_with_their_position() {
        let Err(PolicyInputError::Problem(problem)) = check(body(
            "permit(principal, action,\n  resource) when { context.nope == 1 };",
        )) else {
            panic!("an attribute the schema lacks must be refused");
        };
        assert_eq!(problem.line, 2, "{problem}");
        let Err(PolicyInputError::Problem(problem)) =
            check(body("permit(principal action, resource);"))
        else {
            panic!("a syntax error must be refused");
        };
        assert_eq!((problem.line, problem.column), (1, 18), "{problem}");
        assert!(matches!(
            check(PolicyBody::default()),
            Err(PolicyInputError::Missing("cedar"))
        ));
        assert!(check(body(
            r#"@max_lifetime_seconds("soon") permit(principal, action, resource);"#
        ))
        .is_err());
    }

    #[test]
    fn permits_narrow_forbids_win_and_caps_take_the_lowest() {
        let permit = r#"@max_lifetime_seconds("600") permit(principal, action, resource) when { context.scope == "read:docs" };"#;
        let tighter = r#"@max_lifetime_seconds("300") permit(principal, action, resource) when { principal.tags.contains("trusted") };"#;
        let forbid = r#"@reason("payments only from CI") forbid(principal, action, resource) when { context.scope == "payments:write" && principal.agent_type != "ci-runner" };"#;
        let decisions = decide_one(
            &[("p1", permit), ("p2", tighter), ("p3", forbid)],
            &["read:docs", "payments:write"],
            "https://iss",
        );
        assert!(decisions[0].allowed);
        assert_eq!(decisions[0].policies, vec!["p1", "p2"]);
        assert_eq!(decisions[0].max_lifetime_seconds, Some(300));
        assert!(!decisions[1].allowed);
        assert_eq!(decisions[1].policies, vec!["p3"]);
        assert_eq!(
            decisions[1].reason.as_deref(),
            Some("payments only from CI")
        );
    }

    #[test]
    fn nothing_permitted_is_denied_with_no_policy_named() {
        let decisions = decide_one(
            &[(
                "p1",
                r#"permit(principal, action, resource == AgentIdP::Audience::"https://pay.example");"#,
            )],
            &["read:docs"],
            "https://other.example",
        );
        assert!(!decisions[0].allowed);
        assert!(decisions[0].policies.is_empty());
    }

    #[test]
    fn the_entities_and_context_built_for_a_request_conform_to_the_schema() {
        let facts = facts();
        let audiences = vec!["https://pay.example".to_owned()];
        let workflow = PolicyPrincipal::Workflow(WorkflowFacts {
            repository: "octo/app".into(),
            git_ref: "refs/heads/main".into(),
            ..WorkflowFacts::default()
        });
        for (principal, action) in [
            (agent(), PolicyAction::IssueToken),
            (workflow, PolicyAction::ExchangeToken),
        ] {
            let request = TokenRequest {
                principal: &principal,
                action,
                audiences: &audiences,
                facts: &facts,
            };
            let (entities, mut context) =
                request_parts(&CompiledPolicies::default(), &request).unwrap();
            let checked = Entities::from_entities(entities.iter().cloned(), Some(schema()));
            assert!(checked.is_ok(), "{checked:?}");
            context.push(("scope".to_owned(), text("read:docs")));
            let action_uid = uid(&names().action, action.id());
            let context = Context::from_pairs(context).unwrap();
            let validated = Request::new(
                principal.uid(),
                action_uid,
                uid(&names().audience, &audiences[0]),
                context,
                Some(schema()),
            );
            assert!(validated.is_ok(), "{validated:?}");
        }
    }

    #[test]
    fn only_the_attributes_policies_read_are_built_and_decisions_do_not_change() {
        let reading = r#"permit(principal is AgentIdP::Agent, action, resource)
when { principal.capabilities.contains(context.scope) && context has key_bound };
forbid(principal, action, resource) when { principal["deployment_env"] == "staging" };"#;
        let compiled = CompiledPolicies::compile([("p1", reading)]).unwrap();
        let only = |reads: &Reads| match reads {
            Reads::All => None,
            Reads::Only(read) => Some(read.iter().cloned().collect::<Vec<_>>()),
        };
        assert_eq!(
            only(&compiled.principal_reads),
            Some(vec!["capabilities".into(), "deployment_env".into()])
        );
        assert_eq!(
            only(&compiled.context_reads),
            Some(vec!["key_bound".into(), "scope".into()])
        );
        // A variable used whole, not through an attribute, needs every attribute.
        let whole = "permit(principal, action, resource) when { context == context && principal == principal };";
        let compiled = CompiledPolicies::compile([("p2", whole)]).unwrap();
        assert!(only(&compiled.context_reads).is_none());
        assert!(only(&compiled.principal_reads).is_none());

        let texts = [
            ("p1", reading),
            (
                "p3",
                r#"@max_lifetime_seconds("60") permit(principal, action, resource) when { context.lifetime_seconds < 100000 && principal.tags.contains("trusted") };"#,
            ),
            (
                "p5",
                r#"@reason("not for pay") forbid(principal is AgentIdP::Agent, action, resource == AgentIdP::Audience::"https://pay.example") when { context.scope == "read:docs" };"#,
            ),
            (
                "p6",
                r#"permit(principal is AgentIdP::Workflow, action == AgentIdP::Action::"exchange_token", resource);"#,
            ),
            (
                "p7",
                r#"permit(principal, action in [AgentIdP::Action::"issue_token"], resource in AgentIdP::Audience::"https://pay.example");"#,
            ),
            (
                "p4",
                r#"@reason("no staging") forbid(principal, action, resource) when { context.client_ip like "10.*" };"#,
            ),
        ];
        let pruned = CompiledPolicies::compile(texts).unwrap();
        let whole = CompiledPolicies {
            principal_reads: Reads::All,
            context_reads: Reads::All,
            ..CompiledPolicies::compile(texts).unwrap()
        };
        // Every statement evaluated, as if no head were ever ruled out.
        let every = PolicySet::from_policies(whole.set.policies().cloned()).unwrap();
        for audience in ["https://issuer.example", "https://pay.example"] {
            whole.applicable.lock().unwrap().insert(
                (true, PolicyAction::IssueToken, audience.to_owned()),
                Arc::new(every.clone()),
            );
        }
        let principal = agent();
        let facts = facts();
        let scopes = ["payments:write", "read:docs", "other"];
        for audiences in [
            vec!["https://issuer.example".to_owned()],
            vec!["https://pay.example".to_owned()],
            vec![
                "https://issuer.example".to_owned(),
                "https://pay.example".to_owned(),
            ],
        ] {
            let request = TokenRequest {
                principal: &principal,
                action: PolicyAction::IssueToken,
                audiences: &audiences,
                facts: &facts,
            };
            assert_eq!(
                decide(&pruned, &request, &scopes),
                decide(&whole, &request, &scopes),
                "{audiences:?}"
            );
            assert!(decide(&pruned, &request, &scopes)[0].allowed);
        }
        // The pay audience's forbid (p5) and the workflow's permit (p6) are ruled out by their
        // heads elsewhere; p7 applies to the pay audience only.
        let subset = |audience: &str| -> Vec<String> {
            let mut ids: Vec<String> = pruned
                .applicable(true, PolicyAction::IssueToken, audience)
                .policies()
                .map(|statement| policy_of(statement.id()))
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(subset("https://issuer.example"), ["p1", "p1", "p3", "p4"]);
        assert_eq!(
            subset("https://pay.example"),
            ["p1", "p1", "p3", "p4", "p5", "p7"]
        );
    }

    #[test]
    fn a_remembered_decision_answers_only_the_same_facts() {
        let staging = r#"permit(principal, action, resource) when { principal.deployment_env == "staging" && context.lifetime_seconds <= 600 };"#;
        let compiled = CompiledPolicies::compile([("p1", staging)]).unwrap();
        let audiences = vec!["https://a.example".to_owned()];
        let allowed = |compiled: &CompiledPolicies, id: &str, env: &str, lifetime: i64| {
            let principal = PolicyPrincipal::Agent(AgentFacts {
                id: id.into(),
                deployment_env: env.into(),
                ..AgentFacts::default()
            });
            let facts = RequestFacts {
                lifetime_seconds: lifetime,
                ..facts()
            };
            let request = TokenRequest {
                principal: &principal,
                action: PolicyAction::IssueToken,
                audiences: &audiences,
                facts: &facts,
            };
            decide(compiled, &request, &["read:docs"])[0].allowed
        };
        // Each attribute the set reads, changed alone, changes the answer; asking again after
        // the others were remembered gives the same answer as the first time.
        for _ in 0..2 {
            assert!(allowed(&compiled, "a1", "staging", 600));
            assert!(!allowed(&compiled, "a1", "production", 600));
            assert!(!allowed(&compiled, "a1", "staging", 601));
            assert!(allowed(&compiled, "a2", "staging", 60));
        }
        // A recompiled set is asked afresh, never answered from what the old one decided.
        let forbidding = format!("{staging}\nforbid(principal, action, resource);");
        let recompiled = CompiledPolicies::compile([("p1", forbidding.as_str())]).unwrap();
        assert!(!allowed(&recompiled, "a1", "staging", 600));
        assert!(allowed(&compiled, "a1", "staging", 600));
    }

    #[test]
    fn statements_of_one_text_map_back_to_its_policy() {
        let text = "permit(principal, action, resource);\nforbid(principal, action, resource) when { context.key_bound };";
        let decisions = decide_one(&[("p9", text)], &["read:docs"], "a");
        assert_eq!(decisions[0].policies, vec!["p9"]);
        assert_eq!(position("ab\ncd", 4), (2, 2));
    }
}
