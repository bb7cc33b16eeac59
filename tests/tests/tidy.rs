//! Tidy: walks the source tree and fails when a rule ARCHITECTURE.md promises is broken, in the
//! manner of rust-analyzer's `xtask/src/tidy.rs`. Each rule is a function over file texts, and each
//! has a test that feeds it a violation, so a rule that stops catching anything fails too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A source file: its path relative to the workspace root, and its text.
struct Source {
    path: String,
    text: String,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !matches!(
                name.as_str(),
                "target" | "node_modules" | "build" | "corpus"
            ) {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// Every Rust source of the workspace's crates.
fn sources() -> Vec<Source> {
    let root = workspace_root();
    let mut paths = Vec::new();
    for dir in [
        "shared",
        "functions",
        "server",
        "client",
        "devtools",
        "tests",
    ] {
        rust_files(&root.join(dir), &mut paths);
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| Source {
            path: path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/"),
            text: std::fs::read_to_string(&path).unwrap(),
        })
        .collect()
}

/// The code of a file without its `#[cfg(test)]` module and without `//` comments: what the rules
/// about production code look at.
fn production_code(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    code.lines()
        .map(|line| match line.find("//") {
            // Keep `//` inside string literals (URLs) when the line has an odd quote count before it.
            Some(i) if line[..i].matches('"').count() % 2 == 0 => &line[..i],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The string literals of some code, naively (no raw strings spanning lines are needed here).
fn string_literals(code: &str) -> Vec<String> {
    let mut literals = Vec::new();
    let mut current: Option<String> = None;
    let mut escaped = false;
    for c in code.chars() {
        match &mut current {
            None if c == '"' => current = Some(String::new()),
            None => {}
            Some(text) => {
                if escaped {
                    escaped = false;
                    text.push(c);
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    literals.push(current.take().unwrap());
                } else {
                    text.push(c);
                }
            }
        }
    }
    literals
}

type Violation = String;

// ---- the rules --------------------------------------------------------------------------------

/// Every module starts with a `//!` line saying its job.
fn module_docs(sources: &[Source]) -> Vec<Violation> {
    sources
        .iter()
        .filter(|s| !s.text.trim_start().starts_with("//!"))
        .map(|s| format!("{}: does not start with a `//!` line", s.path))
        .collect()
}

/// `cfg(target_…)` only in `shared/src/platform/`.
fn platform_cfg(sources: &[Source]) -> Vec<Violation> {
    sources
        .iter()
        .filter(|s| !s.path.starts_with("shared/src/platform/"))
        .filter(|s| {
            production_code(&s.text).contains("cfg(target_")
                || production_code(&s.text).contains("cfg(all(target_")
                || production_code(&s.text).contains("cfg(not(target_")
        })
        .map(|s| format!("{}: platform `cfg` outside shared/src/platform/", s.path))
        .collect()
}

/// What only the seams' implementations may touch: randomness, the clock, sleeping, threads and
/// files. The shared crate and the function crates reach them through `ports/`.
const SEAM_ONLY: &[&str] = &[
    "getrandom",
    "::generate(",
    "rand::",
    "SystemTime",
    "Instant::now",
    "Date::now",
    "std::thread",
    "thread::spawn",
    "tokio::",
    "std::fs",
    "File::",
];

fn seams(sources: &[Source]) -> Vec<Violation> {
    let mut violations = Vec::new();
    for source in sources {
        let governed = (source.path.starts_with("shared/src/")
            && !source.path.starts_with("shared/src/platform/"))
            || source.path.starts_with("functions/");
        if !governed {
            continue;
        }
        let code = production_code(&source.text);
        for needle in SEAM_ONLY {
            if code.contains(needle) {
                violations.push(format!(
                    "{}: `{needle}` outside the seams (use ports::runtime / ports::*)",
                    source.path
                ));
            }
        }
    }
    violations
}

/// Layers that must not know HTTP: everything in `shared/` but `http/` and `platform/`.
fn no_http_below_http(sources: &[Source]) -> Vec<Violation> {
    const HTTP_TYPES: &[&str] = &[
        "axum",
        "StatusCode",
        "HeaderMap",
        "HeaderValue",
        "IntoResponse",
        "http::",
    ];
    let mut violations = Vec::new();
    for source in sources {
        let Some(rest) = source.path.strip_prefix("shared/src/") else {
            continue;
        };
        if rest.starts_with("http/") || rest.starts_with("platform/") || rest == "lib.rs" {
            continue;
        }
        let code = production_code(&source.text).replace("crate::http::", "");
        for needle in HTTP_TYPES {
            if code.contains(needle) {
                violations.push(format!("{}: HTTP type `{needle}` below http/", source.path));
            }
        }
    }
    violations
}

/// SQL statements live in `shared/src/store/` only. Transaction control (`BEGIN`, `COMMIT`,
/// `SAVEPOINT`, `PRAGMA`) belongs to the engines' adapters and is not counted.
fn sql_in_store(sources: &[Source]) -> Vec<Violation> {
    const STATEMENTS: &[&str] = &[
        "SELECT ",
        "INSERT INTO",
        "INSERT OR",
        "UPDATE ",
        "DELETE FROM",
        "CREATE TABLE",
        "CREATE INDEX",
        "CREATE TRIGGER",
        "DROP ",
        "ALTER TABLE",
    ];
    let mut violations = Vec::new();
    for source in sources {
        let product = source.path.starts_with("shared/src/")
            || source.path.starts_with("functions/")
            || source.path.starts_with("server/");
        if !product || source.path.starts_with("shared/src/store/") {
            continue;
        }
        for literal in string_literals(&production_code(&source.text)) {
            if STATEMENTS
                .iter()
                .any(|s| literal.trim_start().starts_with(s))
            {
                violations.push(format!("{}: SQL outside store/: {literal:?}", source.path));
            }
        }
    }
    violations
}

/// The layers of `shared/src`, lowest first: a file may use its own folder and lower layers only.
const LAYERS: &[(&str, u8)] = &[
    ("config", 0),
    ("domain", 1),
    ("ports", 2),
    ("store", 3),
    ("jose", 4),
    ("limits", 4),
    ("state", 5),
    ("services", 6),
    ("oauth", 7),
    ("http", 8),
    ("platform", 9),
];

/// A file of `shared/src` as a module path: `shared/src/oauth/grant.rs` → `oauth::grant`.
fn module_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("shared/src/")?;
    let rest = rest.strip_suffix(".rs")?;
    let rest = rest.strip_suffix("/mod").unwrap_or(rest);
    (rest != "lib").then(|| rest.replace('/', "::"))
}

/// The modules a file's production code refers to, resolved to the longest existing module.
fn dependencies(source: &Source, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let this = module_of(&source.path).unwrap();
    let is_folder_root = source.path.ends_with("/mod.rs");
    let parent = this.rsplit_once("::").map(|(p, _)| p.to_owned());
    let code = production_code(&source.text).replace("$crate::", "");
    let mut found = BTreeSet::new();
    let mut resolve = |path: String| {
        let segments: Vec<&str> = path.split("::").collect();
        for n in (1..=segments.len()).rev() {
            let candidate = segments[..n].join("::");
            if modules.contains(&candidate) {
                if candidate != this {
                    found.insert(candidate);
                }
                return;
            }
        }
    };
    let identifier = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    for (prefix, base) in [("crate::", None), ("super::", parent.clone())] {
        for (i, _) in code.match_indices(prefix) {
            if i > 0 && code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest: String = code[i + prefix.len()..]
                .chars()
                .take_while(|c| identifier(*c))
                .collect();
            // `use crate::a::{b, c}` names several modules: the brace list is resolved piecewise.
            let after = &code[i + prefix.len() + rest.len()..];
            let rest = rest.trim_end_matches(':').to_owned();
            let full = match &base {
                Some(b) if prefix == "super::" && !is_folder_root => format!("{b}::{rest}"),
                Some(_) if prefix == "super::" => {
                    let grand = parent
                        .as_deref()
                        .and_then(|p| p.rsplit_once("::").map(|(g, _)| g.to_owned()));
                    match grand {
                        Some(g) => format!("{g}::{rest}"),
                        None => rest.clone(),
                    }
                }
                _ => rest.clone(),
            };
            if let Some(list) = after.strip_prefix('{') {
                let list = &list[..list.find('}').unwrap_or(list.len())];
                for item in list.split(',') {
                    let item = item.trim().split(' ').next().unwrap_or("");
                    if item == "self" || item.is_empty() {
                        resolve(full.clone());
                    } else {
                        resolve(format!("{full}::{item}"));
                    }
                }
            } else {
                resolve(full);
            }
        }
    }
    // In a folder's `mod.rs`, a child module is named without `crate::`.
    if is_folder_root {
        for module in modules {
            if let Some(child) = module
                .strip_prefix(&format!("{this}::"))
                .filter(|c| !c.contains("::"))
            {
                let named = code.match_indices(&format!("{child}::")).any(|(i, _)| {
                    i == 0
                        || !code[..i]
                            .ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':')
                });
                if named {
                    found.insert(module.clone());
                }
            }
        }
    }
    found
}

fn module_graph(sources: &[Source]) -> BTreeMap<String, BTreeSet<String>> {
    let shared: Vec<&Source> = sources
        .iter()
        .filter(|s| module_of(&s.path).is_some())
        .collect();
    let modules: BTreeSet<String> = shared.iter().filter_map(|s| module_of(&s.path)).collect();
    shared
        .iter()
        .map(|s| (module_of(&s.path).unwrap(), dependencies(s, &modules)))
        .collect()
}

fn layer_of(module: &str) -> Option<(&'static str, u8)> {
    let top = module.split("::").next()?;
    LAYERS.iter().find(|(name, _)| *name == top).copied()
}

/// Each file uses only its own folder and lower layers.
fn layering(sources: &[Source]) -> Vec<Violation> {
    let mut violations = Vec::new();
    for (module, deps) in module_graph(sources) {
        let Some((folder, rank)) = layer_of(&module) else {
            violations.push(format!("{module}: not in any layer of the tidy rules"));
            continue;
        };
        for dep in deps {
            let Some((dep_folder, dep_rank)) = layer_of(&dep) else {
                continue;
            };
            if dep_folder != folder && dep_rank >= rank {
                violations.push(format!(
                    "{module} ({folder}) uses {dep} ({dep_folder}), which is not a lower layer"
                ));
            }
        }
    }
    violations
}

/// No import circles between the modules of `shared/src`.
fn import_cycles(sources: &[Source]) -> Vec<Violation> {
    let graph = module_graph(sources);
    let mut violations = Vec::new();
    let mut state: BTreeMap<&str, u8> = BTreeMap::new(); // 1 = on the stack, 2 = done
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
        violations: &mut Vec<Violation>,
    ) {
        state.insert(node, 1);
        stack.push(node);
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next.as_str()) {
                Some(1) => {
                    let start = stack.iter().position(|n| *n == next).unwrap();
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(next);
                    violations.push(format!("import circle: {}", cycle.join(" -> ")));
                }
                Some(_) => {}
                None => visit(next, graph, state, stack, violations),
            }
        }
        stack.pop();
        state.insert(node, 2);
    }
    for node in graph.keys() {
        if !state.contains_key(node.as_str()) {
            visit(node, &graph, &mut state, &mut Vec::new(), &mut violations);
        }
    }
    violations
}

