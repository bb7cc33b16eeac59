//! The public marketplace's model: what a listing shows (never an email, owner, metadata or
//! organization), how a search is asked for, and how the user's text becomes a full-text query
//! that is never read as query syntax.

use serde::Serialize;

use crate::domain::agents::{DeploymentEnv, Skill};
use crate::domain::validate::Invalid;

/// Longest accepted search text: a few sentences, never a document.
pub const MAX_QUERY_CHARS: usize = 200;
/// Longest accepted filter value.
pub const MAX_FILTER_CHARS: usize = 128;
/// Words of the search text that count; more only cost work without narrowing anything useful.
pub const MAX_TERMS: usize = 12;
/// Repeated filters (`capability=`, `tag=`) a search may combine.
pub const MAX_REPEATED_FILTERS: usize = 8;

/// Facets a search can count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Facet {
    AgentType,
    Tags,
}

/// Query parameters of `GET /v1/marketplace/agents`, checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchQuery {
    /// The words to search for, as full-text terms (see [`terms`]); `None` lists newest first.
    pub terms: Option<Vec<String>>,
    pub agent_type: Option<String>,
    /// All of these capabilities.
    pub capabilities: Vec<String>,
    /// All of these tags.
    pub tags: Vec<String>,
    pub deployment_env: Option<DeploymentEnv>,
    pub facets: Vec<Facet>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl SearchQuery {
    /// Parses a raw query string, naming the offending parameter. `capability` and `tag` repeat;
    /// every other parameter appears at most once; unknown parameters are refused.
    pub fn parse(query: &str) -> Result<SearchQuery, Invalid> {
        let mut search = SearchQuery::default();
        let mut seen: Vec<String> = Vec::new();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let key = key.into_owned();
            let value = value.into_owned();
            let repeatable = matches!(key.as_str(), "capability" | "tag");
            if !repeatable && seen.contains(&key) {
                return Err(Invalid::new(&key, "must be given at most once"));
            }
            seen.push(key.clone());
            match key.as_str() {
                "q" => {
                    if value.trim().is_empty() {
                        return Err(Invalid::new(
                            "q",
                            "must not be empty; omit it to list every agent",
                        ));
                    }
                    if value.chars().count() > MAX_QUERY_CHARS {
                        return Err(Invalid::new(
                            "q",
                            format!("must be at most {MAX_QUERY_CHARS} characters"),
                        ));
                    }
                    search.terms = Some(terms(&value));
                }
                "agent_type" => search.agent_type = Some(filter("agent_type", value)?),
                "capability" => search.capabilities.push(filter("capability", value)?),
                "tag" => search.tags.push(filter("tag", value)?),
                "deployment_env" => {
                    search.deployment_env =
                        Some(DeploymentEnv::parse(&value).ok_or_else(|| {
                            Invalid::new(
                                "deployment_env",
                                "must be development, staging or production",
                            )
                        })?);
                }
                "facets" => {
                    for name in value.split(',') {
                        let facet =
                            match name {
                                "agent_type" => Facet::AgentType,
                                "tags" => Facet::Tags,
                                _ => return Err(Invalid::new(
                                    "facets",
                                    "must list facets among agent_type and tags, comma-separated",
                                )),
                            };
                        if !search.facets.contains(&facet) {
                            search.facets.push(facet);
                        }
                    }
                }
                "limit" => {
                    search.limit =
                        Some(value.parse().map_err(|_| {
                            Invalid::new("limit", "must be a number from 1 to 200")
                        })?);
                }
                "cursor" => search.cursor = Some(value),
                _ => return Err(Invalid::new(&key, "is not a parameter of this search")),
            }
        }
        for (field, values) in [("capability", &search.capabilities), ("tag", &search.tags)] {
            if values.len() > MAX_REPEATED_FILTERS {
                return Err(Invalid::new(
                    field,
                    format!("at most {MAX_REPEATED_FILTERS} values"),
                ));
            }
        }
        Ok(search)
    }

    /// Whether the full-text index must answer (words or filters it can narrow by).
    pub fn uses_index(&self) -> bool {
        self.terms.is_some()
            || self.agent_type.is_some()
            || !self.capabilities.is_empty()
            || !self.tags.is_empty()
    }
}

fn filter(field: &str, value: String) -> Result<String, Invalid> {
    if value.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    if value.chars().count() > MAX_FILTER_CHARS || value.chars().any(char::is_control) {
        return Err(Invalid::new(
            field,
            format!("must be at most {MAX_FILTER_CHARS} characters, without control characters"),
        ));
    }
    Ok(value)
}

/// The words of the user's text as the index tokenizes them (runs of letters and digits), at most
/// [`MAX_TERMS`]; punctuation, quotes and FTS operators are separators, never syntax.
pub fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .take(MAX_TERMS)
        .map(str::to_owned)
        .collect()
}

/// An FTS5 string literal: the text in double quotes, inner quotes doubled. Inside a string FTS5
/// reads no operators, so whatever the text says is only text.
pub fn fts_string(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// The full-text query: every term must appear (in any indexed column), the last one as a prefix
/// so results follow what is being typed; each filter narrows to its column.
pub fn match_expression(query: &SearchQuery) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    if let Some(terms) = &query.terms {
        let last = terms.len().saturating_sub(1);
        for (i, term) in terms.iter().enumerate() {
            let mut part = fts_string(term);
            if i == last {
                part.push('*');
            }
            parts.push(part);
        }
    }
    if let Some(agent_type) = &query.agent_type {
        parts.push(format!("agent_type : {}", fts_string(agent_type)));
    }
    for capability in &query.capabilities {
        parts.push(format!("capabilities : {}", fts_string(capability)));
    }
    for tag in &query.tags {
        parts.push(format!("tags : {}", fts_string(tag)));
    }
    (!parts.is_empty()).then(|| parts.join(" AND "))
}

