//! Files that must agree with what the code declares, checked so they cannot drift apart: the
//! configuration the edge descriptors repeat, and the typed client's view of the API's schemas.

use std::collections::BTreeSet;

use agentidp_shared::config::VARIABLES;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

const OPENAPI: &str = include_str!("../../openapi.json");
const WRANGLER: &str = include_str!("../../wrangler.toml");
const SPIN: &str = include_str!("../../spin.toml");

fn declared() -> BTreeSet<&'static str> {
    VARIABLES.iter().map(|v| v.name).collect()
}

/// Every variable a descriptor sets is one the code declares (a misspelt or retired name would be
/// silently ignored at the edge), and every descriptor sets the issuer and the database.
#[test]
fn the_edge_descriptors_set_only_declared_configuration() {
    let declared = declared();
    let wrangler: toml::Value = toml::from_str(WRANGLER).unwrap();
    let spin: toml::Value = toml::from_str(SPIN).unwrap();
    let mut blocks: Vec<(String, &toml::Table)> = Vec::new();
    for (env, table) in wrangler["env"].as_table().unwrap() {
        blocks.push((
            format!("wrangler.toml env.{env}.vars"),
            table["vars"].as_table().unwrap(),
        ));
    }
    for (component, table) in spin["component"].as_table().unwrap() {
        blocks.push((
            format!("spin.toml component.{component}.environment"),
            table["environment"].as_table().unwrap(),
        ));
    }
    assert_eq!(blocks.len(), 10, "five Workers and five components");
    for (place, block) in blocks {
        for name in block.keys() {
            assert!(
                declared.contains(name.as_str()),
                "{place}: `{name}` is not a configuration variable the code declares"
            );
        }
        for required in ["AGENTIDP_ISSUER", "AGENTIDP_DATABASE_URL"] {
            assert!(
                block.contains_key(required),
                "{place}: `{required}` is missing"
            );
        }
    }
}

fn schema<'a>(document: &'a Value, name: &str) -> &'a Value {
    let schema = &document["components"]["schemas"][name];
    assert!(schema.is_object(), "openapi.json has no schema `{name}`");
    schema
}

fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap();
            resolve(document, &document["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// The smallest instance the schema allows: only its required members, each the simplest value
/// of its type. A client type must read it: it may not require what the API does not promise.
fn minimal(document: &Value, schema: &Value) -> Value {
    let schema = resolve(document, schema);
    if let Some(first) = alternatives(schema).first() {
        return minimal(document, first);
    }
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    if let Some(value) = schema.get("const") {
        return value.clone();
    }
    let kind = match &schema["type"] {
        Value::String(kind) => kind.as_str(),
        Value::Array(kinds) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|k| *k != "null")
            .unwrap_or("null"),
        _ if schema["properties"].is_object() => "object",
        _ => "null",
    };
    match kind {
        "object" => {
            let mut object = Map::new();
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap();
                object.insert(
                    name.to_owned(),
                    minimal(document, &schema["properties"][name]),
                );
            }
            Value::Object(object)
        }
        "array" => json!([]),
        "string" => match schema["format"].as_str() {
            Some("date-time") => json!("2026-01-01T00:00:00.000Z"),
            _ => json!("x"),
        },
        "integer" | "number" => json!(1),
        "boolean" => json!(false),
        _ => Value::Null,
    }
}

fn alternatives(schema: &Value) -> Vec<Value> {
    ["oneOf", "anyOf"]
        .iter()
        .filter_map(|k| schema[*k].as_array())
        .flatten()
        .cloned()
        .collect()
}

/// The client reads the smallest instance of the schema, of each alternative where it has several.
fn reads<T: DeserializeOwned>(document: &Value, name: &str) {
    let schema = resolve(document, schema(document, name));
    let mut shapes = alternatives(schema);
    if shapes.is_empty() {
        shapes.push(schema.clone());
    }
    for shape in shapes {
        let instance = minimal(document, &shape);
        if let Err(e) = serde_json::from_value::<T>(instance.clone()) {
            panic!(
                "the client cannot read the smallest `{name}` the API may send ({e}): {instance}"
            );
        }
    }
}

/// A request type, filled in, sends only members the schema defines.
fn sends<T: Serialize>(document: &Value, name: &str, value: T) {
    let schema = resolve(document, schema(document, name));
    let sent = serde_json::to_value(value).unwrap();
    for member in sent.as_object().unwrap().keys() {
        assert!(
            schema["properties"].get(member).is_some(),
            "the client sends `{member}` in `{name}`, which openapi.json does not define"
        );
    }
}

#[test]
fn the_client_reads_what_the_schemas_promise_and_sends_what_they_define() {
    use agentidp_client::*;
    let document: Value = serde_json::from_str(OPENAPI).unwrap();
    reads::<Agent>(&document, "Agent");
    reads::<Credential>(&document, "Credential");
    reads::<OrgCredential>(&document, "OrgCredential");
    reads::<Organization>(&document, "Organization");
    reads::<AuditEvent>(&document, "AuditEvent");
    reads::<ChainVerification>(&document, "ChainVerification");
    reads::<TrustPolicy>(&document, "TrustPolicy");
    reads::<TrustPolicyEvaluation>(&document, "TrustPolicyEvaluation");
    reads::<Policy>(&document, "Policy");
    reads::<PolicySchema>(&document, "PolicySchema");
    reads::<PolicyEvaluation>(&document, "PolicyEvaluation");
    reads::<Webhook>(&document, "Webhook");
    reads::<WebhookDelivery>(&document, "WebhookDelivery");
    reads::<Introspection>(&document, "Introspection");
    reads::<TokenResponse>(&document, "TokenResponse");
    reads::<Problem>(&document, "Problem");

    sends(
        &document,
        "PolicyBody",
        PolicyBody {
            cedar: "permit(principal, action, resource);".into(),
            description: Some("d".into()),
        },
    );
    sends(
        &document,
        "PolicyEvaluationRequest",
        PolicyEvaluationRequest {
            agent_id: Some("a".into()),
            workflow: Some(json!({})),
            scopes: vec!["s".into()],
            audience: Some("a".into()),
            action: Some("issue_token".into()),
            context: Some(json!({})),
        },
    );
    sends(
        &document,
        "TrustPolicyCreate",
        TrustPolicyCreate {
            provider: "github".into(),
            repository: "o/r".into(),
            repository_id: Some("1".into()),
            branch: Some("main".into()),
            environment: Some("e".into()),
            job_workflow_ref: Some("w".into()),
            event_names: Some(vec!["push".into()]),
            runner_environment: Some("github-hosted".into()),
            agent_id: Some("a".into()),
            allow_registration: Some(false),
            max_registrations: Some(1),
            scopes: Some(vec!["s".into()]),
        },
    );
    sends(
        &document,
        "TrustPolicyEvaluationRequest",
        TrustPolicyEvaluationRequest {
            token: Some("t".into()),
            claims: Some(json!({})),
            agent_id: Some("a".into()),
        },
    );
}

/// The check itself notices drift: a client type requiring a member the schema does not promise.
#[test]
#[should_panic(expected = "cannot read the smallest")]
fn a_client_type_requiring_more_than_the_schema_is_caught() {
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Stricter {
        id: String,
        not_in_the_schema: String,
    }
    let document: Value = serde_json::from_str(OPENAPI).unwrap();
    reads::<Stricter>(&document, "Policy");
}