/// Metric names are declared once, in `shared/src/ports/metrics.rs`; everything else refers to
/// its constants, so a name cannot drift between the registry, the edge's log lines and a counting
/// point.
fn metric_names(sources: &[Source]) -> Vec<Violation> {
    const SUFFIXES: &[&str] = &["_total", "_seconds", "_bytes", "_info", "_jobs"];
    let mut violations = Vec::new();
    for source in sources {
        let product = source.path.starts_with("shared/src/")
            || source.path.starts_with("functions/")
            || source.path.starts_with("server/");
        if !product || source.path == "shared/src/ports/metrics.rs" {
            continue;
        }
        for literal in string_literals(&production_code(&source.text)) {
            let is_metric = literal.starts_with("agentidp_")
                && literal
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && SUFFIXES.iter().any(|s| literal.ends_with(s));
            if is_metric {
                violations.push(format!(
                    "{}: metric name {literal:?} outside ports/metrics.rs (use its constants)",
                    source.path
                ));
            }
        }
    }
    violations
}

/// Webhook events enter the outbox only through `services::webhooks::event`, which hands the
/// producer a statement for its own change: nothing else writes outbox rows, so no event is ever
/// enqueued outside the transaction of the change that caused it.
fn outbox_in_change(sources: &[Source]) -> Vec<Violation> {
    const OUTBOX_WRITES: &[&str] = &["fan_out(", "enqueue_one("];
    const OWNERS: &[&str] = &[
        "shared/src/store/webhooks.rs",
        "shared/src/services/webhooks.rs",
    ];
    sources
        .iter()
        .filter(|s| {
            ["shared/src/", "functions/", "server/"]
                .iter()
                .any(|prefix| s.path.starts_with(prefix))
        })
        .filter(|s| !OWNERS.contains(&s.path.as_str()))
        .filter(|s| {
            let code = production_code(&s.text);
            OUTBOX_WRITES.iter().any(|write| code.contains(write))
        })
        .map(|s| {
            format!(
                "{}: writes webhook outbox rows itself (add services::webhooks::event to the change)",
                s.path
            )
        })
        .collect()
}

