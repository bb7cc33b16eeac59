//! The route table is the one list of routes: the OpenAPI document, `wrangler.toml` and `spin.toml`
//! must say exactly what it says, and every route answers the way its access level promises.

use std::collections::BTreeSet;

use agentidp_shared::http::routes::{Access, Function, ROUTES};
use agentidp_tests::concrete;
use serde_json::Value;

const OPENAPI: &str = include_str!("../../openapi.json");
const WRANGLER: &str = include_str!("../../wrangler.toml");
const SPIN: &str = include_str!("../../spin.toml");

/// The access level an operation documents: its security schemes, or for a browser page (tagged
/// `pages`, no security) `Page`.
fn access_of(operation: &Value) -> Access {
    let security = operation.get("security");
    let is_page = operation["tags"]
        .as_array()
        .is_some_and(|tags| tags.iter().any(|t| t == "pages"));
    if is_page
        && security
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
    {
        return Access::Page;
    }
    let schemes: BTreeSet<String> = security
        .and_then(Value::as_array)
        .map(|alternatives| {
            alternatives
                .iter()
                .filter_map(Value::as_object)
                .flat_map(|o| o.keys().cloned())
                .collect()
        })
        .unwrap_or_default();
    if schemes.contains("bearerAuth") {
        Access::Bearer
    } else if schemes.contains("clientBasic") {
        Access::Client
    } else if schemes.contains("signupToken") {
        Access::Signup
    } else if schemes.contains("stripeSignature") {
        Access::Signature
    } else if schemes.contains("operatorToken") {
        Access::Operator
    } else {
        Access::Public
    }
}

#[test]
fn the_openapi_document_describes_exactly_the_route_table() {
    let document: Value = serde_json::from_str(OPENAPI).unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            documented.insert((
                method.to_uppercase(),
                path.clone(),
                operation["operationId"].as_str().unwrap_or("").to_owned(),
                format!("{:?}", access_of(operation)),
            ));
        }
    }
    let table: BTreeSet<_> = ROUTES
        .iter()
        .map(|r| {
            (
                r.method.as_str().to_owned(),
                r.path.to_owned(),
                r.operation_id().to_owned(),
                format!("{:?}", r.access),
            )
        })
        .collect();
    let missing: Vec<_> = table.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&table).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "undocumented routes: {missing:#?}\ndocumented but not in the route table: {extra:#?}"
    );
}

#[test]
fn every_bearer_operation_names_the_scope_the_decision_point_requires() {
    let document: Value = serde_json::from_str(OPENAPI).unwrap();
    for route in ROUTES.iter().filter(|r| r.access == Access::Bearer) {
        let template = route.path;
        let operation = &document["paths"][template][route.method.as_str().to_lowercase()];
        let requirement = route
            .requirement()
            .expect("a bearer route declares its scope");
        let mut expected = vec![requirement.scope];
        expected.extend(requirement.alternative);
        let named: Vec<&str> = operation["security"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["bearerAuth"].as_array())
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            named,
            expected,
            "{} {}: openapi.json's bearerAuth requirement must list the scope it needs",
            route.method.as_str(),
            template
        );
    }
}

/// Cloudflare route patterns: `*` matches any run of characters.
fn wildcard_matches(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            text.starts_with(head)
                && (0..=text.len() - head.len())
                    .any(|i| wildcard_matches(tail, &text[head.len() + i..]))
        }
    }
}

/// Spin trigger routes: exact, or `/prefix/...` for the prefix and everything under it.
fn spin_matches(route: &str, path: &str) -> bool {
    match route.strip_suffix("/...") {
        Some(prefix) => path == prefix || path.starts_with(&format!("{prefix}/")),
        None => route == path,
    }
}

/// `(function, pattern)` for every route of every Worker in `wrangler.toml`, host removed.
fn wrangler_patterns() -> Vec<(String, String)> {
    let manifest: toml::Table = WRANGLER.parse().unwrap();
    let mut patterns = Vec::new();
    for (function, env) in manifest["env"].as_table().unwrap() {
        for route in env["routes"].as_array().unwrap() {
            let pattern = route["pattern"].as_str().unwrap();
            let path = &pattern[pattern.find('/').unwrap()..];
            patterns.push((function.clone(), path.to_owned()));
        }
    }
    patterns
}

/// `(component, route)` for every trigger in `spin.toml`.
fn spin_routes() -> Vec<(String, String)> {
    let manifest: toml::Table = SPIN.parse().unwrap();
    manifest["trigger"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["component"].as_str().unwrap().to_owned(),
                t["route"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Every route reaches exactly its own function, and every pattern serves some route of its own.
fn check_descriptor(name: &str, patterns: &[(String, String)], matches: fn(&str, &str) -> bool) {
    let mut problems = Vec::new();
    for route in ROUTES {
        let path = concrete(route);
        let owners: BTreeSet<&str> = patterns
            .iter()
            .filter(|(_, p)| matches(p, &path))
            .map(|(f, _)| f.as_str())
            .collect();
        if owners != BTreeSet::from([route.function.name()]) {
            problems.push(format!(
                "{} {} reaches {owners:?}, not only {}",
                route.method.as_str(),
                route.path,
                route.function.name()
            ));
        }
    }
    for (function, pattern) in patterns {
        let serves_one = ROUTES
            .iter()
            .any(|r| r.function.name() == function && matches(pattern, &concrete(r)));
        if !serves_one {
            problems.push(format!(
                "{pattern} is routed to {function}, which serves nothing there"
            ));
        }
    }
    let functions: BTreeSet<&str> = patterns.iter().map(|(f, _)| f.as_str()).collect();
    for function in Function::ALL {
        let has_routes = ROUTES
            .iter()
            .any(|r| r.function == function && !r.every_function);
        if has_routes && !functions.contains(function.name()) {
            problems.push(format!("{} has no route", function.name()));
        }
    }
    assert!(
        problems.is_empty(),
        "{name} disagrees with the route table: {problems:#?}"
    );
}

#[test]
fn the_committed_descriptors_are_what_edge_init_generates() {
    use agentidp_shared::http::descriptors::{spin_toml, wrangler_toml, EdgeSettings};
    let settings = EdgeSettings::example();
    assert!(
        WRANGLER == wrangler_toml(&settings) && SPIN == spin_toml(&settings),
        "wrangler.toml or spin.toml was edited by hand or the route table changed: run \
         `cargo run -p agentidp -- edge init --host id.example.com`"
    );
}

#[test]
fn wrangler_routes_each_path_to_its_function() {
    check_descriptor("wrangler.toml", &wrangler_patterns(), wildcard_matches);
}

#[test]
fn spin_routes_each_path_to_its_function() {
    check_descriptor("spin.toml", &spin_routes(), spin_matches);
}

#[test]
fn the_descriptor_checks_catch_a_drift() {
    let mut patterns = wrangler_patterns();
    patterns.retain(|(_, p)| p != "/v1/usage");
    let dropped = std::panic::catch_unwind(|| {
        check_descriptor("test", &patterns, wildcard_matches);
    });
    assert!(dropped.is_err(), "a route without a pattern went unnoticed");
    let mut patterns = spin_routes();
    patterns.push(("agents".into(), "/v1/nothing/...".into()));
    let stray = std::panic::catch_unwind(|| check_descriptor("test", &patterns, spin_matches));
    assert!(stray.is_err(), "a pattern serving nothing went unnoticed");
}
