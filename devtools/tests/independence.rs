//! Keeps the developer tools out of the product and the product out of the stand-ins, by reading
//! the manifests: no product crate depends on `agentidp-dev`, and it depends on no product crate.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("devtools/ sits in the workspace")
        .to_path_buf()
}

/// The dependency names a manifest declares (keys of its `[*dependencies]` tables).
fn dependencies(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest)
        .unwrap_or_else(|e| panic!("reading {}: {e}", manifest.display()));
    let mut in_dependencies = false;
    let mut names = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_dependencies = line.trim_matches(['[', ']']).ends_with("dependencies");
            continue;
        }
        if in_dependencies {
            if let Some((name, _)) = line.split_once('=') {
                names.push(name.trim().trim_end_matches(".workspace").to_owned());
            }
        }
    }
    names
}

fn product_manifests() -> Vec<PathBuf> {
    let root = workspace();
    let mut manifests = vec![
        root.join("shared/Cargo.toml"),
        root.join("server/Cargo.toml"),
    ];
    for entry in std::fs::read_dir(root.join("functions")).expect("functions/ exists") {
        let manifest = entry
            .expect("readable functions/")
            .path()
            .join("Cargo.toml");
        if manifest.exists() {
            manifests.push(manifest);
        }
    }
    manifests
}

#[test]
fn no_product_crate_depends_on_the_developer_tools() {
    for manifest in product_manifests() {
        assert!(
            !dependencies(&manifest).iter().any(|d| d == "agentidp-dev"),
            "{} depends on agentidp-dev",
            manifest.display()
        );
    }
}

#[test]
fn the_stand_ins_are_written_against_the_protocols_not_the_product() {
    let own = dependencies(&workspace().join("devtools/Cargo.toml"));
    assert!(
        own.iter().any(|d| d == "rusqlite"),
        "the manifest parser found nothing"
    );
    for product in [
        "agentidp-shared",
        "agentidp",
        "agentidp-token",
        "agentidp-agents",
    ] {
        assert!(
            !own.iter().any(|d| d == product),
            "agentidp-dev depends on {product}"
        );
    }
}