/// Who may do what is decided in one place: `domain::authz::authorize` over the `Caller` that
/// `http::auth` derives from the verified token. No handler or service reads a token's scopes,
/// asks whether a caller is an admin, or compares a subject with a client id itself.
fn one_decision_point(sources: &[Source]) -> Vec<Violation> {
    const DECIDING: &[&str] = &[
        ".scopes()",
        ".holds(",
        "is_admin()",
        "subject ==",
        "== caller",
        "client_id ==",
        "== client_id",
        "auth::Principal",
    ];
    const DECISION_POINT: &[&str] = &[
        "shared/src/domain/authz.rs",
        "shared/src/domain/caller.rs",
        "shared/src/http/auth.rs",
        // Defines the scopes a token carries; decides nothing.
        "shared/src/jose/access_token.rs",
    ];
    let mut violations = Vec::new();
    for source in sources {
        let in_scope = ["shared/src/", "functions/"]
            .iter()
            .any(|prefix| source.path.starts_with(prefix));
        if !in_scope || DECISION_POINT.contains(&source.path.as_str()) {
            continue;
        }
        let code = production_code(&source.text);
        for pattern in DECIDING {
            if code.contains(pattern) {
                violations.push(format!(
                    "{}: `{pattern}` decides who may do what outside the decision point \
                     (call domain::authz::authorize, or Context::authorize)",
                    source.path
                ));
            }
        }
    }
    violations
}

