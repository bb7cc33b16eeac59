//! Support for the verifiable audit log's tests: the independent verifier
//! (`tests/python/verify_audit_log.py`) run against a server.

use std::process::Command;

use serde_json::Value;

use crate::{workspace_root, Server};

/// Runs the Python verifier for the organization of `token`, with `saved_note` as the checkpoint
/// saved earlier; panics with its output unless it verified everything.
pub fn verify_independently(server: &Server, token: &str, saved_note: &str) -> Value {
    let dir = std::env::temp_dir().join(format!(
        "agentidp-saved-checkpoint-{}-{}",
        std::process::id(),
        crate::free_port()
    ));
    std::fs::write(&dir, saved_note).unwrap();
    let output = Command::new(crate::webhooks::python())
        .arg(workspace_root().join("tests/python/verify_audit_log.py"))
        .arg(server.url(""))
        .arg(token)
        .arg(&dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the independent verifier failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap()
}