/// An agent as the marketplace shows it.
#[derive(Clone, Debug, Serialize)]
pub struct PublicAgent {
    pub id: String,
    /// The agent's `did:web` identifier, resolved at `/agents/{id}/did.json`.
    pub did: String,
    pub name: String,
    pub description: String,
    pub agent_type: String,
    pub version: Option<String>,
    pub capabilities: Vec<String>,
    pub tags: Vec<String>,
    pub skills: Vec<Skill>,
    pub homepage_url: Option<String>,
    pub a2a_url: Option<String>,
    pub deployment_env: String,
    pub created_at: String,
}

/// How often a facet's value occurs among every match of a search.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FacetCount {
    pub value: String,
    pub count: i64,
}

/// The facet counts a search asked for, over `counted` matches (the newest ones, when a search
/// matches more than the store counts).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Facets {
    pub counted: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_type: Option<Vec<FacetCount>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<FacetCount>>,
}

/// Values per facet: the head of the distribution is what a page can show.
pub const FACET_VALUES: usize = 20;

/// Counts each asked facet's values over `sample` (each match's type and tags): most frequent
/// first, ties alphabetically, at most [`FACET_VALUES`] each.
pub fn count_facets(asked: &[Facet], sample: &[(String, Vec<String>)]) -> Facets {
    let head = |counts: std::collections::HashMap<&str, i64>| {
        let mut counts: Vec<FacetCount> = counts
            .into_iter()
            .map(|(value, count)| FacetCount {
                value: value.to_owned(),
                count,
            })
            .collect();
        counts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        counts.truncate(FACET_VALUES);
        counts
    };
    let mut facets = Facets {
        counted: i64::try_from(sample.len()).unwrap_or(i64::MAX),
        ..Facets::default()
    };
    for facet in asked {
        let mut counts = std::collections::HashMap::new();
        for (agent_type, tags) in sample {
            match facet {
                Facet::AgentType => *counts.entry(agent_type.as_str()).or_insert(0) += 1,
                Facet::Tags => {
                    for tag in tags {
                        *counts.entry(tag.as_str()).or_insert(0) += 1;
                    }
                }
            }
        }
        match facet {
            Facet::AgentType => facets.agent_type = Some(head(counts)),
            Facet::Tags => facets.tags = Some(head(counts)),
        }
    }
    facets
}

/// One page of a search: `{"data", "next_cursor"}` and, when asked for, `facets`.
#[derive(Debug, Serialize)]
pub struct SearchResults {
    pub data: Vec<PublicAgent>,
    pub next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facets: Option<Facets>,
}

/// `did:web:<host>[%3A<port>][:<path segments>]:agents:<id>` for an issuer URL: the method's
/// mapping of `https://<host>[:<port>]/<path>/agents/<id>/did.json`. `None` when the issuer is no
/// absolute URL with a host.
pub fn did_web(issuer: &str, agent_id: &str) -> Option<String> {
    let url = url::Url::parse(issuer).ok()?;
    let host = url.host_str()?;
    let mut did = format!("did:web:{host}");
    if let Some(port) = url.port() {
        did.push_str(&format!("%3A{port}"));
    }
    for segment in url.path().split('/').filter(|s| !s.is_empty()) {
        did.push(':');
        did.push_str(segment);
    }
    did.push_str(":agents:");
    did.push_str(agent_id);
    Some(did)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_is_only_ever_terms() {
        assert_eq!(
            terms("  trans-late  \"NEAR\"(x, y) OR *"),
            ["trans", "late", "NEAR", "x", "y", "OR"]
        );
        assert!(terms("%_\"*").is_empty());
        let query = SearchQuery {
            terms: Some(terms("code review\"")),
            tags: vec!["a\"b".into()],
            ..SearchQuery::default()
        };
        assert_eq!(
            match_expression(&query).unwrap(),
            r#""code" AND "review"* AND tags : "a""b""#
        );
    }

    #[test]
    fn searches_are_parsed_strictly() {
        let q =
            SearchQuery::parse("q=bot&capability=a&capability=b&facets=tags,agent_type").unwrap();
        assert_eq!(q.capabilities, ["a", "b"]);
        assert_eq!(q.facets, [Facet::Tags, Facet::AgentType]);
        for (bad, field) in [
            ("q=", "q"),
            ("q=%20", "q"),
            ("q=a&q=b", "q"),
            ("facets=owner", "facets"),
            ("deployment_env=moon", "deployment_env"),
            ("org_id=x", "org_id"),
            ("tag=", "tag"),
        ] {
            assert_eq!(SearchQuery::parse(bad).unwrap_err().field, field, "{bad}");
        }
        assert!(SearchQuery::parse(&format!("q={}", "x".repeat(201))).is_err());
    }

    #[test]
    fn did_web_percent_encodes_the_port_and_keeps_the_path() {
        let id = "00000000-0000-4000-8000-000000000001";
        assert_eq!(
            did_web("http://127.0.0.1:8787", id).unwrap(),
            format!("did:web:127.0.0.1%3A8787:agents:{id}")
        );
        assert_eq!(
            did_web("https://idp.example/tenant", id).unwrap(),
            format!("did:web:idp.example:tenant:agents:{id}")
        );
    }
}