/// The README's configuration table is the one `config::VARIABLES` renders.
fn readme_configuration(readme: &str) -> Vec<Violation> {
    let expected = agentidp_shared::config::markdown_table();
    let Some(start) = readme.find("| variable | default | meaning |") else {
        return vec!["README.md: no configuration table".into()];
    };
    let table: String = readme[start..]
        .lines()
        .take_while(|l| l.starts_with('|'))
        .map(|l| format!("{l}\n"))
        .collect();
    if table == expected {
        Vec::new()
    } else {
        vec![format!(
            "README.md: the configuration table differs from config::VARIABLES; it should read:\n{expected}"
        )]
    }
}

fn report(rule: &str, violations: Vec<Violation>) {
    assert!(
        violations.is_empty(),
        "tidy rule `{rule}` is broken:\n{}",
        violations.join("\n")
    );
}

// ---- the tree obeys every rule ------------------------------------------------------------------

#[test]
fn every_module_says_its_job() {
    report("module_docs", module_docs(&sources()));
}

#[test]
fn platform_cfg_lives_in_platform() {
    report("platform_cfg", platform_cfg(&sources()));
}

#[test]
fn randomness_clock_threads_and_files_go_through_the_seams() {
    report("seams", seams(&sources()));
}

#[test]
fn http_types_stay_in_http_and_platform() {
    report("no_http_below_http", no_http_below_http(&sources()));
}

#[test]
fn sql_lives_in_store() {
    report("sql_in_store", sql_in_store(&sources()));
}

#[test]
fn layers_only_use_lower_layers() {
    report("layering", layering(&sources()));
}

#[test]
fn there_are_no_import_circles() {
    report("import_cycles", import_cycles(&sources()));
}

#[test]
fn metric_names_are_declared_once() {
    report("metric_names", metric_names(&sources()));
}

#[test]
fn authorization_is_decided_at_one_point() {
    report("one_decision_point", one_decision_point(&sources()));
}

#[test]
fn webhook_events_are_enqueued_in_their_change() {
    report("outbox_in_change", outbox_in_change(&sources()));
}

#[test]
fn the_readme_lists_every_configuration_variable() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    report("readme_configuration", readme_configuration(&readme));
}

// ---- each rule catches what it is for ------------------------------------------------------------

fn file(path: &str, text: &str) -> Source {
    Source {
        path: path.into(),
        text: text.into(),
    }
}

#[test]
fn the_rules_catch_violations() {
    let undocumented = [file("shared/src/domain/x.rs", "use a;\n")];
    assert_eq!(module_docs(&undocumented).len(), 1);

    let cfg = [file(
        "shared/src/domain/x.rs",
        "//! x\n#[cfg(target_arch = \"wasm32\")]\nfn f() {}\n",
    )];
    assert_eq!(platform_cfg(&cfg).len(), 1);

    for leak in [
        "let t = std::time::SystemTime::now();",
        "let k = ES256KeyPair::generate();",
        "std::thread::sleep(d);",
        "let f = std::fs::read(p);",
        "getrandom::fill(&mut b);",
    ] {
        let sources = [file(
            "shared/src/services/x.rs",
            &format!("//! x\nfn f() {{ {leak} }}\n"),
        )];
        assert_eq!(seams(&sources).len(), 1, "{leak}");
    }
    let in_test = [file(
        "shared/src/services/x.rs",
        "//! x\n#[cfg(test)]\nmod tests { fn f() { std::fs::read(\"p\"); } }\n",
    )];
    assert!(seams(&in_test).is_empty());

    let http = [file(
        "shared/src/domain/x.rs",
        "//! x\nuse axum::http::StatusCode;\n",
    )];
    assert!(!no_http_below_http(&http).is_empty());

    let sql = [file(
        "shared/src/services/x.rs",
        "//! x\nfn f() { Statement::new(\"SELECT id FROM agents WHERE org_id = ?1\"); }\n",
    )];
    assert_eq!(sql_in_store(&sql).len(), 1);
    let control = [file(
        "shared/src/platform/x.rs",
        "//! x\nfn f() { run(\"BEGIN IMMEDIATE\"); }\n",
    )];
    assert!(sql_in_store(&control).is_empty());

    let upward = [
        file("shared/src/domain/x.rs", "//! x\nuse crate::store::y::f;\n"),
        file("shared/src/store/y.rs", "//! y\npub fn f() {}\n"),
    ];
    assert_eq!(layering(&upward).len(), 1);

    let circle = [
        file(
            "shared/src/store/a.rs",
            "//! a\nuse crate::store::b::g;\npub fn f() {}\n",
        ),
        file(
            "shared/src/store/b.rs",
            "//! b\nuse crate::store::{a::f};\npub fn g() {}\n",
        ),
    ];
    assert_eq!(import_cycles(&circle).len(), 1);
    let relative = [
        file(
            "shared/src/oauth/mod.rs",
            "//! m\nstatic G: &[&X] = &[&grant::X];\n",
        ),
        file("shared/src/oauth/grant.rs", "//! g\nuse super::G;\n"),
    ];
    assert_eq!(import_cycles(&relative).len(), 1);

    let counted = [file(
        "shared/src/oauth/x.rs",
        "//! x\nfn f() { count(\"agentidp_tokens_total\"); }\n",
    )];
    assert_eq!(metric_names(&counted).len(), 1);
    let declared = [file(
        "shared/src/ports/metrics.rs",
        "//! x\nconst N: &str = \"agentidp_tokens_total\";\n",
    )];
    assert!(metric_names(&declared).is_empty());
    let outbox = [file(
        "shared/src/services/agents.rs",
        "//! x\nfn f() { Change::new().statement(store::webhooks::fan_out(a, b, c, d, 1)); }\n",
    )];
    assert_eq!(outbox_in_change(&outbox).len(), 1);
    for deciding in [
        "if principal.token.scopes().any(|s| s == \"agents:write\") {}",
        "let admin = token.subject == token.claims.client_id;",
        "if caller.is_admin() {}",
    ] {
        let handler = [file(
            "functions/agents/src/x.rs",
            &format!("//! x\nfn f() {{ {deciding} }}\n"),
        )];
        assert_eq!(one_decision_point(&handler).len(), 1, "{deciding}");
    }
    let decision_point = [file(
        "shared/src/domain/authz.rs",
        "//! x\nfn f() { if caller.is_admin() {} }\n",
    )];
    assert!(one_decision_point(&decision_point).is_empty());

    let mut readme = String::from("# x\n\n");
    readme.push_str(&agentidp_shared::config::markdown_table());
    assert!(readme_configuration(&readme).is_empty());
    let stale = readme.replacen("`3600`", "`7200`", 1);
    assert_eq!(readme_configuration(&stale).len(), 1);
}

/// The folder graph of `shared/src` (printed with `cargo test -p agentidp-tests --test tidy
/// folder_graph -- --nocapture`) points only down the layers, and ARCHITECTURE.md's layer table
/// numbers each folder as `LAYERS` does.
#[test]
fn folder_graph_points_down_the_layers_architecture_md_lists() {
    let mut folders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, deps) in module_graph(&sources()) {
        let top = module.split("::").next().unwrap().to_owned();
        let entry = folders.entry(top.clone()).or_default();
        for dep in deps {
            let dep_top = dep.split("::").next().unwrap().to_owned();
            if dep_top != top {
                entry.insert(dep_top);
            }
        }
    }
    let layer = |folder: &str| {
        LAYERS
            .iter()
            .find(|(name, _)| *name == folder)
            .map(|(_, n)| *n)
            .unwrap_or_else(|| panic!("`{folder}` has no layer in LAYERS"))
    };
    for (folder, deps) in &folders {
        println!(
            "{folder:>9} -> {}",
            deps.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        for dep in deps {
            assert!(
                layer(dep) < layer(folder),
                "{folder} (layer {}) uses {dep} (layer {})",
                layer(folder),
                layer(dep)
            );
        }
    }
    let architecture = std::fs::read_to_string(workspace_root().join("ARCHITECTURE.md")).unwrap();
    for (folder, number) in LAYERS {
        let row = architecture.lines().find(|line| {
            line.starts_with("| ")
                && (line.contains(&format!("`{folder}/`"))
                    || line.contains(&format!("`{folder}.rs`")))
        });
        let row = row.unwrap_or_else(|| panic!("ARCHITECTURE.md's layer table lacks `{folder}`"));
        assert!(
            row.starts_with(&format!("| {number} |")),
            "ARCHITECTURE.md numbers `{folder}` otherwise than LAYERS ({number}): {row}"
        );
    }
}
